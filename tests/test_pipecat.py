"""The Pipecat integration: a real Pipecat pipeline (source -> TalkfaceVideoService -> sink) turns TTS audio
frames into face images and the same audio, aligned, and stops talking on an InterruptionFrame."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

import talkface
from talkface.audio.load import load_audio

pytest.importorskip("pipecat", reason="needs requirements-agents.lock (pipecat-ai)")

from pipecat.frames.frames import (  # noqa: E402
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputImageRawFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.task import PipelineParams  # noqa: E402
from pipecat.pipeline.worker import PipelineWorker  # noqa: E402
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402
from pipecat.workers.runner import WorkerRunner  # noqa: E402

from talkface.integrations.pipecat import TalkfaceVideoService  # noqa: E402

SIZE = 128
RATE = 24000  # the TTS's rate and the pipeline's output rate


class Sink(FrameProcessor):
    """The output transport's place: records what reaches it, with arrival times."""

    def __init__(self):
        super().__init__()
        self.got: list[tuple[float, Frame]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, OutputImageRawFrame | TTSAudioRawFrame | InterruptionFrame):
            self.got.append((time.monotonic(), frame))
        await self.push_frame(frame, direction)


def tts_frames(samples: np.ndarray) -> list[Frame]:
    """A TTS service's output: started, 40-ms chunks of int16 audio (far faster than real time), stopped."""
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int16)
    step = RATE // 25
    chunks = [TTSAudioRawFrame(pcm[i : i + step].tobytes(), RATE, 1) for i in range(0, len(pcm), step)]
    return [TTSStartedFrame(), *chunks, TTSStoppedFrame()]


def reply(seconds: float) -> np.ndarray:
    import soxr

    x = load_audio(talkface.assets.asset_path("speech.flac")).samples[: int(seconds * 16000)]
    return soxr.resample(x, 16000, RATE).astype(np.float32)


async def run(frames_then: list, seconds_idle: float = 0.0):
    service = TalkfaceVideoService(talkface.assets.asset_path("portrait.jpg"), session_options={"size": SIZE})
    sink = Sink()
    task = PipelineWorker(
        Pipeline([service, sink]), params=PipelineParams(audio_out_sample_rate=RATE), enable_rtvi=False
    )

    async def feed():
        while not any(isinstance(f, OutputImageRawFrame) for _, f in sink.got):  # the face is up
            await asyncio.sleep(0.02)
        for item in frames_then:
            if isinstance(item, float):
                await asyncio.sleep(item)
            else:
                await task.queue_frame(item)
        await asyncio.sleep(seconds_idle)
        await task.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(task)
    await asyncio.gather(runner.run(), feed())
    return service, sink.got


def _split(got):
    images = [(t, f) for t, f in got if isinstance(f, OutputImageRawFrame)]
    audio = [(t, f) for t, f in got if isinstance(f, TTSAudioRawFrame)]
    return images, audio


def test_tts_audio_becomes_a_talking_face_in_sync():
    voice = reply(2.0)
    service, got = asyncio.run(run([2.0, *tts_frames(voice)], seconds_idle=0.5))
    images, audio = _split(got)
    assert images and images[0][1].size == (SIZE, SIZE) and images[0][1].format == "RGB"
    # The face came before the reply too (listening: images, no audio), and all of the voice came out.
    first_voice = audio[0][0]
    assert sum(t < first_voice for t, _ in images) > 25
    out = np.concatenate([np.frombuffer(f.audio, np.int16) for _, f in audio])
    assert abs(len(out) - len(voice)) <= RATE // 25
    assert all(f.sample_rate == RATE for _, f in audio)
    # Aligned: every audio frame follows its image at once, one frame period of audio each.
    kinds = [type(f) for _, f in got if isinstance(f, OutputImageRawFrame | TTSAudioRawFrame)]
    for i, kind in enumerate(kinds):
        if kind is TTSAudioRawFrame:
            assert kinds[i - 1] is OutputImageRawFrame
    assert {len(f.audio) // 2 for _, f in audio} <= {RATE // 25}
    # Played at the pace of real time, although the TTS sent it all at once.
    span = audio[-1][0] - audio[0][0]
    assert span == pytest.approx(2.0, abs=0.4)
    # The mouth moved while the voice played.
    talking = [np.frombuffer(f.image, np.uint8).reshape(SIZE, SIZE, 3) for t, f in images if t >= first_voice]
    mouth = np.array([im[SIZE // 2 + SIZE // 8 :, SIZE // 3 : 2 * SIZE // 3].mean() for im in talking[:50]])
    assert mouth.std() > 0.3


def test_interruption_stops_the_voice_at_once():
    voice = reply(4.0)
    frames = [*tts_frames(voice)[:-1], 1.5, InterruptionFrame()]
    service, got = asyncio.run(run(frames, seconds_idle=1.0))
    images, audio = _split(got)
    t_interrupt = next(t for t, f in got if isinstance(f, InterruptionFrame))
    out_after = [f for t, f in audio if t > t_interrupt + 0.05]
    assert not out_after  # no voice after the barge-in
    played = sum(len(f.audio) // 2 for _, f in audio) / RATE
    assert 0.8 < played < 2.5  # about the 1.5 s before it, not the 4 s queued
    assert sum(t > t_interrupt for t, _ in images) > 10  # the face goes on (listening)


def test_the_example_bot_over_webrtc():
    """examples/pipecat_bot.py, its Pipecat pipeline and SmallWebRTCTransport, with a real aiortc peer."""
    import importlib.util
    from pathlib import Path

    pytest.importorskip("aiortc", reason="needs requirements.lock (aiortc)")
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from starlette.testclient import TestClient

    from talkface.stream import webrtc

    webrtc._install_ice_hosts("127.0.0.1")  # both peers on loopback
    path = Path(__file__).parent.parent / "examples" / "pipecat_bot.py"
    spec = importlib.util.spec_from_file_location("pipecat_bot", path)
    bot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bot)

    async def peer(client) -> dict:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("audio", direction="recvonly")  # audio first: SmallWebRTC's order
        pc.addTransceiver("video", direction="recvonly")
        got = {"video": [], "audio": []}

        async def read(track):
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                if track.kind == "video":
                    got["video"].append(frame.to_ndarray(format="rgb24"))
                else:
                    got["audio"].append(np.abs(frame.to_ndarray().astype(np.float64)).mean())

        readers = []
        pc.on("track", lambda track: readers.append(asyncio.ensure_future(read(track))))
        await pc.setLocalDescription(await pc.createOffer())
        body = {"sdp": pc.localDescription.sdp, "type": "offer"}
        r = await asyncio.to_thread(client.post, "/api/offer", json=body)
        assert r.status_code == 200, r.text
        await pc.setRemoteDescription(RTCSessionDescription(**r.json()))
        await asyncio.sleep(6.0)  # listening, then the fixed reply (1.5 s in, 2.8 s long)
        await pc.close()
        for task in readers:
            task.cancel()
        return got

    with TestClient(bot.create_app(str(talkface.assets.asset_path("portrait.jpg")), SIZE)) as client:
        assert "Connect" in client.get("/").text
        got = asyncio.run(peer(client))
    assert len(got["video"]) > 50 and got["video"][-1].shape == (SIZE, SIZE, 3)
    assert max(got["audio"]) > 300  # the reply's voice came through
