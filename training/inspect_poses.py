"""Render a grid of head poses and jaw openings for a few portraits, to look at the renderer.

    .venv/bin/python training/inspect_poses.py PORTRAIT [PORTRAIT ...] -o OUT_DIR [--size 384]

One sheet per portrait (OUT_DIR/<name>.png): the rig's crop, its person mask and background plate, then
the poses in POSES (yaw, pitch, roll in degrees; jaw_open). The sheets are for looking only: never commit
sheets made from ../shared/data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from talkface.face.expression import EXPRESSIONS
from talkface.face.image import load_image
from talkface.face.rig import build_rig
from talkface.motion.contract import MotionSequence
from talkface.render.renderer import Renderer

POSES = (
    ((15, 0, 0), 0.0),
    ((-15, 0, 0), 0.0),
    ((0, 15, 0), 0.0),
    ((0, -15, 0), 0.0),
    ((0, 0, 10), 0.0),
    ((0, 0, -10), 0.0),
    ((12, -8, 6), 0.6),
    ((0, 0, 0), 1.0),
)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.putText(out, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def sheet(path: Path, size: int, columns: int = 4, poses=POSES) -> np.ndarray:
    rig = build_rig(load_image(path), size)
    renderer = Renderer(rig)
    motion = MotionSequence.still(len(poses), 25.0)
    for i, (rotation, jaw) in enumerate(poses):
        motion.rotation[i] = rotation
        motion.expression[i, EXPRESSIONS.index("jaw_open")] = jaw
    tiles = [_label(rig.image, path.stem[:22])]
    layers = getattr(renderer.warp, "layers", None)
    if layers is not None:
        mask = np.repeat(layers.alpha[..., None], 3, 2)
        tiles += [_label(mask, "mask"), _label(layers.plate, "plate")]
    for i, (rotation, jaw) in enumerate(poses):
        tiles.append(_label(renderer.render(motion, i), f"ypr {rotation} jaw {jaw}"))
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    return np.vstack([np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("portraits", nargs="+", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--columns", type=int, default=4)
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    for p in args.portraits:
        out = sheet(p, args.size, args.columns)
        cv2.imwrite(str(args.output / f"{p.stem}.png"), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
