"""The expression coefficients' names and units, and their hand-built geometric definition.

EXPRESSIONS names the coefficients every MotionSequence carries: jaw opening, lip rounding, lip spreading
(smile), brow raise and each eye's blink; a coefficient of 1 is a large but natural extreme. The units are
defined here by semantic_basis, a per-vertex 3D displacement field (crop pixels per unit coefficient) built
geometrically from a portrait's landmarks. The renderer and drive mode use the basis learned from video
(face.learned_basis), calibrated to these same units; semantic_basis remains as that definition, the
reference the learned basis is built and tested against (training/build_expression_basis.py).
"""

from __future__ import annotations

import cv2
import numpy as np

from talkface.config import EMOTIONS  # noqa: F401  (the emotion offsets' names, beside the coefficients')
from talkface.face import topology as T

EXPRESSIONS = ("jaw_open", "lip_round", "lip_spread", "brow_raise", "blink_right", "blink_left")
JAW_OPEN, LIP_ROUND, LIP_SPREAD, BROW_RAISE, BLINK_RIGHT, BLINK_LEFT = range(len(EXPRESSIONS))
EYEBALL_RADIUS = 0.45  # eyeball radius in eye widths (corner to corner): gaze degrees <-> iris shift
# Upper lids follow vertical gaze: the share of the iris's vertical shift they move with it (looking up,
# looking down). Looking down the lid follows the eye almost fully; looking up it rises less. The renderer
# adds it (render.eyes); motion captured from a video has it already and takes it out (motion.capture).
LID_FOLLOW = (0.4, 0.8)

