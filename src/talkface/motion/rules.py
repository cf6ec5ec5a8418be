"""The rule generator: deterministic phonetic/acoustic rules from audio features to motion.

Mouth: when phoneme timings are known, visemes with coarticulation (motion.visemes). Otherwise from the
acoustics (open_cue): the jaw follows the level of the F2-F3 band relative to the file's loud speech, and
closes when that level drops (pauses, stop closures) or the voice leaves only through the nose (m, n);
lips round when the spectrum is dark (low centroid: o, u) and spread when it is bright (i, e, s); silence
closes the mouth. These cues of the last 200 ms go through a linear filter fitted to real lips
(training/fit_rules_mouth.py, assets/rules_mouth.json), which reads no frame ahead: a live stream draws a
frame as soon as its audio (with the lip lead, LIP_LEAD) is in. A held, sung note (motion.cues.HeldNotes)
keeps the jaw open; visemes are smoothed to the lips' own 2-7 Hz motion.
The constants of the acoustic mouth and of the head sway are measured on real talking faces of the train
split by training/fit_rules.py. Eyes blink at a conversational rate with log-normal intervals, each blink
held shut for a moment. The head sways (slow drifts and smaller faster movements) and nods on stressed
syllables. The brows follow the voice's prosody (pitch accents, stress, loudness) through a linear filter
fitted to real talking faces (training/fit_brows.py, assets/brows.json).
"""

from __future__ import annotations

from pathlib import Path

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
from talkface.motion.contract import MotionControls, MotionSequence, Phoneme
from talkface.motion.controls import emotion_rows, no_model
from talkface.motion.cues import (  # the acoustic mouth is shared with the learned generator's blend
    BrowStream,
    HeldNotes,
    HeldWindowStream,
    ProsodyCues,
    SpeechLevels,
    acoustic_mouth,
    clip01,
    load_brows,
    load_rules_mouth,
    mouth_cue_rows,
    mouth_filter_stream,
)
from talkface.motion.stream import CausalSmoother, GaussianSmoother
from talkface.motion.visemes import VisemeTrack

LIP_LEAD = 0.04  # s: frame j shows the audio 40 ms ahead (lips lead the voice, never lag)

# The hand-made acoustic mouth's smoothing, before the fitted filter replaced it (training/fit_rules.py still
# fits the cues' constants through it): a zero-phase Gaussian that keeps the lips' 2-7 Hz motion.
MOUTH_SMOOTH_S = 0.035
MOUTH_REACH_S = 0.06  # smoothing looks at most this far ahead (one frame at 25 fps)
# The viseme table's jaw targets (an open vowel is 0.55) render about 0.41 eye distances of inner-lip gap, far
# above real speech (voiced p90 0.24 in the eval's real clips): scaled down towards the acoustic path's
# calibration, keeping open vowels clearly open (peaks ~0.2 eye distances).
VISEME_JAW_GAIN = 0.8
VISEME_SMOOTH_S = 0.02  # visemes are already coarticulated: only frame-rate shimmer is smoothed away

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


def _gaussian(fps: float, seconds: float, reach_s: float | None = None, columns: int = 1) -> GaussianSmoother:
    """A zero-phase Gaussian of standard deviation `seconds` reaching at most `reach_s` (default 3 sigma)."""
    sigma = seconds * fps
    reach = int(3 * sigma) + 1 if reach_s is None else max(1, int(reach_s * fps + 1e-6))
    return GaussianSmoother(sigma, reach, columns)


def _causal(fps: float, seconds: float) -> CausalSmoother:
    """A causal smoother that smooths about as much as a Gaussian of standard deviation `seconds`."""
    return CausalSmoother(seconds / np.sqrt(2) * fps)


def smooth_mouth(targets: np.ndarray, fps: float, seconds: float = MOUTH_SMOOTH_S) -> np.ndarray:
    """Mouth targets (T, k) of a whole sequence smoothed over time (zero-phase Gaussian of standard
    deviation `seconds`, at most MOUTH_REACH_S of lookahead); never below 0."""
    smoother = _gaussian(fps, seconds, MOUTH_REACH_S, targets.shape[1])
    return np.maximum(np.concatenate([smoother.push(targets), smoother.finish()]), 0.0)


