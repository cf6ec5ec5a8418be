"""Triangle rasterizer that builds a backward map: for each output pixel, where in the source image its
colour comes from. Compiled with numba (cached on disk after the first run)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def rasterize_map(dst, src, depth, tris, labels, map_xy, label_out, zbuf):  # pragma: no cover - numba
    """Rasterize triangles given by vertex positions in output space (dst, shape (V, 2)) and write the
    barycentric interpolation of their source positions (src, shape (V, 2)) into map_xy (H, W, 2).
    depth (V,): smaller is nearer; zbuf (H, W) must be filled with +inf by the caller.
    labels (M,) uint8 per triangle is written to label_out (H, W) for each pixel drawn."""
    h, w = zbuf.shape
    for t in range(tris.shape[0]):
        i0, i1, i2 = tris[t, 0], tris[t, 1], tris[t, 2]
        x0, y0 = dst[i0, 0], dst[i0, 1]
        x1, y1 = dst[i1, 0], dst[i1, 1]
        x2, y2 = dst[i2, 0], dst[i2, 1]
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if abs(area) < 1e-9:
            continue
        inv = 1.0 / area
        xmin = max(int(np.floor(min(x0, x1, x2))), 0)
        xmax = min(int(np.ceil(max(x0, x1, x2))), w - 1)
        ymin = max(int(np.floor(min(y0, y1, y2))), 0)
        ymax = min(int(np.ceil(max(y0, y1, y2))), h - 1)
        eps = -1e-6
        for y in range(ymin, ymax + 1):
            for x in range(xmin, xmax + 1):
                b0 = ((x1 - x) * (y2 - y) - (x2 - x) * (y1 - y)) * inv
                b1 = ((x2 - x) * (y0 - y) - (x0 - x) * (y2 - y)) * inv
                b2 = 1.0 - b0 - b1
                if b0 < eps or b1 < eps or b2 < eps:
                    continue
                z = b0 * depth[i0] + b1 * depth[i1] + b2 * depth[i2]
                if z >= zbuf[y, x]:
                    continue
                zbuf[y, x] = z
                map_xy[y, x, 0] = b0 * src[i0, 0] + b1 * src[i1, 0] + b2 * src[i2, 0]
                map_xy[y, x, 1] = b0 * src[i0, 1] + b1 * src[i1, 1] + b2 * src[i2, 1]
                label_out[y, x] = labels[t]
