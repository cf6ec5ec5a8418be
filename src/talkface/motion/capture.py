"""Motion captured from a tracked video: the driving face's head pose, expression, blinks and gaze,
relative to its first frame, as a MotionSequence that drives any portrait (`talkface drive`).

Pose: a 3D similarity fit of the stable landmarks onto the first frame's. Expression: the pose-free
landmark offsets from the first frame, projected on the semantic expression basis built on the driving
face itself (a ridge least-squares fit over the lips, lids and brows), so the coefficients mean the
same on any face. Gaze: the iris centres relative to the eye corners, as eyeball rotation angles.
"""

from __future__ import annotations

import numpy as np

from talkface.errors import NoFaceError
from talkface.face import topology as T
from talkface.face.expression import EXPRESSIONS, EYEBALL_RADIUS, LID_FOLLOW
from talkface.face.geometry import align_frames, eye_distance, head_pivot, rotation_angles, similarity_fit
from talkface.face.learned_basis import load_basis
from talkface.face.tracking import Track
from talkface.motion.contract import MotionSequence

RIDGE = 0.02  # regularisation of the expression fit (in squared eye distances per coefficient)
SMOOTH_FRAMES = 0.7  # Gaussian sigma applied to the landmarks over time: removes tracking jitter only
# Coefficient ranges: negative jaw/round/spread close/narrow beyond the first frame's shape.
LIMITS = {
    "jaw_open": (-0.3, 1.2),
    "lip_round": (-0.6, 1.0),
    "lip_spread": (-0.6, 1.0),
    "brow_raise": (-0.6, 1.0),
    "blink_right": (-0.3, 1.0),
    "blink_left": (-0.3, 1.0),
}
_FIT_POINTS = sorted(
    set(
        T.INNER_LIP
        + T.OUTER_LIP
        + T.RIGHT_EYE
        + T.LEFT_EYE
        + T.RIGHT_BROW
        + T.LEFT_BROW
        + [T.CHIN, 17, 18, 200]
    )
)


def _fill_and_smooth(points: np.ndarray, smooth: bool = True) -> np.ndarray:
    """Frames without a face take the nearest tracked frame; then (if `smooth`) a light zero-phase
    Gaussian in time."""
    found = np.isfinite(points[:, 0, 0])
    if not found.any():
        raise NoFaceError("no face found in the driving video")
    idx = np.flatnonzero(found)
    frames = np.arange(len(points))
    after = idx[np.clip(np.searchsorted(idx, frames), 0, len(idx) - 1)]
    before = idx[np.clip(np.searchsorted(idx, frames) - 1, 0, len(idx) - 1)]
    pick = np.where(np.abs(before - frames) < np.abs(after - frames), before, after)
    p = points[pick].astype(np.float64)
    if not smooth:
        return p
    r = int(3 * SMOOTH_FRAMES) + 1
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / SMOOTH_FRAMES) ** 2)
    k /= k.sum()
    padded = np.concatenate([p[:1].repeat(r, 0), p, p[-1:].repeat(r, 0)])
    return sum(w * padded[i : i + len(p)] for i, w in enumerate(k))


def _gaze(aligned: np.ndarray) -> np.ndarray:
    """Eye rotation (yaw, pitch) in degrees per frame from pose-free landmarks (T, 478, 3), shape (T, 2)."""
    out = []
    for iris, (c0, c1) in ((T.RIGHT_IRIS[0], T.RIGHT_EYE_CORNERS), (T.LEFT_IRIS[0], T.LEFT_EYE_CORNERS)):
        corners = aligned[:, [c0, c1], :2]
        width = np.linalg.norm(corners[:, 0] - corners[:, 1], axis=1)[:, None]
        offset = (aligned[:, iris, :2] - corners.mean(1)) / np.maximum(width, 1e-6)
        out.append(np.degrees(np.arcsin(np.clip(offset / EYEBALL_RADIUS, -1, 1))))
    g = np.mean(out, axis=0)
    return g - g[0]


