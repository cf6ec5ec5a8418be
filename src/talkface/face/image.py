"""Reading a portrait image."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from talkface.errors import TalkfaceError

MAX_PIXELS = 40_000_000  # refuse absurd images (decompression bombs) rather than exhausting memory


def load_image(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8, shape (H, W, 3). Alpha is composited on white; grey becomes RGB."""
    path = Path(path)
    if not path.is_file():
        raise TalkfaceError(f"portrait file not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise TalkfaceError(f"cannot read {path} as an image (JPEG, PNG, WebP, BMP or TIFF)")
    if img.shape[0] * img.shape[1] > MAX_PIXELS:
        raise TalkfaceError(
            f"{path} is too large ({img.shape[1]}x{img.shape[0]}); the limit is 40 megapixels"
        )
    if img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        alpha = img[:, :, 3:4].astype(np.float32) / 255.0
        img = (img[:, :, :3] * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if min(img.shape[:2]) < 32:
        raise TalkfaceError(f"{path} is too small ({img.shape[1]}x{img.shape[0]}) to hold a face")
    return img
