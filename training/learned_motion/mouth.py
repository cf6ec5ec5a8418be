r"""Fit the learned generator's mouth: linear filters (ridge regression) from phonetic or acoustic inputs
around a frame to that frame's real jaw, lip rounding and spreading, on the TRAIN split's talking faces.

Two filters are fitted and shipped in motion_model.json ("mouth"):

- "visemes": inputs are the coarticulated viseme targets (motion.visemes) of the phonemes, known (text to
  speech, --transcript) or recognised from the audio (audio.phones, pocketsphinx's phone recogniser), over
  PAST frames back and AHEAD frames ahead. Used whenever phonemes are known.
- "acoustic": inputs are the rules' causal acoustic mouth cues (MouthCues) over a window that needs no more
  lookahead than the flow model's; used when no phonemes are known (a live stream).

Why this and not a bigger network: on speaker-disjoint folds of the train split (mean per-clip r of the jaw
with the real jaw, 25 fps, before rendering; `--folds 4` prints the table) a dilated conv net on the 40
log-mel bands + cues reached r 0.08 (it learns the speakers, not the sounds: 4.6 minutes of video from 21
speakers), on the cues alone 0.22, on cues + viseme targets 0.30; ridge on the viseme targets of
recognised phones reached 0.39, against 0.25 for the rule generator's acoustic mouth and 0.32 for its
viseme mouth driven by the same recognised phones. Adding acoustic inputs, squared terms or phone
identities (one-hot) to the ridge lowered r (0.25-0.36). What is learned is how the lips follow the
phonetic targets in time (lead, smoothing, how rounding and spreading change the opening) from real faces.

Outputs are re-scaled about their mean so that their spread matches the real mouth's on the training data
(a regression shrinks towards the mean; the correlation is unchanged).

    .venv/bin/python -m training.learned_motion.mouth /work/shared/data --folds 4   # cross-validation only
    .venv/bin/python -m training.learned_motion.mouth /work/shared/data             # fit on all, write json
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from talkface.eval.metrics import lagged_correlation
from talkface.motion.cues import CUE_DIM, MouthFilter, held_ends, window_rows
from talkface.motion.learned import META_FILE
from training.learned_motion.dataset import CACHE, ClipData, build_all

log = logging.getLogger("learned_motion.mouth")

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "src" / "talkface" / "assets"
MOUTH = slice(0, 3)  # jaw_open, lip_round, lip_spread in the motion vector
# (past, ahead, ridge strength as a share of the number of rows): chosen on the folds.
SETTINGS = {"visemes": (3, 3, 0.3), "acoustic": (4, 2, 0.1)}


def inputs(clip: ClipData, variant: str, kind: str) -> np.ndarray:
    """The filter's per-frame inputs (T, k): viseme targets or MouthCues (the dataset's cues hold both)."""
    cues = clip.cues[variant]
    return cues[:, CUE_DIM:] if kind == "visemes" else cues[:, :CUE_DIM]


def fit(clips: list[ClipData], kind: str) -> MouthFilter:
    past, ahead, lam = SETTINGS[kind]
    xs = [inputs(c, v, kind) for c in clips for v in c.cues]
    ys = [c.motion[v][:, MOUTH] for c in clips for v in c.cues]
    x = np.concatenate([window_rows(held_ends(a, past, ahead), past + 1 + ahead) for a in xs])
    return ridge_filter(x, np.concatenate(ys), past, ahead, lam)


def ridge_filter(x: np.ndarray, y: np.ndarray, past: int, ahead: int, lam: float) -> MouthFilter:
    """The MouthFilter regressing the mouth y (N, 3) on input windows x (N, k * (past + 1 + ahead)): ridge
    of strength lam (a share of the rows) on standardised inputs, outputs re-scaled to y's spread."""
    mu, sd = x.mean(0), x.std(0) + 1e-3
    xn = (x - mu) / sd
    w = np.linalg.solve(xn.T @ xn + lam * len(xn) * np.eye(x.shape[1]), xn.T @ (y - y.mean(0)))
    gain = y.std(0) / np.maximum((xn @ w).std(0), 1e-6)
    return MouthFilter(past, ahead, mu, sd, w * gain, y.mean(0))


