"""The live server against hostile or careless clients (issue 17): connections that hold slots without
working, decompression bombs, values of the wrong type, foreign pages, stalled uploads, and sessions that
must be freed when their connection ends."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
import time
import weakref

import cv2
import numpy as np
import pytest
from conftest import synth_speech
from test_server import expect_close, start_message, to_s16, ws_connect

from talkface.config import ServerSettings
from talkface.stream import server
from talkface.stream.server import (
    CLOSE_GOING_AWAY,
    CLOSE_POLICY,
    CLOSE_TRY_LATER,
    FRAME_HEADER,
    close_reason,
    create_app,
    origin_allowed,
)

TestClient = pytest.importorskip("starlette.testclient", reason="needs requirements-dev.lock").TestClient
WebSocketDisconnect = pytest.importorskip("starlette.websockets").WebSocketDisconnect


class FakeSession:
    """The Session interface without a face: a grey frame for every 640 samples (25 fps at 16 kHz)."""

    fps = 25.0
    frame_size = (64, 64)

    def __init__(self, portrait, **options):
        self.samples = self.sent = 0

    def push_audio(self, pcm, rate):
        self.samples += len(pcm)

    def frames(self):
        while self.sent < self.samples // 640:
            self.sent += 1
            yield (self.sent - 1) / self.fps, np.full((64, 64, 3), 128, np.uint8)

    def flush(self):
        self.samples = -(-self.samples // 640) * 640

    def backlog(self):
        return self.sent / self.fps, self.samples // 640 - self.sent

    def drop(self, n):
        n = min(n, self.samples // 640 - self.sent)
        self.sent += n
        return n

    def reset(self):
        self.samples = self.sent = 0

    def set_emotion(self, emotion, strength=None):
        pass

    def close(self):
        pass


def fake_app(**settings):
    return create_app(ServerSettings(**settings), session_factory=FakeSession)


# -- 1. slots go to working clients ---------------------------------------------------------------


def test_a_client_that_never_starts_is_closed_however_often_it_pings():
    with TestClient(fake_app(start_deadline=0.5, idle_timeout=60)) as c, ws_connect(c) as ws:
        t = time.monotonic()
        for _ in range(3):  # pings are answered, but buy no time
            ws.send_json({"type": "ping"})
            assert ws.receive_json() == {"type": "pong"}
            time.sleep(0.1)
        expect_close(ws, CLOSE_POLICY, "no start message within 0.5 s")
        assert time.monotonic() - t < 2


def test_pings_do_not_keep_a_started_session_alive():
    with TestClient(fake_app(idle_timeout=0.6)) as c, ws_connect(c) as ws:
        ws.send_json(start_message())
        assert ws.receive_json()["type"] == "ready"
        t = time.monotonic()
        for _ in range(50):
            ws.send_json({"type": "ping"})
            reply = ws.receive_json()
            if reply["type"] != "pong":
                break
            time.sleep(0.1)
        assert reply["type"] == "error" and "idle for 0.6 s" in reply["message"], reply
        assert time.monotonic() - t < 1.5
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == CLOSE_GOING_AWAY


def test_only_started_sessions_take_a_slot():
    with TestClient(fake_app(max_sessions=1)) as c:
        with ws_connect(c) as idle1, ws_connect(c) as idle2, ws_connect(c) as worker:
            for ws in (idle1, idle2):
                ws.send_json({"type": "ping"})
                assert ws.receive_json() == {"type": "pong"}
            assert c.get("/health").json()["sessions"] == 0
            worker.send_json(start_message())
            assert worker.receive_json()["type"] == "ready"
            assert c.get("/health").json()["sessions"] == 1
            idle1.send_json(start_message())  # the slot is taken: busy at the start
            expect_close(idle1, CLOSE_TRY_LATER, "server busy")
            with ws_connect(c) as late:  # and at once for a new connection
                expect_close(late, CLOSE_TRY_LATER, "server busy")
        deadline = time.time() + 5
        while c.get("/health").json()["sessions"] and time.time() < deadline:
            time.sleep(0.05)
        assert c.get("/health").json()["sessions"] == 0


# -- 2. uploads that decode to much more than they weigh -----------------------------------------------


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def test_a_decompression_bomb_is_refused_from_its_header():
    # 1200 x 1200 16-bit RGBA: 13 kB of PNG, 11 MB once decoded (the issue's: 6300 x 6300, 309 kB, 1.8 GB)
    bomb = png(np.zeros((1200, 1200, 4), np.uint16))
    assert len(bomb) < 20_000
    with TestClient(fake_app(max_decode_bytes=4 * 2**20)) as c:
        r = c.post("/portraits", content=bomb, headers={"Content-Type": "image/png"})
        assert r.status_code == 413 and "too large to decode" in r.json()["error"], r.text
        small = png(np.zeros((300, 300, 4), np.uint16))  # the same kind, within the budget: decoded
        assert server._decode_portrait(small, ServerSettings(max_decode_bytes=4 * 2**20)).shape == (
            300,
            300,
            3,
        )
    per_pixel = {m: server.decode_bytes_per_pixel(m) for m in ("L", "RGB", "RGBA", "P", "I;16")}
    assert per_pixel == {"L": 3, "RGB": 6, "RGBA": 16, "P": 13, "I;16": 26}


def test_uploads_are_decoded_downscaled_and_damage_is_a_422():
    rng = np.random.default_rng(0)
    settings = ServerSettings(max_portrait_side=128)
    big = cv2.imencode(".jpg", rng.integers(0, 255, (1000, 800, 3), np.uint8))[1].tobytes()
    assert server._decode_portrait(big, settings).shape == (128, 102, 3)
    rgba = png(rng.integers(0, 255, (90, 60, 4), np.uint8))
    with pytest.raises(server._HTTPError) as damaged:
        server._decode_portrait(rgba[: len(rgba) // 2], settings)  # truncated
    assert damaged.value.status == 422


def test_uploads_are_decoded_one_at_a_time(monkeypatch):
    running, most = [0], [0]
    lock = threading.Lock()

    def slow_decode(data, settings):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        return np.zeros((64, 64, 3), np.uint8)

    monkeypatch.setattr(server, "_decode_portrait", slow_decode)
    monkeypatch.setattr(server, "_check_face", lambda image: None)
    with TestClient(fake_app()) as c:

        def post():
            c.post("/portraits", content=b"x" * 100, headers={"Content-Type": "image/png"})

        threads = [threading.Thread(target=post) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert most[0] == 1


# -- 3. values of the wrong type, long and non-ASCII values, foreign pages ------------------------------


@pytest.mark.parametrize(
    "message, text",
    [
        (start_message(channels=2.0), "channels must be 1 or 2, got 2.0"),
        (start_message(channels=True), "channels must be 1 or 2, got True"),
        (start_message(format=["s16"]), "format must be one of"),
        (start_message(portrait={"id": 1}), "portrait must be a string"),
        ({"type": ["start"]}, "unknown message type ['start']"),
        (start_message(options={"generator": "loudness"}), "generator must be one of rules, learned"),
    ],
)
def test_values_of_the_wrong_type_are_refused(message, text):
    with TestClient(fake_app()) as c, ws_connect(c) as ws:
        ws.send_text(json.dumps(message))
        expect_close(ws, CLOSE_POLICY, text)


def test_long_and_non_ascii_values_are_cut_in_replies():
    with TestClient(create_app(ServerSettings())) as c:
        with ws_connect(c) as ws:
            ws.send_json(start_message(portrait="x" * 100_000))
            reply = ws.receive_json()
            assert reply["type"] == "error" and "unknown portrait 'xxx" in reply["message"]
            assert len(reply["message"]) < 200
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == CLOSE_POLICY
        with ws_connect(c) as ws:
            ws.send_json(start_message(options={"emotion": "heureuse-é" * 50}))
            reply = ws.receive_json()
            assert reply["type"] == "error" and "é" in reply["message"]  # the JSON message keeps it
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == CLOSE_POLICY
            reason = closed.value.reason
            assert reason.isascii() and 0 < len(reason.encode()) <= 123, reason
    assert close_reason("é" * 200) == "?" * 123


def test_pages_of_other_origins_are_refused():
    png_bytes = png(np.zeros((64, 64, 3), np.uint8))
    with TestClient(fake_app(allowed_origins="https://app.example, http://10.0.0.2:8080/")) as c:
        for origin in (
            "http://testserver",
            "http://localhost:5173",
            "http://127.0.0.1:8000",
            None,
            "https://app.example",
            "http://10.0.0.2:8080",
        ):
            headers = {"origin": origin} if origin else {}
            with ws_connect(c, headers=headers) as ws:
                ws.send_json({"type": "ping"})
                assert ws.receive_json() == {"type": "pong"}, origin
        for origin in ("https://evil.example", "null", "http://testserver.evil.example", "http://10.0.0.2"):
            with pytest.raises(WebSocketDisconnect) as refused:
                c.websocket_connect("/ws", headers={"origin": origin}).__enter__()
            assert refused.value.code == CLOSE_POLICY, origin
            r = c.post(
                "/portraits", content=png_bytes, headers={"Content-Type": "image/png", "origin": origin}
            )
            assert r.status_code == 403, origin
    assert origin_allowed("https://anything.example", "me:8000", {"*"})
    assert not origin_allowed("https://me:8000", "me:8000/", set())  # a Host header is never that


# -- 4. uploads that stall or are abandoned -----------------------------------------------------------


def call_upload(app, receive_body: list, timeout: float = 5.0) -> list[dict]:
    """POST /portraits straight to the ASGI app: the client sends the chunks in receive_body (dicts of ASGI
    receive events), then nothing more. Returns what the app sent."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/portraits",
        "raw_path": b"/portraits",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"image/png"), (b"content-length", b"5000")],
        "client": ("10.1.2.3", 4567),
        "server": ("testserver", 80),
    }
    sent = []

    async def receive():
        if receive_body:
            return receive_body.pop(0)
        await asyncio.sleep(3600)  # a stalled client

    async def send(message):
        sent.append(message)

    async def run():
        await asyncio.wait_for(app(scope, receive, send), timeout)

    asyncio.run(run())
    return sent


