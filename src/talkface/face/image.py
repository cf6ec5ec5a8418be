"""Reading a portrait image: any photo Pillow decodes, checked from its header before decoding (against
decompression bombs), downscaled while decoding where the format allows (JPEG), as 8-bit RGB."""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from talkface.config import (
    IMAGE_FORMATS,
    MAX_DECODE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_PORTRAIT_SIDE,
    MIN_PORTRAIT_SIDE,
)
from talkface.errors import TalkfaceError

# Bytes per pixel of Pillow's decoded image in each mode it decodes (RGB is stored in 4): what a decode
# costs. A mode missing here is refused.
_MODE_BYTES = {
    **dict.fromkeys(("1", "L", "P"), 1),
    **dict.fromkeys(("I;16", "I;16L", "I;16B", "I;16N"), 2),
    **dict.fromkeys(("I", "F", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV"), 4),
    **dict.fromkeys(("LA", "La", "PA"), 4),
}
# EXIF orientation -> the transpose that shows the image upright.
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_KINDS = "JPEG, PNG, WebP, BMP, TIFF or GIF"


def _register_formats() -> None:
    """Register the plugins of IMAGE_FORMATS, which open(formats=...) looks up, and no other:
    Image.init() imports all of Pillow's ~45 (0.1-0.3 s of a job's start). Should one of ours not register
    (a Pillow built without WebP), open() calls Image.init() itself, as before."""
    from PIL import (  # noqa: F401
        BmpImagePlugin,
        GifImagePlugin,
        JpegImagePlugin,
        PngImagePlugin,
        TiffImagePlugin,
        WebPImagePlugin,
    )


def load_image(
    source: str | Path | bytes, max_side: int = MAX_PORTRAIT_SIDE, name: str | None = None
) -> np.ndarray:
    """An image file (its path, or its bytes) as RGB uint8, shape (H, W, 3), upright (EXIF orientation
    applied), at most `max_side` px on its longer side (a larger photo is downscaled, a JPEG while it is
    decoded). Alpha is composited on white; grey, palette, CMYK, 16-bit and float images become 8-bit RGB;
    an animation gives its first frame. The format is read from the content, whatever the extension.
    name: what error messages call the image (default: the path, or "the image" for bytes).
    Raises TalkfaceError in one line for a missing, unreadable, truncated or damaged file, an image smaller
    than MIN_PORTRAIT_SIDE, or one whose header declares more than MAX_IMAGE_PIXELS or a full-size decode
    above MAX_DECODE_BYTES (refused before decoding anything)."""
    if isinstance(source, bytes):
        name, fp = name or "the image", io.BytesIO(source)
    else:
        path = Path(source)
        name = name or str(path)
        if not path.is_file():
            raise TalkfaceError(f"portrait file not found: {path}")
        fp = path
    _register_formats()
    with warnings.catch_warnings():
        # Pillow warns above its own limit; the header is checked here, against MAX_IMAGE_PIXELS.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(fp, formats=IMAGE_FORMATS)
        except Image.DecompressionBombError as e:  # beyond twice Pillow's limit (above ours): header only
            pixels = re.search(r"\((\d+) pixels\)", str(e))
            declared = f" (it declares {int(pixels[1]) / 1e6:.0f} megapixels)" if pixels else ""
            raise TalkfaceError(
                f"{name} is too large{declared}; the limit is {MAX_IMAGE_PIXELS / 1e6:g} megapixels"
            ) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
            why = "" if isinstance(e, UnidentifiedImageError) else f": {_one_line(e)}"
            raise TalkfaceError(f"cannot read {name} as an image ({_KINDS}){why}") from None
        with im:
            return _decode(im, name, max_side)


def _decode(im: Image.Image, name: str, max_side: int) -> np.ndarray:
    w, h = im.size
    if w * h > MAX_IMAGE_PIXELS:
        raise TalkfaceError(
            f"{name} is too large ({w}x{h}); the limit is {MAX_IMAGE_PIXELS / 1e6:g} megapixels"
        )
    if min(w, h) < MIN_PORTRAIT_SIDE:
        raise TalkfaceError(f"{name} is too small ({w}x{h}) to hold a face")
    if im.mode not in _MODE_BYTES:
        raise TalkfaceError(f"{name}: its pixel format ({im.format} {im.mode}) is not supported")
    try:
        orientation = int(im.getexif().get(0x0112, 1))
    except Exception:  # a damaged EXIF block: the image itself may be fine
        orientation = 1
    if max(w, h) > max_side and im.format in ("JPEG", "MPO"):
        s = max_side / max(w, h)
        im.draft(im.mode, (max(1, round(w * s)), max(1, round(h * s))))  # DCT scaling: 1/2, 1/4 or 1/8
    dw, dh = im.size
    if dw * dh * _MODE_BYTES[im.mode] > MAX_DECODE_BYTES:
        raise TalkfaceError(
            f"{name} ({w}x{h} {im.format}) needs {dw * dh * _MODE_BYTES[im.mode] / 2**20:.0f} MB to decode; "
            f"the limit is {MAX_DECODE_BYTES / 2**20:.0f} MB: save it as JPEG or downscale it"
        )
    try:
        im.load()
    except Exception as e:  # Pillow raises OSError, ValueError, SyntaxError, struct.error... for damage
        raise TalkfaceError(f"cannot decode {name}: it is truncated or damaged ({_one_line(e)})") from None
    img = _to_8bit(im)
    if max(img.size) > max_side:
        s = max_side / max(img.size)
        size = (max(1, round(img.width * s)), max(1, round(img.height * s)))
        img = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if orientation in _ORIENTATION:
        img = img.transpose(_ORIENTATION[orientation])
    rgb = np.asarray(img)
    if img.mode == "RGBA":
        alpha = rgb[:, :, 3:4].astype(np.float32) / 255.0
        rgb = (rgb[:, :, :3] * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
    if min(rgb.shape[:2]) < MIN_PORTRAIT_SIDE:  # a long strip, downscaled
        raise TalkfaceError(f"{name} is too small ({w}x{h}) to hold a face")
    return np.ascontiguousarray(rgb)


def _to_8bit(im: Image.Image) -> Image.Image:
    """A decoded image in any mode of _MODE_BYTES as 8-bit "RGB", or "RGBA" when it has transparency."""
    if im.mode in ("RGB", "RGBA"):
        return im
    if im.mode in ("LA", "La", "PA", "RGBa") or (im.mode == "P" and "transparency" in im.info):
        return im.convert("RGBA")
    if im.mode.startswith("I") or im.mode == "F":  # 16-bit, 32-bit integer or float grey
        x = np.asarray(im).astype(np.float64)
        x[~np.isfinite(x)] = 0.0
        if im.mode == "F":
            lo, hi = (0.0, 1.0) if x.min() >= 0 and x.max() <= 1 else (x.min(), x.max())
        else:
            lo, hi = (0.0, 65535.0) if 0 <= x.min() and x.max() <= 65535 else (x.min(), x.max())
        x = np.clip((x - lo) * (255.0 / max(hi - lo, 1e-12)) + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(x, "L").convert("RGB")
    return im.convert("RGB")  # 1, L, P, RGBX, CMYK, YCbCr, LAB, HSV


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split()) or type(e).__name__
