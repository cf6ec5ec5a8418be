"""The large-portrait cases too slow for the test suite (issue 17): photos decoded whole (PNG, TIFF, WebP
have no downscaled decoding), timed. Each must give a video (exit 0) with `talkface animate --size 128`.

    .venv/bin/python scripts/bad_input_slow.py

Prints, per case: file size, load_image seconds and the decoded shape, the whole job's seconds and exit code.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from talkface.assets import asset_path
from talkface.audio.load import write_wav
from talkface.cli import main
from talkface.face.image import load_image

CASES = [  # (name, canvas size, Pillow format, save options)
    ("8k_square_png", (8192, 8192), "PNG", {"compress_level": 1}),
    ("61mp_png", (7000, 8750), "PNG", {"compress_level": 1}),
    ("61mp_tiff", (7000, 8750), "TIFF", {"compression": "tiff_deflate"}),
    ("8k_square_webp", (8192, 8192), "WEBP", {"quality": 80}),
]


def photo(size: tuple[int, int]) -> Image.Image:
    """The bundled portrait, six times larger, in the middle of a flat canvas of `size`."""
    face = Image.open(asset_path("portrait.jpg")).convert("RGB")
    face = face.resize((face.width * 6, face.height * 6), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", size, (180, 170, 160))
    canvas.paste(face, ((size[0] - face.width) // 2, (size[1] - face.height) // 2))
    return canvas


def run() -> int:
    failed = 0
    with tempfile.TemporaryDirectory(prefix="talkface-slow-") as tmp:
        tmp = Path(tmp)
        t = np.arange(16000) / 16000
        audio = write_wav(tmp / "tone.wav", 0.3 * np.sin(2 * np.pi * 220 * t) * (t % 0.25 < 0.15), 16000)
        for name, size, fmt, options in CASES:
            path = tmp / f"{name}.{fmt.lower()}"
            photo(size).save(path, fmt, **options)
            t0 = time.perf_counter()
            shape = load_image(path).shape
            t1 = time.perf_counter()
            out = tmp / f"{name}.mp4"
            code = main(["animate", str(path), str(audio), "-o", str(out), "--size", "128", "-q"])
            t2 = time.perf_counter()
            failed += code != 0
            print(
                f"{name:16s} {path.stat().st_size / 1e6:6.1f} MB  load_image {t1 - t0:5.2f} s -> {shape}  "
                f"animate {t2 - t1:5.2f} s  exit {code}",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run())
