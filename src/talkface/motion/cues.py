"""Acoustic mouth cues shared by the generators: how loud and how open a voice sounds, frame by frame,
relative to the speaker's own voice (running references, so that they stream).

The rule generator's acoustic mouth is made of these (motion.rules); the learned generator's mouth network
reads them as inputs when no phonemes are known (motion.learned). The constants were measured on real
talking faces of the train split by training/fit_rules.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkface.assets import load_model
from talkface.audio.features import VOICE_LEVEL_PRIOR_DB, AudioFeatures, RunningReference, mel_centres_hz

MAX_JAW = 0.75
# Acoustic mouth model. Constants from training/fit_rules.py on the train split (real mouth opening vs
# audio features of 28 clips): the level of the F2-F3 region follows the lip opening better than the total
# or first-formant level (mean per-clip r 0.30 vs 0.16-0.18 at 40 ms lead), and a voice whose energy sits
# low (nasal murmur, the voice bar of a b) has closed lips.
OPEN_BAND_HZ = (1800.0, 3800.0)  # F2-F3 region: radiated through an open mouth
NASAL_BAND_HZ = (60.0, 500.0)  # where closed-lip voicing (m, n, b) keeps its energy
NASAL_TILT = 0.25  # dB of open cue lost per dB the nasal band rises over the open band
OPEN_RANGE_DB = 30.0  # open cue: 0 this far below the speaker's loud speech, 1 at its 95th percentile
JAW_GAIN = 0.46  # jaw at open cue 1: the rendered voiced opening averages the real 0.134 eye distances
# Lip rounding / spreading at full cue: half of what they were, since real mouth width barely follows these
# cues (train r 0.09, fit_rules.py); kept visible so that vowels still differ in shape.
ROUND_GAIN, SPREAD_GAIN = 0.4, 0.3

# Running speech references (the speaker's loud voice, open cue and median pitch), so that levels are relative
# to the speaker's own voice on any recording while the audio streams in: over the last LEVEL_HISTORY_S of
# voiced frames, updated every LEVEL_BLOCK_S; until LEVEL_MIN_S of voice is heard, typical values fill in:
# the medians over the real clips of ../shared/data/talking (open cue 95th percentile 10 dB, 10-90 %: 3-21;
# median pitch 169 Hz, 10-90 %: 118-219).
LEVEL_HISTORY_S, LEVEL_BLOCK_S, LEVEL_MIN_S = 30.0, 0.25, 1.0
OPEN_CUE_PRIOR_DB = 10.0
PITCH_PRIOR_HZ = 169.0


def clip01(x):
    return np.clip(x, 0.0, 1.0)


def band_level_db(features: AudioFeatures, band_hz: tuple[float, float]) -> np.ndarray:
    """Level (T,) in dB of the log-mel bands whose centres lie in band_hz (power sum)."""
    log_mel = features.log_mel
    centres = mel_centres_hz()
    cols = (centres >= band_hz[0]) & (centres < band_hz[1])
    return 10.0 * np.log10(np.exp(log_mel[:, cols].astype(np.float64)).sum(1) + 1e-10)


def _open_level_db(features: AudioFeatures, tilt: float = NASAL_TILT) -> np.ndarray:
    """The F2-F3 band level lowered by `tilt` dB per dB the nasal band rises above it, (T,) dB."""
    high = band_level_db(features, OPEN_BAND_HZ)
    low = band_level_db(features, NASAL_BAND_HZ)
    return high - tilt * (low - high)


class SpeechLevels:
    """Running references of one voice at `rate` frames per second: its loud level (95th percentile of the
    voiced frames' energy), its loud open cue and its median pitch. Calling it on consecutive frames gives
    loudness (0..1), the open cue (0..1) and the pitch in semitones above the median (0 where unvoiced)."""

    def __init__(self, rate: float, tilt: float = NASAL_TILT, range_db: float = OPEN_RANGE_DB):
        history, block, min_count = (
            max(1, round(s * rate)) for s in (LEVEL_HISTORY_S, LEVEL_BLOCK_S, LEVEL_MIN_S)
        )
        self._energy = RunningReference(95, VOICE_LEVEL_PRIOR_DB, history, block, min_count)
        self._cue = RunningReference(95, OPEN_CUE_PRIOR_DB, history, block, min_count)
        self._pitch = RunningReference(50, np.log2(PITCH_PRIOR_HZ), history, block, max(1, min_count // 3))
        self.tilt, self.range_db = tilt, range_db

    def __call__(self, f: AudioFeatures) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        voiced = f.voicing > 0.5
        energy_ref, _ = self._energy(f.energy_db, voiced)
        level = clip01((f.energy_db - (energy_ref - 28.0)) / 28.0)
        cue = _open_level_db(f, self.tilt)
        cue_ref, _ = self._cue(cue, voiced)
        cue = clip01((cue - cue_ref + self.range_db) / self.range_db)
        has_pitch = f.pitch_hz > 0
        log_pitch = np.log2(np.maximum(f.pitch_hz, 1.0))
        pitch_ref, _ = self._pitch(log_pitch, has_pitch)
        semis = np.where(has_pitch, 12 * (log_pitch - pitch_ref), 0.0)
        return level, cue, semis


def loudness(features: AudioFeatures) -> np.ndarray:
    """Voiced loudness 0..1 per frame of a whole sequence: level relative to the speaker's own loud speech
    (a running reference), so a quiet and a loud recording of the same speech move the mouth alike."""
    return SpeechLevels(features.rate)(features)[0]


def open_cue(
    features: AudioFeatures, tilt: float = NASAL_TILT, range_db: float = OPEN_RANGE_DB
) -> np.ndarray:
    """How open the lips sound, 0..1 per frame (T,) of a whole sequence: the F2-F3 band level, lowered by
    `tilt` dB per dB the nasal band rises above it, relative to the speaker's loud speech (1 at its 95th
    percentile, 0 at `range_db` below). Closed-lip sounds (m, the hold of p/b) and pauses fall towards 0."""
    return SpeechLevels(features.rate, tilt, range_db)(features)[1]


def mouth_targets(features: AudioFeatures, level: np.ndarray, cue: np.ndarray) -> np.ndarray:
    """Jaw, rounding and spreading targets per frame from the acoustics, shape (T, 3), before smoothing;
    level and cue from SpeechLevels."""
    gate = clip01((features.voicing - 0.25) / 0.4)
    jaw = JAW_GAIN * cue * gate
    dark = clip01((1500.0 - features.centroid_hz) / 900.0)
    bright = clip01((features.high_ratio - 0.08) / 0.3)
    voiced = (features.pitch_hz > 0).astype(np.float32)
    rounding = ROUND_GAIN * dark * np.sqrt(level) * gate * (0.4 + 0.6 * voiced)
    spread = SPREAD_GAIN * bright * np.sqrt(level) * gate
    return np.column_stack([np.minimum(jaw, MAX_JAW), rounding, spread])


# -- prosody and the brows ---------------------------------------------------------------------------------

STRESS_MEAN_S = 0.35  # the running mean that stress (loudness above it) is measured against
PROSODY_COLUMNS = ("accent", "stress", "level", "talking", "pitch")
BROWS_FILE = "brows.json"  # the fitted brow filter (training/fit_brows.py)


class ProsodyCues:
    """Per-frame prosodic cues of one voice at `fps`, causally (frame i depends on frames <= i): pitch accent
    (semitones above the running median, /4, 0..1, voiced frames), stress (loudness above its running mean,
    x3, 0..1, while talking), loudness while talking, talking (voice activity), pitch relative to the median
    (octaves, clipped to +-1, voiced frames). Columns PROSODY_COLUMNS; shape (T, 5)."""

    def __init__(self, fps: float):
        from talkface.motion.stream import CausalSmoother

        self._mean = CausalSmoother(STRESS_MEAN_S / np.sqrt(2) * fps)

    def __call__(self, f: AudioFeatures, level: np.ndarray, semis: np.ndarray) -> np.ndarray:
        voiced = (f.pitch_hz > 0).astype(np.float64)
        talking = (f.voicing > 0.5).astype(np.float64)
        stress = clip01((level - self._mean(level)) * 3.0) * talking
        accent = clip01(semis / 4.0) * voiced
        pitch = np.clip(semis / 12.0, -1.0, 1.0) * voiced
        return np.column_stack([accent, stress, level * talking, talking, pitch])


@dataclass(frozen=True)
class BrowFilter:
    """The brows' raise (brow_raise coefficient) from the prosodic cues around a frame: a linear filter over
    `past` frames back and `ahead` ahead at `fps`, fitted by ridge regression to real talking faces
    (training/fit_brows.py): brow = sum over taps of ((cues - in_mean) / in_std) @ weights[tap] * gain +
    out_mean. At another frame rate the taps are resampled in time (taps())."""

    fps: float
    past: int
    ahead: int
    in_mean: np.ndarray  # (k,)
    in_std: np.ndarray  # (k,)
    weights: np.ndarray  # (past + 1 + ahead, k)
    out_mean: float
    gain: float  # the regression's output rescaled so that its spread matches the real brows'

    def taps(self, fps: float, max_ahead: int) -> tuple[int, np.ndarray]:
        """(past frames, weights (past + 1 + ahead, k)) at `fps`, reaching at most max_ahead frames ahead:
        the fitted taps interpolated at the new frame times and scaled to the same area."""
        if fps == self.fps and self.ahead <= max_ahead:
            return self.past, self.weights
        past = int(np.ceil(self.past * fps / self.fps))
        ahead = min(int(np.floor(self.ahead * fps / self.fps)), max_ahead)
        fitted = (np.arange(-self.past, self.ahead + 1)) / self.fps
        times = np.arange(-past, ahead + 1) / fps
        w = np.stack([np.interp(times, fitted, col, left=0.0, right=0.0) for col in self.weights.T], 1)
        return past, w * (self.fps / fps)

    def to_json(self) -> dict:
        return {
            "fps": self.fps,
            "past": self.past,
            "ahead": self.ahead,
            "in_mean": np.round(self.in_mean, 6).tolist(),
            "in_std": np.round(self.in_std, 6).tolist(),
            "weights": np.round(self.weights, 6).tolist(),
            "out_mean": round(float(self.out_mean), 6),
            "gain": round(float(self.gain), 6),
        }

    @classmethod
    def from_json(cls, d: dict) -> BrowFilter:
        arrays = {k: np.asarray(d[k], np.float64) for k in ("in_mean", "in_std", "weights")}
        return cls(
            float(d["fps"]),
            int(d["past"]),
            int(d["ahead"]),
            out_mean=float(d["out_mean"]),
            gain=float(d["gain"]),
            **arrays,
        )


def load_brows(path: str | Path | None = None) -> BrowFilter:
    """The fitted brow filter (default: the shipped assets/brows.json), loaded once per process and path."""
    return load_model(_read_brows, path, shipped=BROWS_FILE)


def _read_brows(path: Path) -> BrowFilter:
    return BrowFilter.from_json(json.loads(path.read_text(encoding="utf-8"))["filter"])


class BrowStream:
    """BrowFilter over a stream of prosodic cue rows at `fps`: push the rows of the next frames, get the brows
    of every frame whose `ahead` rows have arrived (the first rows held before the start); finish() gives the
    rest with the last row held."""

    def __init__(self, brows: BrowFilter, fps: float, max_ahead: int):
        self._f = brows
        self.past, self._w = brows.taps(fps, max_ahead)
        self.ahead = len(self._w) - 1 - self.past
        self._rows = np.zeros((0, len(brows.in_mean)))
        self._started = False

    def push(self, cues: np.ndarray) -> np.ndarray:
        x = (np.asarray(cues, np.float64) - self._f.in_mean) / self._f.in_std
        if len(x) and not self._started:
            x = np.concatenate([np.repeat(x[:1], self.past, 0), x])
            self._started = True
        self._rows = np.concatenate([self._rows, x])
        return self._emit()

    def finish(self) -> np.ndarray:
        if not self._started:
            return np.zeros(0)
        self._rows = np.concatenate([self._rows, np.repeat(self._rows[-1:], self.ahead, 0)])
        out = self._emit()
        self._rows = self._rows[:0]
        self._started = False
        return out

    def _emit(self) -> np.ndarray:
        span = len(self._w)
        n = len(self._rows) - span + 1
        if n <= 0:
            return np.zeros(0)
        windows = np.lib.stride_tricks.sliding_window_view(self._rows, span, axis=0)  # (n, k, span)
        out = np.einsum("nkt,tk->n", windows, self._w) * self._f.gain + self._f.out_mean
        self._rows = self._rows[n:]
        return out
