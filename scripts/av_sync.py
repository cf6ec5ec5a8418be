"""Audio-to-video offset of the WebRTC path as a viewer gets it (issue 18).

The same signal pair is measured on three paths, and the lag between them found by cross-correlation:

    mouth(t): darkness of the mouth box (255 - mean luma) of the frame on screen at t, held per frame
    voice(t): RMS envelope of the audio heard at t (20-ms windows)
    both resampled to 100 Hz; lag = argmax of Pearson r within +-400 ms, refined by a parabola
    (positive: the mouth follows the voice, i.e. audio leads, as ITU-R BT.1359 counts it)

- reference, offline: `talkface animate --generator rules` (the mp4 decoded with PyAV; the voice is the
  input, from t = 0): A/V exact by construction, so its lag is the generator's own lip lead/lag.
- reference, live: LiveAvatar in this process, frame j at j / fps with the audio it comes with (the server's
  generator, no transport): the baseline the WebRTC path is compared with.
- browser: `talkface serve` (aiortc's RTP timestamp origins set to 0), its page in headless Chromium, an
  agent's reply sent over the data channel (#rtc-file). In the page, requestVideoFrameCallback draws each
  frame to a canvas and stamps it with expectedDisplayTime (and its RTP timestamp). The voice, two ways:
    played out: the audio receiver's synchronization sources (audioLevel, rtpTimestamp, and the time the
      packet left the jitter buffer for the audio device), polled every 5 ms: the primary measure;
    heard via WebAudio: the page's own worklet (static/worklet.js, 20-ms blocks) on a MediaStreamSource of
      the received track, stamped with AudioContext.getOutputTimestamp; this path adds its own 50-70 ms.
  The offset the WebRTC path adds = browser lag (played out) - live reference lag. The RTP cross-check: at
  each displayed frame, the audio media time played out minus the frame's media time (no content needed).
Not counted: the audio device's own latency after playout (a real sound card: 10-40 ms more audio lag).

    .venv/bin/python scripts/av_sync.py [--sizes 256 512] [--runs 3] [--seconds 12] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from talkface.assets import asset_path
from talkface.audio.load import load_audio
from talkface.eval.metrics import lagged_correlation

RATE = 100.0  # Hz, the rate both signals are resampled to
WINDOW_S = 0.02  # seconds, the voice envelope's window
TAP_S = 0.02  # seconds of audio per block of the page's worklet (static/worklet.js), and of the references
MAX_LAG_MS = 400.0  # lags searched, +-
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",  # the server offers 127.0.0.1 only
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


# -- the signals ------------------------------------------------------------------------------------------
def mouth_box(size: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) in pixels of a size x size frame of the bundled portrait: the inner lips and a margin."""
    from talkface.face import topology as T
    from talkface.face.image import load_image
    from talkface.face.rig import build_rig

    rig = build_rig(load_image(asset_path("portrait.jpg")), size)
    points = rig.points[T.INNER_LIP][:, :2]
    margin = 0.15 * rig.eye_distance
    x0, y0 = np.floor(points.min(0) - margin).astype(int)
    x1, y1 = np.ceil(points.max(0) + margin).astype(int)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def darkness(crop: np.ndarray) -> float:
    """255 - mean luma of an (h, w, 3) RGB crop: rises as the mouth opens (its cavity is dark)."""
    return 255.0 - float(crop.astype(np.float64).mean())


