"""Action units (in the spirit of FACS) as displacement fields of the face mesh, the emotions made of them,
and the portrait's own rest expression in their terms.

Each action unit is a field over the 478 landmarks in the learned basis's canonical frame (face.learned_basis:
frontal, symmetric, eye distance 1; x to the viewer's right, y down, z away), in eye distances at activation
1, a strong but natural extreme (FACS intensity D-E). Where the real talking-face video shows the motion, the
field is the one learned from it: the brow raisers are the learned brow_raise direction split into its inner
(AU1) and outer (AU2) parts, the jaw drop (AU26) is the learned jaw_open, the pucker (AU18) the learned
lip_round. The others are shaped from the anatomy: the skin over each muscle moves its handles (the landmarks
the muscle pulls, with the direction and extent of its pull), and the surrounding skin follows through a
smooth radial-basis interpolation that holds anchors still (the eye corners, the nose bridge and the face
outline for the upper face; the chin and nose for the mouth), so that nothing tears: brows and lids slide over
the eyes, lip corners drag the cheeks and the chin along.

The amplitudes follow published measurements of posed expressions, in eye distances (interocular ~ 63 mm):
lip corners rise ~ 6-9 mm and widen ~ 5-8 mm in a broad smile; brows rise ~ 6-10 mm in surprise; brow lowering
~ 4-6 mm with the inner brows drawn ~ 3-4 mm together; the lower lid rises ~ 2-3 mm with the cheeks; the
nostril wings rise ~ 3-4 mm in disgust.

EMOTIONS combine action units after Ekman & Friesen's EMFACS prototypes (happy 6+12, sad 1+4+15 (+17),
angry 4+5+7+24, surprised 1+2+5, fearful 1+2+4+5+20, disgusted 9+10+15+16, contemptuous unilateral
12+14). The jaw drop of surprise and fear widens the voice's own jaw opening (JAW_GAINS) instead of holding
the mouth open, so that the lips still close on p, b and m.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from talkface.config import EMOTIONS
from talkface.face import topology as T
from talkface.face.expression import BROW_RAISE, JAW_OPEN, LIP_ROUND, lip_regions
from talkface.face.learned_basis import LearnedBasis, load_basis

ACTION_UNITS = (
    "brow_inner_raise",  # AU1
    "brow_outer_raise",  # AU2
    "brow_lower",  # AU4
    "upper_lid_raise",  # AU5
    "cheek_raise",  # AU6
    "lid_tighten",  # AU7
    "nose_wrinkle",  # AU9
    "upper_lip_raise",  # AU10
    "lip_corner_pull",  # AU12
    "dimple",  # AU14
    "lip_corner_depress",  # AU15
    "lower_lip_depress",  # AU16
    "chin_raise",  # AU17
    "pucker",  # AU18
    "lip_stretch",  # AU20
    "funnel",  # AU22
    "lip_press",  # AU24
    "jaw_drop",  # AU26
    "lip_corner_pull_right",  # AU12 on the subject's right only (R12)
    "dimple_right",  # AU14 on the subject's right only (R14)
)
AU = {name: i for i, name in enumerate(ACTION_UNITS)}
FACS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 18, 20, 22, 24, 26, 12, 14)  # AU numbers, in order

# Emotion -> action-unit activations at emotion strength 1 (EMFACS prototypes; see the module docstring).
RECIPES: dict[str, dict[str, float]] = {
    "happy": {"lip_corner_pull": 1.5, "cheek_raise": 1.0, "lid_tighten": 0.2},
    "sad": {
        "brow_inner_raise": 1.1,
        "brow_lower": 0.5,
        "lip_corner_depress": 1.1,
        "chin_raise": 0.15,
        "upper_lid_raise": -0.3,  # heavy lids
    },
    "angry": {
        "brow_lower": 1.3,
        "lid_tighten": 0.9,
        "upper_lid_raise": 0.25,  # the glare: lids wide above, tight below
        "lip_press": 1.0,
        "chin_raise": 0.3,
    },
    "surprised": {"brow_inner_raise": 1.1, "brow_outer_raise": 1.1, "upper_lid_raise": 1.1},
    "fearful": {
        "brow_inner_raise": 1.1,
        "brow_outer_raise": 0.4,
        "brow_lower": 0.9,  # raised and drawn together: the fear brow, flat and tense, not surprise's arch
        "upper_lid_raise": 1.2,
        "lip_stretch": 1.6,
    },
    "disgusted": {
        "nose_wrinkle": 1.4,
        "upper_lip_raise": 0.8,
        "lower_lip_depress": 0.6,
        "lip_corner_depress": 0.4,
        "cheek_raise": 0.3,
        "brow_lower": 0.2,
    },
    "contemptuous": {"lip_corner_pull_right": 1.3, "dimple_right": 1.0},
}
assert set(RECIPES) == set(EMOTIONS)
# The jaw drop (AU26) of surprise and fear as a gain on the speech jaw at strength 1: the mouth opens wider on
# the vowels and still closes on p, b and m.
JAW_GAINS = {"surprised": 0.6, "fearful": 0.4}


def jaw_gains() -> np.ndarray:
    """The speech jaw's extra gain per emotion at strength 1, shape (len(EMOTIONS),)."""
    return np.array([JAW_GAINS.get(name, 0.0) for name in EMOTIONS])


