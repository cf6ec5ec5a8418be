"""talkface as the avatar of a LiveKit agent, in the shape of LiveKit Agents' avatar plugins.

    from talkface.integrations.livekit import AvatarSession

    async def entrypoint(ctx: JobContext):
        session = AgentSession(stt=..., llm=..., tts=...)
        avatar = AvatarSession(url="ws://127.0.0.1:8000/ws", portrait="bundled", options={"size": 512})
        await avatar.start(session, room=ctx.room)  # the agent's audio goes to talkface; the face and
        await session.start(agent=Agent(...), room=ctx.room)  # the voice, in sync, come from the agent

As with LiveKit's local avatar plugins, the avatar is published by the agent's own participant: AvatarSession
routes the agent's speech (AgentSession.output.audio) into a QueueAudioOutput, and LiveKit's AvatarRunner
publishes what TalkfaceVideoGenerator yields (rtc.VideoFrame, rtc.AudioFrame, AudioSegmentEnd) through its
AVSynchronizer. The face is rendered by `talkface serve` over its WebSocket, in another process: LiveKit
Agents needs protobuf >= 5.29 (its generated protocol code), mediapipe 0.10.21 (talkface's face mesh)
protobuf < 5, and the two cannot share a Python environment. This module imports neither mediapipe nor
talkface's engine, so it runs in the agent's environment (requirements-livekit.lock) with `talkface serve`
beside it.

The generator sends the agent's voice to the server at the pace of real time (silence when the agent is quiet,
so the face listens and never freezes), gets each frame back, and yields it with the audio it shows, so the
voice is delayed to match the frames (the generator's look-ahead, about 0.1 s, and the render). clear_buffer()
(the user barged in) drops the voice queued and sends the server an interrupt: the frames not sent yet are
dropped, and the mouth closes within 80 ms (Session.interrupt).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import struct
from collections import deque

import numpy as np
from livekit import rtc
from livekit.agents.voice.avatar import (
    AudioSegmentEnd,
    AvatarOptions,
    AvatarRunner,
    QueueAudioOutput,
    VideoGenerator,
)

log = logging.getLogger(__name__)

FRAME_HEADER = struct.Struct("<IId")  # as talkface.stream.server sends it: generation, index, timestamp
SAMPLE_RATE = 24000  # Hz of the voice sent and played back (TTS services' usual rate)
# The look-ahead asked of the server by default (its start message's "lookahead"): the learned generator reads
# better lips 80 ms ahead than 40; the voice then goes out the ready message's lead_frames ahead of real time,
# so the frames come as early as they would without (as talkface.stream.avatar.LiveAvatar does: see there).
LOOKAHEAD_S = 0.08


class TalkfaceVideoGenerator(VideoGenerator):
    """LiveKit's VideoGenerator on a `talkface serve` WebSocket session (see the module docstring).

    url: the server's WebSocket (ws://host:port/ws); portrait: "bundled" or an id from POST /portraits;
    options: the session's options (size, fps, seed, emotion, ...); sample_rate: of the audio frames pushed
    (AvatarOptions.audio_sample_rate; QueueAudioOutput resamples the agent's voice to it); lookahead_s: the
    look-ahead to ask of the server, the voice then sent ahead of real time by what it gains (None: the
    server's own)."""

    def __init__(
        self,
        url: str = "ws://127.0.0.1:8000/ws",
        portrait: str = "bundled",
        options: dict | None = None,
        sample_rate: int = SAMPLE_RATE,
        lookahead_s: float | None = LOOKAHEAD_S,
    ):
        self.url, self.portrait, self.options = url, portrait, dict(options or {})
        self.lookahead_s = lookahead_s
        self.sample_rate = sample_rate
        self.fps = 25.0
        self.width = self.height = 0
        self._ws = None
        self._voice: deque[np.ndarray] = deque()  # int16 chunks queued, and AudioSegmentEnd markers
        self._sent: dict[int, tuple[np.ndarray, bool, bool]] = {}  # index -> (audio, voiced, ends a segment)
        self._skip_below = 0  # frames below this index were dropped by an interrupt
        self._out: asyncio.Queue = asyncio.Queue(maxsize=50)
        self._tasks: list[asyncio.Task] = []
        self.frames_received = 0
        self._lead = 0  # frame periods of voice sent ahead of real time (the ready message's lead_frames)

    async def start(self) -> None:
        """Connect and start the session; returns once the server is ready (fps, size known)."""
        from websockets.asyncio.client import connect

        self._ws = await connect(self.url, max_size=2**24)
        start = {
            "type": "start",
            "portrait": self.portrait,
            "sample_rate": self.sample_rate,
            "format": "s16",
            "channels": 1,
            "options": self.options,
        }
        if self.lookahead_s is not None:
            start["lookahead"] = self.lookahead_s
        await self._ws.send(json.dumps(start))
        ready = json.loads(await self._ws.recv())
        if ready.get("type") != "ready":
            raise RuntimeError(f"talkface server: {ready.get('message', ready)}")
        self.fps, self.width, self.height = ready["fps"], ready["width"], ready["height"]
        self._lead = int(ready.get("lead_frames", 0))
        self._tasks = [asyncio.create_task(self._send_loop()), asyncio.create_task(self._receive_loop())]

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        if isinstance(frame, AudioSegmentEnd):
            self._voice.append(frame)
            return
        if frame.sample_rate != self.sample_rate:
            raise ValueError(f"audio at {frame.sample_rate} Hz; this avatar takes {self.sample_rate} Hz")
        pcm = np.frombuffer(frame.data, np.int16).reshape(-1, frame.num_channels)
        self._voice.append(pcm.mean(axis=1).astype(np.int16) if frame.num_channels > 1 else pcm[:, 0].copy())

    def clear_buffer(self) -> None:
        """Barge-in: drop the voice queued and not played, and have the server drop its frames."""
        self._voice.clear()
        self._sent = {j: (np.zeros_like(a), False, False) for j, (a, _, _) in self._sent.items()}
        while not self._out.empty():  # frames decoded and not yet taken by the runner
            self._out.get_nowait()
        if self._ws is not None:
            task = asyncio.ensure_future(self._ws.send(json.dumps({"type": "interrupt"})))
            self._tasks.append(task)

    def __aiter__(self):
        return self._frames()

    async def _frames(self):
        while True:
            item = await self._out.get()
            if item is None:
                return
            yield item

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        self._out.put_nowait(None)

    # -- the session ---------------------------------------------------------------------------------
    def _take(self, n: int) -> tuple[np.ndarray, bool, bool]:
        """n samples of voice (zeros for what is missing); whether any was voice; whether a segment ended."""
        out = np.zeros(n, np.int16)
        filled, voiced, ended = 0, False, False
        while self._voice and filled < n:
            head = self._voice[0]
            if isinstance(head, AudioSegmentEnd):
                self._voice.popleft()
                ended = True
                break
            k = min(n - filled, len(head))
            out[filled : filled + k] = head[:k]
            filled += k
            voiced = True
            if k == len(head):
                self._voice.popleft()
            else:
                self._voice[0] = head[k:]
        if self._voice and isinstance(self._voice[0], AudioSegmentEnd) and filled == n:
            self._voice.popleft()
            ended = True
        return out, voiced, ended and voiced

    async def _send_loop(self) -> None:
        """One frame period of voice (or silence: listening) to the server per frame period."""
        loop = asyncio.get_running_loop()
        start, j = loop.time(), 0
        while True:
            n = round((j + 1) * self.sample_rate / self.fps) - round(j * self.sample_rate / self.fps)
            audio, voiced, ended = self._take(n)
            self._sent[j] = (audio, voiced, ended)
            await self._ws.send(audio.tobytes())
            j += 1
            if j <= self._lead:  # the look-ahead's periods go at once, then one per period
                continue
            delay = start + (j - self._lead) / self.fps - loop.time()
            if delay < -1.0:  # far behind: go on from now
                start = loop.time() - (j - self._lead) / self.fps
            await asyncio.sleep(max(0.0, delay))

    async def _receive_loop(self) -> None:
        from PIL import Image

        async for message in self._ws:
            if isinstance(message, str):
                reply = json.loads(message)
                if reply.get("type") == "interrupted":
                    self._skip_below = reply["next_index"]
                    for j in [j for j in self._sent if j < self._skip_below]:
                        del self._sent[j]
                elif reply.get("type") in ("error", "busy"):
                    log.error("talkface server: %s", reply.get("message"))
                    break
                continue
            _, index, _ = FRAME_HEADER.unpack_from(message)
            audio, voiced, ended = self._sent.pop(index, (None, False, False))
            for j in [j for j in self._sent if j < index]:  # frames the server skipped
                del self._sent[j]
            if index < self._skip_below or audio is None:
                continue
            image = Image.open(io.BytesIO(message[FRAME_HEADER.size :])).convert("RGBA")
            frame = rtc.VideoFrame(image.width, image.height, rtc.VideoBufferType.RGBA, image.tobytes())
            await self._out.put(frame)
            self.frames_received += 1
            if voiced:
                await self._out.put(rtc.AudioFrame(audio.tobytes(), self.sample_rate, 1, len(audio)))
            if ended:
                await self._out.put(AudioSegmentEnd())
        await self._out.put(None)


class AvatarSession:
    """The plugin: start(agent_session, room) routes the agent's voice to talkface and publishes the face and
    the voice from the agent's participant (LiveKit's AvatarRunner), as LiveKit's local avatar plugins do."""

    def __init__(
        self,
        *,
        url: str = "ws://127.0.0.1:8000/ws",
        portrait: str = "bundled",
        options: dict | None = None,
        sample_rate: int = SAMPLE_RATE,
    ):
        self.generator = TalkfaceVideoGenerator(url, portrait, options, sample_rate)
        self.runner: AvatarRunner | None = None
        self.audio: QueueAudioOutput | None = None

    async def start(self, agent_session, room: rtc.Room) -> None:
        gen = self.generator
        await gen.start()
        self.audio = QueueAudioOutput(sample_rate=gen.sample_rate)
        agent_session.output.audio = self.audio
        options = AvatarOptions(
            video_width=gen.width,
            video_height=gen.height,
            video_fps=gen.fps,
            audio_sample_rate=gen.sample_rate,
            audio_channels=1,
        )
        self.runner = AvatarRunner(room, audio_recv=self.audio, video_gen=gen, options=options)
        await self.runner.start()

    async def aclose(self) -> None:
        await self.generator.aclose()
        if self.runner is not None:
            await self.runner.aclose()