def test_a_stalled_upload_times_out(caplog):
    app = fake_app(upload_timeout=0.3)
    t = time.monotonic()
    with caplog.at_level(logging.INFO, logger="talkface.stream.server"):
        sent = call_upload(app, [{"type": "http.request", "body": b"\x89PNG", "more_body": True}])
    assert time.monotonic() - t < 2
    assert sent[0]["status"] == 408 and b"not received within 0.3 s" in sent[1]["body"]
    assert "timed out" in caplog.text and "10.1.2.3" in caplog.text


def test_an_abandoned_upload_logs_one_line(caplog):
    app = fake_app()
    with caplog.at_level(logging.INFO):
        call_upload(
            app,
            [{"type": "http.request", "body": b"\x89PNG", "more_body": True}, {"type": "http.disconnect"}],
        )
    records = [r for r in caplog.records if "abandoned" in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is None
    assert "Traceback" not in caplog.text


# -- 5. a session is freed when its connection ends, without the garbage collector -------------------


def test_sessions_are_freed_without_the_garbage_collector(monkeypatch):
    from talkface.stream.session import Session

    alive, connections = [], []

    class Tracked(Session):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            alive.append(weakref.ref(self))

    connection_init = server._Connection.__init__

    def tracked_connection(self, *args):
        connection_init(self, *args)
        connections.append(weakref.ref(self))

    monkeypatch.setattr(server._Connection, "__init__", tracked_connection)

    speech = to_s16(synth_speech(0.5))
    with TestClient(create_app(session_factory=Tracked)) as c:
        with ws_connect(c) as ws:  # the first session imports and caches what every later one uses
            ws.send_json(start_message(options={"size": 128}))
            assert ws.receive_json()["type"] == "ready"
        gc.collect()
        gc.disable()
        try:
            with ws_connect(c) as ws:  # a stream that ends normally
                ws.send_json(start_message(options={"size": 128}))
                assert ws.receive_json()["type"] == "ready"
                ws.send_bytes(speech)
                ws.send_json({"type": "flush"})
                while ws.receive().get("text") is None:
                    pass
            with ws_connect(c) as ws:  # and one that ends in an error
                ws.send_json(start_message(options={"size": 128}))
                assert ws.receive_json()["type"] == "ready"
                ws.send_bytes(b"\x00")
                expect_close(ws, CLOSE_POLICY, "not a whole number")
            deadline = time.time() + 10  # the session closes on its connection's thread
            while any(r() is not None for r in alive[1:] + connections[1:]) and time.time() < deadline:
                time.sleep(0.05)
            assert len(alive) == 3 and [r() is None for r in alive[1:]] == [True, True]
            assert len(connections) == 3 and [r() is None for r in connections[1:]] == [True, True]
        finally:
            gc.enable()


# -- 6. fairness: real-time pacing, and skipping frames to stay live ---------------------------------------


def stream(ws, seconds: float, paced: bool) -> None:
    """Send `seconds` of silence as 20 ms int16 messages (at real-time pace if `paced`), then a flush."""
    t0 = time.monotonic()
    for i in range(int(seconds * 50)):
        ws.send_bytes(bytes(640))
        if paced:
            time.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))
    ws.send_json({"type": "flush"})


