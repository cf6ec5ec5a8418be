"""An animated head as binary glTF 2.0 (.glb): our face mesh with the ARKit blendshapes as morph targets.

The mesh is mediapipe's 468-point face (face.topology: 854 triangles, open at the eyes and the mouth), in
the learned basis's canonical frame or, given a portrait, that face's own shape (its landmarks turned
frontal); its morph targets are export.arkit's blendshape fields (named in `mesh.extras.targetNames`, the
convention three.js, Blender and Babylon.js read), so the head shows exactly what the weights say. Given a
portrait, its face crop is the texture (unlit: the photo already holds its light), each vertex at its
landmark in the crop. One animation drives the morph weights and the head's rotation about a pivot behind
the face (and its small shifts), keyframed per video frame, plus a last keyframe at the audio's end so that
the animation lasts exactly as long as the audio.

glTF's axes: +y up, +z towards the viewer, metres; one eye distance is EYE_DISTANCE_M. The file is written
with numpy and struct alone (no glTF library needed at run time).
"""

from __future__ import annotations

import io
import json
import struct

import numpy as np

from talkface import __version__
from talkface.export.arkit import ARKIT, ArkitTrack, blendshape_fields
from talkface.face import topology as T
from talkface.face.geometry import head_pivot
from talkface.face.learned_basis import load_basis

EYE_DISTANCE_M = 0.063  # metres per eye distance (an adult's interpupillary distance)
TO_GLTF = np.array([1.0, -1.0, -1.0])  # our (x right, y down, z away) -> glTF's (x right, y up, z to viewer)
SKIN = (0.86, 0.68, 0.58, 1.0)  # base colour without a portrait (linear RGB)
JPEG_QUALITY = 90
CAVITY_DEPTH = 0.08  # eye distances behind the inner lips: the mouth's dark inside
CAVITY_MATERIAL = {
    "name": "mouth",
    "pbrMetallicRoughness": {"baseColorFactor": [0.05, 0.008, 0.012, 1.0], "metallicFactor": 0.0},
    "doubleSided": True,
}

# glTF constants
FLOAT, UINT16 = 5126, 5123
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
LINEAR, LINEAR_MIPMAP_LINEAR, CLAMP_TO_EDGE = 9729, 9987, 33071


def _quaternions(rotation_deg: np.ndarray) -> np.ndarray:
    """Our head angles (T, 3) yaw, pitch, roll in degrees -> glTF rotation quaternions (T, 4) x, y, z, w.

    Ours: R = Rz(roll) Ry(yaw) Rx(pitch) in image axes. Flipping y and z (a half turn about x) keeps the
    angles' axes but turns yaw and roll's senses: in glTF axes the same rotation is Rz(-roll) Ry(-yaw)
    Rx(pitch)."""
    yaw, pitch, roll = np.radians(rotation_deg.astype(np.float64)).T
    half = [(-yaw / 2, 1), (pitch / 2, 0), (-roll / 2, 2)]
    qs = {}
    for angle, axis in half:
        q = np.zeros((len(angle), 4))
        q[:, axis] = np.sin(angle)
        q[:, 3] = np.cos(angle)
        qs[axis] = q
    return _qmul(_qmul(qs[2], qs[1]), qs[0])


def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of quaternions (..., 4) stored x, y, z, w."""
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        -1,
    )


def _triangles(vertices: np.ndarray) -> np.ndarray:
    """The mesh's triangles, each wound counter-clockwise seen from the front (+z in glTF), (854, 3)."""
    return _facing(vertices, T.mesh_triangles())


