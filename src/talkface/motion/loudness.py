"""The loudness generator: a naive baseline for evaluation. Loudness opens the jaw, nothing else moves (no
lead, no smoothing, no blinks, no head motion). It gives every metric a floor; not meant for real use."""

from __future__ import annotations

from pathlib import Path

from talkface.audio.features import AudioFeatures
from talkface.face.expression import JAW_OPEN
from talkface.motion.contract import MotionControls, MotionSequence, Phoneme
from talkface.motion.controls import emotion_rows, no_model
from talkface.motion.cues import SpeechLevels

JAW_AT_FULL_LEVEL = 0.6


class LoudnessStream:
    """Jaw opening proportional to the frame's loudness relative to the voice's loud speech."""

    needs_phonemes = False
    lead_s = 0.0
    lookahead_s = 0.0

    def __init__(
        self,
        fps: float,
        controls: MotionControls,
        phonemes: tuple[Phoneme, ...] = (),
        model: str | Path | None = None,
    ):
        no_model("loudness", model)
        self.fps, self.controls = float(fps), controls
        self._levels = SpeechLevels(fps)
        self._frames = 0  # frames returned so far

    def push(self, features: AudioFeatures) -> MotionSequence:
        m = MotionSequence.still(len(features), self.fps)
        level = self._levels(features)[0]
        m.expression[:, JAW_OPEN] = JAW_AT_FULL_LEVEL * level * self.controls.expression_scale
        m.emotion[:] = emotion_rows(self.controls, self._frames, len(m), self.fps)
        self._frames += len(m)
        return m

    def finish(self) -> MotionSequence:
        return MotionSequence.still(0, self.fps)
