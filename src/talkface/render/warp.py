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

from talkface.face import topology as T
from talkface.face.action_units import (
    AU,
    fields_on_face,
    jaw_gains,
    recipe_matrix,
    rest_activations,
    rest_expression,
)
from talkface.face.expression import JAW_OPEN
from talkface.face.geometry import head_pivot
from talkface.face.landmarks import Landmarks
from talkface.face.learned_basis import JAW_GAP, load_basis
from talkface.face.rig import FaceRig
from talkface.imports import import_alone
from talkface.render.background import BackgroundLayers
from talkface.render.raster import rasterize_map

SKIN, MOUTH, EYE_RIGHT, EYE_LEFT = 0, 1, 2, 3  # triangle labels: which module repaints the pixel
RING_SCALES = (1.25, 1.75)  # ring sizes relative to the face oval, from the face centre
# (top, bottom) share of head motion each ring follows: with a background plate the hair moves with the head
# (the plate hides the stretched background); without one the background must bend less.
RING_HEAD_FOLLOW = ((1.0, 0.5), (0.9, 0.2))
RING_HEAD_FOLLOW_NO_PLATE = ((0.85, 0.45), (0.45, 0.15))
RING_DEPTH = (0.5, 1.0)  # ring depth as a share of the way from the face oval's depth to the head pivot's
RING_FOLLOW_POWER = 2.0  # the follow share stays near its top value down the cheeks, falls at the jaw
RING_EDGE_MARGIN = 0.01  # ring points closer than this (crop sides) to the crop's edge are not used
RING_EDGE_SLACK = 0.5  # a ring point moves at most this share of its distance to the crop's edge
RING_EXPRESSION_FOLLOW = (0.5, 0.1)  # share of the oval's expression motion (jaw) each ring follows
BORDER_STEPS = 8  # border points per side
FAR = 1e6  # depth of the ring: the face always wins where they overlap
JAW_KNEE = 0.8  # jaw_open above which the chin follows the lower lip (the basis is calibrated up to here)
LOWER_LIP_OUTER = 17  # middle of the lower lip's outer edge
UPPER_JAW = [2, 164, 98, 327]  # under the nose: moves with the skull (upper teeth), not with the lips
# An action unit both the emotion and the portrait show grows by this share of the weaker of the two: a happy
# smiling face smiles more than the portrait.
SHARED_BOOST = 0.3
AU_LIMIT = 1.5  # no action unit is driven past this (1 is a strong natural extreme): beyond, skin folds
LIP_PARTING = [AU["lower_lip_depress"]]  # action units that hold the lips apart
PARTING_JAW = 0.15  # speech jaw at which they act fully
# An emotion at this strength or more replaces the portrait's own expression entirely (less: in proportion).
REPLACE_STRENGTH = 0.5
REST_GAP_TOLERANCE = 0.02  # inner-lip gap (eye distances) under which a portrait's lips count as closed


def _delaunay() -> type:
    """scipy.spatial.Delaunay, imported at the first set-up (not with this module) without the rest of
    scipy.spatial (KD-trees, distances, rotations) or of scipy.linalg (of which it needs the LAPACK
    routines' module only): 0.02 s instead of 0.15-0.3 s of a job's start."""
    try:
        import_alone("scipy.linalg.cython_lapack")
        return import_alone("scipy.spatial._qhull").Delaunay
    except ImportError:  # a scipy laid out otherwise: the whole package
        from scipy.spatial import Delaunay

        return Delaunay


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


