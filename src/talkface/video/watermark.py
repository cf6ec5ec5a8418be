"""Invisible watermark: every frame of a talkface video says "made by talkface <version>, video <id>".

Pattern. One luminance pattern per video, fixed to the frame and the same in every frame, added to R, G
and B alike (so only luma changes). It is periodic, with period T = min(W, H) / 2 pixels in x and y (2 x 2
tiles on a square frame), and band-limited: the sum of the Fourier components at k / T cycles per pixel
for K_MIN <= |k| <= K_MAX (1338 in a half plane), all of magnitude 1 with a fixed pseudo-random
phase. Its periods, 8.5-37 px on a 512 frame, are where a face picture holds little energy (so the mark
stands out to the detector) yet H.264 at crf 28 and a downscale to 256 keep much of them. At the default
strength (RMS 2.2 grey levels) PSNR is ~41 dB; embedding is two saturating adds of precomputed images.

Sync and payload. A quarter of the components form a sync template that is the same in every video; the
rest carry the payload. A crop only shifts the phase of a periodic pattern and a resize changes its
period, so the detector tries 61 periods around min(W, H) / 2 (0.9-1.32 times it: resizes and crops up to
~25%, with x and y refined separately) and for each every shift at once (one 128 x 128 FFT).

Payload: 64 bits = 8-bit tool tag, 16-bit version (major 4 | minor 6 | patch 6 bits), 32-bit random video
id, CRC-8 of those 56 bits. The K = 7, rate-1/2 convolutional code (171, 133 octal) with a zero tail makes
140 coded bits; each is spread over 14 real dimensions (real or imaginary part, relative to the fixed phase,
of payload components spread over the band). Decoding is soft-decision Viterbi with the tag's bits known,
after weighting each band of |k| by how well its sync components survived (pilots).

Detector. Mean luma of a few dozen frames -> 384 px on the shorter side -> minus its Gaussian blur ->
divided by the local residual variance (flat areas, where the mark dominates, count; edges and hair do
not) -> the components at the tried frequencies, each reduced to its phase. Without a mark, the phases are
random, so the sync correlation at any (period, shift), scaled by sqrt(n / 2), is close to N(0, 1)
whatever the picture; on 416 null cases from real videos its tail stays under that of N(0, NULL_SIGMA^2).

Decision and false positives. A mark is reported when the sync peak z >= Z_MIN and the decoded payload
passes its CRC. The chance that a video without a mark does so is at most
M * Q(z / NULL_SIGMA) * 2^-8 (union bound over the M ~ 1e6 (period, shift) pairs tried, times the CRC):
5e-8 at Z_MIN = 7. Detection.false_positive_probability is this bound at the observed z.

Not a security feature: the code is open, so anyone can compute and subtract the pattern. It resists
ordinary processing (re-encoding, resizing, cropping, cutting, remuxing), not a deliberate attacker, and
not rotation, mirroring or letterboxing.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import av
import cv2
import numpy as np

from talkface.config import VerifyOptions
from talkface.errors import TalkfaceError

K_MIN, K_MAX = 7, 30  # band of the pattern in cycles per period T: periods of 8.5-37 px on a 512 frame
SEED = 0x7A1CFACE  # fixes the components' phases and their split into sync and payload (format 1)
SYNC_FRACTION = 0.25  # about this share of the components (and of the energy) forms the sync template
DEFAULT_STRENGTH = 2.2  # pattern RMS in grey levels (0-255): PSNR ~41 dB
TILES = 2  # periods across the frame's shorter side
MIN_SIDE = 128  # smallest frame a mark is embedded in (K_MAX cycles in T = 64 px)

# Detector.
WORK_SIDE = 384  # the mean luma is resized so that its shorter side has this many pixels
HIGHPASS_SIGMA = 4.0  # px at the working size: Y minus its Gaussian blur keeps the band of the pattern
LOCAL_SIGMA = 4.0  # px at the working size: window of the local residual RMS
LOCAL_FLOOR = 0.5  # grey levels added to that RMS
GRID = 128  # shifts tried per period and axis (one GRID x GRID FFT per period); > 2 * K_MAX
# Period / (shorter side / TILES): 1 after a resize, 1/0.9 after a 10% crop; 10 steps from 0.9 to 1, and on.
SCALES = np.exp(np.arange(-10, 27) * math.log(1 / 0.9) / 10)
REFINE = np.array([-0.005, -0.0025, 0.0, 0.0025, 0.005])  # relative steps of the per-axis refinement
RINGS = 4  # bands of |k| over which the detector estimates how much of the mark survived
Z_MIN = 7.0  # sync peak (in null standard deviations) below which no payload is read
NULL_SIGMA = 1.05  # spread of the sync correlation on real videos without a mark (measured; ideal 1)

# Payload layout, most significant bits first.
TOOL_BITS, VERSION_BITS, ID_BITS, CRC_BITS = 8, 16, 32, 8
PAYLOAD_BITS = TOOL_BITS + VERSION_BITS + ID_BITS + CRC_BITS
assert PAYLOAD_BITS == 64
TOOL_TAGS = {"talkface": 0x01}  # one byte per tool; 0 and unknown tags are rejected by the detector
CODE_K = 7  # constraint length of the convolutional code
CODE_G = (0o171, 0o133)  # its generator polynomials
CODED_BITS = 2 * (PAYLOAD_BITS + CODE_K - 1)  # 140: rate 1/2 plus a zero tail that ends in state 0


@dataclass(frozen=True)
class Payload:
    """What a mark says: the tool, its version "MAJOR.MINOR.PATCH" and a random 32-bit video id."""

    tool: str
    version: str
    video_id: int

    def to_bits(self) -> np.ndarray:
        """The 64 payload bits, shape (64,) uint8, CRC-8 last. Raises ValueError if a field does not fit."""
        if self.tool not in TOOL_TAGS:
            raise ValueError(f"no watermark tag for tool {self.tool!r}")
        major, minor, patch = _parse_version(self.version)
        if not 0 <= self.video_id < 2**ID_BITS:
            raise ValueError(f"video_id must be a 32-bit unsigned integer, got {self.video_id}")
        data = _int_bits(TOOL_TAGS[self.tool], TOOL_BITS)
        data += _int_bits(major, 4) + _int_bits(minor, 6) + _int_bits(patch, 6)
        data += _int_bits(self.video_id, ID_BITS)
        return np.array(data + _int_bits(_crc8(data), CRC_BITS), np.uint8)

    @classmethod
    def from_bits(cls, bits: np.ndarray) -> Payload | None:
        """Inverse of to_bits; None when the CRC fails or the tool tag is unknown."""
        b = [int(v) for v in np.asarray(bits).ravel()]
        if len(b) != PAYLOAD_BITS:
            raise ValueError(f"expected {PAYLOAD_BITS} bits, got {len(b)}")
        data, crc = b[:-CRC_BITS], _bits_int(b[-CRC_BITS:])
        tools = {tag: name for name, tag in TOOL_TAGS.items()}
        tag = _bits_int(data[:TOOL_BITS])
        if crc != _crc8(data) or tag not in tools:
            return None
        v = data[TOOL_BITS : TOOL_BITS + VERSION_BITS]
        version = f"{_bits_int(v[:4])}.{_bits_int(v[4:10])}.{_bits_int(v[10:])}"
        return cls(tools[tag], version, _bits_int(data[TOOL_BITS + VERSION_BITS :]))


def new_payload(seed: int | None = None) -> Payload:
    """This talkface version and a fresh random video id; given a seed, the id it fixes (the evaluation's
    renders repeat: the mark's faint pattern moves the face mesh's points a little)."""
    from talkface import __version__

    video_id = secrets.randbits(ID_BITS) if seed is None else seed % 2**ID_BITS
    return Payload("talkface", __version__, video_id)


@dataclass(frozen=True)
class Detection:
    """found: a mark was read and passed its CRC. false_positive_probability: the chance that a video
    without a mark gives evidence this strong (its sync peak, and the CRC when found); confidence is
    1 - that when the sync peak reaches Z_MIN, else 0 (a weaker peak is what unmarked videos give)."""

    found: bool
    payload: Payload | None
    confidence: float
    frames_read: int
    false_positive_probability: float
    sync_z: float = 0.0  # sync peak in null standard deviations
    scale: float = 1.0  # period found / (shorter side / TILES): 1 for a resize, 1/0.9 after a 10% crop


class Watermarker:
    """Adds one video's mark to its frames. Build once per video (~20 ms for 512 x 512): the pattern is
    computed here and kept as two (H, W, 3) uint8 images, so embed is two saturating OpenCV adds."""

    def __init__(self, payload: Payload, width: int, height: int, strength: float = DEFAULT_STRENGTH):
        if min(width, height) < MIN_SIDE:
            raise ValueError(f"frame {width}x{height} is too small to carry a watermark (< {MIN_SIDE} px)")
        self.width, self.height = width, height
        pattern = _pattern(_coefficients(payload.to_bits()), width, height)  # (H, W) float, RMS 1
        delta = np.rint(pattern * strength)
        # Kept as two uint8 images so that embed needs no int16 copy of the frame; same value in R, G, B.
        self._plus = np.repeat(np.clip(delta, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
        self._minus = np.repeat(np.clip(-delta, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)

    def embed(self, frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """frame: shape (H, W, 3) uint8 RGB -> the frame with the mark (saturated at 0 and 255), in a new
        array, or in `out` when given (out=frame marks the frame in place)."""
        if frame.shape != self._plus.shape or frame.dtype != np.uint8:
            raise ValueError(f"expected a ({self.height}, {self.width}, 3) uint8 frame, got {frame.shape}")
        out = cv2.add(frame, self._plus, dst=out)
        return cv2.subtract(out, self._minus, dst=out)


def detect_frames(frames: Iterable[np.ndarray]) -> Detection:
    """Look for a mark in frames of one video: shape (H, W, 3) uint8 RGB or (H, W) luma, all one size,
    in any number (30-50 frames from the first seconds are plenty; the mean luma is what is searched)."""
    total, n = None, 0
    for frame in frames:
        y = frame if frame.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if total is None:
            total = np.zeros(y.shape, np.float64)
        elif y.shape != total.shape:
            raise ValueError(f"frames differ in size: {y.shape} after {total.shape}")
        total += y
        n += 1
    if n == 0 or min(total.shape) < MIN_SIDE // 2:
        return Detection(False, None, 0.0, n, 1.0)
    return _search((total / n).astype(np.float32), n)


def detect_video(
    path: str | Path, max_frames: int = VerifyOptions.frames, stride: int = VerifyOptions.stride
) -> Detection:
    """Look for a mark in a video file, reading every `stride`-th frame of the first
    max_frames * stride frames. Raises TalkfaceError when the file cannot be read as a video."""
    path = Path(path)
    if not path.is_file():
        raise TalkfaceError(f"no such file: {path}")
    try:
        container = av.open(str(path))
    except (OSError, av.error.FFmpegError) as e:
        raise TalkfaceError(f"cannot read {path.name} as a video: {e}") from None
    with container:
        if not container.streams.video:
            raise TalkfaceError(f"{path.name} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        lumas = []
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i % stride == 0:
                    y = frame.to_ndarray(format="gray")
                    if lumas and y.shape != lumas[0].shape:  # a size change mid-stream: keep the first
                        continue
                    lumas.append(y)
                    if len(lumas) >= max_frames:
                        break
        except av.error.FFmpegError:  # a damaged tail: use the frames read so far
            pass
    if not lumas:
        raise TalkfaceError(f"{path.name}: no decodable video frame")
    return detect_frames(lumas)


# ---------------------------------------------------------------------------------------------------
# The code: fixed components, their phases and roles.


@dataclass(frozen=True)
class _Code:
    k: np.ndarray  # (N, 2) int: (kx, ky) of each component, half plane (ky > 0, or ky == 0 < kx)
    phase: np.ndarray  # (N,) complex: fixed unit phase of each component
    sync: np.ndarray  # (S,) int: indices of the sync components
    dims: np.ndarray  # (CODED_BITS, D, 2) int: (component, 0 real / 1 imaginary) of each coded bit


@lru_cache(maxsize=1)
def _code() -> _Code:
    """The fixed code of format 1 (built on first use, ~1 ms)."""
    r = np.arange(-K_MAX, K_MAX + 1)
    kx, ky = np.meshgrid(r, np.arange(K_MAX + 1))
    keep = (ky > 0) | (kx > 0)
    keep &= (kx**2 + ky**2 >= K_MIN**2) & (kx**2 + ky**2 <= K_MAX**2)
    k = np.stack([kx[keep], ky[keep]], axis=1)
    rng = np.random.default_rng(SEED)
    k = k[rng.permutation(len(k))]
    phase = np.exp(2j * np.pi * rng.random(len(k)))
    per_bit = int(2 * len(k) * (1 - SYNC_FRACTION)) // CODED_BITS  # real dimensions per coded bit
    n_payload = CODED_BITS * per_bit // 2
    sync = np.arange(n_payload, len(k))
    slots = np.stack(np.meshgrid(np.arange(n_payload), [0, 1], indexing="ij"), axis=-1).reshape(-1, 2)
    dims = slots[rng.permutation(len(slots))].reshape(CODED_BITS, per_bit, 2)
    return _Code(k, phase, sync, dims)


def _coefficients(bits: np.ndarray) -> np.ndarray:
    """Payload bits -> the complex amplitude of every component, shape (N,), all of magnitude 1."""
    code = _code()
    coded = 2.0 * _conv_encode(bits) - 1.0  # (CODED_BITS,) +-1
    value = np.zeros((len(code.k), 2))
    value[code.sync, 0] = math.sqrt(2)  # real only, so |value| = sqrt(2) like the payload's (+-1, +-1)
    value[code.dims[..., 0], code.dims[..., 1]] = coded[:, None]
    return code.phase * (value[:, 0] + 1j * value[:, 1]) / math.sqrt(2)


def _pattern(coef: np.ndarray, width: int, height: int) -> np.ndarray:
    """The periodic pattern at pixel centres of a width x height frame, shape (H, W) float32, RMS 1."""
    code = _code()
    period = min(width, height) / TILES
    c = np.zeros((K_MAX + 1, 2 * K_MAX + 1), complex)  # (ky, kx + K_MAX)
    c[code.k[:, 1], code.k[:, 0] + K_MAX] = coef
    ex = np.exp(2j * np.pi * np.outer(np.arange(-K_MAX, K_MAX + 1), np.arange(width)) / period)
    ey = np.exp(2j * np.pi * np.outer(np.arange(K_MAX + 1), np.arange(height)) / period)
    p = (ey.T @ c @ ex).real  # separable sum of the components: (H, K+1) (K+1, 2K+1) (2K+1, W)
    return (p / p.std()).astype(np.float32)


# ---------------------------------------------------------------------------------------------------
# Detection.


def _residual(luma: np.ndarray) -> np.ndarray:
    """Mean luma -> working size (shorter side WORK_SIDE), high-passed, weighted, tapered; float32."""
    g = WORK_SIDE / min(luma.shape)
    interp = cv2.INTER_AREA if g < 1 else cv2.INTER_LINEAR
    y = cv2.resize(luma, None, fx=g, fy=g, interpolation=interp)
    r = y - cv2.GaussianBlur(y, (0, 0), HIGHPASS_SIGMA)
    # Weight by 1 / local variance of the residual, as for noise of varying power: flat areas, where the
    # mark dominates, count; edges and hair, where the picture dominates, hardly do.
    local = np.sqrt(cv2.GaussianBlur(r * r, (0, 0), LOCAL_SIGMA)) + LOCAL_FLOOR
    r = r / (local * local)
    return r * np.outer(_taper(r.shape[0]), _taper(r.shape[1])).astype(np.float32)


def _taper(n: int, frac: float = 0.08) -> np.ndarray:
    """1 inside, a half cosine to 0 over `frac` of the length at each end (less leakage in the DFT)."""
    m = max(1, int(frac * n))
    w = np.ones(n)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(m) + 0.5) / m)
    w[:m], w[n - m :] = ramp, ramp[::-1]
    return w


def _spectrum(r: np.ndarray, px: float, py: float) -> np.ndarray:
    """Whitened components of the residual for periods (px, py) in working pixels: (N,) complex of
    magnitude 1 (phase only), at the code's frequencies."""
    code = _code()
    h, w = r.shape
    ex = np.exp(-2j * np.pi * np.outer(np.arange(w), np.arange(-K_MAX, K_MAX + 1)) / px).astype(np.complex64)
    ey = np.exp(-2j * np.pi * np.outer(np.arange(K_MAX + 1), np.arange(h)) / py).astype(np.complex64)
    f = (ey @ r) @ ex  # (K+1, 2K+1)
    f = f[code.k[:, 1], code.k[:, 0] + K_MAX]
    return f / (np.abs(f) + 1e-12)


