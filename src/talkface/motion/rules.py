"""The rule generator: deterministic phonetic/acoustic rules from audio features to motion.

Mouth: when phoneme timings are known, visemes with coarticulation (motion.visemes). Otherwise from the
acoustics: the jaw opens with voiced loudness, more in the first-formant region (open vowels); lips round
when the spectrum is dark (low centroid: o, u) and spread when it is bright (i, e, s); silence closes it.
Lips lead the voice slightly (LIP_LEAD). Eyes blink at a conversational rate with log-normal intervals.
The head sways slowly and nods on stressed syllables; brows rise with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkface.audio.features import AudioFeatures
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

LIP_LEAD = 0.03  # s: frame j shows the audio 30 ms ahead (lips lead the voice, never lag)
ATTACK_S, RELEASE_S = 0.025, 0.05  # mouth opening / closing time constants
MAX_JAW = 0.75
BLINK_INTERVAL_TALK_S = 2.4  # median interval while talking (about 24 blinks per minute)
BLINK_INTERVAL_IDLE_S = 3.4  # at rest (about 17 per minute)
HEAD_STD_DEG = np.array([2.4, 1.6, 1.1])  # yaw, pitch, roll sway at motion_scale = 1
NOD_DEG = 2.0  # pitch added by a full-strength stressed syllable
GAZE_INTERVAL_S = 3.0  # median time between gaze shifts


@dataclass(frozen=True)
class RuleSettings:
    """seed: random seed for blinks and sway. motion_scale: head motion amplitude.
    expression_scale: mouth and brow amplitude. gaze: main gaze direction (yaw, pitch) in degrees."""

    seed: int = 0
    motion_scale: float = 1.0
    expression_scale: float = 1.0
    gaze: tuple[float, float] = (0.0, 0.0)


def _smooth_asymmetric(x: np.ndarray, fps: float, attack: float, release: float) -> np.ndarray:
    """One-pole follower that rises with time constant `attack` and falls with `release` (seconds)."""
    a_up = 1 - np.exp(-1 / (fps * attack))
    a_down = 1 - np.exp(-1 / (fps * release))
    y = np.empty_like(x)
    state = 0.0
    for i, v in enumerate(x):
        state += (a_up if v > state else a_down) * (v - state)
        y[i] = state
    return y


def _lowpass(x: np.ndarray, fps: float, seconds: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing with standard deviation `seconds`."""
    sigma = seconds * fps
    if sigma < 0.3 or len(x) < 2:
        return x.copy()
    r = int(3 * sigma) + 1
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(x, r, mode="edge"), k, mode="valid")


def _clip01(x):
    return np.clip(x, 0.0, 1.0)


def loudness(features: AudioFeatures) -> np.ndarray:
    """Voiced loudness 0..1 per frame: level relative to the file's own loud speech, so a quiet and a
    loud recording of the same speech move the mouth alike."""
    e = features.energy_db
    speech = features.voicing > 0.5
    ref = np.percentile(e[speech], 95) if speech.sum() >= 5 else np.percentile(e, 95)
    return _clip01((e - (ref - 28.0)) / 28.0)


def mouth_targets(features: AudioFeatures) -> np.ndarray:
    """Jaw, rounding and spreading targets per frame from the acoustics, shape (T, 3), before smoothing."""
    gate = _clip01((features.voicing - 0.25) / 0.4)
    level = loudness(features)
    open_vowel = _clip01((features.low_ratio - 0.15) / 0.55)
    jaw = MAX_JAW * level**1.3 * (0.45 + 0.75 * open_vowel) * gate
    dark = _clip01((1500.0 - features.centroid_hz) / 900.0)
    bright = _clip01((features.high_ratio - 0.08) / 0.3)
    voiced = (features.pitch_hz > 0).astype(np.float32)
    rounding = 0.8 * dark * np.sqrt(level) * gate * (0.4 + 0.6 * voiced)
    spread = 0.55 * bright * np.sqrt(level) * gate
    return np.column_stack([np.minimum(jaw, MAX_JAW), rounding, spread])


