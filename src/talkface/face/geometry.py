"""Face geometry on landmark arrays: eye distance, mouth opening, rigid/similarity fits, head angles,
pose-free alignment. Landmarks are mediapipe points, shape (..., 478, 3) in pixels (z in the same scale);
batched functions skip NaN frames (frames without a face)."""

from __future__ import annotations

import numpy as np

from talkface.face import topology as T


def eye_distance(points: np.ndarray, dims: int = 2) -> np.ndarray:
    """Distance between the eye centres (mean of each eye contour), shape (T,) for points (T, 478, 3), or a
    float for one frame (478, 3); pixels. dims=2 measures in x and y (on screen, as talkface does unless
    said otherwise); dims=3 in 3D (does not shrink when the head turns)."""
    p = np.asarray(points, np.float64)
    right = p[..., T.RIGHT_EYE, :dims].mean(-2)
    left = p[..., T.LEFT_EYE, :dims].mean(-2)
    return np.linalg.norm(left - right, axis=-1)


def mouth_opening(points: np.ndarray) -> np.ndarray:
    """Inner-lip gap at the middle of the mouth (points 13-14, x and y) over the eye distance, shape (T,);
    0 = closed, about 0.3-0.5 for a wide-open mouth. NaN where no face. Same as Landmarks.mouth_opening."""
    p = np.asarray(points, np.float64)
    gap = np.linalg.norm(p[..., T.UPPER_LIP_MID, :2] - p[..., T.LOWER_LIP_MID, :2], axis=-1)
    return gap / np.maximum(eye_distance(p), 1e-6)


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares similarity transform (Umeyama 1991) taking `src` points onto `dst` points:
    dst ~ scale * src @ R.T + t. src and dst: shape (N, D) or (B, N, D) (broadcast against each other).
    Returns scale (B,), R (B, D, D) a proper rotation (det +1), t (B, D); B = 1 for unbatched input."""
    src, dst = np.broadcast_arrays(np.asarray(src, np.float64), np.asarray(dst, np.float64))
    if src.ndim == 2:
        src, dst = src[None], dst[None]
    mu_s, mu_d = src.mean(1, keepdims=True), dst.mean(1, keepdims=True)
    s, d = src - mu_s, dst - mu_d
    cov = np.einsum("bni,bnj->bij", d, s) / src.shape[1]  # (B, D, D)
    u, sv, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    fix = np.ones(sv.shape)
    fix[:, -1] = np.where(sign == 0, 1.0, sign)
    rot = np.einsum("bij,bj,bjk->bik", u, fix, vt)
    var_s = (s * s).sum((1, 2)) / src.shape[1]
    scale = (sv * fix).sum(1) / np.maximum(var_s, 1e-12)
    t = mu_d[:, 0] - scale[:, None] * np.einsum("bij,bj->bi", rot, mu_s[:, 0])
    return scale, rot, t


def rotation_angles(rot: np.ndarray) -> np.ndarray:
    """Euler angles of rotation matrices (..., 3, 3) in image axes (x right, y down, z away from the camera),
    R = Rz(roll) @ Ry(yaw) @ Rx(pitch); returns (..., 3): yaw, pitch, roll in degrees."""
    r = np.asarray(rot, np.float64)
    yaw = np.arcsin(np.clip(-r[..., 2, 0], -1.0, 1.0))
    pitch = np.arctan2(r[..., 2, 1], r[..., 2, 2])
    roll = np.arctan2(r[..., 1, 0], r[..., 0, 0])
    return np.degrees(np.stack([yaw, pitch, roll], -1))


def align_frames(points: np.ndarray, reference: np.ndarray, index: list[int] = T.STABLE) -> np.ndarray:
    """Pose-free landmarks: each frame of `points` (T, 478, 3) similarity-aligned (3D rotation, scale,
    shift) so that its `index` points best match `reference`'s (478, 3); then expressed in the reference's
    eye distances about the centroid of its `index` points. Shape (T, 478, 3) float64, NaN rows kept."""
    points = np.asarray(points, np.float64)
    reference = np.asarray(reference, np.float64)
    out = np.full(points.shape, np.nan)
    found = np.isfinite(points[:, index]).all((1, 2))
    if found.any():
        scale, rot, t = similarity_fit(points[found][:, index], reference[index])
        out[found] = scale[:, None, None] * np.einsum("bnj,bij->bni", points[found], rot) + t[:, None, :]
    centre = reference[index].mean(0)
    return (out - centre) / max(float(eye_distance(reference)), 1e-6)


def head_pivot(points: np.ndarray) -> np.ndarray:
    """The point a head turns about, for one face (478, 3): behind the face by one eye distance, at nose
    height, centred on the face oval, measured along the face's own axes (a tilted head's pivot lies on its
    tilted midline); shape (3,). The renderer rotates about it, and motion capture measures translation as
    what rotation about it does not explain."""
    p = np.asarray(points, np.float64)
    depth = p[: T.N_MESH, 2].mean() + float(eye_distance(p))
    centre = p[T.FACE_OVAL, :2].mean(0)
    across = p[T.LEFT_EYE, :2].mean(0) - p[T.RIGHT_EYE, :2].mean(0)
    down = np.array([-across[1], across[0]]) / max(float(np.linalg.norm(across)), 1e-9)  # towards the chin
    xy = centre + float((p[T.NOSE_TIP, :2] - centre) @ down) * down
    return np.array([xy[0], xy[1], depth])
