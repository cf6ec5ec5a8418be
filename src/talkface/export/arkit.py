"""The motion as Apple ARKit's 52 blendshapes, with head and eye rotation, for rigged characters.

Each ARKit blendshape is given a displacement field over the face mesh in the learned basis's canonical frame
(face.learned_basis: frontal, eye distance 1; x to the viewer's right, y down, z away), built from the same
fields the renderer moves: the learned directions for jawOpen, mouthPucker and the blinks, the action units
(face.action_units) for the rest, each split into the subject's left and right halves where ARKit has two
shapes. "Left" is the subject's own left, as in ARKit (x > 0 here).

The motion latent -> blendshape weights mapping is then fitted, not guessed: every component of the latent
(the six expression coefficients of face.expression.EXPRESSIONS, each sign separately, and the 20 action
units that emotions combine) is a displacement field. A component a blendshape was built from maps to it
(its twin: the jaw, the pucker, the blinks, every action unit, which those fields then reproduce exactly);
the others' weights are the bounded (0..1), lightly ridged least-squares fit of their field by the blendshape
fields over the 468 mesh vertices' x and y (scipy's lsq_linear): the learned lip spreading, for instance,
comes out as a mix of smile, lower-lip roll, shrug, upper-lip raise and stretch. `fit_report()` gives each
component's weights and the share of its displacement the blendshapes reproduce (`python -m
talkface.export.arkit`); export.verify checks the result against our renderer, tracked by the face mesh.
The same fields are the morph targets of the glTF head (export.gltf), so a viewer of it sees what the
weights say.

Per frame, the weights are the latent's positive and negative parts times their fits, summed and clipped to
0..1; emotions reach the face as the renderer applies them (their action units, the jaw gain of surprise and
fear, a lowered lower lip only as far as the voice opens the jaw).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from functools import cache

import numpy as np

from talkface.face import topology as T
from talkface.face.action_units import ACTION_UNITS, AU, canonical_fields, jaw_gains, recipe_matrix
from talkface.face.expression import (
    BLINK_LEFT,
    BLINK_RIGHT,
    EXPRESSIONS,
    JAW_OPEN,
    LIP_ROUND,
    lip_regions,
)
from talkface.face.learned_basis import load_basis
from talkface.motion.contract import MotionSequence

# ARKit's blendshape names (ARFaceAnchor.BlendShapeLocation), in the column order of Live Link Face's CSV.
ARKIT_NAMES = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawRight", "jawLeft", "jawOpen", "mouthClose",
    "mouthFunnel", "mouthPucker", "mouthRight", "mouthLeft", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)  # fmt: skip
assert len(ARKIT_NAMES) == 52 and len(set(ARKIT_NAMES)) == 52
ARKIT = {name: i for i, name in enumerate(ARKIT_NAMES)}
# Live Link Face's CSV: these columns follow the 52 blendshapes (BlendShapeCount counts all 61).
ROTATION_COLUMNS = (
    "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)  # fmt: skip
# Eye rotation (degrees) at which an eyeLook* blendshape reaches 1: about the eye's comfortable range.
EYE_LOOK_RANGE_DEG = 30.0
SIDE_BLEND = 0.12  # eye distances across the midline over which a left/right split fades (no seam)

# Blendshapes built from one action unit (or learned direction), split by side where the name has one. The
# mouthRoll and mouthPress shapes share the lip press (AU24): press on each side, roll on each lip, half each.
_FROM_UNIT = {
    "mouthFunnel": "funnel",
    "mouthSmileLeft": "lip_corner_pull",
    "mouthSmileRight": "lip_corner_pull",
    "mouthFrownLeft": "lip_corner_depress",
    "mouthFrownRight": "lip_corner_depress",
    "mouthDimpleLeft": "dimple",
    "mouthDimpleRight": "dimple",
    "mouthStretchLeft": "lip_stretch",
    "mouthStretchRight": "lip_stretch",
    "mouthShrugLower": "chin_raise",
    "mouthLowerDownLeft": "lower_lip_depress",
    "mouthLowerDownRight": "lower_lip_depress",
    "mouthUpperUpLeft": "upper_lip_raise",
    "mouthUpperUpRight": "upper_lip_raise",
    "browDownLeft": "brow_lower",
    "browDownRight": "brow_lower",
    "browInnerUp": "brow_inner_raise",
    "browOuterUpLeft": "brow_outer_raise",
    "browOuterUpRight": "brow_outer_raise",
    "cheekSquintLeft": "cheek_raise",
    "cheekSquintRight": "cheek_raise",
    "noseSneerLeft": "nose_wrinkle",
    "noseSneerRight": "nose_wrinkle",
    "eyeSquintLeft": "lid_tighten",
    "eyeSquintRight": "lid_tighten",
    "eyeWideLeft": "upper_lid_raise",
    "eyeWideRight": "upper_lid_raise",
}
PRESS_SHARE = 0.5  # of the lip press in mouthPressLeft + mouthPressRight; the rest in the two mouthRolls
# Not driven: no part of our motion moves the jaw sideways or forward, the lips sideways, puffs the cheeks,
# shows the tongue, or closes the lips against an open jaw.
UNDRIVEN = (
    "jawForward", "jawRight", "jawLeft", "mouthClose", "mouthRight", "mouthLeft", "mouthShrugUpper",
    "cheekPuff", "tongueOut",
)  # fmt: skip
GAZE_DRIVEN = tuple(n for n in ARKIT_NAMES if n.startswith("eyeLook"))
MESH_DRIVEN = tuple(n for n in ARKIT_NAMES if n not in UNDRIVEN and n not in GAZE_DRIVEN)


def _side(mean: np.ndarray, left: bool) -> np.ndarray:
    """Weight (478,) of the subject's left (x > 0) or right half, a smooth step across the midline."""
    t = np.clip(mean[:, 0] / SIDE_BLEND * (1 if left else -1) + 0.5, 0.0, 1.0)
    return t * t * (3 - 2 * t)


