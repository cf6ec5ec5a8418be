"""Sliding-window motion generation: audio in, motion out, window by window, in bounded memory.

Every generator is a MotionStream (motion.contract): it takes the features of the next video frames (any
number: a 2-s window offline, one 40-ms frame live) and returns the motion frames that are final, carrying its
state (the previous window's motion and levels, its blink/gaze/sway schedules, its smoothing filters) from one
window to the next. A whole file is just a stream pushed once, so offline and live output agree frame for
frame, whatever the window size (tests/test_stream.py checks both).

AudioMotion chains the stages for a 16 kHz signal: FeatureStream (100 Hz features) -> FramePooler (features
per video frame, with the generator's lead) -> MotionStream. The smoothers here are shared tools of the
generators.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import numpy as np

from talkface.audio.features import AudioFeatures, FeatureStream, FramePooler, compute_features
from talkface.audio.load import SAMPLE_RATE, Audio
from talkface.motion.contract import MotionSequence, MotionStream, concat_motion

if TYPE_CHECKING:
    from talkface.audio.phones import LivePhones


def run_stream(
    stream: MotionStream, features: AudioFeatures, n_frames: int, window: int = 0
) -> MotionSequence:
    """Motion for n_frames video frames of a whole signal's 100 Hz `features`, pushed in windows of `window`
    frames (0: all at once; the result is the same)."""
    f = features.at_fps(stream.fps, n_frames, offset=stream.lead_s)
    step = window or max(n_frames, 1)
    parts = [stream.push(f.sliced(i, i + step)) for i in range(0, n_frames, step)]
    parts.append(stream.finish())
    return concat_motion(parts)


class GaussianSmoother:
    """Zero-phase Gaussian smoothing of a stream of rows (T, k), standard deviation `sigma` frames, the
    kernel truncated at `reach` frames each side: each output row needs `reach` rows of lookahead. The edges
    are held (as np.pad's "edge" mode), so a stream gives the same values as the whole sequence at once."""

    def __init__(self, sigma: float, reach: int, columns: int):
        self.reach = reach if sigma >= 0.3 else 0
        k = np.exp(-0.5 * (np.arange(-self.reach, self.reach + 1) / max(sigma, 1e-6)) ** 2)
        self._kernel = k / k.sum()
        self._columns = columns
        self.reset()

    def reset(self) -> None:
        self._buffer = np.zeros((0, self._columns))
        self._started = False

    def push(self, rows: np.ndarray) -> np.ndarray:
        """Smoothed rows for every position whose `reach` following rows have arrived."""
        rows = np.asarray(rows, np.float64).reshape(-1, self._columns)
        if len(rows) and not self._started:
            rows = np.concatenate([np.repeat(rows[:1], self.reach, 0), rows])
            self._started = True
        self._buffer = np.concatenate([self._buffer, rows])
        return self._emit()

    def finish(self) -> np.ndarray:
        """The last `reach` rows, the final input row held beyond the end."""
        if not self._started:
            return np.zeros((0, self._columns))
        self._buffer = np.concatenate([self._buffer, np.repeat(self._buffer[-1:], self.reach, 0)])
        out = self._emit()
        self.reset()
        return out

    def _emit(self) -> np.ndarray:
        width = 2 * self.reach + 1
        n = len(self._buffer) - width + 1
        if n <= 0:
            return np.zeros((0, self._columns))
        windows = np.lib.stride_tricks.sliding_window_view(self._buffer, width, axis=0)  # (n, k, width)
        out = windows @ self._kernel
        self._buffer = self._buffer[n:]
        return out


class CausalSmoother:
    """`stages` one-pole low-passes in cascade, time constant `tau` frames each. Two (the default) give a
    critically damped response (smooth, no overshoot): delay about 2 tau, spread about sqrt(2) tau, the same
    as a Gaussian of sigma = sqrt(2) tau would smooth but using the past only. Starts settled on the first
    value."""

    def __init__(self, tau: float, stages: int = 2):
        self._a = float(np.exp(-1.0 / max(tau, 1e-6)))
        self._stages = stages
        self.reset()

    def reset(self) -> None:
        self._zi: list[np.ndarray] | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from talkface.audio.iir import lfilter  # scipy.signal's, without its 0.5-1.5 s import

        x = np.asarray(x, np.float64)
        if len(x) == 0:
            return x
        b, a = [1.0 - self._a], [1.0, -self._a]
        if self._zi is None:
            self._zi = [np.array([self._a * x[0]]) for _ in range(self._stages)]
        for k in range(self._stages):
            x, self._zi[k] = lfilter(b, a, x, self._zi[k])
        return x


class AudioMotion:
    """16 kHz samples in, motion out: features, pooling to video frames, a MotionStream. push() returns the
    motion frames that are final; finish() the rest, round(duration * fps) in all."""

    def __init__(
        self,
        stream: MotionStream,
        clock: Callable[[str], AbstractContextManager] | None = None,
        live_phones: bool = False,
        voice: np.ndarray | None = None,
    ):
        """clock: times the "audio" (features), "phones" and "motion" stages of each push (engine.StageClock).
        live_phones: for a stream that reads phonemes (it has listen(): LearnedStream), recognise them in the
        audio as it is pushed (audio.phones.LivePhones) and let the stream listen to them. voice: the whole
        signal's voice activity known in advance (FeatureStream's; offline, audio.music.voice_activity)."""
        self._features = FeatureStream(voice)
        self._pooler = FramePooler(stream.fps, stream.lead_s)
        self._stream = stream
        self._clock = clock or (lambda stage: contextlib.nullcontext())
        self._phones: LivePhones | None = None
        if live_phones and hasattr(stream, "listen"):
            from talkface.audio.phones import LivePhones

            self._phones = LivePhones()
            stream.listen(self._phones)
        # Live, the stream may read the heard jaw of the audio as it comes (LearnedStream.hear_live).
        self._hears_live = self._phones is not None and getattr(stream, "hears_live", False)

    @property
    def fps(self) -> float:
        return self._stream.fps

    @property
    def lookahead_s(self) -> float:
        """Audio past a frame's end needed before the frame is final (the generator's look-ahead)."""
        return self._stream.lookahead_s

    def set_lookahead(self, seconds: float) -> float:
        """Ask the stream to wait for `seconds` of audio past each frame's end before making it, where it
        can use more than it needs (LearnedStream.set_lookahead); returns the look-ahead now in effect."""
        if hasattr(self._stream, "set_lookahead"):
            return self._stream.set_lookahead(seconds)
        return self.lookahead_s

    def hear(self, audio: Audio, voice: np.ndarray | None = None) -> None:
        """The whole recording, known before it is pushed (offline), for a stream that reads it (its `hears`:
        LearnedStream.hear); voice: its voice activity, when known."""
        if getattr(self._stream, "hears", False):
            from talkface.audio.vad import speech_probability

            with self._clock("audio"):
                features = compute_features(audio, voice)
                # silero-vad's own speech probability (the voice activity also hears song), not heard again:
                # the voice activity asked for it (speech_probability remembers the last few signals).
                self._stream.hear(features, speech_probability(audio.samples))

    @property
    def samples_received(self) -> int:
        return self._features.samples_received

    def push(self, samples: np.ndarray) -> MotionSequence:
        with self._clock("audio"):
            heard = self._features.push(samples)
            features = self._pooler.push(heard)
            if self._hears_live:
                self._stream.hear_live(heard, self._features.speech)
        if self._phones is not None:
            with self._clock("phones"):
                self._phones.push(samples)
        with self._clock("motion"):
            return self._stream.push(features)

    def finish(self) -> MotionSequence:
        """The remaining frames of the signal pushed so far."""
        duration = self._features.samples_received / SAMPLE_RATE
        with self._clock("audio"):
            heard = self._features.finish()
            last_features = self._pooler.push(heard)
            if self._hears_live:
                self._stream.hear_live(heard, self._features.speech)
            rest_features = self._pooler.finish(duration)
        if self._phones is not None:
            with self._clock("phones"):
                self._phones.finish()
        with self._clock("motion"):
            last = self._stream.push(last_features)
            rest = self._stream.push(rest_features)
            return concat_motion([last, rest, self._stream.finish()])
