r"""Fit the brows' motion to the voice: a linear filter (ridge regression) from the prosodic cues around a
frame (motion.cues.ProsodyCues: pitch accent, stress, loudness, voice activity, pitch) to the real brow raise
of the TRAIN split's talking faces, written to src/talkface/assets/brows.json and used by the rule generator.

Real brows: the face-mesh track of each clip (cached like training/learned_motion/dataset.py's) through
motion.capture.motion_from_track, brow_raise relative to the clip's median, at 25 fps. Cross-validation is
speaker-disjoint (4 folds); the score is the mean per-clip Pearson r of the filter's brows with the real ones,
beside the rule generator's old hand-set brows (loudness stress and pitch accent through fixed smoothers).
The output is re-scaled about its mean so that its spread matches the real brows' on the training data (a
regression shrinks towards the mean; the correlation is unchanged).

    .venv/bin/python -m training.fit_brows /work/shared/data --cv-only
    .venv/bin/python -m training.fit_brows /work/shared/data
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import date
from pathlib import Path

import numpy as np

from talkface.audio.features import compute_features
from talkface.audio.load import load_audio
from talkface.eval.split import manifest_speakers, train_clips
from talkface.face.expression import BROW_RAISE
from talkface.motion.capture import motion_from_track
from talkface.motion.cues import PROSODY_COLUMNS, BrowFilter, ProsodyCues, SpeechLevels
from training.learned_motion.dataset import CACHE, MIN_FACE_SHARE, load_track

log = logging.getLogger("fit_brows")

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "talkface" / "assets" / "brows.json"
FPS = 25.0
PAST, AHEAD = 12, 1  # frames: half a second of the voice before, and the rule generator's 40 ms ahead
RIDGE = 100.0  # chosen on the folds (1-1000 gave r within 0.003)
FOLDS = 4


def clip_data(path: Path, tracks: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(prosodic cues (T, 5), real brow raise (T,)) of one talking clip at FPS; None if the face is lost."""
    track = load_track(path, tracks)
    if np.isfinite(track.points[:, 0, 0]).mean() < MIN_FACE_SHARE:
        return None
    brow = motion_from_track(track).expression[:, BROW_RAISE].astype(np.float64)
    brow -= np.median(brow)
    n = int(round(len(brow) / track.fps * FPS))
    brow = np.interp((np.arange(n) + 0.5) / FPS * track.fps - 0.5, np.arange(len(brow)), brow)
    f = compute_features(load_audio(path)).at_fps(FPS, n)
    level, _, semis = SpeechLevels(FPS)(f)
    return ProsodyCues(FPS)(f, level, semis), brow


def windows(x: np.ndarray) -> np.ndarray:
    """Each frame's PAST + 1 + AHEAD rows of x (T, k) side by side, ends held: (T, (PAST+1+AHEAD) * k),
    tap-major (the rows of tap 0 first)."""
    held = np.concatenate([np.repeat(x[:1], PAST, 0), x, np.repeat(x[-1:], AHEAD, 0)])
    return np.concatenate([held[t : t + len(x)] for t in range(PAST + 1 + AHEAD)], 1)


def fit(clips: list[tuple[np.ndarray, np.ndarray]]) -> BrowFilter:
    x_all = np.concatenate([c for c, _ in clips])
    in_mean, in_std = x_all.mean(0), x_all.std(0) + 1e-6
    x = np.concatenate([windows((c - in_mean) / in_std) for c, _ in clips])
    y = np.concatenate([b for _, b in clips])
    w = np.linalg.solve(x.T @ x + RIDGE * np.eye(x.shape[1]), x.T @ (y - y.mean()))
    pred = x @ w
    gain = float(y.std() / max(pred.std(), 1e-9))
    taps = w.reshape(PAST + 1 + AHEAD, len(in_mean))
    return BrowFilter(FPS, PAST, AHEAD, in_mean, in_std, taps, float(y.mean()), gain)


def brows_of(f: BrowFilter, cues: np.ndarray) -> np.ndarray:
    x = (cues - f.in_mean) / f.in_std
    return windows(x) @ f.weights.reshape(-1) * f.gain + f.out_mean


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 1e-9 and b.std() > 1e-9 else float("nan")


def old_rule_brows(path: Path, n: int) -> np.ndarray:
    """The rule generator's hand-set brows before this fit (for the comparison in the report)."""
    from talkface.motion.cues import STRESS_MEAN_S, clip01
    from talkface.motion.stream import CausalSmoother

    f = compute_features(load_audio(path)).at_fps(FPS, n)
    level, _, semis = SpeechLevels(FPS)(f)
    tau = 1.0 / np.sqrt(2) * FPS
    talking = f.voicing > 0.5
    mean = CausalSmoother(STRESS_MEAN_S * tau)(level)
    stress = CausalSmoother(0.08 * tau)(clip01((level - mean) * 3.0) * talking)
    accent = CausalSmoother(0.12 * tau)(clip01(semis / 4.0) * (f.pitch_hz > 0))
    return clip01(0.5 * stress + 0.4 * accent)


def cross_validate(paths, clips, speakers) -> dict:
    groups = sorted(set(speakers))
    rng = np.random.default_rng(0)
    rng.shuffle(groups)
    r_fit, r_old = [], []
    for k in range(FOLDS):
        held = set(groups[k::FOLDS])
        train = [c for c, s in zip(clips, speakers, strict=True) if s not in held]
        f = fit(train)
        for p, c, s in zip(paths, clips, speakers, strict=True):
            if s in held:
                r_fit.append(_r(brows_of(f, c[0]), c[1]))
                r_old.append(_r(old_rule_brows(p, len(c[1])), c[1]))
    return {
        "folds": FOLDS,
        "clips": len(r_fit),
        "r_filter": round(float(np.nanmean(r_fit)), 3),
        "r_old_rules": round(float(np.nanmean(r_old)), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="the development media folder (talking/, manifest.tsv)")
    ap.add_argument("--tracks", type=Path, default=CACHE / "tracks", help="face-mesh track cache")
    ap.add_argument("--cv-only", action="store_true", help="cross-validate; write nothing")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    who = manifest_speakers(args.data)
    paths, clips, speakers = [], [], []
    for p in train_clips(args.data):
        if p.parent.name != "talking":
            continue
        c = clip_data(p, args.tracks)
        if c is not None:
            paths.append(p)
            clips.append(c)
            speakers.append(who.get(f"talking/{p.name}", p.stem))
    seconds = sum(len(b) for _, b in clips) / FPS
    log.info("%d clips, %.0f s, %d speakers", len(clips), seconds, len(set(speakers)))
    cv = cross_validate(paths, clips, speakers)
    log.info("speaker-disjoint cross-validation: %s", cv)
    if args.cv_only:
        return
    f = fit(clips)
    real_std = float(np.concatenate([b for _, b in clips]).std())
    OUT.write_text(
        json.dumps(
            {
                "what": "brow_raise from prosodic cues (motion.cues.BrowFilter), the rule generator's brows",
                "made_by": "training/fit_brows.py",
                "date": date.today().isoformat(),
                "columns": list(PROSODY_COLUMNS),
                "data": {"clips": [p.name for p in paths], "seconds": round(seconds, 1), "split": "train"},
                "ridge": RIDGE,
                "real_brow_std": round(real_std, 4),
                "cross_validation": cv,
                "filter": f.to_json(),
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    log.info("wrote %s (gain %.2f)", OUT, f.gain)


if __name__ == "__main__":
    main()
