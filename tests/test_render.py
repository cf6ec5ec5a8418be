import subprocess
import sys

import numpy as np

from talkface.face import topology as T
from talkface.face.expression import BLINK_LEFT, BLINK_RIGHT, EXPRESSIONS, JAW_OPEN
from talkface.face.landmarks import detect_face
from talkface.motion.contract import MotionSequence
from talkface.render.background import _blend
from talkface.render.renderer import Renderer


def _motion(expression=None, rotation=(0.0, 0.0, 0.0)) -> MotionSequence:
    m = MotionSequence.still(1, 25.0)
    if expression:
        for name, value in expression.items():
            m.expression[0, EXPRESSIONS.index(name)] = value
    m.rotation[0] = rotation
    return m


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-9))


def test_rest_frame_is_the_portrait_with_closed_lips(rig):
    r = Renderer(rig)
    # The bundled portrait smiles with parted lips: jaw_open = 0 closes them, -rest_jaw gives them back.
    assert r.warp.rest_jaw < -0.1
    frame = r.render(_motion({"jaw_open": -r.warp.rest_jaw}), 0)
    assert frame.shape == rig.image.shape and frame.dtype == np.uint8
    assert _psnr(frame, rig.image) > 38
    closed = detect_face(r.render(_motion(), 0)).mouth_opening()
    assert closed < 0.3 * detect_face(rig.image).mouth_opening()


def test_open_jaw_opens_the_mouth_as_the_face_mesh_sees_it(rig):
    r = Renderer(rig)
    neutral = detect_face(r.render(_motion(), 0)).mouth_opening()
    opened = detect_face(r.render(_motion({"jaw_open": 0.6}), 0)).mouth_opening()
    assert opened > neutral + 0.15


def test_open_mouth_shows_an_interior_not_stretched_lips(rig):
    frame = Renderer(rig).render(_motion({"jaw_open": 0.7}), 0)
    p = rig.points
    # Between the moved lips, just above the new lower lip, pixels come from the synthesized interior:
    # mid-mouth is either dark cavity or bright teeth, never the lip colour stretched.
    mid = ((p[T.UPPER_LIP_MID, :2] + p[T.LOWER_LIP_MID, :2]) / 2).round().astype(int)
    drop = int(0.7 * 0.55 * rig.eye_distance)
    x, y = mid[0], mid[1] + drop // 2
    patch = frame[y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3).astype(float)
    lips = rig.image[p[T.OUTER_LOWER, 1].astype(int), p[T.OUTER_LOWER, 0].astype(int)].astype(float)
    assert np.linalg.norm(patch.mean(0) - lips.mean(0)) > 40


def test_blink_covers_the_eyes(rig):
    r = Renderer(rig)
    open_eyes = detect_face(r.render(_motion(), 0))
    closed = detect_face(r.render(_motion({"blink_right": 1.0, "blink_left": 1.0}), 0))

    def lid_gap(face):
        pts = face.points
        return np.linalg.norm(pts[159, :2] - pts[145, :2]) / face.eye_distance

    # mediapipe never reports a closed eye as fully closed (it keeps a prior); half the gap is a clear blink.
    assert lid_gap(closed) < 0.6 * lid_gap(open_eyes)
    # And the dark iris is covered by skin-coloured lid, not squashed: the iris centre turns bright.
    neutral, shut = r.render(_motion(), 0), r.render(_motion({"blink_right": 1.0, "blink_left": 1.0}), 0)
    for i in (468, 473):
        x, y = rig.points[i, :2].round().astype(int)
        assert shut[y - 1 : y + 2, x - 1 : x + 2].mean() > neutral[y - 1 : y + 2, x - 1 : x + 2].mean() + 20
    assert BLINK_LEFT != BLINK_RIGHT and JAW_OPEN == 0


