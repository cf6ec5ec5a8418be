"""Acoustic mouth cues shared by the generators: how loud and how open a voice sounds, frame by frame,
relative to the speaker's own voice (running references, so that they stream).

The rule generator's acoustic mouth is made of these (motion.rules); the learned generator's mouth network
reads them as inputs when no phonemes are known (motion.learned). The constants were measured on real
talking faces of the train split by training/fit_rules.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkface.assets import load_model
from talkface.audio.features import VOICE_LEVEL_PRIOR_DB, AudioFeatures, RunningReference, mel_centres_hz
from talkface.errors import TalkfaceError

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


def voice_gate(voicing: np.ndarray) -> np.ndarray:
    """0..1 per frame: how far a mouth may open for the voice activity (features.voicing) there."""
    return clip01((np.asarray(voicing) - 0.25) / 0.4)


def mouth_targets(features: AudioFeatures, level: np.ndarray, cue: np.ndarray) -> np.ndarray:
    """Jaw, rounding and spreading targets per frame from the acoustics, shape (T, 3), before smoothing;
    level and cue from SpeechLevels."""
    gate = voice_gate(features.voicing)
    jaw = JAW_GAIN * cue * gate
    dark = clip01((1500.0 - features.centroid_hz) / 900.0)
    bright = clip01((features.high_ratio - 0.08) / 0.3)
    voiced = (features.pitch_hz > 0).astype(np.float32)
    rounding = ROUND_GAIN * dark * np.sqrt(level) * gate * (0.4 + 0.6 * voiced)
    spread = SPREAD_GAIN * bright * np.sqrt(level) * gate
    return np.column_stack([np.minimum(jaw, MAX_JAW), rounding, spread])


# -- song --------------------------------------------------------------------------------------------------

# A held note: the voice periodic for HOLD_S with its pitch's standard deviation under HOLD_SEMITONES (1 at
# the lower bound, 0 at the upper). Measured on the 5 songs and 14 speech recordings of the shared audio set
# (0.32 s, < 0.5 semitone): 21 % of the frames of the two studio songs, 0-9 % of speech (tonal Korean and
# Japanese the most); the other three songs lose their voicing under the music and are not helped.
HOLD_S = 0.32
HOLD_SEMITONES = (0.5, 0.8)
SUNG_JAW = 0.35  # jaw_open of a held note at open cue 1 (as wide as loud speech opens it, its p90)


class HeldNotes:
    """How much each frame is a held, sung note, 0..1, causally (frame i depends on frames <= i): the voice
    has been periodic for the last HOLD_S and its pitch has stayed within HOLD_SEMITONES. Speech glides from
    syllable to syllable; a singer holds a note, and the mouth stays open on it (SUNG_JAW)."""

    def __init__(self, rate: float):
        self._n = max(2, int(round(HOLD_S * rate)))
        self._tail = np.full(self._n - 1, np.nan)  # the last frames' pitch (semitones), NaN: not voiced

    def __call__(self, f: AudioFeatures) -> np.ndarray:
        voiced = (f.pitch_hz > 0) & (f.voicing > 0.5)
        semis = np.where(voiced, 12.0 * np.log2(np.maximum(f.pitch_hz, 1.0) / 100.0), np.nan)
        x = np.concatenate([self._tail, semis])
        self._tail = x[len(x) - (self._n - 1) :]
        w = np.lib.stride_tricks.sliding_window_view(x, self._n)  # (len(f), n)
        held = np.isfinite(w).all(1)
        spread = np.where(held, np.std(np.where(held[:, None], w, 0.0), 1), np.inf)
        lo, hi = HOLD_SEMITONES
        return clip01((hi - spread) / (hi - lo))


# -- the mouth as a filter of the cues -----------------------------------------------------------------

CUE_DIM = 6


class MouthCues:
    """The rule generator's acoustic mouth cues as extra inputs of the mouth network, causally (the rules'
    running references of the voice's loud level and open cue): loudness 0..1, open cue 0..1, the rules'
    unsmoothed jaw, rounding and spreading targets at unit gain, and pitch relative to the running median
    (octaves, clipped to +-1). Frame i depends on frames <= i only; shape (T, CUE_DIM)."""

    def __init__(self, rate: float = 25.0):
        self._levels = SpeechLevels(rate)  # rate: of the features it will be called on

    def __call__(self, f: AudioFeatures) -> np.ndarray:
        return mouth_cue_rows(f, *self._levels(f))


def mouth_cue_rows(f: AudioFeatures, level: np.ndarray, cue: np.ndarray, semis: np.ndarray) -> np.ndarray:
    """MouthCues' rows, given the voice's levels from SpeechLevels (a caller that has them already)."""
    targets = mouth_targets(f, level, cue)
    return np.column_stack(
        [
            level,
            cue,
            targets[:, 0] / JAW_GAIN,
            targets[:, 1] / ROUND_GAIN,
            targets[:, 2] / SPREAD_GAIN,
            np.clip(semis / 12.0, -1.0, 1.0),
        ]
    ).astype(np.float32)


def held_ends(x: np.ndarray, before: int, after: int) -> np.ndarray:
    """x (T, k) with its first row repeated `before` times in front and its last row `after` times behind."""
    x = np.asarray(x, np.float64)
    return np.concatenate([np.repeat(x[:1], before, 0), x, np.repeat(x[-1:], after, 0)])


def window_rows(rows: np.ndarray, span: int) -> np.ndarray:
    """Every run of `span` consecutive rows of `rows` (N, k) side by side, oldest first:
    (N - span + 1, k * span)."""
    n = len(rows) - span + 1
    return np.concatenate([rows[i : i + n] for i in range(span)], 1)


_FILTER_ARRAYS = ("in_mean", "in_std", "weights", "out_mean")


@dataclass(frozen=True)
class MouthFilter:
    """The learned mouth: a linear filter (fitted by ridge regression, training/learned_motion/mouth.py)
    from per-frame inputs over `past` frames back and `ahead` frames ahead to the mouth (jaw_open,
    lip_round, lip_spread) of the frame: mouth = ((window - in_mean) / in_std) @ weights + out_mean."""

    past: int
    ahead: int
    in_mean: np.ndarray  # (k * (past + 1 + ahead),)
    in_std: np.ndarray
    weights: np.ndarray  # (k * (past + 1 + ahead), 3)
    out_mean: np.ndarray  # (3,)

    @property
    def span(self) -> int:
        return self.past + 1 + self.ahead

    def apply(self, rows: np.ndarray) -> np.ndarray:
        """Mouth (T, 3) of the frames of `rows` (T + past + ahead, k) that have all their window inside."""
        return self.of_windows(window_rows(rows, self.span))

    def of_windows(self, x: np.ndarray) -> np.ndarray:
        """Mouth (T, 3) of input windows already laid out, (T, k * span)."""
        return ((x - self.in_mean) / self.in_std) @ self.weights + self.out_mean

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Mouth (T, 3) of a whole sequence of inputs (T, k), its ends held."""
        return self.apply(held_ends(x, self.past, self.ahead))

    def to_json(self) -> dict:
        return {
            "past": self.past,
            "ahead": self.ahead,
            **{k: np.round(getattr(self, k), 6).tolist() for k in _FILTER_ARRAYS},
        }

    @classmethod
    def from_json(cls, d: dict) -> MouthFilter:
        arrays = {k: np.asarray(d[k], np.float64) for k in _FILTER_ARRAYS}
        return cls(int(d["past"]), int(d["ahead"]), **arrays)

    def at_rate(self, fitted_fps: float, fps: float) -> MouthFilter:
        """This filter, fitted on frames at `fitted_fps`, for frames at `fps` (resample_taps), the inputs'
        standardisation shared by all taps (it differs between taps only by where the fitting data started
        and ended)."""
        if fps == fitted_fps:
            return self
        k = self.in_mean.size // self.span
        taps = self.weights.reshape(self.span, -1)  # (taps, k * outputs)
        past, resampled = resample_taps(taps, self.past, self.ahead, fitted_fps, fps)
        n = len(resampled)
        mean, std = (np.tile(a.reshape(self.span, k).mean(0), n) for a in (self.in_mean, self.in_std))
        weights = resampled.reshape(n * k, -1)
        return MouthFilter(past, n - 1 - past, mean, std, weights, self.out_mean)


