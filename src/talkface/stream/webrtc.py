"""WebRTC for `talkface serve` (aiortc): the face as a video track, the voice as an audio track, in sync.

    POST /webrtc/offer   {"sdp": ..., "type": "offer", "portrait": "bundled" | <upload id>,
                          "options": {"size": 512, ...},            (as the WebSocket's start message)
                          "sample_rate": 48000, "format": "s16" | "f32", "channels": 1}   (data-channel PCM)
                         -> 200 {"sdp": ..., "type": "answer"}; errors {"error": "..."} with 400, 403
                         (origin), 408, 413, 501 (no aiortc), 503 (busy: no slot free), 504 (start too slow)

The answer sends a video track (the face) and an audio track (the voice animating it, delayed to match the
frames: a browser plays both with no code of its own). The voice comes from either
  - the peer's audio track (a microphone), or
  - a data channel (any label), for agents: binary messages of PCM as the WebSocket takes them (the offer's
    sample_rate, format and channels; at most 64 kB each, aiortc's message size: 0.5 s of 48 kHz s16), at any
    pace (a reply at once is played at the pace of real time), and
    JSON text messages: {"type": "interrupt"} (barge-in -> {"type": "interrupted", "dropped_s": s}),
    {"type": "emotion", "emotion": "sad", "strength": 0.8}, {"type": "ping"} (-> "pong"). The server sends
    {"type": "ready", "fps", "width", "height"} when the channel opens, and {"type": "error", "message"} for
    a bad message (the connection goes on).
When no voice comes, the face listens (talkface.stream.avatar).

The server's hardening holds: an offer takes one of `max_sessions` slots (shared with the WebSocket) until the
peer connection ends; page origins are checked as for /ws; the start options pass the same checks
(_parse_start); the peer must connect within `start_deadline` and then send something (voice or a message)
at least every `idle_timeout`; data-channel chunks are bounded by `max_chunk_seconds`; at most MAX_QUEUED_S of
voice may wait. Rendering is paced by the clock, so a peer cannot take more CPU than one real-time session.
ICE offers only the addresses the server listens on (127.0.0.1 -> loopback only; 0.0.0.0 -> every
interface), and no STUN server is asked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fractions
import json
import logging
import time
from collections.abc import Callable

import numpy as np

from talkface.config import ServerSettings
from talkface.errors import TalkfaceError
from talkface.stream.avatar import LiveAvatar
from talkface.stream.worker import ProcessAvatar

log = logging.getLogger(__name__)

VIDEO_CLOCK = 90000  # Hz, RTP's video clock
AUDIO_FRAME_S = 0.02  # seconds of audio per frame sent (Opus' 20 ms)
MAX_OFFER_BYTES = 64 * 1024  # an SDP offer is a few kB
MAX_QUEUED_S = 0.5  # frames a track holds for a sender that stalls; older ones are dropped
# Seconds the clock may fall behind and then catch up by sending faster; beyond, it goes on from now. A burst
# of audio sits in the browser's jitter buffer as lasting delay (NetEq drains it over seconds): 0.5 s of
# catch-up at the start (a slow first frame) left the voice 0.5 s behind the face, 130 ms after 15 s
# (scripts/av_sync.py).
MAX_CATCH_UP_S = 0.1
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_ICE_HOSTS: list[str] | None = None  # addresses ICE gathers on (None: every interface, aioice's default)


def ice_addresses(host: str) -> list[str] | None:
    """The host addresses ICE may offer for a server listening on `host`: a loopback server offers
    127.0.0.1 only (aioice leaves loopback out by default), a wildcard every interface (None)."""
    if host in ("", "0.0.0.0", "::"):
        return None
    if host in _LOOPBACK_HOSTS:
        return ["127.0.0.1"]
    return [host]


def _install_ice_hosts(host: str) -> None:
    """Make aioice gather on ice_addresses(host) (a process-wide choice: one server per process)."""
    global _ICE_HOSTS
    import aioice.ice

    _ICE_HOSTS = ice_addresses(host)
    if not getattr(aioice.ice.get_host_addresses, "_talkface", False):
        default = aioice.ice.get_host_addresses

        def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
            return list(_ICE_HOSTS) if _ICE_HOSTS is not None else default(use_ipv4, use_ipv6)

        get_host_addresses._talkface = True
        aioice.ice.get_host_addresses = get_host_addresses


class WebRTCError(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def available() -> bool:
    try:
        import aiortc  # noqa: F401
    except ImportError:
        return False
    return True


async def answer_offer(request, state, allowed: set[str]) -> tuple[dict, int]:
    """Handle POST /webrtc/offer: (JSON reply, HTTP status). state: the server's _ServerState."""
    from talkface.stream.server import ClientError, _parse_start, origin_allowed

    settings: ServerSettings = state.settings
    if not origin_allowed(request.headers.get("origin"), request.headers.get("host"), allowed):
        return {"error": "this server does not take offers from that page's origin"}, 403
    if not available():
        return {"error": "WebRTC needs aiortc, which is not installed (see requirements.lock)"}, 501
    try:
        body = await asyncio.wait_for(_read_body(request), settings.upload_timeout)
        offer = json.loads(body)
        if (
            not isinstance(offer, dict)
            or offer.get("type") != "offer"
            or not isinstance(offer.get("sdp"), str)
        ):
            raise WebRTCError('send {"sdp": ..., "type": "offer", "portrait": ..., "options": {...}}', 400)
        portrait, options, rate, dtype, channels = _parse_start(offer, state)
    except WebRTCError as e:
        return {"error": str(e)}, e.status
    except TimeoutError:
        return {"error": f"offer not received within {settings.upload_timeout:g} s"}, 408
    except ValueError:
        return {"error": "the offer must be JSON"}, 400
    except ClientError as e:
        return {"error": str(e)}, 400
    if state.active >= settings.max_sessions:
        return {"error": state.busy_message()}, 503
    _install_ice_hosts(settings.host)
    state.active += 1  # released when the peer ends (Peer.close)
    peer = Peer(state, rate, dtype, channels)
    state.peers.add(peer)  # closed by the server's shutdown if still open then
    try:
        await peer.offer(offer["sdp"])  # a bad SDP is refused before the costly part
        await peer.open(portrait, options)
        answer = await peer.answer()
    except TalkfaceError as e:
        await peer.close()
        return {"error": str(e)}, 400
    except TimeoutError:
        await peer.close()
        return {"error": f"the session did not start within {settings.start_timeout:g} s"}, 504
    except Exception as e:  # a malformed SDP is reported by aiortc as ValueError & co
        await peer.close()
        log.info("WebRTC offer refused: %s", e)
        return {"error": f"bad offer: {e}"}, 400
    return answer, 200


