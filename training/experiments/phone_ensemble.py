"""Phone-recognition ensembles for the learned viseme mouth: do the averaged viseme targets of K allphone
decodings (audio shifted by a fraction of pocketsphinx's 10-ms frame, or decoders with other search settings)
raise the mouth filter's speaker-disjoint 4-fold CV jaw r on the train split (orig audio only)?

Each decoding runs audio.phones' recogniser path (same VAD pieces, same padding); a shift of s ms
prepends s ms of the same quiet noise to every piece and subtracts s from the phone times. The baseline
is this code path with K = 1, shift 0 and the shipped settings. Paired differences are per-clip jaw r
minus the baseline's, 95 % CI by bootstrap over clips (2000 resamples).

Measured on the 43 train clips (jaw r; paired difference to the baseline [95 % CI]):

    K1 shift 0 (baseline)           0.362
    K2 shifts 0/5 ms                0.360  -0.002 [-0.010, +0.006]
    K4 shifts 0/2.5/5/7.5 ms        0.361  -0.001 [-0.010, +0.008]
    K1 shift 2.5 / 5 / 7.5 ms       0.349 / 0.343 / 0.349  (-0.013 / -0.019 / -0.013)
    K1 lw 0.3 / 0.7 / 1.0           0.357 / 0.358 / 0.350
    K1 pip 0.1 / 10                 0.361 / 0.361  (-0.001 [-0.004, +0.001])
    K4 lw 0.3/0.5/0.7/1.0           0.361  -0.001 [-0.005, +0.004]
    K3 pip 0.1/1/10                 0.362  -0.000 [-0.003, +0.002]
    K7 4 shifts + lw 0.3/0.7/1.0    0.363  +0.001 [-0.005, +0.008]

No ensemble helps: the averaged targets are no better than one decoding, so the runtime keeps one.
One decoding costs 0.054 s per second of audio (one core, machine shared). Found on the way: the
output depended on what the same Decoder had decoded before (the features' running cepstral mean and
noise estimate carried over between utterances): the same audio decoded twice differed on 0-12 % of
frames (4 clips checked), so the cached visemes are not exactly reproduced (max abs difference 0.51),
though their CV r is the same 0.362 (front_end_words). audio.phones.recognize_phones now resets the
features (Decoder.reinit_feat) on every call; these numbers were measured before that.

Decodings are cached as .npy per clip and setting under --work (derived from the clips: never commit).

    .venv/bin/python -m training.experiments.phone_ensemble /work/shared/data --work /tmp/s25/ens
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pocketsphinx

from talkface.audio.align import ARPABET_TO_ESPEAK, FRAME_RATE, PAUSE_SYMBOL, _padding, _pieces, _to_phonemes
from talkface.audio.load import SAMPLE_RATE, Audio, load_audio
from talkface.audio.phones import LANGUAGE_WEIGHT, PHONE_PENALTY, _read_decoder
from talkface.audio.vad import speech_probability
from talkface.motion.learned import MODEL_FPS
from talkface.motion.visemes import viseme_targets
from training.learned_motion.dataset import CACHE, ClipData, build_all
from training.learned_motion.mouth import cross_validate

MODEL = Path(pocketsphinx.__file__).parent / "model" / "en-us"
SHIFTS_MS = (0.0, 5.0, 2.5, 7.5)  # K = 2 takes the first two (half a frame apart), K = 4 all
# Decoder variants (language weight, phone insertion penalty); the first is the shipped one.
DECODERS = {
    "lw0.5": (LANGUAGE_WEIGHT, PHONE_PENALTY),
    "lw0.3": (0.3, PHONE_PENALTY),
    "lw0.7": (0.7, PHONE_PENALTY),
    "lw1.0": (1.0, PHONE_PENALTY),
    "pip0.1": (LANGUAGE_WEIGHT, 0.1),
    "pip10": (LANGUAGE_WEIGHT, 10.0),
}


def decoder(lw: float, pip: float):
    return _read_decoder(MODEL, lw=lw, pip=pip)


def recognize(d, audio: Audio, shift_ms: float, pieces) -> tuple:
    """audio.phones.recognize_phones with decoder d, each piece preceded by shift_ms of quiet noise."""
    pcm = (np.clip(audio.samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)
    lead = int(round(shift_ms * SAMPLE_RATE / 1000))
    pre = np.random.default_rng(1).integers(-4, 5, lead).astype(np.int16)
    spans = []
    for piece in pieces:
        offset = piece.start / SAMPLE_RATE - lead / SAMPLE_RATE
        d.start_utt()
        d.process_raw(
            np.concatenate([pre, pcm[piece.start : piece.end], _padding()]).tobytes(), full_utt=True
        )
        d.end_utt()
        for s in d.seg():
            symbol = ARPABET_TO_ESPEAK.get(s.word, PAUSE_SYMBOL)
            spans.append(
                (symbol, offset + s.start_frame / FRAME_RATE, offset + (s.end_frame + 1) / FRAME_RATE)
            )
    return _to_phonemes(spans, audio.duration)


def decode_all(clips: list[ClipData], data: Path, work: Path, settings: list[tuple[str, float]]) -> dict:
    """{(decoder name, shift): {clip name: visemes (T, 3)}}, cached in work; also seconds of audio and of
    decoding (for what was decoded now)."""
    paths = {p.stem: p for p in (data / "talking").iterdir()}
    decoders: dict = {}
    out = {s: {} for s in settings}
    audio_s = decode_s = 0.0
    for c in clips:
        audio = pieces = None
        n = len(c.motion["orig"])
        for name, shift in settings:
            f = work / f"{c.name}__{name}__{shift:g}.npy"
            if not f.exists():
                if audio is None:
                    audio = load_audio(paths[c.name])
                    pieces = _pieces(audio.samples, speech_probability(audio.samples))
                if name not in decoders:
                    decoders[name] = decoder(*DECODERS[name])
                t0 = time.perf_counter()
                phones = recognize(decoders[name], audio, shift, pieces)
                decode_s += time.perf_counter() - t0
                audio_s += audio.duration
                np.save(f, viseme_targets(phones, (np.arange(n) + 0.5) / MODEL_FPS).astype(np.float32))
            out[(name, shift)][c.name] = np.load(f)
    return {"visemes": out, "audio_s": audio_s, "decode_s": decode_s}


def with_visemes(clips: list[ClipData], vis: dict[str, np.ndarray]) -> list[ClipData]:
    out = []
    for c in clips:
        cues = c.cues["orig"].copy()
        cues[:, -3:] = vis[c.name]
        out.append(dataclasses.replace(c, cues={"orig": cues}))
    return out


def bootstrap(d: np.ndarray, n: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    means = d[rng.integers(0, len(d), (n, len(d)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="the development media folder (talking/, silent/, manifest.tsv)")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--work", type=Path, default=Path("/tmp/s25/ens"), help="decoding cache")
    ap.add_argument("--no-decoders", action="store_true", help="shift ensembles only")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    clips = [c for c in build_all(args.data, args.cache, workers=1) if c.talking]

    settings = [("lw0.5", s) for s in SHIFTS_MS]
    if not args.no_decoders:
        settings += [(name, 0.0) for name in DECODERS if name != "lw0.5"]
    dec = decode_all(clips, args.data, args.work, settings)
    vis = dec["visemes"]
    if dec["audio_s"]:
        print(
            f"decoded {dec['audio_s']:.0f} s of audio in {dec['decode_s']:.1f} s: "
            f"{dec['decode_s'] / dec['audio_s']:.3f} s per s of audio (one decoding)"
        )
    cached = {c.name: c.cues["orig"][:, -3:] for c in clips}
    base_vis = vis[("lw0.5", 0.0)]
    gap = max(float(np.abs(base_vis[k] - cached[k]).max()) for k in cached)
    print(f"baseline vs cached visemes: max abs difference {gap:.4f}")

    def mean_of(keys):
        return {c.name: np.mean([vis[k][c.name] for k in keys], 0) for c in clips}

    versions = {
        "K1 (shift 0)": mean_of([("lw0.5", 0.0)]),
        "K2 shifts 0/5": mean_of([("lw0.5", s) for s in SHIFTS_MS[:2]]),
        "K4 shifts 0/2.5/5/7.5": mean_of([("lw0.5", s) for s in SHIFTS_MS]),
    }
    for s in SHIFTS_MS[1:]:
        versions[f"K1 shift {s:g}"] = mean_of([("lw0.5", s)])
    if not args.no_decoders:
        for name in DECODERS:
            if name != "lw0.5":
                versions[f"K1 {name}"] = mean_of([(name, 0.0)])
        versions["K4 lw 0.3/0.5/0.7/1.0"] = mean_of([(n, 0.0) for n in ("lw0.3", "lw0.5", "lw0.7", "lw1.0")])
        versions["K3 pip 0.1/1/10"] = mean_of([(n, 0.0) for n in ("pip0.1", "lw0.5", "pip10")])
        versions["K7 all shifts + lw 0.3/0.7/1.0"] = mean_of(
            [("lw0.5", s) for s in SHIFTS_MS] + [(n, 0.0) for n in ("lw0.3", "lw0.7", "lw1.0")]
        )
    results, base = {}, None
    for label, v in versions.items():
        cv = cross_validate(with_visemes(clips, v), 4)
        r = np.array([row["visemes"][0] for row in cv["rows"]])
        base = r if base is None else base
        d = (r - base)[np.isfinite(r - base)]
        lo, hi = bootstrap(d)
        results[label] = {
            "jaw_r": cv["summary"]["visemes_jaw_round_spread"][0],
            "diff": d.mean(),
            "ci": (lo, hi),
        }
        print(
            f"{label:34s} jaw r {results[label]['jaw_r']:.3f}  diff {d.mean():+.4f} [{lo:+.4f}, {hi:+.4f}]",
            flush=True,
        )
    (args.work / "results.json").write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
