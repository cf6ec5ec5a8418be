"""Visible label: a small "AI-generated" mark in the bottom-right corner of every frame.

White text on a dark translucent box, sized from the frame's shorter side so that it reads the same on a
256 or a 1024 video. The box and the text's coverage are drawn once per (size, text) and cached, so a
frame costs one blend of a small rectangle.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_HEIGHT = 0.024  # cap height as a share of the frame's shorter side
MIN_TEXT_PX = 8  # but never smaller than this, in pixels
MARGIN = 0.015  # gap to the right and bottom edges, share of the shorter side
BOX_ALPHA = 0.55  # opacity of the dark box
TEXT_ALPHA = 0.9  # opacity of the white text


def draw_label(frame: np.ndarray, text: str = "AI-generated") -> np.ndarray:
    """frame: shape (H, W, 3) uint8 -> a new array with `text` in the bottom-right corner; the input is
    not modified. A frame too small for the text is returned unlabelled (as a copy)."""
    h, w = frame.shape[:2]
    out = frame.copy()
    placed = _overlay(w, h, text)
    if placed is None:
        return out
    x0, y0, gain, offset = placed
    roi = out[y0 : y0 + gain.shape[0], x0 : x0 + gain.shape[1]]
    roi[:] = np.clip(roi * gain + offset + 0.5, 0, 255).astype(np.uint8)
    return out


@lru_cache(maxsize=8)
def _overlay(width: int, height: int, text: str) -> tuple[int, int, np.ndarray, np.ndarray] | None:
    """Top-left corner of the box and its blend: pixel -> pixel * gain + offset, each (bh, bw, 1)."""
    side = min(width, height)
    cap = max(MIN_TEXT_PX, TEXT_HEIGHT * side)
    scale = cap / cv2.getTextSize("H", FONT, 1.0, 1)[0][1]
    thick = max(1, round(cap / 12))
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thick)
    pad = max(2, round(0.45 * th))
    bw, bh = tw + 2 * pad, th + base + pad
    margin = max(2, round(MARGIN * side))
    x0, y0 = width - margin - bw, height - margin - bh
    if x0 < 0 or y0 < 0:
        return None
    coverage = np.zeros((bh, bw), np.uint8)
    cv2.putText(coverage, text, (pad, pad + th), FONT, scale, 255, thick, cv2.LINE_AA)
    alpha = coverage.astype(np.float32)[:, :, None] / 255 * TEXT_ALPHA
    gain = (1 - BOX_ALPHA) * (1 - alpha)  # the box darkens, then the text covers
    return x0, y0, gain, 255 * alpha
