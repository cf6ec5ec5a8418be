import cv2
import numpy as np

from talkface.face.image import load_image
from talkface.face.landmarks import detect_face, detect_faces


def test_small_face_in_a_wide_scene_is_found_and_mapped_back(portrait):
    face = cv2.resize(load_image(portrait), (300, 300), interpolation=cv2.INTER_AREA)
    scene = np.full((800, 1200, 3), 90, np.uint8)
    scene[450:750, 850:1150] = face
    assert detect_faces(scene) == []  # the face mesh alone misses it
    ref = detect_face(face)
    found = detect_face(scene)
    # Landmarks come back in the scene's own pixels.
    np.testing.assert_allclose(found.points[:, :2].mean(0), ref.points[:, :2].mean(0) + (850, 450), atol=4)
    assert abs(found.eye_distance - ref.eye_distance) < 0.08 * ref.eye_distance


def test_tilted_face_is_found(portrait):
    image = load_image(portrait)
    h, w = image.shape[:2]
    tilted = cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), 50, 1.0), (w, h))
    face = detect_face(tilted)
    right, left = face.points[468, :2], face.points[473, :2]
    angle = np.degrees(np.arctan2(*(left - right)[::-1]))
    assert abs(angle + 50) < 8  # the eye line keeps the image's tilt: points are in the tilted image's frame


def test_person_mask_covers_the_person_not_the_backdrop(rig):
    from talkface.face import topology as T

    mask = rig.person
    assert mask.shape == rig.image.shape[:2] and mask.dtype == np.float32
    assert 0 <= mask.min() and mask.max() <= 1
    face = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(face, [np.round(rig.points[T.FACE_OVAL, :2]).astype(np.int32)], 1)
    assert mask[face > 0].min() > 0.99  # the face always counts as person
    # The bundled portrait: the astronaut's head and suit in front of a grey backdrop (top corners).
    corner = rig.size // 8
    assert mask[:corner, :corner].mean() < 0.1 and mask[:corner, -corner:].mean() < 0.1
    assert mask[-corner:, rig.size // 3 : 2 * rig.size // 3].mean() > 0.9  # the suit at the bottom centre
