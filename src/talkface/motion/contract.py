"""The motion contract: what a motion generator takes and what it gives. Types only, no generator in here.

    Phoneme         a timed phoneme (text to speech, a forced alignment, or phones recognised in the audio)
    MotionControls  what steers any generator: seed, head and expression scale, gaze, emotion (config.py
                    holds it, with its defaults and ranges, like every settings class)
    MotionSequence  the face latent's dynamics, one row per video frame: what every generator gives
    MotionStream    a generator at work, window by window: features of the next frames in, final motion out
    Generator       how a generator is made and what it needs (phonemes, look-ahead)

A new generator is a class that satisfies Generator (its constructor takes fps, controls and phonemes and
returns a MotionStream), registered by name in motion.generators. It imports from this module, from
motion.cues (the shared acoustic cues), motion.controls (emotion and steering) and motion.stream (windowing
helpers), never from another generator; the engine, the live Session, drive and bench see only this module
and the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np

from talkface.audio.features import AudioFeatures
from talkface.config import MotionControls
from talkface.face.expression import EMOTIONS, EXPRESSIONS

__all__ = [
    "Generator",
    "MotionControls",
    "MotionSequence",
    "MotionStream",
    "Phoneme",
    "concat_motion",
]


@dataclass(frozen=True)
class Phoneme:
    """One phoneme: start and end in seconds from the first sample; symbol is the espeak-ng mnemonic (other
    sources, such as pocketsphinx's ARPAbet, are mapped to the same symbols; a pause starts with "_").
    heard: timed from the audio by the recogniser (audio.phones, or a transcript aligned by audio.align),
    so a guess; text to speech's phonemes come with their exact timings."""

    start: float
    end: float
    symbol: str
    heard: bool = False


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


class MotionStream(Protocol):
    """A motion generator at work in sliding windows at `fps` frames per second.

    lead_s: video frame j is given the features pooled over [j/fps + lead_s, (j+1)/fps + lead_s) (the lips
        lead the voice).
    lookahead_s: how much audio past a frame's end must have been pushed before that frame is final (what a
        live stream waits for, beyond the frame itself).
    The output carries everything the controls ask for (scales, gaze, emotion): nothing is applied after."""

    fps: float
    lead_s: float

    @property
    def lookahead_s(self) -> float: ...

    def push(self, features: AudioFeatures) -> MotionSequence:
        """Features of the next video frames (rate = fps, any count >= 0); returns the motion frames that
        are now final (any count, in order)."""
        ...

    def finish(self) -> MotionSequence:
        """The remaining frames: in all, exactly one motion frame per feature frame pushed."""
        ...


class Generator(Protocol):
    """A motion generator, as the registry (motion.generators) knows it: a class whose instances are
    MotionStreams.

    Every generator takes phoneme timings when they are known (the text of `say`, an aligned transcript).
    needs_phonemes: its mouth needs them to be at its best, so that offline, when no text gives them, the
        engine recognises phones in the audio: it then reads the whole audio before the first frame (the
        recogniser decodes whole stretches between pauses). Any other generator's audio streams through in
        bounded memory. Live, a generator gets no phonemes.
    model: a model file to use instead of the generator's shipped one (to compare a retrained model); a
        generator without a model file raises TalkfaceError when given one."""

    needs_phonemes: ClassVar[bool]

    def __call__(
        self,
        fps: float,
        controls: MotionControls,
        phonemes: tuple[Phoneme, ...] = (),
        model: str | Path | None = None,
    ) -> MotionStream: ...
