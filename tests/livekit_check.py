"""Run by tests/test_livekit.py in the LiveKit environment (.venv-livekit, requirements-livekit.lock), against
a `talkface serve` app that the test runs: LiveKit's own AvatarRunner, QueueAudioOutput, AVSynchronizer,
AudioSource and VideoSource, with talkface's TalkfaceVideoGenerator, up to the room: the room is a stand-in
that takes the published tracks (no LiveKit server can run here). Prints one JSON line of what it saw.

    python tests/livekit_check.py ws://127.0.0.1:PORT/ws SPEECH.s16   (mono int16 at 24 kHz)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import numpy as np
from livekit import rtc
from livekit.agents.voice.avatar import AvatarOptions, AvatarRunner, QueueAudioOutput

from talkface.integrations.livekit import LOOKAHEAD_S, SAMPLE_RATE, TalkfaceVideoGenerator

SIZE = 128


class Publication:
    def __init__(self, track):
        self.track = track

    async def wait_for_subscription(self) -> None:
        return None


class Participant:
    def __init__(self):
        self.published: list[str] = []

    async def publish_track(self, track, options):
        self.published.append(type(track).__name__)
        return Publication(track)


class Room(rtc.EventEmitter):
    """The room boundary: a connected room whose participant takes the tracks published."""

    def __init__(self):
        super().__init__()
        self.name = "test"
        self.local_participant = Participant()

    def isconnected(self) -> bool:
        return True


async def main(url: str, speech_path: str) -> dict:
    speech = np.fromfile(speech_path, np.int16)
    gen = TalkfaceVideoGenerator(
        url, options={"size": SIZE, "seed": 1}, sample_rate=SAMPLE_RATE, lookahead_s=LOOKAHEAD_S
    )
    await gen.start()
    audio = QueueAudioOutput(sample_rate=SAMPLE_RATE)
    room = Room()
    runner = AvatarRunner(
        room,
        audio_recv=audio,
        video_gen=gen,
        options=AvatarOptions(SIZE, SIZE, gen.fps, SAMPLE_RATE, 1),
        _lazy_publish=False,
    )
    pushed: list[tuple[float, str, float]] = []  # (time, kind, audio seconds) of what reached the sources
    push = runner.av_sync.push

    async def recording(frame, timestamp=None):
        kind = "video" if isinstance(frame, rtc.VideoFrame) else "audio"
        size = (frame.width, frame.height) if kind == "video" else None
        if size is not None and size != (SIZE, SIZE):
            raise AssertionError(f"frame of {size}")
        pushed.append((time.monotonic(), kind, frame.duration if kind == "audio" else 0.0))
        await push(frame, timestamp)

    runner.av_sync.push = recording
    finished: list[dict] = []
    audio.on(
        "playback_finished",
        lambda ev: finished.append({"position": ev.playback_position, "interrupted": ev.interrupted}),
    )
    await runner.start()

    async def say(samples: np.ndarray) -> None:  # as a TTS through AgentSession: 20-ms frames, at once
        step = SAMPLE_RATE // 50
        for i in range(0, len(samples), step):
            chunk = samples[i : i + step]
            await audio.capture_frame(rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, len(chunk)))
        audio.flush()

    t0 = time.monotonic()
    await asyncio.sleep(1.5)  # listening
    t_say = time.monotonic()
    await say(speech[: 3 * SAMPLE_RATE])
    for _ in range(100):
        if finished:
            break
        await asyncio.sleep(0.1)
    t_second = time.monotonic()
    await say(speech[3 * SAMPLE_RATE : 7 * SAMPLE_RATE])
    await asyncio.sleep(1.2)
    t_clear = time.monotonic()
    audio.clear_buffer()  # what AgentSession does when the user interrupts
    await asyncio.sleep(1.5)  # listening again
    t_end = time.monotonic()
    await gen.aclose()
    await runner.aclose()

    def between(a: float, b: float, kind: str) -> list[tuple[float, str, float]]:
        return [p for p in pushed if a <= p[0] < b and p[1] == kind]

    return {
        "published": room.local_participant.published,
        "fps_idle": len(between(t0 + 0.5, t_say, "video")) / (t_say - t0 - 0.5),
        "audio_idle_s": sum(p[2] for p in between(t0, t_say, "audio")),
        "video_total": len([p for p in pushed if p[1] == "video"]),
        "audio_first_s": sum(p[2] for p in between(t_say, t_second, "audio")),
        "audio_second_s": sum(p[2] for p in between(t_second, t_clear + 0.3, "audio")),
        "audio_after_clear_s": sum(p[2] for p in between(t_clear + 0.3, t_end, "audio")),
        "video_after_clear": len(between(t_clear + 0.3, t_end, "video")),
        "finished": finished,
        "first_voice_delay_s": min((p[0] for p in between(t_say, t_second, "audio")), default=t_say) - t_say,
        "lead_frames": gen._lead,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
