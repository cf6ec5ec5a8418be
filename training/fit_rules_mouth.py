r"""Fit the rule generator's acoustic mouth: a linear filter (ridge regression) from the rules' causal mouth
cues of the last PAST video frames (motion.cues.MouthCues: loudness, open cue, the unsmoothed jaw, rounding
and spreading targets, pitch) to the real mouth (jaw_open, lip_round, lip_spread) of the TRAIN split's talking
faces, written to src/talkface/assets/rules_mouth.json.

Why: the live stream's latency budget (issue 18: 100 ms from a sample's arrival to its frame). The rules'
hand-made acoustic mouth was smoothed by a zero-phase Gaussian that read one frame (40 ms) ahead, on top of
the 40 ms lip lead: 140 ms of audio past a frame's start before it could be drawn. The filter reads no frame
ahead (the lead stays), so a frame waits 40 ms less, and it follows real lips better than the hand-made mouth
(measured below, speaker-disjoint).

Real mouths: the dataset of training/learned_motion (the face-mesh track of each clip through
motion.capture, at 25 fps). Cues: the clip's audio features pooled per frame with the rules' lip lead
(LIP_LEAD). Cross-validation is speaker-disjoint (4 folds); the score is the mean per-clip Pearson r of the
jaw with the real jaw, beside the hand-made mouth's (Gaussian-smoothed, 1 frame ahead). The output is then
scaled (per channel, see calibrate) to the hand-made mouth's peaks, whose gains were calibrated through the
renderer (training/fit_rules.py): the filter decides when the mouth opens, the calibration how far.

    .venv/bin/python -m training.fit_rules_mouth /work/shared/data --cv-only
    .venv/bin/python -m training.fit_rules_mouth /work/shared/data
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import date
from pathlib import Path

import numpy as np

from talkface.audio.features import AudioFeatures, compute_features
from talkface.audio.load import load_audio
from talkface.motion.cues import (
    RULES_MOUTH_FILE,
    HeldNotes,
    MouthCues,
    MouthFilter,
    SpeechLevels,
    acoustic_mouth,
    held_ends,
    mouth_targets,
    window_rows,
)
from talkface.motion.rules import LIP_LEAD, smooth_mouth
from training.learned_motion.dataset import ClipData, build_all
from training.learned_motion.mouth import _r, ridge_filter, speaker_order

log = logging.getLogger("fit_rules_mouth")

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "talkface" / "assets" / RULES_MOUTH_FILE
FPS = 25.0
PAST, AHEAD = 5, 0  # frames: 200 ms of the voice before the frame, none after (the live budget)
RIDGE = 0.1  # a share of the rows; chosen on the folds with the past (5 and 8 frames, 0.1)
FOLDS = 4
MOUTH = slice(0, 3)


def clip_inputs(clips: list[ClipData], data: Path) -> dict[str, tuple[AudioFeatures, np.ndarray]]:
    """{clip: (features pooled per frame with the lip lead, MouthCues rows)} for the original audio."""
    paths = {p.stem: p for p in (data / "talking").iterdir()}
    out = {}
    for c in clips:
        n = len(c.motion["orig"])
        f = compute_features(load_audio(paths[c.name])).at_fps(FPS, n, offset=LIP_LEAD)
        out[c.name] = (f, MouthCues(FPS)(f))
    return out


def windows(cues: np.ndarray) -> np.ndarray:
    return window_rows(held_ends(cues, PAST, AHEAD), PAST + 1 + AHEAD)


def hand_made(f: AudioFeatures) -> np.ndarray:
    """The rules' old acoustic mouth: targets through a zero-phase Gaussian reaching one frame ahead."""
    level, cue, _ = SpeechLevels(FPS)(f)
    return smooth_mouth(mouth_targets(f, level, cue), FPS)


def fit(clips: list[ClipData], inputs: dict, ridge: float = RIDGE) -> MouthFilter:
    x = np.concatenate([windows(inputs[c.name][1]) for c in clips])
    y = np.concatenate([c.motion["orig"][:, MOUTH] for c in clips])
    return ridge_filter(x, y, PAST, AHEAD, ridge)


