"""The live avatar server: a web page, portrait upload, and a WebSocket that turns audio into frames.

`create_app()` returns a Starlette ASGI app; `serve()` runs it with uvicorn (`talkface serve`).

Routes
    GET  /                   the page (package data in stream/static/, no external assets)
    GET  /health             {"status": "ok", "sessions": n, "max_sessions": m, "version": ...}
    GET  /portraits/bundled  the bundled portrait (JPEG)
    POST /portraits          upload a portrait: multipart/form-data with one file field `image`, or the raw
                             image as the body (Content-Type image/...). JPEG, PNG, WebP, BMP or TIFF, at most
                             `max_upload_bytes`, `max_upload_pixels` and `max_decode_bytes` (reckoned from the
                             header, before decoding), with a face; the whole body within `upload_timeout`.
                             201 {"id", "width", "height"}; errors are {"error": "..."} with
                             400/403 (origin)/408/411/413/415/422.
    WS   /ws                 one live session per connection (protocol below)
    GET  /avatar/head.glb    the glTF head at rest (?portrait=bundled: with the bundled portrait's face and
                             texture) for the 3D avatar page /static/avatar3d.html, driven by "motion" frames
    POST /webrtc/offer       a WebRTC peer: the face as a video track and the voice as an audio track, in sync
                             (talkface.stream.webrtc: the offer's JSON, the data channel's messages)

Pages of other origins are refused (403 / the handshake refused): a browser page may use /ws and POST
/portraits only if it comes from this server, from localhost, or from `allowed_origins`; a client that sends
no Origin header (a script, not a browser) is let through.

WebSocket protocol. Client -> server:
    text   {"type": "start", "portrait": "bundled" | <upload id>, "sample_rate": 48000,
            "format": "s16" | "f32", "channels": 1, "options": {"size": 512, "seed": 0, ...}}
           (once, first, within `start_deadline`; it takes one of the `max_sessions` slots, or gets "busy";
           options are fields of talkface.config.AnimateOptions, see START_OPTIONS; "emotion"
           is a name or a track as `talkface animate --emotion` takes it, e.g. "neutral@0,happy:0.8@2.5";
           "generator" is "learned" (the default: phones recognised live) or "rules" (less CPU))
           optional "motion": "arkit" adds a {"type": "motion", ...} message of ARKit blendshape weights, head
           and eye rotation per frame, before its JPEG, and "video": false sends those instead of the JPEGs
           (talkface.export.live; the ready message then lists the 52 names as "blendshapes");
           optional "lookahead": seconds (0-0.2) of audio past each frame's end the generator waits for
           where it can use it (Session.set_lookahead: the learned one reads better lips at 0.08 than at its
           default 0.04); the ready message's "lead_frames" says how many frame periods ahead of real time
           to send the audio for the frames to come as early as without it (a client that paces its audio)
    binary PCM audio after "ready": little-endian int16 or float32, interleaved when channels > 1,
           chunks of any length up to `max_chunk_seconds`. Audio sent more than `max_lead_seconds` ahead of
           real time is read at the pace of real time (the server stops reading the socket meanwhile)
    text   {"type": "flush"}   end of an utterance: the frames of all audio sent so far are rendered
    text   {"type": "emotion", "emotion": "sad", "strength": 0.8}   from the next frame not made yet, the face
           eases to that emotion ("neutral" or one of talkface.config.EMOTIONS) over 0.6 s; strength 0-1.5 is
           optional (default: the start options' emotion_strength). It outlasts a reset (Session.set_emotion)
    text   {"type": "reset"}   start a new stream: the time base goes back to 0 and `generation` goes up
    text   {"type": "interrupt"}   barge-in: the frames of the audio sent so far that are not sent yet are
           dropped at once, and the mouth closes (Session.interrupt); -> "interrupted". Frames come again with
           the audio sent next (silence, to listen: the mouth stays shut; or the next reply)
    text   {"type": "ping"}    -> {"type": "pong"} (not work: only other messages keep a session from
           `idle_timeout`)
Server -> client:
    text   {"type": "ready", "fps", "width", "height", "generation": 0[, "lead_frames": n]}
    binary a frame: 16-byte header "<IId" (generation uint32, frame index uint32, timestamp float64 in
           seconds on the audio's time base: frame j shows the audio at j / fps) then a JPEG
    text   {"type": "interrupted", "generation": g, "dropped": n, "next_index": i, "timestamp": t}   after an
           interrupt: n frames were dropped; drop any frame of this generation below index i still queued
           on your side (its first frame, at t seconds, shows the mouth closing)
    text   {"type": "flushed", "generation": g}   every frame of the audio before the flush has been sent
           (or skipped, below)
    text   {"type": "behind", "generation": g, "skipped": n, "late": s}   the session fell more than
           `max_render_lag` behind real time (a busy server): n frames were skipped, not rendered (their
           indices are missing), since the last such message; "late" is how late the next frame was, in
           seconds. At most one a second, and one before "flushed" if frames were skipped since
    text   {"type": "busy" | "error", "message": "..."}, then the server closes the socket
           (busy: 1013 try again later; idle: 1001; bad message or no start in time: 1008; too big: 1009;
           server fault: 1011). Values quoted in a message are cut short; the close reason is the message
           in ASCII, cut to 123 bytes.

Each session runs in a process of its own (`session_processes`, talkface.stream.worker: numpy holds the GIL
for much of a frame, so sessions in one process share one core): its portrait analysis, motion and rendering
happen there. In the server, one thread per connection takes the frames and JPEG-encodes them (OpenCV
releases the GIL), and the event loop moves bytes and hands audio to Session.push_audio() (in a process:
a pipe write; in this process: features and motion, about 1 ms per 20 ms of audio). Every frame is
watermarked by the Session. A client error ends that connection only; nothing a client sends can stop the
server.
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
import math
import socket
import struct
import threading
import time
import urllib.parse
import uuid
import warnings
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import anyio
import cv2
import numpy as np
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
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
LOOPBACK = ("localhost", "127.0.0.1", "::1")  # hosts of the pages always allowed (origin_allowed)
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")  # as PIL names them
SAMPLE_FORMATS = {"s16": np.dtype("<i2"), "f32": np.dtype("<f4")}
# AnimateOptions fields a client may not set: crf (no encoder here), full_frame (frames up to 1920 px would
# not stream in real time) and motion_model (a path on the server's disk is not a client's to choose).
NOT_LIVE = {"crf", "full_frame", "motion_model"}
# Generators a client may choose (the loudness baseline is for evaluation only): see session.LIVE_GENERATOR.
LIVE_GENERATORS = ("rules", "learned")
MAX_LOOKAHEAD_S = 0.2  # the most a start message's "lookahead" may ask for
# The others, with the type a client sends each as (a JSON list for a tuple, a string for what the command
# line takes as text: the emotion track).
START_OPTIONS = {
    f.name: f.metadata["parse"] if f.default is None or f.metadata["parse"] is str else type(f.default)
    for f in dataclasses.fields(AnimateOptions)
    if f.name not in NOT_LIVE
}

# A client that sent no audio for this long paused (its clock is read again): the event loop of a busy server
# delays a message by tens of milliseconds, a pause in the audio lasts longer.
PAUSE_S = 0.25
MAX_MESSAGE = 1000  # characters of an error message sent to a client (they quote its values, cut short)

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

    def __init__(self, message: str, code: int = CLOSE_POLICY, kind: str = "error"):
        super().__init__(message)
        self.code = code
        self.kind = kind  # the type of the message sent: "error" or "busy"


def static_dir() -> Path:
    """The page's files (package data)."""
    return Path(str(files("talkface.stream") / "static"))


