"""Self-reenactment: the renderer measured alone, without the audio-to-motion model.

A real clip's portrait frame k is driven with the clip's own tracked motion (pose, expression, blinks,
gaze relative to frame k) and each rendered frame is compared with the real frame cropped by the same
affine map (the rig's framing of frame k): the crop stays where the face was in frame k and the real head
moves inside it, as the rendered head should. The floor is the still portrait (frame k's crop on every
frame, no motion at all), so the numbers say how much the renderer's motion improves on doing nothing.

The real landmarks are the eval's own track of the clip (tracked once, on the full frames), mapped into
crop pixels; the renders are tracked by the same face mesh. Frame k is left out of every mean: there the
still baseline is the real frame itself.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from talkface import __version__
from talkface.eval import metrics as M
from talkface.face import topology as T
from talkface.face.rig import FaceRig
from talkface.face.tracking import Track, head_pose, iter_frames, track_frames
from talkface.motion.capture import motion_from_track
from talkface.motion.contract import MotionSequence
from talkface.render.renderer import Renderer
from talkface.video.encode import Mp4Writer

log = logging.getLogger(__name__)

MASK_GROW = 0.03  # the face-oval mask is dilated by this share of the crop side (8 px at 256)
BLINK_TOLERANCE_S = 0.2  # a rendered blink matches a real one whose onset is this close

# (key, unit, which way is better, description): the reenactment table's rows, in order.
REENACT_METRICS = [
    ("psnr", "dB", "higher", "PSNR on the face region (RGB; the real frame's face oval, dilated)"),
    ("ssim", "SSIM", "higher", "SSIM on the face region (luminance, 11x11 Gaussian window)"),
    ("mouth_lmd", "eye dist", "lower", "lip-motion distance to the real frame (40 lip points, pose-free)"),
    (
        "face_lmd",
        "eye dist",
        "lower",
        "on-screen error of the 468 mesh points (no alignment: head shift, turn, scale, expression)",
    ),
    ("pose_err", "deg", "lower", "mean absolute yaw, pitch, roll difference from the real head"),
    ("pose_err_yaw", "deg", "lower", "the same, yaw only"),
    ("pose_err_pitch", "deg", "lower", "the same, pitch only"),
    ("pose_err_roll", "deg", "lower", "the same, roll only"),
    ("blink_f1", "F1", "higher", f"blink onsets matched within +-{1000 * BLINK_TOLERANCE_S:.0f} ms"),
    ("face_found", "share", "higher", "share of frames where the face mesh found the rendered face"),
]


def to_crop(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Landmarks (T, 478, 3) in source pixels mapped by a 2x3 similarity `matrix` (rotation, scale, shift)
    into crop pixels, z scaled like x and y; float64, NaN rows kept."""
    p = np.asarray(points, np.float64)
    m = np.asarray(matrix, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    return np.concatenate([p[..., :2] @ m[:, :2].T + m[:, 2], p[..., 2:] * scale], -1)


def motion_from_frame(track: Track, k: int) -> MotionSequence:
    """The motion of every frame of `track` relative to frame k (k's row is the rest pose), one row per
    frame. motion_from_track measures from a track's first frame, so the frames from k on come from the
    track sliced at k, and the frames before k from the track reversed from k down to 0 (the capture's
    temporal smoothing is symmetric, so reversing time does not change it)."""
    after = motion_from_track(Track(track.points[k:], track.fps, track.size))
    if k == 0:
        return after
    before = motion_from_track(Track(track.points[k::-1], track.fps, track.size))[1:]  # frames k-1 .. 0

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(before, name)[::-1], getattr(after, name)])

    return MotionSequence(
        *(joined(f) for f in ("expression", "rotation", "translation", "gaze")),
        after.fps,
        scale=joined("scale"),
    )


def face_mask(points: np.ndarray, size: int) -> np.ndarray:
    """The filled face oval of one frame's landmarks (478, 3) in crop pixels, dilated by MASK_GROW x size
    pixels; shape (size, size) bool."""
    mask = np.zeros((size, size), np.uint8)
    oval = np.round(points[T.FACE_OVAL, :2]).astype(np.int32)
    cv2.fillPoly(mask, [oval], 1)
    r = max(1, int(round(MASK_GROW * size)))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return mask.astype(bool)


