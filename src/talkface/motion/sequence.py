"""MotionSequence: the face latent's dynamics, one row per video frame."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from talkface.face.expression import EMOTIONS, EXPRESSIONS


@dataclass(frozen=True)
class MotionSequence:
    """Per-frame motion relative to the portrait's own neutral state.

    expression: shape (T, len(EXPRESSIONS)) float32, coefficients of face.expression.EXPRESSIONS
        (0 = neutral).
    rotation: shape (T, 3) float32, head yaw, pitch, roll in degrees (yaw > 0 turns to the viewer's right,
        pitch > 0 nods down, roll > 0 tilts clockwise on screen).
    translation: shape (T, 2) float32, head shift in eye distances (x right, y down).
    gaze: shape (T, 2) float32, eye rotation yaw, pitch in degrees relative to the head (0 = as in the
        portrait; yaw > 0 looks to the viewer's right, pitch > 0 looks down).
    fps: frames per second.
    emotion: shape (T, len(EMOTIONS)) float32, strength of each emotion offset (face.expression.EMOTIONS),
        0 = none; zeros when not given.
    scale: shape (T,) float32, head size relative to the portrait's (above 1: nearer the camera); ones when
        not given.
    """

    expression: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    gaze: np.ndarray
    fps: float
    emotion: np.ndarray | None = None
    scale: np.ndarray | None = None

    def __post_init__(self):
        t = len(self.expression)
        if self.emotion is None:
            object.__setattr__(self, "emotion", np.zeros((t, len(EMOTIONS)), np.float32))
        if self.scale is None:
            object.__setattr__(self, "scale", np.ones(t, np.float32))
        assert self.scale.shape == (t,), self.scale.shape
        assert self.emotion.shape == (t, len(EMOTIONS)), self.emotion.shape
        assert self.expression.shape == (t, len(EXPRESSIONS)), self.expression.shape
        assert (
            self.rotation.shape == (t, 3) and self.translation.shape == (t, 2) and self.gaze.shape == (t, 2)
        )

    def __len__(self) -> int:
        return len(self.expression)

    def __getitem__(self, i: int | slice) -> MotionSequence:
        if isinstance(i, int):
            i = slice(i, i + 1)
        return MotionSequence(
            self.expression[i],
            self.rotation[i],
            self.translation[i],
            self.gaze[i],
            self.fps,
            self.emotion[i],
            self.scale[i],
        )

    def coefficient(self, name: str) -> np.ndarray:
        """One expression coefficient over time, shape (T,)."""
        return self.expression[:, EXPRESSIONS.index(name)]

    @staticmethod
    def still(n_frames: int, fps: float) -> MotionSequence:
        """The neutral face, not moving."""
        return MotionSequence(
            np.zeros((n_frames, len(EXPRESSIONS)), np.float32),
            np.zeros((n_frames, 3), np.float32),
            np.zeros((n_frames, 2), np.float32),
            np.zeros((n_frames, 2), np.float32),
            fps,
        )


def with_emotion(motion: MotionSequence, name: str, strength: float) -> MotionSequence:
    """`motion` with a constant emotion offset (VASA-1's emotion control): `name` in EMOTIONS (or
    "neutral" for none) at `strength` (0..1) on every frame, replacing any emotion it had."""
    emotion = np.zeros((len(motion), len(EMOTIONS)), np.float32)
    if name != "neutral":
        emotion[:, EMOTIONS.index(name)] = strength
    return dataclasses.replace(motion, emotion=emotion)


def concat_motion(parts: list[MotionSequence]) -> MotionSequence:
    """Consecutive pieces of one motion stream joined (at least one piece)."""
    if len(parts) == 1:
        return parts[0]
    return MotionSequence(
        *(
            np.concatenate([getattr(p, name) for p in parts])
            for name in ("expression", "rotation", "translation", "gaze")
        ),
        parts[0].fps,
        np.concatenate([p.emotion for p in parts]),
        np.concatenate([p.scale for p in parts]),
    )
