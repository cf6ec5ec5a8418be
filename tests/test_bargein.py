"""Barge-in: Session.interrupt() and the WebSocket "interrupt" message drop the queued frames at once, and the
mouth closes within 100 ms while the face goes on listening."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

import talkface
from talkface.audio.load import load_audio
from talkface.face.expression import JAW_OPEN
from talkface.stream.session import HUSH_S

SIZE = 160
FPS = 25.0


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return load_audio(talkface.assets.asset_path("speech.flac")).samples  # 16 kHz mono


@pytest.fixture(scope="module")
def session(portrait):
    with talkface.Session(portrait, size=SIZE, seed=1) as s:
        yield s


def _recording(session) -> list[np.ndarray]:
    """Make the session's engine record the motion row of every frame it renders (jaw, ..., blinks)."""
    rows: list[np.ndarray] = []
    frame = type(session._engine).frame

    def recorded(engine, motion, i):
        rows.append(np.concatenate([motion.expression[i], motion.rotation[i]]))
        return frame(engine, motion, i)

    session._engine.frame = recorded.__get__(session._engine)
    return rows


def test_interrupt_drops_frames_and_closes_the_mouth_within_100_ms(session, speech):
    session.reset()
    rows = _recording(session)
    # An agent's reply: 2.4 s of speech sent at once, far ahead of real time (20 ms chunks).
    for i in range(0, int(2.4 * 16000), 320):
        session.push_audio(speech[i : i + 320], 16000)
    shown = [t for t, _ in zip(range(20), session.frames(), strict=False)]  # 0.8 s shown so far
    assert len(shown) == 20
    _, ready = session.backlog()
    assert ready > 25  # over a second of frames still queued
    t0 = time.perf_counter()
    dropped = session.interrupt()
    assert dropped == ready
    assert session.backlog()[1] == 0  # dropped at once
    # The face goes on listening: silence comes in real-time chunks, and frames come with it.
    after = []
    for _ in range(25):
        session.push_audio(np.zeros(640, np.float32), 16000)
        for t, frame in session.frames():
            after.append((t, time.perf_counter() - t0, frame))
    jaw = np.array([r[JAW_OPEN] for r in rows])
    before, later = jaw[:20], jaw[20:]
    assert before.max() > 0.1  # it was talking
    closed = int(np.argmax(later < 1e-6))
    n_hush = round(HUSH_S * FPS)
    assert closed <= n_hush and (closed == 0 or later[:closed].max() < before.max())  # 0: it was shut
    assert np.all(later[closed:] < 1e-6)  # shut from then on: silence keeps it shut
    # ... within 100 ms of the interrupt, on the stream's clock and on the wall clock (this frame rendered).
    assert after[closed][0] - after[0][0] <= 0.1 + 1e-9
    # (wall clock: two 160-px frames take ~10 ms; the bound is loose so a busy test machine does not fail it,
    # the 512-px figure is measured in the closing note, not asserted here)
    assert after[closed][1] < 0.5, f"mouth shut {after[closed][1] * 1000:.0f} ms after the interrupt"
    # ... while the eyes and head go on (a face that listens, not a photo).
    head = np.array([r[6:9] for r in rows[20:]])
    assert np.ptp(head, axis=0).max() > 0.05


def test_interrupt_then_the_next_reply_talks_again(session, speech):
    session.reset()
    rows = _recording(session)
    for i in range(0, 16000, 320):
        session.push_audio(speech[i : i + 320], 16000)
    list(session.frames())
    session.interrupt()
    for i in range(16000, 3 * 16000, 320):  # the next reply
        session.push_audio(speech[i : i + 320], 16000)
    session.flush()
    list(session.frames())
    jaw = np.array([r[JAW_OPEN] for r in rows])
    assert jaw[-40:].max() > 0.1  # the hush is over: the lips follow the new reply
    assert session.interrupt() == 0  # nothing queued: nothing dropped


def test_websocket_interrupt(speech):
    from test_server import FRAME_HEADER, start_message, to_s16, ws_connect

    from talkface.config import ServerSettings
    from talkface.stream.server import create_app

    testclient = pytest.importorskip("starlette.testclient", reason="needs requirements-dev.lock")
    with testclient.TestClient(create_app(ServerSettings(max_sessions=1))) as client:
        with ws_connect(client) as ws:
            ws.send_json(start_message(options={"size": SIZE}))
            assert ws.receive_json()["type"] == "ready"
            # 3 s of reply at once (within the 5-s lead), then barge in after the first frames.
            for i in range(0, 3 * 16000, 16000):
                ws.send_bytes(to_s16(speech[i : i + 16000]))
            first = ws.receive_bytes()
            assert FRAME_HEADER.unpack_from(first)[1] == 0
            ws.send_text(json.dumps({"type": "interrupt"}))
            while True:
                message = ws.receive()
                if message.get("text") is not None:
                    reply = json.loads(message["text"])
                    break
                # (a frame sent before the interrupt was read)
            assert reply["type"] == "interrupted", reply
            assert reply["dropped"] > 0 and reply["generation"] == 0
            assert reply["timestamp"] == pytest.approx(reply["next_index"] / FPS)
            # Listening: silence in, frames out, none of them from before the interrupt.
            ws.send_bytes(to_s16(np.zeros(8000, np.float32)))
            ws.send_text(json.dumps({"type": "flush"}))
            indices = []
            while True:
                message = ws.receive()
                if message.get("text") is not None:
                    assert json.loads(message["text"])["type"] == "flushed"
                    break
                indices.append(FRAME_HEADER.unpack_from(message["bytes"])[1])
            assert indices and min(indices) >= reply["next_index"]
            assert indices == sorted(indices)
            assert max(indices) < 3.5 * FPS + 2


def test_a_face_that_listens(portrait):
    """10 s with no voice: the mouth stays shut, the eyes blink, the head moves (calmer than the generator's
    talking sway) and nods now and then; the same without Listening sways as much as a talker."""
    from talkface.motion.listening import LISTEN_SWAY
    from talkface.stream.avatar import LiveAvatar

    stats = {}
    for listen in (True, False):
        with talkface.Session(portrait, size=128, seed=0) as s:
            avatar = LiveAvatar(s, listen=listen)
            rows = _recording(s)
            frames = [f for _ in range(250) for f in avatar.step()]
        assert len(frames) >= 245 and not any(f.voiced for f in frames)
        rows = np.array(rows)
        blink = rows[:, 4]
        stats[listen] = {
            "jaw": rows[:, JAW_OPEN].max(),
            "blinks": int(((blink[1:] > 0.5) & (blink[:-1] <= 0.5)).sum()),
            "head_std": rows[50:, 6:9].std(axis=0),  # after the first 2 s (easing in)
            "pitch": rows[:, 7],
        }
    on, off = stats[True], stats[False]
    assert on["jaw"] == 0.0 and on["blinks"] >= 1
    assert np.all(on["head_std"] > 0.3)  # not a photo
    # calmer than a talker: yaw and roll (the nods add pitch; the learned generator sways little in pitch)
    assert np.all(on["head_std"][[0, 2]] < off["head_std"][[0, 2]] * (LISTEN_SWAY + 0.2))
    nods = on["pitch"] - off["pitch"] * LISTEN_SWAY  # what Listening added on top of the calmed sway
    assert nods.max() > 1.5  # at least one nod of a couple of degrees in 10 s
