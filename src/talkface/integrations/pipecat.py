"""talkface as the face of a Pipecat bot: a FrameProcessor that turns the pipeline's TTS audio into video.

Put it after the TTS service and before the output transport, as Pipecat's video services (Simli, Tavus) go:

    face = TalkfaceVideoService("me.jpg", session_options={"size": 512})
    pipeline = Pipeline([transport.input(), stt, llm, tts, face, transport.output()])
    transport = SmallWebRTCTransport(connection, TransportParams(
        audio_out_enabled=True, video_out_enabled=True, video_out_is_live=True,
        video_out_width=512, video_out_height=512, video_out_framerate=25))

It takes the TTS audio (TTSAudioRawFrame), and on its own clock, once per frame period, pushes an
OutputImageRawFrame (the face) followed by a TTSAudioRawFrame with the audio that frame shows: the voice
comes out delayed by the motion generator's look-ahead (about 0.1 s) and aligned with the frames, so a
transport that plays both as they come keeps the lips in sync. While the bot is silent it pushes images only:
a face that listens (blinks, gaze, calmer head, small nods; talkface.stream.avatar). An InterruptionFrame
(the user barged in) drops the voice queued at once and closes the mouth within 80 ms; it goes on downstream
so the transport drops what it holds too. An EndFrame waits for the voice queued to be played out.

Needs pipecat-ai (requirements-agents.lock); talkface itself does not.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputImageRawFrame,
    StartFrame,
    TTSAudioRawFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup

from talkface.stream.avatar import LiveAvatar
from talkface.stream.session import Session

DRAIN_TIMEOUT_S = 300.0  # an EndFrame waits at most this long for queued voice to play


class TalkfaceVideoService(FrameProcessor):
    """TTS audio in, the talking face (OutputImageRawFrame) and the same audio, aligned, out.

    portrait: an image path or an RGB uint8 array; options: talkface.Session options (size, fps, seed,
    emotion, ...). sample_rate: of the audio pushed out (default: the pipeline's audio_out_sample_rate).
    The Session is built in setup() (a second or two: the portrait's face mesh and rig)."""

    def __init__(
        self,
        portrait: str | Path | np.ndarray,
        *,
        sample_rate: int | None = None,
        session_options: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._portrait = portrait
        self._options = dict(session_options or {})
        self._sample_rate = sample_rate
        self.avatar: LiveAvatar | None = None
        self._clock_task: asyncio.Task | None = None
        self.frames_out = 0  # images pushed
        self.voiced_out = 0  # of them, with voice

    async def setup(self, setup: FrameProcessorSetup):
        await super().setup(setup)
        rate = self._sample_rate or setup.audio_out_sample_rate
        session = await asyncio.to_thread(Session, self._portrait, **self._options)
        self.avatar = LiveAvatar(session, sample_rate=rate)

    async def cleanup(self):
        await self._stop()
        await super().cleanup()

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame) and direction == FrameDirection.DOWNSTREAM:
            pcm = np.frombuffer(frame.audio, np.int16).reshape(-1, frame.num_channels)
            self.avatar.push_audio(pcm, frame.sample_rate)  # played by the clock, with its frames
            return
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            if self._clock_task is None:  # frames go out once the StartFrame has gone before them
                self._clock_task = self.create_task(self._clock())
            return
        if isinstance(frame, InterruptionFrame):
            self.avatar.interrupt()
        elif isinstance(frame, EndFrame):
            await self._drain()
            await self._stop()
        elif isinstance(frame, CancelFrame):
            await self._stop()
        await self.push_frame(frame, direction)

    async def _clock(self) -> None:
        """One LiveAvatar step per frame period on the wall clock (late steps catch up, never race)."""
        avatar = self.avatar
        start, k = time.monotonic(), 0
        while True:
            frames = await asyncio.to_thread(avatar.step)
            for f in frames:
                height, width = f.image.shape[:2]
                image = OutputImageRawFrame(image=f.image.tobytes(), size=(width, height), format="RGB")
                await self.push_frame(image)
                self.frames_out += 1
                if f.voiced:
                    self.voiced_out += 1
                    await self.push_frame(
                        TTSAudioRawFrame(
                            audio=f.audio.tobytes(), sample_rate=avatar.sample_rate, num_channels=1
                        )
                    )
            k += 1
            delay = start + k / avatar.fps - time.monotonic()
            if delay < -1.0:  # far behind (a busy machine): go on from now
                start = time.monotonic() - k / avatar.fps
            await asyncio.sleep(max(0.0, delay))

    async def _drain(self) -> None:
        """Wait until the voice queued has been pushed out with its frames."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        lookahead = 0.2  # the generator's look-ahead and a frame or two
        while self.avatar is not None and self._clock_task is not None and time.monotonic() < deadline:
            if self.avatar.queued_seconds == 0:
                await asyncio.sleep(lookahead)
                return
            await asyncio.sleep(1 / self.avatar.fps)

    async def _stop(self) -> None:
        if self._clock_task is not None:
            await self.cancel_task(self._clock_task)
            self._clock_task = None
        if self.avatar is not None:
            self.avatar.session.close()
            self.avatar = None
