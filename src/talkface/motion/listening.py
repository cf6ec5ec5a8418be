"""Listening: how a face behaves while the other person talks, on top of any generator's motion.

Fed silence, a generator already blinks (at its resting rate), shifts its gaze and sways its head, with the
mouth shut. But it sways exactly as much as it does while talking (measured on the rules generator over 10 s
of silence, seeds 0-2: head std 2.3-3.1 degrees per axis, as in speech), and never nods: it looks like a
speaker who paused, not a listener. People listening move their heads less than when they speak and give
small nods now and then (backchannels). Listening adds that, frame by frame, where a live transport knows that
no voice comes (stream.avatar.LiveAvatar): the sway eases down to LISTEN_SWAY of its amplitude, and nods of
NOD_DEG come at log-normal intervals (median NOD_INTERVAL_S), a third of them double, with a small brow raise.
When the voice comes back, both ease out over EASE_S.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from talkface.face.expression import BROW_RAISE
from talkface.motion.contract import MotionSequence

LISTEN_SWAY = 0.5  # head sway while listening, relative to the generator's
EASE_S = 0.4  # time constant of the change between talking and listening
NOD_DEG = (2.0, 3.5)  # pitch of a nod, degrees (down); the renderer shows ~0.6 of it
NOD_S = 0.55  # one nod, down and up
NOD_INTERVAL_S = 5.0  # median time between nods while listening (log-normal, sigma 0.45)
FIRST_NOD_S = (1.2, 3.0)  # the first nod after listening begins
DOUBLE_NOD = 0.33  # share of double nods
NOD_BROW = 0.15  # brow raise at the bottom of a nod


class Listening:
    """Per-frame listening behaviour; call it on each frame in order: (frame index, whether that frame's
    audio is the other side's silence, one row of motion) -> the row adjusted. Seeded: the same calls give
    the same nods."""

    def __init__(self, fps: float, seed: int = 0):
        self.fps = float(fps)
        self._rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4C495354]))
        self._weight = 0.0  # 0 talking .. 1 listening, eased
        self._alpha = 1.0 - float(np.exp(-1.0 / (EASE_S * self.fps)))
        self._listened = 0  # frames since listening began
        self._next_nod = self._frames(self._rng.uniform(*FIRST_NOD_S))
        self._nod: tuple[int, float, int] | None = None  # (start frame, depth in degrees, count)
        self._last = -1

    def __call__(self, index: int, listening: bool, motion: MotionSequence) -> MotionSequence:
        steps = max(1, index - self._last)  # frames skipped (an interrupt) advance the easing too
        self._last = index
        target = 1.0 if listening else 0.0
        self._weight = target + (self._weight - target) * (1.0 - self._alpha) ** steps
        w = self._weight
        if listening:
            self._listened += steps
        else:
            self._listened, self._nod = 0, None
            self._next_nod = self._frames(self._rng.uniform(*FIRST_NOD_S))
        nod = self._nod_at(index) if listening else 0.0
        if w < 1e-3 and nod == 0.0:
            return motion
        rotation = motion.rotation * (1.0 - w * (1.0 - LISTEN_SWAY))
        rotation[:, 1] += nod
        translation = motion.translation * (1.0 - w * (1.0 - LISTEN_SWAY))
        translation[:, 1] += nod * 0.004  # as the generators shift the head with pitch
        expression = motion.expression.copy()
        if nod:
            expression[:, BROW_RAISE] += NOD_BROW * nod / NOD_DEG[1]
        return dataclasses.replace(motion, rotation=rotation, translation=translation, expression=expression)

    def _nod_at(self, index: int) -> float:
        """Degrees of nod (pitch down) at this frame; starts the next nod when it is due."""
        if self._nod is None and self._listened >= self._next_nod:
            count = 2 if self._rng.random() < DOUBLE_NOD else 1
            self._nod = (index, float(self._rng.uniform(*NOD_DEG)), count)
            interval = NOD_INTERVAL_S * float(np.exp(0.45 * self._rng.standard_normal()))
            self._next_nod = self._listened + self._frames(max(2.0, interval))
        if self._nod is None:
            return 0.0
        start, depth, count = self._nod
        t = (index - start) / self.fps
        if t >= NOD_S * count:
            self._nod = None
            return 0.0
        phase = (t % NOD_S) / NOD_S
        scale = 1.0 if t < NOD_S else 0.6  # the second nod of a double is smaller
        return depth * scale * float(np.sin(np.pi * phase) ** 2)

    def _frames(self, seconds: float) -> int:
        return int(round(seconds * self.fps))
