"""dlib face embeddings for evaluation, and the video tracking it shares with the product.

Tracking (face.tracking) uses the product's own FaceTracker (mediapipe face mesh), so real and generated
videos are measured by the same instrument.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from talkface.face import topology as T
from talkface.face.tracking import (  # noqa: F401  (re-exported for the eval)
    VIDEO_SUFFIXES,
    Track,
    VideoInfo,
    head_pose,
    iter_frames,
    probe,
    read_frame,
    track_frames,
    track_video,
)

log = logging.getLogger(__name__)


class FaceEmbedder:
    """dlib's 128-d face embedding (ResNet, face_recognition_models weights), evaluation only.

    Faces are located by our own landmarks (the face-oval box seeds dlib's 5-point shape predictor), so
    no dlib face detector runs. Build with FaceEmbedder.load(), which returns (None, reason) when dlib or
    the weights are missing."""

    def __init__(self, shape_model: str, recognition_model: str):
        import dlib

        self._dlib = dlib
        self._shape = dlib.shape_predictor(shape_model)
        self._net = dlib.face_recognition_model_v1(recognition_model)

    @classmethod
    def load(cls) -> tuple[FaceEmbedder | None, str]:
        """(embedder, "") or (None, why not)."""
        try:
            import dlib  # noqa: F401
        except ImportError as e:
            return None, f"dlib is not importable ({e}); install requirements-eval.lock"
        # face_recognition_models' __init__ imports pkg_resources (gone in setuptools>=81): find its
        # folder without importing it.
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            return None, "face_recognition_models is not installed; install requirements-eval.lock"
        models = Path(next(iter(spec.submodule_search_locations))) / "models"
        shape = models / "shape_predictor_5_face_landmarks.dat"
        net = models / "dlib_face_recognition_resnet_model_v1.dat"
        if not (shape.is_file() and net.is_file()):
            return None, f"dlib model files missing in {models}"
        return cls(str(shape), str(net)), ""

    def embed(self, image: np.ndarray, points: np.ndarray) -> np.ndarray | None:
        """Embedding of the face whose landmarks (478, 3) are `points` in `image` (RGB uint8), shape (128,)
        float64; None when the landmarks are NaN."""
        if not np.isfinite(points).all():
            return None
        oval = points[T.FACE_OVAL, :2]
        (x0, y0), (x1, y1) = oval.min(0), oval.max(0)
        # dlib's detector boxes run from the brows to the chin: trim the forehead part of the oval.
        y0 = y0 + 0.25 * (y1 - y0)
        rect = self._dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
        img = np.ascontiguousarray(image)
        shape = self._shape(img, rect)
        return np.asarray(self._net.compute_face_descriptor(img, shape), np.float64)
