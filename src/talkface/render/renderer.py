"""Renderer: one MotionSequence row -> one RGB frame of the portrait crop."""

from __future__ import annotations

import numpy as np

from talkface.face.rig import FaceRig
from talkface.motion.contract import MotionSequence
from talkface.render.eyes import Eyes
from talkface.render.mouth import MouthInterior
from talkface.render.warp import MeshWarp


class Renderer:
    """Precomputes the rig's mesh, rings and mouth colours once; render() is the per-frame path."""

    def __init__(self, rig: FaceRig, neutralize: bool = False):
        """neutralize: take the portrait's own expression away (MeshWarp)."""
        self.rig = rig
        self.warp = MeshWarp(rig, neutralize)
        self.mouth = MouthInterior(rig)
        self.eyes = Eyes(rig, self.warp)  # opens a portrait's closed eyes in the warp

    def render(self, motion: MotionSequence, i: int) -> np.ndarray:
        """Frame i of `motion`, shape (size, size, 3) uint8 RGB (a new array each call)."""
        result = self.warp.warp(
            self.eyes.lids(motion.expression[i], motion.gaze[i]),
            motion.rotation[i],
            motion.translation[i],
            motion.emotion[i],
            motion.scale[i],
        )
        self.mouth.paint(result)
        self.eyes.paint(result, motion.gaze[i])
        return result.image
