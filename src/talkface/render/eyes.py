"""Eyes: the irises move inside the eyes, clipped by the lids, with the sclera filled where they were; the
upper lids follow the vertical gaze; a portrait caught mid-blink gets open eyes.

Once per rig, each eye gets a sclera-only image (the iris disc painted over with the eye's own sclera
colour, and a margin of sclera round the opening for lids that rise) and an iris layer (the disc's pixels
with a soft alpha; where the lids hide the disc, its own median colour). Per frame, the eye's pixels
(labelled by the warp, so a blinking lid already covers its part) are repainted in the eye's rigid frame:
sclera, then the iris shifted by the gaze.

Closed eyes (a lid gap under CLOSED_LID_GAP of the eye's width, from the face mesh's lids) are opened: the
warp's rest shape gets the lids apart (its blink direction for that eye, run backwards, so the lid skin
moves as it does in real blinks), the eye's blink becomes the way back to the portrait's own closed lids,
and the eyeball between the lids is synthesized: sclera in the face's light, a dark iris in the skin's colour
cast with a pupil and a catch light, and the lids' shadow.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from talkface.face import topology as T
from talkface.face.expression import BLINK_LEFT, BLINK_RIGHT, EYEBALL_RADIUS, LID_FOLLOW
from talkface.face.learned_basis import LEFT_LID_PAIRS, RIGHT_LID_PAIRS
from talkface.face.rig import FaceRig
from talkface.render.warp import EYE_LEFT, EYE_RIGHT, SKIN, MeshWarp, WarpResult

log = logging.getLogger(__name__)

MIN_SHIFT_PX = 0.05  # below this the eye is left exactly as the portrait has it
# Lid gap over eye width (corner to corner). The face mesh reports 0.02-0.13 for real closed eyes (blinks in
# the talking clips of ../shared/data) and 0.17-0.4 for open ones, narrowed and squinting eyes included.
CLOSED_LID_GAP = 0.15  # both eyes' mean gap under this: the portrait's eyes are closed
SHUT_LID_GAP = 0.08  # one eye's gap under this: that eye is closed whatever the other does (a wink)
OPEN_LID_GAP = 0.30  # the gap an opened eye gets (open eyes in the talking clips: 0.26-0.37)
MIN_EYE_PX = 6.0  # eyes narrower than this in the crop are left closed: too few pixels to draw an eye
IRIS_RADIUS = 0.21  # radius of a synthesized iris, eye widths (real irises: 0.19-0.22)
IRIS_COLOUR = np.array([74.0, 52.0, 36.0])  # dark brown, the commonest iris, in a face of mean lightness
PUPIL = 0.42  # pupil radius, iris radii
LID_SHADOW = 0.05  # the upper lid's shadow and lashes darken a synthesized eye this far down, eye widths
# The strip under an opened eye's lower lid cleared of the closed lid's lashes, eye widths.
MARGIN = 0.12
SOFTNESS = 0.03  # blur of a synthesized eye's drawing and edges (Gaussian sigma), eye widths
_EYES = (  # label, contour, iris points, lid pairs (upper, lower), blink coefficient
    (EYE_RIGHT, T.RIGHT_EYE, T.RIGHT_IRIS, RIGHT_LID_PAIRS, BLINK_RIGHT),
    (EYE_LEFT, T.LEFT_EYE, T.LEFT_IRIS, LEFT_LID_PAIRS, BLINK_LEFT),
)


def _corners(contour: list[int]) -> list[int]:
    return [contour[0], contour[len(contour) // 2]]


def lid_gaps(points: np.ndarray) -> np.ndarray:
    """Each eye's lid gap (right, left) in eye widths (corner to corner): the mean distance of three upper
    and lower lid points across the eye's middle. points: landmarks (478, >=2), crop pixels. Shape (2,)."""
    out = []
    for _, contour, _, pairs, _ in _EYES:
        a, b = _corners(contour)
        width = max(float(np.linalg.norm(points[a, :2] - points[b, :2])), 1e-6)
        up, lo = [u for u, _ in pairs], [v for _, v in pairs]
        out.append(float(np.linalg.norm(points[lo, :2] - points[up, :2], axis=1).mean()) / width)
    return np.array(out)


def closed_eyes(points: np.ndarray) -> tuple[bool, bool]:
    """Whether each eye (right, left) of a portrait is closed, from its landmarks (478, >=2)."""
    gaps = lid_gaps(points)
    both = bool(gaps.mean() < CLOSED_LID_GAP)
    return both or bool(gaps[0] < SHUT_LID_GAP), both or bool(gaps[1] < SHUT_LID_GAP)


