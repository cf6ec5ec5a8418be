"""Action units, the emotions made of them, and the portrait's own expression."""

import numpy as np
import pytest

from talkface.config import EMOTIONS
from talkface.face import topology as T
from talkface.face.action_units import (
    ACTION_UNITS,
    AU,
    RECIPES,
    canonical_fields,
    recipe_matrix,
    rest_expression,
)
from talkface.face.learned_basis import load_basis
from talkface.motion.contract import MotionSequence
from talkface.render.renderer import Renderer

R_CORNER, L_CORNER = 61, 291
INNER_BROWS, OUTER_BROWS = [107, 55, 336, 285], [70, 46, 300, 276]


def _moved(name: str, points) -> np.ndarray:
    """Displacement (len(points), 3) of canonical landmarks under action unit `name` at 1."""
    return canonical_fields()[AU[name]][points]


def test_every_field_is_finite_smooth_and_leaves_the_irises_alone():
    f = canonical_fields()
    assert f.shape == (len(ACTION_UNITS), T.N_POINTS, 3) and np.isfinite(f).all()
    for name in ACTION_UNITS:
        size = np.linalg.norm(f[AU[name]], axis=1)
        assert size.max() > 0.02, name  # visible
        if name != "jaw_drop":  # the jaw drops 0.6 eye distances; the skin never moves a fifth of the face
            assert size.max() < 0.2, name
        assert not f[AU[name], T.N_MESH :].any(), name


@pytest.mark.parametrize(
    "name, points, axis, sign",
    [
        ("brow_inner_raise", INNER_BROWS, 1, -1),
        ("brow_outer_raise", OUTER_BROWS, 1, -1),
        ("brow_lower", INNER_BROWS + OUTER_BROWS, 1, +1),
        ("upper_lid_raise", [159, 386], 1, -1),
        ("cheek_raise", [145, 374, 50, 280], 1, -1),
        ("lid_tighten", [145, 374], 1, -1),
        ("nose_wrinkle", [98, 327], 1, -1),
        ("upper_lip_raise", [0, 37, 267], 1, -1),
        ("lip_corner_pull", [R_CORNER, L_CORNER], 1, -1),
        ("lip_corner_depress", [R_CORNER, L_CORNER], 1, +1),
        ("lower_lip_depress", [17, 14], 1, +1),
        ("chin_raise", [152, 175], 1, -1),
        ("jaw_drop", [14, 17, 152], 1, +1),
        ("dimple", [R_CORNER, L_CORNER], 2, +1),
    ],
)
def test_each_action_unit_moves_its_landmarks_the_anatomical_way(name, points, axis, sign):
    assert (sign * _moved(name, points)[:, axis] > 0.01).all(), _moved(name, points)


def test_brow_raisers_split_inner_and_outer():
    inner, outer = (
        _moved("brow_inner_raise", INNER_BROWS + OUTER_BROWS),
        _moved("brow_outer_raise", INNER_BROWS + OUTER_BROWS),
    )
    assert -inner[:4, 1].mean() > 2 * -inner[4:, 1].mean()
    assert -outer[4:, 1].mean() > 2 * -outer[:4, 1].mean()


def test_widening_narrowing_and_one_sided_units():
    width = lambda name: _moved(name, [L_CORNER])[0, 0] - _moved(name, [R_CORNER])[0, 0]  # noqa: E731
    assert width("lip_stretch") > 0.1 and width("lip_corner_pull") > 0.08 and width("pucker") < -0.05
    one = _moved("lip_corner_pull_right", [R_CORNER, L_CORNER])
    assert one[0, 1] < -0.05 and abs(one[1, 1]) < 0.01
    # Brow lowering draws the inner brows together.
    assert _moved("brow_lower", [107])[0, 0] > 0.02 and _moved("brow_lower", [336])[0, 0] < -0.02


def test_the_skin_goes_no_further_than_the_muscle_pulls_it():
    """Radial-basis interpolation between close handles and anchors (the two lips) must not ring."""
    from talkface.face.action_units import _SPECS

    for name, spec in _SPECS.items():
        pull = max(np.linalg.norm(d) for _, d in spec.handles)
        assert np.linalg.norm(canonical_fields()[AU[name]], axis=1).max() < 1.3 * pull, name


def test_anchors_hold_under_the_upper_face_units():
    corners = [33, 133, 263, 362]
    for name in ("brow_inner_raise", "brow_outer_raise", "brow_lower", "nose_wrinkle"):
        assert np.abs(_moved(name, corners)).max() < 0.01, name


def test_every_emotion_is_made_of_action_units():
    m = recipe_matrix()
    assert m.shape == (len(EMOTIONS), len(ACTION_UNITS)) and set(RECIPES) == set(EMOTIONS)
    assert (m.max(1) >= 0.9).all()  # each emotion has a strong main action
    assert m[EMOTIONS.index("happy"), AU["lip_corner_pull"]] > 0
    assert m[EMOTIONS.index("surprised"), AU["brow_outer_raise"]] > 0
    assert m[EMOTIONS.index("contemptuous"), AU["lip_corner_pull"]] == 0  # one-sided only


def _area(points, tris):
    a, b, c = (points[tris[:, k], :2] for k in range(3))
    return ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])) / 2


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_emotions_neither_tear_the_mesh_nor_keep_the_lips_apart(rig, emotion):
    """At full strength (and beyond) no face triangle folds over, and with the jaw shut the lips still meet:
    a sad or disgusted mouth still closes on p, b and m."""
    warp = Renderer(rig).warp
    tris = T.mesh_triangles()
    before = _area(warp.deform(np.zeros(6)), tris)
    e = np.zeros(len(EMOTIONS))
    e[EMOTIONS.index(emotion)] = 1.5
    after = _area(warp.deform(np.zeros(6), e), tris)
    visible = np.abs(before) > 4.0  # px^2 at 256 px: slivers (the seam of closed lips) may turn harmlessly
    flipped = np.sign(before) != np.sign(after)
    assert not (visible & flipped).any(), tris[visible & flipped]
    shut = warp.deform(np.full(6, 0.0), e)
    gap = (shut[T.LOWER_LIP_MID, 1] - shut[T.UPPER_LIP_MID, 1]) / rig.eye_distance
    assert gap < 0.04, gap


def test_the_bundled_portrait_smiles_and_the_smile_can_be_taken_away(rig, tmp_path):
    """The rest expression is read from the landmarks; rendered with --neutralize and tracked again, the face
    smiles far less; an emotion replaces the smile as --neutralize does."""
    from talkface.face.landmarks import detect_face

    rest = rest_expression(rig.points)
    assert rest["lip_corner_pull"] > 0.5 and rest["lip_corner_depress"] == 0
    still = MotionSequence.still(1, 25.0)
    kept = Renderer(rig).render(still, 0)
    neutral = Renderer(rig, neutralize=True).render(still, 0)
    sad = MotionSequence.still(1, 25.0)
    sad.emotion[0, EMOTIONS.index("sad")] = 0.7
    sad_frame = Renderer(rig).render(sad, 0)

    def smile(image):
        return rest_expression(detect_face(image).points)["lip_corner_pull"]

    assert smile(neutral) < 0.5 * smile(kept)
    assert smile(sad_frame) < 0.5 * smile(kept)


def test_the_canonical_face_is_neutral():
    rest = rest_expression(load_basis().mean * 100.0)
    assert max(rest.values()) == 0.0