def _facing(vertices: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Triangles (N, 3) wound counter-clockwise seen from the front (+z)."""
    tris = np.asarray(tris, np.int64).copy()
    a, b, c = (vertices[tris[:, k]] for k in range(3))
    back = np.cross(b - a, c - a)[:, 2] < 0
    tris[back] = tris[back][:, [0, 2, 1]]
    return tris


def _mouth_cavity(b: _Builder, verts: np.ndarray, targets: np.ndarray) -> dict:
    """A second primitive: a dark disc behind the inner-lip contour that follows the lips (its vertices are
    the contour's, set back by CAVITY_DEPTH, with their morph targets, and their mean in the middle), so an
    opening mouth shows a dark inside instead of what lies behind the head."""
    ring = list(T.INNER_LIP)
    pos = np.concatenate([verts[ring], verts[ring].mean(0, keepdims=True)])
    pos[:, 2] -= CAVITY_DEPTH * EYE_DISTANCE_M
    centre = len(ring)
    fan = _facing(pos, [(centre, i, (i + 1) % len(ring)) for i in range(len(ring))])
    moves = np.concatenate([targets[:, ring], targets[:, ring].mean(1, keepdims=True)], axis=1)
    return {
        "attributes": {
            "POSITION": b.accessor(pos, "VEC3", ARRAY_BUFFER, bounds=True),
            "NORMAL": b.accessor(np.tile([0.0, 0.0, 1.0], (len(pos), 1)), "VEC3", ARRAY_BUFFER),
        },
        "indices": b.accessor(fan.reshape(-1).astype(np.uint16), "SCALAR", ELEMENT_ARRAY_BUFFER, bounds=True),
        "material": 1,
        "mode": 4,
        "targets": [{"POSITION": b.accessor(m, "VEC3", ARRAY_BUFFER, bounds=True)} for m in moves],
    }


def _normals(vertices: np.ndarray, tris: np.ndarray) -> np.ndarray:
    n = np.zeros_like(vertices)
    face = np.cross(vertices[tris[:, 1]] - vertices[tris[:, 0]], vertices[tris[:, 2]] - vertices[tris[:, 0]])
    for k in range(3):
        np.add.at(n, tris[:, k], face)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return n


class _Builder:
    """Accumulates the binary buffer, its views and accessors."""

    def __init__(self):
        self.blob = io.BytesIO()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def view(self, data: bytes, target: int | None = None) -> int:
        pad = (-self.blob.tell()) % 4
        self.blob.write(b"\0" * pad)
        view = {"buffer": 0, "byteOffset": self.blob.tell(), "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self.blob.write(data)
        self.views.append(view)
        return len(self.views) - 1

    def accessor(self, array: np.ndarray, kind: str, target: int | None = None, bounds: bool = False) -> int:
        if kind == "SCALAR" and array.dtype == np.uint16:
            data, ctype = array.astype("<u2"), UINT16
        else:
            data, ctype = array.astype("<f4"), FLOAT
        acc = {
            "bufferView": self.view(data.tobytes(), target),
            "componentType": ctype,
            "count": int(len(array)),
            "type": kind,
        }
        if bounds:
            flat = data.reshape(len(array), -1)
            lo, hi = flat.min(0), flat.max(0)
            cast = int if ctype == UINT16 else float
            acc["min"], acc["max"] = [cast(v) for v in lo], [cast(v) for v in hi]
        self.accessors.append(acc)
        return len(self.accessors) - 1


def head_glb(
    track: ArkitTrack,
    motion_translation: np.ndarray,
    duration: float,
    portrait_points: np.ndarray | None = None,
    texture_jpeg: bytes | None = None,
    texture_size: int | None = None,
) -> bytes:
    """The animated head as GLB bytes.

    track: the ARKit weights and head rotation per frame (export.arkit). motion_translation: (T, 2) head
    shift in eye distances (x right, y down). duration: seconds of audio. portrait_points: the portrait's
    landmarks (478, 3) in crop pixels, with texture_jpeg (the crop as a JPEG) and texture_size (its side in
    pixels): the head gets that face's shape and texture; None: the canonical face, a plain skin colour."""
    if len(track) == 0:  # audio shorter than half a frame: the head at rest
        zeros = np.zeros((1, len(ARKIT)), np.float32)
        track = ArkitTrack(zeros, np.zeros((1, 3), np.float32), np.zeros((1, 2), np.float32), track.fps)
        motion_translation = np.zeros((1, 2))
    basis = load_basis()
    names = [n for n in ARKIT if np.abs(blendshape_fields()[ARKIT[n]]).max() > 0]
    fields = blendshape_fields()[[ARKIT[n] for n in names], : T.N_MESH]  # (M, 468, 3) eye distances
    if portrait_points is not None:
        transfer = basis.transfer(portrait_points)
        face = transfer.to_face_frame(np.asarray(portrait_points, np.float64))
        fields = fields * transfer.axes
        uv = np.asarray(portrait_points, np.float64)[: T.N_MESH, :2] / float(texture_size)
    else:
        face = basis.mean
        uv = None
    pivot = head_pivot(face)
    verts = (face[: T.N_MESH] - pivot) * TO_GLTF * EYE_DISTANCE_M  # (468, 3), about the pivot
    targets = fields * TO_GLTF * EYE_DISTANCE_M
    tris = _triangles(verts)
    # The eyes' openings closed by fans over their contours (the portrait's own eyes, on the texture).
    eyes = np.array(
        [(c[0], a, b) for c in (T.RIGHT_EYE, T.LEFT_EYE) for a, b in zip(c[1:-1], c[2:], strict=False)]
    )
    tris = np.concatenate([tris, _facing(verts, eyes)])

    b = _Builder()
    attributes = {
        "POSITION": b.accessor(verts, "VEC3", ARRAY_BUFFER, bounds=True),
        "NORMAL": b.accessor(_normals(verts, tris), "VEC3", ARRAY_BUFFER),
    }
    if uv is not None:
        attributes["TEXCOORD_0"] = b.accessor(uv, "VEC2", ARRAY_BUFFER)
    indices = b.accessor(tris.reshape(-1).astype(np.uint16), "SCALAR", ELEMENT_ARRAY_BUFFER, bounds=True)
    morphs = [{"POSITION": b.accessor(t, "VEC3", ARRAY_BUFFER, bounds=True)} for t in targets]
    mouth = _mouth_cavity(b, verts, targets)

    # Animation: one key per frame, and one at the audio's end holding the last frame.
    n = len(track)
    times = np.arange(n) / track.fps
    keep = np.arange(n)
    if duration > times[-1] + 1e-6:
        times, keep = np.append(times, duration), np.append(keep, n - 1)
    weights = track.weights[keep][:, [ARKIT[name] for name in names]]
    rotation = _quaternions(track.head[keep])
    shift = np.zeros((len(keep), 3))
    shift[:, :2] = np.asarray(motion_translation, np.float64)[keep] * np.array([1.0, -1.0])
    translation = shift * EYE_DISTANCE_M + pivot * TO_GLTF * EYE_DISTANCE_M
    t_acc = b.accessor(times, "SCALAR", bounds=True)
    samplers = [
        {"input": t_acc, "output": b.accessor(weights.reshape(-1), "SCALAR"), "interpolation": "LINEAR"},
        {"input": t_acc, "output": b.accessor(rotation, "VEC4"), "interpolation": "LINEAR"},
        {"input": t_acc, "output": b.accessor(translation, "VEC3"), "interpolation": "LINEAR"},
    ]

    material: dict = {"name": "face", "doubleSided": True}
    doc: dict = {"asset": {"version": "2.0", "generator": f"talkface {__version__}"}}
    if texture_jpeg is not None and uv is not None:
        image = b.view(texture_jpeg)
        doc["images"] = [{"bufferView": image, "mimeType": "image/jpeg", "name": "portrait"}]
        doc["samplers"] = [
            {
                "magFilter": LINEAR,
                "minFilter": LINEAR_MIPMAP_LINEAR,
                "wrapS": CLAMP_TO_EDGE,
                "wrapT": CLAMP_TO_EDGE,
            }
        ]
        doc["textures"] = [{"sampler": 0, "source": 0}]
        material["pbrMetallicRoughness"] = {"baseColorTexture": {"index": 0}, "metallicFactor": 0.0}
        material["extensions"] = {"KHR_materials_unlit": {}}
        doc["extensionsUsed"] = ["KHR_materials_unlit"]
    else:
        material["pbrMetallicRoughness"] = {
            "baseColorFactor": list(SKIN),
            "metallicFactor": 0.0,
            "roughnessFactor": 0.7,
        }
    doc.update(
        {
            "scene": 0,
            "scenes": [{"name": "talkface", "nodes": [0]}],
            "nodes": [
                {"name": "head", "children": [1], "translation": [float(v) for v in translation[0]]},
                {"name": "face", "mesh": 0},
            ],
            "meshes": [
                {
                    "name": "face",
                    "primitives": [
                        {
                            "attributes": attributes,
                            "indices": indices,
                            "material": 0,
                            "mode": 4,
                            "targets": morphs,
                        },
                        mouth,
                    ],
                    "weights": [0.0] * len(names),
                    "extras": {"targetNames": names},
                }
            ],
            "materials": [material, CAVITY_MATERIAL],
            "animations": [
                {
                    "name": "talk",
                    "samplers": samplers,
                    "channels": [
                        {"sampler": 0, "target": {"node": 1, "path": "weights"}},
                        {"sampler": 1, "target": {"node": 0, "path": "rotation"}},
                        {"sampler": 2, "target": {"node": 0, "path": "translation"}},
                    ],
                }
            ],
            "accessors": b.accessors,
            "bufferViews": b.views,
        }
    )
    blob = b.blob.getvalue()
    blob += b"\0" * ((-len(blob)) % 4)
    doc["buffers"] = [{"byteLength": len(blob)}]
    text = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-len(text)) % 4)
    total = 12 + 8 + len(text) + 8 + len(blob)
    return b"".join(
        [
            struct.pack("<4sII", b"glTF", 2, total),
            struct.pack("<I4s", len(text), b"JSON"),
            text,
            struct.pack("<I4s", len(blob), b"BIN\0"),
            blob,
        ]
    )
