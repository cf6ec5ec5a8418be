r"""Fit the learned generator's blinks (motion.blinks.BlinkModel) to the blinks of the TRAIN split's talking
faces and write them into motion_model.json ("blinks").

Blinks are found in each clip's face-mesh track exactly as `talkface eval` finds them (eval.metrics:
count_blinks of the eye aspect ratio), so the model learns what the eval counts. The start chance per
frame (25 fps) is a logistic regression on the time since the last start (bins: `EDGES_S`), with its own
term before a clip's first blink, fitted by Newton's method with an L2 penalty; every frame is weighted by
1 / its speaker's seconds, so that every speaker counts once.

Candidates are compared on speaker-disjoint folds by the held-out log-likelihood per speaker-minute,
relative to a constant rate (a Poisson process). The renewal terms help (+0.8 nats); speech on top
(speaking, speech started within 0.5 s, a pause started within 0.5 s) does not (+0.76 at best).

The shipped process then has its bias shifted so that it blinks as often as the mean training speaker
(25 per minute; people in conversation: 26, FIELD.md). Unshifted, it blinks 35 times a minute: speakers
differ (0-79 per minute here), so after a blink the fit expects the next one soon, as a frequent blinker
would; that predicts a held-out speaker's next blink better (the shifted fit scores below a constant
rate on the folds), but one generated face should blink like a typical speaker, not like the frequent
ones. The profile of a blink is the median real lid track from the found starts on, and its width
distribution the real blinks' widths.

    .venv/bin/python -m training.learned_motion.blinks /work/shared/data --cv-only
    .venv/bin/python -m training.learned_motion.blinks /work/shared/data
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkface.eval import metrics as M
from talkface.eval.split import train_clips
from talkface.motion.blinks import BlinkModel, blinks_per_minute
from talkface.motion.learned import META_FILE, MODEL_FPS
from training.learned_motion.dataset import CACHE, build_all, load_track

log = logging.getLogger("learned_motion.blinks")

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "src" / "talkface" / "assets"
REFRACTORY_S = 0.24  # no real blink starts sooner after another (the eval's detector needs a reopening)
EDGES_S = (0.5, 1.0, 2.0, 4.0)
RIDGE = 10.0  # L2 penalty on the non-bias weights (per speaker-weighted frame sum), chosen on the folds
PROFILE_FRAMES = 9  # frames of the profile from the blink's start
FEATURE_LEVEL = 40  # FeatureNormalizer column: level relative to the loud voice, /20 dB
SPEAKING_DB = -15.0
RECENT_S = 0.5
CANDIDATES = ("constant", "renewal", "renewal+speech", "renewal, rate matched")
SHIPPED = "renewal, rate matched"


@dataclass
class ClipBlinks:
    name: str
    speaker: str
    starts: np.ndarray  # model frames where a blink starts
    seen: np.ndarray  # (T,) bool: face found (frames at risk)
    lids: np.ndarray  # (T,) tracked lid closure, both lids' max
    level: np.ndarray  # (T,) FeatureNormalizer level column


def clip_blinks(data: Path) -> list[ClipBlinks]:
    clips = {c.name: c for c in build_all(data, CACHE) if c.talking}
    out = []
    for path in train_clips(data):
        c = clips.get(path.stem)
        if c is None:
            continue
        track = load_track(path, CACHE / "tracks")
        n = len(c.motion["orig"])
        found = np.isfinite(track.points[:, 0, 0])
        starts = M.count_blinks(M.eye_aspect_ratio(track.points), track.fps).onsets
        frames = sorted({int(round((s + 0.5) / track.fps * MODEL_FPS - 0.5)) for s in starts})
        src = np.clip(((np.arange(n) + 0.5) / MODEL_FPS * track.fps).astype(int), 0, len(found) - 1)
        out.append(
            ClipBlinks(
                c.name,
                c.speaker,
                np.array([f for f in frames if 0 <= f < n], np.int64),
                found[src],
                c.motion["orig"][:, 4:6].max(1),
                c.features["orig"][:, FEATURE_LEVEL],
            )
        )
    return out


def speech_terms(level: np.ndarray) -> np.ndarray:
    """(T, 3): speaking (level above SPEAKING_DB in 30 % of the frames from 4 back to 2 ahead), speech
    started within RECENT_S, a pause started within RECENT_S."""
    loud = (level * 20.0 > SPEAKING_DB).astype(np.float64)
    speaking = np.convolve(np.r_[np.zeros(4), loud, np.zeros(2)], np.ones(7) / 7, "valid") > 0.3
    recent = int(RECENT_S * MODEL_FPS)
    began = speaking & ~np.r_[False, speaking[:-1]]
    ended = ~speaking & np.r_[False, speaking[:-1]]
    since_began = _frames_since(began)
    since_ended = _frames_since(ended)
    return np.column_stack([speaking, speaking & (since_began < recent), ~speaking & (since_ended < recent)])


def _frames_since(marks: np.ndarray) -> np.ndarray:
    idx = np.where(marks, np.arange(len(marks)), -(10**9))
    return np.arange(len(marks)) - np.maximum.accumulate(idx)


def design(clip: ClipBlinks, kind: str, edges: np.ndarray, refractory: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, labels) of the clip's frames at risk: face seen, not within `refractory` of a start."""
    n = len(clip.seen)
    start = np.zeros(n, bool)
    start[clip.starts] = True
    last = np.where(start, np.arange(n), -1)
    last = np.r_[-1, np.maximum.accumulate(last)[:-1]]  # the last start before each frame
    since = np.where(last >= 0, np.arange(n) - last, -1)
    before_first = last < 0
    at_risk = clip.seen & (before_first | (since >= refractory))
    cols = [np.ones(n)]
    if kind.startswith("renewal"):
        cols.append(before_first.astype(np.float64))
        cols += [(~before_first & (since >= e)).astype(np.float64) for e in edges]
    if kind == "renewal+speech":
        cols += list(speech_terms(clip.level).T.astype(np.float64))
    x = np.column_stack(cols)
    return x[at_risk], start[at_risk].astype(np.float64)


