"""Eyes a portrait keeps closed, lids that follow the gaze, and lower teeth at wide openings (issue 15).

The closed-eye portrait is generated: the bundled portrait rendered with both blinks at 1."""

import logging

import cv2
import numpy as np
import pytest

from talkface.face import topology as T
from talkface.face.expression import BLINK_LEFT, BLINK_RIGHT, EXPRESSIONS, JAW_OPEN
from talkface.face.landmarks import detect_face
from talkface.face.rig import build_rig
from talkface.motion.contract import MotionSequence
from talkface.render import eyes as eyes_module
from talkface.render.eyes import closed_eyes, lid_gaps
from talkface.render.renderer import Renderer
from talkface.render.warp import MOUTH


def _motion(n: int = 1, blink: float = 0.0, jaw: float = 0.0, pitch: float = 0.0) -> MotionSequence:
    m = MotionSequence.still(n, 25.0)
    m.expression[:, BLINK_RIGHT] = blink
    m.expression[:, BLINK_LEFT] = blink
    m.expression[:, JAW_OPEN] = jaw
    m.gaze[:, 1] = pitch
    return m


@pytest.fixture(scope="module")
def closed_rig(rig):
    """A portrait caught mid-blink: the bundled one with both eyes shut (its own smile kept)."""
    r = Renderer(rig)
    shut = r.render(_motion(blink=1.0, jaw=-r.warp.rest_jaw), 0)
    return build_rig(shut, rig.size)


def _eye_pixels(frame: np.ndarray, rig, polygons) -> list[tuple[int, int, int]]:
    """Per eye polygon: (pixels, sclera-like pixels, dark pixels). Sclera: about as light as the skin and
    much less saturated; dark: an iris or pupil (or lashes)."""
    f = frame.astype(np.float64)
    lum = f.mean(2)
    sat = (f.max(2) - f.min(2)) / np.maximum(f.max(2), 1.0)
    oval = np.zeros(lum.shape, np.uint8)
    cv2.fillPoly(oval, [np.round(rig.points[T.FACE_OVAL, :2]).astype(np.int32)], 1)
    skin_lum, skin_sat = np.median(lum[oval > 0]), np.median(sat[oval > 0])
    out = []
    for poly in polygons:
        mask = np.zeros(lum.shape, np.uint8)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
        inside = mask > 0
        sclera = inside & (lum > 0.7 * skin_lum) & (sat < 0.8 * skin_sat)
        dark = inside & (lum < 0.4 * skin_lum)
        out.append((int(inside.sum()), int(sclera.sum()), int(dark.sum())))
    return out


def test_closed_eyes_are_detected_and_open_ones_are_not(rig, closed_rig):
    assert closed_eyes(closed_rig.points) == (True, True)
    assert closed_eyes(rig.points) == (False, False)
    assert lid_gaps(rig.points).min() > 0.25 and lid_gaps(closed_rig.points).mean() < 0.15


def test_closed_eye_portrait_gets_open_eyes_that_still_blink(closed_rig):
    r = Renderer(closed_rig)
    assert all(r.eyes.synthetic.values())
    rest = -r.warp.rest_jaw
    opened = r.render(_motion(jaw=rest), 0)
    shut = r.render(_motion(blink=1.0, jaw=rest), 0)
    # The face mesh sees open eyes at blink 0 (the portrait's own lids: ~0.1 of the eye width) ...
    assert lid_gaps(detect_face(opened).points).mean() > 0.24
    # ... and a blink closes them again, back to the portrait's own closed lids.
    assert lid_gaps(detect_face(shut).points).mean() < 0.75 * lid_gaps(detect_face(opened).points).mean()
    polygons = [r.warp.neutral[c, :2] for c in (T.RIGHT_EYE, T.LEFT_EYE)]
    box = np.round(np.concatenate(polygons)).astype(int)
    (x0, y0), (x1, y1) = box.min(0) - 2, box.max(0) + 3
    assert np.abs(shut[y0:y1, x0:x1].astype(int) - closed_rig.image[y0:y1, x0:x1].astype(int)).mean() < 6
    # Between the opened lids: bright, unsaturated sclera and a dark iris; the closed lids had neither.
    for (n, sclera, dark), (_, sclera_shut, _) in zip(
        _eye_pixels(opened, closed_rig, polygons), _eye_pixels(shut, closed_rig, polygons), strict=True
    ):
        assert sclera > 0.12 * n and dark > 0.12 * n
        assert sclera_shut < 0.08 * n


