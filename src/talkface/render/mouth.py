"""The inside of the mouth: dark cavity, upper teeth fixed to the skull, lower teeth riding on the jaw,
a tongue low in the mouth. Painted in the skull's frame (the warp's source coordinates), so the teeth
move rigidly with the head; shaded and colour-matched to the portrait."""

from __future__ import annotations

import cv2
import numpy as np

from talkface.face import topology as T
from talkface.face.rig import FaceRig
from talkface.render.warp import MOUTH, WarpResult

TOOTH_EDGES = np.array(
    [0.0, 0.17, 0.32, 0.45, 0.56, 0.66, 0.75, 0.83]
)  # |u| of tooth borders (incisor first)
UPPER_TEETH = 0.12  # visible height of the upper incisors, in mouth widths
# Lower incisors: in speech the lower lip covers all but their biting edges, this high at most (mouth widths).
LOWER_TEETH = 0.055
LOWER_SPAN = 0.56  # the lower teeth show out to this |u| (the canines); further round the lip hides them
LOWER_SHOW = (0.15, 0.45)  # lip gap (mouth widths) over which the lower edges rise into view
LOWER_NARROW = 1.35  # lower incisors are this much narrower than the upper ones
CAVITY = np.array([62.0, 24.0, 28.0])
TEETH = np.array([232.0, 226.0, 212.0])
TONGUE = np.array([168.0, 78.0, 82.0])
SKIN_CHROMA = 0.08  # (max - min) / 255 of the skin's RGB, median over the face: a colour portrait's, at least
# Teeth in shadow turn warmer, not grey: light inside the mouth is what the lips and gums reflect.
SHADOW_TINT = np.array([0.10, 0.0, -0.08])
# Per tooth (8 per side, incisor first): brightness and length, so a row is not a comb of copies. Fixed
# numbers (not random per run) so the same portrait always gets the same teeth.
TOOTH_TONE = np.array(
    [1.0, 0.97, 0.93, 0.9, 0.86, 0.83, 0.8, 0.78, 0.99, 0.96, 0.94, 0.89, 0.87, 0.82, 0.8, 0.78]
)
TOOTH_LENGTH = np.array(
    [1.0, 0.9, 0.96, 0.85, 0.8, 0.76, 0.72, 0.7, 0.98, 0.92, 0.94, 0.86, 0.8, 0.75, 0.72, 0.7]
)


