"""The live avatar server: a web page, portrait upload, and a WebSocket that turns audio into frames.

`create_app()` returns a Starlette ASGI app; `serve()` runs it with uvicorn (`talkface serve`).

Routes
    GET  /                   the page (package data in stream/static/, no external assets)
    GET  /health             {"status": "ok", "sessions": n, "max_sessions": m, "version": ...}
    GET  /portraits/bundled  the bundled portrait (JPEG)
    POST /portraits          upload a portrait: multipart/form-data with one file field `image`, or the raw
                             image as the body (Content-Type image/...). JPEG, PNG, WebP, BMP or TIFF, at most
                             `max_upload_bytes`, with a face. 201 {"id", "width", "height"}; errors are
                             {"error": "..."} with 400/411/413/415/422.
    WS   /ws                 one live session per connection (protocol below)

WebSocket protocol. Client -> server:
    text   {"type": "start", "portrait": "bundled" | <upload id>, "sample_rate": 48000,
            "format": "s16" | "f32", "channels": 1, "options": {"size": 512, "seed": 0, ...}}
           (once, first; options are fields of talkface.config.AnimateOptions, see START_OPTIONS; "emotion"
           is a name or a track as `talkface animate --emotion` takes it, e.g. "neutral@0,happy:0.8@2.5")
    binary PCM audio after "ready": little-endian int16 or float32, interleaved when channels > 1,
           chunks of any length up to `max_chunk_seconds`
    text   {"type": "flush"}   end of an utterance: the frames of all audio sent so far are rendered
    text   {"type": "emotion", "emotion": "sad", "strength": 0.8}   from the next frame not made yet, the face
           eases to that emotion ("neutral" or one of talkface.config.EMOTIONS) over 0.6 s; strength 0-1.5 is
           optional (default: the start options' emotion_strength). It outlasts a reset (Session.set_emotion)
    text   {"type": "reset"}   start a new stream: the time base goes back to 0 and `generation` goes up
    text   {"type": "ping"}    -> {"type": "pong"}
Server -> client:
    text   {"type": "ready", "fps", "width", "height", "generation": 0}
    binary a frame: 16-byte header "<IId" (generation uint32, frame index uint32, timestamp float64 in
           seconds on the audio's time base: frame j shows the audio at j / fps) then a JPEG
    text   {"type": "flushed", "generation": g}   every frame of the audio before the flush has been sent
    text   {"type": "busy" | "error", "message": "..."}, then the server closes the socket
           (busy: 1013 try again later; idle: 1001; bad message: 1008; too big: 1009; server fault: 1011)

Rendering and JPEG encoding run on one thread per connection (Session.frames() releases the GIL in the
rasterizer), portrait analysis on another; the event loop moves bytes and calls Session.push_audio()
(features and motion, about 1 ms per 20 ms of audio). Every frame is watermarked by
the Session. A client error ends that connection only; nothing a client sends can stop the server.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import io
import json
import logging
import socket
import struct
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import anyio
import cv2
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from talkface import __version__
from talkface.assets import asset_path
from talkface.config import SAMPLE_RATE_RANGE, AnimateOptions, ServerSettings
from talkface.errors import TalkfaceError

log = logging.getLogger(__name__)

FRAME_HEADER = struct.Struct("<IId")  # generation, frame index, timestamp (s): 16 bytes before the JPEG
BUNDLED = "bundled"  # portrait id of the shipped sample portrait
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")  # as PIL names them
SAMPLE_FORMATS = {"s16": np.dtype("<i2"), "f32": np.dtype("<f4")}
# AnimateOptions fields a client may not set: crf (no encoder here), full_frame (frames up to 1920 px would
# not stream in real time), generator (the loudness baseline is for evaluation only) and motion_model (a path
# on the server's disk is not a client's to choose).
NOT_LIVE = {"crf", "full_frame", "generator", "motion_model"}
# The others, with the type a client sends each as (a JSON list for a tuple, a string for what the command
# line takes as text: the emotion track).
START_OPTIONS = {
    f.name: f.metadata["parse"] if f.default is None or f.metadata["parse"] is str else type(f.default)
    for f in dataclasses.fields(AnimateOptions)
    if f.name not in NOT_LIVE
}

# WebSocket close codes (RFC 6455).
CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_INTERNAL, CLOSE_TRY_LATER = (
    1000,
    1001,
    1008,
    1009,
    1011,
    1013,
)


class ClientError(Exception):
    """A client sent something it must not: the message goes back to it, then the socket closes."""

    def __init__(self, message: str, code: int = CLOSE_POLICY):
        super().__init__(message)
        self.code = code


def static_dir() -> Path:
    """The page's files (package data)."""
    return Path(str(files("talkface.stream") / "static"))


