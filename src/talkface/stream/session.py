"""talkface.Session: the live form of the pipeline. Push audio as it arrives, pull frames as they are ready.

A session runs on the engine that runs `talkface animate` (talkface.engine: the same rig, motion stream and
frame stage), so a live session and `talkface animate` give the same motion for the same audio, and every
frame carries the watermark. push_audio() does the cheap part (features and motion, about 1 ms per
40 ms of audio); frames() renders, so a consumer thread can render while another pushes.

    with talkface.Session("me.jpg", size=512) as s:
        for chunk in microphone():            # float32 or int16 PCM, any rate, any chunk size
            s.push_audio(chunk, 48000)
            for t, frame in s.frames():       # RGB uint8 (512, 512, 3); t = frame time on the audio's clock
                show(t, frame)
            if button_pressed():
                s.set_emotion("happy", 0.8)   # the face eases into it from the next frame made
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import soxr

from talkface.audio.load import SAMPLE_RATE
from talkface.config import SAMPLE_RATE_RANGE, AnimateOptions, EmotionKey, EmotionTrack
from talkface.engine import Engine
from talkface.errors import TalkfaceError
from talkface.face.expression import JAW_OPEN, LIP_ROUND, LIP_SPREAD
from talkface.motion.contract import MotionSequence
from talkface.motion.controls import LiveEmotion

FLUSH_STEP = 160  # samples of silence per step while flushing (10 ms)
MAX_FLUSH_S = 1.0  # flushing never adds more silence than this
# Barge-in (interrupt): the mouth closes over this long from the first frame after the interrupt, stays
# shut while frames still read audio pushed before it (the generator's look-ahead), then opens over as long.
HUSH_S = 0.08
MOUTH = [JAW_OPEN, LIP_ROUND, LIP_SPREAD]

# The live default, as offline: the learned generator, on phones recognised as the audio arrives
# (audio.phones.LivePhones), through mouth filters fitted on the recogniser's guesses as they stand when a
# frame is made (training/learned_motion/live_mouth.py). Each frame reads as far ahead as the audio already in
# allows, up to two frames: audio fed in real time (a microphone) gets one frame, as the rules' mouth waits (a
# frame is drawn 80 ms of audio after its start: 90 ms median latency at 512 px, `talkface bench --json`), and
# its jaw follows real lips as closely as the rules' (validation clips, scripts/live_lipsync.py: r 0.267
# both); audio that arrives ahead of real time (text to speech) gets two, and follows them better (r 0.306
# against 0.267, paired +0.039, 95 % +0.006..+0.074), as does a feeder that asks for them (set_lookahead:
# LiveAvatar does by default, 0.301, +0.034, +0.003..+0.069). The head and the rest of the face come from
# the flow model, 160 ms late (120 when the look-ahead is asked before the first frame). It costs about 50 %
# more CPU per session than "rules" (the recogniser and the flow model), which serves more sessions per core.
LIVE_GENERATOR = "learned"


class Session:
    """A live talking-face stream from one portrait. options: fields of AnimateOptions (size, fps, seed,
    motion_scale, gaze, emotion, ...); raises TalkfaceError for bad options or a portrait without a face.
    The generator defaults to LIVE_GENERATOR (the learned one, on phones recognised as the audio streams
    in); generator="rules" gives the rule generator, at the same latency and less CPU (see LIVE_GENERATOR).

    push_audio() and frames() may be called from two different threads (one producer, one consumer), and
    set_emotion() from any thread."""

    def __init__(self, portrait: str | Path | np.ndarray, **options):
        names = {f.name for f in dataclasses.fields(AnimateOptions)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TalkfaceError(f"unknown option {unknown[0]!r}; options are: {', '.join(sorted(names))}")
        self.options = AnimateOptions(**{"generator": LIVE_GENERATOR, **options})
        self._engine = Engine(portrait, self.options)
        self.payload = self._engine.payload
        self.fps = self.options.fps
        self.frame_size = self._engine.frame_size  # (width, height)
        self._lock = threading.Lock()
        self._closed = False
        # Called with (frame index, that frame's motion as a one-row MotionSequence) before each frame
        # renders, to return it adjusted (stream.avatar.LiveAvatar adds listening this way); None: as made.
        self.adjust: Callable[[int, MotionSequence], MotionSequence] | None = None
        self._lookahead: float | None = None  # set_lookahead()
        self.reset()

    def reset(self) -> None:
        """Start a new stream: time goes back to 0, pending frames are dropped."""
        with self._lock:
            self._check_open()
            # The generator reads this emotion whenever it returns frames; set_emotion() changes it.
            self._emotion = LiveEmotion(self.options.emotion, self.options.emotion_strength)
            self._motion = self._engine.audio_motion(
                dataclasses.replace(self.options, emotion=self._emotion), live=True
            )
            self._pending: deque[MotionSequence] = deque()
            self._row = 0  # next row of _pending[0] to render
            self._next_frame = 0  # index of the next frame frames() yields
            self._queued = 0  # frames made ready so far
            self._resampler: soxr.ResampleStream | None = None
            self._rate: int | None = None
            self._hush: tuple[int, int] | None = None  # (first frame hushed, first frame free of it)
            if self._lookahead is not None:
                self._motion.set_lookahead(self._lookahead)

    def set_lookahead(self, seconds: float) -> float:
        """Wait for `seconds` of audio past each frame's end before making the frame, where the generator
        can use it: the learned one makes each frame as soon as the audio one frame past it is in (40 ms) and
        reads better lips with two (80 ms; see LIVE_GENERATOR), the rules use 40 ms whatever is asked. For
        a feeder that pushes audio ahead of real time (talkface.stream.avatar.LiveAvatar pushes its queued
        voice one frame period ahead): the frames then come as early as before, with the better lips. It
        outlasts reset(); returns the look-ahead now in effect, in seconds."""
        with self._lock:
            self._check_open()
            self._lookahead = float(seconds)
            return self._motion.set_lookahead(self._lookahead)

    def push_audio(self, pcm: np.ndarray, sample_rate: int) -> None:
        """Add audio: float in [-1, 1] or int16, mono (N,) or multichannel (N, C), at sample_rate Hz
        (8-192 kHz, the same for the whole stream; reset() to change it), any chunk size."""
        x = _mono_float(pcm)
        rate = int(sample_rate)
        if not SAMPLE_RATE_RANGE[0] <= rate <= SAMPLE_RATE_RANGE[1]:
            raise TalkfaceError(
                f"sample rate {sample_rate} Hz is outside {SAMPLE_RATE_RANGE[0]}-{SAMPLE_RATE_RANGE[1]} Hz"
            )
        with self._lock:
            self._check_open()
            if self._rate is None:
                self._rate = rate
                if rate != SAMPLE_RATE:
                    self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, "float32", "HQ")
            elif rate != self._rate:
                raise TalkfaceError(f"sample rate changed from {self._rate} to {rate} Hz; reset() first")
            if self._resampler is not None:
                x = self._resampler.resample_chunk(x)
            self._queue(self._motion.push(x))

    def set_emotion(self, emotion: str, strength: float | None = None) -> None:
        """Change the emotion from now on: from the first frame whose motion is not made yet, the face eases
        from the emotion it shows to `emotion` ("neutral" or one of talkface.config.EMOTIONS) at `strength`
        (0-1.5; None: the session's emotion_strength) over EMOTION_TRANSITION_S (0.6 s), as a keyframe of an
        emotion track would; frames already made keep theirs. The change outlasts reset(): a new stream
        starts with that emotion. Raises TalkfaceError for an unknown emotion or a bad strength."""
        strength = None if strength is None else float(strength)
        with self._lock:
            self._check_open()
            self._emotion.change(self._queued / self.fps, emotion, strength)
            self.options = dataclasses.replace(
                self.options, emotion=EmotionTrack((EmotionKey(0.0, emotion, strength),))
            )

    def flush(self) -> None:
        """End of an utterance: push just enough silence that every frame of the audio pushed so far is
        ready. The stream goes on (the silence becomes part of its time line)."""
        with self._lock:
            self._check_open()
            heard = self._motion.samples_received / SAMPLE_RATE
            target = int(np.ceil(heard * self.fps - 1e-9))
            silence = np.zeros(FLUSH_STEP, np.float32)
            for _ in range(int(MAX_FLUSH_S * SAMPLE_RATE / FLUSH_STEP)):
                if self._queued >= target:
                    break
                self._queue(self._motion.push(silence))

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        """Render and yield (timestamp in seconds, RGB uint8 (H, W, 3)) for every frame ready now; returns
        when none is left (it never waits for audio). Frame j's timestamp is j / fps."""
        while True:
            with self._lock:
                self._check_open()
                if not self._pending:
                    return
                motion, row = self._pending[0], self._row
                self._row += 1
                if self._row >= len(motion):
                    self._pending.popleft()
                    self._row = 0
                index = self._next_frame
                self._next_frame += 1
                hush = self._hush
            if hush is not None:
                if index >= hush[1] + _hush_frames(self.fps):
                    with self._lock:
                        if self._hush == hush:
                            self._hush = None
                else:
                    motion, row = _hushed(motion[row], index, hush, self.fps), 0
            if self.adjust is not None:
                motion, row = self.adjust(index, motion[row]), 0
            yield index / self.fps, self._engine.frame(motion, row)

    def interrupt(self) -> int:
        """Barge-in: drop every frame made and not rendered yet, at once, and close the mouth. The next
        frame frames() yields shows the mouth a quarter open, the one after it shut (HUSH_S); it stays shut
        while frames still read audio pushed before the interrupt (the generator's look-ahead), so the voice
        cut off never moves the lips again. Blinks, gaze and head go on along the stream's time line, which
        goes on too: the next frame's timestamp is after the dropped ones' (a live feeder that pushes audio
        at the pace of real time, as talkface.stream.avatar does, has next to nothing to drop). Audio pushed
        afterwards (silence to listen, or the next reply) animates the face as usual. Returns the number of
        frames dropped."""
        with self._lock:
            self._check_open()
            dropped = self._queued - self._next_frame
            self._pending.clear()
            self._row = 0
            self._next_frame = self._queued
            # Frame j reads features up to (j + 1) / fps + look-ahead: the first frame whose whole window
            # lies after the audio pushed so far.
            heard = self._motion.samples_received / SAMPLE_RATE
            free = int(np.ceil(heard * self.fps)) + 1
            start = self._next_frame
            self._hush = (start, max(free, start + _hush_frames(self.fps)))
            return dropped

    def backlog(self) -> tuple[float, int]:
        """(timestamp in seconds of the next frame frames() yields, number of frames ready to render)."""
        with self._lock:
            return self._next_frame / self.fps, self._queued - self._next_frame

    def drop(self, n: int) -> int:
        """Skip the oldest n frames ready to render (at most all of them) without rendering them: a consumer
        that cannot render in real time stays live. frames() goes on after them (its timestamps keep the
        audio's clock, with a gap). Returns the number of frames skipped."""
        with self._lock:
            self._check_open()
            dropped = 0
            while dropped < n and self._pending:
                motion = self._pending[0]
                step = min(n - dropped, len(motion) - self._row)
                self._row += step
                dropped += step
                if self._row >= len(motion):
                    self._pending.popleft()
                    self._row = 0
            self._next_frame += dropped
            return dropped

    def close(self) -> None:
        """Free the session; any later call raises TalkfaceError."""
        with self._lock:
            self._closed = True
            self._pending.clear()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _queue(self, motion: MotionSequence) -> None:
        if len(motion):
            self._pending.append(motion)
            self._queued += len(motion)

    def _check_open(self) -> None:
        if self._closed:
            raise TalkfaceError("the session is closed")


def _hush_frames(fps: float) -> int:
    return max(1, round(HUSH_S * fps))


def _hushed(motion: MotionSequence, index: int, hush: tuple[int, int], fps: float) -> MotionSequence:
    """One frame of motion (frame `index` of the stream) with its mouth scaled towards closed: down from the
    first frame of `hush`, shut until its second, then up again, each over HUSH_S."""
    n = _hush_frames(fps)
    start, free = hush
    closing = max(0.0, 1.0 - (index - start + 1) / n) ** 2  # fast at first: a quarter open, then shut
    opening = min(1.0, max(0.0, (index - free + 1) / n))
    expression = motion.expression.copy()
    expression[:, MOUTH] *= max(closing, opening)
    return dataclasses.replace(motion, expression=expression)


def lead_frames(session, seconds: float) -> int:
    """Ask `session` (a Session or a process proxy of one) for `seconds` of look-ahead (set_lookahead) and
    return the frame periods of audio a feeder that paces its audio should push ahead of its clock, for the
    frames to come as early as with the generator's least look-ahead: what the look-ahead gained."""
    least = session.set_lookahead(0.0)
    gained = session.set_lookahead(seconds) - least
    return int(np.ceil(gained * session.fps - 1e-6))


def _mono_float(pcm: np.ndarray) -> np.ndarray:
    """PCM as mono float32 (N,): int16 scaled to [-1, 1], channels averaged, non-finite values zeroed."""
    x = np.asarray(pcm)
    if x.dtype == np.int16:
        x = x.astype(np.float32) / 32768.0
    elif x.dtype.kind != "f":
        raise TalkfaceError(f"audio must be float or int16 PCM, got {x.dtype}")
    if x.ndim == 2:
        x = x.mean(axis=1)
    elif x.ndim != 1:
        raise TalkfaceError(f"audio must be (samples,) or (samples, channels), got shape {x.shape}")
    return np.nan_to_num(x.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