def receive_all(ws) -> tuple[list[int], list[dict]]:
    """Frame indices and messages up to "flushed"."""
    indices, messages = [], []
    while True:
        message = ws.receive()
        if message.get("bytes") is not None:
            indices.append(FRAME_HEADER.unpack_from(message["bytes"])[1])
        else:
            messages.append(json.loads(message["text"]))
            if messages[-1]["type"] == "flushed":
                return indices, messages


def test_audio_sent_faster_than_real_time_is_read_at_real_time_pace():
    with TestClient(fake_app(max_lead_seconds=0.5)) as c, ws_connect(c) as ws:
        ws.send_json(start_message())
        assert ws.receive_json()["type"] == "ready"
        t = time.monotonic()
        stream(ws, 2.0, paced=False)  # 2 s at once: 0.5 s ahead allowed, the rest paced
        indices, _ = receive_all(ws)
        assert 1.3 < time.monotonic() - t < 3.0
        assert indices == list(range(50))


def test_a_session_that_falls_behind_skips_to_live_and_is_told():
    class Slow(FakeSession):  # renders at 10 fps, for 25 fps of audio
        def frames(self):
            for item in super().frames():
                time.sleep(0.1)
                yield item

    app = create_app(ServerSettings(max_render_lag=0.4), session_factory=Slow)
    with TestClient(app) as c, ws_connect(c) as ws:
        ws.send_json(start_message())
        assert ws.receive_json()["type"] == "ready"
        stream(ws, 3.0, paced=True)
        indices, messages = receive_all(ws)
    behind = [m for m in messages if m["type"] == "behind"]
    assert behind and behind[0]["late"] >= 0.4 and all(m["skipped"] > 0 for m in behind), messages
    assert len(behind) <= 4  # at most one a second (and one at the flush)
    # Every frame is sent or skipped, in order; far fewer than 75 are rendered.
    assert len(indices) + sum(m["skipped"] for m in behind) == 75
    assert indices == sorted(indices) and len(indices) < 50