def recipe_matrix() -> np.ndarray:
    """Action-unit activations per emotion at strength 1, shape (len(EMOTIONS), len(ACTION_UNITS))."""
    m = np.zeros((len(EMOTIONS), len(ACTION_UNITS)))
    for e, name in enumerate(EMOTIONS):
        for au, value in RECIPES[name].items():
            m[e, AU[au]] = value
    return m


# -- anatomical fields --------------------------------------------------------------------------------------

# Handles are given for the subject's right side (x < 0 on the canonical face, the viewer's left), then
# mirrored.
# (landmarks, (dx, dy, dz)): dx < 0 is outwards on this side, dy < 0 up, dz < 0 towards the camera.
Handles = list[tuple[tuple[int, ...], tuple[float, float, float]]]

_R_UPPER_LID = T.RIGHT_EYE_UPPER  # 246 161 160 159 158 157 173 (outer to inner)
_R_LOWER_LID = T.RIGHT_EYE_LOWER  # 7 163 144 145 153 154 155
_R_EYE = (*T.RIGHT_EYE, *T.RIGHT_IRIS)
_UPPER_FACE_ANCHORS = (*T.FACE_OVAL, 168, 6, 197, 195, 5, 4, 1, 2, 98, 327, 33, 133, 263, 362)
_MOUTH_ANCHORS = (
    *T.FACE_OVAL[:8],
    *T.FACE_OVAL[-8:],
    168,
    6,
    197,
    195,
    5,
    4,
    1,
    9,
    8,
    151,
    33,
    133,
    263,
    362,
)


RBF_SMOOTHING = 0.05  # ridge on the radial-basis weights: handles are met within a few per cent


@dataclass(frozen=True)
class _Spec:
    handles: Handles
    anchors: tuple[int, ...]
    sigma: float  # reach of the skin's following, eye distances
    symmetric: bool = True  # mirrored onto the subject's left side too
    # "upper" or "lower": the action moves one lip only, the other stays (the two lips of a closed mouth lie
    # too close together for the interpolation to tell apart).
    lip: str | None = None


