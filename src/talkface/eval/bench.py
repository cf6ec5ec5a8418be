"""Speed and memory of each stage on a fixed input (the bundled portrait and speech), after a warm-up."""

from __future__ import annotations

import dataclasses
import resource
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from talkface.assets import asset_path
from talkface.audio.features import compute_features, n_video_frames
from talkface.audio.load import from_samples, load_audio, write_wav
from talkface.config import AnimateOptions
from talkface.face.image import load_image
from talkface.face.rig import build_rig
from talkface.motion.generators import HEARS_PHONES, generate
from talkface.motion.rules import RuleSettings, generate_rules
from talkface.render.renderer import Renderer
from talkface.video.encode import Mp4Writer
from talkface.video.watermark import Watermarker, new_payload

WARMUP_FRAMES = 10
STREAM_CHUNK = 320  # samples per push_audio call in the streaming measurements (20 ms at 16 kHz)


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


def _default_motion(options: AnimateOptions, audio, features, n: int):
    """The default generator's motion, as animate() makes it (phones recognised when it hears them)."""
    from talkface.audio.phones import recognize_phones

    if options.generator in HEARS_PHONES:
        features = dataclasses.replace(features, phonemes=recognize_phones(audio))
    return generate(options.generator, features, n, options.fps, RuleSettings(options.seed))


def run_bench(seconds: float = 10.0, size: int = 512, fps: float = 25.0) -> dict:
    """Time every stage on `seconds` of the bundled speech (looped) at size x size. Returns
    stages_ms (per frame), setup_ms (once per job), render_fps, realtime_factor, peak_rss_mb,
    watermark_ms (embedding, per frame amortized over the video, pattern set-up included), and for the live
    path (talkface.Session) stream_latency_ms, stream_latency_p90_ms, stream_realtime_fps (fed in real
    time, see stream_latency) and stream_fps (sustained throughput, see stream_throughput)."""
    options = AnimateOptions(size=size, fps=fps)
    speech = load_audio(asset_path("speech.flac"))
    reps = int(np.ceil(seconds * 16000 / len(speech.samples)))
    samples = np.tile(speech.samples, reps)[: int(seconds * 16000)]
    audio = from_samples(samples, 16000)
    image = load_image(asset_path("portrait.jpg"))

    # Warm-up: numba compilation, mediapipe graph start, first FFT plans.
    warm_rig = build_rig(image, size)
    warm = Renderer(warm_rig)
    still = generate_rules(
        compute_features(from_samples(samples[:16000], 16000)), WARMUP_FRAMES, fps, RuleSettings()
    )
    for i in range(WARMUP_FRAMES):
        warm.render(still, i)

    rig, t_face = _timed(build_rig, image, size)
    renderer, t_renderer = _timed(Renderer, rig)
    features, t_audio = _timed(compute_features, audio)
    n = n_video_frames(audio.duration, fps)
    motion, t_motion = _timed(_default_motion, options, audio, features, n)
    marker, t_mark_setup = _timed(Watermarker, new_payload(), size, size)
    render_times, encode_times, mark_times = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "bench.wav"
        write_wav(wav, samples, 16000)
        with Mp4Writer(Path(tmp) / "bench.mp4", (size, size), fps, wav, crf=options.crf) as writer:
            for i in range(n):
                frame, dt = _timed(renderer.render, motion, i)
                render_times.append(dt)
                _, dt = _timed(marker.embed, frame, frame)
                mark_times.append(dt)
                _, dt = _timed(writer.write, frame)
                encode_times.append(dt)
    total = t_face + t_renderer + t_audio + t_motion + t_mark_setup
    total += sum(render_times) + sum(mark_times) + sum(encode_times)
    render_ms = float(np.median(render_times) * 1000)
    portrait = asset_path("portrait.jpg")
    stream = stream_latency(portrait, samples, size, fps)
    stream_fps = stream_throughput(portrait, samples, size, fps)
    return {
        "size": size,
        "fps": fps,
        "frames": n,
        "audio_seconds": round(audio.duration, 3),
        "stages_ms": {
            "face": round(t_face * 1000 / n, 3),
            "audio": round(t_audio * 1000 / n, 3),
            "motion": round(t_motion * 1000 / n, 3),
            "render": round(render_ms, 3),
            "watermark": round(float(np.median(mark_times) * 1000), 3),
            "encode": round(float(np.median(encode_times) * 1000), 3),
        },
        "watermark_ms": round((t_mark_setup + sum(mark_times)) * 1000 / n, 3),
        "setup_ms": {"face": round(t_face * 1000, 1), "renderer": round(t_renderer * 1000, 1)},
        "render_fps": round(1000.0 / render_ms, 1),
        "realtime_factor": round(total / audio.duration, 4),
        **stream,
        "stream_fps": round(stream_fps, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