@cache
def blendshape_fields() -> np.ndarray:
    """Each ARKit blendshape's displacement at weight 1 in the canonical frame, (52, 478, 3) float64, eye
    distances; zeros for the blendshapes our motion does not drive (UNDRIVEN, and the eyeLook shapes, which
    turn the eyeballs: no mesh vertex)."""
    basis = load_basis()
    mean = basis.mean
    units = canonical_fields()
    fields = np.zeros((len(ARKIT_NAMES), T.N_POINTS, 3))
    fields[ARKIT["jawOpen"]] = basis.semantic[JAW_OPEN]
    fields[ARKIT["mouthPucker"]] = basis.semantic[LIP_ROUND]
    fields[ARKIT["eyeBlinkLeft"]] = basis.semantic[BLINK_LEFT]
    fields[ARKIT["eyeBlinkRight"]] = basis.semantic[BLINK_RIGHT]
    for name, unit in _FROM_UNIT.items():
        field = units[AU[unit]]
        if name.endswith("Left"):
            field = field * _side(mean, left=True)[:, None]
        elif name.endswith("Right"):
            field = field * _side(mean, left=False)[:, None]
        fields[ARKIT[name]] = field
    press = units[AU["lip_press"]]
    for name, left in (("mouthPressLeft", True), ("mouthPressRight", False)):
        fields[ARKIT[name]] = PRESS_SHARE * press * _side(mean, left)[:, None]
    upper, lower = lip_regions(mean * 100.0)  # (lip_regions works in pixels)
    for name, lip in (("mouthRollUpper", upper), ("mouthRollLower", lower)):
        fields[ARKIT[name], lip] = (1 - PRESS_SHARE) * press[lip]
    # Lip-press skin off both lips (the corners' handles, the surrounding skin) goes with the press shapes.
    rest = np.ones(T.N_POINTS, bool)
    rest[upper] = rest[lower] = False
    for name, left in (("mouthPressLeft", True), ("mouthPressRight", False)):
        fields[ARKIT[name], rest] += (1 - PRESS_SHARE) * (press * _side(mean, left)[:, None])[rest]
    fields[:, T.N_MESH :] = 0.0
    fields.setflags(write=False)
    return fields


