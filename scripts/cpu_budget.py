"""What one frame costs in CPU time, stage by stage, each stage run alone in this process on --seconds of the
bundled speech at --size: motion (phones, audio features and the generator, with all the threads their
libraries start), the frame stage (Engine.frame: render + watermark) and encoding (Mp4Writer: colour
conversion, x264 and its threads, AAC). Wall and CPU ms per frame, medians over --repeat runs. On two cores
the job's realtime factor cannot fall below (sum of the CPU times) / 2 / (1000 / fps ms).

    .venv/bin/python scripts/cpu_budget.py [--seconds 20] [--size 512] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from talkface.assets import asset_path
from talkface.audio.load import from_samples, write_wav
from talkface.config import AnimateOptions
from talkface.engine import Engine
from talkface.eval.bench import bundled_speech
from talkface.motion.contract import concat_motion
from talkface.video.encode import Mp4Writer


def _timed(fn) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    options = AnimateOptions(size=args.size)
    audio = from_samples(bundled_speech(args.seconds), 16000)
    engine = Engine(asset_path("portrait.jpg"), options)
    motion = concat_motion(list(engine.motion_windows(audio, options)))  # also the warm-up
    n = len(motion)
    frames = [engine.frame(motion, i) for i in range(n)]
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        wav = write_wav(Path(tmp) / "a.wav", audio.samples, 16000)

        def encode() -> None:
            with Mp4Writer(Path(tmp) / "a.mp4", engine.frame_size, options.fps, wav) as w:
                for f in frames:
                    w.write(f)

        stages = {
            "motion (phones, audio, generator)": lambda: list(engine.motion_windows(audio, options)),
            "frame (render + watermark)": lambda: [engine.frame(motion, i) for i in range(n)],
            "encode (yuv, x264, aac)": encode,
        }
        for _ in range(args.repeat):
            for name, fn in stages.items():
                results.setdefault(name, []).append(_timed(fn))
    total = 0.0
    print(f"{n} frames at {args.size}, medians of {args.repeat} runs (ms per frame)")
    for name, runs in results.items():
        wall, cpu = np.median(np.array(runs), axis=0) * 1000 / n
        total += cpu
        print(f"  {name:36s} wall {wall:6.2f}  cpu {cpu:6.2f}")
    floor = total / 2 / (1000 / options.fps)
    print(f"  {'sum':36s}             cpu {total:6.2f}: realtime factor >= {floor:.3f} on 2 cores")


if __name__ == "__main__":
    main()
