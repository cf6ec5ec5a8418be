"""engine._EncoderThread: frames reach the writer in order on a second thread, and an encoder error stops the
job (on the producer's thread) instead of being lost."""

import numpy as np
import pytest

from talkface.engine import StageClock, _EncoderThread


class Writer:
    def __init__(self, fail_at: int | None = None):
        self.got, self.fail_at = [], fail_at

    def write(self, frame):
        if self.fail_at is not None and len(self.got) == self.fail_at:
            raise OSError("disk full")
        self.got.append(int(frame[0, 0, 0]))


def frames(n):
    return [np.full((4, 4, 3), i, np.uint8) for i in range(n)]


def test_frames_arrive_in_order_and_are_timed():
    w, clock = Writer(), StageClock()
    with _EncoderThread(w, clock) as encoder:
        for f in frames(50):
            encoder.put(f)
    assert w.got == list(range(50))
    assert len(clock.calls["encode"]) == 50


def test_an_encoder_error_reaches_the_producer():
    w = Writer(fail_at=3)
    with pytest.raises(OSError, match="disk full"):
        with _EncoderThread(w, StageClock()) as encoder:
            for f in frames(200):
                encoder.put(f)
    assert w.got == [0, 1, 2]


def test_an_error_in_the_last_frames_is_raised_at_the_end():
    w = Writer(fail_at=1)
    with pytest.raises(OSError, match="disk full"):
        with _EncoderThread(w, StageClock()) as encoder:
            for f in frames(2):  # fewer than the queue holds: put() never sees the error
                encoder.put(f)
