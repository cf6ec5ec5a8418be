"""The expression basis learned from real talking-face video (assets/expression_basis.npz).

Built by training/build_expression_basis.py from tracked landmarks of real clips: pose removed, each clip's
own neutral face removed, everything in one canonical frame (a frontal, left-right symmetric mean face, eye
distance 1; x right, y down, z away from the camera). It holds

- semantic directions with the names and units of talkface.face.expression.EXPRESSIONS, regressed on
  signals measured from the landmarks, so each carries the natural co-motion of chin, cheeks and lid skin;
- extra directions (EXTRAS) that emotions use and the semantic ones do not name;
- PCA components of the offsets with their share of the variance;
- emotion offsets: static fields from labelled emotional clips, stored as weights over the semantic and
  extra directions.

LearnedBasis.on_face() transfers all of it onto a portrait: canonical fields are scaled to the portrait's
face (eye distance, face width and height), rotated by the portrait's head rotation relative to the
canonical frontal face, and each semantic direction is calibrated on the portrait's own features (its lip
gap, mouth width, lid gaps), so coefficients mean the same as with expression.semantic_basis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from talkface import assets
from talkface.face import topology as T
from talkface.face.expression import (
    BROW_LIFT,
    EXPRESSIONS,
    JAW_DROP,
    ROUND_NARROW,
    SPREAD_WIDEN,
    UPPER_LIP_RISE,
)
from talkface.face.geometry import eye_distance, similarity_fit

ASSET = "expression_basis.npz"

# Lid pairs (upper, lower) across the middle of each eye: their mean gap is the eye's opening.
RIGHT_LID_PAIRS = ((160, 144), (159, 145), (158, 153))
LEFT_LID_PAIRS = ((387, 373), (386, 374), (385, 380))
EYE_CORNERS = (33, 133, 263, 362)
# Head pose is fitted on the nose bridge, the eye corners and the cheek sides: mediapipe's STABLE set also
# holds forehead points, which ride up with the brows.
ANCHORS = (168, 6, 197, 195, 5, 4, 1, 33, 133, 263, 362, 234, 454, 127, 356)
# jaw_open = 1 opens the inner lips by this many eye distances, as semantic_basis does (the lower lip drops
# JAW_DROP, the upper lifts UPPER_LIP_RISE), so motion calibrated on the mouth opening keeps its meaning.
JAW_GAP = JAW_DROP + UPPER_LIP_RISE
SHAPE_RANGE = (0.7, 1.4)  # the portrait's face width/height relative to the mean face, clipped to this
CALIBRATION_RANGE = (0.0, 2.5)  # a semantic direction is rescaled on the portrait by at most this much


# Signals: signed distances along the face's upright axes (linear in the landmarks), shape points.shape[:-2].
def lip_gap(points: np.ndarray) -> np.ndarray:
    """Inner-lip gap at the middle of the mouth: point 14's height below point 13."""
    return points[..., T.LOWER_LIP_MID, 1] - points[..., T.UPPER_LIP_MID, 1]


def mouth_width(points: np.ndarray) -> np.ndarray:
    """Corner to corner (61 to 291) along x."""
    return points[..., 291, 0] - points[..., 61, 0]


def brow_height(points: np.ndarray) -> np.ndarray:
    """Eye-corner line minus the mean brow height: larger = brows higher."""
    brows = points[..., T.RIGHT_BROW + T.LEFT_BROW, 1].mean(-1)
    return points[..., list(EYE_CORNERS), 1].mean(-1) - brows