def _blinks(points: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Blink coefficients (T, 2) for the right and left eye from the lid gap over the eye width (raw,
    unsmoothed landmarks: a blink lasts only a few frames): 0 at the video's open-eye gap (its 90th
    percentile), 1 when the lids meet; less the lids' following of the vertical gaze `pitch` (T,) degrees,
    which the renderer adds again (LID_FOLLOW), so that a driving face looking down does not blink twice."""
    follow = np.where(pitch > 0, LID_FOLLOW[1], LID_FOLLOW[0])
    out = []
    for upper, lower, (c0, c1) in (
        (T.RIGHT_EYE_UPPER, T.RIGHT_EYE_LOWER, T.RIGHT_EYE_CORNERS),
        (T.LEFT_EYE_UPPER, T.LEFT_EYE_LOWER, T.LEFT_EYE_CORNERS),
    ):
        gap = np.linalg.norm(points[:, upper, :2] - points[:, lower, :2], axis=2).mean(1)
        width = np.linalg.norm(points[:, c0, :2] - points[:, c1, :2], axis=1)
        ratio = gap / np.maximum(width, 1e-6)
        open_ratio = max(float(np.nanpercentile(ratio, 90)), 1e-6)
        gaze_drop = follow * EYEBALL_RADIUS * np.sin(np.radians(pitch)) / open_ratio
        out.append(np.clip(1.0 - ratio / open_ratio - gaze_drop, 0.0, 1.0))
    return np.column_stack(out)


def motion_from_track(track: Track) -> MotionSequence:
    """MotionSequence (one row per video frame) of the face in `track`, relative to its first frame."""
    raw = _fill_and_smooth(track.points, smooth=False)
    pts = _fill_and_smooth(track.points)
    ref = pts[0]
    iod = float(eye_distance(ref))
    # Pose: the head's rotation and scale (nearer the camera: larger) relative to the first frame, and the
    # shift that rotation and scale about the renderer's pivot do not explain (the renderer adds
    # `translation` after rotating and scaling).
    scale, rot, _ = similarity_fit(ref[T.STABLE], pts[:, T.STABLE])
    rotation = rotation_angles(rot)
    pivot = head_pivot(ref)
    turned = scale[:, None, None] * np.einsum("tij,nj->tni", rot, ref[T.STABLE] - pivot) + pivot  # (T, S, 3)
    translation = (pts[:, T.STABLE, :2].mean(1) - turned[:, :, :2].mean(1)) / iod
    # Expression: pose-free offsets from the first frame, fitted on the semantic basis (eye-distance units).
    aligned = align_frames(pts, ref)
    delta = (aligned - aligned[:1])[:, _FIT_POINTS, :2].reshape(len(pts), -1)  # (T, P*2)
    basis = load_basis().on_face(ref)[0].astype(np.float64) / iod  # the renderer's basis, on the driving face
    b = basis[:, _FIT_POINTS, :2].reshape(len(EXPRESSIONS), -1)  # (K, P*2)
    gram = b @ b.T + RIDGE * np.eye(len(EXPRESSIONS))
    coef = np.linalg.solve(gram, b @ delta.T).T  # (T, K)
    # Blinks are measured directly: a few-frame event that the smoothed fit would shrink.
    gaze = _gaze(aligned)
    blinks = _blinks(raw, gaze[:, 1])
    coef[:, EXPRESSIONS.index("blink_right")] = blinks[:, 0]
    coef[:, EXPRESSIONS.index("blink_left")] = blinks[:, 1]
    for k, name in enumerate(EXPRESSIONS):
        coef[:, k] = np.clip(coef[:, k], *LIMITS[name])
    return MotionSequence(
        coef.astype(np.float32),
        rotation.astype(np.float32),
        translation.astype(np.float32),
        gaze.astype(np.float32),
        float(track.fps),
        scale=scale.astype(np.float32),
    )
