r"""Synthetic training data: espeak-ng speech (many languages, voices, variants, rates, pitches) with exact
phoneme timings, augmented towards real recordings (speed/vocal-tract perturbation, random EQ, band limits,
reverb, coloured noise and babble at 5-30 dB SNR, gain), then the runtime's 100 Hz features.

Labels per 10-ms feature frame i (centred at i / 100 s): the coarticulated viseme targets (jaw, round,
spread; motion.visemes.VisemeTrack of the exact phonemes) and the viseme class (index into CLASSES).

Shards go to reports/viseme_net_cache/synth/ (git-ignored): nothing here is derived from real media.

    .venv/bin/python -m training.viseme_net.data --hours 3 --workers 2
"""

from __future__ import annotations

import argparse
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import scipy.signal as sps
import soxr

from talkface.audio import tts
from talkface.audio.features import FEATURE_RATE, compute_features
from talkface.audio.load import SAMPLE_RATE, from_samples
from talkface.motion import visemes
from talkface.motion.contract import Phoneme
from training.viseme_net.text import english_text, pseudo_text

log = logging.getLogger("viseme_net.data")

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "reports" / "viseme_net_cache"

# Viseme classes: the distinct mouth targets of motion.visemes (the pause first); unknown symbols fall to
# the velar class, as viseme_of does.
CLASSES = [visemes._PAUSE] + sorted(set(visemes._BY_SYMBOL.values()) - {visemes._PAUSE})
ENGLISH_VOICES = ["en-us", "en-us", "en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc",
                  "en-gb-x-gbclan", "en-gb-x-gbcwmd"]  # fmt: skip
OTHER_VOICES = ["de", "fr", "es", "it", "pt", "pt-br", "nl", "pl", "cs", "sk", "sv", "da", "nb", "fi", "hu",
                "tr", "id", "ro", "hr", "sl", "ca", "eu", "sw", "ms", "lv", "et", "es-419"]  # fmt: skip
VARIANTS = [
    "", "", "", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "Alex", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee",
    "Michael", "Mike", "Storm", "adam", "anika", "aunty", "belinda", "benjamin", "caleb", "david",
    "ed", "edward", "grandma", "grandpa", "ian", "iven", "iven2", "john", "linda", "max", "norbert",
    "paul", "quincy", "rob", "robert", "shelby", "steph", "travis", "Alicia", "Andrea", "Hugo",
    "Marco", "boris", "pablo", "pedro", "michel", "miguel", "marcelo", "antonio",
]  # fmt: skip


def viseme_class(symbol: str) -> int:
    return CLASSES.index(visemes.viseme_of(symbol))


def synthesize(rng: np.random.Generator) -> tuple[np.ndarray, int, list[Phoneme], str]:
    """One random utterance: samples (espeak's 22050 Hz), its phonemes, a description."""
    eng = tts._get_engine()
    english = rng.random() < 0.65
    voice = str(rng.choice(ENGLISH_VOICES if english else OTHER_VOICES))
    variant = str(rng.choice(VARIANTS))
    n_words = int(rng.integers(6, 30))
    text = english_text(rng, n_words) if english and rng.random() < 0.85 else pseudo_text(rng, n_words)
    rate, pitch = int(rng.integers(120, 251)), int(rng.integers(5, 96))
    ident = eng.voices[voice] + (b"+" + variant.encode() if variant else b"")
    with tts._lock:
        speech = eng.synthesize(text, ident, rate, pitch)
    return speech.samples, speech.sample_rate, list(speech.phonemes), f"{voice}+{variant} {rate} {pitch}"


def _biquad_peak(f0: float, gain_db: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    a_ = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / SAMPLE_RATE
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a_, -2 * np.cos(w0), 1 - alpha * a_])
    a = np.array([1 + alpha / a_, -2 * np.cos(w0), 1 - alpha / a_])
    return b / a[0], a / a[0]