def crop_frames(path: str | Path, rig: FaceRig) -> Iterator[np.ndarray]:
    """The frames of a video cropped by the rig's framing exactly as build_rig crops the portrait (same
    interpolation and borders), shape (size, size, 3) uint8 each."""
    m, size = rig.framing.matrix, rig.size
    interp = cv2.INTER_AREA if np.sqrt(abs(np.linalg.det(m[:, :2]))) < 1 else cv2.INTER_CUBIC
    for frame in iter_frames(path):
        yield cv2.warpAffine(frame, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def _landmark_scores(
    real: np.ndarray, gen: np.ndarray, k: int, gen_ref: np.ndarray, fps: float, real_blinks: M.Blinks
) -> dict:
    """Mouth LMD, pose error and blink agreement of landmarks `gen` (T, 478, 3) against `real` (crop
    pixels both), all frames but k."""
    keep = np.arange(len(real)) != k
    real_aligned = M.align_frames(real, real[k])
    gen_aligned = M.align_frames(gen, gen_ref)
    gen_neutral = M.align_frames(gen_ref[None], gen_ref)[0]
    lmd = M.mouth_lmd(real_aligned[keep], gen_aligned[keep], real_aligned[k], gen_neutral)
    face_lmd = M.displacement_error(real[keep], gen[keep], real[k], gen_ref)
    err = M.pose_error(head_pose(real, real[k])[keep], head_pose(gen, gen_ref)[keep])
    blinks = M.count_blinks(M.eye_aspect_ratio(gen), fps)
    tol = max(1, int(round(BLINK_TOLERANCE_S * fps)))
    matched = M.blink_matches(real_blinks.onsets, blinks.onsets, tol)
    found = np.isfinite(gen[:, 0, 0])
    return {
        "mouth_lmd": lmd,
        "face_lmd": face_lmd,
        "pose_err": float(err.mean()),
        "pose_err_yaw": float(err[0]),
        "pose_err_pitch": float(err[1]),
        "pose_err_roll": float(err[2]),
        "blinks": blinks.count,
        "blinks_matched": matched,
        "blink_f1": M.f1(matched, real_blinks.count, blinks.count),
        "face_found": float(found.mean()),
    }


def reenact_clip(
    path: str | Path,
    track: Track,
    k: int,
    rig: FaceRig,
    neutral: np.ndarray,
    fps: float,
    video_dir: Path | None = None,
) -> dict:
    """Self-reenactment of one clip: the rig (built from frame k of the clip at path) driven by the motion
    of `track` (the clip's face-mesh track, source pixels) relative to frame k, against the real frames
    cropped by the rig's framing; the still portrait (rig.image) is the baseline. neutral: the rig image's
    tracked landmarks (478, 3), the still baseline's landmarks. With video_dir, writes
    <stem>.reenact.mp4 (with the clip's audio) and <stem>.real-crop.mp4 (the real frames as compared,
    silent) there, both at the rig's size.

    Returns {"frames", "source_frame", "rest_psnr" (the renderer at rest against the portrait crop, dB),
    "real": {"blinks"}, "reenact": {metric: value}, "still": {metric: value}}; see REENACT_METRICS."""
    path = Path(path)
    size = rig.size
    real = to_crop(track.points, rig.framing.matrix)
    n = len(real)
    motion = motion_from_frame(Track(real, fps, (size, size)), k)
    renderer = Renderer(rig)
    found = np.isfinite(real[:, 0, 0])
    pix = np.full((2, 2, n), np.nan)  # (reenact, still) x (psnr, ssim) x frame
    render_s = 0.0
    rest_psnr = float("nan")

    def renders(writers) -> Iterator[np.ndarray]:
        nonlocal render_s, rest_psnr
        for i, crop in enumerate(crop_frames(path, rig)):
            if i >= n:
                break
            t0 = time.perf_counter()
            frame = renderer.render(motion, i)
            render_s += time.perf_counter() - t0
            if i == k:
                rest_psnr = M.psnr(frame, rig.image)
            if found[i]:
                mask = face_mask(real[i], size)
                for j, img in enumerate((frame, rig.image)):
                    pix[j, :, i] = M.psnr(img, crop, mask), M.ssim(img, crop, mask)
            for w, img in zip(writers, (frame, crop), strict=False):
                w.write(img)
            yield frame

    with contextlib.ExitStack() as stack:
        writers = []
        if video_dir is not None:
            meta = {"comment": f"talkface {__version__} eval, self-reenactment", "encoder": "talkface"}
            for name, audio in (("reenact", path), ("real-crop", None)):
                out = Path(video_dir) / f"{path.stem}.{name}.mp4"
                writers.append(stack.enter_context(Mp4Writer(out, (size, size), fps, audio, metadata=meta)))
        gen = track_frames(renders(writers)).astype(np.float64)
    if len(gen) < n:
        log.warning("%s: %d frames decoded for %d tracked; comparing the first %d", path.name, len(gen), n, n)
        real, n = real[: len(gen)], len(gen)
        pix = pix[..., :n]

    gen_ref = gen[k] if np.isfinite(gen[k]).all() else neutral
    real_blinks = M.count_blinks(M.eye_aspect_ratio(real), fps)
    keep = np.arange(n) != k
    result = {"frames": n, "source_frame": k, "rest_psnr": rest_psnr, "real": {"blinks": real_blinks.count}}
    still = np.broadcast_to(neutral, real.shape)
    for j, (name, pts, ref) in enumerate((("reenact", gen, gen_ref), ("still", still, neutral))):
        scores = {}
        for q, key in enumerate(("psnr", "ssim")):
            v = pix[j, q, keep]
            v = v[np.isfinite(v)]
            scores[key] = float(v.mean()) if len(v) >= M.MIN_FRAMES else float("nan")
        scores.update(_landmark_scores(real, pts, k, ref, fps, real_blinks))
        result[name] = scores
    result["reenact"]["render_s"] = render_s
    result["reenact"]["realtime_factor"] = render_s / (n / fps)
    return result