def resample_taps(
    weights: np.ndarray, past: int, ahead: int, fitted_fps: float, fps: float
) -> tuple[int, np.ndarray]:
    """A filter's taps (past + 1 + ahead, ...) fitted at `fitted_fps`, for frames at `fps`: (past frames at
    fps, taps) interpolated at the new frame times and scaled to the same area."""
    w = weights.reshape(len(weights), -1)
    new_past = int(np.ceil(past * fps / fitted_fps))
    new_ahead = int(np.floor(ahead * fps / fitted_fps))
    fitted = np.arange(-past, ahead + 1) / fitted_fps
    times = np.arange(-new_past, new_ahead + 1) / fps
    out = np.stack([np.interp(times, fitted, col, left=0.0, right=0.0) for col in w.T], 1)
    return new_past, (out * (fitted_fps / fps)).reshape(len(times), *weights.shape[1:])


class HeldWindowStream:
    """A filter over `past` rows back and `ahead` rows ahead, run on a stream of rows: push() the rows of the
    next frames, get the outputs of every frame whose `ahead` rows have arrived (the first row held before
    the start); finish() gives the rest, the last row held. `apply(rows)` maps rows (m, k) to the outputs of
    their m - past - ahead full windows; `empty` is no output. A whole sequence pushed at once gives the
    filter's output on it with its ends held, whatever the chunking."""

    def __init__(self, past: int, ahead: int, apply: Callable[[np.ndarray], np.ndarray], empty: np.ndarray):
        self.past, self.ahead = past, ahead
        self._apply, self._empty = apply, empty
        self._rows: np.ndarray | None = None  # the rows not yet read, after the span - 1 already read

    def push(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.float64)
        if len(rows) == 0:
            return self._empty
        if self._rows is None:
            self._rows = np.repeat(rows[:1], self.past, 0)
        self._rows = np.concatenate([self._rows, rows])
        return self._emit()

    def finish(self) -> np.ndarray:
        if self._rows is None:
            return self._empty
        self._rows = np.concatenate([self._rows, np.repeat(self._rows[-1:], self.ahead, 0)])
        out = self._emit()
        self._rows = None
        return out

    def _emit(self) -> np.ndarray:
        if len(self._rows) < self.past + 1 + self.ahead:
            return self._empty
        out = self._apply(self._rows)
        self._rows = self._rows[len(out) :]
        return out


