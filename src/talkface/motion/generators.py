"""The motion generators behind one interface: (features, n_frames, fps, settings) -> MotionSequence.

rules     the phonetic/acoustic rule generator (motion.rules), the default.
loudness  a naive baseline for evaluation: loudness opens the jaw, nothing else moves. It gives every
          metric a floor; it is not meant for real use.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from talkface.audio.features import AudioFeatures
from talkface.errors import TalkfaceError
from talkface.face.expression import EXPRESSIONS, JAW_OPEN
from talkface.motion.rules import RuleSettings, generate_rules, loudness
from talkface.motion.sequence import MotionSequence

Generator = Callable[[AudioFeatures, int, float, RuleSettings], MotionSequence]


def generate_loudness(
    features: AudioFeatures, n_frames: int, fps: float, settings: RuleSettings
) -> MotionSequence:
    """Naive baseline: jaw opening proportional to the frame's loudness; no lead, no smoothing, no blinks,
    no head motion."""
    f = features.at_fps(fps, n_frames)
    m = MotionSequence.still(n_frames, fps)
    m.expression[:, JAW_OPEN] = 0.6 * loudness(f) * settings.expression_scale
    return m


GENERATORS: dict[str, Generator] = {"rules": generate_rules, "loudness": generate_loudness}


def generate(
    name: str, features: AudioFeatures, n_frames: int, fps: float, settings: RuleSettings
) -> MotionSequence:
    """Run the generator called `name`."""
    try:
        fn = GENERATORS[name]
    except KeyError:
        raise TalkfaceError(f"unknown generator {name!r}; choose from {', '.join(GENERATORS)}") from None
    motion = fn(features, n_frames, fps, settings)
    assert motion.expression.shape == (n_frames, len(EXPRESSIONS)) and np.isfinite(motion.expression).all()
    return motion
