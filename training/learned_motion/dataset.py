"""Training data for the learned motion generator: real motion tracked from the TRAIN split's talking clips
(and from the silent clips, for audio-free motion), paired with the model's causal audio features.

Per clip: the face mesh track (cached, the same cache format as training/build_expression_basis.py) ->
motion.capture.motion_from_track (the product's motion latent) -> re-referenced to the clip's own rest
(head, gaze and lip shape relative to their median, jaw relative to its 3rd percentile: closed lips = 0,
as the renderer reads jaw_open) -> resampled to MODEL_FPS. The audio is augmented (speed 0.9/1.1 with
the motion stretched to match, added noise) and each variant goes through compute_features,
at_fps(MODEL_FPS) and the runtime's FeatureNormalizer, exactly as at inference.

Everything is cached as per-frame arrays in a git-ignored folder: they are derived from third-party media
and must never be committed.

    .venv/bin/python -m training.learned_motion.dataset /work/shared/data --cache reports/learned_motion_cache
"""

from __future__ import annotations

import argparse
import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from talkface.audio.features import compute_features
from talkface.audio.load import SAMPLE_RATE, from_samples, load_audio
from talkface.audio.phones import recognize_phones
from talkface.config import MotionControls
from talkface.eval.split import manifest_speakers, train_clips
from talkface.face.expression import EXPRESSIONS
from talkface.face.tracking import Track, probe, track_video
from talkface.motion.capture import motion_from_track
from talkface.motion.cues import CUE_DIM, MouthCues
from talkface.motion.generators import generate
from talkface.motion.learned import (
    FEATURE_DIM,
    MODEL_FPS,
    FeatureNormalizer,
    motion_to_array,
    resample_frames,
)
from talkface.motion.visemes import viseme_targets

log = logging.getLogger("learned_motion.dataset")

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "reports" / "learned_motion_cache"
# (name, speed, noise SNR dB or None, gain dB): speed > 1 plays the clip faster (higher voice, faster
# motion); the quiet variant teaches the first seconds of a quiet recording, before the running level
# reference has settled.
VARIANTS = (
    ("orig", 1.0, None, 0.0),
    ("slow", 0.9, None, 0.0),
    ("fast", 1.1, None, 0.0),
    ("noisy", 1.0, 20.0, 0.0),
    ("quiet", 1.0, None, -20.0),
)
JAW_REST_PERCENTILE = 3.0
# Part of every cached clip's file name: bump it when the extraction or FeatureNormalizer changes, so that
# a stale cache is never mixed into a new training run. v6: phones decoded with fresh decoder state per clip
# (audio.phones.recognize_phones resets pocketsphinx's running cepstral mean and noise estimate).
CACHE_VERSION = f"v6-f{FEATURE_DIM}-c{CUE_DIM}-{len(VARIANTS)}"
MIN_FACE_SHARE = 0.8  # a clip whose face is found in fewer frames is left out


@dataclass
class ClipData:
    """One clip at MODEL_FPS. motion: {variant: (T, MOTION_DIM)}; features: {variant: (T, FEATURE_DIM)};
    cues: {variant: (T, CUE_DIM + 3)}: MouthCues, then the viseme targets (jaw, round, spread) of the phones
    recognised in the variant's audio (audio.phones); rules: the rule generator's motion of the original audio
    (T, MOTION_DIM), the baseline the mouth network must beat (features, cues and rules absent for silent
    clips). speaker: manifest label (dev hold-out is by speaker)."""

    name: str
    speaker: str
    talking: bool
    motion: dict[str, np.ndarray]
    features: dict[str, np.ndarray]
    cues: dict[str, np.ndarray]
    rules: np.ndarray | None


def load_track(path: Path, tracks: Path) -> Track:
    """The clip's face-mesh track, cached as tracks/<folder>__<stem>.npz (points, fps, size)."""
    out = tracks / f"{path.parent.name}__{path.stem}.npz"
    if out.exists():
        z = np.load(out)
        size = tuple(int(v) for v in z["size"]) if "size" in z else (0, 0)
        return Track(z["points"], float(z["fps"]), size)
    track = track_video(path)
    tracks.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, points=track.points, fps=track.fps, size=np.array(track.size))
    return track


def rest_referenced(x: np.ndarray) -> np.ndarray:
    """Motion (T, MOTION_DIM) from motion_from_track (relative to the clip's first frame) made relative to
    the clip's rest: every column minus its median, except jaw_open (minus its JAW_REST_PERCENTILE: the
    closed mouth is 0) and the blinks (already absolute: 0 open, 1 shut)."""
    y = x.copy()
    jaw, blinks = (
        EXPRESSIONS.index("jaw_open"),
        [EXPRESSIONS.index("blink_right"), EXPRESSIONS.index("blink_left")],
    )
    for k in range(x.shape[1]):
        if k in blinks:
            continue
        ref = np.percentile(x[:, k], JAW_REST_PERCENTILE) if k == jaw else np.median(x[:, k])
        y[:, k] -= ref
    return y


