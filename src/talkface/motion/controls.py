"""The steering controls as motion: what every generator applies to its own output, and what drive applies to
motion captured from a video.

A generator applies its head and expression scales where its own structure says they belong (the rules scale
the mouth and brows, not the blinks); `emotion_rows` gives the emotion track every generator sets, and `steer`
applies all the controls to motion that no generator made (drive).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from talkface.config import EMOTIONS, Steering
from talkface.errors import TalkfaceError
from talkface.face.expression import BLINK_LEFT, BLINK_RIGHT, EXPRESSIONS
from talkface.motion.contract import MotionSequence

# Expression coefficients the expression scale leaves alone: the lids (a blink is shut at any scale).
_UNSCALED = (BLINK_RIGHT, BLINK_LEFT)


def no_model(generator: str, model) -> None:
    """Raise TalkfaceError if a model file is given to a generator that has none."""
    if model is not None:
        raise TalkfaceError(f"the {generator} generator has no model file; {model} is for the learned one")


def emotion_rows(controls: Steering, n_frames: int) -> np.ndarray:
    """The emotion track (n_frames, len(EMOTIONS)) float32 that `controls` ask for (VASA-1's emotion
    offset): controls.emotion at controls.emotion_strength on every frame, or zeros for "neutral"."""
    rows = np.zeros((n_frames, len(EMOTIONS)), np.float32)
    if controls.emotion != "neutral":
        rows[:, EMOTIONS.index(controls.emotion)] = controls.emotion_strength
    return rows


def steer(motion: MotionSequence, controls: Steering) -> MotionSequence:
    """`motion` steered by `controls`: head rotation and shift times motion_scale (the head's size is kept),
    expression coefficients other than the lids times expression_scale, gaze offset by controls.gaze, and
    controls' emotion added to the emotion the motion already has (clipped to 0..1.5)."""
    expression = motion.expression.copy()
    scaled = [i for i in range(len(EXPRESSIONS)) if i not in _UNSCALED]
    expression[:, scaled] *= controls.expression_scale
    emotion = np.clip(motion.emotion + emotion_rows(controls, len(motion)), 0.0, 1.5)
    return dataclasses.replace(
        motion,
        expression=expression,
        rotation=(motion.rotation * controls.motion_scale).astype(np.float32),
        translation=(motion.translation * controls.motion_scale).astype(np.float32),
        gaze=(motion.gaze + np.asarray(controls.gaze, np.float32)).astype(np.float32),
        emotion=emotion.astype(np.float32),
    )


def retime(motion: MotionSequence, fps: float) -> MotionSequence:
    """`motion` resampled to `fps` over the same duration: round(len / motion.fps * fps) frames, each the
    linear interpolation of the input at its centre time (frame i covers [i/fps, (i+1)/fps)). A lid closure
    shorter than a frame may fall between the new frames."""
    if fps == motion.fps or len(motion) == 0:
        return dataclasses.replace(motion, fps=float(fps))
    n_out = max(1, round(len(motion) / motion.fps * fps))
    t = np.clip((np.arange(n_out) + 0.5) / fps * motion.fps - 0.5, 0, len(motion) - 1)
    i0 = np.floor(t).astype(np.int64)
    i1 = np.minimum(i0 + 1, len(motion) - 1)
    w = (t - i0)[:, None]

    def at(x: np.ndarray) -> np.ndarray:
        x2 = x.reshape(len(x), -1)
        return (x2[i0] * (1 - w) + x2[i1] * w).astype(np.float32).reshape(n_out, *x.shape[1:])

    return MotionSequence(
        at(motion.expression),
        at(motion.rotation),
        at(motion.translation),
        at(motion.gaze),
        float(fps),
        at(motion.emotion),
        at(motion.scale),
    )
