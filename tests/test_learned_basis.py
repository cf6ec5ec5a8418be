"""The learned expression basis (assets/expression_basis.npz): it loads, and its directions keep the unit
meanings of face.expression.EXPRESSIONS on a real rig (the bundled portrait)."""

from __future__ import annotations

import numpy as np
import pytest

from talkface.assets import asset_path
from talkface.face import topology as T
from talkface.face.expression import EXPRESSIONS, JAW_DROP, semantic_basis
from talkface.face.geometry import eye_distance, rotation_angles, similarity_fit
from talkface.face.learned_basis import ANCHORS, load_basis
from talkface.render.warp import rotation_matrix

EMOTIONS = ("happy", "sad", "angry", "surprised", "disgusted")
FIELDS = ("mean", "semantic", "extras", "components", "explained_variance", "emotions", "emotion_weights")


@pytest.fixture(scope="module")
def on_rig(rig):
    """(semantic, components, emotions) on the bundled portrait's rig, and its eye distance."""
    return load_basis().on_face(rig.points), rig.eye_distance


def test_asset_is_small_float32_and_complete():
    path = asset_path("expression_basis.npz")
    assert path.stat().st_size < 2_000_000
    with np.load(path, allow_pickle=False) as z:
        for name in FIELDS:
            assert z[name].dtype == np.float32, name
        assert tuple(z["semantic_names"]) == EXPRESSIONS
        assert tuple(z["emotion_names"]) == EMOTIONS
    assert asset_path("expression_basis.json").is_file()


def test_basis_shapes_and_canonical_frame():
    b = load_basis()
    k = len(b.components)
    assert b.mean.shape == (T.N_POINTS, 3)
    assert b.semantic.shape == (len(EXPRESSIONS), T.N_POINTS, 3)
    assert b.components.shape == (k, T.N_POINTS, 3) and 8 <= k <= 32
    assert b.emotions.shape == (len(EMOTIONS), T.N_POINTS, 3)
    assert b.emotion_names == EMOTIONS
    ev = b.explained_variance
    assert ev.shape == (k,) and np.all(np.diff(ev) <= 1e-7) and 0.5 < ev.sum() <= 1.0
    assert np.allclose(np.linalg.norm(b.components[:, : T.N_MESH].reshape(k, -1), axis=1), 1, atol=1e-3)
    # Canonical: eye distance 1, frontal (the midline has x = 0).
    assert eye_distance(b.mean) == pytest.approx(1.0, abs=1e-4)
    assert np.abs(b.mean[[T.FOREHEAD, T.NOSE_TIP, T.CHIN, 13, 14], 0]).max() < 1e-4
    assert load_basis() is b  # cached


def test_semantic_part_is_a_drop_in_for_semantic_basis(rig, on_rig):
    (semantic, components, emotions), _ = on_rig
    hand = semantic_basis(rig.points)
    assert semantic.shape == hand.shape and semantic.dtype == hand.dtype == np.float32
    assert components.dtype == np.float32 and components.shape[1:] == (T.N_POINTS, 3)
    assert np.isfinite(semantic).all() and np.isfinite(components).all()


def test_jaw_drops_the_lower_lip_and_leaves_the_forehead(on_rig):
    (semantic, _, _), iod = on_rig
    jaw = semantic[EXPRESSIONS.index("jaw_open")] / iod
    assert jaw[T.LOWER_LIP_MID, 1] == pytest.approx(JAW_DROP, rel=0.3)
    assert jaw[T.UPPER_LIP_MID, 1] < 0.05  # the upper lip does not follow the jaw down
    assert jaw[T.CHIN, 1] > 0.1
    assert np.linalg.norm(jaw[T.FOREHEAD]) < 0.02
    assert np.abs(jaw[T.RIGHT_BROW + T.LEFT_BROW]).max() < 0.02


@pytest.mark.parametrize(
    "name, upper, lower, other", [("blink_right", 159, 145, (386, 374)), ("blink_left", 386, 374, (159, 145))]
)
def test_blink_closes_its_own_eye_only(rig, on_rig, name, upper, lower, other):
    (semantic, _, _), iod = on_rig
    p = rig.points.astype(np.float64)
    moved = p + semantic[EXPRESSIONS.index(name)]
    gap, closed = p[lower, 1] - p[upper, 1], moved[lower, 1] - moved[upper, 1]
    assert abs(closed) < 0.3 * gap
    a, b = other
    assert abs((moved[b, 1] - moved[a, 1]) - (p[b, 1] - p[a, 1])) < 0.01 * iod


def test_brow_raise_lifts_the_brows_only(on_rig):
    (semantic, _, _), iod = on_rig
    brow = semantic[EXPRESSIONS.index("brow_raise")] / iod
    lift = -brow[T.RIGHT_BROW + T.LEFT_BROW, 1]
    assert lift.min() > 0.03 and lift.mean() == pytest.approx(0.12, rel=0.3)
    assert np.abs(brow[[13, 14, T.CHIN, 61, 291]]).max() < 0.01


def test_round_narrows_and_spread_widens_the_mouth(rig, on_rig):
    (semantic, _, _), _ = on_rig
    p = rig.points.astype(np.float64)
    width = p[291, 0] - p[61, 0]
    for name, change in (("lip_round", -0.30), ("lip_spread", 0.16)):
        moved = p + semantic[EXPRESSIONS.index(name)]
        assert (moved[291, 0] - moved[61, 0]) / width - 1 == pytest.approx(change, abs=0.05)


def test_emotions_have_the_five_names_and_stay_small(on_rig):
    (_, _, emotions), iod = on_rig
    assert tuple(emotions) == EMOTIONS
    for name, field in emotions.items():
        assert field.shape == (T.N_POINTS, 3) and field.dtype == np.float32, name
        move = np.linalg.norm(field, axis=1) / iod
        assert 0.002 < move.max() < 0.15, name  # visible, but a static offset, not a grimace
    eyes = lambda f: np.mean(f[[145, 374], 1] - f[[159, 386], 1])  # noqa: E731  lid gap change
    assert eyes(emotions["surprised"]) > 0 > eyes(emotions["sad"])


def test_transfer_scales_to_the_face_and_follows_its_head_rotation():
    b = load_basis()
    rot = rotation_matrix(25.0, 0.0, 0.0)  # yaw
    face = 80.0 * b.mean @ rot.T + np.array([256.0, 250.0, 0.0])
    semantic, components, _ = b.on_face(face)
    jaw = semantic[EXPRESSIONS.index("jaw_open")]
    # The displacement is the canonical one rotated with the head, in the face's pixels.
    expected = 80.0 * b.semantic[EXPRESSIONS.index("jaw_open")] @ rot.T
    k = np.argmax(np.linalg.norm(expected, axis=1))
    assert np.allclose(jaw[k] / np.linalg.norm(jaw[k]), expected[k] / np.linalg.norm(expected[k]), atol=0.05)
    _, fitted, _ = similarity_fit(b.mean[list(ANCHORS)], face[list(ANCHORS)])
    assert rotation_angles(fitted[0])[0] == pytest.approx(25.0, abs=0.5)
    assert np.allclose(components, 80.0 * b.components @ rot.T, atol=1e-3)


def test_on_face_rejects_bad_points():
    with pytest.raises(ValueError):
        load_basis().on_face(np.zeros((468, 3)))