def _augment_audio(samples: np.ndarray, speed: float, snr_db: float | None, seed: int) -> np.ndarray:
    x = samples.astype(np.float64)
    if speed != 1.0:
        # Resampling to SAMPLE_RATE / speed and playing at SAMPLE_RATE: tempo and pitch both scale by speed.
        x = soxr.resample(x, SAMPLE_RATE, SAMPLE_RATE / speed, quality="HQ")
    if snr_db is not None:
        rng = np.random.default_rng(seed)
        frame = 400
        n = len(x) // frame * frame
        level = np.sqrt(np.percentile((x[:n].reshape(-1, frame) ** 2).mean(1), 90) + 1e-12)
        x = x + rng.standard_normal(len(x)) * level * 10 ** (-snr_db / 20)
    return np.clip(x, -1, 1).astype(np.float32)


def build_clip(path: Path, speaker: str, tracks: Path, cache: Path) -> Path | None:
    """Extract one clip into cache/<folder>__<stem>.npz (or find it there); None when left out."""
    out = cache / f"{path.parent.name}__{path.stem}.{CACHE_VERSION}.npz"
    if out.exists():
        return out
    track = load_track(path, tracks)
    found = np.isfinite(track.points[:, 0, 0])
    if found.mean() < MIN_FACE_SHARE:
        log.warning("%s: face in only %.0f%% of frames, left out", path.name, 100 * found.mean())
        return None
    fps = float(min(60.0, max(1.0, track.fps or probe(path).fps)))
    motion = rest_referenced(motion_to_array(motion_from_track(track)))
    talking = path.parent.name == "talking"
    arrays: dict[str, np.ndarray] = {"speaker": np.array(speaker), "talking": np.array(talking)}
    duration = len(motion) / fps
    if not talking:
        n = int(round(duration * MODEL_FPS))
        arrays["motion_orig"] = resample_frames(motion, fps, n, MODEL_FPS)
    else:
        audio = load_audio(path)
        for i, (variant, speed, snr, gain_db) in enumerate(VARIANTS):
            samples = _augment_audio(audio.samples, speed, snr, seed=i) * np.float32(10 ** (gain_db / 20))
            a = from_samples(samples, SAMPLE_RATE)
            n = int(round(min(duration, audio.duration) / speed * MODEL_FPS))
            full = compute_features(a)
            feats = full.at_fps(MODEL_FPS, n)
            # Output frame j at time (j + 0.5) / MODEL_FPS shows the original clip at time x speed.
            arrays[f"motion_{variant}"] = resample_frames(motion, fps / speed, n, MODEL_FPS)
            arrays[f"features_{variant}"] = FeatureNormalizer()(feats)
            arrays[f"cues_{variant}"] = MouthCues()(feats)
            phones = recognize_phones(a)
            arrays[f"visemes_{variant}"] = viseme_targets(phones, (np.arange(n) + 0.5) / MODEL_FPS)
            if variant == "orig":
                arrays["rules"] = motion_to_array(generate("rules", full, n, MODEL_FPS, MotionControls()))
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    return out


def load_clip(path: Path) -> ClipData:
    z = np.load(path)
    motion = {k[len("motion_") :]: z[k] for k in z.files if k.startswith("motion_")}
    feats = {k[len("features_") :]: z[k] for k in z.files if k.startswith("features_")}
    cues = {k[len("cues_") :]: z[k] for k in z.files if k.startswith("cues_")}
    for k in cues:
        cues[k] = np.concatenate([cues[k], z[f"visemes_{k}"]], 1).astype(np.float32)
    name = path.name.split("__", 1)[1].removesuffix(f".{CACHE_VERSION}.npz")
    rules = z["rules"] if "rules" in z.files else None
    return ClipData(name, str(z["speaker"]), bool(z["talking"]), motion, feats, cues, rules)


def build_all(
    data: Path, cache: Path = CACHE, tracks: Path | None = None, workers: int = 2
) -> list[ClipData]:
    """Extract (or load from the cache) every training clip."""
    tracks = tracks or cache / "tracks"
    speakers = manifest_speakers(data)
    paths = train_clips(data)
    if not paths:
        raise SystemExit(f"no training clips under {data} (expected talking/ and silent/)")
    who = [speakers.get(f"{p.parent.name}/{p.name}", p.stem) for p in paths]
    with ProcessPoolExecutor(workers) as pool:
        outs = list(pool.map(build_clip, paths, who, [tracks] * len(paths), [cache] * len(paths)))
    clips = [load_clip(o) for o in outs if o is not None]
    n_talk = sum(len(c.motion["orig"]) for c in clips if c.talking) / MODEL_FPS
    n_sil = sum(len(c.motion["orig"]) for c in clips if not c.talking) / MODEL_FPS
    log.info("%d clips: %.0f s talking, %.0f s silent", len(clips), n_talk, n_sil)
    return clips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "data", type=Path, help="the development media folder (with talking/, silent/, manifest.tsv)"
    )
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--tracks", type=Path, default=None, help="face-mesh track cache (default: CACHE/tracks)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build_all(args.data, args.cache, args.tracks)


if __name__ == "__main__":
    main()