def _sync_surface(u: np.ndarray) -> np.ndarray:
    """Sync correlation at every shift of a GRID x GRID lattice over one period, in null standard
    deviations: shape (GRID, GRID), indexed [shift y, shift x] in units of period / GRID."""
    code = _code()
    s = code.sync
    a = np.zeros((GRID, GRID), complex)
    a[code.k[s, 1] % GRID, code.k[s, 0] % GRID] = u[s] * np.conj(code.phase[s])
    return np.fft.fft2(a).real / math.sqrt(len(s) / 2)


def _search(luma: np.ndarray, frames: int) -> Detection:
    """Mean luma (H, W) float32 -> the best sync peak over periods and shifts -> payload."""
    r = _residual(luma)
    base = min(r.shape) / TILES
    best = (-np.inf, 1.0, 1.0, (0, 0), None)  # z, x and y scale, (shift y, shift x), components

    def consider(sx: float, sy: float) -> None:
        nonlocal best
        u = _spectrum(r, sx * base, sy * base)
        z = _sync_surface(u)
        i = int(np.argmax(z))
        if z.flat[i] > best[0]:
            best = (float(z.flat[i]), sx, sy, divmod(i, GRID), u)

    for s in SCALES:
        consider(s, s)
    s0 = best[1]
    for dx in REFINE:  # then x and y separately: a resize may have changed the aspect ratio
        for dy in REFINE:
            if dx or dy:
                consider(s0 * (1 + dx), s0 * (1 + dy))
    z, sx, sy, (my, mx), u = best
    payload = _decode(u, my, mx) if z >= Z_MIN else None
    p = false_positive_bound(z, payload is not None)
    confidence = 1.0 - p if z >= Z_MIN else 0.0
    return Detection(payload is not None, payload, confidence, frames, p, z, math.sqrt(sx * sy))