# -- the fitted mapping -----------------------------------------------------------------------------------

# The latent's components: each expression coefficient's positive and negative part, then each action unit's.
COMPONENTS = tuple(
    [f"{n}+" for n in EXPRESSIONS] + [f"{n}-" for n in EXPRESSIONS] + [f"{n}+" for n in ACTION_UNITS]
    + [f"{n}-" for n in ACTION_UNITS]
)  # fmt: skip


FIT_RIDGE = 0.01  # ridge on the weights, as a share of a blendshape field's mean sum of squares
FIT_MAX = 1.0  # no blendshape weight per unit of a component beyond this
# Fitted on the mesh's x and y (as a camera, or the face mesh tracking a render, sees it): the learned
# directions' depth is the tracker's least certain axis.
FIT_AXES = 2
# A component the blendshapes reproduce less than this share of is left out (no weights): a closing of the
# lips past their rest (jaw_open < 0) has no ARKit shape, and a poor fit would only add cross-talk.
MIN_EXPLAINED = 0.5


@dataclass(frozen=True)
class Fit:
    """weights: (len(COMPONENTS), 52), blendshape weights per unit of each component. explained: (len(
    COMPONENTS),), the share of each component's displacement (sum of squares over the mesh) the weighted
    blendshapes reproduce, 1 = exactly (a component below MIN_EXPLAINED has no weights)."""

    weights: np.ndarray
    explained: np.ndarray


def _component_fields() -> np.ndarray:
    basis = load_basis()
    units = canonical_fields()
    plus = np.concatenate([basis.semantic, units])  # (6 + 20, 478, 3)
    k = len(EXPRESSIONS)
    return np.concatenate([plus[:k], -plus[:k], plus[k:], -plus[k:]])


def _twins() -> dict[str, dict[str, float]]:
    """The components whose blendshapes were built from their own field (blendshape_fields), with them."""
    twins: dict[str, dict[str, float]] = {
        "jaw_open+": {"jawOpen": 1.0},
        "jaw_drop+": {"jawOpen": 1.0},
        "lip_round+": {"mouthPucker": 1.0},
        "pucker+": {"mouthPucker": 1.0},
        "blink_left+": {"eyeBlinkLeft": 1.0},
        "blink_right+": {"eyeBlinkRight": 1.0},
        "lip_press+": dict.fromkeys(
            ("mouthPressLeft", "mouthPressRight", "mouthRollUpper", "mouthRollLower"), 1.0
        ),
        "lip_corner_pull_right+": {"mouthSmileRight": 1.0},
        "dimple_right+": {"mouthDimpleRight": 1.0},
    }
    for name, unit in _FROM_UNIT.items():
        twins.setdefault(f"{unit}+", {})[name] = 1.0
    return twins


@cache
def fit() -> Fit:
    """The latent -> blendshape mapping, fitted by bounded least squares on the mesh (see the module
    docstring)."""
    from scipy.optimize import lsq_linear

    fields = blendshape_fields()
    driven = [ARKIT[n] for n in MESH_DRIVEN]
    a = fields[driven][:, : T.N_MESH, :FIT_AXES].reshape(len(driven), -1).T  # (936, D)
    # A small ridge: among near-equal fits, the one with the least weight (a faint shape is not driven far
    # past 1 to stand in for another).
    ridge = np.sqrt(FIT_RIDGE * float((a * a).sum(0).mean())) * np.eye(len(driven))
    a_ridge = np.concatenate([a, ridge])
    comps = _component_fields()[:, : T.N_MESH, :FIT_AXES].reshape(len(COMPONENTS), -1)
    weights = np.zeros((len(COMPONENTS), len(ARKIT_NAMES)))
    explained = np.zeros(len(COMPONENTS))
    twins = _twins()
    for c, target in enumerate(comps):
        total = float(target @ target)
        if total < 1e-12:
            continue
        if COMPONENTS[c] in twins:  # built from this very field: its twin, not a fit
            w = np.zeros(len(driven))
            for name, value in twins[COMPONENTS[c]].items():
                w[driven.index(ARKIT[name])] = value
        else:
            b = np.concatenate([target, np.zeros(len(driven))])
            w = lsq_linear(a_ridge, b, bounds=(0.0, FIT_MAX), method="bvls").x
            w[w < 0.01] = 0.0
        residual = target - a @ w
        explained[c] = 1.0 - float(residual @ residual) / total
        if explained[c] >= MIN_EXPLAINED:
            weights[c, driven] = w
    weights.setflags(write=False)
    explained.setflags(write=False)
    return Fit(weights, explained)