def _tooth_row(
    u: np.ndarray, w: float, narrow: float = 1.0, rounding: float = 0.45
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Teeth across the mouth at u (-1 right corner, 0 centre, 1 left corner), for a mouth w pixels wide and
    teeth `narrow` times narrower than the upper incisors. Returns, shaped like u: the length factor of the
    tooth at u (its biting edge's corners rounded off by up to `rounding` of its length, times its own
    length), its tone (TOOTH_TONE), the distance to the nearest gap between teeth and the tooth's width,
    both in pixels."""
    au = np.minimum(np.abs(u) * narrow, TOOTH_EDGES[-1] - 1e-6)
    k = np.searchsorted(TOOTH_EDGES, au, side="right") - 1
    lo_e, hi_e = TOOTH_EDGES[k], TOOTH_EDGES[k + 1]
    tooth_px = (hi_e - lo_e) * w / (2 * narrow)
    gap_px = np.minimum(au - lo_e, hi_e - au) / (hi_e - lo_e) * tooth_px
    # Biting edge: flat in the middle of the tooth, rounded over a quarter of its width at each side.
    r = np.clip(gap_px / np.maximum(0.25 * tooth_px, 1e-6), 0, 1)
    corner = 1 - rounding * (1 - np.sqrt(1 - (1 - r) ** 2))
    tooth = k + 8 * (u > 0)
    return corner * TOOTH_LENGTH[tooth], TOOTH_TONE[tooth], gap_px, tooth_px


def _seam(gap_px: np.ndarray, tooth_px: np.ndarray, depth: np.ndarray | float) -> np.ndarray:
    """Shading factor (shaped like gap_px) of the gap between neighbouring teeth: 1 - depth at its middle,
    a tenth of a tooth wide (at least 0.7 px). Teeth only a few pixels wide lose their gaps: a one-pixel
    dark line every three pixels reads as a comb, not as teeth."""
    width = np.maximum(0.7, 0.1 * tooth_px)
    visible = np.clip((tooth_px - 2.0) / 4.0, 0.0, 1.0)
    return 1 - depth * visible * np.exp(-((gap_px / width) ** 2))


def _lip_curve(lip: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Height of an inner lip line (points (N, 2) sorted by x) at x: a smooth quartic through the points
    (the piecewise-linear line put creases into the shading at every point), flat beyond its ends."""
    span = max(float(lip[-1, 0] - lip[0, 0]), 1e-6)
    t = (lip[:, 0] - lip[0, 0]) / span
    coef = np.polyfit(t, lip[:, 1], min(4, len(lip) - 1))
    return np.polyval(coef, np.clip((x - lip[0, 0]) / span, 0, 1))


def _coverage(distance_px: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of a pixel whose centre lies distance_px inside an edge (negative: outside)."""
    return np.clip(distance_px + 0.5, 0.0, 1.0)


def _sampled(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """cv2.remap (bilinear, zero outside) of image (H, W) or (H, W, C) at the points xs, ys (N,) float32:
    shape (N,) or (N, C). OpenCV's maps are 2-D and shorter than 32767, so the points go as (n, 1) maps."""
    step = 32000
    parts = [
        cv2.remap(image, xs[i : i + step, None], ys[i : i + step, None], cv2.INTER_LINEAR)[:, 0]
        for i in range(0, len(xs), step)
    ]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _own_teeth_colour(image: np.ndarray, opening: np.ndarray) -> np.ndarray | None:
    """The portrait's own teeth colour (RGB float, shape (3,)) from the bright, unsaturated pixels inside its
    mouth opening (opening: (H, W) float weights), or None when it shows no teeth."""
    pixels = image[opening > 0.6].astype(np.float32)
    if len(pixels) < 12:
        return None
    value = pixels.max(1)
    saturation = (value - pixels.min(1)) / np.maximum(value, 1.0)
    teeth = pixels[(value >= np.percentile(value, 60)) & (saturation < 0.35) & (value > 90)]
    if len(teeth) < 8:
        return None
    return np.median(teeth, axis=0)


class MouthInterior:
    """Colours and sizes taken once from the portrait; paint() fills one frame's mouth."""

    def __init__(self, rig: FaceRig):
        p = rig.points
        self.width = float(np.linalg.norm(p[308, :2] - p[78, :2]))
        self.centre_x = float(p[T.INNER_LIP, 0].mean())
        # Colour match: the face's brightness and colour cast (mean colour inside the face oval).
        mask = np.zeros(rig.image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(p[T.FACE_OVAL, :2]).astype(np.int32)], 1)
        skin = rig.image[mask > 0].astype(np.float32)
        mean = skin.mean(0) if len(skin) else np.array([150.0, 120.0, 110.0])
        lum = float(mean.mean())
        cast = (mean / max(lum, 1.0)) ** 0.25
        light = float(np.clip(lum / 150.0, 0.55, 1.25))
        # A black-and-white portrait (a pencil drawing, an old photo) gets a grey mouth: the synthetic colours
        # keep as much of their chroma as the skin has, up to SKIN_CHROMA (any colour photo's skin).
        chroma = skin.max(1) - skin.min(1) if len(skin) else np.array([SKIN_CHROMA * 255.0])
        self.chroma = float(np.clip(np.median(chroma) / (SKIN_CHROMA * 255.0), 0.0, 1.0))
        self.cavity = self._tinted(CAVITY * cast * light)
        self.tongue = self._tinted(TONGUE * cast * light)
        # Where the portrait's own mouth is open (teeth or cavity shown), keep its pixels: a soft mask of the
        # neutral mouth opening, in source coordinates, shrunk so the lip edge itself does not count.
        hole = np.zeros(rig.image.shape[:2], np.uint8)
        cv2.fillPoly(hole, [np.round(p[T.INNER_LIP, :2] * 4).astype(np.int32)], 255, cv2.LINE_AA, shift=2)
        hole = cv2.erode(hole, np.ones((3, 3), np.uint8))
        self.own_mouth = cv2.GaussianBlur(hole.astype(np.float32) / 255.0, (5, 5), 1.0)
        # Teeth: the portrait's own teeth colour when it shows them (brightest and most ivory at the front
        # incisors, hence raised a little), else ivory in the face's light and colour cast.
        own = _own_teeth_colour(rig.image, self.own_mouth)
        synthetic = self._tinted(np.clip(TEETH * cast * min(light, 1.05), 0, 255))
        self.teeth = synthetic if own is None else np.clip(own * 1.05, 0.75 * synthetic, 255)
        self.teeth_from_portrait = own is not None
        # Where the portrait shows its upper teeth, a lip that lifts uncovers more of the same teeth: the
        # top edge of its opening per source column (NaN where it has none), whose teeth are continued up.
        shown = self.own_mouth > 0.6
        self.own_top = np.where(shown.any(0), np.argmax(shown, axis=0), np.nan).astype(np.float32)
        self.image = rig.image

    def _shaded_teeth(self, shade: np.ndarray) -> np.ndarray:
        """Teeth colour under shading (...,) in 0..1, shape (..., 3): darker and warmer in shadow."""
        dark = (1 - shade)[..., None]
        return self.teeth * shade[..., None] * (1 + SHADOW_TINT * dark)

    def _tinted(self, colour: np.ndarray) -> np.ndarray:
        """An RGB colour with its chroma (its difference from its grey) scaled by the portrait's."""
        grey = colour.mean()
        return grey + (colour - grey) * self.chroma

    def paint(self, frame: WarpResult) -> None:
        """Composite the interior into frame.image where frame.label is MOUTH (soft-edged), in place."""
        x0, y0, x1, y1 = frame.boxes[MOUTH]
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        label = frame.label[y0:y1, x0:x1]
        if not (label == MOUTH).any():
            return
        alpha = cv2.GaussianBlur((label == MOUTH).astype(np.float32), (3, 3), 0.7)
        if alpha.max() <= 0.01:
            return
        # Only the pixels the interior reaches change (elsewhere the blend keeps the warped pixel): all
        # that follows works on those, as flat arrays (N,) and colours (N, 3).
        reached = alpha > 0
        alpha = alpha[reached]
        sx = frame.map_xy[y0:y1, x0:x1, 0][reached]
        sy = frame.map_xy[y0:y1, x0:x1, 1][reached]
        w = self.width
        up = frame.upper_lip[np.argsort(frame.upper_lip[:, 0])]
        lo = frame.lower_lip[np.argsort(frame.lower_lip[:, 0])]
        y_up = _lip_curve(up, sx)
        y_lo = _lip_curve(lo, sx)
        gap = np.maximum(y_lo - y_up, 0.0)
        u = (sx - self.centre_x) / (w / 2)
        au = np.abs(u)
        t_up = sy - y_up  # below the upper lip, px
        t_lo = y_lo - sy  # above the lower lip, px

        # Cavity: darker deeper in (away from both lips) and at the back of the throat (centre).
        depth = np.clip(np.minimum(t_up, t_lo) / (0.2 * w), 0, 1)
        colour = self.cavity * (1.0 - 0.55 * depth * (1 - 0.5 * au))[..., None]
        # Tongue: low in the mouth, seen only when it is open enough.
        tongue = np.clip((0.30 * w - t_lo) / (0.1 * w), 0, 1) * np.clip((gap - 0.12 * w) / (0.15 * w), 0, 1)
        tongue *= np.clip(1 - au / 0.8, 0, 1)
        tongue_col = self.tongue * (0.6 + 0.4 * (1 - depth))[..., None]
        colour = colour * (1 - tongue[..., None]) + tongue_col * tongue[..., None]
        # Teeth: a row of individual teeth following the arch, each with its own length and tone, rounded
        # biting edges, anti-aliased outlines and thin gaps that darken towards the biting edge (the
        # embrasures), shaded darker round the arch and in the lips' shadow.
        arch = 1 - 0.5 * au**2
        opening = np.clip(gap / (0.18 * w), 0.35, 1.0)  # a narrow gap lets little light onto the teeth
        length_up, tone_up, gap_up, tooth_up = _tooth_row(u, w)
        h_up = UPPER_TEETH * w * length_up * (1 - 0.3 * au**2)
        upper = _coverage(h_up - t_up) * _coverage(t_up + 1.0) * _coverage((TOOTH_EDGES[-1] - au) * w / 2)
        tip_up = np.clip(t_up / np.maximum(h_up, 1e-6), 0, 1)  # 0 at the lip, 1 at the biting edge
        # Gaps: the gum fills them near the lip; they open towards the biting edge (the embrasures).
        seam_up = _seam(gap_up, tooth_up, 0.1 + 0.5 * tip_up)
        under_lip = np.clip(0.72 + t_up / (0.05 * w) * 0.28, 0.72, 1.0)
        shade_up = arch * opening * tone_up * seam_up * under_lip
        # The lower teeth hide behind the lower lip; as the jaw drops, only their biting edges rise into
        # view, as a light band in the upper teeth's colour that sinks under the lip towards the canines.
        # Lower incisors are flat-topped and packed tight: an even edge, faint gaps, a gentle tone change
        # from tooth to tooth, a little darker down towards the lip.
        length_lo, tone_lo, gap_lo, tooth_lo = _tooth_row(u, w, LOWER_NARROW, rounding=0.15)
        show_lo = np.clip((gap / w - LOWER_SHOW[0]) / (LOWER_SHOW[1] - LOWER_SHOW[0]), 0, 1)
        sink = np.sqrt(np.clip(1 - (au / LOWER_SPAN) ** 4, 0, 1))
        h_lo = LOWER_TEETH * w * (show_lo * show_lo * (3 - 2 * show_lo)) * (0.8 + 0.2 * length_lo) * sink
        lower = _coverage(h_lo - t_lo) * _coverage(t_lo + 1.0) * np.clip(h_lo, 0, 1)
        tip_lo = np.clip(t_lo / np.maximum(h_lo, 1e-6), 0, 1)  # 0 at the lip, 1 at the biting edge
        seam_lo = _seam(gap_lo, tooth_lo, 0.04 + 0.12 * tip_lo)
        shade_lo = arch * opening * np.sqrt(tone_lo) * seam_lo * (0.82 + 0.15 * tip_lo)
        colour = colour + (self._shaded_teeth(shade_lo) - colour) * lower[..., None]
        teeth_up = self._shaded_teeth(shade_up)
        if self.teeth_from_portrait:
            # Above the portrait's own teeth: those teeth continued up (their gaps line up with the real
            # ones), in the lip's shadow, instead of a second, synthetic row.
            top = self.own_top[np.clip(np.round(sx).astype(np.int64), 0, len(self.own_top) - 1)]
            above = np.isfinite(top) & (sy < top)
            if above.any():
                # Sampled a little below the opening's edge (the lip's own shadow is there), over a few
                # rows so that one dark speck does not become a streak.
                continued = np.zeros((*sx.shape, 3), np.float32)
                for k in range(3):
                    ys = np.where(above, top + max(1.5, 0.035 * w) + k * max(0.5, 0.02 * w), sy)
                    continued += _sampled(self.image, sx, ys.astype(np.float32))
                continued *= (under_lip / 3)[..., None]
                teeth_up = np.where(above[..., None], continued, teeth_up)
        colour = colour + (teeth_up - colour) * upper[..., None]
        box = frame.image[y0:y1, x0:x1]
        region = box[reached].astype(np.float32)
        # The warp already sampled the portrait at the skull coordinates: inside the portrait's own
        # opening that is its real teeth; newly opened parts get the synthetic interior.
        own = _sampled(self.own_mouth, sx, sy)
        colour = region * own[..., None] + colour * (1 - own[..., None])
        a = alpha[..., None]
        box[reached] = np.clip(region * (1 - a) + colour * a, 0, 255).astype(np.uint8)