def speaker_order(clips: list[ClipData]) -> list[str]:
    """The clips' speakers in a fixed random order: fold k holds out speakers k, k + folds, ..."""
    return list(np.random.default_rng(0).permutation(sorted({c.speaker for c in clips})))


def _r(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() < 1e-6 or b.std() < 1e-6:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _mean_lag(rows: list[dict], key: str) -> list[float]:
    """Mean and median over the clips whose lag peaks inside the search, and how many those are."""
    lags = np.array([r[key] for r in rows], float)
    lags = lags[np.isfinite(lags)]
    return [round(float(lags.mean()), 1), round(float(np.median(lags)), 1), len(lags)]


def cross_validate(clips: list[ClipData], folds: int) -> dict:
    """Speaker-disjoint folds: per held-out clip, the r of each filter's jaw, rounding and spreading with the
    real ones, and the r of the rule generator's acoustic jaw and of its viseme jaw (unsmoothed targets
    of the recognised phones, 40 ms lead) with the real jaw."""
    talk = [c for c in clips if c.talking]
    order = speaker_order(talk)
    rows = []
    for k in range(folds):
        held = set(order[k::folds])
        train = [c for c in talk if c.speaker not in held]
        filters = {kind: fit(train, kind) for kind in SETTINGS}
        for c in talk:
            if c.speaker in held:
                real = c.motion["orig"][:, MOUTH]
                row = {"clip": c.name, "seconds": len(real) / 25.0}
                for kind, f in filters.items():
                    pred = f(inputs(c, "orig", kind))
                    row[kind] = [_r(pred[:, j], real[:, j]) for j in range(3)]
                row["rules"] = _r(c.rules[:, 0], real[:, 0])
                row["rules_visemes"] = _r(np.r_[inputs(c, "orig", "visemes")[1:, 0], 0.0], real[:, 0])
                # timing: the lag (ms, > 0: ours late) of the best r within +-200 ms, before rendering
                jaw = filters["visemes"](inputs(c, "orig", "visemes"))[:, 0]
                row["lag_visemes_ms"] = lagged_correlation(real[:, 0], jaw, 25.0).lag_ms
                row["lag_rules_ms"] = lagged_correlation(real[:, 0], c.rules[:, 0], 25.0).lag_ms
                rows.append(row)
    summary = {
        "visemes_jaw_round_spread": np.nanmean([r["visemes"] for r in rows], 0).round(3).tolist(),
        "acoustic_jaw_round_spread": np.nanmean([r["acoustic"] for r in rows], 0).round(3).tolist(),
        "rules_acoustic_jaw": round(float(np.nanmean([r["rules"] for r in rows])), 3),
        "rules_visemes_jaw": round(float(np.nanmean([r["rules_visemes"] for r in rows])), 3),
        "lag_visemes_ms": _mean_lag(rows, "lag_visemes_ms"),
        "lag_rules_ms": _mean_lag(rows, "lag_rules_ms"),
        "clips": len(rows),
        "folds": folds,
    }
    return {"rows": rows, "summary": summary}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="the development media folder (talking/, silent/, manifest.tsv)")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--cv-only", action="store_true", help="print the cross-validation, write nothing")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    clips = build_all(args.data, args.cache)
    cv = cross_validate(clips, args.folds)
    for r in cv["rows"]:
        log.info(
            "%-36s %5.1f s  visemes %.3f  acoustic %.3f  rules %.3f  rules+phones %.3f",
            r["clip"],
            r["seconds"],
            r["visemes"][0],
            r["acoustic"][0],
            r["rules"],
            r["rules_visemes"],
        )
    log.info("cross-validation (r with the real mouth): %s", json.dumps(cv["summary"]))
    if args.cv_only:
        return
    talk = [c for c in clips if c.talking]
    meta_path = ASSETS / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["mouth"] = {kind: fit(talk, kind).to_json() for kind in SETTINGS}
    meta["mouth"]["cross_validation"] = cv["summary"]
    meta["mouth"]["how"] = (
        "training/learned_motion/mouth.py: ridge regression on the train split's talking clips "
        f"({len(talk)} clips, 5 audio variants each)"
    )
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    log.info("wrote the mouth filters into %s", meta_path)


if __name__ == "__main__":
    main()
