"""The portrait's rig: a square crop around the face at the output size, upright as photographed and inside
the image, its neutral landmarks in crop pixels, and the transform that pastes the crop back into the
original image."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from talkface.face import topology as T
from talkface.face.landmarks import Landmarks, _quiet_stderr, detect_face, mediapipe

log = logging.getLogger(__name__)

# Crop side as a multiple of the face height (mid-forehead landmark to chin). 2.2 frames head, hair and
# shoulders the way talking-head datasets do (the face is about half the frame).
CROP_FACE_RATIO = 2.2
# The face itself always counts as person, whatever the segmentation says (statues, drawings): the face oval
# scaled by this from its centre.
FACE_IN_PERSON = 1.15
# A bar along an image edge (letterbox, padding, a frame's border, often in layers: a grey bar and a black
# line) is left out of the crop: lines each of one colour (std below BAR_FLAT levels), at most BAR_MAX of the
# side, that end in a step (BAR_STEP levels or more in BAR_STEP_SHARE of the next line's pixels), and that
# next line, which compression blends with the bar. The step tells a bar from a plain backdrop, which meets
# the person in only part of a line.
BAR_FLAT, BAR_STEP, BAR_STEP_SHARE, BAR_MAX = 4.0, 12.0, 0.6, 0.25


@dataclass(frozen=True)
class Framing:
    """matrix: 2x3 affine from portrait pixels to crop pixels (scale + shift: the crop is not rotated).
    size: crop side in pixels. source_shape: (H, W) of the portrait."""

    matrix: np.ndarray
    size: int
    source_shape: tuple[int, int]

    @property
    def inverse(self) -> np.ndarray:
        return cv2.invertAffineTransform(self.matrix)


@dataclass(frozen=True)
class FaceRig:
    """image: the crop, shape (size, size, 3) uint8 RGB. points: neutral landmarks in crop pixels, shape
    (478, 3) float32 (z in the same pixel scale), the head tilted as in the portrait (its roll is part of the
    rest pose). eye_distance: pixels in the crop. person: soft person mask of the crop (head, hair, neck,
    body), shape (size, size) float32 in 0..1, or None when not computed (the renderer then warps the
    background along with the head)."""

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


def _bar_width(lines: np.ndarray) -> int:
    """How many of `lines` (N, L, C), from an image edge inwards, to leave out as a bar (see BAR_FLAT)."""
    limit = int(BAR_MAX * len(lines))
    n = 0
    while n < limit and lines[n].astype(np.float32).std(0).max() < BAR_FLAT:
        n += 1
    if n == 0 or n == limit:
        return 0
    step = np.abs(lines[n].astype(np.float32) - lines[n - 1].astype(np.float32).mean(0)).max(1)
    return n + 1 if (step >= BAR_STEP).mean() >= BAR_STEP_SHARE else 0


def content_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """The image (H, W, C) less the bars along its edges (letterbox, padding; see BAR_FLAT): (x0, y0, x1,
    y1) in pixels, x1 and y1 exclusive."""
    h, w = image.shape[:2]
    across = image.transpose(1, 0, 2)
    return (
        _bar_width(across),
        _bar_width(image),
        w - _bar_width(across[::-1]),
        h - _bar_width(image[::-1]),
    )


def face_framing(
    face: Landmarks,
    image_shape: tuple[int, int],
    size: int,
    head_distance: float = 1.0,
    content: tuple[int, int, int, int] | None = None,
) -> Framing:
    """A square crop around `face`, upright as photographed (a tilted head stays tilted: its roll is part of
    the rig's rest pose) and inside the image's `content` (x0, y0, x1, y1; default the whole image). Its
    side is CROP_FACE_RATIO face heights times head_distance (above 1 the face looks further away, below 1
    nearer), or the largest square the content holds when that is smaller: a face that fills the portrait
    fills the crop, as it fills the portrait. The crop slides to stay inside, so a face near an edge sits
    off-centre."""
    h, w = image_shape
    x0, y0, x1, y1 = content or (0, 0, w, h)
    p = face.points
    eyes_mid = (p[T.RIGHT_EYE, :2].mean(0) + p[T.LEFT_EYE, :2].mean(0)) / 2
    mouth = p[T.INNER_LIP, :2].mean(0)
    face_h = float(np.linalg.norm(p[T.FOREHEAD, :2] - p[T.CHIN, :2]))
    # The face centre sits a little below the eye line; leave room above for hair.
    centre = (eyes_mid + 0.25 * (mouth - eyes_mid)).astype(np.float64)
    wanted = CROP_FACE_RATIO * face_h * head_distance
    side = float(min(wanted, x1 - x0, y1 - y0))
    if side < 0.99 * wanted:
        log.info("the portrait holds %.0f%% of the crop asked for: framed nearer", side / wanted * 100)
    # Pixel centres are integers, so the image spans -0.5 .. extent - 0.5 and so does the crop (0 .. size).
    centre = np.clip(centre, np.array([x0, y0]) - 0.5 + side / 2, np.array([x1, y1]) - 0.5 - side / 2)
    scale = size / side
    m = np.array([[scale, 0.0, 0.0], [0.0, scale, 0.0]])
    m[:, 2] = (size - 1) / 2 - scale * centre
    return Framing(m, size, (h, w))


def person_mask(crop: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Soft person mask of an RGB uint8 crop (H, W, 3) from mediapipe's selfie segmentation (general
    model), shape (H, W) float32 in 0..1; the face (landmarks `points` (478, >=2) in crop pixels) always
    counts as person, so a missed statue or drawing still moves its face."""
    with _quiet_stderr():
        mp = mediapipe()
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
    portrait: np.ndarray,
    size: int,
    face: Landmarks | None = None,
    head_distance: float = 1.0,
    person: np.ndarray | None = None,
) -> FaceRig:
    """Detect the face (unless given), crop it at `size` x `size` (face_framing, within the portrait less
    its letterbox bars), and segment the person (unless `person`, the mask person_mask made of this crop
    before, is given: face.cache keeps it)."""
    face = face or detect_face(portrait)
    framing = face_framing(face, portrait.shape[:2], size, head_distance, content_box(portrait))
    m = framing.matrix
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    crop = cv2.warpAffine(portrait, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    pts = face.points.astype(np.float64)
    xy = pts[:, :2] @ m[:, :2].T + m[:, 2]
    z = (pts[:, 2] - pts[: T.N_MESH, 2].mean()) * scale
    points = np.column_stack([xy, z]).astype(np.float32)
    return FaceRig(crop, points, framing, person_mask(crop, points) if person is None else person)