def test_head_turn_moves_the_face_and_keeps_the_border(rig):
    r = Renderer(rig)
    base = r.render(_motion(), 0)
    turned = r.render(_motion(rotation=(10.0, 0.0, 0.0)), 0)
    nose_before = detect_face(base).points[T.NOSE_TIP, 0]
    nose_after = detect_face(turned).points[T.NOSE_TIP, 0]
    assert abs(nose_after - nose_before) > 3
    # The frame's edges (background) do not move.
    assert np.abs(turned[:4].astype(int) - base[:4].astype(int)).mean() < 2
    assert np.abs(turned[:, -4:].astype(int) - base[:, -4:].astype(int)).mean() < 2


def test_gaze_moves_the_irises_inside_the_eyes(rig):
    r = Renderer(rig)
    m = _motion()
    base = detect_face(r.render(m, 0)).points
    m.gaze[0] = (12.0, 0.0)
    moved = detect_face(r.render(m, 0)).points
    for iris, corners in ((468, (33, 133)), (473, (263, 362))):
        # The iris moves right relative to the eye corners, and the corners (the head) stay.
        assert moved[iris, 0] - base[iris, 0] > 1.0
        assert np.abs(moved[list(corners), :2] - base[list(corners), :2]).max() < 1.0


def test_head_distance_frames_the_face_smaller_or_larger(portrait):
    from talkface.face.image import load_image
    from talkface.face.rig import build_rig

    image = load_image(portrait)
    near, far = build_rig(image, 256, head_distance=0.8), build_rig(image, 256, head_distance=1.4)
    assert far.eye_distance < 0.75 * near.eye_distance


def test_paste_back_keeps_the_rest_of_the_portrait(portrait):
    import cv2

    from talkface.face.image import load_image
    from talkface.face.rig import build_rig
    from talkface.render.paste import PasteBack

    image = cv2.copyMakeBorder(
        load_image(portrait), 40, 60, 100, 81, cv2.BORDER_REFLECT
    )  # 593 x 612, odd width
    rig = build_rig(image, 256)
    paste = PasteBack(rig, image)
    assert paste.frame_size == (692, 612)  # even sides for H.264
    neutral = paste.paste(rig.image)
    # A neutral frame pasted back is the portrait, up to resampling at the feathered edge of the crop.
    assert _psnr(neutral, image[:612, :692]) > 33
    opened = paste.paste(Renderer(rig).render(_motion({"jaw_open": 0.6}), 0))
    changed = np.abs(opened.astype(int) - neutral.astype(int)).sum(2) > 30
    ys, xs = np.nonzero(changed)
    # Only the face changes: the change sits inside the crop, around the mouth.
    x0, y0, x1, y1 = paste.roi
    assert changed.any() and xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1


def test_emotion_offsets_change_the_face(rig):
    from talkface.config import MotionControls
    from talkface.face.expression import EMOTIONS
    from talkface.motion.controls import steer

    r = Renderer(rig)
    neutral = r.render(_motion(), 0)
    for name in ("surprised", "sad"):
        m = steer(_motion(), MotionControls(emotion=name, emotion_strength=1.0))
        assert m.emotion[0, EMOTIONS.index(name)] == 1.0
        assert np.abs(r.render(m, 0).astype(int) - neutral.astype(int)).mean() > 0.2
    still = steer(_motion(), MotionControls(emotion="neutral", emotion_strength=1.0))
    assert np.array_equal(r.render(still, 0), neutral)


BIG_POSES = [(15, 0, 0), (-15, 0, 0), (0, 15, 0), (0, -15, 0), (0, 0, 10), (0, 0, -10), (-15, -15, -10)]


