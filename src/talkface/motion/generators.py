"""The motion generators behind one interface: a MotionStream (motion.stream) made by name.

rules     the phonetic/acoustic rule generator (motion.rules), the default.
learned   a small flow-matching transformer trained on real talking faces (motion.learned, ONNX) with a
          learned mouth that reads phonemes: offline, phones recognised from the audio when no text is
          given (HEARS_PHONES).
loudness  a naive baseline for evaluation: loudness opens the jaw, nothing else moves. It gives every
          metric a floor; it is not meant for real use.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from talkface.audio.features import AudioFeatures
from talkface.audio.tts import Phoneme
from talkface.errors import TalkfaceError
from talkface.face.expression import EXPRESSIONS, JAW_OPEN
from talkface.motion.learned import LearnedStream
from talkface.motion.rules import RuleSettings, RuleStream, SpeechLevels
from talkface.motion.sequence import MotionSequence
from talkface.motion.stream import MotionStream, run_stream

StreamFactory = Callable[[float, RuleSettings, tuple[Phoneme, ...]], MotionStream]


class LoudnessStream:
    """Naive baseline: jaw opening proportional to the frame's loudness; no lead, no smoothing, no blinks,
    no head motion."""

    lead_s = 0.0

    def __init__(self, fps: float, settings: RuleSettings, phonemes: tuple[Phoneme, ...] = ()):
        self.fps, self.settings = float(fps), settings
        self._levels = SpeechLevels(fps)

    def push(self, features: AudioFeatures) -> MotionSequence:
        m = MotionSequence.still(len(features), self.fps)
        m.expression[:, JAW_OPEN] = 0.6 * self._levels(features)[0] * self.settings.expression_scale
        return m

    def finish(self) -> MotionSequence:
        return MotionSequence.still(0, self.fps)


# Generators whose mouth reads phonemes: when no text gives them, the offline pipeline recognises phones in
# the audio (audio.phones) and passes them in.
HEARS_PHONES = frozenset({"learned"})

GENERATORS: dict[str, StreamFactory] = {
    "rules": RuleStream,
    "learned": LearnedStream,
    "loudness": LoudnessStream,
}


def make_stream(
    name: str, fps: float, settings: RuleSettings, phonemes: tuple[Phoneme, ...] = ()
) -> MotionStream:
    """The motion stream of the generator called `name`."""
    try:
        factory = GENERATORS[name]
    except KeyError:
        raise TalkfaceError(f"unknown generator {name!r}; choose from {', '.join(GENERATORS)}") from None
    return factory(fps, settings, tuple(phonemes))


def generate(
    name: str, features: AudioFeatures, n_frames: int, fps: float, settings: RuleSettings
) -> MotionSequence:
    """Run the generator called `name` on a whole signal's 100 Hz features: n_frames frames of motion."""
    motion = run_stream(make_stream(name, fps, settings, features.phonemes), features, n_frames)
    assert motion.expression.shape == (n_frames, len(EXPRESSIONS)) and np.isfinite(motion.expression).all()
    return motion