def _coloured_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White, pink or brown-ish noise, or a hum with harmonics."""
    kind = rng.integers(4)
    w = rng.standard_normal(n)
    if kind == 1:  # pink-ish
        w = sps.lfilter(
            [0.049922035, -0.095993537, 0.050612699, -0.004408786],
            [1, -2.494956002, 2.017265875, -0.522189400],
            w,
        )
    elif kind == 2:  # brown-ish
        w = sps.lfilter([1.0], [1, -0.98], w)
    elif kind == 3:  # hum + hiss
        f = rng.choice([50.0, 60.0]) * np.arange(1, 6)
        t = np.arange(n) / SAMPLE_RATE
        w = 0.3 * w + (np.sin(2 * np.pi * f[None, :] * t[:, None]) * rng.random(5)).sum(1)
    return w / (w.std() + 1e-9)


def augment(
    rng: np.random.Generator, x: np.ndarray, sr: int, phonemes: list[Phoneme], babble: np.ndarray | None
) -> tuple[np.ndarray, list[Phoneme]]:
    """Augmented 16 kHz audio and its phonemes on the new time base."""
    # Speed (tempo and vocal-tract length both scale): played at SAMPLE_RATE after resampling to
    # SAMPLE_RATE / speed, so times scale by 1 / speed.
    speed = float(rng.uniform(0.85, 1.15)) if rng.random() < 0.7 else 1.0
    y = soxr.resample(x.astype(np.float64), sr, SAMPLE_RATE / speed, quality="HQ")
    scale = 1.0 / speed
    # Silence before and after, so the labels learn rest.
    pre, post = (int(rng.uniform(0.05, 0.8) * SAMPLE_RATE) for _ in range(2))
    y = np.concatenate([np.zeros(pre), y, np.zeros(post)])
    shift = pre / SAMPLE_RATE
    ph = [Phoneme(p.start * scale + shift, p.end * scale + shift, p.symbol) for p in phonemes]
    # Random EQ: a few peaking filters, band limits.
    for _ in range(int(rng.integers(0, 5))):
        b, a = _biquad_peak(
            float(np.exp(rng.uniform(np.log(100), np.log(6000)))),
            float(rng.uniform(-12, 12)),
            float(rng.uniform(0.4, 3)),
        )
        y = sps.lfilter(b, a, y)
    if rng.random() < 0.5:
        y = sps.sosfilt(
            sps.butter(
                int(rng.integers(2, 6)), float(rng.uniform(2500, 7500)), "low", fs=SAMPLE_RATE, output="sos"
            ),
            y,
        )
    if rng.random() < 0.5:
        y = sps.sosfilt(sps.butter(2, float(rng.uniform(50, 350)), "high", fs=SAMPLE_RATE, output="sos"), y)
    # Reverb: exponentially decaying noise impulse response (RT60 0.1-0.8 s), mixed in.
    if rng.random() < 0.5:
        rt60 = rng.uniform(0.1, 0.8)
        t = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
        ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
        ir[: int(0.002 * SAMPLE_RATE)] = 0
        ir = ir / np.sqrt((ir**2).sum())
        wet = sps.fftconvolve(y, ir)[: len(y)]
        y = y + wet * rng.uniform(0.1, 0.8) * (y.std() / (wet.std() + 1e-9))
    # Slow level changes (the speaker moving, emphasis): up to +-6 dB over 0.3-2 s.
    if rng.random() < 0.5:
        n_knots = max(2, int(len(y) / SAMPLE_RATE / rng.uniform(0.3, 2.0)) + 2)
        gain_db = np.interp(np.arange(len(y)), np.linspace(0, len(y), n_knots), rng.uniform(-6, 6, n_knots))
        y = y * 10 ** (gain_db / 20)
    # Soft saturation now and then (cheap microphones, loud speech).
    if rng.random() < 0.15:
        k = rng.uniform(1.5, 5)
        y = np.tanh(k * y / (np.abs(y).max() + 1e-9)) / np.tanh(k)
    speech_level = np.sqrt((y[y != 0] ** 2).mean() + 1e-12)
    if babble is not None and rng.random() < 0.2:
        bab = np.resize(babble, len(y))
        y = y + bab / (bab.std() + 1e-9) * speech_level * 10 ** (-rng.uniform(12, 25) / 20)
    if rng.random() < 0.8:
        y = y + _coloured_noise(rng, len(y)) * speech_level * 10 ** (-rng.uniform(5, 30) / 20)
    else:
        y = y + rng.standard_normal(len(y)) * speech_level * 1e-3  # never digital silence
    peak = np.abs(y).max() + 1e-9
    y = y / peak * 10 ** (rng.uniform(-30, -1) / 20)
    return np.clip(y, -1, 1).astype(np.float32), ph


def example(seed: int) -> dict[str, np.ndarray]:
    """One augmented utterance: inputs (T, 42) float16 [log_mel (40), voicing, periodicity], targets (T, 3),
    classes (T,) int8."""
    rng = np.random.default_rng(seed)
    x, sr, phonemes, desc = synthesize(rng)
    babble = None
    if rng.random() < 0.2:
        bx, bsr, _, _ = synthesize(rng)
        babble = soxr.resample(bx.astype(np.float64), bsr, SAMPLE_RATE)
    y, ph = augment(rng, x, sr, phonemes, babble)
    f = compute_features(from_samples(y, SAMPLE_RATE))
    t = np.arange(len(f)) / FEATURE_RATE
    track = visemes.VisemeTrack(ph)
    targets = track(t).astype(np.float32)
    classes = np.zeros(len(f), np.int8)  # pause where no phoneme covers the frame
    starts = np.array([p.start for p in ph])
    idx = np.searchsorted(starts, t, side="right") - 1
    inside = (idx >= 0) & (t < ph[-1].end)
    table = np.array([viseme_class(p.symbol) for p in ph], np.int8)
    classes[inside] = table[idx[inside]]
    inputs = np.concatenate([f.log_mel, f.voicing[:, None], f.periodicity[:, None]], 1).astype(np.float16)
    return {"inputs": inputs, "targets": targets, "classes": classes, "desc": np.array(desc)}


def shard(args: tuple[int, int, Path]) -> Path:
    first, count, out = args
    path = out / f"shard_{first:07d}.npz"
    if path.exists():
        return path
    items = [example(first + i) for i in range(count)]
    lengths = np.array([len(e["inputs"]) for e in items])
    np.savez(
        path,
        inputs=np.concatenate([e["inputs"] for e in items]),
        targets=np.concatenate([e["targets"] for e in items]),
        classes=np.concatenate([e["classes"] for e in items]),
        lengths=lengths,
        desc=np.array([str(e["desc"]) for e in items]),
    )
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--per-shard", type=int, default=100)
    ap.add_argument("--first", type=int, default=0, help="first utterance seed (to add shards to a set)")
    ap.add_argument("--out", type=Path, default=CACHE / "synth")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args.out.mkdir(parents=True, exist_ok=True)
    # ~8 s per utterance on average: shards until the hours are reached.
    n_shards = int(np.ceil(args.hours * 3600 / 8.0 / args.per_shard))
    jobs = [(args.first + k * args.per_shard, args.per_shard, args.out) for k in range(n_shards)]
    t0, total = time.time(), 0.0
    with ProcessPoolExecutor(args.workers) as pool:
        for p in pool.map(shard, jobs):
            total += np.load(p)["lengths"].sum() / FEATURE_RATE
            log.info("%s: %.2f h so far, %.0f s", p.name, total / 3600, time.time() - t0)


if __name__ == "__main__":
    main()
