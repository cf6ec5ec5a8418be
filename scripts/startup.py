"""Start-up measured from outside: a fresh process runs the command `talkface animate` on --seconds of the
bundled speech, and reports when its first frame was rendered and when it ended, counted from the moment this
script started the process, and the CPU seconds the process had used by its first frame (all its threads:
steadier than the wall clock on a shared machine). --repeat runs, medians printed. The command runs as
installed (talkface.cli.run), its progress bar replaced by the callback that notes the first frame.

--cache says what the portrait's analysis cache (talkface.face.cache) holds: `cold` (default) an empty cache
for every run, as for a portrait never animated before; `warm` the portrait analysed by an unmeasured run
first, as for a portrait animated again; `off` the cache turned off (TALKFACE_NO_CACHE=1).

    .venv/bin/python scripts/startup.py [--seconds 1] [--repeat 5] [--size 512] [--cache cold|warm|off]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = """
import resource, sys, time
first = []
def progress(done, total):
    if not first:
        use = resource.getrusage(resource.RUSAGE_SELF)
        first.extend((time.time(), use.ru_utime + use.ru_stime))
import talkface.cli
talkface.cli._progress_bar = lambda enabled: (progress, lambda: None)
sys.argv = ["talkface", "animate", *sys.argv[1:3], "-o", sys.argv[3], "--size", sys.argv[4], "--quiet"]
try:
    talkface.cli.run()
finally:
    print(*first)
"""


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(first frame, whole job, CPU seconds by the first frame) of one run of `cmd` (CHILD)."""
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    total = time.time() - t
    first, cpu = map(float, r.stdout.strip().splitlines()[-1].split())
    return first - t, total, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--cache", choices=("cold", "warm", "off"), default="cold")
    args = ap.parse_args()
    from talkface.assets import asset_path
    from talkface.audio.load import load_audio, write_wav

    speech = load_audio(asset_path("speech.flac"))
    firsts, totals, cpus = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        wav = write_wav(Path(tmp) / "clip.wav", speech.samples[: int(args.seconds * 16000)], 16000)
        out = Path(tmp) / "clip.mp4"
        portrait = str(asset_path("portrait.jpg"))
        cmd = [sys.executable, "-c", CHILD, portrait, str(wav), str(out), str(args.size)]
        env = dict(os.environ, XDG_CACHE_HOME=str(Path(tmp) / "cache"))
        if args.cache == "off":
            env["TALKFACE_NO_CACHE"] = "1"
        if args.cache == "warm":
            run_once(cmd, env)
        for i in range(args.repeat):
            if args.cache == "cold":
                env["XDG_CACHE_HOME"] = str(Path(tmp) / f"cache{i}")
            first, total, cpu = run_once(cmd, env)
            firsts.append(first), totals.append(total), cpus.append(cpu)
            print(f"first frame {first:.3f} s ({cpu:.3f} s CPU), whole job {total:.3f} s", flush=True)
    first, total, cpu = np.median(firsts), np.median(totals), np.median(cpus)
    print(
        f"median first frame {first:.3f} s ({cpu:.3f} s CPU), whole job {total:.3f} s "
        f"({args.seconds:g} s clip, {args.cache} cache)"
    )


if __name__ == "__main__":
    main()