def false_positive_bound(z: float, decoded: bool = True) -> float:
    """Chance that a video without a mark gives a sync peak >= z (and, if `decoded`, a payload that
    passes its CRC): the union bound over every (period, shift) the detector tries."""
    tried = (len(SCALES) + len(REFINE) ** 2 - 1) * GRID * GRID  # ~1e6
    p = min(1.0, tried * _normal_tail(z / NULL_SIGMA))
    return p * len(TOOL_TAGS) * 2.0**-CRC_BITS if decoded else p  # one decoding per known tag


def _decode(u: np.ndarray, my: int, mx: int) -> Payload | None:
    """Soft payload at the sync peak (refined to a quarter lattice step) -> Viterbi -> CRC."""
    code = _code()
    k, s = code.k, code.sync
    best, shift = -np.inf, (my, mx)
    for fy in np.arange(-1, 1.01, 0.25) + my:
        for fx in np.arange(-1, 1.01, 0.25) + mx:
            c = np.sum((u[s] * np.conj(code.phase[s]) * _shift(k[s], fx, fy)).real)
            if c > best:
                best, shift = c, (fy, fx)
    v = u * np.conj(code.phase) * _shift(k, shift[1], shift[0])  # ~ the embedded values, unit phase
    # The sync components act as pilots: their mean cosine per band of |k| says how much of the mark
    # the band kept (a downscale and H.264 take the top first); payload values are weighted by it.
    radius = np.hypot(k[:, 0], k[:, 1])
    ring = np.searchsorted(np.quantile(radius[s], np.linspace(0, 1, RINGS + 1)[1:-1]), radius)
    kept = np.array([v[s][ring[s] == b].real.mean() for b in range(RINGS)])
    v = v * np.clip(kept, 0.02, None)[ring]
    parts = np.stack([v.real, v.imag], axis=1)  # (N, 2)
    soft = parts[code.dims[..., 0], code.dims[..., 1]].sum(axis=1)  # (CODED_BITS,)
    for tag in TOOL_TAGS.values():  # the tag is known, so it is decoded as known bits, not checked
        payload = Payload.from_bits(_viterbi(soft, _int_bits(tag, TOOL_BITS)))
        if payload is not None:
            return payload
    return None