def lid_gap(points: np.ndarray, pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Mean lower-minus-upper lid height over lid pairs."""
    return (points[..., [b for _, b in pairs], 1] - points[..., [a for a, _ in pairs], 1]).mean(-1)


@dataclass(frozen=True, eq=False)
class LearnedBasis:
    """All fields in the canonical frame, eye distances per unit coefficient, float64.

    mean: canonical mean face (478, 3). semantic: (len(EXPRESSIONS), 478, 3). extras: (len(extra_names),
    478, 3). components: PCA components (K, 478, 3), unit norm, with explained_variance (K,) their share of
    the offsets' variance. emotion_weights: (len(emotion_names), len(EXPRESSIONS) + len(extra_names)), an
    emotion offset at strength 1 = weights @ [semantic; extras]; emotions: those offsets (E, 478, 3)."""

    mean: np.ndarray
    semantic: np.ndarray
    extras: np.ndarray
    extra_names: tuple[str, ...]
    components: np.ndarray
    explained_variance: np.ndarray
    emotion_weights: np.ndarray
    emotion_names: tuple[str, ...]
    meta: dict = field(repr=False, compare=False)

    @property
    def emotions(self) -> np.ndarray:
        """Emotion offsets at strength 1 in the canonical frame, (len(emotion_names), 478, 3)."""
        return np.tensordot(self.emotion_weights, np.concatenate([self.semantic, self.extras]), axes=1)

    def transfer(self, points: np.ndarray) -> _Transfer:
        """Canonical fields -> the portrait's crop pixels (call it on fields (..., 478, 3)), and its
        to_face_frame (the portrait's points upright, in eye distances). points: (478, 3) crop pixels."""
        return _Transfer(self.mean, np.asarray(points, np.float64))

    def on_face(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """The basis on a portrait, in its crop pixels per unit coefficient.

        points: the portrait's neutral landmarks, shape (478, 3), crop pixels (z in the same scale),
        roll-corrected (FaceRig.points). Returns (semantic (len(EXPRESSIONS), 478, 3), components (K, 478,
        3), emotions {name: (478, 3)}), float32. The semantic part is a drop-in for
        expression.semantic_basis(points), with the same shape, names and units, each calibrated on this
        face: jaw_open = 1 opens the inner lips (13-14) by JAW_GAP eye distances, lip_round = 1 narrows the
        mouth (61-291) by ROUND_NARROW of its width, lip_spread = 1 widens it by SPREAD_WIDEN, brow_raise =
        1 lifts the brows by BROW_LIFT eye distances, blink_x = 1 closes that eye's lid gap. Eye distances
        are measured in 3D here, so a turned head keeps its true size."""
        p = np.asarray(points, np.float64)
        if p.shape != (T.N_POINTS, 3) or not np.isfinite(p).all():
            raise ValueError(f"points must be finite, shape ({T.N_POINTS}, 3); got {p.shape}")
        transfer = _Transfer(self.mean, p)
        semantic = transfer(self.semantic)
        extras = transfer(self.extras)
        # Calibrate each semantic direction on the portrait's own features, as semantic_basis defines them.
        face = transfer.to_face_frame(p)  # the portrait upright, in its own eye distances
        width = max(float(mouth_width(face)), 1e-6)
        gaps = [max(float(lid_gap(face, pairs)), 0.0) for pairs in (RIGHT_LID_PAIRS, LEFT_LID_PAIRS)]
        targets = (JAW_GAP, -ROUND_NARROW * width, SPREAD_WIDEN * width, BROW_LIFT, *gaps)
        for k, target in enumerate(targets):
            moved = transfer.to_face_frame(p + semantic[k])
            measures = (
                lip_gap(moved) - lip_gap(face),
                mouth_width(moved) - width,
                mouth_width(moved) - width,
                brow_height(moved) - brow_height(face),
                lid_gap(face, RIGHT_LID_PAIRS) - lid_gap(moved, RIGHT_LID_PAIRS),
                lid_gap(face, LEFT_LID_PAIRS) - lid_gap(moved, LEFT_LID_PAIRS),
            )
            got = float(measures[k])
            scale = target / got if abs(got) > 1e-9 else 0.0
            semantic[k] *= np.clip(scale, *CALIBRATION_RANGE)
        emotions_all = np.tensordot(self.emotion_weights, np.concatenate([semantic, extras]), axes=1)
        emotions = {n: e.astype(np.float32) for n, e in zip(self.emotion_names, emotions_all, strict=True)}
        return semantic.astype(np.float32), transfer(self.components).astype(np.float32), emotions


class _Transfer:
    """Canonical displacement fields -> the portrait's crop pixels: scaled per axis to the portrait's face
    (its 3D eye distance, and its face width and height relative to the mean face's), then rotated by the
    portrait's head rotation relative to the canonical frontal face (a similarity fit of the ANCHORS; the
    rotation itself foreshortens a turned face, so the scale is the 3D eye distance, not the 2D one)."""

    def __init__(self, mean: np.ndarray, points: np.ndarray):
        anchors = list(ANCHORS)
        _, rot, shift = similarity_fit(mean[anchors], points[anchors])
        self.rot = rot[0]
        self.shift = shift[0]
        self.iod = float(eye_distance(points, dims=3))
        upright = self.to_face_frame(points)
        ratio = _face_size(upright) / _face_size(mean)
        sx, sy = np.clip(ratio, *SHAPE_RANGE)
        self.axes = np.array([sx, sy, sx])

    def to_face_frame(self, points: np.ndarray) -> np.ndarray:
        """Portrait points (..., 478, 3) turned frontal (undoing the head rotation), in eye distances."""
        return ((points - self.shift) @ self.rot) / self.iod

    def __call__(self, fields: np.ndarray) -> np.ndarray:
        """Fields (..., 478, 3) in eye distances -> crop pixels on the portrait."""
        return (fields * self.axes) @ self.rot.T * self.iod


def _face_size(face: np.ndarray) -> np.ndarray:
    """(width, height) of a face in its own eye distances: cheek to cheek (234-454) and forehead to chin."""
    iod = float(eye_distance(face))
    width = np.linalg.norm(face[454, :2] - face[234, :2])
    height = np.linalg.norm(face[T.CHIN, :2] - face[T.FOREHEAD, :2])
    return np.array([width, height]) / iod


def load_basis(path: str | Path | None = None) -> LearnedBasis:
    """The learned basis at `path` (an .npz with its .json beside it; default: the shipped one), read once
    per process and path."""
    return assets.load_model(_read_basis, path, shipped=ASSET)


def _read_basis(path: Path) -> LearnedBasis:
    with path.open("rb") as f:
        z = np.load(f, allow_pickle=False)
        arrays = {k: z[k] for k in z.files}
    meta_file = path.with_suffix(".json")
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
    names = tuple(str(n) for n in arrays["semantic_names"])
    if names != EXPRESSIONS:
        raise ValueError(f"{ASSET} holds directions {names}, expected {EXPRESSIONS}")

    def f64(name: str) -> np.ndarray:
        a = arrays[name].astype(np.float64)
        a.setflags(write=False)
        return a

    return LearnedBasis(
        mean=f64("mean"),
        semantic=f64("semantic"),
        extras=f64("extras"),
        extra_names=tuple(str(n) for n in arrays["extra_names"]),
        components=f64("components"),
        explained_variance=f64("explained_variance"),
        emotion_weights=f64("emotion_weights"),
        emotion_names=tuple(str(n) for n in arrays["emotion_names"]),
        meta=meta,
    )
