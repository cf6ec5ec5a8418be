"""Fit the Rhubarb export's thresholds (export.rhubarb: CLOSED_JAW, OPEN_JAW, WIDE_JAW, ROUNDED, PUCKERED) and
the opening each shape stands for, on the TRAIN split's real talking faces.

    python -m training.fit_rhubarb ../shared/data [--cache /tmp/rhubarb_train.npz]

Each train clip's audio goes through `talkface motion`'s path (learned generator, the clip's frame rate), its
video through the face mesh (the real mouth opening). A grid search then picks the thresholds whose cues,
turned back into an opening, follow the real opening best (mean of per-clip Pearson r); the openings per
shape are the real openings' mean under each shape; the two are fitted in turn, twice. Only the fitted
constants are printed, to be copied into export/rhubarb.py; nothing of the clips is kept (the cache holds
per-frame numbers, in /tmp by default).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from talkface.audio.load import load_audio
from talkface.config import MotionExportOptions
from talkface.eval import metrics as M
from talkface.eval import split as S
from talkface.eval.report import clip_seed, list_clips
from talkface.export import rhubarb as R
from talkface.export.job import motion_for, speaking_frames
from talkface.face.tracking import probe, track_video
from talkface.motion.contract import MotionSequence


def collect(data: Path, cache: Path) -> list[dict]:
    if cache.is_file():
        z = np.load(cache, allow_pickle=True)
        return list(z["clips"])
    clips = []
    for path in S.select(list_clips(data / "talking"), "train"):
        fps = float(min(60.0, max(1.0, probe(path).fps)))
        audio = load_audio(path)
        result = motion_for(audio, MotionExportOptions(fps=fps, seed=clip_seed(0, path.name)))
        real = M.mouth_opening(track_video(path).points)
        speaking = speaking_frames(audio, fps, len(result.motion))
        clips.append({"name": path.name, "fps": fps, "duration": audio.duration, "motion": result.motion,
                      "phonemes": result.phonemes, "speaking": speaking, "real": real})  # fmt: skip
        print(path.name, len(real), flush=True)
    np.savez(cache, clips=np.array(clips, dtype=object))
    return clips


def score(clips: list[dict]) -> float:
    """Mean over clips of Pearson r between the real opening and the cues' opening (export.rhubarb)."""
    rs = []
    for c in clips:
        motion: MotionSequence = c["motion"]
        cues = R.mouth_cues(R.frame_shapes(motion, c["phonemes"], c["speaking"]), c["fps"], c["duration"])
        sig = R.opening_from_cues(cues, len(motion), c["fps"])
        t = min(len(sig), len(c["real"]))
        rs.append(M.pearson(c["real"][:t], sig[:t]))
    return float(np.nanmean(rs))


GRID = (
    (0.01, 0.02, 0.03, 0.05),  # CLOSED_JAW
    (0.08, 0.1, 0.12, 0.15, 0.17),  # OPEN_JAW
    (0.18, 0.22, 0.25, 0.3, 0.35),  # WIDE_JAW
    (0.2, 0.25, 0.3, 0.35),  # ROUNDED (PUCKERED = ROUNDED + 0.2)
)


def fit_thresholds(clips: list[dict]) -> float:
    """Set export.rhubarb's thresholds to the grid point whose cues follow the real openings best."""
    best = (-1.0, None)
    for closed, open_, wide, rounded in itertools.product(*GRID):
        if not closed < open_ < wide:
            continue
        R.CLOSED_JAW, R.OPEN_JAW, R.WIDE_JAW, R.ROUNDED = closed, open_, wide, rounded
        R.PUCKERED = rounded + 0.2
        r = score(clips)
        if r > best[0]:
            best = (r, (closed, open_, wide, rounded))
    R.CLOSED_JAW, R.OPEN_JAW, R.WIDE_JAW, R.ROUNDED = best[1]
    R.PUCKERED = R.ROUNDED + 0.2
    return best[0]


def fit_opening(clips: list[dict]) -> dict[str, float]:
    """The opening each shape shows: the real openings' mean under it (the speaker's 5th percentile as
    closed), in jaw_open units (JAW_GAP eye distances)."""
    from talkface.face.learned_basis import JAW_GAP

    values: dict[str, list[float]] = {s: [] for s in R.SHAPES}
    for c in clips:
        shapes = R.frame_shapes(c["motion"], c["phonemes"], c["speaking"])
        real = c["real"] - np.nanpercentile(c["real"], 5)
        for s, v in zip(shapes, real, strict=False):
            if np.isfinite(v):
                values[s].append(v / JAW_GAP)
    return {s: round(float(np.mean(v)), 3) if v else R.OPENING[s] for s, v in values.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data")
    parser.add_argument("--cache", default="/tmp/rhubarb_train.npz")
    args = parser.parse_args()
    clips = collect(Path(args.data), Path(args.cache))
    print(f"{len(clips)} train clips; current constants: r {score(clips):.3f}")
    for _ in range(2):  # thresholds with the openings, then the openings with the thresholds
        r = fit_thresholds(clips)
        R.OPENING = fit_opening(clips)
        print(f"thresholds r {r:.3f}, then openings r {score(clips):.3f}")
    print(
        f"CLOSED_JAW = {R.CLOSED_JAW}\nOPEN_JAW = {R.OPEN_JAW}\nWIDE_JAW = {R.WIDE_JAW}\n"
        f"ROUNDED = {R.ROUNDED}\nPUCKERED = {R.PUCKERED:.2f}\nOPENING = {R.OPENING}"
    )


if __name__ == "__main__":
    main()