def calibrate(f: MouthFilter, clips: list[ClipData], inputs: dict) -> tuple[MouthFilter, dict]:
    """f with its output mapped, per channel, so that silence gives 0 (what the filter gives for cues of
    silence, held: the mouth shuts in silence) and the voiced frames' 90th percentile equals the hand-made
    mouth's (the peaks open as far as the renderer-calibrated hand-made mouth's; the filter's output is
    peakier than the hand-made's, so matching the mean instead would open the peaks ~1.9x as wide)."""
    silence = f(np.zeros((1, f.in_mean.size // f.span)))[0]
    voiced = np.concatenate([inputs[c.name][0].voicing > 0.5 for c in clips])
    ours = np.concatenate([f.of_windows(windows(inputs[c.name][1])) for c in clips])[voiced] - silence
    theirs = np.concatenate([hand_made(inputs[c.name][0]) for c in clips])[voiced]
    scale = np.percentile(theirs, 90, axis=0) / np.maximum(
        np.percentile(np.maximum(ours, 0), 90, axis=0), 1e-9
    )
    mapped = MouthFilter(
        f.past, f.ahead, f.in_mean, f.in_std, f.weights * scale, (f.out_mean - silence) * scale
    )
    return mapped, {"scale": np.round(scale, 4).tolist(), "silence": np.round(silence, 4).tolist()}


def cross_validate(clips: list[ClipData], inputs: dict, ridge: float = RIDGE) -> dict:
    order = speaker_order(clips)
    r_filter, r_alone, r_rules, silent = [], [], [], {"filter": [], "rules": []}
    rough = {"filter": [], "rules": [], "real": []}
    for k in range(FOLDS):
        held = set(order[k::FOLDS])
        fitted = [c for c in clips if c.speaker not in held]
        f, _ = calibrate(fit(fitted, inputs, ridge), fitted, inputs)
        for c in clips:
            if c.speaker not in held:
                continue
            feats, cues = inputs[c.name]
            real = c.motion["orig"][:, 0]
            filtered = f.of_windows(windows(cues))
            notes = HeldNotes(FPS)(feats)
            ours = np.maximum(acoustic_mouth(filtered, cues, feats.voicing, notes)[:, 0], 0.0)
            r_alone.append(_r(np.maximum(filtered[:, 0], 0.0), real))
            theirs = hand_made(feats)[:, 0]
            r_filter.append(_r(ours, real))
            r_rules.append(_r(theirs, real))
            quiet = feats.voicing < 0.2
            if quiet.any():
                silent["filter"].append(float(ours[quiet].mean()))
                silent["rules"].append(float(theirs[quiet].mean()))
            for name, x in (("filter", ours), ("rules", theirs), ("real", real)):
                rough[name].append(float(np.std(np.diff(x)) / max(np.std(x), 1e-9)))
    return {
        "folds": FOLDS,
        "clips": len(r_filter),
        "r_filter": round(float(np.nanmean(r_filter)), 3),
        "r_filter_alone": round(float(np.nanmean(r_alone)), 3),
        "r_hand_made": round(float(np.nanmean(r_rules)), 3),
        "clips_filter_better": int(np.sum(np.array(r_filter) > np.array(r_rules))),
        "silent_jaw": {k: round(float(np.mean(v)), 4) for k, v in silent.items()},
        "roughness": {k: round(float(np.median(v)), 3) for k, v in rough.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="the shared data folder (talking/, silent/, manifest.tsv)")
    ap.add_argument("--cv-only", action="store_true", help="print the cross-validation, write nothing")
    ap.add_argument("--ridge", type=float, default=RIDGE, help=f"ridge strength (default {RIDGE})")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    clips = [c for c in build_all(args.data) if c.talking]
    inputs = clip_inputs(clips, args.data)
    cv = cross_validate(clips, inputs, args.ridge)
    log.info("cross-validation: %s", json.dumps(cv))
    if args.cv_only:
        return
    f, mapping = calibrate(fit(clips, inputs, args.ridge), clips, inputs)
    OUT.write_text(
        json.dumps(
            {
                "what": "the rule generator's acoustic mouth (jaw_open, lip_round, lip_spread) from "
                "MouthCues of the last frames (motion.cues.MouthFilter, at `fps`, read with the lip lead)",
                "made_by": "training/fit_rules_mouth.py",
                "date": date.today().isoformat(),
                "data": {
                    "clips": sorted(c.name for c in clips),
                    "seconds": round(sum(len(c.motion["orig"]) for c in clips) / FPS, 1),
                    "split": "train",
                },
                "ridge": args.ridge,
                "cross_validation": cv,
                "calibration": mapping,
                "fps": FPS,
                "filter": f.to_json(),
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    log.info("wrote %s", OUT)


if __name__ == "__main__":
    main()
