"""Learn the expression basis shipped in src/talkface/assets/expression_basis.npz from real video.

Data: the TRAIN clips of src/talkface/eval/split.json (../shared/data/talking) plus every clip of
../shared/data/silent (outside the split, picked for expression range). Validation clips are never read.

1. Track every clip with the product's face mesh (talkface.face.tracking.track_video).
2. Per clip: remove head pose (similarity fit of nose-bridge, eye-corner and cheek-side ANCHORS onto the
   clip's own median shape; eye-distance units), smooth lightly in time (landmark jitter is 1-2 px), find
   the clip's neutral shape (the median over frames with the mouth nearly closed and both eyes open) and
   turn the clip into one canonical frame: a frontal, left-right symmetric mean face (pitch is the clips'
   mean pitch: symmetry cannot see it). Per-frame offsets = frame - clip neutral.
3. Measure per frame the semantic signals in the units of talkface.face.expression: the inner-lip gap
   (13-14) over JAW_GAP (the gap semantic_basis opens at jaw_open = 1) gives jaw_open; the mouth-width
   change gives lip_round (narrower, / ROUND_NARROW) or lip_spread (wider, / SPREAD_WIDEN); the brow height
   over the eye corners gives brow_raise (/ BROW_LIFT); each eye's lid gap gives its blink (1 = closed).
4. Semantic directions: per-vertex least squares of the offsets on the signals with head-pose nuisance
   terms and per-clip centring; symmetrized, kept inside their face region, calibrated to the unit
   meanings on the mean face (fit_semantic). One extra direction (frown) for the emotions.
5. PCA of the offsets (pose part removed, mirrored copies added), weighted so that no speaker dominates.
6. Emotion offsets from the labelled MEAD clips, one per emotion (two for happy), measured against the
   non-emotional speakers and shrunk by the identity spread (fit_emotions): weak data, see the meta file.

Writes expression_basis.npz (float32, about 100 kB) and expression_basis.json (data, settings, variance,
checks, caveats). Tracks are cached in the git-ignored reports/ folder: they are landmarks derived from
third-party media and must never be committed. Takes about a minute (tracking included) on two cores.

    .venv/bin/python training/build_expression_basis.py
    .venv/bin/python training/build_expression_basis.py --data /work/shared/data --cache /tmp/tracks
    .venv/bin/python training/build_expression_basis.py --sheet reports/basis_sheet.png   # look at it
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.signal import savgol_filter

from talkface.eval.split import manifest_speakers, train_clips
from talkface.face import learned_basis as LB
from talkface.face import topology as T
from talkface.face.expression import (
    BROW_LIFT,
    EXPRESSIONS,
    ROUND_NARROW,
    SPREAD_WIDEN,
)
from talkface.face.geometry import align_frames, similarity_fit
from talkface.face.learned_basis import (
    LEFT_LID_PAIRS,
    RIGHT_LID_PAIRS,
    brow_height,
    lid_gap,
    lip_gap,
    mouth_width,
)

log = logging.getLogger("build_expression_basis")

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data")
CACHE = ROOT / "reports" / "expression_basis_cache"
ASSETS = ROOT / "src" / "talkface" / "assets"

EMOTIONS = ("happy", "sad", "angry", "surprised", "disgusted")

ANCHORS = list(LB.ANCHORS)
INNER_BROW = [107, 336, 55, 285]
OUTER_BROW = [70, 300, 46, 276]
# Facial actions emotions use beyond the six semantic signals (see extra_signals). Corner lift, upper-lip
# raise and lip press were tried too: beyond what the semantic directions already do, their fitted fields
# were a whole-mouth vertical slide (mediapipe's coupling, not the action), so they are left out.
EXTRAS = ("frown",)


@dataclass(frozen=True)
class Settings:
    smooth_s: float = 0.17  # Savitzky-Golay window (seconds), order 2: removes jitter, keeps blinks
    neutral_mouth_quantile: float = 0.25  # neutral frames: inner-lip gap in the clip's lowest quarter ...
    neutral_mouth_max: float = 0.04  # ... or below this (eye distances) ...
    neutral_eye_ratio: float = 0.85  # ... and both lid gaps above this share of the clip's median
    speaker_cap_frames: int = 600  # a speaker weighs at most this many frames (Obama has 4 clips)
    ridge: float = 1e-3  # relative ridge of the semantic regression
    n_components: int = 16  # PCA components kept
    pose_terms: tuple[str, ...] = ("yaw", "pitch", "roll", "yaw2", "pitch2", "yawpitch")
    # True: the mouth widening that comes with opening in speech (about 19% per jaw unit) stays in jaw_open;
    # False: any width change is lip_round or lip_spread, and jaw_open only opens (as semantic_basis does).
    jaw_keeps_width: bool = False
    max_turn_deg: float = 20.0  # frames turned further from the clip's median pose are left out
    # Prior size of an acted (level 3) emotion on each signal, in standard deviations of real talking motion.
    emotion_prior_scale: float = 2.0


# ---------------------------------------------------------------------------------------------------------
# data


def _track_one(path: Path, cache: Path) -> Path:
    from talkface.face.tracking import track_video

    out = cache / f"{path.parent.name}__{path.stem}.npz"
    if not out.exists():
        track = track_video(path)
        np.savez_compressed(out, points=track.points, fps=track.fps)
    return out


def track_all(clips: list[Path], cache: Path, workers: int) -> dict[str, Path]:
    """Track (or find cached) every clip; {"talking/name.mp4": cache file}."""
    cache.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(workers) as pool:
        outs = list(pool.map(_track_one, clips, [cache] * len(clips)))
    return {f"{c.parent.name}/{c.name}": o for c, o in zip(clips, outs, strict=True)}


def emotion_of(name: str) -> str | None:
    """The emotion of a labelled MEAD clip (its file name says so), else None."""
    if "_mead_" not in name:
        return None
    return next((e for e in EMOTIONS if f"_{e}" in name), None)


# Clips acted with an emotion: MEAD (the emotion is in the name) and styletalk's emotion-named clips.
STYLETALK_EMOTIONS = {
    "furious": "angry",
    "sadgirl": "sad",
    "surprisegirl": "surprised",
    "happyenglish": "happy",
    "vscodehappy": "happy",
}


def is_emotional(name: str) -> bool:
    """Kept out of the population that emotion offsets are measured from."""
    tokens = set(Path(name).stem.split("_"))
    return bool(tokens & (set(EMOTIONS) | set(STYLETALK_EMOTIONS)))


# ---------------------------------------------------------------------------------------------------------
# geometry


def rigid_fit(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R (3, 3) and shift t (3,) with dst ~ src @ R.T + t (no scale), least squares."""
    _, rot, _ = similarity_fit(src, dst)
    rot = rot[0]
    t = dst.mean(0) - src.mean(0) @ rot.T
    return rot, t


