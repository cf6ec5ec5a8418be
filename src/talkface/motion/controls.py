"""The steering controls as motion: what every generator applies to its own output, and what drive applies to
motion captured from a video.

A generator applies its head and expression scales where its own structure says they belong (the rules scale
the mouth and brows, not the blinks); `emotion_rows` gives the rows of the emotion track that every generator
sets (a `LiveEmotion` changes while a live stream plays), and `steer` applies all the controls to motion
that no generator made (drive).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from talkface.config import EMOTION_TRANSITION_S, EMOTIONS, EmotionKey, EmotionTrack, Steering
from talkface.errors import TalkfaceError
from talkface.face.expression import BLINK_LEFT, BLINK_RIGHT, EXPRESSIONS
from talkface.motion.contract import MotionSequence

# Expression coefficients the expression scale leaves alone: the lids (a blink is shut at any scale).
_UNSCALED = (BLINK_RIGHT, BLINK_LEFT)


def no_model(generator: str, model) -> None:
    """Raise TalkfaceError if a model file is given to a generator that has none."""
    if model is not None:
        raise TalkfaceError(f"the {generator} generator has no model file; {model} is for the learned one")


def emotion_rows(controls: Steering, first_frame: int, n_frames: int, fps: float) -> np.ndarray:
    """The emotion rows (n_frames, len(EMOTIONS)) float32 that `controls` ask for (VASA-1's emotion offset)
    for frames first_frame .. first_frame + n_frames - 1 at `fps`, frame i at time (i + 0.5) / fps: the track
    controls.emotion (config.EmotionTrack: neutral before its first keyframe, a keyframe at 0 s held from the
    first frame, every other one a cosine ease over EMOTION_TRANSITION_S from the emotion shown at its time
    to its own), each keyframe at its own strength or controls.emotion_strength. A constant emotion gives
    every frame the same row. A generator asks for its frames' rows as it returns them, so that a live
    change (LiveEmotion) reaches every frame not yet returned."""
    track = controls.emotion
    if isinstance(track, LiveEmotion):
        segments = track.segments
    else:
        segments = _track_segments(_Same(track), float(controls.emotion_strength))
    t = (np.arange(first_frame, first_frame + n_frames) + 0.5) / fps
    return _rows(segments, t).astype(np.float32)


# An emotion track as segments (times (K,), starts (K, E), goals (K, E)): from times[k] on (up to the next),
# the emotion eases from starts[k] to goals[k].
Segments = tuple[np.ndarray, np.ndarray, np.ndarray]


def _rows(segments: Segments, t: np.ndarray) -> np.ndarray:
    """The emotion at times `t` (N,) in seconds, (N, E) float64: neutral before the first segment."""
    times, starts, goals = segments
    k = np.searchsorted(times, t, side="right") - 1
    rows = np.zeros((len(t), len(EMOTIONS)))
    on = k >= 0
    k = k[on]
    rows[on] = starts[k] + (goals[k] - starts[k]) * _eased(t[on] - times[k])[:, None]
    return rows


class _Same:
    """A track as a cache key, compared by identity: hashing a long track on every push would cost more
    than its rows."""

    __slots__ = ("track",)

    def __init__(self, track: EmotionTrack):
        self.track = track

    def __hash__(self) -> int:
        return id(self.track)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Same) and self.track is other.track


@functools.lru_cache(maxsize=64)
def _track_segments(same: _Same, strength: float) -> Segments:
    """A track's segments, its keyframes without a strength at `strength`. Keyframe k eases from where
    keyframe k-1 had got to at its time (that keyframe's emotion once its transition is over); the first
    from neutral, or, at 0 s, from its own emotion (it holds from the first frame). Read-only arrays."""
    keys = same.track.keys
    times = np.array([key.time for key in keys], np.float64)
    goals = np.stack([_goal(key, strength) for key in keys])
    starts = np.zeros_like(goals)
    if times[0] == 0:
        starts[0] = goals[0]
    for k in range(1, len(keys)):
        done = float(_eased(times[k] - times[k - 1]))
        starts[k] = goals[k - 1] if done == 1 else starts[k - 1] + (goals[k - 1] - starts[k - 1]) * done
    for a in (times, starts, goals):
        a.flags.writeable = False
    return times, starts, goals


def _goal(key: EmotionKey, strength: float) -> np.ndarray:
    """The emotion row (E,) float64 a keyframe eases to: its emotion at its strength, or `strength`."""
    row = np.zeros(len(EMOTIONS))
    if key.emotion != "neutral":
        row[EMOTIONS.index(key.emotion)] = strength if key.strength is None else key.strength
    return row


def _eased(elapsed):
    """How far a transition has gone `elapsed` seconds after it began: 0 to 1, a cosine ease over
    EMOTION_TRANSITION_S (0 before it, 1 after it)."""
    x = np.clip(np.asarray(elapsed, np.float64) / EMOTION_TRANSITION_S, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


class LiveEmotion:
    """The emotion of a live stream, changed while it plays (talkface.Session.set_emotion). It plays `track`
    (its keyframes without a strength at `strength`: the emotion_strength of the controls that hold it) until
    change() eases from the emotion shown at a given time to another one, as a keyframe at that time would.
    Generators read it through emotion_rows whenever they return frames, so the frames made after a change
    follow it and the frames made before keep theirs. However many changes, it holds one segment (a change
    forgets what came before it: those frames are made). Compared and hashed by identity, so the controls
    that hold it stay hashable. Not locked: its owner changes it and pushes audio under one lock."""

    def __init__(self, track: EmotionTrack, strength: float):
        self.keys = track.keys  # what it plays: the track, then the keyframe of the latest change
        self.segments = _track_segments(_Same(track), float(strength))
        self._strength = float(strength)

    def change(self, time: float, emotion: str, strength: float | None = None) -> None:
        """From `time` (seconds, a frame's start) on, ease from the emotion shown then to `emotion` at
        `strength` (None: the default strength); at 0 s, before any frame, show it at once. Raises
        TalkfaceError (config.EmotionTrack's) for an unknown emotion or a bad strength, changing nothing."""
        key = EmotionKey(float(time), emotion, strength)
        EmotionTrack((key,))  # checks the keyframe
        goal = _goal(key, self._strength)
        shown = goal if key.time == 0 else _rows(self.segments, np.array([key.time]))[0]
        self.segments = (np.array([key.time]), shown[None], goal[None])
        self.keys = (key,)

    def __repr__(self) -> str:
        return f"LiveEmotion({','.join(map(str, self.keys))})"


def steer(motion: MotionSequence, controls: Steering) -> MotionSequence:
    """`motion` steered by `controls`: head rotation and shift times motion_scale (the head's size is kept),
    expression coefficients other than the lids times expression_scale, gaze offset by controls.gaze, and
    controls' emotion added to the emotion the motion already has (clipped to 0..1.5)."""
    expression = motion.expression.copy()
    scaled = [i for i in range(len(EXPRESSIONS)) if i not in _UNSCALED]
    expression[:, scaled] *= controls.expression_scale
    emotion = np.clip(motion.emotion + emotion_rows(controls, 0, len(motion), motion.fps), 0.0, 1.5)
    return dataclasses.replace(
        motion,
        expression=expression,
        rotation=(motion.rotation * controls.motion_scale).astype(np.float32),
        translation=(motion.translation * controls.motion_scale).astype(np.float32),
        gaze=(motion.gaze + np.asarray(controls.gaze, np.float32)).astype(np.float32),
        emotion=emotion.astype(np.float32),
    )


def retime(motion: MotionSequence, fps: float) -> MotionSequence:
    """`motion` resampled to `fps` over the same duration: round(len / motion.fps * fps) frames, each the
    linear interpolation of the input at its centre time (frame i covers [i/fps, (i+1)/fps)). A lid closure
    shorter than a frame may fall between the new frames."""
    if fps == motion.fps or len(motion) == 0:
        return dataclasses.replace(motion, fps=float(fps))
    n_out = max(1, round(len(motion) / motion.fps * fps))
    t = np.clip((np.arange(n_out) + 0.5) / fps * motion.fps - 0.5, 0, len(motion) - 1)
    i0 = np.floor(t).astype(np.int64)
    i1 = np.minimum(i0 + 1, len(motion) - 1)
    w = (t - i0)[:, None]

    def at(x: np.ndarray) -> np.ndarray:
        x2 = x.reshape(len(x), -1)
        return (x2[i0] * (1 - w) + x2[i1] * w).astype(np.float32).reshape(n_out, *x.shape[1:])

    return MotionSequence(
        at(motion.expression),
        at(motion.rotation),
        at(motion.translation),
        at(motion.gaze),
        float(fps),
        at(motion.emotion),
        at(motion.scale),
    )
