"""The rule generator: deterministic phonetic/acoustic rules from audio features to motion.

Mouth: when phoneme timings are known, visemes with coarticulation (motion.visemes). Otherwise from the
acoustics (open_cue): the jaw follows the level of the F2-F3 band relative to the file's loud speech, and
closes when that level drops (pauses, stop closures) or the voice leaves only through the nose (m, n);
lips round when the spectrum is dark (low centroid: o, u) and spread when it is bright (i, e, s); silence
closes the mouth. The mouth is smoothed to the lips' own 2-7 Hz motion and leads the voice by LIP_LEAD.
The constants of the acoustic mouth and of the head sway are measured on real talking faces of the train
split by training/fit_rules.py. Eyes blink at a conversational rate with log-normal intervals, each blink
held shut for a moment. The head sways (slow drifts and smaller faster movements) and nods on stressed
syllables; brows rise with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkface.audio.features import AudioFeatures, mel_centres_hz
from talkface.face.expression import (
    BLINK_LEFT,
    BLINK_RIGHT,
    BROW_RAISE,
    EXPRESSIONS,
    JAW_OPEN,
    LIP_ROUND,
    LIP_SPREAD,
)
from talkface.motion.sequence import MotionSequence
from talkface.motion.visemes import viseme_targets

LIP_LEAD = 0.04  # s: frame j shows the audio 40 ms ahead (lips lead the voice, never lag)
MAX_JAW = 0.75

# Acoustic mouth model. Constants from training/fit_rules.py on the train split (real mouth opening vs
# audio features of 28 clips): the level of the F2-F3 region follows the lip opening better than the total
# or first-formant level (mean per-clip r 0.30 vs 0.16-0.18 at 40 ms lead), and a voice whose energy sits
# low (nasal murmur, the voice bar of a b) has closed lips.
OPEN_BAND_HZ = (1800.0, 3800.0)  # F2-F3 region: radiated through an open mouth
NASAL_BAND_HZ = (60.0, 500.0)  # where closed-lip voicing (m, n, b) keeps its energy
NASAL_TILT = 0.25  # dB of open cue lost per dB the nasal band rises over the open band
OPEN_RANGE_DB = 30.0  # open cue: 0 this far below the file's loud speech, 1 at its 95th percentile
JAW_GAIN = 0.46  # jaw at open cue 1: the rendered voiced opening averages the real 0.134 eye distances
MOUTH_SMOOTH_S = 0.035  # zero-phase Gaussian: keeps the lips' 2-7 Hz motion, drops frame-rate shimmer
MOUTH_REACH_S = 0.06  # the smoothing looks at most this far ahead (streaming budget: + LIP_LEAD <= 100 ms)
# The viseme table's jaw targets (an open vowel is 0.55) render about 0.41 eye distances of inner-lip gap, far
# above real speech (voiced p90 0.24 in the eval's real clips): scaled down towards the acoustic path's
# calibration, keeping open vowels clearly open (peaks ~0.2 eye distances).
VISEME_JAW_GAIN = 0.8
VISEME_SMOOTH_S = 0.02  # visemes are already coarticulated: only frame-rate shimmer is smoothed away
# Lip rounding / spreading at full cue: half of what they were, since real mouth width barely follows these
# cues (train r 0.09, fit_rules.py); kept visible so that vowels still differ in shape.
ROUND_GAIN, SPREAD_GAIN = 0.4, 0.3

BLINK_INTERVAL_TALK_S = 2.4  # median interval while talking (about 24 blinks per minute)
BLINK_INTERVAL_IDLE_S = 3.4  # at rest (about 17 per minute)
BLINK_CLOSE_S, BLINK_SHUT_S, BLINK_OPEN_S = (0.07, 0.10), (0.03, 0.05), (0.10, 0.15)  # phase ranges
# Head sway, from training/fit_rules.py on train: the per-clip std of real heads (median yaw/pitch/roll
# 2.1/1.7/2.3 degrees) through the renderer and the tracker (which render pitch at ~0.6 of the command),
# and the spread of real head motion over frequency (yaw std 0.61/0.48/0.37/0.21 of the total in
# 0-0.3/0.3-0.6/0.6-1.5/1.5-3 Hz).
HEAD_STD_DEG = np.array([2.4, 2.8, 2.4])  # yaw, pitch, roll sway at motion_scale = 1
SWAY_BAND_HZ = (0.12, 2.0)
SWAY_COMPONENTS = 10  # sinusoids per axis
SWAY_SLOPE = 0.3  # amplitude ~ frequency**-SWAY_SLOPE
NOD_DEG = 2.0  # pitch added by a full-strength stressed syllable
GAZE_INTERVAL_S = 3.0  # median time between gaze shifts


@dataclass(frozen=True)
class RuleSettings:
    """seed: random seed for blinks, head sway and gaze. motion_scale: head motion amplitude.
    expression_scale: mouth and brow amplitude. gaze: main gaze direction (yaw, pitch) in degrees."""

    seed: int = 0
    motion_scale: float = 1.0
    expression_scale: float = 1.0
    gaze: tuple[float, float] = (0.0, 0.0)


def _lowpass(x: np.ndarray, fps: float, seconds: float, reach: float | None = None) -> np.ndarray:
    """Zero-phase Gaussian smoothing of x (T,) with standard deviation `seconds`; the kernel reaches at
    most `reach` seconds to either side (default 3 standard deviations)."""
    sigma = seconds * fps
    if sigma < 0.3 or len(x) < 2:
        return np.asarray(x, np.float64).copy()
    r = int(3 * sigma) + 1 if reach is None else max(1, int(reach * fps + 1e-6))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(x, r, mode="edge"), k, mode="valid")


def _clip01(x):
    return np.clip(x, 0.0, 1.0)


def band_level_db(features: AudioFeatures, band_hz: tuple[float, float]) -> np.ndarray:
    """Level (T,) in dB of the log-mel bands whose centres lie in band_hz (power sum)."""
    log_mel = features.log_mel
    centres = mel_centres_hz()
    cols = (centres >= band_hz[0]) & (centres < band_hz[1])
    return 10.0 * np.log10(np.exp(log_mel[:, cols].astype(np.float64)).sum(1) + 1e-10)


def _speech_reference(x: np.ndarray, voicing: np.ndarray) -> float:
    """95th percentile of x over the voiced frames (over all frames when fewer than 5 are voiced): the
    level of the file's own loud speech."""
    speech = voicing > 0.5
    return float(np.percentile(x[speech] if speech.sum() >= 5 else x, 95))


