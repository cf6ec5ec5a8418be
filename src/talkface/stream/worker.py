"""Live sessions in worker processes: one process per session, so that a server's sessions use every core.

A Session renders with numpy, which holds the GIL for much of each frame: in the server's own process its
sessions share one core (two WebRTC peers at 512 px took 100% of one core and a third fell to 20 fps on two
cores). ProcessSession (the talkface.Session interface) and ProcessAvatar (stream.avatar.LiveAvatar's) run
theirs in a child process and forward each call through a pipe:

    parent                                   child (forked from a fork server that preloaded talkface)
    push_audio ──── cast, no reply ──►  ┐
    set_emotion, interrupt, flush, ...  ├─►  dispatcher thread: every request in order
    frames() / step() ─ call ─────────► ┘     └─► render thread: renders, replies (t, RGB frame) by pickle
    reader thread ◄──────────────── replies, tagged with the request's id

Requests are handled in the order they were sent, so a frame asked for after some audio sees that audio, and
an interrupt after it drops its frames; the render thread only takes renders, so an interrupt or an emotion
is handled while a frame renders. A cast's error (a bad chunk of audio) is raised by the next cast.

The child ends with its pipe: on close(), when the proxy is garbage-collected, and when the parent dies
(killed included), so no process outlives its session. A child that dies makes every waiting call raise
TalkfaceError.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import queue
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from talkface.errors import TalkfaceError
from talkface.stream.avatar import AvatarFrame, LiveAvatar
from talkface.stream.session import Session

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0  # a child that does not end this long after close() is killed
_RENDERS = {"next_frame", "step"}  # requests the child's render thread takes
_context: multiprocessing.context.BaseContext | None = None


def context() -> multiprocessing.context.BaseContext:
    """The "forkserver" context whose server has imported this module (so talkface and its dependencies):
    a child starts in tens of milliseconds, and forks no thread of the server's."""
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        _context = ctx
    return _context


class _Worker:
    """A child process holding one _Host, and the parent's side of its pipe."""

    def __init__(self, kind: str, portrait: str | Path | np.ndarray, options: dict):
        ctx = context()
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child,), name=f"talkface-{kind}", daemon=True)
        self._process.start()
        child.close()  # the child's end lives in the child only: its death is an EOF here
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        # Shared with the reader thread, which must not hold self (the finalizer ends the child).
        self._pending: dict[int, Future] = {}
        self._status = {"cast_error": None, "ended": False}
        self._reader = threading.Thread(
            target=_read_replies, args=(self._conn, self._pending, self._status), daemon=True
        )
        self._reader.start()
        self._finalizer = weakref.finalize(self, _stop, self._process, self._conn, self._reader)
        try:
            self.info: dict = self.call("open", kind, portrait, options)
        except BaseException:
            self.close()
            raise

    def call(self, method: str, *args):
        """Run host.method(*args) in the child and return its result (TalkfaceError as raised there)."""
        future: Future = Future()
        rid = next(self._ids)
        self._pending[rid] = future
        self._send(rid, method, args)
        return future.result()

    def cast(self, method: str, *args) -> None:
        """Send host.method(*args) without waiting; an error it raises comes out of the next cast (the
        caller that made the mistake, not another thread's call)."""
        error, self._status["cast_error"] = self._status["cast_error"], None
        if error is not None:
            raise TalkfaceError(error)
        self._send(0, method, args)

    def _send(self, rid: int, method: str, args: tuple) -> None:
        with self._send_lock:
            if self._status["ended"]:
                self._pending.pop(rid, None)
                raise TalkfaceError("the session's process has ended")
            try:
                self._conn.send((rid, method, args))
            except (OSError, ValueError):
                self._pending.pop(rid, None)
                raise TalkfaceError("the session's process has ended") from None

    def close(self) -> None:
        """End the child (asked first, killed after CLOSE_TIMEOUT_S) and free the pipe."""
        if not self._status["ended"]:
            try:
                self._send(0, "close", ())
            except TalkfaceError:
                pass
        self._finalizer()