def _open_lids(warp: MeshWarp, contour: list[int], pairs, blink: int) -> np.ndarray | None:
    """Displacement (478, 3) that opens a closed eye of warp's rest shape to OPEN_LID_GAP: the warp's blink
    direction for it, reversed and scaled; its corners stay (they anchor the eyeball and the skull). None
    when the direction does not move the lids (a portrait whose lids touch gets none from calibration)."""
    p = warp.neutral
    d = warp.basis[blink].astype(np.float64)  # a copy
    d[_corners(contour)] = 0.0
    d[T.N_MESH :] = 0.0
    up, lo = [u for u, _ in pairs], [v for _, v in pairs]

    def gap(q: np.ndarray) -> float:
        return float(np.mean(q[lo, 1] - q[up, 1]))

    a, b = _corners(contour)
    width = float(np.linalg.norm(p[a, :2] - p[b, :2]))
    closing = gap(p) - gap(p + d)  # px per unit blink
    if closing < 1e-4 * width:
        return None
    return -d * max(OPEN_LID_GAP * width - gap(p), 0.0) / closing


def _eye_colours(rig: FaceRig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sclera, iris, pupil and catch-light colours (RGB float, each (3,)) for eyes the portrait does not
    show: in the face's lightness and colour cast (the mean colour inside the face oval), so a painting or
    a bronze gets eyes of its own palette."""
    mask = np.zeros(rig.image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(rig.points[T.FACE_OVAL, :2]).astype(np.int32)], 1)
    skin = rig.image[mask > 0].astype(np.float32)
    mean = skin.mean(0) if len(skin) else np.array([150.0, 120.0, 110.0])
    lum = float(mean.mean())
    cast = (mean / max(lum, 1.0)) ** 0.25
    light = float(np.clip(lum / 150.0, 0.55, 1.25))
    # Sclera: about as light as the skin (it sits in the lids' shadow), less saturated but warm like it.
    sclera = np.clip(1.15 * (0.35 * lum + 0.65 * mean), 0, 235)
    iris = IRIS_COLOUR * cast * light
    return sclera, iris, 0.25 * iris, np.clip(np.full(3, 250.0) * cast * min(light, 1.0), 0, 255)


def _coverage(distance_px: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of a pixel whose centre lies distance_px inside an edge (negative: outside)."""
    return np.clip(distance_px + 0.5, 0.0, 1.0)


def _lid_shade(mask: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Shading (H, W) in 0..1 of a synthesized eye whose visible pixels are mask (H, W) bool, for an eye
    `width` pixels wide: inside, dark under the upper lid (its shadow) and a little over the lower one;
    outside, the upper lid's margin (lashes) darkened just above the opening, less towards the corners.
    Measured from the lids as they are in this frame, so both follow a blink. Returns (inside, margin)."""
    rows = np.arange(mask.shape[0], dtype=np.float32)[:, None]
    top = np.argmax(mask, axis=0)[None, :].astype(np.float32)
    bottom = (mask.shape[0] - 1 - np.argmax(mask[::-1], axis=0))[None, :].astype(np.float32)
    below_upper = np.maximum(rows - top + 0.5, 0.0)
    above_lower = np.maximum(bottom - rows + 0.5, 0.0)
    upper = 1 - 0.45 * np.exp(-below_upper / max(LID_SHADOW * width, 0.5))
    lower = 1 - 0.25 * np.exp(-above_lower / max(0.05 * width, 0.5))
    height = mask.sum(0)[None, :].astype(np.float32)
    taper = np.sqrt(height / max(float(height.max()), 1.0))
    above = top - rows - 0.5  # pixels above the upper lid's edge
    lashes = np.where(above > -0.5, 0.45 * taper * np.exp(-np.maximum(above, 0) / max(0.04 * width, 0.6)), 0)
    return upper * lower, 1 - lashes * (height > 0)


def _clear_lower_margin(skin: np.ndarray, mask: np.ndarray, width: float) -> np.ndarray:
    """skin (H, W, 3) float with the strip just under an opened eye's lower lid (mask (H, W) bool: the eye)
    blended towards the skin a little further down. A closed portrait's lash line lies on the lids' meeting
    line; opened, its lower half would ring the eye's bottom like a drawn outline."""
    h = mask.shape[0]
    reach = max(MARGIN * width, 1.5)
    bottom = h - 1 - np.argmax(mask[::-1], axis=0)  # (W,)
    cols = np.arange(mask.shape[1])
    ref = skin[np.clip(bottom + int(np.ceil(reach)) + 1, 0, h - 1), cols]  # (W, 3)
    below = np.arange(h, dtype=np.float32)[:, None] - bottom[None, :]
    height = mask.sum(0).astype(np.float32)
    weight = 0.85 * np.clip(1 - (below - 0.5) / reach, 0, 1) * (below > 0) * (height > 0)
    weight = (weight * np.sqrt(height / max(float(height.max()), 1.0)))[..., None]
    return skin * (1 - weight) + ref[None, :, :] * weight


class Eyes:
    """Per-eye layers built from the portrait; lids() couples the lids to the gaze, paint() moves the irises
    of one frame (and draws the eyes it synthesized)."""

    def __init__(self, rig: FaceRig, warp: MeshWarp | None = None):
        """warp: the renderer's warp. With it, the portrait's closed eyes are opened in it (its rest shape
        `neutral` and those eyes' blink directions in `basis` change; see the module docstring) and the
        lids follow the gaze; without it the eyes stay as the portrait has them."""
        p = rig.points
        img = rig.image.astype(np.float32)
        self.image = img  # the iris layer's colours
        self.sclera = img.copy()
        self.iris_alpha = np.zeros(img.shape[:2], np.float32)
        self.eye_width: dict[int, float] = {}
        self.synthetic: dict[int, bool] = {}  # eyes drawn here, not taken from the portrait
        self.lid_travel: dict[int, float] = {}  # the upper lid's drop per unit blink, crop pixels
        self.gap_px: dict[int, tuple[float, float]] = {}  # synthesized eyes: lid gap (portrait's, opened), px
        closed = closed_eyes(p) if warp is not None else (False, False)
        gaps = lid_gaps(p)
        colours = _eye_colours(rig) if any(closed) else None
        for (label, contour, iris, pairs, blink), shut, gap in zip(_EYES, closed, gaps, strict=True):
            a, b = _corners(contour)
            width = float(np.linalg.norm(p[a, :2] - p[b, :2]))
            self.eye_width[label] = width
            field = None
            if shut:
                field = _open_lids(warp, contour, pairs, blink) if width >= MIN_EYE_PX else None
                side = "right" if label == EYE_RIGHT else "left"
                if field is None:
                    log.warning(
                        "the portrait's %s eye is closed (lid gap %.2f of its width) and %s: it stays closed",
                        side,
                        gap,
                        f"too small to open ({width:.1f} px)" if width < MIN_EYE_PX else "cannot be opened",
                    )
                else:
                    log.info(
                        "the portrait's %s eye is closed (lid gap %.2f): opened, eyeball synthesized",
                        side,
                        gap,
                    )
                    warp.neutral = warp.neutral + field
                    warp.basis[blink] = -field
            self.synthetic[label] = field is not None
            if field is not None:
                self.gap_px[label] = (gap * width, OPEN_LID_GAP * width)
                self._synthetic_eye(warp.neutral, contour, pairs, width, colours)
            else:
                self._portrait_eye(p, contour, iris, width)
            up_mid = pairs[1][0]
            self.lid_travel[label] = float(warp.basis[blink][up_mid, 1]) if warp is not None else 0.0

    def _portrait_eye(self, p: np.ndarray, contour: list[int], iris: list[int], width: float) -> None:
        """Layers of an eye the portrait shows: its iris disc (landmarks p (478, 3)) cut out of the sclera."""
        img = self.image
        h, w = img.shape[:2]
        opening = np.zeros((h, w), np.uint8)
        cv2.fillPoly(opening, [np.round(p[contour, :2] * 4).astype(np.int32)], 255, cv2.LINE_AA, shift=2)
        centre = p[iris[0], :2]
        radius = float(np.linalg.norm(p[iris[1:], :2] - centre, axis=1).mean())
        disc = np.zeros((h, w), np.uint8)
        cv2.circle(disc, tuple(np.round(centre * 4).astype(int)), int(round(radius * 1.1 * 4)), 255, -1,
                   cv2.LINE_AA, shift=2)  # fmt: skip
        in_eye = opening.astype(np.float32) / 255
        # The iris where the lids hide it (a look down or a lid that rises can uncover it): its own median
        # colour, a shade darker, so the disc stays whole instead of showing sclera above it.
        seen = (in_eye > 0.5) & (disc > 127)
        hidden = (in_eye <= 0.5) & (disc > 0)
        if seen.sum() >= 4:
            img[hidden] = 0.85 * np.median(img[seen], axis=0)
            iris_a = cv2.GaussianBlur(disc.astype(np.float32) / 255, (3, 3), 0.6)
        else:
            iris_a = cv2.GaussianBlur(disc.astype(np.float32) / 255, (3, 3), 0.6) * in_eye
        self.iris_alpha = np.maximum(self.iris_alpha, iris_a)
        # Sclera colour: the brighter half of the visible eye outside the iris.
        outside = (in_eye > 0.5) & (disc == 0)
        pixels = img[outside]
        if len(pixels) >= 4:
            bright = pixels[pixels.sum(1) >= np.median(pixels.sum(1))]
            colour = np.median(bright, axis=0)
        else:
            colour = np.array([225.0, 220.0, 215.0])
        # Filled: behind the iris, and in a margin round the opening that a rising upper lid uncovers.
        reach = max(3, int(round(0.25 * width)))
        margin = cv2.dilate(opening, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
        fill = np.maximum(
            cv2.GaussianBlur((disc > 0).astype(np.float32), (5, 5), 1.0), margin & (in_eye < 0.5)
        )[..., None]
        # Slightly darker at the top (the lid's shadow), as real sclera is.
        ys = np.arange(h, dtype=np.float32)[:, None, None]
        shade = np.clip(0.85 + 0.15 * (ys - (centre[1] - radius)) / max(2 * radius, 1.0), 0.85, 1.0)
        self.sclera = self.sclera * (1 - fill) + (colour * shade) * fill

    def _synthetic_eye(self, q: np.ndarray, contour: list[int], pairs, width: float, colours) -> None:
        """Layers of an eye drawn from nothing, between the opened lids of the rest shape q (478, 3): sclera
        darker towards the corners; an iris with a darker rim, fibres, a pupil and a catch light."""
        sclera_c, iris_c, pupil_c, glint_c = colours
        h, w = self.image.shape[:2]
        a, b = _corners(contour)
        cx = float(q[[a, b], 0].mean())
        y_lo = float(q[pairs[1][1], 1])
        r = IRIS_RADIUS * width
        cy = y_lo + 0.04 * width - r  # the lower lid just covers the iris's rim; the upper lid more of it
        x0, x1 = int(np.floor(cx - width)), int(np.ceil(cx + width)) + 1
        y0, y1 = int(np.floor(cy - r - 0.6 * width)), int(np.ceil(y_lo + 0.6 * width)) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            return
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        u = (xx - cx) / (width / 2)
        # The eyeball turns away towards the corners: less light there.
        self.sclera[y0:y1, x0:x1] = sclera_c * np.clip(1 - 0.2 * u**2, 0.6, 1.0)[..., None]
        dist = np.hypot(xx - cx, yy - cy)
        rn = dist / r
        angle = np.arctan2(yy - cy, xx - cx)
        fibres = 1 + 0.08 * np.sin(23 * angle + 2.5 * np.sin(5 * angle)) + 0.05 * np.sin(41 * angle + 1.3)
        rim = 1 - 0.45 * np.clip((rn - 0.75) / 0.25, 0, 1) ** 2
        colour = iris_c * (np.clip(1.15 - 0.35 * rn, 0.7, 1.15) * fibres * rim)[..., None]
        pupil = _coverage(PUPIL * r - dist)[..., None]
        colour = colour * (1 - pupil) + pupil_c * pupil
        # As soft as a real eye at this size: no pixel-sharp drawing in a photograph's blur.
        soft = max(SOFTNESS * width, 0.5)
        colour = cv2.GaussianBlur(colour.astype(np.float32), (0, 0), soft)
        # Catch light: the same side in both eyes (one light), up and to the viewer's right of the pupil.
        glint_d = np.hypot(xx - (cx + 0.3 * r), yy - (cy - 0.35 * r))
        glint = (0.9 * np.exp(-0.5 * (glint_d / max(0.14 * r, 0.6)) ** 2))[..., None]
        self.image[y0:y1, x0:x1] = colour * (1 - glint) + glint_c * glint
        alpha = cv2.GaussianBlur(_coverage(r - dist).astype(np.float32), (0, 0), soft)
        self.iris_alpha[y0:y1, x0:x1] = np.maximum(self.iris_alpha[y0:y1, x0:x1], alpha)

    def lids(self, expression: np.ndarray, gaze: np.ndarray) -> np.ndarray:
        """expression (K,) with the upper lids following the vertical gaze (degrees, pitch > 0: down): each
        eye's blink raised by LID_FOLLOW of the iris's drop looking down, lowered by a little looking up. A
        new array when changed; a full blink is never pushed past 1."""
        pitch = float(gaze[1])
        if abs(pitch) < 1e-3:
            return expression
        out = np.array(expression, copy=True)
        for label, _, _, _, blink in _EYES:
            travel = self.lid_travel.get(label, 0.0)
            if travel < 0.5:  # no blink direction to move the lid with
                continue
            dy = EYEBALL_RADIUS * self.eye_width[label] * np.sin(np.radians(pitch))
            follow = LID_FOLLOW[1] if dy > 0 else LID_FOLLOW[0]
            out[blink] = min(out[blink] + follow * dy / travel, max(float(expression[blink]), 1.0))
        return out

    def paint(self, frame: WarpResult, gaze: np.ndarray) -> None:
        """Move both irises by gaze = (yaw, pitch) degrees (yaw > 0: viewer's right, pitch > 0: down)."""
        yaw, pitch = float(gaze[0]), float(gaze[1])
        for label in (EYE_RIGHT, EYE_LEFT):
            r = EYEBALL_RADIUS * self.eye_width[label]
            dx, dy = r * np.sin(np.radians(yaw)), r * np.sin(np.radians(pitch))
            synthetic = self.synthetic.get(label, False)
            if abs(dx) < MIN_SHIFT_PX and abs(dy) < MIN_SHIFT_PX and not synthetic:
                continue
            x0, y0, x1, y1 = frame.boxes[label]
            if synthetic:  # room for the lashes above and the cleared margin below
                grow = int(np.ceil(2 * MARGIN * self.eye_width[label])) + 1
                y0, y1 = max(y0 - grow, 0), min(y1 + grow, frame.image.shape[0])
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            mask = frame.label[y0:y1, x0:x1] == label
            if not mask.any():
                continue
            sx = frame.map_xy[y0:y1, x0:x1, 0]
            sy = frame.map_xy[y0:y1, x0:x1, 1]
            base = cv2.remap(self.sclera, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            # The iris sampled where it came from: a point now at s was at s - shift.
            ix, iy = sx - np.float32(dx), sy - np.float32(dy)
            iris = cv2.remap(self.image, ix, iy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            a = cv2.remap(self.iris_alpha, ix, iy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[
                ..., None
            ]
            eye = iris * a + base * (1 - a)
            region = frame.image[y0:y1, x0:x1]
            m = mask[..., None]
            if not synthetic:
                region[...] = np.where(m, np.clip(eye, 0, 255).astype(np.uint8), region)
                continue
            # A drawn eye: shaded by the lids, its edge soft, the lid margin above it darkened (lashes).
            inside, lashes = _lid_shade(mask, self.eye_width[label])
            soft = max(SOFTNESS * self.eye_width[label], 0.6)
            a = (cv2.GaussianBlur(mask.astype(np.float32), (0, 0), soft) * mask)[..., None]
            lid_skin = (~mask & (frame.label[y0:y1, x0:x1] == SKIN))[..., None]
            skin = region.astype(np.float32) * np.where(lid_skin, lashes[..., None], 1.0)
            skin = _clear_lower_margin(skin, mask, self.eye_width[label])
            # The edge fades into the lids' own colour (spread in from around the eye), not into what the
            # portrait has under the opened lids (its closed lid's lash line).
            out = (~mask).astype(np.float32)
            sigma = max(0.15 * self.eye_width[label], 1.0)
            lid = cv2.GaussianBlur(skin.astype(np.float32) * out[..., None], (0, 0), sigma)
            lid /= np.maximum(cv2.GaussianBlur(out, (0, 0), sigma), 1e-3)[..., None]
            under = np.where(m, lid, skin)
            drawn = eye * inside[..., None] * a + under * (1 - a)
            # Fully drawn once the lids are well apart; as they close, back to the portrait's own closed
            # lids (a gap as narrow as the portrait's shows its lid and lashes, not a sliver of eyeball).
            closed_px, open_px = self.gap_px[label]
            now = float(mask.sum(0).max())
            fade = np.clip((now - 1.1 * closed_px) / max(0.5 * (open_px - closed_px), 1.0), 0.0, 1.0)
            fade = fade * fade * (3 - 2 * fade)
            region[...] = np.clip(region + fade * (drawn - region), 0, 255).astype(np.uint8)