def origin_allowed(origin: str | None, host: str | None, allowed: set[str]) -> bool:
    """Whether a request with this Origin header may use the server: a page of the server itself (Origin's
    host:port is the Host header), of localhost, or of an origin in `allowed` ("*": any). A request without
    an Origin does not come from a page in a browser (browsers send it on WebSockets and POSTs), so it is
    let through: the check guards visitors' browsers against other sites' pages, not the server against
    scripts."""
    if origin is None:
        return True
    origin = origin.rstrip("/").lower()
    if "*" in allowed or origin in allowed:
        return True
    parts = urllib.parse.urlsplit(origin)
    if parts.scheme not in ("http", "https"):
        return False  # "null" (a file or a sandboxed frame) unless listed
    if parts.hostname in LOOPBACK:
        return True
    return host is not None and parts.netloc == host.lower()


def _default_session_factory(processes: bool):
    """ProcessSession (a process per session: every core) or Session (threads in this process)."""
    if processes:
        from talkface.stream.worker import ProcessSession

        return ProcessSession
    from talkface.stream.session import Session

    return Session


class _ServerState:
    def __init__(self, settings: ServerSettings, session_factory: Callable | None):
        self.settings = settings
        self.session_factory = session_factory
        self.active = 0
        self.portraits: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        self.peers: set = set()  # open WebRTC peers (webrtc.Peer), closed when the server stops
        self.face_check = asyncio.Semaphore(1)  # face detection on uploads: one at a time (2 cores)
        # Decoding uploads, at most max_decode_bytes each: one at a time bounds their memory and time.
        self.decoding = asyncio.Semaphore(1)

    def busy_message(self) -> str:
        return (
            f"server busy: {self.active} live sessions already (the limit is {self.settings.max_sessions}); "
            "try again later"
        )

    def factory(self) -> Callable:
        if self.session_factory is None:
            self.session_factory = _default_session_factory(self.settings.session_processes)
        return self.session_factory

    def avatar_factory(self) -> Callable:
        """(portrait, **options) -> a LiveAvatar (WebRTC): in a process of its own unless sessions run in
        this one (session_processes off, or a session_factory given)."""
        if self.session_factory is None and self.settings.session_processes:
            from talkface.stream.worker import ProcessAvatar

            return ProcessAvatar
        from talkface.stream.avatar import LiveAvatar

        factory = self.factory()
        return lambda portrait, **options: LiveAvatar(factory(portrait, **options))

    def portrait(self, key: str) -> np.ndarray | Path:
        if key == BUNDLED:
            return asset_path("portrait.jpg")
        if key not in self.portraits:
            raise ClientError(
                f"unknown portrait {_echo(key)}: upload it first (POST /portraits) or use 'bundled'"
            )
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
    allowed = {o.strip().rstrip("/").lower() for o in settings.allowed_origins.split(",") if o.strip()}

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
        if not origin_allowed(request.headers.get("origin"), request.headers.get("host"), allowed):
            return JSONResponse({"error": "this server does not take uploads from that page's origin"}, 403)
        try:
            # A deadline for the whole body: a client that sends the headers and then stalls (or trickles)
            # would otherwise hold its connection and buffer for as long as it likes.
            data = await asyncio.wait_for(_read_upload(request, settings), settings.upload_timeout)
            async with state.decoding:
                image = await asyncio.to_thread(_decode_portrait, data, settings)
            async with state.face_check:
                await asyncio.to_thread(_check_face, image)
        except _HTTPError as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)
        except TimeoutError:
            log.info("upload from %s timed out after %g s", _peer(request), settings.upload_timeout)
            return JSONResponse(
                {"error": f"upload not received within {settings.upload_timeout:g} s"}, status_code=408
            )
        except ClientDisconnect:  # an abandoned upload: one line, not a traceback
            log.info("upload from %s abandoned: the client disconnected", _peer(request))
            return Response(status_code=400)  # nobody reads it
        key = state.add_portrait(image)
        log.info("portrait %s uploaded (%dx%d)", key, image.shape[1], image.shape[0])
        return JSONResponse({"id": key, "width": image.shape[1], "height": image.shape[0]}, status_code=201)

    async def webrtc_offer(request: Request) -> Response:
        from talkface.stream.webrtc import answer_offer  # aiortc is imported on the first offer

        reply, status = await answer_offer(request, state, allowed)
        return JSONResponse(reply, status_code=status)

    async def live(websocket: WebSocket) -> None:
        if not origin_allowed(websocket.headers.get("origin"), websocket.headers.get("host"), allowed):
            log.info("WebSocket from origin %s refused", _echo(websocket.headers.get("origin")))
            await websocket.close(CLOSE_POLICY)  # before the handshake completes: HTTP 403
            return
        await websocket.accept()
        if state.active >= settings.max_sessions:  # no slot now: say so at once rather than after the start
            await _send_and_close(
                websocket, {"type": "busy", "message": state.busy_message()}, CLOSE_TRY_LATER
            )
            return
        await _Connection(websocket, state).run()

    routes = [
        Route("/", page),
        Route("/health", health),
        Route("/portraits/bundled", bundled_portrait),
        Route("/portraits", upload, methods=["POST"]),
        WebSocketRoute("/ws", live),
        Route("/webrtc/offer", webrtc_offer, methods=["POST"]),
        Route("/avatar/head.glb", _head_glb),
        Mount("/static", StaticFiles(directory=static), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        # WebSocket connections end with their tasks; WebRTC peers live in aiortc's, so they are closed
        # here: their tracks, peer connections and session processes, with no task left pending.
        await asyncio.gather(*(peer.close() for peer in list(state.peers)), return_exceptions=True)

    app = Starlette(routes=routes, lifespan=lifespan)
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


def _peer(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "a client"


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
    """An upload as RGB uint8 (H, W, 3), downscaled to max_portrait_side, read by the CLI's load_image. The
    header comes first (PIL reads nothing else on open): the format, the pixels and the memory the decoding
    will take (from the size, the bit depth and the bands) are checked against this server's limits before
    any pixel is decoded. A JPEG is decoded at 1/2, 1/4 or 1/8 scale in the decoder itself (draft); the
    other formats are decoded whole, then reduced."""
    from PIL import Image

    from talkface.face.image import load_image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL's decompression-bomb warning: we check the size ourselves
        try:
            im = Image.open(io.BytesIO(data))
            kind, (w, h) = im.format, im.size
        except Exception:
            kind, w, h = None, 0, 0
    if kind not in IMAGE_FORMATS:
        raise _HTTPError("not a supported image: send a JPEG, PNG, WebP, BMP or TIFF file", 415)
    if w * h > settings.max_upload_pixels:
        raise _HTTPError(
            f"image too large: {w}x{h} (the limit is {settings.max_upload_pixels / 1e6:g} megapixels)", 413
        )
    side = settings.max_portrait_side
    if kind == "JPEG" and max(w, h) > side:
        s = side / max(w, h)
        im.draft("RGB", (math.ceil(w * s), math.ceil(h * s)))  # the smallest DCT scale at least this large
    need = im.size[0] * im.size[1] * decode_bytes_per_pixel(im.mode)  # the size after the draft
    if need > settings.max_decode_bytes:
        raise _HTTPError(
            f"image too large to decode: {w}x{h} {im.mode} takes {need / 2**20:.0f} MB (the limit is "
            f"{settings.max_decode_bytes / 2**20:.0f} MB: send a JPEG, or fewer pixels)",
            413,
        )
    try:
        return load_image(data, side, name="the image")
    except TalkfaceError as e:  # damaged, truncated, too small, an unsupported pixel format
        raise _HTTPError(str(e), 422) from None


def decode_bytes_per_pixel(mode: str) -> int:
    """Bytes per pixel (of the image as decoded) that load_image takes at its peak for an image of this PIL
    mode: the decoded image (PIL keeps a pixel of several bands in 4 bytes, RGB as RGBX; one band in its
    sample size: 1 byte, 2 for 16-bit grey, 4 for 32-bit) and the copies made on the way to 8-bit RGB at
    max_portrait_side. Measured peaks (ru_maxrss over the decoded pixels): RGB 6, RGBA 9-15, 16-bit grey
    25-27."""
    from PIL import ImageMode

    m = ImageMode.getmode(mode)
    stored = 4 if len(m.bands) > 1 else np.dtype(m.typestr).itemsize
    if mode in ("L", "RGB"):
        return stored + 2  # the reduction's intermediates
    if mode.startswith("I") or mode == "F":
        return stored + 24  # deeper grey is scaled to 8 bits in float64, with numpy's temporaries
    return stored + 12  # converted to RGB or RGBA first; RGBA is premultiplied by its alpha to be reduced


def _check_face(image: np.ndarray) -> None:
    from talkface.face.landmarks import detect_face

    try:
        detect_face(image, "the uploaded image")
    except TalkfaceError as e:
        raise _HTTPError(str(e), 422) from None


def _echo(value, limit: int = 40) -> str:
    """A client's value as an error message quotes it: repr, cut to about `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


def close_reason(text: str) -> str:
    """A close frame's reason: at most 123 bytes (RFC 6455), ASCII so that no cut splits a character
    (a reason that is not valid UTF-8 ends the connection with 1006 instead of the code sent)."""
    return text.encode("ascii", "replace").decode("ascii")[:123]


async def _send_and_close(websocket: WebSocket, message: dict, code: int) -> None:
    """Best effort: the client may already be gone. The message is cut to MAX_MESSAGE characters."""
    message = {**message, "message": message.get("message", "")[:MAX_MESSAGE]}
    with contextlib.suppress(Exception):
        if websocket.client_state == WebSocketState.CONNECTED:
            await websocket.send_text(json.dumps(message))
            await websocket.close(code=code, reason=close_reason(message["message"]))


async def _head_glb(request: Request) -> Response:
    from talkface.export.live import head_route  # the 3D avatar page's head (static/avatar3d.html)

    return await head_route(request)


def _parse_start(message: dict, state: _ServerState) -> tuple[object, dict, int, np.dtype, int]:
    """(portrait, options, sample_rate, sample dtype, channels) from a start message."""
    settings = state.settings
    key = message.get("portrait", BUNDLED)
    if not isinstance(key, str):
        raise ClientError(f"portrait must be a string: 'bundled' or an upload id, got {_echo(key)}")
    portrait = state.portrait(key)
    rate = message.get("sample_rate", 16000)
    lo, hi = SAMPLE_RATE_RANGE
    if not isinstance(rate, int) or isinstance(rate, bool) or not lo <= rate <= hi:
        raise ClientError(f"sample_rate must be an integer between {lo} and {hi}, got {_echo(rate)}")
    fmt = message.get("format", "f32")
    if not isinstance(fmt, str) or fmt not in SAMPLE_FORMATS:  # a list or an object is unhashable
        raise ClientError(f"format must be one of {', '.join(SAMPLE_FORMATS)}, got {_echo(fmt)}")
    channels = message.get("channels", 1)
    if type(channels) is not int or channels not in (1, 2):  # 2.0 == 2, but a float count breaks reshape
        raise ClientError(f"channels must be 1 or 2, got {_echo(channels)}")
    raw = message.get("options", {})
    if not isinstance(raw, dict):
        raise ClientError("options must be an object")
    options = {}
    for key, value in raw.items():
        kind = START_OPTIONS.get(key)
        if kind is None:
            raise ClientError(f"unknown option {_echo(key)} (accepted: {', '.join(START_OPTIONS)})")
        value = _coerce(kind, value)
        if value is None:
            raise ClientError(f"option {key!r} has a bad value {_echo(raw[key])}")
        options[key] = value
    if "generator" in options and options["generator"] not in LIVE_GENERATORS:
        raise ClientError(
            f"generator must be one of {', '.join(LIVE_GENERATORS)}, got {_echo(options['generator'])}"
        )
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

    def __init__(self, session, post: Callable[[object], None], quality: int, max_lag: float):
        self.session = session
        self.post = post  # thread-safe: puts bytes (a frame) or a dict (a message) on the send queue
        self.quality = quality
        self.max_lag = max_lag  # seconds
        # (stream time at the end of an audio message, time.monotonic() when its frames are due), in order:
        # appended by the event loop, consumed here, cleared by a reset.
        self.due: collections.deque[tuple[float, float]] = collections.deque()
        self.frames_skipped = 0
        self._skipped_told = 0  # frames_skipped when the client was last told
        self._behind_told = -1e9  # time.monotonic() then
        self.generation = 0
        self.flush_requested = 0  # flushes done on the session
        self.motion = None  # export.live.LiveMotion: a motion message beside (or instead of) each frame
        self.video = True  # JPEG frames sent
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
                        self._skip_if_late(generation)
                        item = next(frames, None)
                    if item is None:
                        break
                    ts, frame = item
                    index = round(ts * fps)
                    if self.motion is not None and (m := self.motion.message(generation, index, ts)):
                        self.post(m)
                    if not self.video:
                        continue
                    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)
                    if not ok:
                        raise RuntimeError("JPEG encoding failed")
                    self.post(FRAME_HEADER.pack(generation, index, ts) + jpeg.tobytes())
                if flushes > self._flush_reported and not self._stop:
                    self._flush_reported = flushes
                    if self.frames_skipped > self._skipped_told:  # every frame is sent or told skipped
                        self._tell_behind(self.generation, 0.0)
                    self.post({"type": "flushed", "generation": self.generation})
        except Exception as e:  # an engine fault: tell the client and end this connection only
            log.exception("rendering failed")
            self.post(RuntimeError(f"rendering failed: {type(e).__name__}: {e}"))

    def _skip_if_late(self, generation: int) -> None:
        """Stay live when the server falls behind: if the next frame is more than max_lag late, skip every
        frame waiting (all are late), and tell the client (at most once a second). The render thread's CPU
        goes back to the event loop, which then catches up with the audio waiting in the socket; frames
        resume once they are due within max_lag again."""
        ts, ready = self.session.backlog()
        while self.due and self.due[0][0] < ts - 1e-9:  # messages whose audio is all before that frame
            self.due.popleft()
        late = time.monotonic() - self.due[0][1] if self.due else 0.0  # none: the silence of a flush
        if ready == 0 or late <= self.max_lag:
            return
        self.frames_skipped += self.session.drop(ready)
        if time.monotonic() - self._behind_told >= 1.0:
            self._tell_behind(generation, late)

    def _tell_behind(self, generation: int, late: float) -> None:
        skipped, self._skipped_told = self.frames_skipped - self._skipped_told, self.frames_skipped
        self._behind_told = time.monotonic()
        self.post({"type": "behind", "generation": generation, "skipped": skipped, "late": round(late, 2)})


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
        self.interrupted_below: tuple[int, int] | None = None  # (generation, frame index) after an interrupt
        self.rate = 16000
        self.dtype = SAMPLE_FORMATS["f32"]
        self.channels = 1
        self.stream_samples = 0  # per channel, since the last reset
        self.closed = False
        # Real-time pacing, a token bucket: seconds of audio the client may still send at once. It refills
        # with the clock, up to max_lead_seconds.
        self.audio_credit = self.settings.max_lead_seconds
        self.credit_at = time.monotonic()
        self.waited = 0.0  # seconds the last receive() waited for its message
        self.anchor: float | None = None  # time.monotonic() at the stream's time 0, for a real-time client
        self.has_slot = False  # counted in state.active: from the start message to the end of the connection
        # Work (anything but a ping) must come by this loop time: the start within start_deadline of the
        # connection (or idle_timeout if shorter), then a message at most idle_timeout after the last one.
        self.start_within = min(self.settings.start_deadline, self.settings.idle_timeout)
        self.deadline = self.loop.time() + self.start_within

    # -- sending -------------------------------------------------------------------------------------
    def post(self, item) -> None:
        """From any thread. Dropped once the connection is over (its loop may be gone)."""
        if self.closed:
            return
        with contextlib.suppress(RuntimeError):  # the event loop closed under us
            self.loop.call_soon_threadsafe(self._enqueue, item)

    def _enqueue(self, item) -> None:
        if isinstance(item, bytes) and self.interrupted_below is not None:
            generation, index, _ = FRAME_HEADER.unpack_from(item)
            if (generation, index) < self.interrupted_below:  # rendered before an interrupt: stale
                return
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
            await _send_and_close(self.ws, {"type": e.kind, "message": str(e)}, e.code)
        except Exception as e:
            log.exception("live session failed")
            await _send_and_close(self.ws, {"type": "error", "message": f"server error: {e}"}, CLOSE_INTERNAL)
        finally:
            self._close_session()
            if self.has_slot:
                self.state.active -= 1
                self.has_slot = False
            # Shielded: a cancellation of this connection (server shutdown, a test client's teardown) must
            # not interrupt the teardown of its own tasks halfway; it is delivered again right after.
            with anyio.CancelScope(shield=True):
                for task in (sender, receiver):
                    task.cancel()
                await asyncio.gather(sender, receiver, return_exceptions=True)
            # The error that ended the connection, raised here by task.result(), holds this frame in its
            # traceback, and this frame holds the tasks that hold the error: a cycle, which would keep the
            # connection (and the frames in its outbox) until the next gc pass.
            done = task = sender = receiver = None
        if self.ws.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.ws.close(CLOSE_NORMAL)

    async def _receive_loop(self) -> None:
        while True:
            t = time.monotonic()
            try:
                message = await asyncio.wait_for(self.ws.receive(), self.deadline - self.loop.time())
                self.waited = time.monotonic() - t
            except TimeoutError:
                if self.session is None:
                    raise ClientError(f"no start message within {self.start_within:g} s: closing") from None
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
        if kind == "ping":  # answered, but not work: it keeps no connection open
            self._enqueue({"type": "pong"})
            return
        if self.session is not None:
            self.deadline = self.loop.time() + self.settings.idle_timeout
        if kind == "start":
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
        elif kind == "interrupt":
            if self.session is None:
                raise ClientError("interrupt before start")
            await self._feed(self._interrupt, inline=True)
        else:
            raise ClientError(
                f"unknown message type {_echo(kind)} (start, flush, reset, interrupt, emotion, ping)"
            )

    async def _start(self, message: dict) -> None:
        if self.session is not None:
            raise ClientError("start sent twice: one session per connection")
        portrait, options, self.rate, self.dtype, self.channels = _parse_start(message, self.state)
        from talkface.export.live import parse_request

        try:
            motion, video = parse_request(message)
        except ValueError as e:
            raise ClientError(str(e)) from None
        lookahead = message.get("lookahead")
        if lookahead is not None and (
            _coerce(float, lookahead) is None or not 0.0 <= lookahead <= MAX_LOOKAHEAD_S
        ):
            raise ClientError(f"lookahead must be a number of seconds from 0 to {MAX_LOOKAHEAD_S:g}")
        # Slots go to started sessions only, taken here before the portrait analysis (the costly part).
        if self.state.active >= self.settings.max_sessions:
            raise ClientError(self.state.busy_message(), CLOSE_TRY_LATER, "busy")
        self.state.active += 1
        self.has_slot = True
        factory = self.state.factory()
        try:
            self.session = await asyncio.wait_for(
                self.loop.run_in_executor(self.feeder, lambda: factory(portrait, **options)),
                self.settings.start_timeout,
            )
        except TalkfaceError as e:
            raise ClientError(str(e)) from None
        self.pump = _FramePump(
            self.session, self.post, self.settings.jpeg_quality, self.settings.max_render_lag
        )
        self.deadline = self.loop.time() + self.settings.idle_timeout
        width, height = self.session.frame_size
        log.info("session started: %dx%d at %g fps, audio %d Hz", width, height, self.session.fps, self.rate)
        ready = {"type": "ready", "fps": self.session.fps, "width": width, "height": height, "generation": 0}
        if lookahead is not None and hasattr(self.session, "set_lookahead"):
            from talkface.stream.session import lead_frames

            lead = await self.loop.run_in_executor(self.feeder, lead_frames, self.session, float(lookahead))
            ready["lead_frames"] = lead
        if motion is not None:  # blendshape frames (export.live)
            from talkface.export.live import LiveMotion

            # In a session's process, its frames' motion is captured there (through the Session's hook).
            make = getattr(self.session, "live_motion", None) or (lambda: LiveMotion(self.session))
            self.pump.motion = await self.loop.run_in_executor(self.feeder, make)
            self.pump.video, ready["blendshapes"] = video, LiveMotion.names()
        self._enqueue(ready)

    async def _on_audio(self, data: bytes) -> None:
        if self.session is None:
            raise ClientError('audio before start: send {"type": "start", ...} first')
        self.deadline = self.loop.time() + self.settings.idle_timeout
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
        now, seconds = time.monotonic(), n / self.rate
        self.audio_credit = (
            min(self.settings.max_lead_seconds, self.audio_credit + now - self.credit_at) - seconds
        )
        self.credit_at = now
        # Its frames are due at real-time pace from the stream's anchor: the time its audio began, as the
        # first message (or the first after a pause) tells. A server that reads late, or renders late, sees
        # its frames late; a client ahead of real time sees them due later.
        end = self.stream_samples / self.rate
        if self.anchor is None or self.waited > PAUSE_S:
            self.anchor = now - end
        self.pump.due.append((end, self.anchor + end))
        await self._feed(self.session.push_audio, pcm, self.rate, inline=True)
        if self.audio_credit < 0:  # ahead by more than the lead: its next message is read when due
            await asyncio.sleep(-self.audio_credit)  # (uvicorn stops reading the socket meanwhile)

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

    def _interrupt(self) -> None:
        """Barge-in, on the event loop: drop the frames not rendered (the session's) and not sent (the
        outbox's); a frame the render thread finishes meanwhile is dropped when posted (interrupted_below)."""
        with self.pump.lock:
            dropped = self.session.interrupt()
            generation = self.pump.generation
            ts, _ = self.session.backlog()
        index = round(ts * self.session.fps)
        self.interrupted_below = (generation, index)
        kept = [item for item in self.outbox if not isinstance(item, bytes)]
        dropped += self.frames_queued
        self.frames_queued = 0
        self.outbox.clear()
        self.outbox.extend(kept)
        self.anchor = None  # the next reply sets the pace anew
        self._enqueue(
            {
                "type": "interrupted",
                "generation": generation,
                "dropped": dropped,
                "next_index": index,
                "timestamp": ts,
            }
        )

    def _reset(self) -> None:
        with self.pump.lock:
            self.session.reset()
            self.pump.generation += 1
            self.pump.due.clear()
        self.anchor = None

    def _close_session(self) -> None:
        """Stop the render thread, then close the session, off the event loop."""
        self.closed = True
        pump, session = self.pump, self.session
        # The pump holds this connection's post(): dropping the connection's side of that cycle lets the
        # session (megabytes of rig and buffers) go when the connection ends, without waiting for the gc.
        self.pump = self.session = None

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
        if pump is not None and pump.frames_skipped:
            log.info("session closed; %d frames skipped to stay live", pump.frames_skipped)


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
        app,
        host=host,
        port=port,
        http=header_deadline_protocol(settings.header_timeout),
        limit_concurrency=settings.max_connections,
        ws="websockets-sansio",
        ws_max_size=max_message,
        log_level="warning",
    )


def header_deadline_protocol(timeout: float) -> type:
    """uvicorn's h11 HTTP protocol with a deadline for request headers: a connection that opens and sends
    nothing, or sends part of its headers and stalls (alone, or after a keep-alive pause), is closed after
    `timeout` seconds. uvicorn bounds only the pause between requests and the ASGI app only sees complete
    headers, so without this each such client holds a socket for ever."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm_header_timer()

        def connection_lost(self, exc) -> None:
            self._disarm_header_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self._arm_header_timer()  # a keep-alive connection's next request starts its own deadline
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the headers are in (the body has its own timeout)
                self._disarm_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_timer()  # the next request may already have begun in the same bytes

        def _arm_header_timer(self) -> None:
            if self._header_timer is None and self.conn.their_state is h11.IDLE:
                self._header_timer = self.loop.call_later(timeout, self._headers_late)

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                log.info("%s: closed, no request headers within %.0f s", _client_text(self.client), timeout)
                self.transport.close()

    return HeaderDeadlineProtocol


def _client_text(client: tuple | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "client"


def _warm_up(app: Starlette) -> None:
    """Build one session on the bundled portrait so the first client waits neither for JIT compilation nor
    (with session_processes) for the fork server's start."""
    state: _ServerState = app.state.server
    try:
        with state.factory()(asset_path("portrait.jpg"), size=128) as session:
            session.push_audio(np.zeros(8000, np.float32), 16000)
            session.flush()
            for _ in session.frames():
                pass
    except Exception:  # the server still works without a warm-up; the first session is just slower
        log.exception("warm-up failed")
