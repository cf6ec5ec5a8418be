"""Still background behind a moving head: the warped person composited over a clean background plate.

Once per rig: the person mask (FaceRig.person, from selfie segmentation) is thresholded and grown by a few
pixels (the hole), the hole is filled from the surrounding background (a push-pull pyramid fill for the
smooth colours, plus the background mirrored across the silhouette near it for texture), and the person's
alpha is the hole feathered outwards. Outside the hole the plate is the crop itself, and the alpha only
falls below 1 there, so a frame whose map is the identity is exactly the crop.

Per frame: alpha is warped with the frame's backward map and the warped crop is blended over the plate, so
the background stays still and rigid and what a turning head uncovers shows the filled background.
"""

from __future__ import annotations

import cv2
import numba
import numpy as np

from talkface.imports import import_alone

# Segmentation score above which a pixel belongs to the person. Low: a part of the person the segmenter is
# unsure of (the astronaut's helmet rim scores 0.2) left in the still plate floats there as the head moves,
# while a little background taken into the person just moves with it.
PERSON_THRESHOLD = 0.15
GROW = 0.012  # the hole is the person grown by this (crop sides): the segmentation's soft edge and halo
FEATHER = 0.012  # alpha falls from 1 to 0 over this (crop sides) outside the hole
POCKET = 0.01  # background regions smaller than this (crop areas) count as person (gaps under a collar)
MIRROR_DEPTH = 0.12  # texture mirrored across the silhouette fades out this deep into the hole (crop sides)
MIRROR_TOLERANCE = 20.0  # RGB distance from the smooth fill up to which mirrored texture is used (gone at 2x)