async def _read_body(request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_OFFER_BYTES:
        raise WebRTCError(f"offer too large (at most {MAX_OFFER_BYTES // 1024} kB)", 413)
    body = b""
    async for part in request.stream():
        body += part
        if len(body) > MAX_OFFER_BYTES:
            raise WebRTCError(f"offer too large (at most {MAX_OFFER_BYTES // 1024} kB)", 413)
    return body


def _put(queue: asyncio.Queue, item, limit: float) -> None:
    """Queue an item for a track, dropping the oldest beyond `limit` items (a stalled sender)."""
    while queue.qsize() >= max(1, int(limit)):
        queue.get_nowait()
    queue.put_nowait(item)


def _tracks():
    """The track classes, defined on first use so that importing this module needs no aiortc."""
    import av
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    class QueueTrack(MediaStreamTrack):
        """A track that plays what its producer queues (frames already paced by the producer's clock)."""

        def __init__(self, kind: str):
            super().__init__()
            self.kind = kind
            self.queue: asyncio.Queue = asyncio.Queue()

        async def recv(self):
            if self.readyState != "live":
                raise MediaStreamError
            item = await self.queue.get()
            if item is None:
                self.stop()
                raise MediaStreamError
            return item

    def video_frame(image: np.ndarray, index: int, fps: float):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = int(round(index * VIDEO_CLOCK / fps))
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame

    def audio_frame(pcm: np.ndarray, pts: int, rate: int):
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, rate)
        return frame

    return QueueTrack, MediaStreamError, video_frame, audio_frame