def _default_session_factory():
    from talkface.stream.session import Session

    return Session


class _ServerState:
    def __init__(self, settings: ServerSettings, session_factory: Callable | None):
        self.settings = settings
        self.session_factory = session_factory
        self.active = 0
        self.portraits: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        self.face_check = asyncio.Semaphore(1)  # face detection on uploads: one at a time (2 cores)

    def factory(self) -> Callable:
        if self.session_factory is None:
            self.session_factory = _default_session_factory()
        return self.session_factory

    def portrait(self, key: str) -> np.ndarray | Path:
        if key == BUNDLED:
            return asset_path("portrait.jpg")
        if key not in self.portraits:
            raise ClientError(f"unknown portrait {key!r}: upload it first (POST /portraits) or use 'bundled'")
        self.portraits.move_to_end(key)
        return self.portraits[key]

    def add_portrait(self, image: np.ndarray) -> str:
        key = uuid.uuid4().hex
        self.portraits[key] = image
        while len(self.portraits) > self.settings.max_portraits:
            self.portraits.popitem(last=False)
        return key


def create_app(settings: ServerSettings | None = None, session_factory: Callable | None = None) -> Starlette:
    """The ASGI app. session_factory(portrait, **options) makes a streaming session (default
    talkface.Session); tests may pass another with the same interface."""
    settings = settings or ServerSettings()
    state = _ServerState(settings, session_factory)
    static = static_dir()

    async def page(request: Request) -> Response:
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"), headers=_PAGE_HEADERS)

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "sessions": state.active,
                "max_sessions": settings.max_sessions,
            }
        )

    async def bundled_portrait(request: Request) -> Response:
        return FileResponse(asset_path("portrait.jpg"), media_type="image/jpeg")

    async def upload(request: Request) -> Response:
        try:
            data = await _read_upload(request, settings)
            image = await asyncio.to_thread(_decode_portrait, data, settings)
            async with state.face_check:
                await asyncio.to_thread(_check_face, image)
        except _HTTPError as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)
        key = state.add_portrait(image)
        log.info("portrait %s uploaded (%dx%d)", key, image.shape[1], image.shape[0])
        return JSONResponse({"id": key, "width": image.shape[1], "height": image.shape[0]}, status_code=201)

    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        if state.active >= settings.max_sessions:
            await _send_and_close(
                websocket,
                {
                    "type": "busy",
                    "message": f"server busy: {state.active} live sessions already (the limit is "
                    f"{settings.max_sessions}); try again later",
                },
                CLOSE_TRY_LATER,
            )
            return
        state.active += 1
        try:
            await _Connection(websocket, state).run()
        finally:
            state.active -= 1

    routes = [
        Route("/", page),
        Route("/health", health),
        Route("/portraits/bundled", bundled_portrait),
        Route("/portraits", upload, methods=["POST"]),
        WebSocketRoute("/ws", live),
        Mount("/static", StaticFiles(directory=static), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.server = state
    return app


# The page loads nothing from elsewhere; say so to the browser too.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; "
        "style-src 'self'; script-src 'self'"
    ),
    "Cache-Control": "no-store",
}


