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
from talkface.imports import Deferred

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


# Modules that mediapipe imports with itself and talkface never uses, and what they cost a job's start:
# matplotlib.pyplot (0.4-0.8 s, for a plotting helper) and the solutions other than the face's (0.03-0.05 s).
# Each group is a package and its submodule, or one module.
_UNUSED = (
    ("matplotlib", "matplotlib.pyplot"),
    ("mediapipe.python.solutions.drawing_styles",),
    ("mediapipe.python.solutions.hands",),
    ("mediapipe.python.solutions.holistic",),
    ("mediapipe.python.solutions.objectron",),
    ("mediapipe.python.solutions.pose",),
)


def mediapipe():
    """The mediapipe package, imported without the modules of _UNUSED: while mediapipe imports, they are
    stand-ins (Deferred) that load the real modules on first use, so they still work for any code that uses
    them (a group already loaded is left as it is). Call it under _quiet_stderr."""
    if "mediapipe" in sys.modules:
        import mediapipe

        return mediapipe
    stand_ins: dict[str, Deferred] = {}
    for group in _UNUSED:
        if any(name in sys.modules for name in group):
            continue
        for name in group:
            stand_ins[name] = Deferred(name, group)
            package, _, attr = name.rpartition(".")
            if package in stand_ins:  # `import matplotlib.pyplot as plt` reads the package's attribute
                setattr(stand_ins[package], attr, stand_ins[name])
    sys.modules.update(stand_ins)
    try:
        import mediapipe
    finally:
        for name, module in stand_ins.items():  # later imports get the real modules
            if sys.modules.get(name) is module:
                del sys.modules[name]
            package, _, attr = name.rpartition(".")
            if package in sys.modules and not hasattr(sys.modules[package], attr):
                # `mp.solutions.hands`: the import system set no attribute for a module it found in place
                setattr(sys.modules[package], attr, module)
    return mediapipe


def _mediapipe_face_mesh(static: bool, max_faces: int):
    with _quiet_stderr():
        mp = mediapipe()
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
    # The graph is closed with fd 2 still silenced: its threads log as it shuts down.
    with _quiet_stderr(), _mediapipe_face_mesh(static=True, max_faces=max_faces) as mesh:
        result = mesh.process(np.ascontiguousarray(image))
    return sorted(_to_landmarks(result, w, h), key=lambda f: -f.area)


def _views(image: np.ndarray):
    """Transformed copies of an image to retry face detection on, as (name, image, 2x3 affine from the
    copy back to the original). The face mesh's detector wants a face that fills a fair part of an
    upright frame: small faces in large images, tight crops and tilted (often drawn) faces miss."""
    h, w = image.shape[:2]
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    yield "as is", image, identity
    if max(h, w) < 400:
        s = 600 / max(h, w)
        yield (
            "upscaled",
            cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC),
            identity / s,
        )
    if max(h, w) > 1600:
        s = 1024 / max(h, w)
        yield (
            "downscaled",
            cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA),
            identity / s,
        )
    pad = max(h, w) // 4
    back = identity.copy()
    back[:, 2] = -pad
    yield "padded", cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE), back
    for angle in (-25.0, 25.0):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        rotated = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        yield f"rotated {angle:+.0f} degrees", rotated, cv2.invertAffineTransform(m)
    # Small faces in wide scenes: mediapipe's full-range face detector finds them; the mesh then runs on a
    # square crop around each (largest first), upscaled.
    for x0, y0, side in _face_boxes(image):
        s = 512 / side
        m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]])
        crop = cv2.warpAffine(image, m, (512, 512), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        yield "around a small face", crop, cv2.invertAffineTransform(m)


def _face_boxes(image: np.ndarray) -> list[tuple[float, float, float]]:
    """Squares (x0, y0, side) three times the size of each face mediapipe's full-range detector finds in
    the image or in one of four overlapping tiles (it misses faces under about a third of its input),
    largest first, duplicates merged."""
    with _quiet_stderr():
        mp = mediapipe()

    h, w = image.shape[:2]
    tw, th = int(0.6 * w), int(0.6 * h)
    regions = [(0, 0, w, h)] + [(x, y, tw, th) for y in (0, h - th) for x in (0, w - tw)]
    boxes: list[tuple[float, float, float]] = []
    with (
        _quiet_stderr(),
        mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as fd,
    ):
        for rx, ry, rw, rh in regions:
            result = fd.process(np.ascontiguousarray(image[ry : ry + rh, rx : rx + rw]))
            for det in result.detections or []:
                b = det.location_data.relative_bounding_box
                cx, cy = rx + (b.xmin + b.width / 2) * rw, ry + (b.ymin + b.height / 2) * rh
                side = 3.0 * max(b.width * rw, b.height * rh)
                if all(np.hypot(cx - (x0 + s / 2), cy - (y0 + s / 2)) > side / 6 for x0, y0, s in boxes):
                    boxes.append((cx - side / 2, cy - side / 2, side))
    return sorted(boxes, key=lambda b: -b[2])


@dataclass(frozen=True)
class Found:
    """What detect_face found: the largest face, how many faces the copy of the image it was found in
    shows, and the name of that copy ("as is", "padded", ...; see _views)."""

    face: Landmarks
    faces: int
    view: str

    def report(self, what: str) -> None:
        """Log what a user should know about the finding in `what` (a name such as "the portrait")."""
        if self.faces > 1:
            log.warning("%d faces in %s; animating the largest", self.faces, what)
        if self.view != "as is":
            log.info("face found in %s only %s", what, self.view)


def find_face(image: np.ndarray, what: str = "the portrait") -> Found:
    """detect_face's search, unreported: the largest face in an RGB uint8 image, found as is or in a
    rescaled, padded, rotated or tiled copy (small or tightly cropped faces, tilted drawings); raises
    NoFaceError (naming `what`) when none shows one."""
    for name, view, back in _views(image):
        faces = detect_faces(view)
        if not faces:
            continue
        pts = faces[0].points.astype(np.float64)
        scale = float(np.sqrt(abs(np.linalg.det(back[:, :2]))))
        xy = pts[:, :2] @ back[:, :2].T + back[:, 2]
        face = Landmarks(np.column_stack([xy, pts[:, 2] * scale]).astype(np.float32))
        return Found(face, len(faces), name)
    raise NoFaceError(f"no face found in {what}")


def detect_face(image: np.ndarray, what: str = "the portrait") -> Landmarks:
    """The largest face in an RGB uint8 image. Retries on rescaled, padded, rotated and tiled copies
    (small or tightly cropped faces, tilted drawings) before raising NoFaceError."""
    found = find_face(image, what)
    found.report(what)
    return found.face


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
