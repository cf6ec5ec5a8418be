"""Speed and memory of each stage of the job users run, on a fixed input (the bundled portrait and speech),
after a warm-up."""

from __future__ import annotations

import resource
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from talkface.assets import asset_path
from talkface.audio.load import load_audio, write_wav
from talkface.config import AnimateOptions, BenchOptions
from talkface.engine import StageClock

WARMUP_FRAMES = 10
STREAM_CHUNK = 320  # samples per push_audio call in the streaming measurements (20 ms at 16 kHz)


def bundled_speech(seconds: float) -> np.ndarray:
    """`seconds` of the bundled speech, looped, as 16 kHz float32 samples: the benchmarks' input."""
    speech = load_audio(asset_path("speech.flac")).samples
    return np.tile(speech, int(np.ceil(seconds * 16000 / len(speech))))[: int(seconds * 16000)]


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def stream_latency(portrait: Path, samples: np.ndarray, size: int, fps: float) -> dict:
    """talkface.Session fed in real time: one thread pushes 20 ms chunks of 16 kHz `samples` as a
    microphone would, another pulls frames. A frame's latency runs from the push_audio call that brought
    the sample at its timestamp to the moment frames() yields it. Returns stream_latency_ms (median),
    stream_latency_p90_ms and stream_realtime_fps (frames yielded per second while the audio flowed)."""
    from talkface.stream.session import Session

    pushed_end: list[int] = []  # samples pushed after each call
    pushed_at: list[float] = []  # perf_counter() when that call began
    yielded: list[tuple[float, float]] = []  # (timestamp, perf_counter()) per frame
    done = threading.Event()
    with Session(portrait, size=size, fps=fps) as session:

        def pull() -> None:
            while True:
                finished = done.is_set()  # read first: frames() after the last push sees all of it
                for ts, _ in session.frames():
                    yielded.append((ts, time.perf_counter()))
                if finished:
                    return
                time.sleep(0.002)

        consumer = threading.Thread(target=pull)
        consumer.start()
        t0 = time.perf_counter()
        for i in range(0, len(samples), STREAM_CHUNK):
            wait = t0 + i / 16000 - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            pushed_at.append(time.perf_counter())
            session.push_audio(samples[i : i + STREAM_CHUNK], 16000)
            pushed_end.append(min(i + STREAM_CHUNK, len(samples)))
        done.set()
        consumer.join()
    latencies = []
    for ts, at in yielded:
        k = int(np.searchsorted(pushed_end, ts * 16000, side="right"))  # the call holding sample ts*16000
        if k < len(pushed_at):
            latencies.append((at - pushed_at[k]) * 1000)
    # The rate once running: frames after the first second up to the last push (the first second may come
    # in a burst after the session's start-up; the frames after the last push are never rendered in time).
    steady = [at for ts, at in yielded if 1.0 <= ts and at <= pushed_at[-1]]
    span = steady[-1] - steady[0] if len(steady) > 1 else float("nan")
    return {
        "stream_latency_ms": round(float(np.median(latencies)), 1),
        "stream_latency_p90_ms": round(float(np.percentile(latencies, 90)), 1),
        "stream_realtime_fps": round((len(steady) - 1) / span, 1),
    }


def stream_throughput(portrait: Path, samples: np.ndarray, size: int, fps: float) -> float:
    """Sustained frames per second of one talkface.Session when audio is never the limit: `samples` pushed
    in 20 ms chunks as fast as it takes them, each followed by rendering every frame it made ready."""
    from talkface.stream.session import Session

    with Session(portrait, size=size, fps=fps) as session:
        n = 0
        t = time.perf_counter()
        for i in range(0, len(samples), STREAM_CHUNK):
            session.push_audio(samples[i : i + STREAM_CHUNK], 16000)
            n += sum(1 for _ in session.frames())
        return n / (time.perf_counter() - t)


# Stages that run once per frame (reported as the median ms per call); the others run once per job or once per
# window (reported as their total over the job, per frame).
PER_FRAME = ("render", "paste", "watermark", "encode")


def run_bench(options: BenchOptions | None = None) -> dict:
    """Time `talkface animate` at its defaults on options.seconds of the bundled speech (looped) at
    options.size, stage by stage, after a warm-up: exactly the engine a user's job runs (talkface.engine),
    windowed motion and all. Returns stages_ms (per frame: the median of the per-frame stages, the job total
    over the frames for the others), setup_ms (once per job), render_fps, realtime_factor (wall time of the
    whole job / audio duration), peak_rss_mb, watermark_ms (embedding, per frame amortized over the video,
    pattern set-up included), and for the live path (talkface.Session) stream_latency_ms,
    stream_latency_p90_ms, stream_realtime_fps (fed in real time, see stream_latency) and stream_fps
    (sustained throughput, see stream_throughput)."""
    from talkface.pipeline import animate

    options = options or BenchOptions()
    size, fps = options.size, AnimateOptions().fps
    job = AnimateOptions(size=size)
    samples = bundled_speech(options.seconds)
    duration = len(samples) / 16000
    portrait = asset_path("portrait.jpg")
    with tempfile.TemporaryDirectory() as tmp:
        wav = write_wav(Path(tmp) / "bench.wav", samples, 16000)
        warm = write_wav(Path(tmp) / "warm.wav", samples[: WARMUP_FRAMES * 16000 // int(fps)], 16000)
        # Warm-up: numba compilation, mediapipe graph start, model loading, first FFT plans.
        animate(portrait, warm, Path(tmp) / "warm.mp4", job)
        clock = StageClock()
        t = time.perf_counter()
        animate(portrait, wav, Path(tmp) / "bench.mp4", job, clock=clock)
        wall = time.perf_counter() - t
    n = len(clock.calls["render"])
    stages = {}
    for stage, calls in clock.calls.items():
        if stage == "frame_setup":
            continue
        per_frame = np.median(calls) if stage in PER_FRAME else sum(calls) / n
        stages[stage] = round(float(per_frame) * 1000, 3)
    render_ms = stages["render"]
    stream = stream_latency(portrait, samples, size, fps)
    stream_fps = stream_throughput(portrait, samples, size, fps)
    return {
        "size": size,
        "fps": fps,
        "frames": n,
        "audio_seconds": round(duration, 3),
        "generator": job.generator,
        "stages_ms": stages,
        "watermark_ms": round(clock.total("watermark") * 1000 / n, 3),
        "setup_ms": {
            "face": round(clock.total("face") * 1000, 1),
            "frames": round(clock.total("frame_setup") * 1000, 1),
        },
        "render_fps": round(1000.0 / render_ms, 1),
        "realtime_factor": round(wall / duration, 4),
        **stream,
        "stream_fps": round(stream_fps, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
