"""Framing on unseen portraits (issue 15): the crop keeps the portrait's own orientation (a tilted head stays
tilted, the frame is never rotated) and stays inside the portrait (no black wedges, no blurred band), and the
renderer animates a tilted head as it animates an upright one."""

import cv2
import numpy as np
import pytest

from talkface.face import topology as T
from talkface.face.expression import EXPRESSIONS
from talkface.face.geometry import similarity_fit
from talkface.face.image import load_image
from talkface.face.landmarks import detect_face
from talkface.face.rig import build_rig
from talkface.motion.contract import MotionSequence
from talkface.render.paste import PasteBack
from talkface.render.renderer import Renderer

FACE_CENTRE = (223.0, 125.0)  # of the bundled portrait's face, pixels


def _tilted(portrait, angle: float, window: tuple[int, int, int, int]) -> np.ndarray:
    """The bundled portrait turned by `angle` degrees (counter-clockwise on screen) about its face, then cut
    to window = (x, y, w, h) relative to the face centre; the window lies inside the turned portrait, so
    the test image has no corner of nothing in it."""
    image = load_image(portrait)
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D(FACE_CENTRE, angle, 1.0)
    turned = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_CUBIC)
    valid = cv2.warpAffine(np.ones((h, w), np.uint8), m, (w, h), flags=cv2.INTER_NEAREST)
    dx, dy, ww, hh = window
    x0, y0 = int(FACE_CENTRE[0]) + dx, int(FACE_CENTRE[1]) + dy
    assert x0 >= 0 and y0 >= 0 and valid[y0 : y0 + hh, x0 : x0 + ww].all()
    return turned[y0 : y0 + hh, x0 : x0 + ww]


def _head_filling(portrait) -> np.ndarray:
    """A 224 x 224 close-up of the bundled portrait whose face (forehead to chin) is 0.63 of the side, as
    in the tight crops of talking-head datasets."""
    return cv2.resize(load_image(portrait)[50:220, 138:308], (224, 224), interpolation=cv2.INTER_AREA)


def _roll(points: np.ndarray) -> float:
    """The eye line's angle in image axes, degrees."""
    dx, dy = points[T.LEFT_EYE, :2].mean(0) - points[T.RIGHT_EYE, :2].mean(0)
    return float(np.degrees(np.arctan2(dy, dx)))


def _motion(rotation=(0.0, 0.0, 0.0), **expression) -> MotionSequence:
    m = MotionSequence.still(1, 25.0)
    for name, value in expression.items():
        m.expression[0, EXPRESSIONS.index(name)] = value
    m.rotation[0] = rotation
    return m


def _psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-9))


def _crop_in_portrait(rig) -> np.ndarray:
    """The crop's outer corners in portrait pixels, shape (4, 2)."""
    s = rig.size
    corners = np.array([[-0.5, -0.5], [s - 0.5, -0.5], [-0.5, s - 0.5], [s - 0.5, s - 0.5]])
    inv = rig.framing.inverse
    return corners @ inv[:, :2].T + inv[:, 2]


def _assert_inside(rig, image) -> None:
    h, w = image.shape[:2]
    pts = _crop_in_portrait(rig)
    assert pts.min() >= -0.51 and (pts <= np.array([w, h]) - 0.49).all(), pts


def _flat_corners(image: np.ndarray) -> float:
    """The largest share, among the four corner quarters-of-a-side, of pixels in a flat patch (colour
    std over 7 x 7 below 1 level): black wedges and blurred fills are flat, photographs are not."""
    g = image.astype(np.float32).mean(2)
    mean = cv2.blur(g, (7, 7))
    flat = np.sqrt(np.maximum(cv2.blur(g * g, (7, 7)) - mean * mean, 0)) < 1.0
    n = image.shape[0] // 4
    return max(flat[:n, :n].mean(), flat[:n, -n:].mean(), flat[-n:, :n].mean(), flat[-n:, -n:].mean())