def _read_replies(conn, pending: dict[int, Future], status: dict) -> None:
    """The parent's reader thread: hand each reply to the call waiting for it, until the child ends."""
    try:
        while True:
            rid, ok, value = conn.recv()
            if rid == 0:
                status["cast_error"] = value
                continue
            future = pending.pop(rid, None)
            if future is None:
                continue
            if ok == "ok":
                future.set_result(value)
            elif ok == "error":
                future.set_exception(TalkfaceError(value))
            else:
                future.set_exception(RuntimeError(value))
    except (EOFError, OSError):
        pass
    status["ended"] = True
    for rid in list(pending):
        future = pending.pop(rid, None)
        if future is not None and not future.done():
            future.set_exception(TalkfaceError("the session's process has ended"))


def _stop(process, conn, reader: threading.Thread) -> None:
    """Tell the child to end and wait for it, killing it if it lingers. Also the finalizer of a proxy that
    was dropped without close(): its child still waits on the pipe, so it is told here (a second close
    after close() is harmless: the child may have gone, and the pipe with it)."""
    try:
        conn.send((0, "close", ()))
    except (OSError, ValueError):
        pass
    process.join(CLOSE_TIMEOUT_S)
    if process.is_alive():
        log.warning("a session process did not end in %g s: killing it", CLOSE_TIMEOUT_S)
        process.kill()
        process.join(1.0)
    reader.join(1.0)  # the child's end is closed: the reader sees EOF
    conn.close()


# -- the child -------------------------------------------------------------------------------------------
class _Host:
    """What a child holds: a Session, and for kind "avatar" the LiveAvatar around it."""

    def __init__(self, kind: str, portrait, options: dict):
        self.session = Session(portrait, **options)
        self.avatar = LiveAvatar(self.session) if kind == "avatar" else None
        self.target = self.avatar or self.session  # what push_audio and interrupt go to
        self.motion = None  # export.live.LiveMotion, once asked for

    def open(self) -> dict:
        s = self.session
        info = {"fps": s.fps, "frame_size": s.frame_size, "options": s.options, "payload": s.payload}
        if self.avatar is not None:
            info["sample_rate"] = self.avatar.sample_rate
        return info

    def push_audio(self, pcm: np.ndarray, sample_rate: int) -> None:
        self.target.push_audio(pcm, sample_rate)

    def interrupt(self):
        return self.target.interrupt()

    def set_emotion(self, emotion: str, strength: float | None) -> None:
        self.session.set_emotion(emotion, strength)

    def flush(self) -> None:
        self.session.flush()

    def reset(self) -> None:
        self.session.reset()

    def set_lookahead(self, seconds: float) -> float:
        return self.session.set_lookahead(seconds)

    def backlog(self) -> tuple[float, int]:
        return self.session.backlog()

    def drop(self, n: int) -> int:
        return self.session.drop(n)

    def next_frame(self) -> tuple[float, np.ndarray] | None:
        return next(self.session.frames(), None)  # a new generator each time: frames() keeps no state

    def step(self) -> list[AvatarFrame]:
        return self.avatar.step()

    def queued_seconds(self) -> float:
        return self.avatar.queued_seconds

    def start_motion(self) -> None:
        from talkface.export.live import LiveMotion

        self.motion = LiveMotion(self.session)

    def motion_message(self, generation: int, index: int, timestamp: float) -> dict | None:
        return self.motion.message(generation, index, timestamp)

    def close(self) -> None:
        self.session.close()


