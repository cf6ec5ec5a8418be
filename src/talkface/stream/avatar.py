"""LiveAvatar: a Session driven by a clock, for transports that play what they get (WebRTC, Pipecat, LiveKit).

A WebSocket client sends audio and gets frames back as fast as they render. A WebRTC peer, a Pipecat transport
or a LiveKit room instead plays a video track and an audio track at the pace of real time, and a voice agent
sends its replies in bursts, faster than real time, with silences between them. LiveAvatar sits between:

    voice in (any rate, any pace) -> queue -> step(): one frame period of it (silence when the queue is empty)
    -> Session -> AvatarFrame(index, timestamp, image, the audio of that frame)

Call step() once per frame period (1 / fps) and play what it returns: each frame comes with the audio it shows
(the voice delayed by the generator's look-ahead: a player that plays both as they come keeps them in sync).
By default (lookahead_s=LOOKAHEAD_S) the voice goes to the session one frame period ahead of the clock, and
the learned generator reads better lips with its longer look-ahead, the frames coming as early as they would
without (lookahead_s=None). When no voice comes the face listens: silence goes in, the generator's blinks and
gaze shifts go on with the mouth shut, and motion.listening calms the head and adds small nods (listen=False:
the generator alone). interrupt() (barge-in) empties the queue, drops the frames not shown yet and closes the
mouth (Session.interrupt); the audio of the frames still in the look-ahead is silenced, so the voice stops at
once.

    avatar = LiveAvatar(talkface.Session("me.jpg", size=512))
    avatar.push_audio(tts_pcm, 24000)          # any time, from any thread
    while True:                                 # every 40 ms at 25 fps
        for f in avatar.step():
            show(f.image); play(f.audio)        # (H, W, 3) uint8 RGB; (n,) int16 at avatar.sample_rate
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
import soxr

from talkface.errors import TalkfaceError
from talkface.motion.contract import MotionSequence
from talkface.motion.listening import Listening
from talkface.stream.session import Session, _mono_float, lead_frames

SAMPLE_RATE = 48000  # Hz of the audio given back (WebRTC's Opus rate)
MAX_QUEUED_S = 120.0  # seconds of voice that may wait to be played (a long reply sent at once)
# The look-ahead a LiveAvatar asks of its session by default (Session.set_lookahead): the learned generator's
# lips are better read two frames ahead (80 ms) than one (40 ms, a Session's own, to keep a microphone's
# latency low): on the validation clips r 0.301 against 0.267 (paired +0.034, 95 % +0.003..+0.069;
# scripts/live_lipsync.py). The avatar pushes its audio ahead of the clock by the difference (one frame period
# of the queued voice, or of silence), so its frames come out as early as without, with the better lips. In
# headless Chromium over WebRTC it plays face and voice as closely together as without (scripts/av_sync.py,
# 256 px, 9 runs each: the voice as played out -47 ms against -62 without, medians; difference +16, 95 %
# -37..+53; run to run the lag spreads over 50-80 ms either way; an earlier -82 against -46 was 3 runs each).
LOOKAHEAD_S = 0.08


@dataclass(frozen=True)
class AvatarFrame:
    """One video frame and the audio it shows.

    index: frame number on the stream's time line (frame j shows the audio at j / fps).
    timestamp: index / fps, seconds.
    image: RGB uint8 (H, W, 3), watermarked.
    audio: int16 (n,), mono, at the avatar's sample_rate: the samples of [j / fps, (j + 1) / fps).
    voiced: whether that audio came from the voice queue (False: silence while listening).
    """

    index: int
    timestamp: float
    image: np.ndarray
    audio: np.ndarray
    voiced: bool


class LiveAvatar:
    """A Session fed one frame period of voice (or silence) per step(); see the module docstring.
    push_audio(), interrupt() and queued_seconds may be called from any thread, step() from one."""

    def __init__(
        self,
        session: Session,
        sample_rate: int = SAMPLE_RATE,
        max_queued_s: float = MAX_QUEUED_S,
        listen: bool = True,
        lookahead_s: float | None = LOOKAHEAD_S,
    ):
        """lookahead_s: ask the session to wait for that much audio past each frame (Session.set_lookahead)
        and push the audio ahead of the clock by what it gains (nothing for the rules); None: the session's
        own look-ahead."""
        self.session = session
        self.fps = session.fps
        self.sample_rate = int(sample_rate)
        self.max_queued_s = max_queued_s
        self._lock = threading.Lock()
        self._queue: deque[np.ndarray] = deque()  # voice waiting, float32 mono at sample_rate
        self._queued = 0  # samples in _queue
        self._resamplers: dict[int, soxr.ResampleStream] = {}
        # Audio pushed to the session, per frame, waiting for its frame: (index, samples, voiced).
        self._delay: deque[tuple[int, np.ndarray, bool]] = deque()
        self._steps = 0  # frame periods pushed to the session
        self._ticks = 0  # step() calls
        self._lead = 0  # frame periods pushed ahead of the clock (LOOKAHEAD_S)
        if lookahead_s is not None:
            self._lead = lead_frames(session, lookahead_s)
        self.voiced_frames = 0  # frames whose audio was voice, since the start
        if listen:
            self._listening = Listening(self.fps, session.options.seed)
            session.adjust = self._listen

    def _listen(self, index: int, motion: MotionSequence) -> MotionSequence:
        """Session.adjust: listening behaviour on the frames whose audio was silence."""
        with self._lock:
            voiced = next((v for j, _, v in self._delay if j == index), False)
        return self._listening(index, not voiced, motion)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the frames, pixels."""
        return self.session.frame_size

    def set_emotion(self, emotion: str, strength: float | None = None) -> None:
        """Session.set_emotion: the face eases to `emotion` from the next frame made."""
        self.session.set_emotion(emotion, strength)

    def close(self) -> None:
        """Close the session (any later call raises TalkfaceError)."""
        self.session.close()

    @property
    def queued_seconds(self) -> float:
        """Voice waiting to be played, in seconds."""
        return self._queued / self.sample_rate

    def push_audio(self, pcm: np.ndarray, sample_rate: int) -> None:
        """Queue voice to animate and play: float in [-1, 1] or int16, mono (N,) or (N, C), any rate and
        chunk size. Raises TalkfaceError beyond max_queued_s of voice waiting."""
        x = _mono_float(pcm)
        rate = int(sample_rate)
        if rate != self.sample_rate:
            if rate not in self._resamplers:
                self._resamplers[rate] = soxr.ResampleStream(rate, self.sample_rate, 1, "float32", "HQ")
            x = self._resamplers[rate].resample_chunk(x)
        with self._lock:
            if self._queued + len(x) > self.max_queued_s * self.sample_rate:
                raise TalkfaceError(
                    f"more than {self.max_queued_s:g} s of voice queued: send it in real time"
                )
            if len(x):
                self._queue.append(x)
                self._queued += len(x)

    def interrupt(self) -> float:
        """Barge-in: drop the voice queued and the frames not shown, silence the audio of the frames still to
        come out of the look-ahead, and close the mouth (Session.interrupt). Returns the seconds of voice
        dropped."""
        with self._lock:
            dropped = self._queued / self.sample_rate
            self._queue.clear()
            self._queued = 0
            for rate in list(self._resamplers):  # their tails belong to the reply cut off
                self._resamplers[rate] = soxr.ResampleStream(rate, self.sample_rate, 1, "float32", "HQ")
            self._delay = deque((j, np.zeros_like(x), False) for j, x, _ in self._delay)
            self.session.interrupt()
            return dropped

    def step(self) -> list[AvatarFrame]:
        """One frame period: take its samples of voice from the queue (silence for what is missing), give
        them to the session, and return the frames ready (one a step once the look-ahead is filled)."""
        with self._lock:
            self._ticks += 1
            rate = self.sample_rate
            while self._steps < self._ticks + self._lead:  # this period, and the lead's
                j = self._steps
                n = _samples_before(j + 1, self.fps, rate) - _samples_before(j, self.fps, rate)
                chunk, voiced = self._take(n), self._queued_before > 0
                self._steps += 1
                self._delay.append((j, chunk, voiced))
                self.session.push_audio(chunk, self.sample_rate)
        out = []
        for t, image in self.session.frames():
            index = round(t * self.fps)
            with self._lock:
                while self._delay and self._delay[0][0] < index:  # frames dropped by an interrupt
                    self._delay.popleft()
                _, audio, voiced = self._delay.popleft() if self._delay else (index, np.zeros(n), False)
            self.voiced_frames += voiced
            pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)
            out.append(AvatarFrame(index, t, image, pcm, voiced))
        return out

    def _take(self, n: int) -> np.ndarray:
        """n samples from the head of the queue, zeros after it runs out (lock held)."""
        self._queued_before = self._queued
        out = np.zeros(n, np.float32)
        filled = 0
        while filled < n and self._queue:
            head = self._queue[0]
            k = min(n - filled, len(head))
            out[filled : filled + k] = head[:k]
            filled += k
            if k == len(head):
                self._queue.popleft()
            else:
                self._queue[0] = head[k:]
        self._queued -= filled
        return out


def _samples_before(j: int, fps: float, rate: int) -> int:
    """Samples of the stream before frame j: frame j covers [j / fps, (j + 1) / fps), without drift."""
    return int(round(j * rate / fps))
