"""Blinks of the learned generator: a discrete-time renewal process fitted to the blinks of real talking faces
(training/learned_motion/blinks.py), run frame by frame in a stream.

The chance that a blink starts at a frame is a logistic function of the time since the last blink started:
a bias, one term per bin of that time (the eyes stay open at least `refractory` frames; real blinks come
most often 0.5-2 s apart) and one term for the frames before a stream's first blink (a stream starts at an
unknown point of the speaker's blinking). The fit weighs every training speaker equally, so the rate is
that of a typical speaker rather than of the longest clips. Speech (speaking or not, recent onsets and
pauses) did not make blink times more predictable on held-out speakers, so the process listens to time
alone (the cross-validation is in motion_model.json "blinks").

Each blink closes the lid along the median real blink profile (tracked lids aligned at the blink's start),
stretched by a width drawn from the real blinks' widths, and shut fully at its peak: the face mesh sees
real blinks as partial closures, and a partial closure renders as a droop. The widths are then stretched
so that rendered blinks last as long as real ones to the eval's detector (training/learned_motion/export.py
calibrate: x 1.36 on the train split, where rendered blinks lasted 146 ms and real ones 198).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BlinkModel:
    """fps: frame rate of the hazard and the profile. refractory: frames after a blink's start before the
    next may start. edges: (k,) frames since the last start at which a hazard term switches on. weights:
    (k + 2,) logit of the start chance per frame: bias, before the first blink, one per edge. profile: lid
    closure (0 open .. 1 shut, peak 1) from the start frame on, at the median width. widths: quantiles
    (evenly spaced levels 0..1) of blink width relative to the median real blink's, times the renderer
    calibration."""

    fps: float
    refractory: int
    edges: np.ndarray
    weights: np.ndarray
    profile: np.ndarray
    widths: np.ndarray

    def hazard(self, since: int | None) -> float:
        """Chance that a blink starts at a frame `since` frames after the last start (None: none yet)."""
        if since is not None and since < self.refractory:
            return 0.0
        w = self.weights
        z = w[0] + (w[1] if since is None else float(w[2:] @ (since >= self.edges)))
        return 1.0 / (1.0 + math.exp(-z))

    def shape(self, level: float) -> np.ndarray:
        """One blink's lid closure from its start frame on, at width quantile `level` (0..1)."""
        stretch = float(np.interp(level, np.linspace(0.0, 1.0, len(self.widths)), self.widths))
        n = len(self.profile)
        p = np.interp(np.arange(int(math.ceil(n * stretch))) / stretch, np.arange(n), self.profile)
        return p / p.max()

    def to_json(self) -> dict:
        return {
            "fps": self.fps,
            "refractory": self.refractory,
            "edges": self.edges.astype(int).tolist(),
            "weights": np.round(self.weights, 5).tolist(),
            "profile": np.round(self.profile, 4).tolist(),
            "widths": np.round(self.widths, 4).tolist(),
        }

    @classmethod
    def from_json(cls, d: dict) -> BlinkModel:
        return cls(
            float(d["fps"]),
            int(d["refractory"]),
            np.asarray(d["edges"], np.int64),
            np.asarray(d["weights"], np.float64),
            np.asarray(d["profile"], np.float64),
            np.asarray(d["widths"], np.float64),
        )


class BlinkTrack:
    """A stream of lid closures from a BlinkModel: each call gives the next frames (at the model's fps).
    The random draws come from the caller, so a caller that draws them per fixed block of frames gets
    the same blinks however its input is chunked."""

    def __init__(self, model: BlinkModel):
        self.model = model
        self._since: int | None = None  # frames since the last blink started (None: none yet)
        self._pending = np.zeros(0)  # closure already decided for the next frames (a blink under way)

    def __call__(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Lid closure (n,) of the next n frames, 0 open .. 1 shut."""
        m = self.model
        starts, levels = rng.random(n), rng.random(n)
        buf = np.zeros(n + len(self._pending))
        buf[: len(self._pending)] = self._pending
        for i in range(n):
            if starts[i] < m.hazard(self._since):
                p = m.shape(levels[i])
                if i + len(p) > len(buf):
                    buf = np.r_[buf, np.zeros(i + len(p) - len(buf))]
                buf[i : i + len(p)] = np.maximum(buf[i : i + len(p)], p)
                self._since = 0
            if self._since is not None:
                self._since += 1
        self._pending = buf[n:]
        return buf[:n]


def blinks_per_minute(model: BlinkModel, minutes: float = 60.0, seed: int = 0) -> float:
    """The process's blink rate, measured by running it for `minutes`."""
    lids = BlinkTrack(model)(int(minutes * 60 * model.fps), np.random.default_rng(seed))
    shut = lids >= 1.0 - 1e-9
    return float((shut & ~np.r_[False, shut[:-1]]).sum() / minutes)