def _shift(k: np.ndarray, fx: float, fy: float) -> np.ndarray:
    """Phase factors that undo a shift of (fx, fy) lattice steps at frequencies k (n, 2)."""
    return np.exp(-2j * np.pi * (k[:, 0] * fx + k[:, 1] * fy) / GRID)


def _normal_tail(z: float) -> float:
    """P(N(0, 1) > z)."""
    return 0.5 * math.erfc(z / math.sqrt(2))


# ---------------------------------------------------------------------------------------------------
# Bits: CRC-8 and the convolutional code.


def _int_bits(value: int, n: int) -> list[int]:
    return [(value >> (n - 1 - i)) & 1 for i in range(n)]


def _bits_int(bits: list[int]) -> int:
    return int("".join(map(str, bits)) or "0", 2)


def _crc8(bits: list[int], poly: int = 0x07) -> int:
    """CRC-8 (polynomial x^8 + x^2 + x + 1) of a bit list, most significant bit first."""
    crc = 0
    for b in bits:
        top = ((crc >> 7) & 1) ^ b
        crc = ((crc << 1) & 0xFF) ^ (poly if top else 0)
    return crc


def _parse_version(version: str) -> tuple[int, int, int]:
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if not m:
        raise ValueError(f"version must look like MAJOR.MINOR.PATCH, got {version!r}")
    major, minor, patch = (int(g or 0) for g in m.groups())
    if major >= 16 or minor >= 64 or patch >= 64:
        raise ValueError(f"version {version} does not fit 4.6.6 bits")
    return major, minor, patch


