"""Gaze: the irises move inside the eyes, clipped by the lids, with the sclera filled where they were.

Once per rig, each eye gets a sclera-only image (the iris disc painted over with the eye's own sclera
colour) and an iris layer (the disc's pixels with a soft alpha, limited to the visible eye opening). Per
frame, the eye's pixels (labelled by the warp, so a blinking lid already covers its part) are repainted in
the eye's rigid frame: sclera, then the iris shifted by the gaze.
"""

from __future__ import annotations

import cv2
import numpy as np

from talkface.face import topology as T
from talkface.face.expression import EYEBALL_RADIUS
from talkface.face.rig import FaceRig
from talkface.render.warp import EYE_LEFT, EYE_RIGHT, WarpResult

MIN_SHIFT_PX = 0.05  # below this the eye is left exactly as the portrait has it


class Eyes:
    """Per-eye layers built from the portrait; paint() moves the irises of one frame."""

    def __init__(self, rig: FaceRig):
        p = rig.points
        img = rig.image.astype(np.float32)
        self.sclera = img.copy()
        h, w = img.shape[:2]
        self.iris_alpha = np.zeros((h, w), np.float32)
        self.eye_width = {}
        for label, contour, iris in (
            (EYE_RIGHT, T.RIGHT_EYE, T.RIGHT_IRIS),
            (EYE_LEFT, T.LEFT_EYE, T.LEFT_IRIS),
        ):
            self.eye_width[label] = float(
                np.linalg.norm(p[contour[0], :2] - p[contour[len(contour) // 2], :2])
            )
            opening = np.zeros((h, w), np.uint8)
            cv2.fillPoly(opening, [np.round(p[contour, :2] * 4).astype(np.int32)], 255, cv2.LINE_AA, shift=2)
            centre = p[iris[0], :2]
            radius = float(np.linalg.norm(p[iris[1:], :2] - centre, axis=1).mean())
            disc = np.zeros((h, w), np.uint8)
            cv2.circle(disc, tuple(np.round(centre * 4).astype(int)), int(round(radius * 1.1 * 4)), 255, -1,
                       cv2.LINE_AA, shift=2)  # fmt: skip
            in_eye = opening.astype(np.float32) / 255
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
            fill = cv2.GaussianBlur((disc > 0).astype(np.float32), (5, 5), 1.0)[..., None]
            # Slightly darker at the top (the lid's shadow), as real sclera is.
            ys = np.arange(h, dtype=np.float32)[:, None, None]
            shade = np.clip(0.85 + 0.15 * (ys - (centre[1] - radius)) / max(2 * radius, 1.0), 0.85, 1.0)
            self.sclera = self.sclera * (1 - fill) + (colour * shade) * fill
        self.image = img

    def paint(self, frame: WarpResult, gaze: np.ndarray) -> None:
        """Move both irises by gaze = (yaw, pitch) degrees (yaw > 0: viewer's right, pitch > 0: down)."""
        yaw, pitch = float(gaze[0]), float(gaze[1])
        for label in (EYE_RIGHT, EYE_LEFT):
            r = EYEBALL_RADIUS * self.eye_width[label]
            dx, dy = r * np.sin(np.radians(yaw)), r * np.sin(np.radians(pitch))
            if abs(dx) < MIN_SHIFT_PX and abs(dy) < MIN_SHIFT_PX:
                continue
            x0, y0, x1, y1 = frame.boxes[label]
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
            region[...] = np.where(m, np.clip(eye, 0, 255).astype(np.uint8), region)
