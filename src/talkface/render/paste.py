"""Paste the animated crop back into the full-resolution portrait (--full-frame).

The warp keeps the crop's border still, so the crop and the original agree there up to resampling; a
feathered edge hides even that. Outside the crop the output is the portrait itself."""

from __future__ import annotations

import cv2
import numpy as np

from talkface.face.rig import FaceRig

MAX_SIDE = 1920  # full-frame output is scaled down to fit this (H.264 at 4K would not run in real time)
FEATHER = 0.05  # width of the blend at the crop's edge, in crop sides


class PasteBack:
    """Precomputes the crop -> output transform, region and mask once; paste() per frame."""

    def __init__(self, rig: FaceRig, portrait: np.ndarray, max_side: int = MAX_SIDE):
        h, w = portrait.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        out_w, out_h = (
            max(2, int(w * scale) // 2 * 2),
            max(2, int(h * scale) // 2 * 2),
        )  # H.264 wants even sides
        if scale < 1.0:
            self.background = cv2.resize(portrait, (out_w, out_h), interpolation=cv2.INTER_AREA)
        else:
            self.background = np.ascontiguousarray(portrait[:out_h, :out_w])
        crop_to_out = rig.framing.inverse * scale  # 2x3: crop pixels -> output pixels
        crop_to_out[:, 2] += 0.5 * scale - 0.5  # pixel centres: the resize maps edges onto edges
        size = rig.size
        # The crop's outer corners (top left, top right, bottom left, bottom right) in output pixels.
        corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
        pts = corners @ crop_to_out[:, :2].T + crop_to_out[:, 2]
        x0, y0 = np.floor(pts.min(0) + 0.5).astype(int).clip(0, [out_w, out_h])
        x1, y1 = np.ceil(pts.max(0) + 0.5).astype(int).clip(0, [out_w, out_h])
        self.roi = (x0, y0, x1, y1)
        self.matrix = crop_to_out.copy()
        self.matrix[:, 2] -= (x0, y0)
        # Mask in crop space: 1 inside, ramping to 0 over FEATHER at the crop's edges, except along an edge
        # that lies on the frame's (a face that fills the portrait): there is nothing to blend into.
        left, right = (pts[[0, 2], 0] <= 1).all(), (pts[[1, 3], 0] >= out_w - 1).all()
        top, bottom = (pts[[0, 1], 1] <= 1).all(), (pts[[2, 3], 1] >= out_h - 1).all()
        up = np.clip(np.arange(size) / (FEATHER * size), 0, 1)  # from the first pixel inwards
        ramps = [
            np.minimum(np.where(first, 1.0, up), np.where(last, 1.0, up[::-1]))
            for first, last in ((left, right), (top, bottom))
        ]
        mask = np.minimum(ramps[0][None, :], ramps[1][:, None]).astype(np.float32)
        self.mask = cv2.warpAffine(
            mask, self.matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )[..., None]
        self.frame_size = (out_w, out_h)

    def paste(self, frame: np.ndarray) -> np.ndarray:
        """The full output frame, shape (out_h, out_w, 3) uint8, with `frame` (the crop) blended in."""
        x0, y0, x1, y1 = self.roi
        out = self.background.copy()
        if x1 <= x0 or y1 <= y0:
            return out
        warped = cv2.warpAffine(
            frame, self.matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        bg = out[y0:y1, x0:x1].astype(np.float32)
        out[y0:y1, x0:x1] = (bg + (warped.astype(np.float32) - bg) * self.mask).astype(np.uint8)
        return out
