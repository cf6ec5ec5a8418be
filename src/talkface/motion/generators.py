"""The motion generators by name: the only module that knows them all. Each lives in its own module, which
is imported when the generator is first asked for; they implement motion.contract.Generator and never import
each other.

rules     the phonetic/acoustic rule generator (motion.rules): always available, the lightest live.
learned   a small flow-matching transformer trained on real talking faces (motion.learned, ONNX) with a
          learned mouth that reads phonemes: offline, phones recognised from the audio when no text is
          given (its needs_phonemes), live, phones recognised as the audio streams in. The default.
loudness  a naive baseline for evaluation (motion.loudness): loudness opens the jaw, nothing else moves.

A new generator: a module with a class satisfying motion.contract.Generator, one line in GENERATORS, and its
name among AnimateOptions.generator's choices (config.py; a test checks that the two agree).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from talkface.audio.features import AudioFeatures
from talkface.config import MotionControls
from talkface.errors import TalkfaceError
from talkface.face.expression import EXPRESSIONS
from talkface.motion.contract import Generator, MotionSequence, MotionStream, Phoneme
from talkface.motion.stream import run_stream

# name -> "module:class"
GENERATORS = {
    "rules": "talkface.motion.rules:RuleStream",
    "learned": "talkface.motion.learned:LearnedStream",
    "loudness": "talkface.motion.loudness:LoudnessStream",
}


def generator(name: str) -> Generator:
    """The generator called `name` (its class, imported now)."""
    try:
        module, cls = GENERATORS[name].split(":")
    except KeyError:
        raise TalkfaceError(f"unknown generator {name!r}; choose from {', '.join(GENERATORS)}") from None
    return getattr(importlib.import_module(module), cls)


def make_stream(
    name: str,
    fps: float,
    controls: MotionControls,
    phonemes: tuple[Phoneme, ...] = (),
    model: str | Path | None = None,
) -> MotionStream:
    """A motion stream of the generator called `name` (with another model file than its shipped one)."""
    return generator(name)(fps, controls, tuple(phonemes), model)


def generate(
    name: str,
    features: AudioFeatures,
    n_frames: int,
    fps: float,
    controls: MotionControls | None = None,
    phonemes: tuple[Phoneme, ...] = (),
    speech: np.ndarray | None = None,
) -> MotionSequence:
    """Run the generator called `name` on a whole signal's 100 Hz features: n_frames frames of motion.
    speech: the signal's speech probability (audio.vad.speech_probability), for LearnedStream.hear."""
    stream = make_stream(name, fps, controls or MotionControls(), phonemes)
    if getattr(stream, "hears", False):  # the whole recording is known (LearnedStream.hear)
        stream.hear(features, speech)
    motion = run_stream(stream, features, n_frames)
    assert motion.expression.shape == (n_frames, len(EXPRESSIONS)) and np.isfinite(motion.expression).all()
    return motion
