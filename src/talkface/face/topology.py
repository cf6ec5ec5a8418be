"""Index sets of mediapipe's 478-point face mesh and the mesh's triangles.

The triangles are the 3-cycles of mediapipe's FACEMESH_TESSELATION edge list (854 triangles over 468 points).
The mesh has holes at the eyes and the mouth: the renderer fills those itself.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

N_MESH = 468  # mesh vertices; 468..477 are the iris points (refine_landmarks=True)
N_POINTS = 478

# Inner lip contour, in order around the mouth opening (starting at the right corner, upper lip first).
INNER_LIP = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95]
INNER_UPPER = [191, 80, 81, 82, 13, 312, 311, 310, 415]
INNER_LOWER = [324, 318, 402, 317, 14, 87, 178, 88, 95]
OUTER_LIP = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146]
OUTER_UPPER = [185, 40, 39, 37, 0, 267, 269, 270, 409]
OUTER_LOWER = [375, 321, 405, 314, 17, 84, 181, 91, 146]
MOUTH_CORNERS = [61, 291, 78, 308]
UPPER_LIP_MID, LOWER_LIP_MID = 13, 14  # inner-lip midpoints: their gap is the mouth opening

# Eye contours in order (corner, upper lid..., corner, lower lid...). "right" is the subject's right eye.
RIGHT_EYE_UPPER = [246, 161, 160, 159, 158, 157, 173]
RIGHT_EYE_LOWER = [7, 163, 144, 145, 153, 154, 155]
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_UPPER = [466, 388, 387, 386, 385, 384, 398]
LEFT_EYE_LOWER = [249, 390, 373, 374, 380, 381, 382]
LEFT_EYE_CORNERS = (263, 362)
RIGHT_EYE = [33, *RIGHT_EYE_UPPER, 133, *reversed(RIGHT_EYE_LOWER)]
LEFT_EYE = [263, *LEFT_EYE_UPPER, 362, *reversed(LEFT_EYE_LOWER)]
RIGHT_IRIS = [468, 469, 470, 471, 472]  # centre first
LEFT_IRIS = [473, 474, 475, 476, 477]

RIGHT_BROW = [70, 63, 105, 66, 107, 46, 53, 52, 65, 55]
LEFT_BROW = [300, 293, 334, 296, 336, 276, 283, 282, 295, 285]

# Face outline, clockwise from the forehead top (the mesh's outer boundary).
FACE_OVAL = [
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
]
CHIN = 152
FOREHEAD = 10
NOSE_TIP = 1
# Points that move little with expression: rigid pose is estimated from these.
STABLE = [10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 33, 133, 263, 362, 234, 454, 127, 356, 21, 251, 54, 284]


@lru_cache(maxsize=1)
def mesh_triangles() -> np.ndarray:
    """Triangles of the face mesh as vertex indices, shape (854, 3) int32."""
    neighbours: dict[int, set[int]] = {}
    edges = _tesselation()
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    tris = set()
    for a, b in edges:
        for c in neighbours[a] & neighbours[b]:
            tris.add(tuple(sorted((a, b, c))))
    return np.array(sorted(tris), dtype=np.int32)


def _tesselation() -> frozenset[tuple[int, int]]:
    """mediapipe's FACEMESH_TESSELATION (edges as vertex index pairs). Read from its module's file, which
    holds only constants, when mediapipe is not loaded: the renderer needs the mesh, but a job whose
    portrait's analysis is cached (face.cache) does not otherwise need mediapipe's import (0.1-0.25 s)."""
    module = sys.modules.get("mediapipe.python.solutions.face_mesh_connections")
    if module is not None:
        return module.FACEMESH_TESSELATION
    (package,) = importlib.util.find_spec("mediapipe").submodule_search_locations  # does not import it
    path = Path(package) / "python" / "solutions" / "face_mesh_connections.py"
    spec = importlib.util.spec_from_file_location("mediapipe.python.solutions.face_mesh_connections", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # from its compiled file when there is one, as an import would
    return module.FACEMESH_TESSELATION
