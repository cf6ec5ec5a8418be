"""Where one frame's time goes: the frame stage (engine.Engine.frame) on the bundled portrait and speech,
split into its parts, median ms per frame after a warm-up; optionally a cProfile of the whole stage, and a
digest of every frame (to check that a change keeps the frames bit for bit).

    .venv/bin/python scripts/profile_render.py [--size 512] [--seconds 8] [--repeat 3] [--cprofile]
        [--motion MOTION.npz] [--save FRAMES.npz] [--compare FRAMES.npz]

The watermark's video id is fixed, so two runs on the same motion (--motion: computed and saved when the file
does not exist, else loaded) give the same frames unless the render changed.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

import cv2
import numpy as np

from talkface.assets import asset_path
from talkface.audio.load import from_samples
from talkface.config import AnimateOptions
from talkface.engine import Engine
from talkface.eval.bench import bundled_speech
from talkface.motion.contract import MotionSequence, concat_motion
from talkface.video.watermark import Payload

FIELDS = ("expression", "rotation", "translation", "gaze", "emotion", "scale")


def _parts(engine: Engine, motion, i: int, t: dict[str, list[float]]) -> np.ndarray:
    """Engine.frame for the default options (no paste, no label), each part timed into t."""
    renderer, warp = engine.renderer, engine.renderer.warp
    clock = time.perf_counter
    t0 = clock()
    expression = renderer.eyes.lids(motion.expression[i], motion.gaze[i])
    v = warp.vertices(
        expression, motion.rotation[i], motion.translation[i], motion.emotion[i], motion.scale[i]
    )
    t1 = clock()
    result = warp.warp(
        expression, motion.rotation[i], motion.translation[i], motion.emotion[i], motion.scale[i]
    )
    t2 = clock()
    renderer.mouth.paint(result)
    t3 = clock()
    renderer.eyes.paint(result, motion.gaze[i])
    t4 = clock()
    frame = engine._marker.embed(result.image, out=result.image)
    t5 = clock()
    del v
    for name, dt in (
        ("vertices", t1 - t0),
        ("warp (vertices+raster+remap+layers)", t2 - t1),
        ("mouth", t3 - t2),
        ("eyes", t4 - t3),
        ("watermark", t5 - t4),
    ):
        t.setdefault(name, []).append(dt * 1000)
    return frame


def _warp_parts(engine: Engine, motion, i: int, t: dict[str, list[float]]) -> None:
    """The inside of MeshWarp.warp, timed: rasterize, remap and background (not the frame's output)."""
    from talkface.render.raster import rasterize_map

    warp = engine.renderer.warp
    expression = engine.renderer.eyes.lids(motion.expression[i], motion.gaze[i])
    v = warp.vertices(
        expression, motion.rotation[i], motion.translation[i], motion.emotion[i], motion.scale[i]
    )
    clock = time.perf_counter
    t0 = clock()
    warp._z.fill(np.inf)
    warp._label.fill(0)
    warp._map[...] = warp._identity
    t1 = clock()
    rasterize_map(
        v.dst.astype(np.float64),
        v.src.astype(np.float64),
        v.depth.astype(np.float64),
        warp.tris,
        warp.labels,
        warp.orient,
        warp._map,
        warp._label,
        warp._z,
    )
    t2 = clock()
    if warp.layers is not None and hasattr(warp.layers, "warp"):
        warp.layers.warp(warp._map)
    else:  # no person layer (or the render before layers.warp existed): the crop's remap, then compose
        image = cv2.remap(warp.rig.image, warp._map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if warp.layers is not None:
            warp.layers.compose(image, warp._map)
    t3 = clock()
    for name, dt in (
        ("  buffers reset", t1 - t0),
        ("  rasterize", t2 - t1),
        ("  remap + background", t3 - t2),
    ):
        t.setdefault(name, []).append(dt * 1000)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--repeat", type=int, default=3, help="passes over the frames (medians over all)")
    ap.add_argument("--cprofile", action="store_true")
    ap.add_argument("--motion", help="motion to render: loaded from this .npz, or computed and saved there")
    ap.add_argument("--save", help="write every frame's pixels to this .npz")
    ap.add_argument("--compare", help="compare every frame with this .npz from --save")
    args = ap.parse_args()

    options = AnimateOptions(size=args.size)
    speech = from_samples(bundled_speech(args.seconds), 16000)
    t = time.perf_counter()
    engine = Engine(asset_path("portrait.jpg"), options, payload=Payload("talkface", "0.1.0", 0x5EED))
    print(f"engine set-up {1000 * (time.perf_counter() - t):.0f} ms")
    if args.motion and Path(args.motion).exists():
        saved = np.load(args.motion)
        motion = MotionSequence(**{k: saved[k] for k in FIELDS}, fps=float(saved["fps"]))
    else:
        motion = concat_motion(list(engine.motion_windows(speech, options)))
        if args.motion:
            np.savez(args.motion, fps=motion.fps, **{k: getattr(motion, k) for k in FIELDS})
    n = len(motion)
    for i in range(5):  # warm-up (numba cache load, first allocations)
        engine.frame(motion, i)

    whole: list[float] = []
    frames = []
    for r in range(args.repeat):
        for i in range(n):
            t = time.perf_counter()
            f = engine.frame(motion, i)
            whole.append((time.perf_counter() - t) * 1000)
            if r == 0 and (args.save or args.compare):
                frames.append(f.copy())
    parts: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for i in range(n):
            _parts(engine, motion, i, parts)
            _warp_parts(engine, motion, i, parts)
    print(f"{n} frames at {args.size}, {args.repeat} passes")
    ms = np.median(whole)
    print(f"Engine.frame (render + watermark): median {ms:.3f} ms  ({1000 / ms:.0f} fps)")
    for name, ms in parts.items():
        print(f"  {name:40s} median {np.median(ms):7.3f} ms")

    if args.save:
        np.savez_compressed(args.save, frames=np.stack(frames))
    if args.compare:
        ref = np.load(args.compare)["frames"]
        got = np.stack(frames)
        diff = np.abs(ref.astype(np.int16) - got.astype(np.int16))
        print(
            f"compare with {args.compare}: identical={np.array_equal(ref, got)} "
            f"max |diff|={diff.max()} pixels differing={(diff > 0).any(3).sum()} of {diff[..., 0].size}"
        )
    if args.cprofile:
        prof = cProfile.Profile()
        prof.enable()
        for i in range(n):
            engine.frame(motion, i)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
