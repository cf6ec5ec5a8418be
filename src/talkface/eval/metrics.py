"""Evaluation metrics: pure numpy functions on landmark tracks and per-frame signals.

Conventions. A landmark track is shape (T, 478, 3) float, mediapipe points in pixels (z in the same scale),
with NaN rows for frames without a face; every function here skips NaN frames rather than failing.
"Pose-free" tracks come from align_frames: each frame's STABLE points similarity-aligned onto a reference
frame, in eye-distance units. Lengths are in eye distances (the distance between the eye centres) unless
a docstring says otherwise; angles in degrees; times in seconds; rates from `fps`. Images are RGB uint8
(H, W, 3) or float, 0-255; masks are (H, W) bool.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np

from talkface.face import topology as T
from talkface.face.geometry import (  # noqa: F401  (re-exported: metrics speak in these terms)
    align_frames,
    eye_distance,
    mouth_opening,
    rotation_angles,
    similarity_fit,
)

LIPS = T.OUTER_LIP + T.INNER_LIP  # the 40 lip points mouth_lmd compares
MIN_FRAMES = 5  # fewer valid frames than this and a statistic is NaN, not a number from noise
PSNR_MAX = 100.0  # dB, the PSNR of identical images (instead of infinity)
# SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, dynamic range 255.
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
SSIM_C1, SSIM_C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equal-length signals over the samples finite in both; NaN when fewer
    than MIN_FRAMES such samples or either is constant."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < MIN_FRAMES:
        return float("nan")
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 1e-12 else float("nan")


@dataclass(frozen=True)
class LagCorrelation:
    """r_zero: Pearson r at lag 0. r_best: the highest r over the lags searched. lag_ms: the lag of r_best
    in milliseconds, refined between frames by a parabola through the neighbouring lags; positive means
    the generated signal lags the real one (gen[t] follows real[t - lag]). lag_ms is NaN when the best r
    lies at the edge of the search: there is no peak within the range, so no lag to report."""

    r_zero: float
    r_best: float
    lag_ms: float


def lagged_correlation(
    real: np.ndarray, gen: np.ndarray, fps: float, max_lag_ms: float = 200.0
) -> LagCorrelation:
    """Pearson r of two per-frame signals, shape (T,) each, at lags of whole frames within
    +-max_lag_ms; see LagCorrelation for the sign of the lag."""
    real, gen = np.asarray(real, np.float64), np.asarray(gen, np.float64)
    n = min(len(real), len(gen))
    real, gen = real[:n], gen[:n]
    max_lag = int(np.floor(max_lag_ms / 1000.0 * fps + 1e-9))
    lags = np.arange(-max_lag, max_lag + 1)
    rs = np.array(
        [pearson(real[: n - k], gen[k:]) if k >= 0 else pearson(real[-k:], gen[: n + k]) for k in lags]
    )
    r_zero = float(rs[max_lag])
    if not np.isfinite(rs).any():
        return LagCorrelation(r_zero, float("nan"), float("nan"))
    i = int(np.nanargmax(rs))
    if i in (0, len(rs) - 1):
        return LagCorrelation(r_zero, float(rs[i]), float("nan"))
    lag = float(lags[i])
    if np.isfinite(rs[i - 1 : i + 2]).all():
        a, b, c = rs[i - 1 : i + 2]
        curv = a - 2 * b + c
        if curv < -1e-12:
            lag += float(np.clip(0.5 * (a - c) / curv, -0.5, 0.5))
    return LagCorrelation(r_zero, float(rs[i]), 1000.0 * lag / fps)


def mouth_lmd(real: np.ndarray, gen: np.ndarray, real_neutral: np.ndarray, gen_neutral: np.ndarray) -> float:
    """Mouth landmark distance: mean over frames and the 40 LIPS points of the x-y distance between the
    real and generated lip *motion*, in eye distances. real, gen: pose-free tracks (T, 478, 3) (from
    align_frames; the shorter one sets T); real_neutral, gen_neutral: each video's own neutral pose-free
    shape (478, 3), subtracted first so that differences in lip shape between the two faces are not
    counted. NaN when fewer than MIN_FRAMES frames have both faces."""
    n = min(len(real), len(gen))
    dr = real[:n, LIPS, :2] - real_neutral[LIPS, :2]
    dg = gen[:n, LIPS, :2] - gen_neutral[LIPS, :2]
    dist = np.linalg.norm(dr - dg, axis=-1).mean(1)  # (T,)
    ok = np.isfinite(dist)
    return float(dist[ok].mean()) if ok.sum() >= MIN_FRAMES else float("nan")


def displacement_error(
    real: np.ndarray,
    gen: np.ndarray,
    real_ref: np.ndarray,
    gen_ref: np.ndarray,
    index: list[int] | None = None,
) -> float:
    """On-screen landmark error without any alignment: mean over frames and the `index` points (default the
    468 mesh points) of the x-y distance between the real and generated displacement from each video's
    reference frame (478, 3), in the real reference's eye distances. real, gen: (T, 478, 3) in the same
    pixel frame (the shorter one sets T). Unlike mouth_lmd it counts where the head is: shift, rotation
    and scale as well as expression. NaN when fewer than MIN_FRAMES frames have both faces."""
    idx = list(range(T.N_MESH)) if index is None else index
    n = min(len(real), len(gen))
    dr = np.asarray(real[:n, idx, :2], np.float64) - real_ref[idx, :2]
    dg = np.asarray(gen[:n, idx, :2], np.float64) - gen_ref[idx, :2]
    dist = np.linalg.norm(dr - dg, axis=-1).mean(1) / max(float(eye_distance(real_ref)), 1e-6)
    ok = np.isfinite(dist)
    return float(dist[ok].mean()) if ok.sum() >= MIN_FRAMES else float("nan")


def speech_masks(
    voicing: np.ndarray, fps: float, on: float = 0.5, off: float = 0.2, guard_s: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """(voiced, silent) frame masks, shape (T,) bool each, from a per-frame speech probability (T,).
    voiced: probability >= on. silent: probability < off and more than guard_s seconds from any voiced
    frame, because lips move up to ~300 ms before the voice starts and close after it stops."""
    v = np.asarray(voicing, np.float64)
    voiced = v >= on
    g = int(round(guard_s * fps))
    near = np.convolve(voiced.astype(np.float64), np.ones(2 * g + 1), mode="same") > 0 if g else voiced
    return voiced, (v < off) & ~near


def silence_ratio(opening: np.ndarray, voicing: np.ndarray, fps: float) -> float:
    """Mean mouth opening in silent frames over the mean in voiced frames (see speech_masks); opening and
    voicing are per-frame, shape (T,). 0 = the mouth rests closed in silence; near 1 = it does not
    react to speech. NaN when either set has fewer than MIN_FRAMES frames with a face."""
    n = min(len(opening), len(voicing))
    opening = np.asarray(opening[:n], np.float64)
    voiced, silent = speech_masks(voicing[:n], fps)
    ok = np.isfinite(opening)
    if (voiced & ok).sum() < MIN_FRAMES or (silent & ok).sum() < MIN_FRAMES:
        return float("nan")
    speech = opening[voiced & ok].mean()
    return float(opening[silent & ok].mean() / speech) if speech > 1e-6 else float("nan")


def voiced_mean(signal: np.ndarray, voicing: np.ndarray, fps: float) -> float:
    """Mean of a per-frame signal (T,) over voiced frames (see speech_masks); NaN if fewer than
    MIN_FRAMES."""
    n = min(len(signal), len(voicing))
    x = np.asarray(signal[:n], np.float64)
    voiced, _ = speech_masks(voicing[:n], fps)
    ok = voiced & np.isfinite(x)
    return float(x[ok].mean()) if ok.sum() >= MIN_FRAMES else float("nan")


def eye_aspect_ratio(points: np.ndarray) -> np.ndarray:
    """Lid gap over eye width, mean of both eyes: |159-145| / |33-133| and |386-374| / |263-362| (x-y),
    shape (T,); about 0.25-0.35 open, below 0.1 closed. NaN where no face."""
    p = np.asarray(points, np.float64)[..., :2]

    def ratio(top, bottom, corners):
        gap = np.linalg.norm(p[..., top, :] - p[..., bottom, :], axis=-1)
        width = np.linalg.norm(p[..., corners[0], :] - p[..., corners[1], :], axis=-1)
        return gap / np.maximum(width, 1e-6)

    return 0.5 * (ratio(159, 145, T.RIGHT_EYE_CORNERS) + ratio(386, 374, T.LEFT_EYE_CORNERS))


def _running_nanmedian(x: np.ndarray, half: int) -> np.ndarray:
    padded = np.pad(np.asarray(x, np.float64), half, constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    with warnings.catch_warnings():  # all-NaN windows (no face for a while) give NaN, as intended
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(windows, axis=1)


@dataclass(frozen=True)
class Blinks:
    """count: blinks seen. per_min: count per minute of frames with a face (NaN if under 1 s of them).
    onsets: frame index where each blink starts. durations_ms: from each start to the reopening, of the
    blinks that reopen within the signal."""

    count: int
    per_min: float
    onsets: list[int]
    durations_ms: list[float] = field(default_factory=list)


def count_blinks(
    ear: np.ndarray, fps: float, close: float = 0.75, reopen: float = 0.88, window_s: float = 2.0
) -> Blinks:
    """Blinks in an eye-aspect-ratio signal (T,). The threshold adapts to the eye: a blink starts when the
    ratio falls below `close` x its running median over `window_s` seconds (blinks last 0.1-0.4 s, so
    the median is the open eye) and ends when it rises above `reopen` x the median (hysteresis, so one
    blink's noisy bottom is not counted twice). NaN frames neither start nor end a blink. Real blinks
    take the ratio to 0.2-0.45 x the median; the face mesh sees rendered blinks as shallower dips
    (0.6-0.85 x), hence `close` = 0.75; tracker noise on an open eye stays within about 0.9-1.1 x."""
    ear = np.asarray(ear, np.float64)
    base = _running_nanmedian(ear, max(1, int(round(window_s * fps / 2))))
    onsets: list[int] = []
    durations: list[float] = []
    closed = False
    for i, (e, b) in enumerate(zip(ear, base, strict=True)):
        if not (np.isfinite(e) and np.isfinite(b)):
            continue
        if not closed and e < close * b:
            closed = True
            onsets.append(i)
        elif closed and e > reopen * b:
            closed = False
            durations.append(1000.0 * (i - onsets[-1]) / fps)
    minutes = np.isfinite(ear).sum() / fps / 60.0
    per_min = len(onsets) / minutes if minutes >= 1 / 60 else float("nan")
    return Blinks(len(onsets), per_min, onsets, durations)


@dataclass(frozen=True)
class PoseStats:
    """std: standard deviation of yaw, pitch, roll over the clip, degrees, shape (3,).
    delta: mean |change| of the three angles between adjacent frames (VASA-1's dP), degrees per frame."""

    std: np.ndarray
    delta: float


def pose_stats(angles: np.ndarray) -> PoseStats:
    """Head-motion statistics of per-frame angles (T, 3) (yaw, pitch, roll, degrees; NaN rows skipped)."""
    a = np.asarray(angles, np.float64)
    ok = np.isfinite(a).all(1)
    if ok.sum() < MIN_FRAMES:
        return PoseStats(np.full(3, np.nan), float("nan"))
    step = np.abs(np.diff(a, axis=0))
    pair = ok[1:] & ok[:-1]
    delta = float(step[pair].mean()) if pair.any() else float("nan")
    return PoseStats(a[ok].std(0), delta)


def jitter(aligned: np.ndarray, fps: float, cutoff_hz: float = 6.0, index: list[int] | None = None) -> float:
    """High-frequency landmark motion: the root-mean-square velocity (eye distances per second) of the
    pose-free x-y landmark tracks (T, 478, 3) that is carried by frequencies above `cutoff_hz`, over the
    468 mesh points (or `index`). Speech moves the lips at 2-7 Hz; tracker noise and frame-to-frame
    shimmer are broadband, so this grows with visible jitter. The share above the cutoff comes from a
    Hann-windowed spectrum of the velocity (no edge leakage); NaN frames are interpolated over, and the
    result is NaN with under 1 s of frames, too few faces, or fps <= 2 x cutoff."""
    idx = list(range(T.N_MESH)) if index is None else index
    x = np.asarray(aligned, np.float64)[:, idx, :2].reshape(len(aligned), -1)  # (T, P)
    ok = np.isfinite(x).all(1)
    if len(x) < fps or ok.sum() < max(MIN_FRAMES, 0.8 * len(x)) or fps <= 2 * cutoff_hz:
        return float("nan")
    t = np.arange(len(x))
    x = np.stack([np.interp(t, t[ok], col[ok]) for col in x.T], 1)
    v = np.diff(x, axis=0) * fps  # (T-1, P), eye distances per second
    v = v - v.mean(0)
    spec = np.abs(np.fft.rfft(v * np.hanning(len(v))[:, None], axis=0)) ** 2
    freqs = np.fft.rfftfreq(len(v), 1.0 / fps)
    total = spec.sum()
    if total <= 0:
        return 0.0
    share = spec[freqs > cutoff_hz].sum() / total
    return float(np.sqrt((v * v).mean() * share))


def identity_distance(reference: np.ndarray, embeddings: np.ndarray) -> float:
    """Mean Euclidean distance between one face embedding (128,) and several (K, 128); dlib's same-person
    threshold is 0.6. NaN when K = 0."""
    e = np.asarray(embeddings, np.float64).reshape(-1, len(reference))
    return float(np.linalg.norm(e - reference, axis=1).mean()) if len(e) else float("nan")


def luminance(image: np.ndarray) -> np.ndarray:
    """Luma Y' = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601) of an RGB image (H, W, 3), float64 (H, W),
    0-255; a 2-D image is returned as float64."""
    x = np.asarray(image, np.float64)
    return x if x.ndim == 2 else x @ np.array([0.299, 0.587, 0.114])


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio of two images (H, W, 3) or (H, W), 0-255, over the pixels in `mask`
    (H, W) bool (all channels), in dB; PSNR_MAX for identical pixels, NaN for an empty mask."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if mask is not None:
        d = d[np.asarray(mask, bool)]
    if d.size == 0:
        return float("nan")
    mse = float(np.mean(d * d))
    return PSNR_MAX if mse <= 255.0**2 * 10 ** (-PSNR_MAX / 10) else float(10 * np.log10(255.0**2 / mse))


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM (Wang et al. 2004) of the luminance of two images (H, W, 3) or (H, W), 0-255, with
    the standard 11x11 Gaussian window (sigma 1.5); shape (H, W), 1 where the images are equal. Edges
    use reflected borders."""
    x, y = luminance(a), luminance(b)

    def blur(z):
        return cv2.GaussianBlur(z, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    num = (2 * mx * my + SSIM_C1) * (2 * cxy + SSIM_C2)
    return num / ((mx * mx + my * my + SSIM_C1) * (vx + vy + SSIM_C2))


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM (see ssim_map) over the pixels in `mask` (H, W) bool, or the whole image; NaN for an
    empty mask. With a mask only its bounding box, grown by the window's radius, is filtered: the same
    numbers, as no window around a masked pixel reaches past that box."""
    if mask is None:
        return float(ssim_map(a, b).mean())
    mask = np.asarray(mask, bool)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return float("nan")
    r = SSIM_WINDOW // 2
    box = (
        slice(max(0, rows[0] - r), rows[-1] + r + 1),
        slice(max(0, cols[0] - r), cols[-1] + r + 1),
    )
    return float(ssim_map(a[box], b[box])[mask[box]].mean())


def blink_matches(real: list[int], gen: list[int], tolerance: int) -> int:
    """How many blink onsets (frame indices, sorted) of `real` have a distinct onset of `gen` within
    `tolerance` frames (greedy, in time order)."""
    used: set[int] = set()
    matched = 0
    for r in real:
        near = [j for j, g in enumerate(gen) if j not in used and abs(g - r) <= tolerance]
        if near:
            used.add(min(near, key=lambda j: abs(gen[j] - r)))
            matched += 1
    return matched


def f1(matched: int, n_real: int, n_gen: int) -> float:
    """F1 score 2 * matched / (n_real + n_gen); NaN when both are 0 (nothing to agree on)."""
    return 2.0 * matched / (n_real + n_gen) if n_real + n_gen else float("nan")


CLOSED_MOUTH = 0.03  # mouth opening (eye distances) below which the lips count as closed


def closure_f1(real: np.ndarray, gen: np.ndarray, fps: float, tolerance_s: float = 0.04) -> float:
    """How well the generated mouth's closed frames (opening below CLOSED_MOUTH) match the real mouth's:
    F1 of precision (generated closed frames with a real closed frame within tolerance_s) and recall (real
    closed frames with a generated one within tolerance_s). Openings per frame, shape (T,), NaN where no
    face (such frames count for neither). NaN when neither video has a closed frame; 0 when only one has."""
    n = min(len(real), len(gen))
    real, gen = np.asarray(real[:n], np.float64), np.asarray(gen[:n], np.float64)
    ok = np.isfinite(real) & np.isfinite(gen)
    shut_real, shut_gen = ok & (real < CLOSED_MOUTH), ok & (gen < CLOSED_MOUTH)
    if not shut_real.any() and not shut_gen.any():
        return float("nan")
    if not shut_real.any() or not shut_gen.any():
        return 0.0
    k = int(round(tolerance_s * fps))

    def near(mask: np.ndarray) -> np.ndarray:
        return np.convolve(mask.astype(np.float64), np.ones(2 * k + 1), mode="same") > 0

    precision = (shut_gen & near(shut_real)).sum() / shut_gen.sum()
    recall = (shut_real & near(shut_gen)).sum() / shut_real.sum()
    return float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0


OPEN_MOUTH = 0.045  # a closure counts once the lips were at least this far apart since the last one


def closure_onsets(opening: np.ndarray) -> list[int]:
    """Frames where the lips close: the opening falls below CLOSED_MOUTH after it was at least OPEN_MOUTH
    (hysteresis: the face mesh's jitter about the threshold on a still mouth is no closure). A frame
    without a face (NaN) forgets the state."""
    onsets, was_open = [], False
    for i, v in enumerate(np.asarray(opening, np.float64)):
        if not np.isfinite(v):
            was_open = False
        elif v >= OPEN_MOUTH:
            was_open = True
        elif v < CLOSED_MOUTH and was_open:
            onsets.append(i)
            was_open = False
    return onsets


def closure_onset_f1(real: np.ndarray, gen: np.ndarray, fps: float, tolerance_s: float = 0.08) -> float:
    """F1 of the generated mouth's closures (closure_onsets) matched one to one with the real mouth's
    within tolerance_s. Unlike closure_f1, a mouth that never moves scores 0 whether it is open or shut.
    NaN when neither closes."""
    n = min(len(real), len(gen))
    a, b = closure_onsets(real[:n]), closure_onsets(gen[:n])
    return f1(blink_matches(a, b, int(round(tolerance_s * fps))), len(a), len(b))


def pose_error(real: np.ndarray, gen: np.ndarray) -> np.ndarray:
    """Mean absolute difference of per-frame head angles (T, 3) (yaw, pitch, roll, degrees) over the frames
    finite in both, shape (3,); NaN when fewer than MIN_FRAMES such frames."""
    n = min(len(real), len(gen))
    d = np.abs(np.asarray(real[:n], np.float64) - np.asarray(gen[:n], np.float64))
    ok = np.isfinite(d).all(1)
    return d[ok].mean(0) if ok.sum() >= MIN_FRAMES else np.full(3, np.nan)


# Upper-face motion. Head pose is removed with a 2-D similarity fit (x-y rotation, scale, shift: the face as
# the camera sees it) on POSE_ANCHORS: the nose bridge and tip, the eye corners and the cheek sides. The
# face mesh's STABLE set also holds forehead points, which ride up with the brows and would cancel part
# of a brow raise.
POSE_ANCHORS = [168, 6, 197, 195, 5, 4, 1, 33, 133, 263, 362, 234, 454, 127, 356]
EYE_CORNERS = [*T.RIGHT_EYE_CORNERS, *T.LEFT_EYE_CORNERS]
BROWS = T.RIGHT_BROW + T.LEFT_BROW  # 20 points, upper and lower edge of each brow
LIDS = T.RIGHT_EYE_UPPER + T.RIGHT_EYE_LOWER + T.LEFT_EYE_UPPER + T.LEFT_EYE_LOWER  # 28, corners left out
# Cheeks below the eyes and beside the nose (infraorbital and malar skin, which a smile or a squint lifts),
# 7 a side; the lower cheek beside the mouth (205, 425, 187, 411) is left out, as speech moves it.
CHEEKS = [117, 118, 100, 101, 50, 36, 123, 346, 347, 329, 330, 280, 266, 352]
# Nose: the bridge, tip and columella (168 ... 2) and the wings (alae), 7 a side, which a wrinkle lifts.
NOSE_MIDLINE = [168, 6, 197, 195, 5, 4, 1, 19, 94, 2]
NOSE = NOSE_MIDLINE + [48, 64, 98, 129, 102, 49, 115, 278, 294, 327, 358, 331, 279, 344]
UPPER_FACE = BROWS + LIDS + CHEEKS + NOSE  # 86 points


def align_2d(points: np.ndarray, reference: np.ndarray, index: list[int] = POSE_ANCHORS) -> np.ndarray:
    """Pose-free x-y landmarks: each frame of `points` (T, 478, 2 or 3) similarity-fitted in 2-D (rotation
    in the image plane, scale, shift) so that its `index` points best match `reference`'s (478, 2 or 3),
    then expressed in the reference's eye distances about the centroid of its `index` points. Shape
    (T, 478, 2) float64, NaN rows kept. Unlike align_frames it does not undo turns out of the image
    plane (yaw, pitch), which the face mesh's depth estimate does not give reliably for small faces."""
    p = np.asarray(points, np.float64)[..., :2]
    ref = np.asarray(reference, np.float64)[..., :2]
    out = np.full(p.shape, np.nan)
    found = np.isfinite(p[:, index]).all((1, 2))
    if found.any():
        scale, rot, t = similarity_fit(p[found][:, index], ref[index])
        out[found] = scale[:, None, None] * np.einsum("bnj,bij->bni", p[found], rot) + t[:, None, :]
    return (out - ref[index].mean(0)) / max(float(eye_distance(ref)), 1e-6)


def mean_shape_2d(points: np.ndarray, index: list[int] = POSE_ANCHORS, iterations: int = 3) -> np.ndarray:
    """A clip's mean face (478, 2) in the pixel scale of its first frame with a face, by generalised
    Procrustes analysis in 2-D: align every frame to the current mean on the `index` points, average,
    repeat (from the first frame with a face). NaN when no frame has a face."""
    p = np.asarray(points, np.float64)[..., :2]
    found = np.isfinite(p[:, index]).all((1, 2))
    if not found.any():
        return np.full(p.shape[1:], np.nan)
    ref = p[np.argmax(found)]
    for _ in range(iterations):
        scale, rot, t = similarity_fit(p[found][:, index], ref[index])
        moved = scale[:, None, None] * np.einsum("bnj,bij->bni", p[found], rot) + t[:, None, :]
        ref = moved.mean(0)
    return ref


def brow_height(aligned: np.ndarray) -> np.ndarray:
    """Mean height of the 20 brow points above the line of the 4 eye corners, measured square to that
    line (along the face's own vertical, so a tilted head or reference does not shorten it), per frame,
    shape (T,), for x-y landmarks (T, 478, 2) in eye distances (from align_2d); larger = brows higher."""
    a = np.asarray(aligned, np.float64)[..., :2]
    right = a[..., list(T.RIGHT_EYE_CORNERS), :].mean(-2)
    left = a[..., list(T.LEFT_EYE_CORNERS), :].mean(-2)
    across = left - right  # the subject's right eye is on the image's left
    up = np.stack([across[..., 1], -across[..., 0]], -1)  # across turned 90 degrees, towards the brows
    up /= np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-12)
    return ((a[..., BROWS, :].mean(-2) - 0.5 * (left + right)) * up).sum(-1)


def brow_motion(points: np.ndarray) -> float:
    """How much the brows move: the standard deviation over frames of brow_height, in eye distances, after
    head pose is removed by a 2-D similarity fit of POSE_ANCHORS onto the clip's mean face. points: a
    track (T, 478, 3) in pixels. 0 for a still face (rotating, scaling or shifting in the image plane
    included); a brow raise of a eye distances held for half the frames gives a / 2. NaN when fewer than
    MIN_FRAMES frames have a face."""
    h = brow_height(align_2d(points, mean_shape_2d(points)))
    h = h[np.isfinite(h)]
    return float(h.std()) if len(h) >= MIN_FRAMES else float("nan")


def upper_face_motion(points: np.ndarray) -> float:
    """Non-rigid motion of the upper face: the UPPER_FACE points (brows, lids, cheeks, nose) of each frame
    similarity-fitted in 2-D onto the clip's mean shape of those same points (generalised Procrustes), so
    that whatever a rotation, scale and shift of the whole set explains (the head) is gone; then the root
    mean square over frames and points of each point's x-y distance from its own mean position, in eye
    distances. points: a track (T, 478, 3) in pixels. 0 for a still face; around the mean rather than frame
    to frame, because the face mesh's frame-to-frame noise is as large as real frame-to-frame motion, while
    expressions move the face for longer. NaN when fewer than MIN_FRAMES frames have a face."""
    a = align_2d(points, mean_shape_2d(points, UPPER_FACE), UPPER_FACE)[:, UPPER_FACE]  # (T, 86, 2)
    a = a[np.isfinite(a).all((1, 2))]
    if len(a) < MIN_FRAMES:
        return float("nan")
    return float(np.sqrt(((a - a.mean(0)) ** 2).sum(-1).mean()))


def motion_ratio(ours: float, real: float) -> float:
    """ours / real for a motion amplitude; NaN when either is NaN or the real face does not move (below
    1e-6 eye distances)."""
    if not (math.isfinite(ours) and math.isfinite(real)) or real < 1e-6:
        return float("nan")
    return ours / real
