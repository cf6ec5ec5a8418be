"""Sessions in worker processes (talkface.stream.worker): the same frames and errors as an in-process Session,
barge-in across the pipe, and no process left behind by close(), by a dropped proxy, or by a killed parent."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import synth_speech

from talkface.errors import TalkfaceError
from talkface.stream.session import Session
from talkface.stream.worker import ProcessAvatar, ProcessSession

SIZE = 128


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is gone, waiting for its parent to read its status
        return f.read().split(")")[1].split()[0] != "Z"


def _wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _render(session, speech: np.ndarray) -> list[tuple[float, np.ndarray]]:
    for i in range(0, len(speech), 320):
        session.push_audio(speech[i : i + 320], 16000)
    session.flush()
    return list(session.frames())


def test_a_process_session_makes_the_frames_of_a_session(portrait):
    speech = synth_speech(1.0)
    with Session(portrait, size=SIZE, seed=3) as local:
        expected = _render(local, speech)
    with ProcessSession(portrait, size=SIZE, seed=3) as remote:
        assert remote.fps == 25.0 and remote.frame_size == (SIZE, SIZE)
        got = _render(remote, speech)
    assert [t for t, _ in got] == [t for t, _ in expected]

    # The same motion and render: each session's watermark carries its own id, so compare how the frames
    # change from one to the next (the watermark cancels out), then their distance (about the watermark's).
    def changes(frames):
        return np.array(
            [
                np.abs(b.astype(int) - a.astype(int)).mean()
                for (_, a), (_, b) in zip(frames, frames[1:], strict=False)
            ]
        )

    assert np.abs(changes(got) - changes(expected)).max() < 0.3 and changes(expected).max() > 1.0
    assert (
        max(
            np.abs(a.astype(int) - b.astype(int)).mean() for (_, a), (_, b) in zip(got, expected, strict=True)
        )
        < 3.0
    )


def test_errors_come_back_as_talkface_errors(portrait):
    with pytest.raises(TalkfaceError, match="unknown option"):
        ProcessSession(portrait, colour="red")
    with pytest.raises(TalkfaceError, match="face"):
        ProcessSession(np.full((256, 256, 3), 128, np.uint8))
    with ProcessSession(portrait, size=SIZE) as s:
        with pytest.raises(TalkfaceError, match="'joy' is not one of"):
            s.set_emotion("joy")
        s.push_audio(np.zeros(320, np.float32), 16000)
        s.push_audio(np.zeros(320, np.float32), 22050)  # refused in the child: raised by the next push
        s.backlog()  # another call does not raise it (it may come from another thread)
        with pytest.raises(TalkfaceError, match="sample rate changed"):
            s.push_audio(np.zeros(320, np.float32), 16000)
    with pytest.raises(TalkfaceError, match="closed|ended"):
        s.backlog()


def test_interrupt_drops_the_frames_waiting(portrait):
    with ProcessSession(portrait, size=SIZE) as s:
        s.push_audio(synth_speech(1.0), 16000)
        assert s.backlog()[1] > 10
        assert s.interrupt() > 10
        assert s.backlog()[1] == 0
        s.push_audio(np.zeros(3200, np.float32), 16000)
        assert len(list(s.frames())) > 0


def test_a_process_avatar_pairs_frames_with_their_audio(portrait):
    avatar = ProcessAvatar(portrait, size=SIZE)
    try:
        assert avatar.frame_size == (SIZE, SIZE) and avatar.sample_rate == 48000
        avatar.push_audio(synth_speech(3.0), 16000)
        frames = [f for _ in range(30) for f in avatar.step()]
        assert len(frames) >= 26 and frames[0].image.shape == (SIZE, SIZE, 3)
        assert all(len(f.audio) == 48000 / avatar.fps for f in frames)
        assert avatar.interrupt() > 0
        avatar.set_emotion("happy", 0.5)
    finally:
        avatar.close()


def test_no_process_outlives_its_session(portrait):
    s = ProcessSession(portrait, size=SIZE)
    pid = s._worker._process.pid
    s.close()
    assert _wait_gone(pid)
    s = ProcessSession(portrait, size=SIZE)  # dropped without close(): the finalizer ends it
    pid = s._worker._process.pid
    del s
    gc.collect()
    assert _wait_gone(pid)


def test_a_dead_process_fails_its_calls(portrait):
    s = ProcessSession(portrait, size=SIZE)
    os.kill(s._worker._process.pid, signal.SIGKILL)
    with pytest.raises(TalkfaceError, match="ended"):
        list(s.frames())
    s.close()


def test_the_session_process_ends_with_a_killed_parent(portrait):
    code = (
        "from talkface.stream.worker import ProcessSession\n"
        "if __name__ == '__main__':\n"
        f"    s = ProcessSession({str(portrait)!r}, size={SIZE})\n"
        "    print(s._worker._process.pid, flush=True)\n"
        "    import time; time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert _pid_alive(child)
    finally:
        parent.kill()
        parent.wait()
    assert _wait_gone(child)  # its pipe closed with the parent
