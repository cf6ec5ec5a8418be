"""Face landmarks from mediapipe FaceMesh: 478 points (468 mesh + 10 iris) in pixel units."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

from talkface.errors import NoFaceError
from talkface.face import topology as T

log = logging.getLogger(__name__)


@contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 while mediapipe's C++ graph starts: it logs warnings there through absl
    that no setting turns off, and the CLI owns the terminal."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@dataclass(frozen=True)
class Landmarks:
    """One face. points: shape (478, 3) float32, x and y in image pixels, z in the same pixel scale
    (relative depth, smaller is nearer the camera)."""

    points: np.ndarray

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the face oval, pixels."""
        oval = self.points[T.FACE_OVAL, :2]
        x0, y0 = oval.min(0)
        x1, y1 = oval.max(0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0)

    @property
    def eye_distance(self) -> float:
        """Distance between the eye centres (mean of each eye contour), pixels."""
        r = self.points[T.RIGHT_EYE, :2].mean(0)
        l = self.points[T.LEFT_EYE, :2].mean(0)  # noqa: E741
        return float(np.linalg.norm(l - r))

    def mouth_opening(self) -> float:
        """Inner-lip gap at the middle of the mouth divided by the eye distance (0 = closed)."""
        gap = np.linalg.norm(self.points[T.UPPER_LIP_MID, :2] - self.points[T.LOWER_LIP_MID, :2])
        return float(gap / max(self.eye_distance, 1e-6))


def _mediapipe_face_mesh(static: bool, max_faces: int):
    with _quiet_stderr():
        import mediapipe as mp

        return mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static,
            max_num_faces=max_faces,
            refine_landmarks=True,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )


def _to_landmarks(result, width: int, height: int) -> list[Landmarks]:
    faces = []
    for face in result.multi_face_landmarks or []:
        # Pixel centres at integer coordinates (as cv2.remap samples), hence the -0.5.
        pts = np.array(
            [(p.x * width - 0.5, p.y * height - 0.5, p.z * width) for p in face.landmark], np.float32
        )
        faces.append(Landmarks(pts))
    return faces


def detect_faces(image: np.ndarray, max_faces: int = 4) -> list[Landmarks]:
    """All faces in an RGB uint8 image, largest first (no retries)."""
    h, w = image.shape[:2]
    with _mediapipe_face_mesh(static=True, max_faces=max_faces) as mesh, _quiet_stderr():
        result = mesh.process(np.ascontiguousarray(image))
    return sorted(_to_landmarks(result, w, h), key=lambda f: -f.area)


def detect_face(image: np.ndarray, what: str = "the portrait") -> Landmarks:
    """The largest face in an RGB uint8 image. Retries on a padded and on a rescaled copy (small or
    tightly cropped faces, drawings) before raising NoFaceError."""
    h, w = image.shape[:2]
    attempts = [("as is", 1.0, 0)]
    if max(h, w) < 400:
        attempts.append(("upscaled", 600 / max(h, w), 0))
    if max(h, w) > 1600:
        attempts.append(("downscaled", 1024 / max(h, w), 0))
    attempts.append(("padded", 1.0, max(h, w) // 4))
    for name, scale, pad in attempts:
        img = image
        if scale != 1.0:
            img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
        if pad:
            img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        faces = detect_faces(img)
        if not faces:
            continue
        if len(faces) > 1:
            log.warning("%d faces in %s; animating the largest", len(faces), what)
        if name != "as is":
            log.info("face found in %s only %s", what, name)
        pts = faces[0].points.copy()
        pts[:, :2] -= pad
        pts /= scale
        return Landmarks(pts)
    raise NoFaceError(f"no face found in {what}")


class FaceTracker:
    """Landmarks for consecutive video frames (mediapipe's tracking mode: smoother and faster than
    detecting every frame). Use as a context manager; track() returns None for a frame with no face.
    While it is open, file descriptor 2 is silenced: mediapipe's graph threads log start-up warnings
    there at unpredictable moments."""

    def __init__(self):
        self._quiet = _quiet_stderr()
        self._quiet.__enter__()
        self._mesh = _mediapipe_face_mesh(static=False, max_faces=1)

    def track(self, frame: np.ndarray) -> Landmarks | None:
        h, w = frame.shape[:2]
        faces = _to_landmarks(self._mesh.process(np.ascontiguousarray(frame)), w, h)
        return faces[0] if faces else None

    def close(self) -> None:
        if self._quiet is not None:
            self._mesh.close()
            self._quiet.__exit__(None, None, None)
            self._quiet = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