def _known_pairs() -> np.ndarray:
    """Landmark pairs known to mirror each other (contours listed in the same order on both sides, and the
    midline points that mirror themselves), shape (P, 2)."""
    right = [*T.RIGHT_EYE, *T.RIGHT_BROW, *T.RIGHT_IRIS, 61, 185, 40, 39, 37, 78, 191, 80, 81, 82]
    left = [*T.LEFT_EYE, *T.LEFT_BROW, *T.LEFT_IRIS, 291, 409, 270, 269, 267, 308, 415, 310, 311, 312]
    mid = [10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 0, 13, 14, 17, 152]
    return np.array(
        [*zip(right, left, strict=True), *zip(left, right, strict=True), *zip(mid, mid, strict=True)]
    )


def frontalize(face: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """The face (478, 3) rotated so that it is left-right symmetric about x = 0 (yaw and roll removed; pitch
    is left as it is, symmetry cannot see it), centred at its mean."""
    flip = np.array([-1.0, 1.0, 1.0])
    face = face - face.mean(0)
    for _ in range(3):
        # The rotation taking the mirror image onto the face is twice the face's yaw/roll: undo half of it.
        rot, _ = rigid_fit(face[pairs[:, 1]] * flip, face[pairs[:, 0]])
        w, v = np.linalg.eig(rot)
        half = np.real(v @ np.diag(np.sqrt(w.astype(complex))) @ np.linalg.inv(v))
        face = face @ half
        face -= face.mean(0)
    return face


def mirror_permutation(face: np.ndarray) -> np.ndarray:
    """perm[i] = the landmark mirroring landmark i, found by matching a frontalized face (478, 3) to its
    mirror image (Hungarian assignment)."""
    face = frontalize(face, _known_pairs())
    mirrored = face * np.array([-1.0, 1.0, 1.0])
    cost = np.linalg.norm(face[:, None, :] - mirrored[None, :, :], axis=-1)
    _, perm = linear_sum_assignment(cost)
    return np.asarray(perm)


def symmetrize(face: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """The symmetric part of a face: mean of the face and its mirror image (landmarks swapped)."""
    mirrored = face[perm] * np.array([-1.0, 1.0, 1.0])
    return (face + mirrored) / 2


def smooth(points: np.ndarray, fps: float, seconds: float) -> np.ndarray:
    """Savitzky-Golay (order 2) over time within runs of found frames; short runs are left as they are."""
    win = max(3, int(round(seconds * fps)) | 1)
    out = points.copy()
    found = np.isfinite(points[:, 0, 0])
    edges = np.flatnonzero(np.diff(np.concatenate([[0], found.astype(int), [0]])))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if b - a >= win:
            out[a:b] = savgol_filter(points[a:b], win, 2, axis=0)
    return out


def pose_angles(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Rotation of each frame relative to `reference` (ANCHORS), (T, 3) yaw, pitch, roll degrees."""
    from talkface.face.geometry import rotation_angles

    out = np.full((len(points), 3), np.nan)
    found = np.isfinite(points[:, 0, 0])
    _, rot, _ = similarity_fit(reference[ANCHORS], points[found][:, ANCHORS])
    out[found] = rotation_angles(rot)
    return out


# ---------------------------------------------------------------------------------------------------------
# per clip


@dataclass
class Clip:
    name: str
    speaker: str
    fps: float
    frames: np.ndarray  # (T, 478, 3) pose-free, smoothed, eye-distance units, clip frame (found frames only)
    pose: np.ndarray  # (T, 3) yaw, pitch, roll degrees relative to the clip's median shape
    neutral: np.ndarray | None = None  # (478, 3), set by neutral_shape, then turned canonical
    n_neutral: int = 0  # frames the neutral is the median of


def load_clip(name: str, cache_file: Path, speaker: str, settings: Settings) -> Clip:
    """A cached track made pose-free (in its own frame), smoothed, with its neutral shape."""
    z = np.load(cache_file)
    points, fps = z["points"].astype(np.float64), float(z["fps"])
    found = np.isfinite(points[:, 0, 0])
    first = points[np.argmax(found)]
    rough = align_frames(points, first, ANCHORS)
    reference = np.nanmedian(rough, axis=0)  # eye-distance units, centred
    aligned = align_frames(points, reference, ANCHORS)
    pose = pose_angles(points, reference)
    aligned = smooth(aligned, fps, settings.smooth_s)
    keep = np.isfinite(aligned[:, 0, 0])
    clip = Clip(name, speaker, fps, aligned[keep], pose[keep])
    clip.neutral, clip.n_neutral = neutral_shape(clip.frames, settings)
    return clip


def neutral_shape(frames: np.ndarray, settings: Settings) -> tuple[np.ndarray, int]:
    """Median shape over the frames with the mouth nearly closed and both eyes open, (478, 3), and how many
    frames that is."""
    gap = lip_gap(frames)
    eyes = np.stack([lid_gap(frames, RIGHT_LID_PAIRS), lid_gap(frames, LEFT_LID_PAIRS)], 1)
    closed = gap <= max(np.quantile(gap, settings.neutral_mouth_quantile), settings.neutral_mouth_max)
    open_eyes = (eyes >= settings.neutral_eye_ratio * np.median(eyes, 0)).all(1)
    sel = closed & open_eyes
    if sel.sum() < 5:
        sel = closed if closed.sum() >= 5 else np.ones(len(frames), bool)
    return np.median(frames[sel], 0), int(sel.sum())


def canonical_frame(clips: list[Clip], iterations: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The canonical mean face (478, 3): frontal, left-right symmetric, eye distance 1, and the mirror
    permutation of the landmarks. Each clip's neutral and frames are rotated into it (in place)."""
    pairs = _known_pairs()
    mean = frontalize(clips[0].neutral, pairs)
    for _ in range(iterations):
        mean = symmetrize(frontalize(mean, pairs), mirror_permutation(mean))
        mean /= float(np.linalg.norm(mean[T.LEFT_EYE, :2].mean(0) - mean[T.RIGHT_EYE, :2].mean(0)))
        canon = [
            (n @ r.T + t)
            for n, (r, t) in ((c.neutral, rigid_fit(c.neutral[ANCHORS], mean[ANCHORS])) for c in clips)
        ]
        mean = np.mean(canon, 0)
    perm = mirror_permutation(mean)
    mean = symmetrize(frontalize(mean, pairs), perm)
    mean /= float(np.linalg.norm(mean[T.LEFT_EYE, :2].mean(0) - mean[T.RIGHT_EYE, :2].mean(0)))
    for c in clips:
        rot, t = rigid_fit(c.neutral[ANCHORS], mean[ANCHORS])
        c.neutral = c.neutral @ rot.T + t
        c.frames = c.frames @ rot.T + t
    return mean, perm


# ---------------------------------------------------------------------------------------------------------
# signals


def raw_signals(frames: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """(T, 5): lip-gap change / JAW_GAP, relative mouth-width change, brow lift / BROW_LIFT, and each
    eye's closure (1 - lid gap / neutral lid gap). Linear in the landmarks except for the divisions by
    the neutral's own sizes."""
    jaw = (lip_gap(frames) - lip_gap(neutral)) / LB.JAW_GAP
    width = mouth_width(frames) / mouth_width(neutral) - 1
    brow = (brow_height(frames) - brow_height(neutral)) / BROW_LIFT
    blinks = [1 - lid_gap(frames, p) / lid_gap(neutral, p) for p in (RIGHT_LID_PAIRS, LEFT_LID_PAIRS)]
    return np.column_stack([jaw, width, brow, *blinks])


def semantic_signals(raw: np.ndarray, width_slope: float) -> np.ndarray:
    """(T, 6) in EXPRESSIONS order. The mouth-width change that the jaw explains (width_slope per jaw unit)
    stays with the jaw; the rest is rounding (narrower) or spreading (wider)."""
    jaw, width, brow, blink_r, blink_l = raw.T
    rest = width - width_slope * jaw
    return np.column_stack(
        [jaw, np.maximum(-rest, 0) / ROUND_NARROW, np.maximum(rest, 0) / SPREAD_WIDEN, brow, blink_r, blink_l]
    )


def extra_signals(frames: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """(T, len(EXTRAS)) changes from the neutral, eye distances: facial actions that emotions use and the six
    semantic signals do not name. frown: the inner brow ends sink below the outer ones (AU4; < 0: they
    rise, AU1, as in sadness)."""

    def frown(p):
        return p[:, INNER_BROW, 1].mean(1) - p[:, OUTER_BROW, 1].mean(1)

    return np.column_stack([frown(frames) - frown(neutral[None])])


def pose_terms(pose: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Head-pose nuisance regressors, tens of degrees from the clip's median pose, (T, len(names))."""
    yaw, pitch, roll = (pose - np.median(pose, 0)).T / 10.0
    terms = {
        "yaw": yaw,
        "pitch": pitch,
        "roll": roll,
        "yaw2": yaw**2,
        "pitch2": pitch**2,
        "yawpitch": yaw * pitch,
    }
    return np.column_stack([terms[n] for n in names])


@dataclass
class Design:
    """All frames stacked. Y: offsets from each clip's neutral (N, 478*3), eye distances, canonical frame.
    S: semantic signals (N, 6). X: extra signals (N, len(EXTRAS)). P: pose terms (N, p). w: frame weights
    (N,). clip: clip index (N,). width_slope: mouth-width change per jaw unit."""

    Y: np.ndarray
    S: np.ndarray
    X: np.ndarray
    P: np.ndarray
    w: np.ndarray
    clip: np.ndarray
    width_slope: float


def build_design(clips: list[Clip], settings: Settings) -> Design:
    """Stack the frames of all clips; frames turned more than max_turn_deg from the clip's median pose are
    left out (mediapipe's mesh shape drifts in large turns); a speaker weighs at most speaker_cap_frames."""
    per_speaker: dict[str, int] = {}
    for c in clips:
        per_speaker[c.speaker] = per_speaker.get(c.speaker, 0) + len(c.frames)
    Y, R, X, P, w, idx = [], [], [], [], [], []
    for i, c in enumerate(clips):
        ok = (np.abs(c.pose[:, :2] - np.median(c.pose[:, :2], 0)) < settings.max_turn_deg).all(1)
        Y.append((c.frames[ok] - c.neutral).reshape(ok.sum(), -1))
        R.append(raw_signals(c.frames[ok], c.neutral))
        X.append(extra_signals(c.frames[ok], c.neutral))
        P.append(pose_terms(c.pose[ok], settings.pose_terms))
        w.append(np.full(ok.sum(), min(1.0, settings.speaker_cap_frames / per_speaker[c.speaker])))
        idx.append(np.full(ok.sum(), i))
    raw, w = np.concatenate(R), np.concatenate(w)
    jaw, width = raw[:, 0], raw[:, 1]
    slope = float(np.sum(w * jaw * width) / np.sum(w * jaw * jaw)) if settings.jaw_keeps_width else 0.0
    return Design(
        np.concatenate(Y), semantic_signals(raw, slope), np.concatenate(X), np.concatenate(P), w,
        np.concatenate(idx), slope,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# fields


def mirror_field(field: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """The mirror image of displacement fields (..., 478, 3): landmarks swapped, x negated."""
    return field[..., perm, :] * np.array([-1.0, 1.0, 1.0])


def _ramp(v: np.ndarray, zero: float, one: float) -> np.ndarray:
    """Smooth step from 0 at v = zero to 1 at v = one (either order)."""
    t = np.clip((v - zero) / (one - zero), 0, 1)
    return t * t * (3 - 2 * t)


def side_mask(mean: np.ndarray, side: float, width: float = 0.25) -> np.ndarray:
    """(478,) weight 1 on one half of the face (side -1: the subject's right, at x < 0), 0 on the other,
    with a smooth band of +-width eye distances across the midline."""
    return _ramp(side * mean[:, 0], -width, width)


def region_masks(mean: np.ndarray) -> dict[str, np.ndarray]:
    """Where a direction may move the face, (478,) weights on the canonical mean face, by name.

    Fits show small whole-region drifts far from the motion (brow_raise carries a 0.04 eye-distance slide
    of the lower face; jaw_open a 0.03 forehead depth change): mediapipe couples regions, and landmarks far
    from the pose anchors are less certain. A direction's natural co-motion lies near the motion: the jaw
    and the lips move the face below the eyes (spreading also the cheeks and lower lids), the brows move
    the face above the eyes with the upper lids, a blink its own eye, lids, brow and upper cheek."""
    y = mean[:, 1]
    eye_y = mean[T.RIGHT_EYE + T.LEFT_EYE, 1].mean()
    brow_y = mean[T.RIGHT_BROW + T.LEFT_BROW, 1].mean()
    nose_y = mean[T.NOSE_TIP, 1]
    eyes = _ramp(y, nose_y, eye_y + 0.2)
    return {
        "lower": _ramp(y, eye_y + 0.15, nose_y),
        "cheeks": _ramp(y, (eye_y + brow_y) / 2, eye_y + 0.1),
        "upper": _ramp(y, eye_y + 0.3, eye_y),
        "eyes": eyes,
        "right_eye": eyes * side_mask(mean, -1.0),
        "left_eye": eyes * side_mask(mean, 1.0),
    }


SEMANTIC_REGION = ("lower", "lower", "cheeks", "upper", "right_eye", "left_eye")
EXTRA_REGION = ("upper",)


def iris_follows_eye(field: np.ndarray) -> np.ndarray:
    """Iris rows (468..477) moved with their eye's corners: gaze is not part of the expression basis."""
    out = field.copy()
    for iris, corners in ((T.RIGHT_IRIS, T.RIGHT_EYE_CORNERS), (T.LEFT_IRIS, T.LEFT_EYE_CORNERS)):
        out[..., iris, :] = field[..., list(corners), :].mean(-2, keepdims=True)
    return out


def measure(mean: np.ndarray, field: np.ndarray) -> dict[str, float]:
    """What a displacement field (478, 3) does on the mean face: the raw semantic signals (jaw_open in jaw
    units, relative mouth-width change, brow_raise in brow units, each eye's closure), the extra signals
    (eye distances), and the moves of check points (eye distances, y down)."""
    moved = mean + field
    raw = raw_signals(moved[None], mean)[0]
    extra = extra_signals(moved[None], mean)[0]
    return {
        "jaw_open": float(raw[0]),
        "mouth_width_change": float(raw[1]),
        "brow_raise": float(raw[2]),
        "blink_right": float(raw[3]),
        "blink_left": float(raw[4]),
        **{name: float(v) for name, v in zip(EXTRAS, extra, strict=True)},
        "lower_lip_14_down": float(field[T.LOWER_LIP_MID, 1]),
        "upper_lip_13_down": float(field[T.UPPER_LIP_MID, 1]),
        "chin_152_down": float(field[T.CHIN, 1]),
        "forehead_10_move": float(np.linalg.norm(field[T.FOREHEAD])),
        "nose_tip_1_move": float(np.linalg.norm(field[T.NOSE_TIP])),
    }


def _solve(x: np.ndarray, y: np.ndarray, w: np.ndarray, ridge: float) -> np.ndarray:
    """Weighted ridge least squares y ~ x @ coef; ridge relative to the mean diagonal of x'Wx."""
    gram = (x * w[:, None]).T @ x
    gram += ridge * np.trace(gram) / len(gram) * np.eye(len(gram))
    return np.linalg.solve(gram, (x * w[:, None]).T @ y)


def _centre_per_clip(a: np.ndarray, d: Design) -> np.ndarray:
    out = a.copy()
    for i in np.unique(d.clip):
        m = d.clip == i
        out[m] -= np.average(a[m], axis=0, weights=d.w[m])
    return out


@dataclass
class Semantic:
    """fields: semantic directions (6, 478, 3) and extra directions (len(EXTRAS), 478, 3), eye distances per
    unit. pose_coef: (p, 478*3) the offsets' pose part. facts: for the meta file."""

    fields: np.ndarray
    extras: np.ndarray
    pose_coef: np.ndarray
    facts: dict


def fit_semantic(d: Design, mean: np.ndarray, perm: np.ndarray, settings: Settings) -> Semantic:
    """Per-vertex least squares of the offsets on the signals, in two stages.

    Stage 1: offsets ~ semantic signals + pose nuisance terms (per-clip centred, so each clip's neutral
    estimate cancels). Both blinks are fitted as one bilateral blink plus a wink nuisance term: real blinks
    are bilateral (the two eyes' signals correlate at about 0.9), so separate fits trade noise between them;
    each side's blink is the bilateral field on that half of the face. Fields are made left-right symmetric,
    kept inside their region (region_masks) and scaled so that each reproduces its unit meaning exactly on
    the mean face. Stage 2: what stage 1 leaves ~ the extra signals, minus what the stage-1 directions
    already do to them (so the semantic directions keep their natural co-motion, e.g. the smile's corner
    lift stays in lip_spread)."""
    masks = region_masks(mean)
    s = d.S
    blink, wink = (s[:, 4] + s[:, 5]) / 2, (s[:, 4] - s[:, 5]) / 2
    x = _centre_per_clip(np.column_stack([s[:, :4], blink, wink, d.P]), d)
    y = _centre_per_clip(d.Y, d)
    coef = _solve(x, y, d.w, settings.ridge)
    resid = y - x @ coef
    r2 = 1 - float(np.sum(d.w[:, None] * resid**2) / np.sum(d.w[:, None] * y**2))
    fields = coef[:5].reshape(5, -1, 3)
    fields = (fields + mirror_field(fields, perm)) / 2
    right = fields[4] * side_mask(mean, -1.0)[:, None]
    raw = np.concatenate([fields[:4], right[None], mirror_field(right, perm)[None]])
    weights = np.stack([masks[r] for r in SEMANTIC_REGION])[:, :, None]
    # Before masking: the largest move inside each field's region, and the rms and largest move of the mesh
    # points clearly outside it (weight < 0.05; for the blinks, outside both eyes), eye distances.
    leaks = {}
    for k, name in enumerate(EXPRESSIONS):
        w, f = (weights[k, :, 0], raw[k]) if k < 4 else (masks["eyes"], fields[4])
        move = np.linalg.norm(f[: T.N_MESH], axis=1)
        out_of = w[: T.N_MESH] < 0.05
        leaks[name] = {
            "max_inside": round(float(move[~out_of].max()), 4),
            "rms_outside": round(float(np.sqrt(np.mean(move[out_of] ** 2))), 4),
            "max_outside": round(float(move[out_of].max()), 4),
        }
    out = iris_follows_eye(raw * weights)
    unit = ("jaw_open", "mouth_width_change", "mouth_width_change", "brow_raise", "blink_right", "blink_left")
    target = (1.0, -ROUND_NARROW, SPREAD_WIDEN, 1.0, 1.0, 1.0)
    scales = [target[k] / measure(mean, out[k])[unit[k]] for k in range(len(EXPRESSIONS))]
    out *= np.array(scales)[:, None, None]

    # Stage 2. The extra signals' part that the semantic directions explain, frame by frame.
    effect = np.array([[measure(mean, f)[e] for e in EXTRAS] for f in out])  # (6, len(EXTRAS))
    xe = _centre_per_clip(d.X - d.S @ effect, d)
    coef_e = _solve(xe, resid, d.w, settings.ridge)
    extras = coef_e.reshape(len(EXTRAS), -1, 3)
    extras = (extras + mirror_field(extras, perm)) / 2
    extras = iris_follows_eye(extras * np.stack([masks[r] for r in EXTRA_REGION])[:, :, None])
    extras /= np.array([measure(mean, extras[k])[e] for k, e in enumerate(EXTRAS)])[:, None, None]
    facts = {
        "r2_of_offsets_by_semantic_and_pose": round(r2, 3),
        "width_change_per_jaw_unit": round(d.width_slope, 3),
        "moves_outside_region_before_mask": leaks,
        "calibration_scales": dict(zip(EXPRESSIONS, np.round(scales, 3).tolist(), strict=True)),
    }
    return Semantic(out, extras, coef[6:], facts)


def fit_pca(
    d: Design, pose_coef: np.ndarray, perm: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Principal components of the offsets (pose part removed, iris left out, each frame also mirrored so
    that no speaker's one-sidedness shapes the basis), about the neutral face (not centred: the neutral is
    the origin of the space). Returns components (k, 478, 3) with unit norm, each one's share of the
    offsets' weighted energy (k,), and the scores (N, k) of the unmirrored frames."""
    y = (d.Y - d.P @ pose_coef).reshape(len(d.Y), -1, 3)
    y[:, T.N_MESH :] = 0.0
    both = np.concatenate([y, mirror_field(y, perm)]).reshape(2 * len(y), -1)
    sw = np.sqrt(np.concatenate([d.w, d.w]))[:, None]
    _, sv, vt = np.linalg.svd(both * sw, full_matrices=False)
    share = sv**2 / np.sum(sv**2)
    comps = vt[:k].reshape(k, -1, 3)
    for i in range(k):  # sign: the largest coordinate positive, so that runs agree
        if comps[i].reshape(-1)[np.argmax(np.abs(comps[i]))] < 0:
            comps[i] *= -1
    scores = y.reshape(len(y), -1) @ comps.reshape(k, -1).T
    return iris_follows_eye(comps), share[:k], scores


def regions(mean: np.ndarray) -> dict[str, np.ndarray]:
    """Named face regions on the canonical mean face for reporting, boolean (478,) each (iris in none)."""
    x, y = mean[:, 0], mean[:, 1]
    eye_y = mean[T.RIGHT_EYE + T.LEFT_EYE, 1].mean()
    mouth = mean[T.INNER_LIP, :2].mean(0)
    mesh = np.arange(len(mean)) < T.N_MESH
    eye_x = abs(mean[T.RIGHT_EYE, 0].mean())
    eyes = mesh & (np.abs(np.abs(x) - eye_x) < 0.3) & (np.abs(y - eye_y) < 0.15)
    brows = mesh & (y < eye_y - 0.15)
    mouth_r = mesh & (((x - mouth[0]) / 0.55) ** 2 + ((y - mouth[1]) / 0.3) ** 2 < 1)
    chin = mesh & ~mouth_r & (y > mouth[1])
    rest = mesh & ~(eyes | brows | mouth_r | chin)
    return {
        "mouth": mouth_r,
        "jaw_chin": chin,
        "eyes_lids": eyes,
        "brows_forehead": brows,
        "cheeks_nose": rest,
    }


def region_shares(field: np.ndarray, reg: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of a field's squared displacement (478, 3) in each region."""
    e = (field**2).sum(-1)
    total = max(float(e[: T.N_MESH].sum()), 1e-12)
    return {k: round(float(e[m].sum()) / total, 3) for k, m in reg.items()}


# ---------------------------------------------------------------------------------------------------------
# emotions

# The emotion coefficients: the semantic signals but the jaw (speech and silence own the jaw; a static
# open mouth would never close), the width residual signed (< 0 rounds, > 0 spreads), then the extras.
EMOTION_TERMS = ("width", "brow_raise", "blink", *EXTRAS)


def emotion_terms(
    face: np.ndarray, reference: np.ndarray, width_slope: float, effect: np.ndarray
) -> np.ndarray:
    """The emotion coefficients of a static face against a reference face, (len(EMOTION_TERMS),). effect:
    what each semantic direction does to the extra signals, (6, len(EXTRAS))."""
    raw = raw_signals(face[None], reference)[0]
    jaw, width, brow, blink_r, blink_l = raw
    width_rest = width - width_slope * jaw
    s = semantic_signals(raw[None], width_slope)[0]
    extra = extra_signals(face[None], reference)[0] - s @ effect
    return np.array([width_rest, brow, (blink_r + blink_l) / 2, *extra])


def emotion_weights(coef: np.ndarray) -> np.ndarray:
    """Emotion coefficients (len(EMOTION_TERMS),) as weights over [semantic directions; extra directions],
    (len(EXPRESSIONS) + len(EXTRAS),): the signed width goes to lip_spread (> 0) or lip_round (< 0), the
    blink to both eyes."""
    width, brow, blink, *extra = coef
    w = np.zeros(len(EXPRESSIONS) + len(EXTRAS))
    if width > 0:
        w[EXPRESSIONS.index("lip_spread")] = width / SPREAD_WIDEN
    else:
        w[EXPRESSIONS.index("lip_round")] = -width / ROUND_NARROW
    w[EXPRESSIONS.index("brow_raise")] = brow
    w[EXPRESSIONS.index("blink_right")] = w[EXPRESSIONS.index("blink_left")] = blink
    w[len(EXPRESSIONS) :] = extra
    return w


def fit_emotions(
    clips: list[Clip], mean: np.ndarray, d: Design, sem: Semantic, settings: Settings
) -> tuple[np.ndarray, dict]:
    """Emotion offsets (5, 478, 3) in the canonical frame, strength 1, and the facts behind them.

    There is no neutral clip of any MEAD actor, so identity and emotion cannot be told apart inside one
    clip. Each clip's static face (median pose-free shape over all its frames) is measured against the
    population: the mean static face of the non-emotional speakers (one vote per speaker). It is measured
    with the signals (mouth width beyond the jaw's share, brows, lids, frown), so only actions a face makes
    count: identity-shape differences that no facial action makes (nose, face outline, eye spacing) drop
    out. What is left still mixes the actor's face with the emotion, so each coefficient is shrunk (Wiener):
    prior variance = emotion_prior_scale^2 times the variance of that signal in real motion, noise variance =
    how far the non-emotional speakers' own static faces spread about the population (leave-one-out),
    divided by the emotion's number of clips. The offset is the coefficients times the learned directions
    (symmetric, inside the mouth, brow and eye regions); the jaw is left to speech."""
    static = {c.name: np.median(c.frames, 0) for c in clips}
    by_speaker: dict[str, list[np.ndarray]] = {}
    for c in clips:
        if not is_emotional(c.name):
            by_speaker.setdefault(c.speaker, []).append(static[c.name])
    people = np.stack([np.mean(v, 0) for v in by_speaker.values()])
    population = people.mean(0)

    effect = np.array([[measure(mean, f)[e] for e in EXTRAS] for f in sem.fields])

    def terms(face: np.ndarray, reference: np.ndarray = population) -> np.ndarray:
        return emotion_terms(face, reference, d.width_slope, effect)

    null = np.stack([terms(people[i], np.delete(people, i, 0).mean(0)) for i in range(len(people))])
    null_var = np.mean(null**2, 0)
    s = d.S
    motion = np.column_stack(
        [
            SPREAD_WIDEN * s[:, 2] - ROUND_NARROW * s[:, 1],
            s[:, 3],
            (s[:, 4] + s[:, 5]) / 2,
            d.X - s @ effect,
        ]
    )
    motion = _centre_per_clip(motion, d)
    prior_var = settings.emotion_prior_scale**2 * np.average(motion**2, axis=0, weights=d.w)
    offsets: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    facts: dict = {
        "method": "signal-level, Wiener-shrunk against identity spread (see fit_emotions)",
        "population_speakers": len(people),
        "terms": list(EMOTION_TERMS),
        "identity_sd": np.round(np.sqrt(null_var), 4).tolist(),
        "prior_sd": np.round(np.sqrt(prior_var), 4).tolist(),
        "per_emotion": {},
        "outside_check": {},
    }
    for emotion in EMOTIONS:
        names = [c.name for c in clips if emotion_of(c.name) == emotion]
        raw = np.mean([terms(static[n]) for n in names], 0)
        gain = prior_var / (prior_var + null_var / len(names))
        coef = gain * raw
        weights.append(emotion_weights(coef))
        offsets.append(np.tensordot(weights[-1], np.concatenate([sem.fields, sem.extras]), axes=1))
        facts["per_emotion"][emotion] = {
            "clips": names,
            "z_vs_identity_spread": np.round(raw / np.sqrt(null_var / len(names)), 2).tolist(),
            "coefficients_raw": np.round(raw, 4).tolist(),
            "gain": np.round(gain, 2).tolist(),
            "coefficients": np.round(coef, 4).tolist(),
            "weights_on_semantic_and_extras": dict(
                zip(EXPRESSIONS + EXTRAS, np.round(weights[-1], 3).tolist(), strict=True)
            ),
            "jaw_open_left_out": round(float(raw_signals(static[names[0]][None], population)[0, 0]), 3),
            "rms_eye_distances": round(float(np.sqrt((offsets[-1][: T.N_MESH] ** 2).sum(1).mean())), 4),
        }
    # A weak outside check: styletalk's emotion-named clips (other people and cameras, not used above). The
    # label's emotion should be the nearest: cosine of the clip's coefficients with each emotion's, in units
    # of identity spread.
    z = {e: np.array(facts["per_emotion"][e]["coefficients_raw"]) / np.sqrt(null_var) for e in EMOTIONS}
    for c in clips:
        label = next((v for k, v in STYLETALK_EMOTIONS.items() if k in c.name), None)
        if label is None:
            continue
        zc = terms(static[c.name]) / np.sqrt(null_var)
        cos = {e: round(float(zc @ v / np.linalg.norm(zc) / np.linalg.norm(v)), 2) for e, v in z.items()}
        facts["outside_check"][c.name] = {"label": label, "nearest": max(cos, key=cos.get), "cosine": cos}
    return np.stack(offsets), np.stack(weights), facts


# ---------------------------------------------------------------------------------------------------------
# checks and output


def pca_facts(
    comps: np.ndarray, share: np.ndarray, scores: np.ndarray, d: Design, mean: np.ndarray, perm: np.ndarray
) -> list[dict]:
    """Per component: variance share, region shares, symmetric or not, and the |r| of its per-frame score
    with head pose (leak check) and with each semantic signal (what it reads as)."""
    reg = regions(mean)
    out = []
    for i, c in enumerate(comps):
        sym = float(np.linalg.norm(c - mirror_field(c, perm)) / (2 * np.linalg.norm(c)))
        pose_r = [abs(float(np.corrcoef(scores[:, i], d.P[:, j])[0, 1])) for j in range(3)]
        sem_r = {
            n: round(float(np.corrcoef(scores[:, i], d.S[:, j])[0, 1]), 2) for j, n in enumerate(EXPRESSIONS)
        }
        shares = region_shares(c, reg)
        out.append(
            {
                "component": i,
                "variance_share": round(float(share[i]), 4),
                "cumulative": round(float(share[: i + 1].sum()), 4),
                "symmetry": "symmetric" if sym < 0.5 else "antisymmetric",
                "main_region": max(shares, key=shares.get),
                "region_shares": shares,
                "max_abs_r_with_pose": round(max(pose_r), 2),
                "r_with_semantic": sem_r,
            }
        )
    return out


def semantic_checks(mean: np.ndarray, sem: Semantic, d: Design) -> dict:
    """What each semantic direction does on the mean face at coefficient 1 (eye distances), and the pose
    leak of the signals (|r| of each signal with yaw, pitch, roll over all frames)."""
    checks = {
        n: {k: round(v, 4) for k, v in measure(mean, sem.fields[i]).items()}
        for i, n in enumerate(EXPRESSIONS)
    }
    for i, n in enumerate(EXTRAS):
        checks[n] = {k: round(v, 4) for k, v in measure(mean, sem.extras[i]).items()}
    leak = {
        n: round(max(abs(float(np.corrcoef(d.S[:, i], d.P[:, j])[0, 1])) for j in range(3)), 3)
        for i, n in enumerate(EXPRESSIONS)
    }
    return {"on_mean_face_at_1": checks, "signal_max_abs_r_with_pose": leak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", type=Path, default=DATA, help="the development media set (default: %(default)s)"
    )
    ap.add_argument(
        "--cache", type=Path, default=CACHE, help="tracks cache, git-ignored (default: %(default)s)"
    )
    ap.add_argument("--out", type=Path, default=ASSETS, help="where the asset goes (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=2, help="tracking processes")
    ap.add_argument("--sheet", type=Path, help="only render the comparison sheet (PNG) of the shipped basis")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.sheet:
        from talkface.assets import asset_path

        extra = [args.data / "portraits" / n for n in SHEET_PORTRAITS]
        render_sheet([asset_path("portrait.jpg"), *[p for p in extra if p.is_file()]], args.sheet)
        return
    if not (args.data / "talking").is_dir() or not (args.data / "manifest.tsv").is_file():
        print(f"no media set at {args.data}: nothing to learn from, the shipped basis is left as it is")
        sys.exit(0)
    settings = Settings()
    paths = train_clips(args.data)
    log.info("tracking %d clips (cached in %s)", len(paths), args.cache)
    files = track_all(paths, args.cache, args.workers)
    speakers = manifest_speakers(args.data)
    clips = [load_clip(name, f, speakers[name], settings) for name, f in files.items()]
    mean, perm = canonical_frame(clips)
    d = build_design(clips, settings)
    log.info("%d frames, %.0f effective after speaker weighting", len(d.Y), d.w.sum())
    sem = fit_semantic(d, mean, perm, settings)
    comps, share, scores = fit_pca(d, sem.pose_coef, perm, settings.n_components)
    emotions, weights, emotion_facts = fit_emotions(clips, mean, d, sem, settings)
    pca = pca_facts(comps, share, scores, d, mean, perm)
    for row in pca:
        log.info(
            "PC%-2d %5.1f%% (cum %5.1f%%) %-13s %s", row["component"], 100 * row["variance_share"],
            100 * row["cumulative"], row["symmetry"], row["main_region"],
        )  # fmt: skip

    args.out.mkdir(parents=True, exist_ok=True)
    npz = args.out / "expression_basis.npz"
    f32 = np.float32
    np.savez_compressed(
        npz,
        mean=mean.astype(f32),
        semantic=sem.fields.astype(f32),
        semantic_names=np.array(EXPRESSIONS),
        extras=sem.extras.astype(f32),
        extra_names=np.array(EXTRAS),
        components=comps.astype(f32),
        explained_variance=share.astype(f32),
        emotions=emotions.astype(f32),
        emotion_weights=weights.astype(f32),
        emotion_names=np.array(EMOTIONS),
        mirror=perm.astype(np.int16),
    )
    meta = {
        "what": "learned expression basis: canonical mean face, semantic directions (same names and units as "
        "talkface.face.expression.EXPRESSIONS), extra directions, PCA components, emotion offsets; "
        "all in the canonical frame (frontal, symmetric, x right, y down, z away; eye distance 1)",
        "made_by": "training/build_expression_basis.py",
        "date": dt.date.today().isoformat(),
        "units": "eye distances per unit coefficient (components: unit-norm fields over 478x3)",
        "data": {
            "clips": {c.name: {"frames": len(c.frames), "neutral_frames": c.n_neutral} for c in clips},
            "n_clips": len(clips),
            "n_speakers": len({c.speaker for c in clips}),
            "frames": int(len(d.Y)),
            "effective_frames": round(float(d.w.sum()), 1),
            "rule": "TRAIN split of src/talkface/eval/split.json plus every clip of silent/ (not in the "
            "split); validation clips never read; no media or landmarks are shipped",
        },
        "settings": {**asdict(settings), "anchors": ANCHORS},
        "semantic": {**sem.facts, **semantic_checks(mean, sem, d)},
        "pca": pca,
        "emotions": {
            **emotion_facts,
            "caveats": (
                "Weak data: one clip per emotion (two for happy), four MEAD actors (sad and angry are both "
                "M030), no neutral clip of any of them, and disgusted is MEAD level 1 (mild). Identity and "
                "emotion are told apart only statistically (shrinkage against the spread of the non-emotional"
                " speakers' static faces), so the offsets are small and conservative, and what is left may "
                "still be partly the actors' faces. Only sad (narrower lids, z 2.3) and surprised (wider "
                "lids, z -2.5) stand clearly above identity spread; happy (mouth width z 0.8), angry and "
                "disgusted (lower brows, z -1.0 and -1.7) do not. The outside check on styletalk's "
                "emotion-named clips finds their label's emotion nearest for about 1 clip in 6: no "
                "evidence that the offsets generalise. The jaw is left out (speech owns it)."
            ),
        },
    }
    (args.out / "expression_basis.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s (%.0f kB) and expression_basis.json", npz, npz.stat().st_size / 1024)


# ---------------------------------------------------------------------------------------------------------
# the comparison sheet

SHEET_COEFFICIENTS = {"jaw_open": 0.5, "lip_round": 0.8, "lip_spread": 0.8, "brow_raise": 1.0, "blink": 1.0}
# Mouth shapes of speech that mix the directions ((jaw, round, spread), labels): where folds show first.
SHEET_COMBOS = (
    ((0.3, 1.0, 0.0), "oo: jaw .3 round 1"),
    ((0.6, 0.8, 0.0), "oh: jaw .6 round .8"),
    ((0.4, 0.0, 1.0), "ee: jaw .4 spread 1"),
    ((1.0, 0.0, 1.0), "jaw 1 spread 1"),
    ((0.0, 1.2, 0.0), "round 1.2"),
)
SHEET_PORTRAITS = ("liveportrait_source_s10.jpg", "hallo_ref_7.jpg", "anitalker_cartoon_girl.png")


def render_sheet(portraits: list[Path], out: Path, tile: int = 224) -> None:
    """A PNG comparing, per portrait, the hand-built (top row) and learned (middle row) semantic directions
    at SHEET_COEFFICIENTS, and the learned emotion offsets at strength 1 (bottom row); and beside it
    (<out>_combos.png) hand-built and learned mouths at SHEET_COMBOS. Each tile is cut from a 512 crop
    rendered by the product's mesh warp and mouth interior."""
    import cv2

    rows, combos = [], []
    for path in portraits:
        r, c = _portrait_rows(path, tile)
        rows += r
        combos += c
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.concatenate(rows, 0)[:, :, ::-1])
    combos_out = out.with_name(f"{out.stem}_combos{out.suffix}")
    cv2.imwrite(str(combos_out), np.concatenate(combos, 0)[:, :, ::-1])
    log.info("wrote %s and %s", out, combos_out)


def _portrait_rows(path: Path, tile: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    import cv2

    from talkface.face.expression import semantic_basis
    from talkface.face.image import load_image
    from talkface.face.learned_basis import load_basis
    from talkface.face.rig import build_rig
    from talkface.render.mouth import MouthInterior
    from talkface.render.warp import MeshWarp

    basis = load_basis()
    rig = build_rig(load_image(path), 512)
    warp, mouth = MeshWarp(rig), MouthInterior(rig)
    learned, _, emotions = basis.on_face(rig.points)
    oval = rig.points[T.FACE_OVAL, :2]
    centre, half = (oval.min(0) + oval.max(0)) / 2, 0.62 * float((oval.max(0) - oval.min(0)).max())
    x0, y0 = np.clip(np.round(centre - half).astype(int), 0, rig.size)
    x1, y1 = np.clip(np.round(centre + half).astype(int), 0, rig.size)

    def frame(fields: np.ndarray, coef: np.ndarray, box: tuple[int, int, int, int] = (x0, y0, x1, y1)):
        # The renderer reads MeshWarp.basis per frame: any fields and coefficient count work here.
        warp.basis = fields.astype(np.float64)
        result = warp.warp(coef, np.zeros(3), np.zeros(2))
        mouth.paint(result)
        a, b, c, d = box
        return cv2.resize(result.image[b:d, a:c], (tile, tile), interpolation=cv2.INTER_AREA)

    def expression_row(fields: np.ndarray) -> list[np.ndarray]:
        tiles = [frame(fields, np.zeros(len(fields)))]
        for name, value in SHEET_COEFFICIENTS.items():
            coef = np.zeros(len(fields))
            names = ("blink_right", "blink_left") if name == "blink" else (name,)
            coef[[EXPRESSIONS.index(n) for n in names]] = value
            tiles.append(frame(fields, coef))
        return tiles

    columns = ["neutral", *(f"{k} {v:g}" for k, v in SHEET_COEFFICIENTS.items())]
    emo = np.stack([emotions[n] for n in basis.emotion_names])
    emo_tiles = [frame(emo, np.eye(len(emo))[i]) for i in range(len(emo))]
    emo_tiles.append(np.full_like(emo_tiles[0], 255))
    hand = semantic_basis(rig.points)
    rows = [
        _label_row(expression_row(hand), [f"hand-built: {c}" for c in columns]),
        _label_row(expression_row(learned), [f"learned: {c}" for c in columns]),
        _label_row(emo_tiles, [f"learned: {n} 1" for n in basis.emotion_names] + [""]),
    ]
    iod = rig.eye_distance
    mouth_c = rig.points[[61, 291], :2].mean(0)
    mx0, my0 = np.clip(np.round(mouth_c - 0.8 * iod).astype(int), 0, rig.size)
    mx1, my1 = np.clip(np.round(mouth_c + 0.8 * iod).astype(int), 0, rig.size)
    combos = []
    for label, fields in (("hand-built", hand), ("learned", learned)):
        tiles = [frame(fields, np.array([*c, 0, 0, 0]), (mx0, my0, mx1, my1)) for c, _ in SHEET_COMBOS]
        combos.append(_label_row(tiles, [f"{label}: {text}" for _, text in SHEET_COMBOS]))
    return rows, combos


def _label_row(tiles: list[np.ndarray], labels: list[str]) -> np.ndarray:
    import cv2

    out = []
    for img, text in zip(tiles, labels, strict=True):
        img = img.copy()
        cv2.rectangle(img, (0, 0), (img.shape[1], 16), (255, 255, 255), -1)
        cv2.putText(img, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        out.append(img)
    return np.concatenate(out, 1)


if __name__ == "__main__":
    main()
