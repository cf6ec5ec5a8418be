"""Triangle rasterizer that builds a backward map: for each output pixel, where in the source image its
colour comes from. Compiled with numba (cached on disk after the first run)."""

from __future__ import annotations

import contextlib

import numba
import numpy as np

from talkface.imports import import_alone

# The first numba function a process runs (compiled or loaded from the cache) has numba look for BLAS by
# importing scipy.linalg.cython_blas (numba.np.linalg.ensure_blas), and with it all of scipy.linalg: 0.09 s
# of a job's start. That module alone does for the check; it is imported here, before any numba function
# runs (the triangulation imports the LAPACK one alone: render.warp._delaunay).
with contextlib.suppress(ImportError):
    import_alone("scipy.linalg.cython_blas")

BEHIND = 1e7  # depth added to triangles that face away: behind every other triangle, rings included


@numba.njit(cache=True, nogil=True)
def rasterize_map(dst, src, depth, tris, labels, orient, map_xy, label_out, zbuf):  # pragma: no cover - numba
    """Rasterize triangles given by vertex positions in output space (dst, shape (V, 2)) and write the
    barycentric interpolation of their source positions (src, shape (V, 2)) into map_xy (H, W, 2).
    depth (V,): smaller is nearer; zbuf (H, W) must be filled with +inf by the caller.
    labels (M,) uint8 per triangle is written to label_out (H, W) for each pixel drawn.
    orient (M,) int8: +1 or -1, the sign of the triangle's signed area when it faces the camera, or 0 if it
    always does. A triangle facing away is the back of a fold: it is drawn behind everything else
    (BEHIND added to its depth), so it only fills pixels that nothing else covers.

    Scanline order: each row visits only the pixels between the triangle's edges (thin triangles of the
    outer ring have huge bounding boxes), with barycentrics stepped incrementally along the row."""
    h, w = zbuf.shape
    eps = 1e-7
    for t in range(tris.shape[0]):
        i0, i1, i2 = tris[t, 0], tris[t, 1], tris[t, 2]
        x0, y0 = dst[i0, 0], dst[i0, 1]
        x1, y1 = dst[i1, 0], dst[i1, 1]
        x2, y2 = dst[i2, 0], dst[i2, 1]
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if abs(area) < 1e-9:
            continue
        behind = BEHIND if area * orient[t] < 0 else 0.0
        inv = 1.0 / area
        # b0 = ((x1-x)(y2-y) - (x2-x)(y1-y)) / area is affine in x, y: b0 = a0*x + c0*y + k0, etc.
        a0, c0 = (y1 - y2) * inv, (x2 - x1) * inv
        k0 = (x1 * y2 - x2 * y1) * inv
        a1, c1 = (y2 - y0) * inv, (x0 - x2) * inv
        k1 = (x2 * y0 - x0 * y2) * inv
        ymin = max(int(np.ceil(min(y0, y1, y2))), 0)
        ymax = min(int(np.floor(max(y0, y1, y2))), h - 1)
        for y in range(ymin, ymax + 1):
            # Span of the row inside the triangle: intersect the row with the three edges.
            xl, xr = 1e30, -1e30
            for ax, ay, bx, by in ((x0, y0, x1, y1), (x1, y1, x2, y2), (x2, y2, x0, y0)):
                if (ay <= y <= by) or (by <= y <= ay):
                    if ay == by:
                        xl, xr = min(xl, ax, bx), max(xr, ax, bx)
                    else:
                        xi = ax + (y - ay) * (bx - ax) / (by - ay)
                        xl, xr = min(xl, xi), max(xr, xi)
            xs = max(int(np.ceil(xl - 1e-6)), 0)
            xe = min(int(np.floor(xr + 1e-6)), w - 1)
            if xs > xe:
                continue
            b0 = a0 * xs + c0 * y + k0
            b1 = a1 * xs + c1 * y + k1
            for x in range(xs, xe + 1):
                b2 = 1.0 - b0 - b1
                if b0 >= -eps and b1 >= -eps and b2 >= -eps:
                    z = b0 * depth[i0] + b1 * depth[i1] + b2 * depth[i2] + behind
                    if z < zbuf[y, x]:
                        zbuf[y, x] = z
                        map_xy[y, x, 0] = b0 * src[i0, 0] + b1 * src[i1, 0] + b2 * src[i2, 0]
                        map_xy[y, x, 1] = b0 * src[i0, 1] + b1 * src[i1, 1] + b2 * src[i2, 1]
                        label_out[y, x] = labels[t]
                b0 += a0
                b1 += a1