class BlinkSchedule:
    """Eyelid closure 0..1 per frame, in absolute time. Intervals are log-normal (median
    BLINK_INTERVAL_TALK_S talking, BLINK_INTERVAL_IDLE_S at rest, never under 0.6 s). Each blink closes in
    70-100 ms, stays shut for 30-50 ms but at least one frame (so that every blink shows a fully closed
    frame, whatever its phase against the frame clock) and opens in 100-150 ms: 200-300 ms in all at 25 fps.
    Whether the face is talking is read at each blink's start."""

    def __init__(self, fps: float, rng: np.random.Generator):
        self.fps, self._rng = fps, rng
        self._next = rng.uniform(0.3, 2.0)  # start of the next blink, s
        self._blinks: list[tuple[float, float, float, float]] = []  # (start, close, shut, reopen) s

    def __call__(self, first: int, talking: np.ndarray) -> np.ndarray:
        """Lid closure of frames first..first+len(talking)-1; call with consecutive frames."""
        end = first + len(talking)
        while int(self._next * self.fps) < end:
            t = self._next
            close = self._rng.uniform(*BLINK_CLOSE_S)
            shut = max(self._rng.uniform(*BLINK_SHUT_S), 1.0 / self.fps)
            reopen = self._rng.uniform(*BLINK_OPEN_S)
            self._blinks.append((t, close, shut, reopen))
            median = BLINK_INTERVAL_TALK_S if talking[int(t * self.fps) - first] else BLINK_INTERVAL_IDLE_S
            self._next = t + max(0.6, self._rng.lognormal(np.log(median), 0.45))
        times = np.arange(first, end) / self.fps
        out = np.zeros(len(talking), np.float32)
        for t, close, shut, reopen in self._blinks:
            x = times - t
            prof = np.minimum(clip01(x / close), clip01(1 - (x - close - shut) / reopen))
            out = np.maximum(out, prof.astype(np.float32))
        self._blinks = [b for b in self._blinks if sum(b) >= end / self.fps]
        return out