def test_big_head_turns_neither_fold_nor_tear(rig):
    from talkface.face.expression import EXPRESSIONS
    from talkface.render.warp import _winding

    r = Renderer(rig)
    w = r.warp
    zero = np.zeros(len(EXPRESSIONS))
    n_mesh = len(T.mesh_triangles())
    rings = (np.arange(len(w.tris)) >= n_mesh) & (w.labels == 0)
    for rotation in BIG_POSES:
        v = w.vertices(zero, np.array(rotation, float), np.zeros(2))
        # Ring and border triangles keep their orientation: the band around the head stretches, never folds.
        assert (_winding(v.dst, w.tris)[rings] == _winding(v.src, w.tris)[rings]).all(), rotation
        result = w.warp(zero, np.array(rotation, float), np.zeros(2))
        # No holes: every pixel was drawn by some triangle, and samples a finite place inside the crop.
        assert np.isfinite(w._z).all(), rotation
        m = result.map_xy
        assert np.isfinite(m).all() and m.min() > -3 and m.max() < rig.size + 2
        # Folds show as a backward map whose Jacobian turns negative; occlusion edges (the nose over a cheek)
        # make a few such pixels, a fold makes a band of them.
        gx, gy = np.gradient(m.astype(np.float64), axis=1), np.gradient(m.astype(np.float64), axis=0)
        det = gx[..., 0] * gy[..., 1] - gx[..., 1] * gy[..., 0]
        assert (det < 0).mean() < 0.005, rotation


def test_eyes_stay_in_their_sockets_on_big_turns(rig):
    from talkface.face.expression import EXPRESSIONS

    w = Renderer(rig).warp
    zero = np.zeros(len(EXPRESSIONS))
    for rotation in BIG_POSES:
        v = w.vertices(zero, np.array(rotation, float), np.zeros(2))
        m = w.warp(zero, np.array(rotation, float), np.zeros(2)).map_xy
        for iris in (468, 473):
            # The pixel where the posed iris centre lands samples the portrait's iris centre (a pitched head
            # once painted the eye from a skull transform averaged over forehead and nose: cheek in the eye).
            x, y = np.round(v.posed[iris, :2]).astype(int)
            assert np.linalg.norm(m[y, x] - rig.points[iris, :2]) < 0.04 * rig.eye_distance, rotation