def mouth_filter_stream(f: MouthFilter) -> HeldWindowStream:
    """A MouthFilter over a stream of input rows: the mouth (n, 3) of each frame once its window is in."""
    return HeldWindowStream(f.past, f.ahead, f.apply, np.zeros((0, f.out_mean.size)))


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

    def taps(self, fps: float) -> tuple[int, np.ndarray]:
        """(past frames, weights (past + 1 + ahead, k)) at `fps` (resample_taps)."""
        if fps == self.fps:
            return self.past, self.weights
        return resample_taps(self.weights, self.past, self.ahead, self.fps, fps)

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
    rest with the last row held. A filter that reads further ahead than `max_ahead` frames (the stream's
    budget) is read that many frames late instead: the brows are slow, and a frame late loses less than
    cutting off the taps ahead, which carry much of the loudness weight."""

    def __init__(self, brows: BrowFilter, fps: float, max_ahead: int):
        self._f = brows
        past, self._w = brows.taps(fps)
        late = max(0, len(self._w) - 1 - past - max_ahead)
        self._stream = HeldWindowStream(past + late, len(self._w) - 1 - past - late, self._apply, np.zeros(0))

    def push(self, cues: np.ndarray) -> np.ndarray:
        return self._stream.push((np.asarray(cues, np.float64) - self._f.in_mean) / self._f.in_std)

    def finish(self) -> np.ndarray:
        return self._stream.finish()

    def _apply(self, rows: np.ndarray) -> np.ndarray:
        windows = np.lib.stride_tricks.sliding_window_view(rows, len(self._w), axis=0)  # (n, k, span)
        return np.einsum("nkt,tk->n", windows, self._w) * self._f.gain + self._f.out_mean


RULES_MOUTH_FILE = "rules_mouth.json"  # the acoustic mouth's filter (training/fit_rules_mouth.py)
HAND_JAW = 0.6  # the acoustic jaw is at least this share of the hand-made jaw target (acoustic_mouth)


def acoustic_mouth(
    filtered: np.ndarray, cues: np.ndarray, voicing: np.ndarray, held: np.ndarray
) -> np.ndarray:
    """The acoustic mouth (T, 3) from the fitted filter's output on MouthCues rows `cues` (T, CUE_DIM):
    shut where the voice stops (the hand-made mouth's voice gate: pauses, stop closures); the jaw at least
    HAND_JAW of the hand-made jaw target (its instant response: the filter, fitted to real lips, smooths
    them) and, on a held note (`held`, HeldNotes), SUNG_JAW x the open cue (the filter learned from speech
    that a jaw falls back within a syllable; a hummed m is held too, and stays shut); at most MAX_JAW.
    Per-clip jaw r with real jaws on the train split, speaker-disjoint (training/fit_rules_mouth.py): 0.251
    against the hand-made smoothed mouth's 0.240, with 40 ms less lookahead; the filter alone reaches 0.267
    but never shuts the lips on a stop."""
    gate = voice_gate(voicing)[:, None]
    mouth = filtered * gate
    floor = np.maximum(HAND_JAW * JAW_GAIN * cues[:, 2], held * SUNG_JAW * cues[:, 1])  # column 1: open cue
    mouth[:, 0] = np.clip(mouth[:, 0], floor, MAX_JAW)
    return mouth


def load_rules_mouth(path: str | Path | None = None) -> tuple[float, MouthFilter]:
    """(the frame rate it was fitted at, the acoustic mouth's filter): default the shipped
    assets/rules_mouth.json, loaded once per process and path."""
    return load_model(_read_rules_mouth, path, shipped=RULES_MOUTH_FILE)


def _read_rules_mouth(path: Path) -> tuple[float, MouthFilter]:
    d = json.loads(path.read_text(encoding="utf-8"))
    mouth = MouthFilter.from_json(d["filter"])
    if mouth.ahead:  # RuleStream gates each pushed frame's output with that frame's voice (acoustic_mouth)
        raise TalkfaceError(f"{path}: the rules' mouth filter must not read frames ahead")
    return float(d["fps"]), mouth