def blink_track(n: int, fps: float, talking: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """BlinkSchedule over n frames at once."""
    return BlinkSchedule(fps, rng)(0, talking[:n])


class GazeSchedule:
    """Eye rotation (yaw, pitch) degrees per frame, in absolute time: mostly on the camera, with brief
    natural shifts (a saccade every ~3 s to a point a few degrees away, held 0.3-1.2 s, then back).
    Saccades take one frame (they last 30-50 ms in people)."""

    def __init__(self, fps: float, rng: np.random.Generator):
        self.fps, self._rng = fps, rng
        self._next = rng.uniform(1.0, 3.0)
        self._shifts: list[tuple[int, int, tuple[float, float]]] = []  # (first frame, end frame, target)

    def __call__(self, first: int, count: int) -> np.ndarray:
        end = first + count
        while int(self._next * self.fps) < end:
            t = self._next
            hold = self._rng.uniform(0.3, 1.2)
            angle = self._rng.uniform(0, 2 * np.pi)
            amp = self._rng.uniform(3.0, 8.0)
            target = (amp * np.cos(angle), 0.6 * amp * np.sin(angle))  # vertical shifts are smaller
            self._shifts.append((int(t * self.fps), int((t + hold) * self.fps), target))
            self._next = t + hold + max(0.8, self._rng.lognormal(np.log(GAZE_INTERVAL_S), 0.5))
        out = np.zeros((count, 2), np.float32)
        for a, b, target in self._shifts:
            out[max(a, first) - first : max(min(b, end), first) - first] = target
        self._shifts = [s for s in self._shifts if s[1] > end]
        return out


class HeadSway:
    """Idle head motion, degrees (yaw, pitch, roll), in absolute time: per axis, SWAY_COMPONENTS sinusoids,
    one in each equal log-frequency slot of band_hz (at a random frequency within it and a random phase),
    amplitude falling as frequency**-slope like real heads' (slow drifts, with faster small movements),
    scaled to the long-run std HEAD_STD_DEG."""

    def __init__(
        self,
        fps: float,
        rng: np.random.Generator,
        band_hz: tuple[float, float] = SWAY_BAND_HZ,
        slope: float = SWAY_SLOPE,
    ):
        self.fps = fps
        edges = np.log(np.geomspace(*band_hz, SWAY_COMPONENTS + 1))
        self._axes = []
        for axis in range(3):
            freqs = np.exp(rng.uniform(edges[:-1], edges[1:]))
            phases = rng.uniform(0, 2 * np.pi, size=SWAY_COMPONENTS)
            amps = freqs**-slope
            self._axes.append((freqs, phases, amps / np.sqrt((amps**2).sum() / 2) * HEAD_STD_DEG[axis]))

    def __call__(self, first: int, count: int) -> np.ndarray:
        t = np.arange(first, first + count)[:, None] / self.fps
        return np.column_stack(
            [(amps * np.sin(2 * np.pi * t * freqs + phases)).sum(1) for freqs, phases, amps in self._axes]
        )


def head_sway(
    n: int,
    fps: float,
    rng: np.random.Generator,
    band_hz: tuple[float, float] = SWAY_BAND_HZ,
    slope: float = SWAY_SLOPE,
) -> np.ndarray:
    """HeadSway over n frames, shape (n, 3)."""
    return HeadSway(fps, rng, band_hz, slope)(0, n)


class RuleStream:
    """The rule generator as a MotionStream: per window, the mouth from visemes (smoothed with MOUTH_REACH_S
    of lookahead) or from the acoustic cues (the fitted filter, no lookahead), blinks, gaze shifts, head sway,
    nods on stress, brows from the fitted prosody filter, all carried across windows in absolute time. The
    head and brows follow the voice through causal filters read with (at most) the mouth's lookahead, so a
    live stream waits for nothing more than the mouth does."""

    needs_phonemes = False  # phonemes shape its mouth when given; without them, its acoustic mouth
    lead_s = LIP_LEAD

    def __init__(
        self,
        fps: float,
        controls: MotionControls,
        phonemes: tuple[Phoneme, ...] = (),
        model: str | Path | None = None,
    ):
        no_model("rules", model)
        self.fps = float(fps)
        self.controls, self.phonemes = controls, tuple(phonemes)
        self._visemes = VisemeTrack(self.phonemes)
        # One random stream per track, so that blinks, sway and gaze each depend on the seed alone: the head
        # does not change when the blinks do, and a track's start does not depend on the clip's length.
        blink_rng, sway_rng, gaze_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(controls.seed).spawn(3)
        )
        self._blinks = BlinkSchedule(fps, blink_rng)
        self._sway = HeadSway(fps, sway_rng)
        self._roll_sign = sway_rng.choice([-1.0, 1.0])
        self._gaze = GazeSchedule(fps, gaze_rng)
        self._levels = SpeechLevels(fps)
        self._mouth: GaussianSmoother | HeldWindowStream
        if phonemes:
            self._mouth = _gaussian(fps, VISEME_SMOOTH_S, MOUTH_REACH_S, 3)
            self._lookahead = self._mouth.reach
        else:
            fitted_fps, mouth = load_rules_mouth()
            mouth = mouth.at_rate(fitted_fps, fps)
            self._mouth, self._lookahead = mouth_filter_stream(mouth), mouth.ahead
            self._held = HeldNotes(fps)
        self._stress, self._nod = _causal(fps, 0.08), _causal(fps, 0.1)
        self._accent, self._accent_roll = _causal(fps, 0.12), _causal(fps, 0.2)
        self._prosody = ProsodyCues(fps)
        self._pushed = 0  # frames of features pushed
        self._done = 0  # motion frames returned
        # The brows: fitted to real faces (motion.cues.BrowFilter), reading at most the mouth's lookahead.
        # _brow: the filter's output for frames _brow_start... (frame j's comes with pushed frame j + ahead).
        self._brows = BrowStream(load_brows(), fps, max_ahead=self._lookahead)
        self._brow = np.zeros(0)
        self._brow_start = 0
        # Per pushed frame not yet returned: nod, roll, blink, gaze yaw and pitch.
        self._rows = np.zeros((0, 5))

    @property
    def lookahead_s(self) -> float:
        return LIP_LEAD + self._lookahead / self.fps

    def push(self, features: AudioFeatures) -> MotionSequence:
        n = len(features)
        first = self._pushed
        self._pushed += n
        if n == 0:
            return MotionSequence.still(0, self.fps)
        level, cue, semis = self._levels(features)
        prosody = self._prosody(features, level, semis)  # accent, stress, ... (motion.cues.PROSODY_COLUMNS)
        self._brow = np.concatenate([self._brow, self._brows.push(prosody)])
        if self.phonemes:
            # Known phonemes (text to speech, alignment): visemes shape the mouth exactly; loudness only
            # scales the jaw a little (emphasis).
            times = (np.arange(first, first + n) + 0.5) / self.fps + LIP_LEAD
            targets = self._visemes(times)
            targets[:, 0] *= VISEME_JAW_GAIN * np.clip(0.75 + 0.5 * level, 0.75, 1.25)
            mouth = self._mouth.push(targets)
        else:
            cues = mouth_cue_rows(features, level, cue, semis)
            held = self._held(features)
            mouth = acoustic_mouth(self._mouth.push(cues), cues, features.voicing, held)  # no lookahead

        talking = features.voicing > 0.5
        # Stress: loudness above its recent mean, on voiced frames; drives nods. Accent: pitch above the
        # speaker's median; tilts the head. (The brows read both through their fitted filter, _brows.)
        stress = self._stress(prosody[:, 1])
        accent = self._accent(prosody[:, 0])
        rows = np.column_stack(
            [
                NOD_DEG * self._nod(stress),
                0.8 * self._accent_roll(accent) * self._roll_sign,
                self._blinks(first, talking),
                self._gaze(first, n),
            ]
        )
        self._rows = np.concatenate([self._rows, rows])
        return self._motion(mouth)

    def finish(self) -> MotionSequence:
        self._brow = np.concatenate([self._brow, self._brows.finish()])
        return self._motion(self._mouth.finish())

    def _motion(self, mouth: np.ndarray) -> MotionSequence:
        """Motion for the next len(mouth) frames: the mouth given, the voice-driven head and brows read
        `lookahead` frames later (the same lookahead as the mouth's), blinks, gaze and sway at the frame."""
        n = len(mouth)
        first = self._done
        self._done += n
        if n == 0:
            return MotionSequence.still(0, self.fps)
        s = self.controls
        base = self._pushed - len(self._rows)  # frame index of self._rows[0]
        frames = np.arange(first, first + n)
        ahead = np.minimum(frames + self._lookahead, self._pushed - 1) - base
        here = frames - base
        rows = self._rows
        rotation = self._sway(first, n)
        rotation[:, 1] += rows[ahead, 0]  # nod down on stress
        rotation[:, 2] += rows[ahead, 1]
        rotation *= s.motion_scale
        translation = np.column_stack([rotation[:, 0] * 0.006, rotation[:, 1] * 0.004])

        expr = np.zeros((n, len(EXPRESSIONS)), np.float32)
        mouth = np.maximum(mouth, 0.0) * s.expression_scale
        expr[:, JAW_OPEN] = mouth[:, 0]
        expr[:, LIP_ROUND] = mouth[:, 1]
        expr[:, LIP_SPREAD] = mouth[:, 2]
        expr[:, BROW_RAISE] = s.expression_scale * self._brow[frames - self._brow_start]
        self._brow, self._brow_start = self._brow[first + n - self._brow_start :], first + n
        expr[:, BLINK_RIGHT] = rows[here, 2]
        expr[:, BLINK_LEFT] = rows[here, 2]
        gaze = rows[here, 3:5] + np.asarray(s.gaze)
        # Keep the rows later frames still read (their own and `lookahead` ahead).
        self._rows = self._rows[max(0, first + n - base) :]
        return MotionSequence(
            expr,
            rotation.astype(np.float32),
            translation.astype(np.float32),
            gaze.astype(np.float32),
            self.fps,
            emotion_rows(s, first, n, self.fps),
        )