def _parity(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> 4)
    x = x ^ (x >> 2)
    return (x ^ (x >> 1)) & 1


# Trellis: register = (input bit << K-1) | state; next state = register >> 1.
_STATES = 2 ** (CODE_K - 1)
_REG = np.arange(2 * _STATES)
_OUT = np.stack([_parity(_REG & g) for g in CODE_G], axis=1)  # (2 * states, 2) coded bits per register


def _conv_encode(bits: np.ndarray) -> np.ndarray:
    """(64,) bits + a zero tail -> (CODED_BITS,) uint8."""
    state, out = 0, []
    for b in list(map(int, bits)) + [0] * (CODE_K - 1):
        reg = (b << (CODE_K - 1)) | state
        out += [int(_OUT[reg, 0]), int(_OUT[reg, 1])]
        state = reg >> 1
    return np.array(out, np.uint8)


def _viterbi(soft: np.ndarray, known: list[int]) -> np.ndarray:
    """Soft values (CODED_BITS,), positive for a coded 1 -> the most likely (64,) payload bits among
    those that start with `known`."""
    steps = len(soft) // 2
    metric = np.full(_STATES, -np.inf)
    metric[0] = 0.0
    ns = np.arange(_STATES)
    bit = ns >> (CODE_K - 2)  # the input bit that leads into each next state
    prev = np.stack([(ns << 1) & (_STATES - 1), ((ns << 1) & (_STATES - 1)) | 1])  # (2, states)
    reg = (bit << (CODE_K - 1)) | prev  # (2, states)
    sign = 2.0 * _OUT[reg] - 1.0  # (2, states, 2)
    choice = np.zeros((steps, _STATES), np.int8)
    for t in range(steps):
        cand = metric[prev] + sign @ soft[2 * t : 2 * t + 2]  # (2, states)
        choice[t] = np.argmax(cand, axis=0)
        metric = cand[choice[t], ns]
        if t < len(known):
            metric[bit != known[t]] = -np.inf
    state, bits = 0, []
    for t in range(steps - 1, -1, -1):
        bits.append(state >> (CODE_K - 2))
        state = prev[choice[t, state], state]
    return np.array(bits[::-1][:PAYLOAD_BITS], np.uint8)
