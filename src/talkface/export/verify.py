"""Check the blendshape mapping against our own renderer, by tracking: render, track, compare.

    python -m talkface.export.verify [PORTRAIT]

For each probe (one motion component at a time: jaw, lip rounding and spreading, brows, a blink, each
emotion), the portrait is rendered by the renderer `animate` uses (neutralized, so that an emotion is
measured against a neutral face) and the face mesh tracks the frame; the tracked displacement of the 468 mesh
points from the tracked neutral render, turned frontal and in eye distances, is compared with what the
exported ARKit weights make the blendshape head do (export.arkit: the weights times their fields). Reported:
the correlation of the two displacement fields, the share of the rendered displacement the blendshapes leave
unexplained, and four signals on both (inner-lip gap, mouth width, brow height, the left eye's lid gap), in
eye distances.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from talkface.config import EMOTIONS, RenderOptions
from talkface.export.arkit import arkit_track, blendshape_fields
from talkface.face import topology as T
from talkface.face.expression import EXPRESSIONS
from talkface.face.learned_basis import LEFT_LID_PAIRS, brow_height, lid_gap, lip_gap, load_basis, mouth_width
from talkface.motion.contract import MotionSequence

PROBES: dict[str, dict[str, float]] = {
    "jaw_open 0.5": {"jaw_open": 0.5},
    "lip_round 0.6": {"lip_round": 0.6},
    "lip_spread 0.6": {"lip_spread": 0.6},
    "lip_spread -0.3": {"lip_spread": -0.3},
    "brow_raise 0.6": {"brow_raise": 0.6},
    "brow_raise -0.5": {"brow_raise": -0.5},
    "blink_left 0.8": {"blink_left": 0.8},
    **{f"{e} 1": {e: 1.0} for e in EMOTIONS},
}


@dataclass(frozen=True)
class ProbeResult:
    """corr: correlation of the rendered and the blendshape displacement (x, y of the 468 points).
    unexplained: |rendered - blendshapes|^2 / |rendered|^2. signals: name -> (rendered, blendshapes) change
    in eye distances."""

    name: str
    corr: float
    unexplained: float
    signals: dict[str, tuple[float, float]]


def probe_motion(values: dict[str, float]) -> MotionSequence:
    m = MotionSequence.still(1, 25.0)
    expr, emo = m.expression.copy(), m.emotion.copy()
    for name, v in values.items():
        if name in EXPRESSIONS:
            expr[0, EXPRESSIONS.index(name)] = v
        else:
            emo[0, EMOTIONS.index(name)] = v
    return MotionSequence(expr, m.rotation, m.translation, m.gaze, 25.0, emo)


def verify(portrait) -> list[ProbeResult]:
    from talkface.engine import Engine
    from talkface.face.tracking import track_frames

    engine = Engine(portrait, RenderOptions(size=512, neutralize=True))

    def tracked(motion: MotionSequence) -> np.ndarray:
        return track_frames([engine.renderer.render(motion, 0)])[0].astype(np.float64)

    neutral = tracked(MotionSequence.still(1, 25.0))
    transfer = load_basis().transfer(neutral)
    face0 = transfer.to_face_frame(neutral)
    fields = blendshape_fields() * transfer.axes  # the portrait's face shape, frontal, eye distances
    results = []
    for name, values in PROBES.items():
        motion = probe_motion(values)
        face = transfer.to_face_frame(tracked(motion))
        rendered = (face - face0)[: T.N_MESH, :2]
        weights = arkit_track(motion).weights[0].astype(np.float64)
        shapes = np.tensordot(weights, fields, axes=1)[: T.N_MESH, :2]
        a, b = rendered.ravel(), shapes.ravel()
        corr = float(np.corrcoef(a, b)[0, 1]) if b.std() > 0 else float("nan")
        unexplained = float(((a - b) ** 2).sum() / max((a**2).sum(), 1e-12))
        moved = face0.copy()
        moved[: T.N_MESH, :2] += shapes
        signals = {
            sig: (float(f(face) - f(face0)), float(f(moved) - f(face0)))
            for sig, f in (
                ("lip gap", lip_gap),
                ("mouth width", mouth_width),
                ("brow height", brow_height),
                ("left lid gap", lambda p: lid_gap(p, LEFT_LID_PAIRS)),
            )
        }
        results.append(ProbeResult(name, corr, unexplained, signals))
    return results


def main(argv: list[str] | None = None) -> None:
    from talkface.assets import asset_path

    args = sys.argv[1:] if argv is None else argv
    portrait = args[0] if args else asset_path("portrait.jpg")
    head = "rendered/blendshapes: lip gap, mouth width, brow, left lid"
    print(f"{'probe':<18} {'corr':>6} {'unexpl.':>8}   {head}")
    for r in verify(portrait):
        sig = "  ".join(f"{a:+.3f}/{b:+.3f}" for a, b in r.signals.values())
        print(f"{r.name:<18} {r.corr:6.2f} {r.unexplained:8.2f}   {sig}")


if __name__ == "__main__":
    main()
