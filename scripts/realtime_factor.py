"""The end-to-end realtime factor of `talkface animate` (wall time of the job / audio duration) on the bundled
speech looped to --seconds, measured as eval.bench measures it (a warm-up job first, then the job timed with a
StageClock), repeated --repeat times in one process; prints each run's realtime factor and cpu factor (CPU
seconds of all the process's threads and finished child processes / audio seconds: what the job costs,
whatever else the machine runs), the medians, and the median ms per call of the per-frame stages. Faster
than `talkface bench` (which also runs the live-stream measurements in real time).

    .venv/bin/python scripts/realtime_factor.py [--seconds 60] [--size 512] [--repeat 3]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from talkface.assets import asset_path
from talkface.audio.load import write_wav
from talkface.config import AnimateOptions
from talkface.engine import StageClock
from talkface.eval.bench import PER_FRAME, WARMUP_FRAMES, bundled_speech
from talkface.pipeline import animate


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    job = AnimateOptions(size=args.size)
    samples = bundled_speech(args.seconds)
    duration = len(samples) / 16000
    portrait = asset_path("portrait.jpg")
    factors, cpu, stages = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        wav = write_wav(Path(tmp) / "bench.wav", samples, 16000)
        warm = write_wav(Path(tmp) / "warm.wav", samples[: WARMUP_FRAMES * 16000 // int(job.fps)], 16000)
        animate(portrait, warm, Path(tmp) / "warm.mp4", job)
        for _ in range(args.repeat):
            clock = StageClock()
            t, c = time.perf_counter(), time.process_time() + _children_cpu()
            animate(portrait, wav, Path(tmp) / "bench.mp4", job, clock=clock)
            factors.append((time.perf_counter() - t) / duration)
            cpu.append((time.process_time() + _children_cpu() - c) / duration)
            n = len(clock.calls["render"])
            for stage, calls in clock.calls.items():
                per_frame = np.median(calls) if stage in PER_FRAME else sum(calls) / n
                stages.setdefault(stage, []).append(per_frame * 1000)
            print(f"realtime_factor {factors[-1]:.4f} cpu_factor {cpu[-1]:.4f}", flush=True)
    print(
        f"median realtime_factor {np.median(factors):.4f} cpu_factor {np.median(cpu):.4f} "
        f"over {args.repeat} runs of {duration:g} s"
    )
    for stage, ms in stages.items():
        print(f"  {stage:12s} {np.median(ms):8.3f} ms/frame")


if __name__ == "__main__":
    main()