_SPECS: dict[str, _Spec] = {
    "brow_lower": _Spec(
        [
            ((107, 55), (0.06, 0.1, 0.01)),
            ((66, 65), (0.04, 0.095, 0.01)),
            ((105, 52), (0.02, 0.07, 0.0)),
            ((63, 53, 70, 46), (0.0, 0.035, 0.0)),
            ((9,), (0.0, 0.04, 0.0)),
        ],
        (*_UPPER_FACE_ANCHORS, *_R_EYE),
        0.2,
    ),
    "upper_lid_raise": _Spec(
        [
            ((159,), (0.0, -0.05, 0.0)),
            ((158, 160), (0.0, -0.045, 0.0)),
            ((157, 161), (0.0, -0.032, 0.0)),
            ((173, 246), (0.0, -0.015, 0.0)),
            ((27, 28, 29), (0.0, -0.02, 0.0)),
        ],
        (*_UPPER_FACE_ANCHORS, *_R_LOWER_LID, *T.RIGHT_BROW),
        0.12,
    ),
    "cheek_raise": _Spec(
        [
            ((145, 144, 153), (0.0, -0.035, 0.0)),
            ((163, 154), (0.0, -0.025, 0.0)),
            ((111, 117, 118, 119, 120, 100, 101), (0.0, -0.05, -0.01)),
            ((50, 123, 116, 36, 205, 187), (-0.005, -0.055, -0.015)),
            ((33, 130, 25, 110), (-0.005, -0.01, 0.0)),  # crow's feet: the outer corner pulled a little
        ],
        (*T.FACE_OVAL, 168, 6, 197, 195, 5, 4, 1, 61, 291, 0, 17, 13, 14, *_R_UPPER_LID, *T.RIGHT_BROW, 133),
        0.2,
    ),
    "lid_tighten": _Spec(
        [
            ((145,), (0.0, -0.03, 0.0)),
            ((144, 153), (0.0, -0.025, 0.0)),
            ((163, 154), (0.0, -0.015, 0.0)),
            ((159, 158, 160), (0.0, 0.005, 0.0)),
        ],
        (*_UPPER_FACE_ANCHORS, *T.RIGHT_BROW),
        0.1,
    ),
    "nose_wrinkle": _Spec(
        [
            ((98, 64, 48, 115, 129, 102), (0.005, -0.065, 0.0)),
            ((209, 49, 131, 198), (0.0, -0.045, 0.0)),
            ((107, 55, 66, 65), (0.015, 0.035, 0.0)),
            ((9, 8), (0.0, 0.02, 0.0)),
            ((0, 37, 39, 267, 269), (0.0, -0.02, 0.0)),
        ],
        (*T.FACE_OVAL, 33, 133, 263, 362, *_R_EYE, 1, 4, 152, 175, 17, 14),
        0.18,
    ),
    "upper_lip_raise": _Spec(
        [
            ((0, 37, 267), (0.0, -0.045, -0.005)),
            ((39, 269, 40, 270), (0.0, -0.038, 0.0)),
            ((164, 167, 393), (0.0, -0.025, 0.0)),  # the philtrum rises with the lip
            # The inner lip rises less: the lips can still close on p, b and m under the emotions that use it.
            ((13, 82, 312, 81, 311), (0.0, -0.015, 0.0)),
            ((80, 310, 191, 415), (0.0, -0.01, 0.0)),
            ((185, 409), (0.0, -0.02, 0.0)),
            ((98, 327, 64, 294), (0.0, -0.02, 0.0)),
        ],
        (*_MOUTH_ANCHORS, 61, 291, 152, 175, 199),
        0.15,
        lip="upper",
    ),
    "lip_corner_pull": _Spec(
        [
            ((61, 78), (-0.07, -0.09, 0.02)),
            ((185, 191, 146, 95), (-0.055, -0.07, 0.015)),  # the lips near the corner go with it
            ((40, 80, 91, 88), (-0.03, -0.04, 0.005)),
            # The skin just outside the corner (its crease) goes with it too: a smile taken away must not
            # leave the crease behind, stretched into a line.
            ((57, 186, 92, 43), (-0.055, -0.07, 0.0)),
            ((216, 206, 207, 165), (-0.035, -0.05, -0.01)),  # the cheek mass beside the corner
            ((205, 187, 50, 36), (-0.01, -0.04, -0.01)),
            ((202, 212, 214, 204), (-0.02, -0.03, 0.0)),  # below the corner: the skin follows, no fold
        ],
        (*_MOUTH_ANCHORS, 0, 13, 14, 17, 152, 175, 199, 200),
        0.16,
        symmetric=True,
    ),
    "dimple": _Spec(
        [
            ((61, 78), (0.025, -0.01, 0.03)),
            ((185, 191, 146, 95), (0.012, -0.005, 0.015)),
            ((216, 206, 207), (0.0, 0.0, 0.02)),
        ],
        (*_MOUTH_ANCHORS, 0, 13, 14, 17, 152, 175),
        0.12,
    ),
    "lip_corner_depress": _Spec(
        [
            ((61, 78), (-0.01, 0.075, 0.0)),
            ((146, 95, 91, 88), (0.0, 0.05, 0.0)),
            ((185, 191), (0.0, 0.07, 0.0)),
            ((40, 80), (0.0, 0.035, 0.0)),
            ((57, 43, 202, 204, 106, 182), (0.0, 0.05, 0.0)),  # skin below the corner, towards the jaw
        ],
        (*_MOUTH_ANCHORS, 0, 13, 14, 17, 152, 175, 199),
        0.15,
    ),
    "lower_lip_depress": _Spec(
        [
            ((17, 14, 314, 84, 317, 87), (0.0, 0.055, -0.01)),
            ((405, 181, 402, 178, 321, 91, 318, 88), (0.0, 0.04, -0.005)),
            ((375, 146, 324, 95), (0.0, 0.02, 0.0)),
            ((18, 83, 313), (0.0, 0.03, 0.0)),
        ],
        (*_MOUTH_ANCHORS, 61, 291, 152, 175),
        0.14,
        lip="lower",
    ),
    "chin_raise": _Spec(
        [
            ((152, 175, 199, 200, 201, 421, 208, 428), (0.0, -0.05, -0.01)),
            ((18, 83, 313, 32, 262), (0.0, -0.045, -0.02)),
            ((17, 84, 314, 181, 405), (0.0, -0.025, -0.025)),  # the lower lip pushed up and out
        ],
        (*_MOUTH_ANCHORS, *T.INNER_LOWER, 61, 291),
        0.2,
        lip="lower",
    ),
    "lip_stretch": _Spec(
        [
            ((61, 78), (-0.1, 0.02, 0.01)),
            ((185, 191, 146, 95), (-0.07, 0.015, 0.005)),
            ((40, 80, 91, 88), (-0.035, 0.008, 0.0)),
            ((57, 43, 216, 206), (-0.045, 0.015, 0.0)),
        ],
        (*_MOUTH_ANCHORS, 0, 13, 14, 17, 152, 175),
        0.15,
    ),
    "lip_press": _Spec(
        [
            ((0, 37, 267, 39, 269), (0.0, 0.035, 0.008)),  # the red of the upper lip rolls in
            ((17, 84, 314, 181, 405), (0.0, -0.03, 0.008)),  # and of the lower lip
            ((61, 291), (0.01, 0.0, 0.0)),
        ],
        (*_MOUTH_ANCHORS, *T.INNER_LIP, 152, 175),
        0.1,
        symmetric=False,  # the handles already span both sides
    ),
}


