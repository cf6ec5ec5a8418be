"""The page in a real browser: headless Chromium (Debian's package) driven by playwright, with a fake
microphone that plays a WAV of speech, against `talkface serve` started as a user would start it.

Chromium is installed by `make test` (the `browser` step); when it is missing and cannot be installed here
(not root, no apt-get), the test is skipped and says why. Playwright never downloads a browser: it is given
the system Chromium's path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script, write_audio

from talkface.face import topology as T

SIZE = 256  # the page's size option used here; the conftest rig is built at this size
BROWSER_NAMES = ("chromium", "chromium-browser")


def find_chromium() -> str | None:
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def install_chromium() -> str:
    """Debian's chromium, installed with apt-get when we may; else a skip that says why."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and cannot be installed here (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if r.returncode != 0:
        pytest.skip(f"chromium could not be installed: {r.stderr.strip().splitlines()[-1:]}")
    path = find_chromium()
    if path is None:
        pytest.skip("apt-get installed chromium but no chromium binary is on PATH")
    return path


@pytest.fixture(scope="module")
def chromium() -> str:
    pytest.importorskip("playwright.sync_api", reason="playwright is in requirements-dev.lock")
    return find_chromium() or install_chromium()


@pytest.fixture(scope="module")
def server():
    """`talkface serve` on a free port, as a user runs it (scripts/av_sync.py starts it and waits for its
    /health); yields its base URL."""
    with load_script("av_sync").server(zero_rtp_origin=False) as url:
        yield url


@pytest.fixture(scope="module")
def mic_wav(tmp_path_factory) -> Path:
    """What the fake microphone hears: 4 s of the bundled speech then 1.5 s of silence (it loops)."""
    from talkface.assets import asset_path
    from talkface.audio.load import load_audio

    speech = load_audio(asset_path("speech.flac")).samples[: 4 * 16000]
    x = np.concatenate([speech, np.zeros(24000, np.float32)]).astype(np.float32)
    return write_audio(tmp_path_factory.mktemp("mic") / "mic.wav", x, 16000)


# Runs in the page: every 80 ms, the luma of the avatar canvas in each box, kept until collected.
SAMPLER = """(boxes) => {
  const g = document.getElementById("avatar").getContext("2d", { willReadFrequently: true });
  window.samples = [];
  window.sampler = setInterval(() => {
    window.samples.push(boxes.map(([x, y, w, h]) => {
      const d = g.getImageData(x, y, w, h).data;
      const luma = new Array(w * h);
      for (let i = 0; i < w * h; i++) luma[i] = (d[4 * i] + d[4 * i + 1] + d[4 * i + 2]) / 3;
      return luma;
    }));
  }, 80);
}"""


def as_rect(box: tuple[slice, slice]) -> list[int]:
    rows, cols = box
    return [cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start]


def box_around(points: np.ndarray, margin: float) -> tuple[slice, slice]:
    x0, y0 = points[:, :2].min(0) - margin
    x1, y1 = points[:, :2].max(0) + margin
    return slice(int(y0), int(np.ceil(y1))), slice(int(x0), int(np.ceil(x1)))


def test_the_page_talks_with_a_fake_microphone(chromium, server, mic_wav, rig, tmp_path):
    from playwright.sync_api import sync_playwright

    mouth = box_around(rig.points[T.INNER_LIP], 0.15 * rig.eye_distance)
    # As wide on the nose, between its tip and the upper lip: it moves with the head, not the jaw, and stays
    # clear of the lower eyelids, where the blinks show
    tip, lip = rig.points[T.NOSE_TIP][1], rig.points[T.OUTER_UPPER][:, 1].min()
    nose = (slice(int(tip - 0.3 * rig.eye_distance), int(lip - 0.1 * rig.eye_distance)), mouth[1])
    args = [
        "--no-sandbox",  # tests run as root in a container
        "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic_wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 720})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server)
            page.select_option("#size", str(SIZE))
            page.eval_on_selector("#motion-scale", "el => { el.value = '0'; }")  # hold the head still
            page.click("#mic")
            page.wait_for_function("() => window.talkface.stats.framesReceived > 10", timeout=60_000)
            page.evaluate(SAMPLER, [as_rect(mouth), as_rect(nose)])
            time.sleep(3.0)
            page.screenshot(path=str(tmp_path / "talking.png"))
            time.sleep(3.0)  # 6 s in all: longer than one loop of the WAV, speech and silence
            samples = page.evaluate("() => { clearInterval(window.sampler); return window.samples; }")
            stats = page.evaluate("() => window.talkface.stats")
            page.click("#stop")
        finally:
            browser.close()
    print(f"screenshot: {tmp_path / 'talking.png'}; stats: {stats}")
    assert not errors, errors
    assert stats["error"] is None, stats
    assert stats["framesReceived"] >= 100, stats  # ~7 s at 25 fps
    assert stats["framesDrawn"] >= 0.9 * stats["framesReceived"], stats
    assert stats["latencyMedianMs"] is not None and stats["latencyMedianMs"] < 1000, stats
    assert len(samples) >= 40, len(samples)
    mouths = np.array([m for m, _ in samples], np.float32)  # (samples, pixels)
    noses = np.array([n for _, n in samples], np.float32)
    mouth_change = np.abs(np.diff(mouths, axis=0)).mean(axis=1)
    nose_change = np.abs(np.diff(noses, axis=0)).mean(axis=1)
    assert mouth_change.mean() > 2.5 * nose_change.mean() and mouth_change.max() > 8, (
        mouth_change.round(1),
        nose_change.round(1),
    )
    # The 1.5 s of silence in each loop closes the mouth: some samples see it still.
    assert (mouth_change < 0.5).sum() >= 3, mouth_change.round(1)


def test_upload_a_portrait_and_play_an_audio_file_in_sync(chromium, server, mic_wav, tmp_path):
    """The other path of the page: a portrait uploaded from disk, then a speech file streamed in real time
    and played back delayed by the measured latency, the frames drawn when their audio is heard."""
    import cv2
    from playwright.sync_api import sync_playwright

    from talkface.assets import asset_path

    png = tmp_path / "me.png"
    cv2.imwrite(str(png), cv2.imread(str(asset_path("portrait.jpg")))[::2, ::2])
    speech = tmp_path / "speech.wav"
    shutil.copy(mic_wav, speech)
    args = ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server)
            page.select_option("#size", str(SIZE))
            page.set_input_files("#portrait-file", str(png))
            page.wait_for_function(
                "() => document.getElementById('portrait-status').textContent.includes('face found')",
                timeout=30_000,
            )
            assert page.is_checked("#portrait-upload-choice")
            page.set_input_files("#audio-file", str(speech))
            # The file is 5.5 s long: the run ends by itself when its playback ends.
            page.wait_for_function("() => window.talkface.stats.status === 'done'", timeout=60_000)
            stats = page.evaluate("() => window.talkface.stats")
        finally:
            browser.close()
    assert not errors, errors
    assert stats["error"] is None, stats
    assert stats["framesReceived"] >= 5.0 * 25, stats
    assert stats["framesDrawn"] >= 0.9 * stats["framesReceived"], stats
    # Playback waited for the first frame: the delay is its latency plus the page's jitter margin.
    assert 120 <= stats["audioDelayMs"] < 3000, stats
