"""How well the exported motion follows real speakers, and how fast it is made (the numbers in the README).

    python -m talkface.export.measure ../shared/data [--split validation] [--seed 0] [--json OUT]

For each clip of the split (default: validation, speakers never used in training), the clip's own audio goes
through `talkface motion`'s path (export.job.motion_for, the learned generator, the clip's frame rate and the
eval's per-clip seed) and the real speaker's mouth opening is tracked in the video (the eval's instrument:
face mesh, inner-lip gap over eye distance). Reported per clip and pooled over clips (mean of per-clip r):
Pearson r at lag 0 and at the best lag within +-200 ms between the real opening and

    jawOpen      the ARKit export's jawOpen weight
    rhubarb      the Rhubarb export's cues turned back into an opening (export.rhubarb.OPENING)
    visemes      the opening the Oculus viseme weights imply (each viseme's jaw target, motion.visemes)

and the seconds of computation per second of audio of the export alone (features, phones, motion, file).
The real clips are read only here, at measurement time; nothing of them is written but the numbers.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from talkface.audio.load import load_audio
from talkface.config import MotionExportOptions
from talkface.eval import metrics as M
from talkface.eval import split as S
from talkface.eval.report import LAG_SEARCH_MS, clip_seed, list_clips
from talkface.export import rhubarb as R
from talkface.export.arkit import arkit_track
from talkface.export.job import encode, motion_for, speaking_frames
from talkface.export.visemes import OCULUS_VISEMES, viseme_weights
from talkface.face.tracking import probe, track_video
from talkface.motion.visemes import viseme_of

log = logging.getLogger(__name__)

# The jaw opening each Oculus viseme stands for (its phonemes' jaw targets, motion.visemes).
_VISEME_JAW = {
    "sil": 0.0, "PP": viseme_of("p")[0], "FF": viseme_of("f")[0], "TH": viseme_of("T")[0],
    "DD": viseme_of("t")[0], "kk": viseme_of("k")[0], "CH": viseme_of("S")[0], "SS": viseme_of("s")[0],
    "nn": viseme_of("n")[0], "RR": viseme_of("r")[0], "aa": viseme_of("a")[0], "E": viseme_of("e")[0],
    "ih": viseme_of("i")[0], "oh": viseme_of("o")[0], "ou": viseme_of("u")[0],
}  # fmt: skip
VISEME_JAW = np.array([_VISEME_JAW[n] for n in OCULUS_VISEMES])


def measure_clip(path: Path, seed: int, generator: str = "learned") -> dict:
    """One clip's r values and export speed (see the module docstring)."""
    info = probe(path)
    fps = float(min(60.0, max(1.0, info.fps)))
    audio = load_audio(path)
    options = MotionExportOptions(fps=fps, seed=clip_seed(seed, path.name), generator=generator)
    t0 = time.perf_counter()
    result = motion_for(audio, options)
    track = arkit_track(result.motion)
    encode(result, options, Path("x.json"), path)
    export_s = time.perf_counter() - t0
    n = len(result.motion)
    speaking = speaking_frames(audio, fps, n)  # as the rhubarb and visemes formats gate their phonemes
    cues = R.mouth_cues(R.frame_shapes(result.motion, result.phonemes, speaking), fps, audio.duration)
    signals = {
        "jawOpen": track.column("jawOpen"),
        "rhubarb": R.opening_from_cues(cues, n, fps),
        "visemes": viseme_weights(result.phonemes, n, fps, speaking) @ VISEME_JAW,
    }
    real = M.mouth_opening(track_video(path).points)
    t = min(len(real), n)
    out = {"clip": path.name, "fps": fps, "duration_s": audio.duration, "export_s": export_s}
    for name, sig in signals.items():
        lag = M.lagged_correlation(real[:t], sig[:t], fps, LAG_SEARCH_MS)
        out[name] = {"r": lag.r_zero, "r_best": lag.r_best, "lag_ms": lag.lag_ms}
    out["rhubarb_shapes"] = {s: sum(c.end - c.start for c in cues if c.shape == s) for s in R.SHAPES}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="the development set (its talking/ folder holds the clips)")
    parser.add_argument("--split", default="validation", choices=("validation", "train", "all"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generator", default="learned")
    parser.add_argument("--json", help="write the per-clip numbers here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    clips = S.select(list_clips(Path(args.data) / "talking"), args.split)
    rows = []
    for clip in clips:
        row = measure_clip(clip, args.seed, args.generator)
        rows.append(row)
        print(
            f"{clip.name:<48} jawOpen r {row['jawOpen']['r']:+.3f} (best {row['jawOpen']['r_best']:+.3f})  "
            f"rhubarb r {row['rhubarb']['r']:+.3f}  visemes r {row['visemes']['r']:+.3f}  "
            f"{row['export_s'] / row['duration_s']:.3f} s/s",
            flush=True,
        )
    summary = {
        name: {key: float(np.nanmean([r[name][key] for r in rows])) for key in ("r", "r_best", "lag_ms")}
        for name in ("jawOpen", "rhubarb", "visemes")
    }
    audio_s = sum(r["duration_s"] for r in rows)
    summary["export_s_per_audio_s"] = sum(r["export_s"] for r in rows) / audio_s
    summary["clips"], summary["audio_s"] = len(rows), audio_s
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "clips": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