def blink_track(n: int, fps: float, talking: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Eyelid closure 0..1 per frame. Intervals are log-normal (median 2.4 s talking, 3.4 s at rest, never
    under 0.6 s); each blink lasts 100-300 ms, closing faster than it opens."""
    out = np.zeros(n, np.float32)
    t = rng.uniform(0.3, 2.0)
    duration_total = n / fps
    times = np.arange(n) / fps
    while t < duration_total:
        dur = float(np.clip(rng.lognormal(np.log(0.19), 0.25), 0.10, 0.30))
        close = 0.4 * dur
        # Continuous profile sampled at frame times, so a blink shorter than a frame still shows.
        x = times - t
        closing = _clip01(x / close)
        opening = _clip01(1 - (x - close) / (dur - close))
        prof = np.where(x < close, closing, opening) * ((x >= -0.5 / fps) & (x <= dur + 0.5 / fps))
        # A blink that falls between frames is still seen partly closed (the camera's exposure).
        prof = np.maximum(prof, 0.0)
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


def head_sway(n: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Slow idle head motion, degrees, shape (n, 3): band-limited noise (0.1-0.6 Hz) with the std of
    HEAD_STD_DEG per axis."""
    out = np.zeros((n, 3))
    t = np.arange(n) / fps
    for axis in range(3):
        freqs = rng.uniform(0.08, 0.6, size=5)
        phases = rng.uniform(0, 2 * np.pi, size=5)
        amps = 1.0 / np.sqrt(freqs)
        s = (amps[None, :] * np.sin(2 * np.pi * t[:, None] * freqs[None, :] + phases[None, :])).sum(1)
        std = np.sqrt((amps**2).sum() / 2)
        out[:, axis] = s / std * HEAD_STD_DEG[axis]
    return out


def generate_rules(
    features: AudioFeatures, n_frames: int, fps: float, settings: RuleSettings
) -> MotionSequence:
    """Motion for n_frames video frames from 100 Hz features (of the whole signal)."""
    rng = np.random.default_rng(settings.seed)
    f = features.at_fps(fps, n_frames, offset=LIP_LEAD)
    if f.phonemes:
        # Known phonemes (text to speech, alignment): visemes shape the mouth exactly; loudness only
        # scales the jaw a little (emphasis).
        times = (np.arange(n_frames) + 0.5) / fps + LIP_LEAD
        targets = viseme_targets(f.phonemes, times)
        targets[:, 0] *= np.clip(0.75 + 0.5 * loudness(f), 0.75, 1.25)
    else:
        targets = mouth_targets(f)
    mouth = np.column_stack([_smooth_asymmetric(targets[:, k], fps, ATTACK_S, RELEASE_S) for k in range(3)])
    mouth *= settings.expression_scale

    talking = f.voicing > 0.5
    blinks = blink_track(n_frames, fps, talking, rng)

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
    rotation = head_sway(n_frames, fps, rng)
    rotation[:, 1] += NOD_DEG * _lowpass(stress, fps, 0.1)  # nod down on stress
    rotation[:, 2] += 0.8 * _lowpass(accent, fps, 0.2) * rng.choice([-1.0, 1.0])
    rotation *= settings.motion_scale
    translation = np.column_stack([rotation[:, 0] * 0.006, rotation[:, 1] * 0.004])

    expr = np.zeros((n_frames, len(EXPRESSIONS)), np.float32)
    expr[:, JAW_OPEN] = mouth[:, 0]
    expr[:, LIP_ROUND] = mouth[:, 1]
    expr[:, LIP_SPREAD] = mouth[:, 2]
    expr[:, BROW_RAISE] = settings.expression_scale * _clip01(0.5 * stress + 0.4 * accent)
    expr[:, BLINK_RIGHT] = blinks
    expr[:, BLINK_LEFT] = blinks
    gaze = gaze_track(n_frames, fps, rng) + np.asarray(settings.gaze, np.float32)
    return MotionSequence(expr, rotation.astype(np.float32), translation.astype(np.float32), gaze, fps)