def loudness(features: AudioFeatures) -> np.ndarray:
    """Voiced loudness 0..1 per frame: level relative to the file's own loud speech, so a quiet and a
    loud recording of the same speech move the mouth alike."""
    e = features.energy_db
    return _clip01((e - (_speech_reference(e, features.voicing) - 28.0)) / 28.0)


def open_cue(
    features: AudioFeatures, tilt: float = NASAL_TILT, range_db: float = OPEN_RANGE_DB
) -> np.ndarray:
    """How open the lips sound, 0..1 per frame (T,): the F2-F3 band level, lowered by `tilt` dB per dB the
    nasal band rises above it, relative to the file's loud speech (1 at its 95th percentile, 0 at
    `range_db` below). Closed-lip sounds (m, the hold of p/b) and pauses fall towards 0."""
    high = band_level_db(features, OPEN_BAND_HZ)
    low = band_level_db(features, NASAL_BAND_HZ)
    cue = high - tilt * (low - high)
    ref = _speech_reference(cue, features.voicing)
    return _clip01((cue - ref + range_db) / range_db)


def mouth_targets(features: AudioFeatures) -> np.ndarray:
    """Jaw, rounding and spreading targets per frame from the acoustics, shape (T, 3), before smoothing."""
    gate = _clip01((features.voicing - 0.25) / 0.4)
    jaw = JAW_GAIN * open_cue(features) * gate
    level = loudness(features)
    dark = _clip01((1500.0 - features.centroid_hz) / 900.0)
    bright = _clip01((features.high_ratio - 0.08) / 0.3)
    voiced = (features.pitch_hz > 0).astype(np.float32)
    rounding = ROUND_GAIN * dark * np.sqrt(level) * gate * (0.4 + 0.6 * voiced)
    spread = SPREAD_GAIN * bright * np.sqrt(level) * gate
    return np.column_stack([np.minimum(jaw, MAX_JAW), rounding, spread])


