"""Load test for `talkface serve`: N simultaneous WebSocket sessions stream speech in real time over loopback.

    talkface serve --max-sessions 8 &
    python -m talkface.stream.load --sessions 1,2,3,4 --seconds 20 [--size 512] [--json]

Each session sends the bundled speech (looped) as 20 ms float32 chunks at 16 kHz, paced by the clock as a
microphone would, then a flush. Per session it reports the frame rate while audio was flowing and the
latency of each frame: its arrival time minus the time the audio it shows (the sample at its timestamp)
was sent. A server holds N sessions in real time when every session keeps >= 95% of the target frame rate
and its median latency stays under `--max-latency-ms`.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from talkface.config import AnimateOptions, ServerSettings
from talkface.stream.server import FRAME_HEADER

CHUNK_SECONDS = 0.02  # default audio message length (what the page sends)
RATE = 16000


@dataclass
class SessionReport:
    frames: int
    fps: float  # frames received per second of streamed audio, while streaming
    latency_median_ms: float
    latency_p90_ms: float
    latency_last_s_ms: float  # median over the last second of streaming: grows when the server falls behind
    start_ms: float  # from connecting to "ready" (portrait analysis)
    error: str | None = None


def _speech(seconds: float) -> np.ndarray:
    from talkface.assets import asset_path
    from talkface.audio.load import load_audio

    x = load_audio(asset_path("speech.flac")).samples.astype(np.float32)
    reps = int(np.ceil(seconds * RATE / len(x)))
    return np.tile(x, reps)[: int(seconds * RATE)]


async def run_session(
    url: str,
    samples: np.ndarray,
    size: int,
    fps: float,
    start_gate: asyncio.Event,
    ready: Callable[[], None],
    chunk_seconds: float = CHUNK_SECONDS,
) -> SessionReport:
    """One client: start, call ready(), wait for the gate, stream `samples` (16 kHz) in real time, flush,
    collect frames."""
    from websockets.asyncio.client import connect

    t_connect = time.perf_counter()
    async with connect(url, max_size=2**24) as ws:
        start = {"type": "start", "sample_rate": RATE, "format": "f32", "options": {"size": size, "fps": fps}}
        await ws.send(json.dumps(start))
        reply = json.loads(await ws.recv())
        if reply.get("type") != "ready":
            raise RuntimeError(reply.get("message", str(reply)))
        start_ms = (time.perf_counter() - t_connect) * 1000
        ready()
        await start_gate.wait()
        sent_end: list[float] = []  # stream seconds at the end of each chunk
        sent_at: list[float] = []  # perf_counter() when that chunk was sent
        arrivals: list[tuple[float, float]] = []  # (timestamp, perf_counter()) per frame
        chunk = int(chunk_seconds * RATE)
        duration = len(samples) / RATE

        async def send() -> None:
            t0 = time.perf_counter()
            for i in range(0, len(samples), chunk):
                await ws.send(samples[i : i + chunk].tobytes())
                sent_end.append(min(i + chunk, len(samples)) / RATE)
                sent_at.append(time.perf_counter())
                delay = t0 + (i + chunk) / RATE - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            await ws.send(json.dumps({"type": "flush"}))

        async def receive() -> None:
            while True:
                msg = await ws.recv()
                if isinstance(msg, bytes):
                    _, _, ts = FRAME_HEADER.unpack_from(msg)
                    arrivals.append((ts, time.perf_counter()))
                    continue
                m = json.loads(msg)
                if m["type"] == "flushed":
                    return
                if m["type"] in ("error", "busy"):
                    raise RuntimeError(m["message"])

        await asyncio.gather(send(), receive())
    # Latency of a frame: arrival minus the sending of the chunk that holds the sample at its timestamp.
    # Frames of the final flush (the last 0.3 s) are not paced by the audio and are left out.
    live = []  # (timestamp, arrival, latency ms) of the frames rendered while audio was flowing
    for ts, at in arrivals:
        k = bisect.bisect_left(sent_end, ts)
        if k < len(sent_at) and ts < duration - 0.3:
            live.append((ts, at, (at - sent_at[k]) * 1000))
    lat = [ms for _, _, ms in live]
    last = [ms for ts, _, ms in live if ts >= duration - 1.3]
    span = live[-1][1] - live[0][1] if len(live) > 1 else 0.0
    return SessionReport(
        frames=len(arrivals),
        fps=round((len(live) - 1) / span, 2) if span > 0 else 0.0,
        latency_median_ms=round(statistics.median(lat), 1) if lat else float("nan"),
        latency_p90_ms=round(float(np.percentile(lat, 90)), 1) if lat else float("nan"),
        latency_last_s_ms=round(statistics.median(last), 1) if last else float("nan"),
        start_ms=round(start_ms, 1),
    )


async def run_load(
    url: str, sessions: int, seconds: float, size: int, fps: float, chunk_seconds: float = CHUNK_SECONDS
) -> list[SessionReport]:
    """Open `sessions` clients; once all are ready (or failed), they stream together."""
    samples = _speech(seconds)
    gate = asyncio.Event()
    waiting = sessions

    async def one() -> SessionReport:
        arrived = False

        def arrive() -> None:
            nonlocal arrived, waiting
            if not arrived:
                arrived = True
                waiting -= 1
                if waiting == 0:
                    gate.set()

        try:
            return await run_session(url, samples, size, fps, gate, arrive, chunk_seconds)
        finally:
            arrive()

    results = await asyncio.gather(*(one() for _ in range(sessions)), return_exceptions=True)
    reports = []
    for r in results:
        if isinstance(r, BaseException):
            nan = float("nan")
            reports.append(SessionReport(0, 0.0, nan, nan, nan, nan, error=f"{type(r).__name__}: {r}"))
        else:
            reports.append(r)
    return reports


def holds_real_time(reports: list[SessionReport], fps: float, max_latency_ms: float) -> bool:
    """Every session kept 95% of the frame rate and a bounded latency, also at the end."""
    return all(
        r.error is None
        and r.fps >= 0.95 * fps
        and r.latency_median_ms <= max_latency_ms
        and r.latency_last_s_ms <= max_latency_ms
        for r in reports
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m talkface.stream.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--url", default=f"ws://{ServerSettings.host}:{ServerSettings.port}/ws")
    parser.add_argument("--sessions", default="1,2,3,4", help="comma-separated session counts to try")
    parser.add_argument("--seconds", type=float, default=20.0, help="speech per session")
    parser.add_argument("--size", type=int, default=AnimateOptions.size)
    parser.add_argument("--fps", type=float, default=AnimateOptions.fps)
    parser.add_argument("--chunk-ms", type=float, default=1000 * CHUNK_SECONDS, help="audio per message")
    parser.add_argument("--max-latency-ms", type=float, default=300.0, help="real-time criterion")
    parser.add_argument("--json", action="store_true", help="one JSON object per session count")
    args = parser.parse_args(argv)
    try:
        counts = [int(n) for n in args.sessions.split(",")]
    except ValueError:
        parser.error(f"--sessions must be numbers like 1,2,4, got {args.sessions!r}")
    for n in counts:
        try:
            job = run_load(args.url, n, args.seconds, args.size, args.fps, args.chunk_ms / 1000)
            reports = asyncio.run(job)
        except OSError as e:
            print(f"load: cannot reach {args.url}: {e}", file=sys.stderr)
            return 2
        ok = holds_real_time(reports, args.fps, args.max_latency_ms)
        if args.json:
            print(json.dumps({"sessions": n, "real_time": ok, "reports": [asdict(r) for r in reports]}))
        else:
            print(f"{n} sessions: {'real time' if ok else 'NOT real time'}")
            for i, r in enumerate(reports):
                if r.error:
                    print(f"  #{i}: error {r.error}")
                    continue
                print(
                    f"  #{i}: {r.fps:5.1f} fps, latency median {r.latency_median_ms:6.0f} ms, "
                    f"p90 {r.latency_p90_ms:6.0f} ms, last second {r.latency_last_s_ms:6.0f} ms, "
                    f"start {r.start_ms:5.0f} ms"
                )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
