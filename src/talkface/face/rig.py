"""The portrait's rig: an aligned square crop around the face at the output size, its neutral landmarks
in crop pixels, and the transform that pastes the crop back into the original image."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from talkface.face import topology as T
from talkface.face.landmarks import Landmarks, _quiet_stderr, detect_face

# Crop side as a multiple of the face height (mid-forehead landmark to chin). 2.2 frames head, hair and
# shoulders the way talking-head datasets do (the face is about half the frame).
CROP_FACE_RATIO = 2.2
MIN_CROP_FACE_RATIO = 1.8  # when the image is too small for the full crop, shrink it down to this
# The face itself always counts as person, whatever the segmentation says (statues, drawings): the face oval
# scaled by this from its centre.
FACE_IN_PERSON = 1.15


@dataclass(frozen=True)
class Framing:
    """matrix: 2x3 affine from portrait pixels to crop pixels (rotation + scale + shift).
    size: crop side in pixels. source_shape: (H, W) of the portrait."""

    matrix: np.ndarray
    size: int
    source_shape: tuple[int, int]

    @property
    def inverse(self) -> np.ndarray:
        return cv2.invertAffineTransform(self.matrix)


@dataclass(frozen=True)
class FaceRig:
    """image: the aligned crop, shape (size, size, 3) uint8 RGB. points: neutral landmarks in crop
    pixels, shape (478, 3) float32 (z in the same pixel scale). eye_distance: pixels in the crop.
    person: soft person mask of the crop (head, hair, neck, body), shape (size, size) float32 in 0..1, or
    None when not computed (the renderer then warps the background along with the head)."""

    image: np.ndarray
    points: np.ndarray
    framing: Framing
    person: np.ndarray | None = None

    @property
    def size(self) -> int:
        return self.framing.size

    @property
    def eye_distance(self) -> float:
        return Landmarks(self.points).eye_distance


def face_framing(
    face: Landmarks, image_shape: tuple[int, int], size: int, head_distance: float = 1.0
) -> Framing:
    """A square, roll-corrected crop around `face`, kept inside the image when the image allows.
    head_distance scales the crop: above 1 the face looks further away (smaller), below 1 nearer."""
    h, w = image_shape
    p = face.points
    right_eye = p[T.RIGHT_EYE, :2].mean(0)
    left_eye = p[T.LEFT_EYE, :2].mean(0)
    dx, dy = left_eye - right_eye
    roll = np.degrees(np.arctan2(dy, dx))
    face_h = float(np.linalg.norm(p[T.FOREHEAD, :2] - p[T.CHIN, :2]))
    eyes_mid = (left_eye + right_eye) / 2
    mouth = p[T.INNER_LIP, :2].mean(0)
    # The face centre sits a little below the eye line; leave room above for hair.
    centre = eyes_mid + 0.25 * (mouth - eyes_mid)
    side = CROP_FACE_RATIO * face_h * head_distance
    # Keep the crop inside the image when the image allows (replicated borders look bad): first shrink it
    # towards MIN_CROP_FACE_RATIO, then slide it (the face may sit off-centre).
    side = float(max(min(side, w, h), MIN_CROP_FACE_RATIO * face_h * min(head_distance, 1.0)))
    centre = centre.astype(np.float64)
    for axis, extent in ((0, w), (1, h)):
        if side <= extent:
            centre[axis] = np.clip(centre[axis], side / 2, extent - side / 2)
    scale = size / side
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(roll), scale)
    m[:, 2] += np.array([size / 2, size / 2]) - centre
    return Framing(m.astype(np.float64), size, (h, w))


def _soften_outside(crop: np.ndarray, image_shape: tuple[int, int], matrix: np.ndarray) -> np.ndarray:
    """Where the crop leaves the portrait, its edge pixels were repeated (streaks); blur those parts into a
    smooth continuation of the edge colours instead. Crops inside the image are returned unchanged."""
    h, w = image_shape
    size = crop.shape[0]
    inside = cv2.warpAffine(np.ones((h, w), np.float32), matrix, (size, size), flags=cv2.INTER_LINEAR)
    if inside.min() > 0.999:
        return crop
    sigma = 0.04 * size
    smooth = cv2.GaussianBlur(crop, (0, 0), sigma)
    # Fade from the real pixels into the smooth fill over a few pixels past the image edge.
    outside = cv2.GaussianBlur(1.0 - inside, (0, 0), 2.0).clip(0, 1)[..., None]
    return (crop * (1 - outside) + smooth * outside).astype(np.uint8)


def person_mask(crop: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Soft person mask of an RGB uint8 crop (H, W, 3) from mediapipe's selfie segmentation (general
    model), shape (H, W) float32 in 0..1; the face (landmarks `points` (478, >=2) in crop pixels) always
    counts as person, so a missed statue or drawing still moves its face."""
    with _quiet_stderr():
        import mediapipe as mp

        with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
            result = seg.process(np.ascontiguousarray(crop))
    h, w = crop.shape[:2]
    mask = result.segmentation_mask
    mask = np.zeros((h, w), np.float32) if mask is None else np.clip(mask.astype(np.float32), 0, 1)
    oval = points[T.FACE_OVAL, :2].astype(np.float64)
    centre = oval.mean(0)
    face = np.zeros((h, w), np.uint8)
    poly = np.round((centre + FACE_IN_PERSON * (oval - centre)) * 4).astype(np.int32)
    cv2.fillPoly(face, [poly], 255, cv2.LINE_AA, shift=2)
    return np.maximum(mask, face.astype(np.float32) / 255.0)


def build_rig(
    portrait: np.ndarray, size: int, face: Landmarks | None = None, head_distance: float = 1.0
) -> FaceRig:
    """Detect the face (unless given), crop and align it at `size` x `size`, and segment the person."""
    face = face or detect_face(portrait)
    framing = face_framing(face, portrait.shape[:2], size, head_distance)
    m = framing.matrix
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    crop = cv2.warpAffine(portrait, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    crop = _soften_outside(crop, portrait.shape[:2], m)
    pts = face.points.astype(np.float64)
    xy = pts[:, :2] @ m[:, :2].T + m[:, 2]
    z = (pts[:, 2] - pts[: T.N_MESH, 2].mean()) * scale
    points = np.column_stack([xy, z]).astype(np.float32)
    return FaceRig(crop, points, framing, person_mask(crop, points))