def push_pull_fill(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill the pixels where valid is False smoothly from the valid ones: average down an image pyramid
    until every pixel is covered, then blend back up. image (H, W, C), valid (H, W) bool; returns
    (H, W, C) float32 (valid pixels keep their values up to the blend at the hole's edge)."""
    levels = []
    colour = image.astype(np.float32) * valid[..., None]
    weight = valid.astype(np.float32)
    while True:
        levels.append((colour, weight))
        if weight.min() > 0 or min(weight.shape) <= 2:
            break
        colour, weight = cv2.pyrDown(colour), cv2.pyrDown(weight)
    colour, weight = levels[-1]
    fill = colour / np.maximum(weight, 1e-6)[..., None]
    for colour, weight in reversed(levels[:-1]):
        up = cv2.pyrUp(fill, dstsize=(weight.shape[1], weight.shape[0]))
        if up.ndim == 2:
            up = up[..., None]
        # Where a level has enough valid pixels its own average wins; elsewhere the coarser fill does.
        confidence = np.clip(4 * weight, 0, 1)[..., None]
        fill = colour / np.maximum(weight, 1e-6)[..., None] * confidence + up * (1 - confidence)
    return fill


def nearest_outside(hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scipy.ndimage.distance_transform_edt(hole, return_indices=True), the same to the bit, without
    importing scipy.ndimage (its array-API layers and scipy.special: 0.05-0.1 s of a job's start): the
    distance (H, W) float64 from each pixel of `hole` (H, W) bool to the nearest pixel outside it, and that
    pixel's (row, column) indices, shape (2, H, W) int32. scipy's own C feature transform, then its wrapper's
    steps (tests/test_render.py checks the two agree)."""
    try:
        transform = import_alone("scipy.ndimage._nd_image").euclidean_feature_transform
    except (ImportError, AttributeError):  # a scipy laid out otherwise: its public function
        from scipy import ndimage

        return ndimage.distance_transform_edt(hole, return_indices=True)
    indices = np.zeros((2, *hole.shape), np.int32)
    transform(np.where(hole, 1, 0).astype(np.int8), None, indices)
    d = (indices - np.indices(hole.shape, dtype=np.int32)).astype(np.float64)
    np.multiply(d, d, d)
    return np.sqrt(np.add.reduce(d, axis=0)), indices


def mirrored_fill(image: np.ndarray, hole: np.ndarray, depth: float) -> tuple[np.ndarray, np.ndarray]:
    """The background mirrored across the hole's edge: each hole pixel takes the pixel as far outside its
    nearest edge point as it is inside. image (H, W, C), hole (H, W) bool, depth in pixels. Returns the
    mirrored colours (H, W, C) float32 and their weight (H, W) float32: 1 at the edge, 0 from `depth` in,
    and 0 where the mirror image falls outside the crop or back into the hole."""
    h, w = hole.shape
    dist, (qy, qx) = nearest_outside(hole)
    ys, xs = np.mgrid[0:h, 0:w]
    my, mx = 2 * qy - ys, 2 * qx - xs
    inside = (mx >= 0) & (mx < w) & (my >= 0) & (my < h)
    my, mx = np.clip(my, 0, h - 1), np.clip(mx, 0, w - 1)
    usable = inside & ~hole[my, mx]
    weight = (usable * np.clip(1 - dist / max(depth, 1.0), 0, 1)).astype(np.float32)
    return image[my, mx].astype(np.float32), weight


@numba.njit(cache=True, nogil=True)
def _blend(image, plate, alpha):  # pragma: no cover - numba
    """image (H, W, 3) uint8 over plate (H, W, 3) uint8 by alpha (H, W) uint8 (255 = image), in place, in
    one pass without temporaries: opaque pixels are skipped, transparent ones copied from the plate."""
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            a = np.int32(alpha[y, x])
            if a == 255:
                continue
            if a == 0:
                for c in range(3):
                    image[y, x, c] = plate[y, x, c]
                continue
            for c in range(3):
                v = np.int32(plate[y, x, c]) * (255 - a) + np.int32(image[y, x, c]) * a + 128
                image[y, x, c] = np.uint8((v + (v >> 8)) >> 8)  # v / 255, rounded


class BackgroundLayers:
    """alpha: the person layer's opacity in the crop, (size, size) uint8 (255 = person). plate: the crop
    with the person removed and filled, (size, size, 3) uint8."""

    def __init__(self, image: np.ndarray, person: np.ndarray):
        size = image.shape[0]
        hard = (person > PERSON_THRESHOLD).astype(np.uint8)
        grow = max(1, round(GROW * size))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        hole = cv2.dilate(hard, kernel) > 0
        # Small pockets of background enclosed by the person move with it (and do not seed the fill).
        n, labels, stats, _ = cv2.connectedComponentsWithStats((~hole).astype(np.uint8), connectivity=4)
        small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < POCKET * size * size)
        small = small[small > 0]
        if len(small):
            hole |= np.isin(labels, small) & ~hole
        outside = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 3)
        alpha = np.clip(1 - outside / max(FEATHER * size, 1.0), 0, 1)
        self.alpha = np.round(alpha * 255).astype(np.uint8)
        if hole.all() or not hole.any():
            # Nothing to fill from, or no person: the plate is the crop and the warp alone moves pixels.
            self.plate = image.copy()
            self.alpha[...] = 255 if hole.all() else 0
        else:
            self.plate = _plate(image, hole, size)
        # The crop with the alpha as a fourth channel: one remap moves both (cv2 interpolates each channel
        # with the same weights, so it equals two remaps) for about the price of the crop's alone.
        self.source = np.dstack([image, self.alpha])

    def warp(self, map_xy: np.ndarray) -> np.ndarray:
        """The crop warped by a backward map (size, size, 2) float32 and blended over the plate: a new
        (size, size, 3) uint8 array: the crop and the person's alpha remapped alike, the crop blended over the
        plate by that alpha."""
        moved = cv2.remap(self.source, map_xy, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        image = cv2.cvtColor(moved, cv2.COLOR_RGBA2RGB)  # a channel copy, not a colour conversion
        _blend(image, self.plate, moved[..., 3])
        return image


def _plate(image: np.ndarray, hole: np.ndarray, size: int) -> np.ndarray:
    """The crop (size, size, 3) uint8 with the hole (size, size) bool filled from the background around it."""
    smooth = push_pull_fill(image, ~hole)
    mirror, weight = mirrored_fill(image, hole, MIRROR_DEPTH * size)
    # Texture only: a mirrored pixel far from the smooth fill's colour is a structure that touched the
    # silhouette (a helmet rim, a chair edge the segmentation left out) and would paint a copy of it
    # into the hole.
    far = np.linalg.norm(mirror - smooth, axis=2)
    weight *= np.clip(1 - (far - MIRROR_TOLERANCE) / MIRROR_TOLERANCE, 0, 1)
    # Blur the weight: the mirror's usable region has ragged edges where it hits the hole again.
    weight = cv2.GaussianBlur(weight, (0, 0), max(1.0, 0.006 * size))[..., None]
    fill = mirror * weight + smooth * (1 - weight)
    return np.where(hole[..., None], np.clip(fill, 0, 255), image).astype(np.uint8)
