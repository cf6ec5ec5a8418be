"""Start-up measured from outside: a fresh process runs `talkface.animate` on --seconds of the bundled speech
(the same job as `talkface animate`), and reports when its first frame was rendered and when it ended,
counted from the moment this script started the process. --repeat runs, medians printed.

    .venv/bin/python scripts/startup.py [--seconds 1] [--repeat 5] [--size 512]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = """
import sys, time
first = []
def progress(done, total):
    if not first:
        first.append(time.time())
from talkface.pipeline import animate
from talkface.config import AnimateOptions
animate(sys.argv[1], sys.argv[2], sys.argv[3], AnimateOptions(size=int(sys.argv[4])), progress=progress)
print(first[0])
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    from talkface.assets import asset_path
    from talkface.audio.load import load_audio, write_wav

    speech = load_audio(asset_path("speech.flac"))
    firsts, totals = [], []
    with tempfile.TemporaryDirectory() as tmp:
        wav = write_wav(Path(tmp) / "clip.wav", speech.samples[: int(args.seconds * 16000)], 16000)
        out = Path(tmp) / "clip.mp4"
        portrait = str(asset_path("portrait.jpg"))
        cmd = [sys.executable, "-c", CHILD, portrait, str(wav), str(out), str(args.size)]
        for _ in range(args.repeat):
            t = time.time()
            r = subprocess.run(cmd, capture_output=True, text=True, check=True)
            totals.append(time.time() - t)
            firsts.append(float(r.stdout.strip().splitlines()[-1]) - t)
            print(f"first frame {firsts[-1]:.3f} s, whole job {totals[-1]:.3f} s", flush=True)
    first, total = np.median(firsts), np.median(totals)
    print(f"median first frame {first:.3f} s, whole job {total:.3f} s ({args.seconds:g} s clip)")


if __name__ == "__main__":
    main()
