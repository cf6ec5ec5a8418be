"""Video -> per-frame face landmarks and head pose (drive mode, evaluation, training).

Frames without a face are NaN rows, never dropped, so frame i of a track is always frame i of the video.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from talkface.errors import TalkfaceError
from talkface.face import topology as T
from talkface.face.geometry import rotation_angles, similarity_fit
from talkface.face.landmarks import FaceTracker

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg")


@dataclass(frozen=True)
class Track:
    """points: shape (T, 478, 3) float32, pixels (z in the same scale), NaN rows where no face was found.
    fps: the video's frame rate. size: (width, height) in pixels. frames: the RGB frames asked for with
    `keep`, by frame index."""

    points: np.ndarray
    fps: float
    size: tuple[int, int]
    frames: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.points)

    @property
    def found(self) -> np.ndarray:
        """Frames with a face, shape (T,) bool."""
        return np.isfinite(self.points[:, 0, 0])


@dataclass(frozen=True)
class VideoInfo:
    """fps: frame rate of the first video stream. duration: seconds (container). has_audio: an audio stream
    exists. av_offset_s: start of the video stream minus start of the audio stream, seconds (> 0: the
    first frame is shown after the first sound)."""

    fps: float
    duration: float
    has_audio: bool
    av_offset_s: float


def probe(path: str | Path) -> VideoInfo:
    """Stream facts of a video file. Raises TalkfaceError if there is no video stream or the file cannot be
    read."""

    def start(stream) -> float:
        return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0

    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise TalkfaceError(f"{path} has no video stream")
            v = c.streams.video[0]
            rate = v.average_rate or v.guessed_rate or v.base_rate
            duration = float(c.duration / av.time_base) if c.duration else 0.0
            offset = start(v) - start(c.streams.audio[0]) if c.streams.audio else 0.0
            return VideoInfo(float(rate) if rate else 25.0, duration, bool(c.streams.audio), offset)
    except av.error.FFmpegError as e:
        raise TalkfaceError(f"cannot read video {path}: {e.strerror or e}") from None


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Decoded frames of the first video stream, RGB uint8 (H, W, 3), in display order."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in c.decode(stream):
            yield frame.to_ndarray(format="rgb24")


def read_frame(path: str | Path, index: int) -> np.ndarray:
    """Frame `index` (0-based) of a video, RGB uint8 (H, W, 3)."""
    for i, frame in enumerate(iter_frames(path)):
        if i == index:
            return frame
    raise TalkfaceError(f"{path} has no frame {index}")


def track_frames(frames: Iterable[np.ndarray]) -> np.ndarray:
    """Landmarks of consecutive frames (one face, tracking mode), shape (T, 478, 3) float32, NaN rows
    where the face mesh found no face."""
    rows = []
    nan = np.full((T.N_POINTS, 3), np.nan, np.float32)
    with FaceTracker() as tracker:
        for frame in frames:
            face = tracker.track(frame)
            rows.append(nan if face is None else face.points)
    return np.stack(rows) if rows else np.zeros((0, T.N_POINTS, 3), np.float32)


def track_video(path: str | Path, keep: Iterable[int] = ()) -> Track:
    """Track every frame of a video; `keep` names frame indices whose RGB frames are returned as well."""
    fps = probe(path).fps
    keep = set(keep)
    kept: dict[int, np.ndarray] = {}
    size = (0, 0)

    def frames():
        nonlocal size
        for i, frame in enumerate(iter_frames(path)):
            size = (frame.shape[1], frame.shape[0])
            if i in keep:
                kept[i] = frame
            yield frame

    points = track_frames(frames())
    return Track(points, fps, size, kept)


def head_pose(points: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Head rotation of each frame relative to `reference` (default: the first frame with a face), from a
    similarity (Kabsch/Umeyama) fit of the 3D mediapipe STABLE points; shape (T, 3): yaw, pitch, roll in
    degrees (rotations about the image x, y and z axes; see rotation_angles), NaN where no face."""
    points = np.asarray(points, np.float64)
    out = np.full((len(points), 3), np.nan)
    found = np.isfinite(points[:, 0, 0])
    if not found.any():
        return out
    ref = points[np.argmax(found)] if reference is None else np.asarray(reference, np.float64)
    _, rot, _ = similarity_fit(ref[T.STABLE], points[found][:, T.STABLE])
    out[found] = rotation_angles(rot)
    return out
