"""Clips per minute for N short jobs: `talkface animate` run once per clip, one after another (what a shell
loop does), against `talkface batch` on a local process pool and on a local Ray instance. Each way runs as
a command from outside, timed by wall clock, on fresh outputs.

    .venv/bin/python scripts/bench_batch.py [--jobs 8] [--seconds 3] [--size 512] [--skip-ray]

The inputs are made from the bundled files: the portrait and its mirror image (two portraits, so that the
batch analyses two), and consecutive pieces of the bundled speech. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from talkface.assets import asset_path
from talkface.audio.load import SAMPLE_RATE, load_audio, write_wav

BIN = Path(sys.executable).parent / "talkface"


def make_inputs(folder: Path, jobs: int, seconds: float) -> list[dict]:
    portrait = Image.open(asset_path("portrait.jpg")).convert("RGB")
    portrait.save(folder / "a.jpg", quality=95)
    portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "b.jpg", quality=95)
    speech = load_audio(asset_path("speech.flac"))
    n = int(seconds * SAMPLE_RATE)
    rows = []
    for i in range(jobs):
        start = (i * n // 2) % max(len(speech.samples) - n, 1)  # overlapping pieces: 8 s of speech
        write_wav(folder / f"clip{i}.wav", speech.samples[start : start + n].astype(np.float32), SAMPLE_RATE)
        rows.append({"portrait": "ab"[i % 2] + ".jpg", "audio": f"clip{i}.wav", "output": f"out/{i}.mp4"})
    return rows


def timed(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return time.perf_counter() - t, r.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="talkface-bench-batch-"))
    try:
        rows = make_inputs(folder, args.jobs, args.seconds)
        for row in rows:
            row["size"] = args.size
        (folder / "jobs.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n")
        result: dict = {"jobs": args.jobs, "clip_seconds": args.seconds, "size": args.size}

        seconds = 0.0
        for row in rows:
            out = folder / "seq" / row["output"]
            cmd = [str(BIN), "animate", str(folder / row["portrait"]), str(folder / row["audio"])]
            seconds += timed([*cmd, "-o", str(out), "--size", str(args.size), "-q"])[0]
        result["sequential_cli"] = {"seconds": seconds, "clips_per_minute": 60 * args.jobs / seconds}

        ways = [("batch_local", [])] + ([] if args.skip_ray else [("batch_ray_local", ["--ray", "local"])])
        workers = ["--workers", str(args.workers)] if args.workers else []
        for name, extra in ways:
            shutil.rmtree(folder / "out", ignore_errors=True)
            seconds, out = timed(
                [str(BIN), "batch", str(folder / "jobs.jsonl"), "-q", "--json", *workers, *extra]
            )
            summary = json.loads(out)
            assert summary["done"] == args.jobs, summary
            result[name] = {
                "seconds": seconds,
                "clips_per_minute": 60 * args.jobs / seconds,
                "worker_peak_rss_mb": [round(mb) for mb in summary["worker_peak_rss_mb"]],
            }
        print(json.dumps(result))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