def test_session_drop_skips_frames_without_rendering_them():
    from talkface.assets import asset_path
    from talkface.stream.session import Session

    with Session(asset_path("portrait.jpg"), size=128) as s:
        s.push_audio(synth_speech(1.0), 16000)
        s.flush()
        ts, ready = s.backlog()
        assert ts == 0 and ready == 25
        assert s.drop(20) == 20 and s.backlog() == (20 / 25, 5)
        stamps = [t for t, _ in s.frames()]
        assert stamps == [i / 25 for i in range(20, 25)]
        assert s.drop(3) == 0


# -- 6. connections that never finish their headers -------------------------------------------------


def test_connections_that_stall_before_their_headers_are_closed():
    """A real uvicorn on loopback with the server's protocol: silent clients, half-sent headers and a
    keep-alive connection that stalls in its second request are all closed at the header deadline, while
    a client that sends its request in time is answered."""
    import socket

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        fake_app(), http=server.header_deadline_protocol(0.5), log_level="warning", lifespan="off"
    )
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not runner.started and time.monotonic() < deadline:
            time.sleep(0.02)

        def closed_after(payload: bytes, wait: float = 3.0) -> tuple[bytes, float]:
            """Everything the server sent until it closed the connection, and when it did."""
            with socket.create_connection(("127.0.0.1", port), timeout=wait) as c:
                t = time.monotonic()
                c.sendall(payload)
                received = b""
                while chunk := c.recv(65536):
                    received += chunk
                return received, time.monotonic() - t

        silent, t_silent = closed_after(b"")
        assert silent == b"" and 0.4 < t_silent < 2.0
        half, t_half = closed_after(b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert half == b"" and 0.4 < t_half < 2.0
        keep_alive = b"GET /portraits/none HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHo"
        answered, t_second = closed_after(keep_alive)
        assert answered.startswith(b"HTTP/1.1 ") and answered.count(b"HTTP/1.1 ") == 1
        assert 0.4 < t_second < 2.0
    finally:
        runner.should_exit = True
        thread.join(timeout=5)