@cache
def _mirror() -> np.ndarray:
    """Index of each landmark's mirror image on the canonical (symmetric) mean face, shape (478,)."""
    m = load_basis().mean
    flipped = m * np.array([-1.0, 1.0, 1.0])
    d = ((flipped[:, None, :2] - m[None, :, :2]) ** 2).sum(-1)
    mirror = d.argmin(1)
    mirror[T.RIGHT_IRIS] = T.LEFT_IRIS
    mirror[T.LEFT_IRIS] = T.RIGHT_IRIS
    return mirror


def _interpolated(mean: np.ndarray, handles: Handles, anchors: tuple[int, ...], sigma: float) -> np.ndarray:
    """A smooth field (478, 3) through the handles' displacements and zero at the anchors: Gaussian radial
    basis functions over the canonical face's x, y (a landmark listed twice keeps its first displacement; a
    handle wins over an anchor at the same point)."""
    moves: dict[int, tuple[float, float, float]] = {}
    for points, d in handles:
        for i in points:
            moves.setdefault(i, d)
    fixed = [a for a in dict.fromkeys(anchors) if a not in moves]
    centres = np.array([*moves, *fixed])
    values = np.concatenate([np.array(list(moves.values()), np.float64), np.zeros((len(fixed), 3))])
    xy = mean[:, :2]

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / (2 * sigma**2))

    k = kernel(xy[centres], xy[centres])
    # Regularised: handles and anchors a few hundredths apart (the two lips of a closed mouth) would
    # otherwise make the interpolation ring between them.
    weights = np.linalg.solve(k + RBF_SMOOTHING * np.eye(len(centres)), values)
    field = kernel(xy, xy[centres]) @ weights
    field[T.N_MESH :] = 0.0  # the irises ride on the eyeball, not on the skin
    return field


def _both_sides(handles: Handles, anchors: tuple[int, ...]) -> tuple[Handles, tuple[int, ...]]:
    """Handles and anchors given for the subject's right side, with their mirror images on the left."""
    mirror = _mirror()
    mirrored = [(tuple(int(mirror[i]) for i in points), (-d[0], d[1], d[2])) for points, d in handles]
    return handles + mirrored, (*anchors, *(int(mirror[a]) for a in anchors))


def _side_weights(mean: np.ndarray, inner: bool) -> np.ndarray:
    """Weight (478,) of the inner (near the midline) or outer part of the brows, smooth over |x| 0.35-0.7."""
    t = np.clip((np.abs(mean[:, 0]) - 0.35) / 0.35, 0.0, 1.0)
    outer = t * t * (3 - 2 * t)
    return 1.0 - outer if inner else outer


