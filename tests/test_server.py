"""The live server: routes, upload checks, limits, the WebSocket protocol, and frames for speech."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import socket
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from conftest import synth_speech

from talkface.assets import asset_path
from talkface.config import ServerSettings
from talkface.face import topology as T
from talkface.stream.server import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_TRY_LATER,
    FRAME_HEADER,
    ClientError,
    _parse_start,
    _ServerState,
    create_app,
    static_dir,
)

starlette_testclient = pytest.importorskip("starlette.testclient", reason="needs requirements-dev.lock")
TestClient = starlette_testclient.TestClient
WebSocketDisconnect = pytest.importorskip("starlette.websockets").WebSocketDisconnect

SIZE = 256  # frame side in these tests (the conftest rig is built at this size)
FPS = 25.0


@contextlib.contextmanager
def ws_connect(client: TestClient, path: str = "/ws", **kwargs):
    """client.websocket_connect(path), whose teardown tolerates one race of starlette's TestClient: on exit
    it sends the close and at once cancels the app's scope, and under CPU load that cancellation can land
    while the app is still unwinding after the close, which the test client reports as a cancelled
    future (the app closed cleanly; what the test checks has been asserted inside the block)."""
    session = client.websocket_connect(path, **kwargs)
    ws = session.__enter__()
    try:
        yield ws
    except BaseException as e:
        if not session.__exit__(type(e), e, e.__traceback__):
            raise
    else:
        with contextlib.suppress(concurrent.futures.CancelledError):
            session.__exit__(None, None, None)


@pytest.fixture
def client():
    with TestClient(create_app(ServerSettings(max_sessions=2))) as c:
        yield c


def start_message(**extra) -> dict:
    message = {"type": "start", "portrait": "bundled", "sample_rate": 16000, "format": "s16", "channels": 1}
    message["options"] = {"size": SIZE}
    message.update(extra)
    return message


def to_s16(x: np.ndarray) -> bytes:
    return np.clip(np.round(x * 32767), -32768, 32767).astype("<i2").tobytes()


def receive_until_flushed(ws, limit: int = 2000) -> tuple[list[tuple[int, int, float, bytes]], dict]:
    """Frames (generation, index, timestamp, jpeg) up to the "flushed" message, and that message."""
    frames = []
    for _ in range(limit):
        message = ws.receive()
        if message.get("bytes") is not None:
            data = message["bytes"]
            frames.append((*FRAME_HEADER.unpack_from(data), data[FRAME_HEADER.size :]))
        elif message.get("text") is not None:
            reply = json.loads(message["text"])
            assert reply["type"] == "flushed", reply
            return frames, reply
        else:
            raise AssertionError(f"socket closed before flushed: {message}")
    raise AssertionError("no flushed message")


def expect_close(ws, code: int, text: str) -> None:
    """The server sends an error naming `text`, then closes with `code`."""
    reply = ws.receive_json()
    assert reply["type"] in ("error", "busy"), reply
    assert text in reply["message"], reply
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == code


def decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def box_around(points: np.ndarray, margin: float) -> tuple[slice, slice]:
    x0, y0 = points[:, :2].min(0) - margin
    x1, y1 = points[:, :2].max(0) + margin
    return slice(int(y0), int(np.ceil(y1))), slice(int(x0), int(np.ceil(x1)))


# -- routes -------------------------------------------------------------------------------------------


def test_health_page_and_static_files(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["sessions"] == 0 and health["max_sessions"] == 2
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<canvas id="avatar"' in page.text and "/static/app.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "worklet.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/nothing.js").status_code == 404
    portrait = client.get("/portraits/bundled")
    assert portrait.status_code == 200 and portrait.content[:2] == b"\xff\xd8"


def test_page_loads_nothing_from_elsewhere():
    for path in static_dir().iterdir():
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path.name


# -- portrait upload ----------------------------------------------------------------------------------


def test_upload_a_portrait_then_start_a_session_with_it(client):
    image = cv2.imread(str(asset_path("portrait.jpg")))
    png = cv2.imencode(".png", image)[1].tobytes()
    r = client.post("/portraits", files={"image": ("me.png", png, "image/png")})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (image.shape[1], image.shape[0])
    raw = client.post("/portraits", content=png, headers={"Content-Type": "image/png"})
    assert raw.status_code == 201 and raw.json()["id"] != body["id"]
    with ws_connect(client) as ws:
        ws.send_json(start_message(portrait=body["id"]))
        ready = ws.receive_json()
        assert ready["type"] == "ready" and (ready["width"], ready["height"]) == (SIZE, SIZE)


def test_a_start_may_ask_for_the_learned_lips_look_ahead(client):
    """ "lookahead": the session waits for that much audio past each frame where its generator can use it;
    ready says how many frame periods ahead to send the audio for the frames to come as early."""
    for generator, lead in (("learned", 1), ("rules", 0)):
        with ws_connect(client) as ws:
            ws.send_json({**start_message(options={"size": SIZE, "generator": generator}), "lookahead": 0.08})
            ready = ws.receive_json()
            assert ready["type"] == "ready" and ready["lead_frames"] == lead, ready
    for bad in ("0.08", -0.01, 0.5, True):
        with ws_connect(client) as ws:
            ws.send_json({**start_message(), "lookahead": bad})
            reply = ws.receive_json()
            assert reply["type"] == "error" and "lookahead must be" in reply["message"], reply


@pytest.mark.parametrize(
    "content, ctype, status, text",
    [
        (b"hello, not an image", "image/png", 415, "not a supported image"),
        (b"GIF89a" + bytes(100), "image/gif", 415, "not a supported image"),
        (b"", "image/png", 400, "empty upload"),
        (b"{}", "application/json", 415, "multipart/form-data"),
    ],
)
def test_upload_rejects_what_is_not_an_image(client, content, ctype, status, text):
    r = client.post("/portraits", content=content, headers={"Content-Type": ctype})
    assert r.status_code == status and text in r.json()["error"], r.text


def test_upload_rejects_a_face_less_image(client):
    gradient = np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (300, 1))
    png = cv2.imencode(".png", gradient)[1].tobytes()
    r = client.post("/portraits", files={"image": ("wall.png", png, "image/png")})
    assert r.status_code == 422 and "no face" in r.json()["error"]


def test_upload_size_limits():
    with TestClient(create_app(ServerSettings(max_upload_bytes=100_000, max_upload_pixels=1_000_000))) as c:
        big = np.random.default_rng(0).integers(0, 255, (400, 400, 3), np.uint8)
        png = cv2.imencode(".png", big)[1].tobytes()  # noise does not compress: ~480 kB
        r = c.post("/portraits", files={"image": ("big.png", png, "image/png")})
        assert r.status_code == 413 and "too large" in r.json()["error"]
        # Small on disk, large once decoded: refused from the header, before decoding.
        wide = cv2.imencode(".png", np.zeros((1000, 1200, 3), np.uint8))[1].tobytes()
        assert len(wide) < 100_000
        r = c.post("/portraits", content=wide, headers={"Content-Type": "image/png"})
        assert r.status_code == 413 and "megapixels" in r.json()["error"]


# -- limits and bad messages --------------------------------------------------------------------------


def test_busy_beyond_the_session_limit_and_free_again_after():
    with TestClient(create_app(ServerSettings(max_sessions=1))) as c:
        with ws_connect(c) as first:
            first.send_json(start_message())  # a slot is the started session's, not the connection's
            assert first.receive_json()["type"] == "ready"
            assert c.get("/health").json()["sessions"] == 1
            with ws_connect(c) as second:
                expect_close(second, CLOSE_TRY_LATER, "server busy")
        deadline = time.time() + 5
        while c.get("/health").json()["sessions"] and time.time() < deadline:
            time.sleep(0.05)
        assert c.get("/health").json()["sessions"] == 0
        with ws_connect(c) as again:
            again.send_json({"type": "ping"})
            assert again.receive_json() == {"type": "pong"}


@pytest.mark.parametrize(
    "send, text",
    [
        ("not json", "must be JSON"),
        ('["start"]', "unknown message type"),
        ('{"type": "dance"}', "unknown message type 'dance'"),
        (b"\x00\x01", "audio before start"),
        ('{"type": "flush"}', "flush before start"),
        ('{"type": "emotion", "emotion": "sad"}', "emotion before start"),
        (json.dumps(start_message(portrait="nope")), "unknown portrait 'nope'"),
        (json.dumps(start_message(sample_rate=44100.5)), "sample_rate must be an integer"),
        (json.dumps(start_message(sample_rate=100)), "sample_rate must be an integer"),
        (json.dumps(start_message(format="u8")), "format must be one of"),
        (json.dumps(start_message(channels=6)), "channels must be 1 or 2"),
        (json.dumps(start_message(options={"crf": 10})), "unknown option 'crf'"),
        (json.dumps(start_message(options={"size": "big"})), "option 'size' has a bad value"),
        (json.dumps(start_message(options={"size": 1024})), "above this server's limit"),
        (json.dumps(start_message(options={"gaze": [1]})), "option 'gaze' has a bad value"),
        (json.dumps(start_message(options={"emotion": "bored"})), "--emotion 'bored' is not one of"),
        (json.dumps(start_message(options={"emotion": "sad@2,happy@1"})), "times must increase"),
        (json.dumps(start_message(options={"emotion": 3})), "option 'emotion' has a bad value"),
        (json.dumps(start_message(options={"motion_scale": 9.0})), "--motion-scale 9.0 is out of range"),
    ],
)
def test_bad_messages_get_an_error_and_a_clean_close(client, send, text):
    with ws_connect(client) as ws:
        if isinstance(send, bytes):
            ws.send_bytes(send)
        else:
            ws.send_text(send)
        expect_close(ws, CLOSE_POLICY, text)
    assert client.get("/health").json()["status"] == "ok"


def test_start_takes_the_animate_options_that_make_sense_live():
    state = _ServerState(ServerSettings(), None)
    sent = {
        "size": 256,
        "fps": 25,
        "seed": 3,
        "motion_scale": 0.5,
        "expression_scale": 1,
        "gaze": [5, -3],
        "emotion": "happy",
        "emotion_strength": 1.2,
        "head_distance": 1.1,
        "label": True,
    }
    _, options, rate, _, channels = _parse_start(start_message(options=sent), state)
    assert options == {**sent, "gaze": (5.0, -3.0)} and (rate, channels) == (16000, 1)
    assert type(options["fps"]) is float and type(options["seed"]) is int
    track = {"emotion": "neutral@0,happy:0.8@2.5"}  # a track, as the command line takes it
    assert _parse_start(start_message(options=track), state)[1] == track
    for name, value in (("crf", 10), ("full_frame", True), ("motion_model", "/tmp/x.onnx")):
        with pytest.raises(ClientError, match=f"unknown option '{name}'"):
            _parse_start(start_message(options={name: value}), state)
    # the two generators that stream; the loudness baseline is for evaluation only
    assert _parse_start(start_message(options={"generator": "learned"}), state)[1] == {"generator": "learned"}
    with pytest.raises(ClientError, match="generator must be one of rules, learned"):
        _parse_start(start_message(options={"generator": "loudness"}), state)


def test_bad_audio_after_start(client):
    with ws_connect(client) as ws:
        ws.send_json(start_message())
        assert ws.receive_json()["type"] == "ready"
        ws.send_bytes(b"\x00\x01\x02")  # 1.5 int16 samples
        expect_close(ws, CLOSE_POLICY, "not a whole number")
    with ws_connect(client) as ws:
        ws.send_json(start_message(format="f32"))
        assert ws.receive_json()["type"] == "ready"
        ws.send_bytes(np.full(160, np.nan, "<f4").tobytes())
        expect_close(ws, CLOSE_POLICY, "NaN")
    with ws_connect(client) as ws:
        ws.send_json(start_message())
        assert ws.receive_json()["type"] == "ready"
        ws.send_bytes(bytes(2 * 16000 * 3))  # 3 s in one message
        expect_close(ws, CLOSE_TOO_BIG, "audio message too long")
    with ws_connect(client) as ws:
        ws.send_json(start_message())
        assert ws.receive_json()["type"] == "ready"
        ws.send_json(start_message())
        expect_close(ws, CLOSE_POLICY, "start sent twice")


def test_the_emotion_message_changes_the_frames_not_made_yet():
    from talkface.config import EMOTIONS, EmotionKey, EmotionTrack, MotionControls
    from talkface.motion.controls import emotion_rows
    from talkface.stream.session import Session

    shown, changed_at = [], []

    class Recording(Session):  # records each frame's emotion row, and the frames made before the change
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            frame = self._engine.frame
            self._engine.frame = lambda motion, i: shown.append(motion.emotion[i]) or frame(motion, i)

        def set_emotion(self, emotion, strength=None):
            changed_at.append(self._queued)
            super().set_emotion(emotion, strength)

    speech = synth_speech(2.0)
    with TestClient(create_app(session_factory=Recording)) as c:
        with ws_connect(c) as ws:
            ws.send_json(start_message(options={"size": 128, "emotion": "happy:0.5"}))
            assert ws.receive_json()["type"] == "ready"
            ws.send_bytes(to_s16(speech[:16000]))
            ws.send_json({"type": "emotion", "emotion": "sad", "strength": 0.8})
            ws.send_bytes(to_s16(speech[16000:]))
            ws.send_json({"type": "flush"})
            frames, _ = receive_until_flushed(ws)
            assert len(frames) == len(shown) == 50
            ws.send_json({"type": "emotion", "emotion": "sad", "strength": "high"})
            expect_close(ws, CLOSE_POLICY, 'an emotion message is {"type": "emotion"')
        for message, why in (
            ({"type": "emotion", "emotion": "joy"}, "--emotion 'joy' is not one of"),
            ({"type": "emotion", "emotion": "sad", "strength": 2}, "strength 2 is out of range"),
            ({"type": "emotion"}, "an emotion message is"),
        ):
            with ws_connect(c) as ws:
                ws.send_json(start_message(options={"size": 128}))
                assert ws.receive_json()["type"] == "ready"
                ws.send_json(message)
                expect_close(ws, CLOSE_POLICY, why)
    made = changed_at[0]
    assert 15 < made < 25
    track = EmotionTrack((EmotionKey(0.0, "happy", 0.5), EmotionKey(made / FPS, "sad", 0.8)))
    np.testing.assert_array_equal(np.array(shown), emotion_rows(MotionControls(emotion=track), 0, 50, FPS))
    assert shown[-1][EMOTIONS.index("sad")] == np.float32(0.8)


def test_idle_clients_are_closed():
    with TestClient(create_app(ServerSettings(idle_timeout=0.3))) as c:
        with ws_connect(c) as ws:
            ws.send_json(start_message())
            assert ws.receive_json()["type"] == "ready"
            expect_close(ws, CLOSE_GOING_AWAY, "idle for 0.3 s")
        with ws_connect(c) as ws:  # before the start, the shorter of idle_timeout and start_deadline
            expect_close(ws, CLOSE_POLICY, "no start message within 0.3 s")


def test_a_rendering_fault_ends_that_connection_only():
    from talkface.stream.session import Session

    class Broken(Session):
        def frames(self):
            raise RuntimeError("the renderer broke")

    with TestClient(create_app(session_factory=Broken)) as c:
        with ws_connect(c) as ws:
            ws.send_json(start_message())
            assert ws.receive_json()["type"] == "ready"
            ws.send_bytes(to_s16(synth_speech(0.5)))
            ws.send_json({"type": "flush"})
            expect_close(ws, CLOSE_INTERNAL, "the renderer broke")
        assert c.get("/health").json()["status"] == "ok"


def test_a_client_that_vanishes_mid_stream_frees_its_session(client):
    with ws_connect(client) as ws:
        ws.send_json(start_message())
        assert ws.receive_json()["type"] == "ready"
        for chunk in np.array_split(synth_speech(1.0), 50):
            ws.send_bytes(to_s16(chunk))
    deadline = time.time() + 10
    while client.get("/health").json()["sessions"] and time.time() < deadline:
        time.sleep(0.05)
    assert client.get("/health").json()["sessions"] == 0


# -- frames -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def speech_frames():
    """Frames for 2.5 s of speech then 1 s of silence, sent as 20 ms int16 chunks, then flushed. The head
    is held still (motion_scale 0) so that what changes in the mouth box is the mouth."""
    speech = np.concatenate([synth_speech(2.5), np.zeros(16000, np.float32)])
    with TestClient(create_app()) as c, ws_connect(c) as ws:
        ws.send_json(start_message(options={"size": SIZE, "motion_scale": 0.0}))
        ready = ws.receive_json()
        for chunk in np.array_split(speech, len(speech) // 320):
            ws.send_bytes(to_s16(chunk))
        ws.send_json({"type": "flush"})
        frames, flushed = receive_until_flushed(ws)
    return ready, frames, flushed, len(speech) / 16000


def test_frames_arrive_for_every_video_frame_of_the_audio(speech_frames):
    ready, frames, flushed, seconds = speech_frames
    assert ready == {"type": "ready", "fps": FPS, "width": SIZE, "height": SIZE, "generation": 0}
    assert flushed == {"type": "flushed", "generation": 0}
    assert abs(len(frames) - seconds * FPS) <= 1
    generations, indices, stamps, _ = zip(*frames, strict=True)
    assert set(generations) == {0}
    assert list(indices) == list(range(len(frames)))
    np.testing.assert_allclose(stamps, np.arange(len(frames)) / FPS, atol=1e-6)
    assert decode(frames[0][3]).shape == (SIZE, SIZE, 3)


def test_the_mouth_moves_with_speech_and_rests_in_silence(speech_frames, rig):
    _, frames, _, _ = speech_frames
    images = np.stack([decode(f[3]) for f in frames]).astype(np.float32)
    mouth = box_around(rig.points[T.INNER_LIP], 0.15 * rig.eye_distance)
    up = int(0.8 * rig.eye_distance)  # the same box moved up onto the nose: moves with the head, not the jaw
    nose = (slice(mouth[0].start - up, mouth[0].stop - up), mouth[1])
    change = np.abs(np.diff(images, axis=0))  # (N-1, H, W, 3)
    mouth_change = change[:, mouth[0], mouth[1]].mean(axis=(1, 2, 3))
    nose_change = change[:, nose[0], nose[1]].mean(axis=(1, 2, 3))
    speaking = slice(5, int(2.4 * FPS))
    silent = slice(int(2.9 * FPS), len(change))
    assert mouth_change[speaking].mean() > 3 * mouth_change[silent].mean() + 0.5
    assert mouth_change[speaking].mean() > 2 * nose_change[speaking].mean()
    # The mouth opens: its darkest pixels get darker while speaking than in the closing silence.
    dark = images[:, mouth[0], mouth[1]].mean(axis=3).reshape(len(images), -1)
    dark = np.percentile(dark, 5, axis=1)
    assert dark[speaking].min() < dark[silent].mean() - 10


def test_every_frame_sent_is_watermarked(speech_frames):
    from talkface.video.watermark import detect_frames

    _, frames, _, _ = speech_frames
    found = detect_frames(decode(f[3]) for f in frames[:40])
    assert found.found and found.payload.tool == "talkface"


def test_reset_starts_a_new_stream_and_stereo_float_is_accepted(client):
    with ws_connect(client) as ws:
        ws.send_json(start_message(sample_rate=48000, format="f32", channels=2))
        assert ws.receive_json()["type"] == "ready"
        x = synth_speech(0.6, rate=48000)
        stereo = np.column_stack([x, 0.5 * x]).astype("<f4")
        ws.send_bytes(stereo.tobytes())
        ws.send_json({"type": "flush"})
        first, flushed = receive_until_flushed(ws)
        assert flushed["generation"] == 0 and abs(len(first) - 0.6 * FPS) <= 1
        ws.send_json({"type": "reset"})
        ws.send_bytes(stereo[: 48000 * 2 // 5].tobytes())  # 0.4 s
        ws.send_json({"type": "flush"})
        second, flushed = receive_until_flushed(ws)
    assert flushed["generation"] == 1
    assert {f[0] for f in second} == {1} and abs(len(second) - 0.4 * FPS) <= 1
    assert second[0][2] == 0.0 and second[0][1] == 0


# -- the serve command --------------------------------------------------------------------------------


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "talkface.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_serve_bad_arguments_give_one_line_and_exit_2():
    r = run_cli("serve", "--port", "70000")
    assert r.returncode == 2 and "--port 70000 is out of range" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("serve", "--max-sessions", "0")
    assert r.returncode == 2 and "--max-sessions 0" in r.stderr and "Traceback" not in r.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_cli("serve", "--port", str(port))
    assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_bench_measures_stream_latency_and_rate(portrait):
    from talkface.eval.bench import stream_latency, stream_throughput

    speech = synth_speech(3.0)
    live = stream_latency(portrait, speech, SIZE, FPS)
    # Fed in real time the session keeps up (25 fps) and each frame leaves within a fraction of a second;
    # it cannot leave before its own audio has been pushed.
    assert 0 < live["stream_latency_ms"] <= live["stream_latency_p90_ms"] < 1000, live
    assert abs(live["stream_realtime_fps"] - FPS) < 2, live
    assert stream_throughput(portrait, speech, SIZE, FPS) > FPS
