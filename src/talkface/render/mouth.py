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
LOWER_TEETH = 0.08
CAVITY = np.array([62.0, 24.0, 28.0])
TEETH = np.array([232.0, 226.0, 212.0])
TONGUE = np.array([168.0, 78.0, 82.0])


def _tooth_row(au: np.ndarray, w: float, darkest: float) -> tuple[np.ndarray, np.ndarray]:
    """For |u| across the mouth (0 centre, 1 corner): each tooth's rounded biting edge (height factor) and
    the shading of the seams between teeth (darkest at a seam), both shaped like au."""
    k = np.searchsorted(TOOTH_EDGES, np.minimum(au, TOOTH_EDGES[-1] - 1e-6), side="right") - 1
    lo_e, hi_e = TOOTH_EDGES[k], TOOTH_EDGES[k + 1]
    s = (au - lo_e) / (hi_e - lo_e)  # 0..1 across one tooth
    rounding = 1 - 0.35 * (2 * s - 1) ** 4
    seam_px = np.minimum(s, 1 - s) * (hi_e - lo_e) * w / 2  # distance to the nearest seam, pixels
    seam = darkest + (1 - darkest) * np.clip(seam_px / 0.9, 0, 1)
    return rounding, seam


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
        self.teeth = np.clip(TEETH * cast * min(light, 1.05), 0, 255)
        self.cavity = CAVITY * cast * light
        self.tongue = TONGUE * cast * light
        # Where the portrait's own mouth is open (teeth or cavity shown), keep its pixels: a soft mask of the
        # neutral mouth opening, in source coordinates, shrunk so the lip edge itself does not count.
        hole = np.zeros(rig.image.shape[:2], np.uint8)
        cv2.fillPoly(hole, [np.round(p[T.INNER_LIP, :2] * 4).astype(np.int32)], 255, cv2.LINE_AA, shift=2)
        hole = cv2.erode(hole, np.ones((3, 3), np.uint8))
        self.own_mouth = cv2.GaussianBlur(hole.astype(np.float32) / 255.0, (5, 5), 1.0)

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
        sx = frame.map_xy[y0:y1, x0:x1, 0]
        sy = frame.map_xy[y0:y1, x0:x1, 1]
        w = self.width
        up = frame.upper_lip[np.argsort(frame.upper_lip[:, 0])]
        lo = frame.lower_lip[np.argsort(frame.lower_lip[:, 0])]
        y_up = np.interp(sx, up[:, 0], up[:, 1])
        y_lo = np.interp(sx, lo[:, 0], lo[:, 1])
        gap = np.maximum(y_lo - y_up, 0.0)
        u = (sx - self.centre_x) / (w / 2)
        au = np.abs(u)
        t_up = sy - y_up  # below the upper lip, px
        t_lo = y_lo - sy  # above the lower lip, px

        # Cavity: darker deeper in (away from both lips) and at the back of the throat (centre).
        depth = np.clip(np.minimum(t_up, t_lo) / (0.2 * w), 0, 1)
        colour = self.cavity[None, None, :] * (1.0 - 0.55 * depth * (1 - 0.5 * au))[..., None]
        # Tongue: low in the mouth, seen only when it is open enough.
        tongue = np.clip((0.30 * w - t_lo) / (0.1 * w), 0, 1) * np.clip((gap - 0.12 * w) / (0.15 * w), 0, 1)
        tongue *= np.clip(1 - au / 0.8, 0, 1)
        tongue_col = self.tongue[None, None, :] * (0.6 + 0.4 * (1 - depth))[..., None]
        colour = colour * (1 - tongue[..., None]) + tongue_col * tongue[..., None]
        # Teeth: incisors widest in the middle, narrowing around the arch; soft seams between teeth. The
        # lower incisors are narrower than the upper ones.
        arch = 1 - 0.55 * au**2
        opening = np.clip(gap / (0.18 * w), 0.3, 1.0)  # a narrow gap lets little light onto the teeth
        rounding_up, seam_up = _tooth_row(au, w, darkest=0.62)
        rounding_lo, seam_lo = _tooth_row(au * 1.35, w / 1.35, darkest=0.78)
        upper = (
            (t_up >= -1) & (t_up < UPPER_TEETH * w * rounding_up * (1 - 0.3 * au**2)) & (au < TOOTH_EDGES[-1])
        )
        # The lower teeth hide behind the lower lip until the jaw has dropped well past the upper teeth.
        lower_h = LOWER_TEETH * w * np.clip((gap - 0.12 * w) / (0.15 * w), 0, 1)
        lower = (t_lo >= -1) & (t_lo < lower_h * rounding_lo) & (au < TOOTH_EDGES[5])
        # Upper teeth are shadowed just under the lip; lower teeth are dimmer (in the upper lip's shadow).
        under_lip = np.clip(0.75 + t_up / (0.05 * w) * 0.25, 0.75, 1.0)
        shade_up = (arch * opening * seam_up * under_lip)[..., None]
        shade_lo = (arch * opening * seam_lo * 0.8)[..., None]
        colour = np.where(lower[..., None], self.teeth * shade_lo, colour)
        colour = np.where(upper[..., None], self.teeth * shade_up, colour)
        region = frame.image[y0:y1, x0:x1].astype(np.float32)
        # The warp already sampled the portrait at the skull coordinates: inside the portrait's own
        # opening that is its real teeth; newly opened parts get the synthetic interior.
        own = cv2.remap(self.own_mouth, sx.astype(np.float32), sy.astype(np.float32), cv2.INTER_LINEAR)
        colour = region * own[..., None] + colour * (1 - own[..., None])
        a = alpha[..., None]
        frame.image[y0:y1, x0:x1] = np.clip(region * (1 - a) + colour * a, 0, 255).astype(np.uint8)
