"""A Pipecat bot with talkface's face over WebRTC, with no cloud service: open the page, the face listens, and
every few seconds it says the bundled sentence (the place of an STT -> LLM -> TTS chain in a real bot).

    make test                      # (or: pip install --no-deps -r requirements-agents.lock into .venv)
    .venv/bin/python examples/pipecat_bot.py [--portrait me.jpg] [--size 512] [--port 7860]
    # open http://127.0.0.1:7860/ and press Connect

The pipeline is Pipecat's own: SmallWebRTCTransport (aiortc) in and out, a FixedReply processor standing in
for the LLM and TTS (it pushes TTSAudioRawFrames as a TTS service does), and talkface's
TalkfaceVideoService, which turns that audio into the face's frames and the same audio, aligned. A real bot
puts its STT, LLM and TTS where FixedReply is (Pipecat's services), and keeps the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

import numpy as np
from pipecat.frames.frames import Frame, TTSAudioRawFrame, TTSStartedFrame, TTSStoppedFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.task import PipelineParams
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pipecat.workers.runner import WorkerRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from talkface.assets import asset_path
from talkface.audio.load import load_audio
from talkface.integrations.pipecat import TalkfaceVideoService

log = logging.getLogger("pipecat_bot")
FPS = 25


class FixedReply(FrameProcessor):
    """Stands in for STT + LLM + TTS: says `speech` (16 kHz float samples) `delay` seconds after the client
    connects, then again every `every` seconds, as a TTS service pushes its audio (all at once)."""

    def __init__(self, speech: np.ndarray, delay: float = 1.5, every: float = 10.0):
        super().__init__()
        self._pcm = np.clip(np.round(speech * 32767), -32768, 32767).astype(np.int16)
        self._delay, self._every = delay, every
        self._task: asyncio.Task | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)  # (a real bot's LLM would read the user's words here)

    def start_talking(self) -> None:
        if self._task is None:
            self._task = self.create_task(self._talk())

    async def _talk(self) -> None:
        await asyncio.sleep(self._delay)
        while True:
            await self.push_frame(TTSStartedFrame())
            step = 16000 // 50  # 20-ms chunks
            for i in range(0, len(self._pcm), step):
                await self.push_frame(TTSAudioRawFrame(self._pcm[i : i + step].tobytes(), 16000, 1))
            await self.push_frame(TTSStoppedFrame())
            await asyncio.sleep(len(self._pcm) / 16000 + self._every)

    async def cleanup(self):
        if self._task is not None:
            await self.cancel_task(self._task)
        await super().cleanup()


async def run_bot(connection: SmallWebRTCConnection, portrait: str, size: int) -> None:
    """One bot per peer connection, until the client leaves."""
    transport = SmallWebRTCTransport(
        webrtc_connection=connection,
        params=TransportParams(
            audio_out_enabled=True,
            video_out_enabled=True,
            video_out_is_live=True,
            video_out_width=size,
            video_out_height=size,
            video_out_framerate=FPS,
        ),
    )
    reply = FixedReply(load_audio(asset_path("speech.flac")).samples)
    face = TalkfaceVideoService(portrait, session_options={"size": size, "fps": FPS})
    worker = PipelineWorker(
        Pipeline([transport.input(), reply, face, transport.output()]),
        params=PipelineParams(audio_out_sample_rate=48000),
        enable_rtvi=False,
    )

    @transport.event_handler("on_client_connected")
    async def on_connected(transport, client) -> None:
        reply.start_talking()

    @transport.event_handler("on_client_disconnected")
    async def on_disconnected(transport, client) -> None:
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


PAGE = """<!doctype html><meta charset="utf-8"><title>talkface + Pipecat</title>
<body style="font-family:sans-serif;background:#222;color:#eee;text-align:center">
<p><button id="go">Connect</button> <span id="state"></span></p>
<video id="face" autoplay playsinline style="width:512px;max-width:95vw;background:#000"></video>
<script>
const video = document.getElementById("face"), state = document.getElementById("state");
document.getElementById("go").onclick = async () => {
  const pc = new RTCPeerConnection();
  const stream = new MediaStream();
  video.srcObject = stream;
  pc.ontrack = (e) => stream.addTrack(e.track);
  pc.onconnectionstatechange = () => { state.textContent = pc.connectionState; };
  pc.addTransceiver("audio", {direction: "recvonly"});  // audio first, as SmallWebRTCTransport expects
  pc.addTransceiver("video", {direction: "recvonly"});
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === "complete") return done();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
  });
  const r = await fetch("/api/offer", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({sdp: pc.localDescription.sdp, type: pc.localDescription.type})});
  await pc.setRemoteDescription(await r.json());
};
</script>"""


def create_app(portrait: str, size: int) -> Starlette:
    bots: set[asyncio.Task] = set()

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def offer(request: Request) -> JSONResponse:
        body = await request.json()
        connection = SmallWebRTCConnection(ice_servers=[])  # no STUN: nothing asked of the internet
        await connection.initialize(sdp=body["sdp"], type=body["type"])
        bot = asyncio.create_task(run_bot(connection, portrait, size))
        bots.add(bot)
        bot.add_done_callback(bots.discard)
        answer = connection.get_answer()
        return JSONResponse({"sdp": answer["sdp"], "type": answer["type"]})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        for bot in list(bots):  # the server stops: so do the bots still running
            bot.cancel()
        await asyncio.gather(*bots, return_exceptions=True)

    routes = [Route("/", page), Route("/api/offer", offer, methods=["POST"])]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--portrait", default=str(asset_path("portrait.jpg")))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()
    import uvicorn

    print(f"open http://{args.host}:{args.port}/ and press Connect")
    uvicorn.run(create_app(args.portrait, args.size), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