def _serve(conn) -> None:
    """The child's main: answer requests in order until the pipe closes or a close request comes."""
    host: _Host | None = None
    send_lock = threading.Lock()
    renders: queue.SimpleQueue = queue.SimpleQueue()

    def run(rid: int, method: str, args: tuple) -> None:
        nonlocal host
        try:
            if method == "open":
                host = _Host(*args)
                value = host.open()
            else:
                value = getattr(host, method)(*args)
        except TalkfaceError as e:
            reply = (rid, "error", str(e))
        except Exception as e:  # an engine fault: the parent reports it, the session ends there
            log.exception("session process: %s failed", method)
            reply = (rid, "fault", f"{type(e).__name__}: {e}")
        else:
            if not rid:
                return
            reply = (rid, "ok", value)
        with send_lock:
            conn.send(reply)

    def render_loop() -> None:
        while (request := renders.get()) is not None:
            run(*request)

    renderer = threading.Thread(target=render_loop, name="talkface-render", daemon=True)
    renderer.start()
    try:
        while True:
            rid, method, args = conn.recv()
            if method == "close":
                break
            if method in _RENDERS:
                renders.put((rid, method, args))
            else:
                run(rid, method, args)
    except (EOFError, OSError, KeyboardInterrupt):
        pass
    renders.put(None)
    renderer.join(CLOSE_TIMEOUT_S / 2)
    if host is not None:
        host.close()
    conn.close()


# -- the parent's proxies ----------------------------------------------------------------------------------
class _Proxy:
    """What both proxies share: a child holding `kind`, its frame rate and size, and the calls that go to
    the session or avatar alike."""

    kind = ""

    def __init__(self, portrait: str | Path | np.ndarray, **options):
        self._worker = _Worker(self.kind, portrait, options)
        self.info = self._worker.info
        self.fps: float = self.info["fps"]
        self.frame_size: tuple[int, int] = self.info["frame_size"]

    def push_audio(self, pcm: np.ndarray, sample_rate: int) -> None:
        self._worker.cast("push_audio", np.asarray(pcm), int(sample_rate))

    def interrupt(self):
        return self._worker.call("interrupt")

    def set_emotion(self, emotion: str, strength: float | None = None) -> None:
        self._worker.call("set_emotion", emotion, strength)

    def close(self) -> None:
        self._worker.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ProcessSession(_Proxy):
    """talkface.Session's interface (push_audio, frames, set_emotion, flush, interrupt, backlog, drop,
    reset, set_lookahead, close) with the Session in its own process. Same arguments and errors as
    Session; frames() yields (timestamp in seconds, RGB uint8 (H, W, 3)) rendered in the child.
    push_audio() returns at once: a chunk it refuses raises at the next push_audio()."""

    kind = "session"

    def __init__(self, portrait: str | Path | np.ndarray, **options):
        super().__init__(portrait, **options)
        self.options = self.info["options"]
        self.payload = self.info["payload"]

    def flush(self) -> None:
        self._worker.call("flush")

    def reset(self) -> None:
        self._worker.call("reset")

    def set_lookahead(self, seconds: float) -> float:
        return self._worker.call("set_lookahead", float(seconds))

    def backlog(self) -> tuple[float, int]:
        return self._worker.call("backlog")

    def drop(self, n: int) -> int:
        return self._worker.call("drop", int(n))

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        while (item := self._worker.call("next_frame")) is not None:
            yield item

    def live_motion(self) -> _ProcessMotion:
        """export.live.LiveMotion in the child: its message() answers for the frames rendered there."""
        self._worker.call("start_motion")
        return _ProcessMotion(self._worker)


class _ProcessMotion:
    def __init__(self, worker: _Worker):
        self._worker = worker

    def message(self, generation: int, index: int, timestamp: float) -> dict | None:
        return self._worker.call("motion_message", generation, index, timestamp)


class ProcessAvatar(_Proxy):
    """stream.avatar.LiveAvatar's interface (push_audio, interrupt, step, set_emotion, close) with the avatar
    and its Session in their own process, made from a portrait and Session options."""

    kind = "avatar"

    def __init__(self, portrait: str | Path | np.ndarray, **options):
        super().__init__(portrait, **options)
        self.sample_rate: int = self.info["sample_rate"]

    @property
    def queued_seconds(self) -> float:
        return self._worker.call("queued_seconds")

    def step(self) -> list[AvatarFrame]:
        return self._worker.call("step")
