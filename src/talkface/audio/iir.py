"""IIR filtering exactly as scipy.signal.lfilter and lfilter_zi compute it (1-D, float64), without importing
scipy.signal: its import takes 0.5-1.5 s (mostly scipy.stats, which nothing here uses), on the way to a job's
first frame. The filter is scipy's direct form II transposed loop, operation for operation, so the results
are the same to the bit (tests/test_startup.py checks them against scipy's)."""

from __future__ import annotations

import numba
import numpy as np


def lfilter(b, a, x: np.ndarray, zi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scipy.signal.lfilter(b, a, x, zi=zi) for a 1-D x: the filtered signal and the final state, both
    float64; zi has max(len(a), len(b)) - 1 values."""
    b, a = _padded(b, a)
    a0 = a[0]
    b, a = b / a0, a / a0  # as scipy normalises, once, before the loop
    z = np.array(zi, np.float64, ndmin=1)
    if len(z) != len(b) - 1:
        raise ValueError(f"zi must have {len(b) - 1} values, got {len(z)}")
    y = _filter(b, a, np.asarray(x, np.float64), z)
    return y, z


def lfilter_zi(b, a) -> np.ndarray:
    """scipy.signal.lfilter_zi(b, a): the state of a filter settled on a step of height 1."""
    b = np.atleast_1d(np.asarray(b, np.float64))
    a = np.atleast_1d(np.asarray(a, np.float64))
    while len(a) > 1 and a[0] == 0.0:
        a = a[1:]
    if a[0] != 1.0:
        b = b / a[0]
        a = a / a[0]
    b, a = _padded(b, a)
    n = len(a)
    companion = np.zeros((n - 1, n - 1), np.result_type(a))  # scipy.linalg.companion(a)
    companion[0] = -a[1:] / (1.0 * a[0])
    companion[list(range(1, n - 1)), list(range(0, n - 2))] = 1
    minus = np.eye(n - 1, dtype=np.result_type(a, b)) - companion.T
    return np.linalg.solve(minus, b[1:] - a[1:] * b[0])


def _padded(b, a) -> tuple[np.ndarray, np.ndarray]:
    """b and a as float64 arrays of one length (the shorter zero-padded), as scipy pads them."""
    b = np.atleast_1d(np.asarray(b, np.float64))
    a = np.atleast_1d(np.asarray(a, np.float64))
    n = max(len(a), len(b))
    return np.r_[b, np.zeros(n - len(b))], np.r_[a, np.zeros(n - len(a))]


@numba.njit(cache=True, nogil=True)
def _filter(b, a, x, z):  # pragma: no cover - numba
    """y = the filtered x; z (the delays) updated in place. scipy's loop (DOUBLE_filt), same order."""
    n = len(b)
    y = np.empty(len(x))
    for k in range(len(x)):
        xn = x[k]
        if n > 1:
            yn = z[0] + b[0] * xn
            for i in range(n - 2):
                z[i] = z[i + 1] + xn * b[i + 1] - yn * a[i + 1]
            z[n - 2] = xn * b[n - 1] - yn * a[n - 1]
        else:
            yn = xn * b[0]
        y[k] = yn
    return y