def fit_report() -> str:
    """The fitted mapping as text: each component, the share of its displacement reproduced, its weights."""
    f = fit()
    lines = []
    for c, name in enumerate(COMPONENTS):
        w = f.weights[c]
        if not w.any():
            if f.explained[c] > 0:
                lines.append(f"{name:<24} {100 * f.explained[c]:5.1f} %  (left out)")
            continue
        parts = ", ".join(f"{ARKIT_NAMES[j]} {w[j]:.2f}" for j in np.argsort(-w) if w[j] >= 0.01)
        lines.append(f"{name:<24} {100 * f.explained[c]:5.1f} %  {parts}")
    return "\n".join(lines)


# -- per frame ----------------------------------------------------------------------------------------------

PARTING_JAW = 0.15  # as render.warp: the lower lip's depressor acts fully from this speech jaw opening


def latent(motion: MotionSequence) -> np.ndarray:
    """The motion's components as the renderer applies them, (T, len(EXPRESSIONS) + len(ACTION_UNITS)): the
    expression coefficients (the jaw widened by the emotions' jaw gains) and the emotions' action units."""
    expr = motion.expression.astype(np.float64).copy()
    emotion = motion.emotion.astype(np.float64)
    jaw = expr[:, JAW_OPEN]
    expr[:, JAW_OPEN] = np.where(jaw > 0, jaw * (1.0 + emotion @ jaw_gains()), jaw)
    aus = emotion @ recipe_matrix()
    aus[:, AU["lower_lip_depress"]] *= np.clip(jaw / PARTING_JAW, 0.0, 1.0)
    return np.concatenate([expr, aus], axis=1)


def _split(z: np.ndarray) -> np.ndarray:
    """Latent (T, C) -> its components (T, 2C) in COMPONENTS' order."""
    k = len(EXPRESSIONS)
    expr, aus = z[:, :k], z[:, k:]
    return np.concatenate(
        [np.maximum(expr, 0), np.maximum(-expr, 0), np.maximum(aus, 0), np.maximum(-aus, 0)], axis=1
    )


@dataclass(frozen=True)
class ArkitTrack:
    """weights: (T, 52) float32 in 0..1, columns ARKIT_NAMES. head: (T, 3) float32 yaw, pitch, roll in degrees
    (the MotionSequence's: yaw > 0 turns the face to the viewer's right, pitch > 0 nods down, roll > 0 tilts
    clockwise as seen). eyes: (T, 2) float32 gaze yaw, pitch in degrees relative to the head, both eyes
    (yaw > 0: towards the viewer's right; pitch > 0: down). fps: frames per second."""

    weights: np.ndarray
    head: np.ndarray
    eyes: np.ndarray
    fps: float

    def __len__(self) -> int:
        return len(self.weights)

    def column(self, name: str) -> np.ndarray:
        return self.weights[:, ARKIT[name]]