def test_tilted_face_near_the_edge_keeps_the_portraits_orientation_and_pixels(portrait):
    # A singer leaning into the camera: the head tilted by 20-25 degrees, cut by the left and top edges.
    image = _tilted(portrait, 25.0, (-100, -90, 300, 300))
    face = detect_face(image)
    assert abs(_roll(face.points)) > 18
    rig = build_rig(image, 256, face)
    # The frame is not rotated: the crop is an upright square of the portrait, inside it.
    m = rig.framing.matrix
    assert m[0, 1] == 0 and m[1, 0] == 0 and m[0, 0] == m[1, 1] > 0
    _assert_inside(rig, image)
    # The head keeps its tilt: in the rig's rest pose and in a rendered frame, as a face detector sees it.
    assert abs(_roll(rig.points) - _roll(face.points)) < 0.5
    frame = Renderer(rig).render(_motion((4.0, 2.0, 0.0), jaw_open=0.4), 0)
    assert abs(_roll(detect_face(frame).points) - _roll(face.points)) < 3.0
    # No wedge of "outside the image": the corners are the portrait's own pixels, still behind the head.
    own = cv2.warpAffine(image, m, (256, 256), flags=cv2.INTER_AREA)
    assert _flat_corners(frame) <= _flat_corners(own) + 0.02
    assert (frame.max(2) <= 8).mean() <= (own.max(2) <= 8).mean() + 0.005  # no new black
    n = 256 // 4  # (the top left corner is hair, which moves with the head)
    for ys, xs in (
        (slice(0, n), slice(-n, None)),
        (slice(-n, None), slice(0, n)),
        (slice(-n, None), slice(-n, None)),
    ):
        assert _psnr(frame[ys, xs], own[ys, xs]) > 32


@pytest.mark.parametrize("head_distance", [1.0, 1.4])
def test_face_that_fills_the_portrait_is_framed_inside_it_not_padded(portrait, head_distance):
    image = _head_filling(portrait)
    rig = build_rig(image, 256, head_distance=head_distance)
    _assert_inside(rig, image)
    # The portrait holds no wider crop: the crop is the whole portrait, to its bottom edge (once a blurred
    # band continued the image there, past the chin).
    whole = cv2.resize(image, (256, 256), interpolation=cv2.INTER_CUBIC)
    assert _psnr(rig.image, whole) > 40
    assert _flat_corners(rig.image) <= _flat_corners(whole) + 0.02


def test_letterbox_bars_are_left_out_of_the_crop_and_backdrops_are_not(portrait):
    from talkface.face.rig import content_box

    image = _head_filling(portrait)
    # A video frame's letterbox: a grey bar and a black line above the picture (LRS2 and VoxCeleb2 frames
    # have them, below it too).
    boxed = np.concatenate([np.full((20, 224, 3), 107, np.uint8), np.zeros((4, 224, 3), np.uint8), image])
    assert content_box(boxed) == (0, 25, 224, 248)
    rig = build_rig(boxed, 256)
    assert _crop_in_portrait(rig)[:, 1].min() >= 24.5
    assert (rig.image[:8].astype(int).sum(2) < 60).mean() < 0.05  # no black line along the top
    # A plain backdrop is not a bar: it meets the person in only part of a line.
    scene = np.full((400, 600, 3), 90, np.uint8)
    scene[60:284, 300:524] = image
    assert content_box(scene) == (0, 0, 600, 400)
    assert content_box(load_image(portrait)) == (0, 0, 512, 512)


def test_full_frame_paste_of_a_face_that_fills_the_portrait_is_the_animated_crop(portrait):
    # The crop is the whole portrait, so pasting it back must not fade the moving head into the still
    # portrait at the frame's edges: the pasted frame is the crop itself.
    image = _head_filling(portrait)
    rig = build_rig(image, 224)
    paste = PasteBack(rig, image)
    assert paste.frame_size == (224, 224) and paste.roi == (0, 0, 224, 224)
    assert _psnr(paste.paste(rig.image), image) > 40
    frame = Renderer(rig).render(_motion((8.0, -4.0, 3.0), jaw_open=0.6), 0)
    assert np.abs(paste.paste(frame).astype(int) - frame.astype(int)).max() <= 1


