"""Dense mesh warp of the portrait crop, driven by the deformed, posed face mesh.

Vertices: the 468 face-mesh points, plus three rings outside the face (a scaled copy of the face oval that
follows the head closely, a wider one that follows it loosely, and the crop border that stays still), so hair,
ears, neck and background stay attached and the image edge never moves. The eyes and the mouth are holes in
the face mesh: each eye is filled by a fan that maps the eyeball rigidly (a blinking lid covers it instead of
squashing it), and the mouth by a fan labelled MOUTH whose pixels the mouth module repaints. Eye pixels are
labelled too, so the eyes module can move the irises (gaze).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from talkface.face import topology as T
from talkface.face.expression import EMOTIONS, JAW_OPEN
from talkface.face.geometry import head_pivot
from talkface.face.landmarks import Landmarks
from talkface.face.learned_basis import JAW_GAP, load_basis
from talkface.face.rig import FaceRig
from talkface.render.raster import rasterize_map

SKIN, MOUTH, EYE_RIGHT, EYE_LEFT = 0, 1, 2, 3  # triangle labels: which module repaints the pixel
RING_SCALES = (1.25, 1.75)  # ring sizes relative to the face oval, from the face centre
RING_HEAD_FOLLOW = ((0.85, 0.45), (0.45, 0.15))  # (top, bottom) share of head motion each ring follows
RING_EXPRESSION_FOLLOW = (0.5, 0.1)  # share of the oval's expression motion (jaw) each ring follows
BORDER_STEPS = 8  # border points per side
FAR = 1e6  # depth of the ring: the face always wins where they overlap
REST_GAP_TOLERANCE = 0.02  # inner-lip gap (eye distances) under which a portrait's lips count as closed


def _fan(n_contour: int, first: int) -> np.ndarray:
    """Triangles of a fan from vertex first+n_contour (the centre) over a closed contour first..first+n-1."""
    i = np.arange(n_contour)
    return np.column_stack([first + i, first + (i + 1) % n_contour, np.full(n_contour, first + n_contour)])


def _similarity(src_pts: np.ndarray, dst_pts: np.ndarray) -> np.ndarray:
    """Least-squares 2D similarity (2x3) mapping src_pts onto dst_pts, shapes (N, 2)."""
    m, _ = cv2.estimateAffinePartial2D(
        src_pts.astype(np.float32), dst_pts.astype(np.float32), method=cv2.LMEDS
    )
    if m is None:
        m = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    return m


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """3x3 rotation for angles in degrees, in image axes (x right, y down, z away from the camera)."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass
class WarpResult:
    """image: warped crop (H, W, 3) uint8. map_xy: source position of each pixel (H, W, 2) float32.
    label: SKIN, MOUTH, EYE_RIGHT or EYE_LEFT per pixel (H, W) uint8. boxes: label -> (x0, y0, x1, y1)
    around the pixels of that hole. lower_lip / upper_lip: the inner lip lines in the skull's (source)
    frame, shapes (9, 2), for the mouth interior."""

    image: np.ndarray
    map_xy: np.ndarray
    label: np.ndarray
    boxes: dict[int, tuple[int, int, int, int]]
    skull_from_output: np.ndarray
    upper_lip: np.ndarray
    lower_lip: np.ndarray