def fit_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray, ridge: float) -> np.ndarray:
    """Weighted L2-penalised logistic regression (bias unpenalised) by Newton's method."""
    w = np.zeros(x.shape[1])
    w[0] = np.log(max((weight * y).sum(), 1e-9) / (weight * (1 - y)).sum())
    penalty = ridge * np.r_[0.0, np.ones(x.shape[1] - 1)]
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (weight * (y - p)) - penalty * w
        hess = (x * (weight * p * (1 - p))[:, None]).T @ x + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w += step
        if np.abs(step).max() < 1e-8:
            break
    return w


def _log_likelihood(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    z = x @ w
    return float((y * z - np.logaddexp(0.0, z)).sum())


def speaker_weights(clips: list[ClipBlinks]) -> dict[str, float]:
    """1 / the speaker's seconds of frames at risk-or-not: every speaker's frames sum to one second."""
    seconds: dict[str, float] = {}
    for c in clips:
        seconds[c.speaker] = seconds.get(c.speaker, 0.0) + c.seen.sum() / MODEL_FPS
    return {s: 1.0 / max(v, 1e-9) for s, v in seconds.items()}


def fit(clips: list[ClipBlinks], kind: str, edges: np.ndarray, refractory: int, ridge: float) -> np.ndarray:
    weights = speaker_weights(clips)
    rows = [design(c, kind, edges, refractory) for c in clips]
    x = np.concatenate([r[0] for r in rows])
    y = np.concatenate([r[1] for r in rows])
    wt = np.concatenate([np.full(len(r[1]), weights[c.speaker]) for c, r in zip(clips, rows, strict=True)])
    w = fit_logistic(x, y, wt / wt.mean(), ridge)  # weights of mean 1: the ridge acts per frame
    if kind.endswith("rate matched"):
        w[0] += rate_shift(w, edges, refractory, mean_rate(clips))
    return w


def mean_rate(clips: list[ClipBlinks]) -> float:
    """Blinks per minute of the mean speaker."""
    weights = speaker_weights(clips)
    per_speaker: dict[str, float] = {}
    for c in clips:
        per_speaker[c.speaker] = per_speaker.get(c.speaker, 0.0) + len(c.starts) * weights[c.speaker] * 60
    return float(np.mean(list(per_speaker.values())))


def rate_shift(w: np.ndarray, edges: np.ndarray, refractory: int, target: float) -> float:
    """The change of the bias that makes the process blink `target` times per minute (bisection)."""
    lo, hi = -4.0, 4.0
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        model = BlinkModel(
            MODEL_FPS, refractory, edges, w + np.r_[mid, np.zeros(len(w) - 1)], np.ones(1), np.ones(1)
        )
        if blinks_per_minute(model, 30.0) > target:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def cross_validate(clips: list[ClipBlinks], folds: int, edges: np.ndarray, refractory: int) -> dict:
    """Per candidate: held-out log-likelihood per speaker-minute minus the constant rate's, mean over held-out
    speakers (speaker-disjoint folds), at a few ridge strengths."""
    order = list(np.random.default_rng(0).permutation(sorted({c.speaker for c in clips})))
    table: dict[str, float] = {}
    for kind in CANDIDATES:
        for ridge in (3.0, 10.0, 30.0):
            gains = []
            for k in range(folds):
                held = set(order[k::folds])
                train = [c for c in clips if c.speaker not in held]
                w = fit(train, kind, edges, refractory, ridge)
                w0 = fit(train, "constant", edges, refractory, ridge)
                for s in held:
                    mine = [c for c in clips if c.speaker == s]
                    minutes = sum(c.seen.sum() for c in mine) / MODEL_FPS / 60
                    gain = 0.0
                    for c in mine:
                        gain += _log_likelihood(*design(c, kind, edges, refractory), w)
                        gain -= _log_likelihood(*design(c, "constant", edges, refractory), w0)
                    gains.append(gain / minutes)
            table[f"{kind} ridge {ridge:g}"] = round(float(np.mean(gains)), 3)
    return {"nats_per_speaker_minute_over_constant": table, "folds": folds, "speakers": len(order)}


def profile_and_widths(clips: list[ClipBlinks]) -> tuple[np.ndarray, np.ndarray]:
    """The median lid track from each start on (minus the lid's median around it, over its peak), and
    quantiles of the blinks' widths (frames at or above half their own peak) over the median width."""
    segs = []
    for c in clips:
        for s in c.starts:
            if s + PROFILE_FRAMES <= len(c.lids):
                rest = np.median(c.lids[max(0, s - 25) : s + 25])
                segs.append(c.lids[s : s + PROFILE_FRAMES] - rest)
    segs = np.array(segs)
    profile = np.clip(np.median(segs, 0), 0.0, None)
    profile /= profile.max()
    widths = np.array([(g >= 0.5 * g.max()).sum() for g in segs if g.max() > 0], np.float64)
    quantiles = np.percentile(widths, np.linspace(5, 95, 11)) / np.median(widths)
    return profile, np.clip(quantiles, 0.5, 2.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="the development media folder (talking/, silent/, manifest.tsv)")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--cv-only", action="store_true", help="print the cross-validation, write nothing")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    clips = clip_blinks(args.data)
    refractory = int(round(REFRACTORY_S * MODEL_FPS))
    edges = np.round(np.asarray(EDGES_S) * MODEL_FPS).astype(np.int64)
    seconds = sum(c.seen.sum() for c in clips) / MODEL_FPS
    log.info("%d clips, %.0f s, %d blinks", len(clips), seconds, sum(len(c.starts) for c in clips))
    cv = cross_validate(clips, args.folds, edges, refractory)
    for k, v in cv["nats_per_speaker_minute_over_constant"].items():
        log.info("%-28s %+.3f nats per speaker-minute over a constant rate", k, v)
    if args.cv_only:
        return
    profile, widths = profile_and_widths(clips)
    weights = fit(clips, SHIPPED, edges, refractory, RIDGE)
    model = BlinkModel(MODEL_FPS, refractory, edges, weights, profile, widths)
    rate = blinks_per_minute(model)
    log.info(
        "weights %s, profile %s, widths %s, %.1f blinks per minute",
        model.weights.round(2),
        profile.round(2),
        widths.round(2),
        rate,
    )
    meta_path = ASSETS / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["blinks"] = {
        **model.to_json(),
        "blinks_per_minute": round(rate, 1),
        "cross_validation": cv,
        "how": f"training/learned_motion/blinks.py: {len(clips)} train-split talking clips, {seconds:.0f} s, "
        f"{sum(len(c.starts) for c in clips)} blinks found by the eval's detector, speakers weighted equally",
    }
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    log.info("wrote the blink model into %s", meta_path)


if __name__ == "__main__":
    main()