def test_open_eyes_of_a_portrait_are_left_as_they_are(rig):
    r = Renderer(rig)
    assert not any(r.eyes.synthetic.values())
    np.testing.assert_array_equal(r.warp.neutral, rig.points.astype(np.float64))


def test_eyes_too_small_to_open_are_reported(closed_rig, monkeypatch, caplog):
    monkeypatch.setattr(eyes_module, "MIN_EYE_PX", 1e6)
    with caplog.at_level(logging.WARNING, logger="talkface.render.eyes"):
        r = Renderer(closed_rig)
    assert not any(r.eyes.synthetic.values())
    assert "closed" in caplog.text and "stays closed" in caplog.text


@pytest.mark.parametrize("portrait_eyes", ["open", "closed"])
def test_upper_lids_follow_vertical_gaze(rig, closed_rig, portrait_eyes):
    r = Renderer(rig if portrait_eyes == "open" else closed_rig)
    expression = np.zeros(len(EXPRESSIONS))

    def upper_lid(pitch: float) -> float:
        lids = r.eyes.lids(expression, np.array([0.0, pitch]))
        return float(r.warp.deform(lids)[[159, 386], 1].mean())

    level = upper_lid(0.0)
    # Looking down the upper lids come down with the eyes; looking up they rise, less.
    down, up = upper_lid(15.0) - level, level - upper_lid(-15.0)
    assert down > 0.5 and up > 0.2 and up < down
    np.testing.assert_array_equal(r.eyes.lids(expression, np.zeros(2)), expression)
    # A full blink is not pushed past closed.
    shut = expression.copy()
    shut[[BLINK_RIGHT, BLINK_LEFT]] = 1.0
    assert r.eyes.lids(shut, np.array([0.0, 20.0]))[[BLINK_RIGHT, BLINK_LEFT]].max() <= 1.0


def _lower_teeth_band(frame: np.ndarray, label: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Across the middle of the mouth, per column: the brightest luminance within 0.1 mouth widths above
    the lower lip (the lowest MOUTH pixel), and how many pixels there are bright (teeth)."""
    cols = np.flatnonzero((label == MOUTH).any(0))
    lo, hi = np.percentile(cols, [30, 70])
    lum = frame.astype(np.float64).mean(2)
    reach = int(round(0.1 * width))
    peaks, heights = [], []
    for x in cols[(cols > lo) & (cols < hi)]:
        bottom = np.flatnonzero(label[:, x] == MOUTH).max()
        band = lum[bottom - reach : bottom + 1, x]
        peaks.append(band.max())
        heights.append(band)
    return np.array(peaks), np.array(heights)


@pytest.mark.parametrize("jaw", [0.6, 0.8, 1.0])
def test_lower_teeth_show_light_edges_not_a_grey_comb(rig, jaw):
    r = Renderer(rig)
    m = _motion(jaw=jaw)
    result = r.warp.warp(m.expression[0], m.rotation[0], m.translation[0])
    label = result.label.copy()
    r.mouth.paint(result)
    teeth = float(r.mouth.teeth.mean())
    peaks, bands = _lower_teeth_band(result.image, label, r.mouth.width)
    # Light, in the upper teeth's colour (a grey comb was ~0.72 of it).
    assert peaks.mean() > 0.8 * teeth
    # Even along the row: no regular dark bars between teeth (the comb changed ~0.08 of it per column).
    assert np.abs(np.diff(peaks)).mean() < 0.045 * teeth
    # Mostly behind the lower lip: only their edges show.
    assert (bands > 0.5 * teeth).sum(1).mean() < 0.07 * r.mouth.width


def test_a_black_and_white_portrait_gets_a_grey_mouth(rig):
    from talkface.render.mouth import MouthInterior

    colour = MouthInterior(rig)
    assert colour.chroma == 1.0 and np.ptp(colour.cavity) > 20  # a colour photo keeps the red of the mouth
    grey = cv2.cvtColor(cv2.cvtColor(rig.image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    mouth = MouthInterior(build_rig(grey, rig.size))
    assert mouth.chroma == 0.0
    for c in (mouth.cavity, mouth.tongue, mouth.teeth):
        assert np.ptp(c) < 1e-6, c  # grey, like the drawing
