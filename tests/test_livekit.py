"""The LiveKit integration, up to the room: tests/livekit_check.py runs LiveKit's AvatarRunner with talkface's
TalkfaceVideoGenerator in the LiveKit environment (.venv-livekit: LiveKit Agents needs protobuf >= 5.29,
talkface's mediapipe < 5), against a `talkface serve` app run here on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import talkface
from talkface.audio.load import load_audio
from talkface.config import ServerSettings
from talkface.stream.server import create_app

ROOT = Path(__file__).resolve().parent.parent
PYTHON = Path(os.environ.get("TALKFACE_LIVEKIT_PYTHON", ROOT / ".venv-livekit" / "bin" / "python"))


def _livekit_python() -> Path:
    if not PYTHON.exists():
        pytest.skip(
            f"no LiveKit environment at {PYTHON} (make test builds it from requirements-livekit.lock)"
        )
    probe = subprocess.run(
        [str(PYTHON), "-c", "import livekit.agents.voice.avatar, talkface.integrations.livekit"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if probe.returncode:
        pytest.skip(f"the LiveKit environment does not import: {probe.stderr.strip().splitlines()[-1:]}")
    return PYTHON


@pytest.fixture
def server():
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(ServerSettings(max_sessions=1)), host="127.0.0.1", port=port, log_level="warning"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield f"ws://127.0.0.1:{port}/ws"
    srv.should_exit = True
    thread.join(10)


def test_livekit_avatar_runner_with_talkface(server, tmp_path):
    python = _livekit_python()
    import soxr

    speech = load_audio(talkface.assets.asset_path("speech.flac")).samples
    x = soxr.resample(np.tile(speech, 2), 16000, 24000)
    path = tmp_path / "speech.s16"
    np.clip(np.round(x * 32767), -32768, 32767).astype("<i2").tofile(path)
    run = subprocess.run(
        [str(python), str(ROOT / "tests" / "livekit_check.py"), server, str(path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    # Published at the room boundary: the voice and the face, as LiveKit's avatar plugins do.
    assert seen["published"] == ["LocalAudioTrack", "LocalVideoTrack"]
    # Listening before the reply: frames at about the frame rate, no audio.
    assert seen["fps_idle"] > 18 and seen["audio_idle_s"] == 0
    # The first reply (3 s) played whole, then LiveKit was told it finished, not interrupted.
    assert seen["audio_first_s"] == pytest.approx(3.0, abs=0.1)
    assert seen["finished"][0]["interrupted"] is False
    assert seen["finished"][0]["position"] == pytest.approx(3.0, abs=0.1)
    assert seen["first_voice_delay_s"] < 0.6
    # Asked for the learned lips' 80-ms look-ahead, the voice goes one frame period ahead (lead_frames)
    assert seen["lead_frames"] == 1
    # The second (4 s) was cut after 1.2 s: its voice stopped, the face went on (listening).
    assert 0.8 < seen["audio_second_s"] < 1.8
    assert seen["audio_after_clear_s"] == 0
    assert seen["video_after_clear"] > 20
    assert seen["finished"][1]["interrupted"] is True