class Peer:
    """One WebRTC client: its peer connection, LiveAvatar, tracks, clock and slot."""

    def __init__(self, state, rate: int, dtype: np.dtype, channels: int):
        self.state = state
        self.settings: ServerSettings = state.settings
        self.rate, self.dtype, self.channels = rate, dtype, channels
        self.loop = asyncio.get_running_loop()
        self.render = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="talkface-webrtc")
        self.pc = None
        self.avatar: LiveAvatar | ProcessAvatar | None = None
        self.tasks: list[asyncio.Task] = []
        self.channels_open: list = []
        self.closed = False
        self.last_work = time.monotonic()
        self.frames_sent = 0

    async def open(self, portrait, options: dict) -> None:
        factory: Callable = self.state.avatar_factory()
        self.avatar = await asyncio.wait_for(
            self.loop.run_in_executor(self.render, lambda: factory(portrait, **options)),
            self.settings.start_timeout,
        )

    async def offer(self, sdp: str) -> None:
        """The peer connection, its tracks and handlers, and the client's offer applied."""
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        QueueTrack, MediaStreamError, self._video_frame, self._audio_frame = _tracks()
        self._stream_error = MediaStreamError
        self.pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: nothing leaves the host
        self.video, self.audio = QueueTrack("video"), QueueTrack("audio")
        pc.addTrack(self.video)
        pc.addTrack(self.audio)

        @pc.on("track")
        def on_track(track) -> None:
            if track.kind == "audio":
                self.tasks.append(asyncio.ensure_future(self._listen(track)))

        @pc.on("datachannel")
        def on_datachannel(channel) -> None:
            self.channels_open.append(channel)
            width, height = self.avatar.frame_size
            channel.send(
                json.dumps({"type": "ready", "fps": self.avatar.fps, "width": width, "height": height})
            )

            @channel.on("message")
            def on_message(message) -> None:
                try:
                    self._on_message(channel, message)
                except TalkfaceError as e:
                    channel.send(json.dumps({"type": "error", "message": str(e)[:1000]}))
                except Exception as e:  # a fault here ends this peer only
                    log.exception("WebRTC data channel message failed")
                    channel.send(json.dumps({"type": "error", "message": f"server error: {e}"[:1000]}))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close()

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))

    async def answer(self) -> dict:
        """The answer (after open()), with every ICE candidate in it (no trickle); the clock starts."""
        pc = self.pc
        await pc.setLocalDescription(await pc.createAnswer())
        self.tasks.append(asyncio.ensure_future(self._clock()))
        self.tasks.append(asyncio.ensure_future(self._watch()))
        return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}

    # -- voice in ------------------------------------------------------------------------------------
    async def _listen(self, track) -> None:
        """The peer's microphone: every frame it sends goes to the avatar as it comes."""
        with contextlib.suppress(self._stream_error, asyncio.CancelledError):
            while not self.closed:
                frame = await track.recv()
                if self.avatar is None:
                    continue
                pcm = frame.to_ndarray()  # (1, n * channels) packed, or (channels, n) planar
                channels = len(frame.layout.channels)
                pcm = pcm.reshape(-1, channels) if frame.format.is_packed else pcm.T
                self.avatar.push_audio(pcm, frame.sample_rate)
                self.last_work = time.monotonic()

    def _on_message(self, channel, message) -> None:
        if self.closed:
            return
        self.last_work = time.monotonic()
        if isinstance(message, bytes):
            size = self.dtype.itemsize * self.channels
            if len(message) % size:
                raise TalkfaceError(f"audio message of {len(message)} bytes is not whole samples")
            n = len(message) // size
            if n > self.settings.max_chunk_seconds * self.rate:
                raise TalkfaceError(f"audio message too long (at most {self.settings.max_chunk_seconds:g} s)")
            pcm = np.frombuffer(message, self.dtype).astype(self.dtype.newbyteorder("="))
            if self.dtype.kind == "f" and not np.isfinite(pcm).all():
                raise TalkfaceError("audio contains NaN or infinite samples")
            self.avatar.push_audio(pcm.reshape(n, self.channels), self.rate)
            return
        try:
            request = json.loads(message)
        except ValueError:
            raise TalkfaceError('messages are PCM (binary) or JSON like {"type": "interrupt"}') from None
        kind = request.get("type") if isinstance(request, dict) else None
        if kind == "interrupt":
            dropped = self.avatar.interrupt()
            channel.send(json.dumps({"type": "interrupted", "dropped_s": round(dropped, 3)}))
        elif kind == "emotion":
            emotion, strength = request.get("emotion"), request.get("strength")
            if not isinstance(emotion, str) or not (strength is None or isinstance(strength, int | float)):
                raise TalkfaceError(
                    'an emotion message is {"type": "emotion", "emotion": "sad", "strength": 0.8}'
                )
            self.avatar.set_emotion(emotion, strength)
        elif kind == "ping":
            channel.send(json.dumps({"type": "pong"}))
        else:
            raise TalkfaceError(f"unknown message type {str(kind)[:40]!r} (interrupt, emotion, ping)")

    # -- frames out ----------------------------------------------------------------------------------
    async def _clock(self) -> None:
        """One avatar step per frame period on the wall clock; each frame goes to the video track with its
        audio to the audio track, so they leave together."""
        avatar = self.avatar
        fps, rate = avatar.fps, avatar.sample_rate
        per_audio_frame = int(round(AUDIO_FRAME_S * rate))
        pending_audio = np.zeros(0, np.int16)
        audio_pts = 0
        try:
            while not self.closed and self.pc.connectionState != "connected":  # nobody to send to yet
                await asyncio.sleep(0.02)
            start, k = self.loop.time(), 0
            while not self.closed:
                frames = await self.loop.run_in_executor(self.render, avatar.step)
                for f in frames:
                    _put(self.video.queue, self._video_frame(f.image, f.index, fps), fps * MAX_QUEUED_S)
                    pending_audio = np.concatenate([pending_audio, f.audio])
                    while len(pending_audio) >= per_audio_frame:
                        chunk, pending_audio = (
                            pending_audio[:per_audio_frame],
                            pending_audio[per_audio_frame:],
                        )
                        frame = self._audio_frame(chunk, audio_pts, rate)
                        _put(self.audio.queue, frame, MAX_QUEUED_S / AUDIO_FRAME_S)
                        audio_pts += per_audio_frame
                    self.frames_sent += 1
                k += 1
                delay = start + k / fps - self.loop.time()
                if delay < -MAX_CATCH_UP_S:  # late (a slow frame, a busy server): go on from now, no burst
                    start = self.loop.time() - k / fps
                await asyncio.sleep(max(0.0, delay))
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("WebRTC rendering failed")
            await self.close()

    async def _watch(self) -> None:
        """Close a peer that never connects, or goes idle."""
        with contextlib.suppress(asyncio.CancelledError):
            deadline = self.loop.time() + min(self.settings.start_deadline, self.settings.idle_timeout)
            while not self.closed and self.pc.connectionState != "connected":
                if self.loop.time() > deadline:
                    log.info("WebRTC peer did not connect in time: closing")
                    await self.close()
                    return
                await asyncio.sleep(0.1)
            self.last_work = time.monotonic()
            while not self.closed:
                if time.monotonic() - self.last_work > self.settings.idle_timeout:
                    log.info("WebRTC peer idle for %g s: closing", self.settings.idle_timeout)
                    await self.close()
                    return
                await asyncio.sleep(min(1.0, self.settings.idle_timeout / 4))

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.state.active -= 1
        self.state.peers.discard(self)
        current = asyncio.current_task()
        tasks = [task for task in self.tasks if task is not current]
        for task in tasks:
            task.cancel()
        for track in ("video", "audio"):
            if hasattr(self, track):
                getattr(self, track).queue.put_nowait(None)
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()
        # Awaited, so that none is left pending when the loop ends (a server that stops).
        await asyncio.gather(*tasks, return_exceptions=True)
        avatar, self.avatar = self.avatar, None
        if avatar is not None:
            with contextlib.suppress(Exception):  # the session's process may already be gone
                await self.loop.run_in_executor(self.render, avatar.close)
        self.render.shutdown(wait=False)
        log.info("WebRTC session closed after %d frames", self.frames_sent)