def test_background_stays_still_while_the_head_moves(rig):
    import cv2

    r = Renderer(rig)
    layers = r.warp.layers
    assert layers is not None
    rest = r.render(_motion({"jaw_open": -r.warp.rest_jaw}), 0)
    far = cv2.erode((layers.alpha == 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert far.mean() > 0.15
    for rotation in BIG_POSES:
        frame = r.render(_motion({"jaw_open": -r.warp.rest_jaw}, rotation), 0)
        # Wherever the moved person does not cover it, the background is exactly where it was (the old ring
        # warp dragged it along with the head).
        person = cv2.remap(layers.alpha, r.warp._map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        still = far & (person == 0)
        assert still.mean() > 0.1
        assert np.abs(frame[still].astype(int) - rest[still].astype(int)).max() <= 1, rotation
    # What a moving head uncovers is filled background, not the portrait's face: inside the face oval the
    # plate has the backdrop's colour, far from the skin's.
    face = np.zeros(rig.image.shape[:2], np.uint8)
    cv2.fillPoly(face, [np.round(rig.points[T.FACE_OVAL, :2]).astype(np.int32)], 1)
    inside = face > 0
    backdrop = rig.image[far].astype(float).mean(0)
    skin = rig.image[inside].astype(float).mean(0)
    filled = layers.plate[inside].astype(float).mean(0)
    assert np.linalg.norm(filled - backdrop) < 0.5 * np.linalg.norm(skin - backdrop)


def test_one_remap_of_crop_and_alpha_is_the_two_remaps_and_the_blend(rig):
    import cv2

    r = Renderer(rig)
    layers = r.warp.layers
    for rotation in BIG_POSES:
        r.render(_motion({"jaw_open": 0.4}, rotation), 0)
        # Two remaps (the crop, the alpha) and the blend: what one 4-channel remap replaces.
        want = cv2.remap(rig.image, r.warp._map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.remap(layers.alpha, r.warp._map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        _blend(want, layers.plate, alpha)
        np.testing.assert_array_equal(layers.warp(r.warp._map), want)


def test_the_mouth_samples_flat_points_as_opencv_samples_a_map():
    import cv2

    from talkface.render.mouth import _sampled

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    xs, ys = (rng.uniform(-2, 82, 70000).astype(np.float32) for _ in range(2))  # more than one map holds
    want = cv2.remap(image, xs.reshape(350, 200), ys.reshape(350, 200), cv2.INTER_LINEAR).reshape(-1, 3)
    np.testing.assert_array_equal(_sampled(image, xs, ys), want)


def test_wide_jaw_drops_the_chin_with_the_lower_lip(rig):
    from talkface.face.expression import EXPRESSIONS
    from talkface.render.warp import JAW_KNEE

    w = Renderer(rig).warp

    def face(jaw):
        e = np.zeros(len(EXPRESSIONS))
        e[EXPRESSIONS.index("jaw_open")] = jaw
        return w.deform(e)

    # Up to the knee the calibrated linear basis is untouched.
    linear = w.neutral + (JAW_KNEE + w.rest_jaw) * w.basis[EXPRESSIONS.index("jaw_open")]
    np.testing.assert_allclose(face(JAW_KNEE), linear, atol=1e-9)
    # Speech openings move the chin less than the lower lip; past the knee the jaw turns and the chin
    # follows the lower lip.
    lip_small = face(0.6)[T.LOWER_LIP_MID, 1] - face(0.2)[T.LOWER_LIP_MID, 1]
    chin_small = face(0.6)[T.CHIN, 1] - face(0.2)[T.CHIN, 1]
    lip_wide = face(1.2)[T.LOWER_LIP_MID, 1] - face(JAW_KNEE)[T.LOWER_LIP_MID, 1]
    chin_wide = face(1.2)[T.CHIN, 1] - face(JAW_KNEE)[T.CHIN, 1]
    assert chin_small < 0.6 * lip_small
    assert chin_wide > 0.9 * lip_wide > 0


def test_teeth_take_the_portraits_own_colour(rig):
    from talkface.render.mouth import TEETH

    mouth = Renderer(rig).mouth
    # The bundled portrait smiles with its teeth showing: their colour is measured, not the default ivory.
    assert mouth.teeth_from_portrait
    assert np.abs(mouth.teeth - TEETH).max() > 3
    assert mouth.teeth.min() > 120 and mouth.teeth.max() - mouth.teeth.min() < 60  # bright, unsaturated


def test_nearest_outside_is_scipys_distance_transform_to_the_bit():
    from scipy import ndimage

    from talkface.render.background import nearest_outside

    rng = np.random.default_rng(0)
    for shape in ((64, 64), (37, 91), (256, 256)):
        for density in (0.02, 0.5, 0.98):
            hole = rng.random(shape) < density
            hole[shape[0] // 4 : shape[0] // 2, shape[1] // 4 : shape[1] // 2] = True  # ties to break
            dist, indices = nearest_outside(hole)
            want_dist, want_indices = ndimage.distance_transform_edt(hole, return_indices=True)
            assert dist.dtype == want_dist.dtype and indices.dtype == want_indices.dtype
            np.testing.assert_array_equal(dist, want_dist)
            np.testing.assert_array_equal(indices, want_indices)


def test_the_set_up_reads_mediapipes_mesh_and_scipys_delaunay_without_their_packages():
    code = (
        "import sys; from talkface.face import topology as T; from talkface.render.warp import _delaunay; "
        "tris = T.mesh_triangles(); D = _delaunay(); "
        "alone = sorted(m for m in ('mediapipe', 'scipy.spatial') if m in sys.modules); "
        "from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION as E; "
        "T.mesh_triangles.cache_clear(); import numpy as np; from scipy.spatial import Delaunay; "
        "print(alone, np.array_equal(tris, T.mesh_triangles()), D is Delaunay, len(E))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["[]", "True", "True", "2556"]