class MeshWarp:
    """Everything about the rig that does not change per frame, and warp() for one frame."""

    def __init__(self, rig: FaceRig):
        self.rig = rig
        size = rig.size
        p = rig.points.astype(np.float64)
        self.neutral = p
        # The expression directions learned from video (face.learned_basis), calibrated on this face.
        semantic, _, emotions = load_basis().on_face(p)
        self.basis = semantic.astype(np.float64)  # (K, 478, 3)
        self.emotions = np.stack([emotions[name] for name in EMOTIONS]).astype(np.float64)  # (E, 478, 3)
        # Motion means jaw_open = 0 is closed lips (silence, m, b, p). A portrait with parted lips or a
        # toothy smile is closed by this much jaw; its own opening comes back at jaw_open = -rest_jaw.
        gap = Landmarks(rig.points).mouth_opening()
        self.rest_jaw = -gap / JAW_GAP if gap > REST_GAP_TOLERANCE else 0.0
        self.iod = rig.eye_distance
        oval = p[T.FACE_OVAL, :2]
        self.centre = oval.mean(0)
        # Head pivot: behind the face, at nose height (the head turns about the neck, not the nose tip).
        self.pivot = head_pivot(p)
        rings = [self.centre + s * (oval - self.centre) for s in RING_SCALES]
        t = np.linspace(-2.0, size + 1.0, BORDER_STEPS + 1)
        border = np.unique(
            np.concatenate(
                [
                    np.column_stack([t, np.full_like(t, -2.0)]),
                    np.column_stack([t, np.full_like(t, size + 1.0)]),
                    np.column_stack([np.full_like(t, -2.0), t]),
                    np.column_stack([np.full_like(t, size + 1.0), t]),
                ]
            ),
            axis=0,
        )
        self.rings = rings
        self.border = border
        n_oval = len(T.FACE_OVAL)
        # Vertex layout: 478 landmarks | ring 1 | ring 2 | border.
        self.ring_start = T.N_POINTS
        self.border_start = T.N_POINTS + 2 * n_oval
        outer = np.concatenate([oval, *rings, border])
        outer_ids = np.concatenate(
            [
                np.array(T.FACE_OVAL),
                self.ring_start + np.arange(2 * n_oval),
                self.border_start + np.arange(len(border)),
            ]
        )
        tri = Delaunay(outer).simplices
        cent = outer[tri].mean(1)
        oval_poly = oval.astype(np.float32).reshape(-1, 1, 2)
        keep = np.array([cv2.pointPolygonTest(oval_poly, (float(x), float(y)), False) < 0 for x, y in cent])
        ring_tris = outer_ids[tri[keep]]
        self.n_main = self.border_start + len(border)
        # Hole fans: right eye, left eye, mouth (each contour + a centre vertex), after the main vertices.
        self.eyes = (T.RIGHT_EYE, T.LEFT_EYE)
        fans, labels, start = [], [], self.n_main
        for contour, label in ((T.RIGHT_EYE, EYE_RIGHT), (T.LEFT_EYE, EYE_LEFT), (T.INNER_LIP, MOUTH)):
            fans.append(_fan(len(contour), start))
            labels.append(np.full(len(contour), label, np.uint8))
            start += len(contour) + 1
        mesh = T.mesh_triangles()
        self.tris = np.ascontiguousarray(np.concatenate([mesh, ring_tris, *fans]).astype(np.int32))
        self.labels = np.concatenate([np.zeros(len(mesh) + len(ring_tris), np.uint8), *labels])
        # Per ring vertex: share of head motion followed (more at the top: hair follows, the neck less).
        top, bottom = p[T.FOREHEAD, 1], p[T.CHIN, 1]
        v = np.clip((oval[:, 1] - top) / max(bottom - top, 1e-6), 0, 1)
        self.ring_head_w = [hi + (lo - hi) * v for hi, lo in RING_HEAD_FOLLOW]
        self.ring_z = p[T.FACE_OVAL, 2]
        src_main = np.concatenate([p[:, :2], *rings, border])
        self.src_main = src_main
        self._map = np.empty((size, size, 2), np.float32)
        self._label = np.empty((size, size), np.uint8)
        self._z = np.empty((size, size), np.float32)
        gx, gy = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
        self._identity = np.dstack([gx, gy])

    def deform(self, expression: np.ndarray, emotion: np.ndarray | None = None) -> np.ndarray:
        """Neutral landmarks plus expression (K,) and emotion offsets (E,), shape (478, 3)."""
        coef = expression.astype(np.float64).copy()
        coef[JAW_OPEN] += self.rest_jaw
        out = self.neutral + np.tensordot(coef, self.basis, axes=1)
        if emotion is not None and np.any(emotion):
            out = out + np.tensordot(emotion.astype(np.float64), self.emotions, axes=1)
        return out

    def pose(self, pts: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
        """Rotate 3D points (N, 3) about the head pivot and shift them (translation in eye distances)."""
        r = rotation_matrix(*rotation)
        out = (pts - self.pivot) @ r.T + self.pivot
        out[:, :2] += np.asarray(translation) * self.iod
        return out

    def warp(
        self,
        expression: np.ndarray,
        rotation: np.ndarray,
        translation: np.ndarray,
        emotion: np.ndarray | None = None,
    ) -> WarpResult:
        """One frame: expression coefficients (K,), rotation (3,) degrees, translation (2,) eye distances,
        emotion strengths (E,)."""
        deformed = self.deform(expression, emotion)
        posed = self.pose(deformed, rotation, translation)
        oval = self.neutral[T.FACE_OVAL]
        dst_parts, depth_parts = [posed[:, :2]], [posed[:, 2]]
        expr_move = deformed[T.FACE_OVAL, :2] - oval[:, :2]
        for ring, head_w, expr_w in zip(self.rings, self.ring_head_w, RING_EXPRESSION_FOLLOW, strict=True):
            rigid = self.pose(np.column_stack([ring, self.ring_z]), rotation, translation)[:, :2]
            dst_parts.append(ring + head_w[:, None] * (rigid - ring) + expr_w * expr_move)
            depth_parts.append(np.full(len(ring), FAR))
        dst_parts.append(self.border)
        depth_parts.append(np.full(len(self.border), FAR))
        src_parts = [self.src_main]
        # The skull's 2D motion: the rigid head transform seen on screen, from the stable points.
        stable = T.STABLE
        skull_to_out = _similarity(
            self.neutral[stable, :2], self.pose(self.neutral[stable], rotation, translation)[:, :2]
        )
        out_to_skull = cv2.invertAffineTransform(skull_to_out)
        for contour in self.eyes:
            corners = [contour[0], contour[len(contour) // 2]]
            eye_to_out = _similarity(
                np.concatenate([self.neutral[corners, :2], self.neutral[stable, :2]]),
                np.concatenate([posed[corners, :2], _apply(skull_to_out, self.neutral[stable, :2])]),
            )
            out_to_eye = cv2.invertAffineTransform(eye_to_out)
            c = posed[contour, :2]
            fan_dst = np.concatenate([c, c.mean(0, keepdims=True)])
            dst_parts.append(fan_dst)
            src_parts.append(_apply(out_to_eye, fan_dst))
            z = posed[contour, 2]
            depth_parts.append(np.concatenate([z, [z.mean()]]) + 0.05 * self.iod)
        c = posed[T.INNER_LIP, :2]
        fan_dst = np.concatenate([c, c.mean(0, keepdims=True)])
        dst_parts.append(fan_dst)
        src_parts.append(_apply(out_to_skull, fan_dst))
        z = posed[T.INNER_LIP, 2]
        depth_parts.append(np.concatenate([z, [z.mean()]]) + 0.05 * self.iod)

        dst = np.concatenate(dst_parts)
        src = np.concatenate(src_parts)
        depth = np.concatenate(depth_parts)
        self._z.fill(np.inf)
        self._label.fill(SKIN)
        size = self.rig.size
        # Pixels no triangle covers (none in practice: the border ring spans the crop) keep their place.
        self._map[...] = self._identity
        rasterize_map(
            dst.astype(np.float64),
            src.astype(np.float64),
            depth.astype(np.float64),
            self.tris,
            self.labels,
            self._map,
            self._label,
            self._z,
        )
        image = cv2.remap(self.rig.image, self._map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        boxes = {}
        for label, contour in ((MOUTH, T.INNER_LIP), (EYE_RIGHT, T.RIGHT_EYE), (EYE_LEFT, T.LEFT_EYE)):
            c = posed[contour, :2]
            x0, y0 = np.floor(c.min(0)).astype(int) - 2
            x1, y1 = np.ceil(c.max(0)).astype(int) + 3
            boxes[label] = (max(x0, 0), max(y0, 0), min(x1, size), min(y1, size))
        return WarpResult(
            image=image,
            map_xy=self._map,
            label=self._label,
            boxes=boxes,
            skull_from_output=out_to_skull,
            upper_lip=_apply(out_to_skull, posed[T.INNER_UPPER, :2]),
            lower_lip=_apply(out_to_skull, posed[T.INNER_LOWER, :2]),
        )