def arkit_track(motion: MotionSequence) -> ArkitTrack:
    """The motion's ARKit blendshape weights, head and eye rotation (see ArkitTrack)."""
    w = _split(latent(motion)) @ fit().weights
    gaze = motion.gaze.astype(np.float64)
    look = np.clip(np.abs(gaze) / EYE_LOOK_RANGE_DEG, 0.0, 1.0)
    right_of_viewer, down = gaze[:, 0] > 0, gaze[:, 1] > 0
    # Looking to the viewer's right is looking to the subject's left: out for the left eye, in for the right.
    w[:, ARKIT["eyeLookOutLeft"]] = np.where(right_of_viewer, look[:, 0], 0.0)
    w[:, ARKIT["eyeLookInRight"]] = np.where(right_of_viewer, look[:, 0], 0.0)
    w[:, ARKIT["eyeLookInLeft"]] = np.where(right_of_viewer, 0.0, look[:, 0])
    w[:, ARKIT["eyeLookOutRight"]] = np.where(right_of_viewer, 0.0, look[:, 0])
    for side in ("Left", "Right"):
        w[:, ARKIT[f"eyeLookDown{side}"]] = np.where(down, look[:, 1], 0.0)
        w[:, ARKIT[f"eyeLookUp{side}"]] = np.where(down, 0.0, look[:, 1])
    w = np.clip(w, 0.0, 1.0).astype(np.float32)
    return ArkitTrack(w, motion.rotation.astype(np.float32), gaze.astype(np.float32), float(motion.fps))


# -- files --------------------------------------------------------------------------------------------------


def arkit_json(track: ArkitTrack, duration: float) -> str:
    """The track as JSON: {"fps", "duration", "names" (52), "frames": [{"time", "weights" (52), "head": {yaw,
    pitch, roll in degrees}, "eyes": {yaw, pitch in degrees}}]}; weights rounded to 4 decimals."""
    frames = [
        {
            "time": round(i / track.fps, 4),
            "weights": [round(float(v), 4) for v in track.weights[i]],
            "head": dict(
                zip(("yaw", "pitch", "roll"), (round(float(v), 3) for v in track.head[i]), strict=True)
            ),
            "eyes": dict(zip(("yaw", "pitch"), (round(float(v), 3) for v in track.eyes[i]), strict=True)),
        }
        for i in range(len(track))
    ]
    doc = {
        "format": "arkit-blendshapes",
        "fps": track.fps,
        "duration": round(duration, 4),
        "names": list(ARKIT_NAMES),
        "head_units": "degrees; yaw > 0 turns the face to the viewer's right, pitch > 0 nods down, roll > 0 "
        "tilts it clockwise as seen",
        "eyes_units": "degrees relative to the head, both eyes; yaw > 0 looks to the viewer's right, "
        "pitch > 0 looks down",
        "frames": frames,
    }
    return json.dumps(doc, separators=(",", ":")) + "\n"


def timecode(i: int, fps: float) -> str:
    """Live Link Face's timecode of frame i: HH:MM:SS:FF.fff, FF the frame within the second at `fps` and
    .fff the fraction of a frame (0 here: frames fall on whole frames)."""
    seconds = i / fps
    whole = int(np.floor(seconds + 1e-9))
    frame = (seconds - whole) * fps
    h, m, s = whole // 3600, whole // 60 % 60, whole % 60
    return f"{h:02d}:{m:02d}:{s:02d}:{int(frame + 1e-6):02d}.{int(round((frame % 1) * 1000)) % 1000:03d}"


def arkit_csv(track: ArkitTrack) -> str:
    """The track in the layout of Live Link Face's CSV: Timecode, BlendShapeCount (61), the 52 blendshapes
    (capitalised: EyeBlinkLeft ...), then HeadYaw, HeadPitch, HeadRoll and each eye's yaw, pitch, roll, in
    radians (our signs: see ArkitTrack)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = [n[0].upper() + n[1:] for n in ARKIT_NAMES]
    writer.writerow(["Timecode", "BlendShapeCount", *names, *ROTATION_COLUMNS])
    head = np.radians(track.head.astype(np.float64))
    eyes = np.radians(track.eyes.astype(np.float64))
    count = len(ARKIT_NAMES) + len(ROTATION_COLUMNS)
    for i in range(len(track)):
        eye = [eyes[i, 0], eyes[i, 1], 0.0]
        values = [*track.weights[i], *head[i], *eye, *eye]
        writer.writerow([timecode(i, track.fps), count, *(f"{float(v):.6f}" for v in values)])
    return out.getvalue()


if __name__ == "__main__":
    print(fit_report())