def test_full_frame_paste_of_a_tilted_face_near_the_edge(portrait):
    image = _tilted(portrait, 25.0, (-100, -90, 300, 300))
    rig = build_rig(image, 256)
    paste = PasteBack(rig, image)
    assert paste.frame_size == (300, 300)
    assert _psnr(paste.paste(rig.image), image) > 33
    out = paste.paste(Renderer(rig).render(_motion((6.0, 3.0, 2.0), jaw_open=0.6), 0))
    assert (out.max(2) <= 8).mean() <= (image.max(2) <= 8).mean() + 0.005
    x0, y0, x1, y1 = paste.roi
    outside = np.ones(out.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], image[outside])


def _upright_and_tilted(portrait, angle: float):
    """Renderers of the bundled portrait and of a copy turned by `angle`, and the similarity (2x3) that
    takes the tilted one's crop onto the upright one's."""
    window = (-120, -80, 240, 240)
    upright = build_rig(_tilted(portrait, 0.0, window), 256)
    tilted = build_rig(_tilted(portrait, angle, window), 256)
    scale, rot, shift = similarity_fit(tilted.points[T.STABLE, :2], upright.points[T.STABLE, :2])
    return Renderer(upright), Renderer(tilted), np.hstack([scale[0] * rot[0], shift[0][:, None]])


def _face_psnr(upright: Renderer, tilted: Renderer, to_upright: np.ndarray, motion: MotionSequence) -> float:
    """PSNR of the upright renderer's frame and the tilted one's turned upright, over the posed face (its
    oval less a tenth of an eye distance: the backgrounds behind the two crops differ)."""
    a = upright.render(motion, 0)
    size = upright.rig.size
    b = cv2.warpAffine(tilted.render(motion, 0), to_upright, (size, size), flags=cv2.INTER_LINEAR)
    posed = upright.warp.vertices(motion.expression[0], motion.rotation[0], motion.translation[0]).posed
    face = np.zeros(a.shape[:2], np.uint8)
    cv2.fillPoly(face, [np.round(posed[T.FACE_OVAL, :2]).astype(np.int32)], 1)
    k = 2 * round(0.1 * upright.rig.eye_distance) + 1
    face = cv2.erode(face, np.ones((k, k), np.uint8)) > 0
    return _psnr(a[face], b[face])


def test_a_tilted_rest_pose_moves_the_face_as_an_upright_one(portrait):
    # The rig's points are no longer turned upright: the expression basis, the jaw, the lids, the brows and
    # the mouth interior must fit a tilted face (learned_basis.on_face fits the face's rotation), and a
    # head roll is a roll whatever the rest pose.
    upright, tilted, to_upright = _upright_and_tilted(portrait, 20.0)
    assert abs(_roll(tilted.rig.points) - _roll(upright.rig.points) + 20.0) < 2.0
    for motion in (
        _motion(),
        _motion(jaw_open=0.9),
        _motion(blink_right=1.0, blink_left=1.0, brow_raise=1.0),
        _motion((0.0, 0.0, 8.0), jaw_open=0.4),
    ):
        # (An upright face against its own still frame: 14-21 dB.)
        assert _face_psnr(upright, tilted, to_upright, motion) > 26.0


def test_a_tilted_head_turns_about_its_own_axes(portrait):
    upright, tilted, to_upright = _upright_and_tilted(portrait, 20.0)
    for rotation in ((12.0, 0.0, 0.0), (0.0, 12.0, 0.0)):
        # About the image's axes: 18 and 21 dB; about the face's own (the rotation conjugated): 32 dB.
        assert _face_psnr(upright, tilted, to_upright, _motion(rotation)) > 26.0