class _HTTPError(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


async def _read_upload(request: Request, settings: ServerSettings) -> bytes:
    """The uploaded image's bytes, refusing oversized bodies before reading them."""
    limit = settings.max_upload_bytes
    length = request.headers.get("content-length")
    if length is None:
        raise _HTTPError("Content-Length required", 411)
    if not length.isdigit():
        raise _HTTPError("bad Content-Length", 400)
    if int(length) > limit + 64 * 1024:  # multipart framing adds a little
        raise _HTTPError(f"upload too large: {int(length)} bytes (the limit is {limit // 1048576} MB)", 413)
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        from starlette.formparsers import MultiPartException

        try:
            async with request.form(max_files=1, max_fields=4, max_part_size=limit) as form:
                item = form.get("image")
                if item is None or isinstance(item, str):
                    raise _HTTPError("no file in the form field 'image'", 400)
                data = await item.read()
        except MultiPartException as e:
            raise _HTTPError(f"bad upload: {e}", 400) from None
    elif ctype.startswith("image/") or ctype == "application/octet-stream":
        data = await request.body()
    else:
        raise _HTTPError(
            "send the image as multipart/form-data (field 'image') or as the body (Content-Type image/...)",
            415,
        )
    if len(data) > limit:
        raise _HTTPError(f"upload too large: {len(data)} bytes (the limit is {limit // 1048576} MB)", 413)
    if not data:
        raise _HTTPError("empty upload", 400)
    return data


def _decode_portrait(data: bytes, settings: ServerSettings) -> np.ndarray:
    """Check the format and size from the header (before decoding anything large), then decode to RGB uint8
    (H, W, 3) with the CLI's reader, downscaled to max_portrait_side."""
    from PIL import Image

    from talkface.face.image import load_image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL's decompression-bomb warning: we check the size ourselves
        try:
            with Image.open(io.BytesIO(data)) as im:
                kind, (w, h) = im.format, im.size
        except Exception:
            kind, w, h = None, 0, 0
    if kind not in IMAGE_FORMATS:
        raise _HTTPError("not a supported image: send a JPEG, PNG, WebP, BMP or TIFF file", 415)
    if w * h > settings.max_upload_pixels:
        raise _HTTPError(
            f"image too large: {w}x{h} (the limit is {settings.max_upload_pixels / 1e6:g} megapixels)", 413
        )
    with tempfile.NamedTemporaryFile(suffix=".img") as f:
        f.write(data)
        f.flush()
        try:
            image = load_image(f.name)
        except TalkfaceError as e:
            raise _HTTPError(str(e).replace(f.name, "the image"), 422) from None
    side = max(image.shape[:2])
    if side > settings.max_portrait_side:
        s = settings.max_portrait_side / side
        size = (round(image.shape[1] * s), round(image.shape[0] * s))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


def _check_face(image: np.ndarray) -> None:
    from talkface.face.landmarks import detect_face

    try:
        detect_face(image, "the uploaded image")
    except TalkfaceError as e:
        raise _HTTPError(str(e), 422) from None


async def _send_and_close(websocket: WebSocket, message: dict, code: int) -> None:
    """Best effort: the client may already be gone."""
    with contextlib.suppress(Exception):
        if websocket.client_state == WebSocketState.CONNECTED:
            await websocket.send_text(json.dumps(message))
            await websocket.close(code=code, reason=message.get("message", "")[:120])


def _parse_start(message: dict, state: _ServerState) -> tuple[object, dict, int, np.dtype, int]:
    """(portrait, options, sample_rate, sample dtype, channels) from a start message."""
    settings = state.settings
    portrait = state.portrait(str(message.get("portrait", BUNDLED)))
    rate = message.get("sample_rate", 16000)
    lo, hi = SAMPLE_RATE_RANGE
    if not isinstance(rate, int) or isinstance(rate, bool) or not lo <= rate <= hi:
        raise ClientError(f"sample_rate must be an integer between {lo} and {hi}, got {rate!r}")
    fmt = message.get("format", "f32")
    if fmt not in SAMPLE_FORMATS:
        raise ClientError(f"format must be one of {', '.join(SAMPLE_FORMATS)}, got {fmt!r}")
    channels = message.get("channels", 1)
    if channels not in (1, 2) or isinstance(channels, bool):
        raise ClientError(f"channels must be 1 or 2, got {channels!r}")
    raw = message.get("options", {})
    if not isinstance(raw, dict):
        raise ClientError("options must be an object")
    options = {}
    for key, value in raw.items():
        kind = START_OPTIONS.get(key)
        if kind is None:
            raise ClientError(f"unknown option {key!r} (accepted: {', '.join(START_OPTIONS)})")
        value = _coerce(kind, value)
        if value is None:
            raise ClientError(f"option {key!r} has a bad value {raw[key]!r}")
        options[key] = value
    if options.get("size", AnimateOptions.size) > settings.max_size:
        raise ClientError(f"size {options['size']} is above this server's limit of {settings.max_size}")
    if options.get("fps", AnimateOptions.fps) > settings.max_fps:
        raise ClientError(f"fps {options['fps']} is above this server's limit of {settings.max_fps:g}")
    return portrait, options, rate, SAMPLE_FORMATS[fmt], channels


def _coerce(kind: type, value):
    """A JSON value as an option of type `kind`, or None if it is not one (no strings for numbers)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is tuple:
        ok = isinstance(value, list) and len(value) == 2 and all(_coerce(float, v) is not None for v in value)
        return tuple(float(v) for v in value) if ok else None
    if kind is int:
        return int(value) if number and float(value).is_integer() else None
    if kind is float:
        return float(value) if number and np.isfinite(value) else None
    return value if isinstance(value, kind) else None


class _FramePump:
    """Renders on its own thread: whenever audio arrives it drains session.frames(), JPEG-encodes each frame
    and hands it to the event loop. A lock held around each frame makes reset() and the generation number
    change together, so no frame is tagged with the wrong stream."""

    def __init__(self, session, post: Callable[[object], None], quality: int):
        self.session = session
        self.post = post  # thread-safe: puts bytes (a frame) or a dict (a message) on the send queue
        self.quality = quality
        self.generation = 0
        self.flush_requested = 0  # flushes done on the session
        self.lock = threading.Lock()
        self._flush_reported = 0
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="talkface-render", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        params = [cv2.IMWRITE_JPEG_QUALITY, self.quality]
        fps = self.session.fps
        try:
            while not self._stop:
                self._wake.wait()
                self._wake.clear()
                flushes = self.flush_requested  # read before frames(): that call sees the flush complete
                frames = self.session.frames()
                while not self._stop:
                    with self.lock:
                        generation = self.generation
                        item = next(frames, None)
                    if item is None:
                        break
                    ts, frame = item
                    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)
                    if not ok:
                        raise RuntimeError("JPEG encoding failed")
                    index = round(ts * fps)
                    self.post(FRAME_HEADER.pack(generation, index, ts) + jpeg.tobytes())
                if flushes > self._flush_reported and not self._stop:
                    self._flush_reported = flushes
                    self.post({"type": "flushed", "generation": self.generation})
        except Exception as e:  # an engine fault: tell the client and end this connection only
            log.exception("rendering failed")
            self.post(RuntimeError(f"rendering failed: {type(e).__name__}: {e}"))


class _Connection:
    """One WebSocket client: its session, render thread, audio thread and send queue."""

    def __init__(self, websocket: WebSocket, state: _ServerState):
        self.ws = websocket
        self.state = state
        self.settings = state.settings
        self.session = None
        self.pump: _FramePump | None = None
        self.feeder = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="talkface-audio")
        self.loop = asyncio.get_running_loop()
        self.outbox: collections.deque = collections.deque()
        self.has_mail = asyncio.Event()
        self.frames_queued = 0
        self.frames_dropped = 0
        self.rate = 16000
        self.dtype = SAMPLE_FORMATS["f32"]
        self.channels = 1
        self.stream_samples = 0  # per channel, since the last reset
        self.closed = False

    # -- sending -------------------------------------------------------------------------------------
    def post(self, item) -> None:
        """From any thread. Dropped once the connection is over (its loop may be gone)."""
        if self.closed:
            return
        with contextlib.suppress(RuntimeError):  # the event loop closed under us
            self.loop.call_soon_threadsafe(self._enqueue, item)

    def _enqueue(self, item) -> None:
        self.outbox.append(item)
        if isinstance(item, bytes):
            self.frames_queued += 1
            fps = self.session.fps if self.session else AnimateOptions.fps
            limit = max(1, int(self.settings.max_queued_seconds * fps))
            if self.frames_queued > limit:  # a slow client: drop its oldest frame, never grow without bound
                for i, old in enumerate(self.outbox):
                    if isinstance(old, bytes):
                        del self.outbox[i]
                        self.frames_queued -= 1
                        self.frames_dropped += 1
                        break
        self.has_mail.set()

    async def _sender(self) -> None:
        while True:
            await self.has_mail.wait()
            self.has_mail.clear()
            while self.outbox:
                item = self.outbox.popleft()
                if isinstance(item, bytes):
                    self.frames_queued -= 1
                    await self.ws.send_bytes(item)
                elif isinstance(item, dict):
                    await self.ws.send_text(json.dumps(item))
                else:  # an exception from the render thread
                    raise item

    # -- receiving -----------------------------------------------------------------------------------
    async def run(self) -> None:
        sender = asyncio.create_task(self._sender())
        receiver = asyncio.create_task(self._receive_loop())
        try:
            done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended the connection
        except (WebSocketDisconnect, ConnectionError):
            pass
        except ClientError as e:
            log.info("client error: %s", e)
            await _send_and_close(self.ws, {"type": "error", "message": str(e)}, e.code)
        except Exception as e:
            log.exception("live session failed")
            await _send_and_close(self.ws, {"type": "error", "message": f"server error: {e}"}, CLOSE_INTERNAL)
        finally:
            self._close_session()
            # Shielded: a cancellation of this connection (server shutdown, a test client's teardown) must
            # not interrupt the teardown of its own tasks halfway; it is delivered again right after.
            with anyio.CancelScope(shield=True):
                for task in (sender, receiver):
                    task.cancel()
                await asyncio.gather(sender, receiver, return_exceptions=True)
        if self.ws.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.ws.close(CLOSE_NORMAL)

    async def _receive_loop(self) -> None:
        while True:
            try:
                message = await asyncio.wait_for(self.ws.receive(), self.settings.idle_timeout)
            except TimeoutError:
                raise ClientError(
                    f"idle for {self.settings.idle_timeout:g} s: closing", CLOSE_GOING_AWAY
                ) from None
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await self._on_audio(message["bytes"])
            elif message.get("text") is not None:
                await self._on_text(message["text"])

    async def _on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            raise ClientError('messages must be JSON objects like {"type": "start", ...}') from None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            self._enqueue({"type": "pong"})
        elif kind == "start":
            await self._start(message)
        elif kind in ("flush", "reset"):
            if self.session is None:
                raise ClientError(f"{kind} before start")
            if kind == "reset":
                self.stream_samples = 0
            await self._feed(self._flush if kind == "flush" else self._reset)
        elif kind == "emotion":
            if self.session is None:
                raise ClientError("emotion before start")
            emotion, strength = message.get("emotion"), message.get("strength")
            if not isinstance(emotion, str) or (strength is not None and _coerce(float, strength) is None):
                raise ClientError(
                    'an emotion message is {"type": "emotion", "emotion": "sad", "strength": 0.8} '
                    "(strength optional: a number)"
                )
            await self._feed(self.session.set_emotion, emotion, strength, inline=True)
        else:
            raise ClientError(f"unknown message type {kind!r} (start, flush, reset, emotion, ping)")

    async def _start(self, message: dict) -> None:
        if self.session is not None:
            raise ClientError("start sent twice: one session per connection")
        portrait, options, self.rate, self.dtype, self.channels = _parse_start(message, self.state)
        factory = self.state.factory()
        try:
            self.session = await asyncio.wait_for(
                self.loop.run_in_executor(self.feeder, lambda: factory(portrait, **options)),
                self.settings.start_timeout,
            )
        except TalkfaceError as e:
            raise ClientError(str(e)) from None
        self.pump = _FramePump(self.session, self.post, self.settings.jpeg_quality)
        width, height = self.session.frame_size
        log.info("session started: %dx%d at %g fps, audio %d Hz", width, height, self.session.fps, self.rate)
        self._enqueue(
            {"type": "ready", "fps": self.session.fps, "width": width, "height": height, "generation": 0}
        )

    async def _on_audio(self, data: bytes) -> None:
        if self.session is None:
            raise ClientError('audio before start: send {"type": "start", ...} first')
        frame_bytes = self.dtype.itemsize * self.channels
        if len(data) % frame_bytes:
            raise ClientError(
                f"audio message of {len(data)} bytes is not a whole number of {self.channels}-channel "
                f"{self.dtype.itemsize * 8}-bit samples"
            )
        n = len(data) // frame_bytes
        if n > self.settings.max_chunk_seconds * self.rate:
            raise ClientError(
                f"audio message too long: {n / self.rate:.2f} s "
                f"(at most {self.settings.max_chunk_seconds:g} s)",
                CLOSE_TOO_BIG,
            )
        self.stream_samples += n
        if self.stream_samples > self.settings.max_stream_seconds * self.rate:
            raise ClientError(
                f"stream longer than {self.settings.max_stream_seconds:g} s: send a reset to start a new one"
            )
        pcm = np.frombuffer(data, self.dtype).astype(self.dtype.newbyteorder("="))
        if self.dtype.kind == "f" and not np.isfinite(pcm).all():
            raise ClientError("audio contains NaN or infinite samples")
        if self.channels > 1:
            pcm = pcm.reshape(n, self.channels)
        await self._feed(self.session.push_audio, pcm, self.rate, inline=True)

    async def _feed(self, fn: Callable, *args, inline: bool = False) -> None:
        """Run a session call, in message order, then let the render thread look for frames. inline: on the
        event loop (push_audio: about 1 ms per 20 ms chunk; a hop to a thread for every chunk cost the server
        a fifth of its CPU), else on the session's own thread (flush, reset: rarer and longer)."""
        try:
            if inline:
                fn(*args)
            else:
                await self.loop.run_in_executor(self.feeder, fn, *args)
        except TalkfaceError as e:
            raise ClientError(str(e)) from None
        self.pump.wake()

    def _flush(self) -> None:
        self.session.flush()
        self.pump.flush_requested += 1

    def _reset(self) -> None:
        with self.pump.lock:
            self.session.reset()
            self.pump.generation += 1

    def _close_session(self) -> None:
        """Stop the render thread, then close the session, off the event loop."""
        self.closed = True
        pump, session = self.pump, self.session

        def close() -> None:
            if pump is not None:
                pump.stop()
                pump.join(timeout=30)
            if session is not None:
                session.close()

        self.feeder.submit(close)
        self.feeder.shutdown(wait=False)
        if self.frames_dropped:
            log.info("session closed; %d frames dropped for a slow client", self.frames_dropped)


def check_port(host: str, port: int) -> None:
    """Raise TalkfaceError now, in one line, if host:port cannot be listened on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise TalkfaceError(f"cannot resolve host {host!r}: {e.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            raise TalkfaceError(f"cannot listen on {host}:{port}: {e.strerror}") from None


def serve(settings: ServerSettings | None = None) -> None:
    """Run the server on settings.host:settings.port until interrupted (blocking)."""
    import uvicorn

    settings = settings or ServerSettings()
    host, port = settings.host, settings.port
    check_port(host, port)
    app = create_app(settings)
    shown = f"[{host}]" if ":" in host else host
    log.warning("live server on http://%s:%d/ (up to %d sessions)", shown, port, settings.max_sessions)
    t = time.perf_counter()
    _warm_up(app)
    log.info("warmed up in %.1f s", time.perf_counter() - t)
    # 2-channel float32 at the top rate
    max_message = int(settings.max_chunk_seconds * SAMPLE_RATE_RANGE[1] * 8) + 1024
    uvicorn.run(
        app, host=host, port=port, ws="websockets-sansio", ws_max_size=max_message, log_level="warning"
    )


def _warm_up(app: Starlette) -> None:
    """Build one session on the bundled portrait so the first client does not wait for JIT compilation."""
    state: _ServerState = app.state.server
    try:
        with state.factory()(asset_path("portrait.jpg"), size=128) as session:
            session.push_audio(np.zeros(8000, np.float32), 16000)
            session.flush()
            for _ in session.frames():
                pass
    except Exception:  # the server still works without a warm-up; the first session is just slower
        log.exception("warm-up failed")