@cache
def canonical_fields() -> np.ndarray:
    """Every action unit's field in the canonical frame, (len(ACTION_UNITS), 478, 3), eye distances at 1."""
    basis: LearnedBasis = load_basis()
    mean = basis.mean
    fields = np.zeros((len(ACTION_UNITS), T.N_POINTS, 3))
    brow = basis.semantic[BROW_RAISE]
    # Learned from talking video: the brow raise, split at the middle of each brow, scaled so that each half
    # lifts its brow end by about 0.13 eye distances at 1 (the learned direction lifts the inner brows 0.13
    # and the outer ones 0.08 at 1).
    # The eye's outline stays where it is (the eyeball is drawn rigidly in it); the skin above it stretches.
    brow = brow.copy()
    brow[[*T.RIGHT_EYE, *T.LEFT_EYE]] = 0.0
    fields[AU["brow_inner_raise"]] = brow * _side_weights(mean, inner=True)[:, None]
    fields[AU["brow_outer_raise"]] = brow * _side_weights(mean, inner=False)[:, None] * 1.5
    fields[AU["jaw_drop"]] = basis.semantic[JAW_OPEN]
    fields[AU["pucker"]] = basis.semantic[LIP_ROUND]
    # A funnel rounds the lips and parts them: the pucker with the lips a little apart.
    part = _interpolated(
        mean,
        [((13, 82, 312), (0.0, -0.02, 0.0)), ((14, 87, 317), (0.0, 0.03, 0.0))],
        (*_MOUTH_ANCHORS, 61, 291, 152),
        0.08,
    )
    fields[AU["funnel"]] = 0.8 * basis.semantic[LIP_ROUND] + part
    upper_lip, lower_lip = lip_regions(mean * 100.0)  # (lip_regions works in pixels)
    for name, spec in _SPECS.items():
        if spec.symmetric:
            field = _interpolated(mean, *_both_sides(spec.handles, spec.anchors), spec.sigma)
        else:
            field = _interpolated(mean, spec.handles, spec.anchors, spec.sigma)
        if spec.lip is not None:
            field[lower_lip if spec.lip == "upper" else upper_lip] = 0.0
        fields[AU[name]] = field
        if f"{name}_right" in AU:
            fields[AU[f"{name}_right"]] = _interpolated(mean, spec.handles, spec.anchors, spec.sigma)
    fields[:, T.N_MESH :] = 0.0  # the irises ride on the eyeball (render.eyes), not on the skin
    fields.setflags(write=False)
    return fields


def fields_on_face(points: np.ndarray) -> np.ndarray:
    """The action units on a portrait, (len(ACTION_UNITS), 478, 3) float64 in its crop pixels at activation 1:
    the canonical fields scaled to its face and turned with its head (LearnedBasis's transfer)."""
    return load_basis().transfer(points)(canonical_fields())


# -- the portrait's rest expression -------------------------------------------------------------------------

# Rest-expression signals, eye distances on the upright face: how far the lip corners sit above the lips'
# middle (a smile lifts them), and how high the lower lids sit under the eyes' corners (cheeks push them up).
REST_MARGIN = 0.02  # a signal within this of the mean face's is an individual difference, not an expression
REST_MAX = 2.0  # activations estimated at most this strong


def _corner_lift(face: np.ndarray) -> float:
    return float(face[[13, 14], 1].mean() - face[[61, 291], 1].mean())


def _lower_lid_lift(face: np.ndarray) -> float:
    corners = face[[33, 133, 263, 362], 1].mean()
    lids = face[[145, 144, 153, 374, 373, 380], 1].mean()
    return float(corners - lids)


def rest_expression(points: np.ndarray) -> dict[str, float]:
    """The portrait's own expression in action units: {name: activation} for lip_corner_pull (a smile),
    lip_corner_depress and cheek_raise, from where its lip corners and lower lids sit on its upright face
    compared with the canonical neutral face, each change measured against what the action unit itself does
    there. Only these are estimated: brow height and lip shape differ too much between people to be read as
    an expression from one image. points: the portrait's landmarks (478, 3), crop pixels."""
    basis = load_basis()
    transfer = basis.transfer(points)
    face = transfer.to_face_frame(np.asarray(points, np.float64))
    mean = basis.mean
    fields = canonical_fields()
    out = {}
    for name, signal in (
        ("lip_corner_pull", _corner_lift),
        ("lip_corner_depress", lambda f: -_corner_lift(f)),
        ("cheek_raise", _lower_lid_lift),
    ):
        per_unit = signal(mean + fields[AU[name]]) - signal(mean)
        excess = signal(face) - signal(mean)
        excess = np.sign(excess) * max(abs(excess) - REST_MARGIN, 0.0)
        out[name] = float(np.clip(excess / per_unit, 0.0, REST_MAX)) if per_unit > 1e-6 else 0.0
    # A smile's cheeks: without lifted corners, high lower lids are the person's eyes, not a smile.
    out["cheek_raise"] = min(out["cheek_raise"], out["lip_corner_pull"])
    return out


def rest_activations(rest: dict[str, float]) -> np.ndarray:
    """A rest_expression as a vector over ACTION_UNITS, shape (len(ACTION_UNITS),)."""
    v = np.zeros(len(ACTION_UNITS))
    for name, value in rest.items():
        v[AU[name]] = value
    return v