# Extremes, in eye distances (the distance between the eye centres).
JAW_DROP = 0.55  # lower-lip travel at jaw_open = 1 (a wide-open mouth)
UPPER_LIP_RISE = 0.06  # the upper lip lifts a little as the jaw opens
ROUND_NARROW = 0.30  # mouth width lost at lip_round = 1 (share of the mouth width)
SPREAD_WIDEN = 0.16  # mouth width gained at lip_spread = 1
SMILE_LIFT = 0.06  # corners rise with spreading
BROW_LIFT = 0.12
LID_CLOSE = 0.92  # share of the lid gap the upper lid covers in a full blink (the lower lid does the rest)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def lip_regions(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the upper-lip and lower-lip mesh vertices (all rows from the outer to the inner contour).

    A vertex is on a lip if it lies inside the outer lip contour; it is on the upper lip if it lies above the
    mouth line (the mean of the upper and lower inner contours) at its x, else on the lower lip."""
    xy = points[: T.N_MESH, :2].astype(np.float32)
    outer = xy[T.OUTER_LIP].reshape(-1, 1, 2)
    inside = np.array([cv2.pointPolygonTest(outer, (float(x), float(y)), True) >= -0.5 for x, y in xy])
    up = xy[[78, *T.INNER_UPPER, 308]]
    lo = xy[[78, *T.INNER_LOWER[::-1], 308]]
    order_up, order_lo = np.argsort(up[:, 0]), np.argsort(lo[:, 0])
    line = (
        np.interp(xy[:, 0], up[order_up, 0], up[order_up, 1])
        + np.interp(xy[:, 0], lo[order_lo, 0], lo[order_lo, 1])
    ) / 2
    upper = set(np.flatnonzero(inside & (xy[:, 1] < line))) | set(T.INNER_UPPER) | set(T.OUTER_UPPER)
    lower = set(np.flatnonzero(inside & (xy[:, 1] >= line))) | set(T.INNER_LOWER) | set(T.OUTER_LOWER)
    corners = set(T.MOUTH_CORNERS)
    upper, lower = upper - set(T.INNER_LOWER) - corners, lower - set(T.INNER_UPPER) - corners
    return np.array(sorted(upper)), np.array(sorted(lower - upper))


def semantic_basis(points: np.ndarray) -> np.ndarray:
    """Displacement fields for EXPRESSIONS on a neutral face, shape (len(EXPRESSIONS), 478, 3) float32.

    points: neutral landmarks, shape (478, 3), in an upright (roll-corrected) frame, pixels."""
    p = points.astype(np.float64)
    n = len(p)
    xy = p[:, :2]
    right_eye = p[T.RIGHT_EYE, :2].mean(0)
    left_eye = p[T.LEFT_EYE, :2].mean(0)
    iod = float(np.linalg.norm(left_eye - right_eye))
    mouth_c = p[T.INNER_LIP, :2].mean(0)
    corner_r, corner_l = p[61, :2], p[291, :2]
    mouth_w = float(np.linalg.norm(corner_l - corner_r))
    chin = p[T.CHIN, :2]
    oval = p[T.FACE_OVAL, :2]
    face_half_w = (oval[:, 0].max() - oval[:, 0].min()) / 2
    face_cx = oval[:, 0].mean()
    basis = np.zeros((len(EXPRESSIONS), n, 3))

    # Lip regions, found geometrically: mediapipe has two rows of points between the outer and the inner
    # lip contour, and every row of one lip must move together or the lip folds.
    upper_lip, lower_lip = lip_regions(p)
    rel_x = (xy[:, 0] - mouth_c[0]) / max(mouth_w / 2, 1e-6)  # -1 .. 1 across the mouth
    centre_weight = 1.0 - np.clip(np.abs(rel_x), 0, 1) ** 2  # 1 mid-mouth, 0 at the corners

    # Jaw: everything below the mouth-corner line drops, most at the chin's midline, fading towards the
    # jaw angles (the jaw hinges near the ears) and to nothing above the corners. The lower lip drops
    # with the jaw, less at the corners.
    corner_y = (corner_r[1] + corner_l[1]) / 2
    below = _smoothstep((xy[:, 1] - corner_y) / max(0.35 * (chin[1] - corner_y), 1e-6))
    side = np.abs(xy[:, 0] - face_cx) / max(face_half_w, 1e-6)
    hinge = 1.0 - 0.65 * _smoothstep((side - 0.35) / 0.65)
    w_jaw = below * hinge
    w_jaw[lower_lip] = 0.45 + 0.55 * centre_weight[lower_lip]
    w_jaw[upper_lip] = 0.0
    w_jaw[T.MOUTH_CORNERS] = 0.4
    w_jaw[T.N_MESH :] = 0.0
    basis[JAW_OPEN, :, 1] = JAW_DROP * iod * w_jaw
    # The upper lip's middle lifts slightly, fading to the corners.
    basis[JAW_OPEN, upper_lip, 1] = -UPPER_LIP_RISE * iod * centre_weight[upper_lip]

    # Lips: rounding pulls the mouth towards its centre horizontally; spreading pushes the corners out
    # and up. Lip points move fully; surrounding skin follows with a Gaussian falloff.
    lips = np.zeros(n)
    lips[upper_lip] = lips[lower_lip] = 1.0
    d = (xy - mouth_c) / np.array([0.75 * mouth_w, 0.6 * mouth_w])
    region = np.maximum(lips, np.exp(-0.5 * (d**2).sum(1) * 2.0))
    region[T.N_MESH :] = 0.0
    basis[LIP_ROUND, :, 0] = -ROUND_NARROW * (mouth_w / 2) * np.clip(rel_x, -1.3, 1.3) * region
    # Rounded lips also open a little in the middle (an "o" shape) and push forward (nearer: -z).
    mid = np.clip(1 - np.abs(rel_x), 0, 1) * lips
    sign = np.where(xy[:, 1] > mouth_c[1], 1.0, -1.0)
    basis[LIP_ROUND, :, 1] = 0.05 * iod * mid * sign
    basis[LIP_ROUND, :, 2] = -0.15 * iod * region
    basis[LIP_SPREAD, :, 0] = SPREAD_WIDEN * (mouth_w / 2) * np.clip(rel_x, -1.3, 1.3) * region
    basis[LIP_SPREAD, :, 1] = -SMILE_LIFT * iod * np.abs(np.clip(rel_x, -1, 1)) ** 2 * region

    # Brows: brow points and the forehead skin just above them rise; the eyes stay.
    brow_y = p[T.RIGHT_BROW + T.LEFT_BROW, 1].mean()
    eye_y = (right_eye[1] + left_eye[1]) / 2
    up = _smoothstep((eye_y - xy[:, 1] - 0.35 * (eye_y - brow_y)) / max(0.6 * (eye_y - brow_y), 1e-6))
    w_brow = up * np.exp(-0.5 * ((xy[:, 1] - brow_y) / (0.9 * iod)) ** 2)
    w_brow[T.RIGHT_BROW + T.LEFT_BROW] = 1.0
    w_brow[T.N_MESH :] = 0.0
    basis[BROW_RAISE, :, 1] = -BROW_LIFT * iod * w_brow

    # Blinks: each upper-lid point travels to its lower-lid partner; the lower lid rises a little. Skin
    # between lid and brow follows with a falloff, so lid skin (not a squashed eyeball) covers the eye.
    for k, upper_ids, lower_ids in (
        (BLINK_RIGHT, T.RIGHT_EYE_UPPER, T.RIGHT_EYE_LOWER),
        (BLINK_LEFT, T.LEFT_EYE_UPPER, T.LEFT_EYE_LOWER),
    ):
        gap = p[lower_ids, :2] - p[upper_ids, :2]  # (7, 2)
        eye_c = p[upper_ids + lower_ids, :2].mean(0)
        eye_w = float(np.ptp(p[upper_ids + lower_ids, 0]))
        # Skin above the lid: nearest upper-lid point's travel, fading with distance above the lid.
        dist = np.linalg.norm(xy[:, None, :] - p[None, upper_ids, :2], axis=2)  # (n, 7)
        nearest = dist.argmin(1)
        dmin = dist.min(1)
        above = xy[:, 1] < eye_c[1]
        near = (
            np.exp(-0.5 * (dmin / (0.22 * eye_w)) ** 2) * above * (np.abs(xy[:, 0] - eye_c[0]) < 0.8 * eye_w)
        )
        near[T.N_MESH :] = 0.0
        basis[k, :, :2] = 0.6 * LID_CLOSE * near[:, None] * gap[nearest]
        basis[k, upper_ids, :2] = LID_CLOSE * gap
        basis[k, lower_ids, :2] = -(1 - LID_CLOSE) * gap
    return basis.astype(np.float32)