def smooth_mouth(targets: np.ndarray, fps: float, seconds: float = MOUTH_SMOOTH_S) -> np.ndarray:
    """Mouth targets (T, k) smoothed over time (zero-phase Gaussian of standard deviation `seconds`, at
    most MOUTH_REACH_S of lookahead); never below 0. The default keeps the lips' 2-7 Hz motion."""
    cols = [_lowpass(targets[:, k], fps, seconds, MOUTH_REACH_S) for k in range(targets.shape[1])]
    return np.maximum(np.column_stack(cols), 0.0)


def blink_track(n: int, fps: float, talking: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Eyelid closure 0..1 per frame. Intervals are log-normal (median BLINK_INTERVAL_TALK_S talking,
    BLINK_INTERVAL_IDLE_S at rest, never under 0.6 s). Each blink closes in 70-100 ms, stays shut for
    30-50 ms but at least one frame (so that every blink shows a fully closed frame, whatever its phase
    against the frame clock) and opens in 100-150 ms: 200-300 ms in all at 25 fps."""
    out = np.zeros(n, np.float32)
    t = rng.uniform(0.3, 2.0)
    duration_total = n / fps
    times = np.arange(n) / fps
    while t < duration_total:
        close = rng.uniform(*BLINK_CLOSE_S)
        shut = max(rng.uniform(*BLINK_SHUT_S), 1.0 / fps)
        reopen = rng.uniform(*BLINK_OPEN_S)
        # Continuous profile sampled at frame times.
        x = times - t
        prof = np.minimum(_clip01(x / close), _clip01(1 - (x - close - shut) / reopen))
        out = np.maximum(out, prof.astype(np.float32))
        k = min(int(t * fps), n - 1)
        median = BLINK_INTERVAL_TALK_S if talking[k] else BLINK_INTERVAL_IDLE_S
        t += max(0.6, rng.lognormal(np.log(median), 0.45))
    return out


def gaze_track(n: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Eye rotation (yaw, pitch) degrees per frame, shape (n, 2): mostly on the camera, with brief natural
    shifts (a saccade every ~3 s to a point a few degrees away, held 0.3-1.2 s, then back). Saccades take
    one frame (they last 30-50 ms in people)."""
    out = np.zeros((n, 2), np.float32)
    t = rng.uniform(1.0, 3.0)
    total = n / fps
    while t < total:
        hold = rng.uniform(0.3, 1.2)
        angle = rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(3.0, 8.0)
        target = (amp * np.cos(angle), 0.6 * amp * np.sin(angle))  # vertical shifts are smaller
        a, b = int(t * fps), min(int((t + hold) * fps), n)
        out[a:b] = target
        t += hold + max(0.8, rng.lognormal(np.log(GAZE_INTERVAL_S), 0.5))
    return out


def head_sway(
    n: int,
    fps: float,
    rng: np.random.Generator,
    band_hz: tuple[float, float] = SWAY_BAND_HZ,
    slope: float = SWAY_SLOPE,
) -> np.ndarray:
    """Idle head motion, degrees, shape (n, 3): per axis, SWAY_COMPONENTS sinusoids, one in each equal
    log-frequency slot of band_hz (at a random frequency within it and a random phase), amplitude falling
    as frequency**-slope like real heads' (slow drifts, with faster small movements), scaled to the
    long-run std HEAD_STD_DEG."""
    out = np.zeros((n, 3))
    t = np.arange(n) / fps
    edges = np.log(np.geomspace(*band_hz, SWAY_COMPONENTS + 1))
    for axis in range(3):
        freqs = np.exp(rng.uniform(edges[:-1], edges[1:]))
        phases = rng.uniform(0, 2 * np.pi, size=SWAY_COMPONENTS)
        amps = freqs**-slope
        s = (amps[None, :] * np.sin(2 * np.pi * t[:, None] * freqs[None, :] + phases[None, :])).sum(1)
        out[:, axis] = s / np.sqrt((amps**2).sum() / 2) * HEAD_STD_DEG[axis]
    return out


def generate_rules(
    features: AudioFeatures, n_frames: int, fps: float, settings: RuleSettings
) -> MotionSequence:
    """Motion for n_frames video frames from 100 Hz features (of the whole signal)."""
    # One random stream per track, so that blinks, sway and gaze each depend on the seed alone: the head
    # does not change when the blinks do, and a track's start does not depend on the clip's length.
    blink_rng, sway_rng, gaze_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(settings.seed).spawn(3)
    )
    f = features.at_fps(fps, n_frames, offset=LIP_LEAD)
    if f.phonemes:
        # Known phonemes (text to speech, alignment): visemes shape the mouth exactly; loudness only
        # scales the jaw a little (emphasis).
        times = (np.arange(n_frames) + 0.5) / fps + LIP_LEAD
        targets = viseme_targets(f.phonemes, times)
        targets[:, 0] *= VISEME_JAW_GAIN * np.clip(0.75 + 0.5 * loudness(f), 0.75, 1.25)
        mouth = smooth_mouth(targets, fps, VISEME_SMOOTH_S)
    else:
        mouth = smooth_mouth(mouth_targets(f), fps)
    mouth *= settings.expression_scale

    talking = f.voicing > 0.5
    blinks = blink_track(n_frames, fps, talking, blink_rng)

    # Stress: loudness above its local (1 s) mean, on voiced frames; drives nods and brows.
    level = loudness(f)
    stress = _clip01((level - _lowpass(level, fps, 0.5)) * 3.0) * talking
    stress = _lowpass(stress, fps, 0.08)
    pitch = f.pitch_hz
    voiced = pitch > 0
    if voiced.sum() > 5:
        semis = np.where(voiced, 12 * np.log2(np.maximum(pitch, 1) / np.median(pitch[voiced])), 0.0)
        accent = _lowpass(_clip01(semis / 4.0) * voiced, fps, 0.12)
    else:
        accent = np.zeros(n_frames)
    rotation = head_sway(n_frames, fps, sway_rng)
    rotation[:, 1] += NOD_DEG * _lowpass(stress, fps, 0.1)  # nod down on stress
    rotation[:, 2] += 0.8 * _lowpass(accent, fps, 0.2) * sway_rng.choice([-1.0, 1.0])
    rotation *= settings.motion_scale
    translation = np.column_stack([rotation[:, 0] * 0.006, rotation[:, 1] * 0.004])

    expr = np.zeros((n_frames, len(EXPRESSIONS)), np.float32)
    expr[:, JAW_OPEN] = mouth[:, 0]
    expr[:, LIP_ROUND] = mouth[:, 1]
    expr[:, LIP_SPREAD] = mouth[:, 2]
    expr[:, BROW_RAISE] = settings.expression_scale * _clip01(0.5 * stress + 0.4 * accent)
    expr[:, BLINK_RIGHT] = blinks
    expr[:, BLINK_LEFT] = blinks
    gaze = gaze_track(n_frames, fps, gaze_rng) + np.asarray(settings.gaze, np.float32)
    return MotionSequence(expr, rotation.astype(np.float32), translation.astype(np.float32), gaze, fps)