def _winding(points: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Sign of each triangle's signed area in image axes (+1, -1, or 0 if degenerate), points (N, >=2),
    tris (M, 3); shape (M,) int8."""
    a, b, c = (points[tris[:, k], :2] for k in range(3))
    signed = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    return np.sign(signed).astype(np.int8)


def _anchored(m: np.ndarray, src_anchor: np.ndarray, dst_anchor: np.ndarray) -> np.ndarray:
    """The 2x3 transform with m's linear part whose shift takes the mean of src_anchor (N, 2) onto the mean
    of dst_anchor (N, 2)."""
    out = m.copy()
    out[:, 2] = dst_anchor.mean(0) - m[:, :2] @ src_anchor.mean(0)
    return out


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
class Vertices:
    """One frame's vertices, indexed as MeshWarp.tris: dst (V, 2) output pixels, src (V, 2) crop pixels
    they sample, depth (V,) (smaller is nearer). posed: the posed landmarks (478, 3). out_to_skull: 2x3
    affine from output pixels to the skull's (the crop's) frame."""

    dst: np.ndarray
    src: np.ndarray
    depth: np.ndarray
    posed: np.ndarray
    out_to_skull: np.ndarray


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

    def __init__(self, rig: FaceRig, neutralize: bool = False):
        """neutralize: take the portrait's own expression (a smile) away on every frame; by default it is
        kept, and taken away only as far as an emotion replaces it."""
        self.rig = rig
        size = rig.size
        p = rig.points.astype(np.float64)
        self.neutral = p
        # The expression directions learned from video (face.learned_basis), calibrated on this face.
        semantic, _, _ = load_basis().on_face(p)
        self.basis = semantic.astype(np.float64)  # (K, 478, 3)
        # Action units on this face, the emotions as combinations of them, and the portrait's own expression.
        self.action_units = fields_on_face(p)  # (A, 478, 3)
        self.recipes = recipe_matrix()  # (E, A)
        self.jaw_gains = jaw_gains()  # (E,)
        self.rest_expression = rest_expression(p)  # {action unit: activation}
        self.rest = rest_activations(self.rest_expression)  # (A,)
        self.neutralize = neutralize
        # Motion means jaw_open = 0 is closed lips (silence, m, b, p). A portrait with parted lips or a
        # toothy smile is closed by this much jaw; its own opening comes back at jaw_open = -rest_jaw.
        gap = Landmarks(rig.points).mouth_opening()
        self.rest_jaw = -gap / JAW_GAP if gap > REST_GAP_TOLERANCE else 0.0
        self.iod = rig.eye_distance
        # The crop keeps the portrait's orientation, so a tilted face lies tilted in it: the head turns about
        # its own axes (yaw about its tilted midline), not the image's.
        right_eye, left_eye = p[[33, 133], :2].mean(0), p[[263, 362], :2].mean(0)
        dx, dy = left_eye - right_eye
        self.tilt = rotation_matrix(0.0, 0.0, float(np.degrees(np.arctan2(dy, dx))))
        # Past JAW_KNEE the mouth opens by turning the jaw: the chin drops with the lower lip instead of at
        # the learned basis's speech ratio (~0.4 of it). Per unit jaw beyond the knee, each lower-face point
        # gets what it lacks of the lower lip's motion, fully at the chin, fading out up to the corners.
        d = self.basis[JAW_OPEN]
        corners_y = p[[61, 291], 1].mean()
        share = np.clip((p[:, 1] - corners_y) / max(p[T.CHIN, 1] - corners_y, 1e-6), 0, 1) ** 0.7
        share[T.N_MESH :] = 0.0  # irises
        self.chin_field = share[:, None] * (d[LOWER_LIP_OUTER] - d)
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
        # Ring points near or past the crop's edge would fold against the still border when they move
        # (large faces in tight crops): they are left out of the triangulation, and the others move at most
        # RING_EDGE_SLACK of their distance to the edge.
        ring_pts = np.concatenate(rings)
        edge = np.minimum(ring_pts, size - 1 - ring_pts).min(1)
        self.ring_max_move = np.maximum(RING_EDGE_SLACK * edge, 0.0).reshape(2, n_oval)
        ring_in = edge > RING_EDGE_MARGIN * size
        # Vertex layout: 478 landmarks | ring 1 | ring 2 | border.
        self.ring_start = T.N_POINTS
        self.border_start = T.N_POINTS + 2 * n_oval
        outer = np.concatenate([oval, ring_pts[ring_in], border])
        outer_ids = np.concatenate(
            [
                np.array(T.FACE_OVAL),
                self.ring_start + np.flatnonzero(ring_in),
                self.border_start + np.arange(len(border)),
            ]
        )
        tri = _delaunay()(outer).simplices
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
        # A face-mesh triangle facing away from the camera is the back of a fold (a cheek turning under the
        # silhouette, already folded in a turned portrait): it is not drawn, so the front-facing skin and
        # the rings behind it show instead of a mirrored strip. Facing = the triangle's winding on the
        # canonical frontal face (the learned basis's mean face), where every triangle faces the camera.
        self.orient = np.zeros(len(self.tris), np.int8)
        self.orient[: len(mesh)] = _winding(load_basis().mean, mesh)
        # The person over a still background plate (when the rig has a person mask). With it, the rings
        # can carry hair rigidly with the head: the background they stretch is covered by the plate.
        self.layers = BackgroundLayers(rig.image, rig.person) if rig.person is not None else None
        follow = RING_HEAD_FOLLOW if self.layers is not None else RING_HEAD_FOLLOW_NO_PLATE
        # Per ring vertex: share of head motion followed (more at the top: hair follows, the neck less).
        top, bottom = p[T.FOREHEAD, 1], p[T.CHIN, 1]
        v = np.clip((oval[:, 1] - top) / max(bottom - top, 1e-6), 0, 1)
        self.ring_head_w = [hi + (lo - hi) * v**RING_FOLLOW_POWER for hi, lo in follow]
        # Ring depth: the head goes on curving back beyond the face oval, so ring points sit deeper than the
        # oval, towards the pivot. A turn then folds the far cheek's edge away and uncovers what is behind
        # the near one, instead of carrying the strip outside the oval along as a flat band.
        oval_z = p[T.FACE_OVAL, 2]
        self.ring_z = [oval_z + d * (self.pivot[2] - oval_z) for d in RING_DEPTH]
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
        if emotion is not None and coef[JAW_OPEN] > 0:
            coef[JAW_OPEN] *= 1.0 + float(np.dot(emotion, self.jaw_gains))
        wide = max(float(coef[JAW_OPEN]) - JAW_KNEE, 0.0)
        coef[JAW_OPEN] += self.rest_jaw
        out = self.neutral + np.tensordot(coef, self.basis, axes=1)
        if wide > 0:
            out = out + wide * self.chin_field
        aus = self.action_unit_activations(emotion)
        if aus is not None:
            # An emotion parts the lips only as far as the voice opens them: they still close on p, b, m.
            aus[LIP_PARTING] *= np.clip(float(expression[JAW_OPEN]) / PARTING_JAW, 0.0, 1.0)
            out = out + np.tensordot(aus, self.action_units, axes=1)
        return out

    def action_unit_activations(self, emotion: np.ndarray | None) -> np.ndarray | None:
        """Action-unit activations (A,) to add to the portrait for emotion strengths (E,): the face goes from
        the portrait's own expression towards its neutral as far as an emotion replaces it (all the way when
        neutralizing), and the emotions' action units are added; an action unit the emotion wants and the
        portrait already shows is kept at the stronger of the two, plus SHARED_BOOST of the weaker (a happy
        face smiles more than a smiling portrait). None when nothing changes."""
        strength = 0.0 if emotion is None else float(np.clip(np.sum(emotion), 0.0, 1.0))
        away = 1.0 if self.neutralize else min(1.0, strength / REPLACE_STRENGTH)
        if strength == 0.0 and (away == 0.0 or not self.rest.any()):
            return None
        kept = (1.0 - away) * self.rest  # what remains of the portrait's own expression
        wanted = emotion.astype(np.float64) @ self.recipes if strength > 0.0 else np.zeros_like(kept)
        shared = (wanted > 0) & (self.rest > 0)
        more = np.maximum(self.rest, wanted) + SHARED_BOOST * np.minimum(self.rest, wanted)
        target = np.where(shared, more, kept + wanted)
        aus = target - self.rest
        return np.clip(aus, -AU_LIMIT, AU_LIMIT)

    def pose(
        self, pts: np.ndarray, rotation: np.ndarray, translation: np.ndarray, scale: float = 1.0
    ) -> np.ndarray:
        """Rotate 3D points (N, 3) about the head pivot, scale them about it (the head nearer the camera
        when > 1) and shift them (translation in eye distances)."""
        r = self.tilt @ rotation_matrix(*rotation) @ self.tilt.T
        out = (pts - self.pivot) @ (float(scale) * r.T) + self.pivot
        out[:, :2] += np.asarray(translation) * self.iod
        return out

    def vertices(
        self,
        expression: np.ndarray,
        rotation: np.ndarray,
        translation: np.ndarray,
        emotion: np.ndarray | None = None,
        scale: float = 1.0,
    ) -> Vertices:
        """Where every vertex of self.tris goes in one frame (expression coefficients (K,), rotation (3,)
        degrees, translation (2,) eye distances, emotion strengths (E,), head scale), and where it samples
        from."""
        deformed = self.deform(expression, emotion)
        posed = self.pose(deformed, rotation, translation, scale)
        oval = self.neutral[T.FACE_OVAL]
        dst_parts, depth_parts = [posed[:, :2]], [posed[:, 2]]
        expr_move = deformed[T.FACE_OVAL, :2] - oval[:, :2]
        for ring, ring_z, head_w, expr_w, max_move in zip(
            self.rings, self.ring_z, self.ring_head_w, RING_EXPRESSION_FOLLOW, self.ring_max_move, strict=True
        ):
            rigid = self.pose(np.column_stack([ring, ring_z]), rotation, translation, scale)[:, :2]
            move = head_w[:, None] * (rigid - ring) + expr_w * expr_move
            length = np.linalg.norm(move, axis=1)
            move *= np.minimum(1.0, max_move / np.maximum(length, 1e-9))[:, None]
            dst_parts.append(ring + move)
            depth_parts.append(np.full(len(ring), FAR))
        dst_parts.append(self.border)
        depth_parts.append(np.full(len(self.border), FAR))
        src_parts = [self.src_main]
        # The skull's 2D motion: the rigid head transform seen on screen. Its rotation and scale come from the
        # stable points; its shift is anchored where it is used (a pitched or turned head moves the eyes,
        # the nose and the mouth by different amounts on screen, so one 2D similarity cannot fit them all).
        stable = T.STABLE
        stable_out = self.pose(self.neutral[stable], rotation, translation, scale)[:, :2]
        skull = _similarity(self.neutral[stable, :2], stable_out)
        skull_to_out = _anchored(skull, self.neutral[UPPER_JAW, :2], posed[UPPER_JAW, :2])
        out_to_skull = cv2.invertAffineTransform(skull_to_out)
        for contour in self.eyes:
            # The eyeball turns with the skull and sits between its corners (which a blink does not move).
            corners = [contour[0], contour[len(contour) // 2]]
            eye_to_out = _anchored(skull, self.neutral[corners, :2], posed[corners, :2])
            out_to_eye = cv2.invertAffineTransform(eye_to_out)
            self._fan(posed[contour], out_to_eye, dst_parts, src_parts, depth_parts)
        self._fan(posed[T.INNER_LIP], out_to_skull, dst_parts, src_parts, depth_parts)

        return Vertices(
            dst=np.concatenate(dst_parts),
            src=np.concatenate(src_parts),
            depth=np.concatenate(depth_parts),
            posed=posed,
            out_to_skull=out_to_skull,
        )

    def _fan(self, contour: np.ndarray, out_to_src: np.ndarray, dst_parts, src_parts, depth_parts) -> None:
        """Append a fan over a posed contour (n, 3) and its centre: where it goes, where it samples from
        (through the affine out_to_src), and its depth, a little in front of the contour."""
        c = contour[:, :2]
        fan_dst = np.concatenate([c, c.mean(0, keepdims=True)])
        dst_parts.append(fan_dst)
        src_parts.append(_apply(out_to_src, fan_dst))
        z = contour[:, 2]
        depth_parts.append(np.concatenate([z, [z.mean()]]) + 0.05 * self.iod)

    def warp(
        self,
        expression: np.ndarray,
        rotation: np.ndarray,
        translation: np.ndarray,
        emotion: np.ndarray | None = None,
        scale: float = 1.0,
    ) -> WarpResult:
        """One frame: expression coefficients (K,), rotation (3,) degrees, translation (2,) eye distances,
        emotion strengths (E,), head scale (1 = as in the portrait)."""
        v = self.vertices(expression, rotation, translation, emotion, scale)
        posed, out_to_skull = v.posed, v.out_to_skull
        self._z.fill(np.inf)
        self._label.fill(SKIN)
        size = self.rig.size
        # Pixels no triangle covers (none in practice: the border ring spans the crop) keep their place.
        self._map[...] = self._identity
        rasterize_map(
            v.dst.astype(np.float64),
            v.src.astype(np.float64),
            v.depth.astype(np.float64),
            self.tris,
            self.labels,
            self.orient,
            self._map,
            self._label,
            self._z,
        )
        if self.layers is not None:
            image = self.layers.warp(self._map)
        else:
            image = cv2.remap(
                self.rig.image, self._map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
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
