"""Speed of the learned motion generator (the shipped ONNX model through onnxruntime): seconds of motion
generated per second of compute, offline (the whole file pushed at once) and live (one video frame per
push), at 25 fps, after a warm-up. Audio features are computed beforehand (they are not the generator's).

    .venv/bin/python -m training.learned_motion.bench [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from talkface.audio.features import compute_features
from talkface.audio.load import from_samples
from talkface.config import MotionControls
from talkface.motion.generators import generate
from talkface.motion.learned import LearnedStream, load_model


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Voiced syllables (harmonic source, 4 per second) with gaps, 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    phase = 2 * np.pi * np.cumsum(160 + 40 * np.sin(2 * np.pi * 0.7 * t)) / 16000
    source = sum(np.sin(k * phase) / k for k in range(1, 25))
    syll = (0.5 - 0.5 * np.cos(2 * np.pi * 4 * t)) * (np.sin(2 * np.pi * 4 * t - 0.3) > -0.6)
    y = source * syll + 0.01 * rng.standard_normal(len(t))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    fps = 25.0
    feats = compute_features(from_samples(speech_like(args.seconds), 16000))
    n = int(round(args.seconds * fps))
    _, meta = load_model()
    generate("learned", feats, 50, fps, MotionControls())  # warm-up
    t0 = time.perf_counter()
    generate("learned", feats, n, fps, MotionControls())
    offline = time.perf_counter() - t0
    stream = LearnedStream(fps, MotionControls())
    f = feats.at_fps(fps, n)
    t0 = time.perf_counter()
    worst = 0.0
    for i in range(n):
        t1 = time.perf_counter()
        stream.push(f.sliced(i, i + 1))
        worst = max(worst, time.perf_counter() - t1)
    stream.finish()
    live = time.perf_counter() - t0
    windows = n / meta.window
    print(
        json.dumps(
            {
                "audio_seconds": args.seconds,
                "offline_x_realtime": round(args.seconds / offline, 1),
                "live_x_realtime": round(args.seconds / live, 1),
                "ms_per_window": round(1000 * offline / windows, 2),
                "worst_push_ms": round(1000 * worst, 2),
                "steps": meta.steps,
                "guidance": meta.guidance,
            }
        )
    )


if __name__ == "__main__":
    main()