def hold(times: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """values[i] from times[i] until times[i + 1] (a frame stays on screen until the next), on `grid`."""
    i = np.searchsorted(times, grid, side="right") - 1
    out = np.full(len(grid), np.nan)
    ok = i >= 0
    out[ok] = values[i[ok]]
    return out


def envelope(times: np.ndarray, power: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """RMS over WINDOW_S centred on each grid time, from blocks of audio: their centre times (s, sorted)
    and mean square. NaN where no block falls."""
    sums = np.concatenate([[0.0], np.cumsum(power)])
    lo = np.searchsorted(times, grid - WINDOW_S / 2)
    hi = np.searchsorted(times, grid + WINDOW_S / 2)
    n = hi - lo
    out = np.full(len(grid), np.nan)
    out[n > 0] = np.sqrt((sums[hi] - sums[lo])[n > 0] / n[n > 0])
    return out


def blocks(samples: np.ndarray, rate: int, start: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(centre times s, mean square) of the audio in blocks of TAP_S, as the page's worklet makes them."""
    block = int(round(TAP_S * rate))
    n = len(samples) // block
    x = samples[: n * block].astype(np.float64).reshape(n, block)
    return start + (np.arange(n) + 0.5) * block / rate, (x * x).mean(1)


def lag_of(frame_t, mouth, block_t, power, span: tuple[float, float]) -> tuple[float, float]:
    """(lag ms, r) of the mouth behind the voice over `span` (seconds): positive, audio leads."""
    grid = np.arange(span[0], span[1], 1.0 / RATE)
    m = hold(np.asarray(frame_t), np.asarray(mouth), grid)
    v = envelope(np.asarray(block_t), np.asarray(power), grid)
    lc = lagged_correlation(v, m, RATE, MAX_LAG_MS)
    return lc.lag_ms, lc.r_best


def voiced_span(block_t, power, margin: float = 0.3) -> tuple[float, float]:
    """The first to the last block louder than -40 dB of the loudest, with `margin` seconds inside."""
    block_t, power = np.asarray(block_t), np.asarray(power)
    loud = np.flatnonzero(power > 1e-4 * power.max())
    return float(block_t[loud[0]]) + margin, float(block_t[loud[-1]]) - margin


def speech(seconds: float) -> np.ndarray:
    """The bundled speech, repeated to `seconds`, 16 kHz float32."""
    x = load_audio(asset_path("speech.flac")).samples
    return np.tile(x, int(np.ceil(seconds * 16000 / len(x))))[: int(seconds * 16000)]


# -- references -------------------------------------------------------------------------------------------
def reference_offline(wav: Path, samples: np.ndarray, size: int, work: Path) -> tuple[float, float]:
    """(lag ms, r) of `talkface animate` at `size`."""
    import av

    out = work / f"ref{size}.mp4"
    cmd = [sys.executable, "-m", "talkface.cli", "animate", str(asset_path("portrait.jpg")), str(wav)]
    # The live generator (Session's): the learned one's mouth barely darkens the box (r 0.12 against 0.6).
    subprocess.run([*cmd, "-o", str(out), "--size", str(size), "--generator", "rules", "-q"], check=True)
    x, y, w, h = mouth_box(size)
    times, mouth = [], []
    with av.open(str(out)) as container:
        for frame in container.decode(video=0):
            times.append(float(frame.time))
            mouth.append(darkness(frame.to_ndarray(format="rgb24")[y : y + h, x : x + w]))
    t, p = blocks(samples, 16000)
    return lag_of(times, mouth, t, p, voiced_span(t, p))


def reference_live(samples: np.ndarray, size: int) -> tuple[float, float]:
    """(lag ms, r) of LiveAvatar (the server's session, the page's options) with no transport."""
    import talkface
    from talkface.stream.avatar import LiveAvatar

    x, y, w, h = mouth_box(size)
    with talkface.Session(asset_path("portrait.jpg"), size=size) as session:
        avatar = LiveAvatar(session)
        avatar.push_audio(samples, 16000)
        steps = int(len(samples) / 16000 * avatar.fps) + 10
        frames = [f for _ in range(steps) for f in avatar.step()]
    fps, rate = avatar.fps, avatar.sample_rate
    times = [f.index / fps for f in frames]
    mouth = [darkness(f.image[y : y + h, x : x + w]) for f in frames]
    audio = np.concatenate([f.audio for f in frames]).astype(np.float64) / 32768
    t, p = blocks(audio, rate, start=frames[0].index / fps)
    return lag_of(times, mouth, t, p, voiced_span(t, p))


# -- the browser ------------------------------------------------------------------------------------------
# Runs in the page once the reply is sent: records what is on screen and what is heard, into window.avsync.
RECORDER = """([x, y, w, h]) => {
  const rec = (window.avsync = { frames: [], blocks: [], stamps: [], sources: [], stage: "tracks" });
  record(rec).catch((e) => { rec.error = String(e); });

async function record(rec) {
  const video = document.getElementById("rtc-video");
  while (!(video.srcObject && video.srcObject.getAudioTracks().length)) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const canvas = document.createElement("canvas");
  const g = canvas.getContext("2d", { willReadFrequently: true });
  const onFrame = (now, md) => {
    if (canvas.width !== video.videoWidth) {
      [canvas.width, canvas.height] = [video.videoWidth, video.videoHeight];
    }
    g.drawImage(video, 0, 0);
    const d = g.getImageData(x, y, w, h).data;
    let s = 0, s2 = 0;
    for (let i = 0; i < d.length; i += 4) {
      const l = (d[i] + d[i + 1] + d[i + 2]) / 3;
      s += l; s2 += l * l;
    }
    const n = d.length / 4, mean = s / n;
    rec.frames.push([md.expectedDisplayTime, md.presentationTime, md.rtpTimestamp ?? -1,
                     255 - mean, Math.sqrt(Math.max(0, s2 / n - mean * mean))]);
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  rec.stage = "worklet";
  const ctx = new AudioContext({ sampleRate: 48000 });
  await ctx.audioWorklet.addModule("/static/worklet.js"); // the page's own tap: 20-ms blocks, in order
  const node = new AudioWorkletNode(ctx, "pcm-tap");
  node.port.onmessage = (ev) => {
    let e = 0;
    for (let i = 0; i < ev.data.length; i++) e += ev.data[i] * ev.data[i];
    rec.blocks.push([e / ev.data.length, ctx.currentTime]);
  };
  ctx.createMediaStreamSource(new MediaStream(video.srcObject.getAudioTracks())).connect(node);
  const sink = ctx.createGain();
  sink.gain.value = 0; // the worklet must reach the destination to run; the element plays the sound
  node.connect(sink).connect(ctx.destination);
  rec.stage = "resume";
  await ctx.resume();
  rec.stage = "recording";
  rec.latency = [ctx.baseLatency, ctx.outputLatency];
  const receivers = () => (window.avsyncPc ? window.avsyncPc.getReceivers() : []);
  rec.timer = setInterval(() => {
    const ts = ctx.getOutputTimestamp();
    rec.stamps.push([ts.contextTime, ts.performanceTime]);
    for (const r of receivers()) {
      if (r.track.kind !== "audio") continue;
      for (const s of r.getSynchronizationSources()) {
        rec.sources.push([s.timestamp, s.rtpTimestamp, performance.now(), Date.now(), s.audioLevel ?? -1]);
      }
    }
  }, 5);
}
}"""

# The receivers' jitter buffers (inbound-rtp stats), per kind.
STATS = """async () => {
  const out = {};
  (await window.avsyncPc.getStats()).forEach((s) => {
    if (s.type === "media-playout" && s.totalSamplesCount) {
      out.playout_ms = Math.round((1000 * s.totalPlayoutDelay) / s.totalSamplesCount); // the audio device's
    }
    if (s.type !== "inbound-rtp") return;
    const n = s.jitterBufferEmittedCount || 1;
    out[s.kind] = {
      jitter_buffer_ms: Math.round((1000 * s.jitterBufferDelay) / n),
      target_ms: Math.round((1000 * s.jitterBufferTargetDelay) / n),
      minimum_ms: Math.round((1000 * (s.jitterBufferMinimumDelay || 0)) / n),
      jitter_ms: Math.round(1000 * s.jitter),
    };
    if (s.kind === "video") {
      out.video.decode_ms = Math.round((1000 * s.totalDecodeTime) / (s.framesDecoded || 1));
    }
  });
  return out;
}"""

# Before the page's scripts: keep the page's peer connection, for its receivers' synchronization sources.
KEEP_PC = """(() => {
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    window.avsyncPc = pc;
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
})();"""

# `talkface serve` with aiortc's random RTP timestamp origins set to 0, so that an RTP timestamp is the
# media's own pts (video: frame index * 90000 / fps; audio: samples at 48 kHz): the page can then read each
# displayed frame's and each played audio packet's place on the one time line.
SERVE = """
import sys, aiortc.rtcrtpsender as s
r = s.random32
s.random32 = lambda: 0 if sys._getframe(1).f_code.co_name == "_run_rtp" else r()  # not the SSRCs
from talkface.cli import main
main()
"""


@contextlib.contextmanager
def server(zero_rtp_origin: bool = True):
    """`talkface serve` on a free port; yields its URL."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    head = [sys.executable, "-c", SERVE] if zero_rtp_origin else [sys.executable, "-m", "talkface.cli"]
    proc = subprocess.Popen([*head, "serve", "--port", str(port)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError("talkface serve exited")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("talkface serve did not answer within 180 s") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def browser_record(
    page, url: str, wav: Path, size: int, seconds: float, generator: str | None = None
) -> dict:
    """Play the reply in the page's WebRTC mode at `size` (with the page's mouth `generator`, default its
    default) and return window.avsync after `seconds`."""
    page.goto(url)
    page.select_option("#size", str(size))
    if generator is not None:
        page.select_option("#generator", generator)
    page.set_input_files("#rtc-file", str(wav))
    page.evaluate(RECORDER, list(mouth_box(size)))
    page.wait_for_timeout(seconds * 1000)
    rec = page.evaluate(
        "() => { clearInterval(window.avsync.timer); const r = window.avsync; delete r.timer; return r; }"
    )
    rec["rtc"] = page.evaluate("() => window.talkface.rtc")
    rec["stats"] = page.evaluate(STATS)
    if page.is_enabled("#rtc-stop"):
        page.click("#rtc-stop")
    return rec


def browser_lag(rec: dict) -> dict:
    """From window.avsync: the lag of the mouth behind the voice (ms, r; darkness and luma std), and the
    RTP offset: the audio's media time heard minus the video's media time shown, median over frames (ms)."""
    frames = np.array(rec["frames"], np.float64)  # expectedDisplayTime, presentationTime, rtp, dark, std
    frames = frames[np.argsort(frames[:, 0])]
    audio = np.array(rec["blocks"], np.float64)  # mean square, context time when posted
    # Block k of the tap ends at first + (k + 1) * TAP_S in context time, and is posted after that.
    k = np.arange(len(audio))
    first = np.min(audio[:, 1] - (k + 1) * TAP_S)
    stamps = np.array(rec["stamps"], np.float64)  # context time, performance time of the sample heard
    heard = np.median(stamps[:, 1] - 1000 * stamps[:, 0])  # ms: performance time - context time
    block_t = first + (k + 0.5) * TAP_S + heard / 1000  # s, performance time of each block's centre heard
    frame_t = frames[:, 0] / 1000
    span = voiced_span(block_t, audio[:, 0])
    out = {"frames": len(frames), "span_s": round(span[1] - span[0], 2)}
    for i, name in ((3, "dark"), (4, "std")):
        lag, r = lag_of(frame_t, frames[:, i], block_t, audio[:, 0], span)
        out[name] = (round(lag, 1), round(r, 3))
    sources = np.array(rec["sources"], np.float64)
    out["rtp_ms"] = rtp_offset(frames, sources, span)
    # The voice as the receiver plays it out (the packets' audio level, at the time they leave the jitter
    # buffer), without the tap's path (the page's worklet on a MediaStreamSource) and its latency.
    t = sources[:, 0] - (np.median(sources[:, 3] - sources[:, 2]) if sources[0, 0] > 1e12 else 0)
    t, first = np.unique(t, return_index=True)
    level = sources[first, 4] ** 2
    lag, r = lag_of(frame_t, frames[:, 3], t / 1000 + 0.01, level, span)  # + half a packet: its centre
    out["level"] = (round(lag, 1), round(r, 3))
    grid = np.arange(span[0], span[1], 1.0 / RATE)
    tap = lagged_correlation(
        envelope(t / 1000 + 0.01, level, grid), envelope(block_t, audio[:, 0], grid), RATE
    )
    out["tap_after_playout_ms"] = round(tap.lag_ms, 1)
    return out


def rtp_offset(frames: np.ndarray, sources: np.ndarray, span: tuple[float, float]) -> float:
    """Audio media time delivered to the track minus video media time displayed, at each frame's display
    time, ms (positive: audio leads). Needs the server's RTP origins at 0 (SERVE)."""
    if not len(sources) or (frames[:, 2] < 0).all():
        return float("nan")
    t = sources[:, 0]
    if t[0] > 1e12:  # epoch milliseconds: to the performance time line
        t = t - np.median(sources[:, 3] - sources[:, 2])
    t, first = np.unique(t, return_index=True)
    media = np.unwrap(sources[first, 1], period=2**32) / 48000  # s
    shown = frames[(frames[:, 0] / 1000 > span[0]) & (frames[:, 0] / 1000 < span[1])]
    video = np.unwrap(shown[:, 2], period=2**32) / 90000
    return round(float(np.median(np.interp(shown[:, 0], t, media) - video)) * 1000, 1)


def browser_runs(sizes: list[int], runs: int, wav: Path, seconds: float) -> dict[int, list[dict]]:
    """browser_lag() of `runs` sessions per size, each in a fresh page, against one `talkface serve`."""
    from playwright.sync_api import sync_playwright

    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    if chromium is None:
        raise SystemExit("needs chromium on PATH")
    out: dict[int, list[dict]] = {size: [] for size in sizes}
    with server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        for _ in range(runs):
            for size in sizes:
                page = browser.new_page(viewport={"width": 1200, "height": 720})
                page.add_init_script(KEEP_PC)
                result = browser_lag(browser_record(page, url, wav, size, seconds))
                page.close()
                print(size, result, flush=True)
                out[size].append(result)
        browser.close()
    return out


def summary(values: list[float]) -> str:
    v = [x for x in values if np.isfinite(x)]
    if not v:
        return "n/a"
    return f"{statistics.median(v):+.0f} ms (range {min(v):+.0f}..{max(v):+.0f}, n={len(v)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--runs", type=int, default=3, help="browser sessions per size")
    parser.add_argument("--seconds", type=float, default=12.0, help="of speech per session")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    samples = speech(args.seconds)
    report: dict = {"sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "reply.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
            w.writeframes(np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2").tobytes())
        for size in args.sizes:
            offline, live = reference_offline(wav, samples, size, Path(tmp)), reference_live(samples, size)
            report["sizes"][size] = {"offline": offline, "live": live}
            print(
                f"{size}: reference offline {offline[0]:+.1f} ms (r {offline[1]:.2f}), "
                f"live {live[0]:+.1f} ms (r {live[1]:.2f})",
                flush=True,
            )
        runs = browser_runs(args.sizes, args.runs, wav, args.seconds + 3)
    print("\nlag of the mouth behind the voice (+: audio leads; ITU-R BT.1359 detectable +45/-125 ms)")
    for size in args.sizes:
        live = report["sizes"][size]["live"][0]
        rows = runs[size]
        report["sizes"][size]["browser"] = rows
        played = [r["level"][0] for r in rows]
        added = summary([x - live for x in played])
        print(f"{size}: reference (live, no transport) {live:+.1f} ms")
        print(f"  browser, voice as played out: {summary(played)}; added by WebRTC {added}")
        tap = summary([r["tap_after_playout_ms"] for r in rows])
        webaudio = summary([r["dark"][0] for r in rows])
        print(f"  browser, voice via WebAudio:  {webaudio} (the tap's latency {tap})")
        print(f"  RTP: audio minus video media time at display: {summary([r['rtp_ms'] for r in rows])}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
