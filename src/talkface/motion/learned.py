"""The learned motion generator: a small flow-matching transformer over the face latent, run window by
window with onnxruntime (VASA-1's holistic dynamics generator, in miniature).

The model works at MODEL_FPS. Each call generates WINDOW new motion frames (pose, expression, blinks,
gaze: MOTION_DIM numbers per frame) from

- the CONTEXT motion frames before them (the previous windows' output: continuity across windows),
- the audio features of the CONTEXT + WINDOW + LOOKAHEAD frames around them (LOOKAHEAD frames of audio
  after the window: the lips may open before the sound),

by integrating a learned velocity field from Gaussian noise to a motion sample in STEPS Euler steps,
with classifier-free guidance on the audio (the model was trained with the audio dropped at times).
Audio features are normalised causally (FeatureNormalizer: level relative to a running reference of the
voice's loud level, spectral shape relative to the frame's own mean, pitch relative to a running mean),
so nothing depends on whole-file statistics and the same code serves offline rendering and live
streaming: the window grid is fixed, so any push() chunking gives the same motion, and a frame is final
WINDOW + LOOKAHEAD model frames (240 ms at 25 fps) after its audio arrives at most.

The mouth (jaw, lip rounding and spreading) of each window is then set by a learned MouthFilter rather than
sampled: the flow's sampled mouth followed the voice poorly (validation lip-sync r 0.17 vs the rules'
0.33), because the sound decides the lips far more than it decides the head, and noise plus the model's
own drifting past decorrelate them. The filter reads the coarticulated viseme targets of the phonemes
(from text to speech, a transcript, or recognised in the audio by pocketsphinx: audio.phones) over 3 frames
back and 3 ahead, or, when no phonemes are known (a live stream), the rules' causal acoustic mouth cues
(MouthCues) over 4 back and 2 ahead; it was fitted to real talking faces of the train split
(training/learned_motion/mouth.py, which also reports its speaker-disjoint cross-validation). Offline, when
the phonemes were heard in a recording known whole, its jaw is stacked with the heard jaw (audio.heard_jaw: a
net trained on synthetic speech and fine-tuned on the same real faces, which hears 190 ms ahead;
training/viseme_net/finetune.py); live, the live filters' jaw with the heard jaw of the audio received so far
(another net, which hears 70 ms ahead; training/viseme_net/live_stack.py).

The lids of each window come from a renewal process fitted to the blinks of the same real faces
(motion.blinks, training/learned_motion/blinks.py) rather than from the flow: the flow's sampled lids
rounded the brief closures off and blinked at 19 per minute where the speakers blinked at 33, and at
rates that followed the voice (one speaker's voice gave 55 per minute, another's 9).

Outputs are calibrated (motion_model.json "calibration", training/learned_motion/export.py and
jaw_curve.py), each measured through the renderer and the tracker on the train split: jaw and head gains,
head angles soft-limited to the range of real heads, the blink widths' stretch; with heard phones, a share
of the rule generator's acoustic jaw mixed in (the two mouths err differently); and a jaw curve that shuts
the lips below a small opening, so that they close in as many voiced frames as real lips do.

Weights ship as assets/motion_model.onnx with assets/motion_model.json (sizes, feature and motion
normalisation, sampling settings, and the data and validation numbers it was trained and checked with).
Training: training/learned_motion (torch, never imported at run time).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from talkface import assets
from talkface.audio.features import AudioFeatures, concat_features
from talkface.audio.heard_jaw import HEARD_JAW_FILE, LIVE_HEARD_JAW_FILE, LiveHeardJaw, LivePrior
from talkface.errors import TalkfaceError
from talkface.face.expression import EXPRESSIONS
from talkface.motion.blinks import BlinkModel, BlinkTrack
from talkface.motion.contract import MotionControls, MotionSequence, Phoneme
from talkface.motion.controls import emotion_rows
from talkface.motion.cues import (  # the mouth filters are shared with the rule generator
    CUE_DIM,
    SUNG_JAW,
    HeldNotes,
    MouthCues,
    MouthFilter,
    acoustic_mouth,
    load_rules_mouth,
    voice_gate,
)
from talkface.motion.stream import CausalSmoother
from talkface.motion.visemes import VisemeTrack

MODEL_FPS = 25.0  # the model's frame rate; other video rates are interpolated to and from it
# Motion vector layout, MOTION_DIM numbers per frame: expression (EXPRESSIONS order), rotation yaw, pitch,
# roll (degrees), translation x, y (eye distances), gaze yaw, pitch (degrees).
N_EXPR = len(EXPRESSIONS)
ROT = slice(N_EXPR, N_EXPR + 3)
TRANS = slice(N_EXPR + 3, N_EXPR + 5)
GAZE = slice(N_EXPR + 5, N_EXPR + 7)
MOTION_DIM = N_EXPR + 7
MODEL_FILE, META_FILE = "motion_model.onnx", "motion_model.json"  # the .json is always the .onnx's name
MOUTH = slice(0, 3)  # jaw_open, lip_round, lip_spread: the channels MouthFilter gives
MOUTH_KINDS = ("visemes", "acoustic", "live", "live_edge")
LIDS = slice(4, 6)  # blink_right, blink_left: the channels the blink process gives
# Given phonemes, the jaw closes when the nearest spoken phoneme is more than PAUSE_OPEN_S away, fully
# PAUSE_CLOSE_S later (the lips close within ~100 ms of silence).
PAUSE_OPEN_S, PAUSE_CLOSE_S = 0.04, 0.06
VOICE_BACK = 4  # model frames of voice activity before a frame that keep its mouth free to open (_voiced)
RULES_LEAD = 1  # model frames: the rules' acoustic mouth shows the audio 40 ms ahead (rules.LIP_LEAD)
# Live, the lip shape (rounding, spreading) is smoothed causally by a one-pole low-pass
# (motion.stream.CausalSmoother, one stage) of time constant LIVE_SHAPE_TAU frames: each frame moves half way
# to the new value (x += 0.5 * (new - x)). Read from the recogniser's guesses, which change from frame to
# frame at its edge, the live filters' shapes jitter 1.6-1.8x as much as real lips (train split, per clip mean
# |frame-to-frame change| of the filter one frame ahead: round 0.073, spread 0.087 against the real 0.041,
# 0.054); smoothed, 0.042 and 0.053, for r with the real shape 0.230 -> 0.212 and 0.131 -> 0.125
# (`training/learned_motion/live_mouth.py --cv-only`). The jaw is not smoothed: its timing is the lip sync,
# and it jitters no more than the rules' jaw.
LIVE_SHAPE_TAU = 1.0 / math.log(2.0)

# Causal feature normalisation (FeatureNormalizer).
N_MELS = 40
FEATURE_DIM = N_MELS + 9
REF_INIT_DB = -25.0  # running loud-voice level before any sound (a typical speech level, dBFS)
REF_FLOOR_DB = -50.0  # never below: silence must stay far below the reference
REF_ATTACK = 0.3  # share of the gap closed per frame when a frame is louder than the reference
# The reference falls this fast through quieter voiced frames (it settles near the top of the voice's
# levels, and a quiet recording is found within a few seconds of speech) ...
REF_DECAY_VOICED_DB_S = 10.0
REF_DECAY_DB_S = 0.5  # ... and this slowly in pauses (a pause must not make the room noise "loud")
PITCH_EMA_S = 2.0  # time constant of the running mean log-pitch


@dataclass
class FeatureNormalizer:
    """Turns raw per-frame features (at MODEL_FPS) into the model's level-invariant inputs, causally:
    frame i depends on frames <= i only, so chunked calls give the same result as one call.

    Output columns (FEATURE_DIM): 40 log-mel bands minus their frame mean (/3, natural-log units), level
    relative to the running loud-voice reference (/20 dB), level change from the previous frame (/10 dB),
    voicing, voiced flag, pitch relative to the running mean (octaves), periodicity, low_ratio,
    high_ratio, log2(centroid / 1 kHz)."""

    ref_db: float = REF_INIT_DB
    pitch_ref: float | None = None  # running mean log2(pitch / Hz) of voiced frames
    last_db: float | None = None

    def __call__(self, f: AudioFeatures) -> np.ndarray:
        """Model inputs (T, FEATURE_DIM) float32 for features `f` at MODEL_FPS (T frames)."""
        n = len(f)
        decay = REF_DECAY_DB_S / MODEL_FPS
        decay_voiced = REF_DECAY_VOICED_DB_S / MODEL_FPS
        alpha = 1.0 / (PITCH_EMA_S * MODEL_FPS)
        energy = f.energy_db.astype(np.float64)
        rel = np.empty(n)
        delta = np.empty(n)
        octave = np.zeros(n)
        for i in range(n):
            e = float(energy[i])
            if e > self.ref_db:
                self.ref_db += REF_ATTACK * (e - self.ref_db)
            else:
                fall = decay_voiced if f.voicing[i] > 0.5 else decay
                self.ref_db = max(self.ref_db - fall, REF_FLOOR_DB)
            rel[i] = e - self.ref_db
            delta[i] = 0.0 if self.last_db is None else e - self.last_db
            self.last_db = e
            p = float(f.pitch_hz[i])
            if p > 0:
                lp = math.log2(p)
                self.pitch_ref = (
                    lp if self.pitch_ref is None else self.pitch_ref + alpha * (lp - self.pitch_ref)
                )
                octave[i] = lp - self.pitch_ref
        log_mel = f.log_mel.astype(np.float64)
        shape = (log_mel - log_mel.mean(1, keepdims=True)) / 3.0
        cols = [
            np.clip(rel / 20.0, -3.0, 0.5),
            np.clip(delta / 10.0, -2.0, 2.0),
            f.voicing,
            (f.pitch_hz > 0).astype(np.float64),
            np.clip(octave, -1.0, 1.0),
            f.periodicity,
            f.low_ratio,
            f.high_ratio,
            np.clip(np.log2(np.maximum(f.centroid_hz, 50.0) / 1000.0), -3.0, 3.0),
        ]
        return np.column_stack([shape, *cols]).astype(np.float32)


def motion_to_array(m: MotionSequence) -> np.ndarray:
    """The model's motion vector per frame, shape (T, MOTION_DIM) float32 (layout: see MOTION_DIM)."""
    return np.concatenate([m.expression, m.rotation, m.translation, m.gaze], 1).astype(np.float32)


def array_to_motion(x: np.ndarray, fps: float) -> MotionSequence:
    """Inverse of motion_to_array (no emotion)."""
    x = np.asarray(x, np.float32)
    return MotionSequence(
        np.ascontiguousarray(x[:, :N_EXPR]),
        np.ascontiguousarray(x[:, ROT]),
        np.ascontiguousarray(x[:, TRANS]),
        np.ascontiguousarray(x[:, GAZE]),
        fps,
    )


def resample_frames(x: np.ndarray, fps_in: float, n_out: int, fps_out: float, start: int = 0) -> np.ndarray:
    """Rows of x (T, ...) sampled at frame rate fps_in, linearly interpolated at the centres of output frames
    start..start+n_out-1 at fps_out (frame i's centre is (i + 0.5) / fps), clamped at the ends."""
    t = (np.arange(start, start + n_out) + 0.5) / fps_out * fps_in - 0.5
    t = np.clip(t, 0, len(x) - 1)
    i0 = np.floor(t).astype(np.int64)
    i1 = np.minimum(i0 + 1, len(x) - 1)
    w = (t - i0).reshape(-1, *([1] * (x.ndim - 1)))
    return (x[i0] * (1 - w) + x[i1] * w).astype(np.float32)


@dataclass(frozen=True)
class ModelMeta:
    """What motion_model.json says about the model: window sizes in model frames, motion normalisation
    (x_model = (x - motion_mean) / motion_std), sampling settings, output calibration."""

    context: int
    window: int
    lookahead: int
    steps: int
    guidance: float  # classifier-free guidance scale on the audio (1 = none)
    temperature: float  # scale of the initial noise
    motion_mean: np.ndarray  # (MOTION_DIM,)
    motion_std: np.ndarray  # (MOTION_DIM,)
    rotation_gain: np.ndarray  # (3,) yaw, pitch, roll: rendered-head calibration
    jaw_gain: float
    # Monotone map of the jaw after the gain (knots x, y): rendered voiced openings spread like real ones,
    # closing between syllables as real lips do (training/learned_motion/jaw_curve.py). None: identity.
    jaw_curve: tuple[np.ndarray, np.ndarray] | None
    # Share of the rule generator's acoustic jaw mixed into the jaw read from heard phonemes (_rules_jaw):
    # the two err differently, and the mix follows real lips better (training/learned_motion/jaw_curve.py
    # --mix; with the heard jaw, training/viseme_net/calibrate.py --mix). Not with text to speech's phonemes:
    # their timings are exact. Live (phones recognised as the audio streams in): rules_jaw_live
    # (training/viseme_net/live_stack.py --mix).
    rules_jaw: float
    rules_jaw_live: float
    # Soft limit of the head's yaw, pitch and roll (degrees, after the gains): the range of real heads in
    # the training data. Audio unlike the training speech (singing) can swing the sampled head far beyond.
    rotation_limit: np.ndarray | None
    mouth: dict[str, MouthFilter]  # "visemes" (phonemes known) and "acoustic"; empty: the flow's own mouth
    blinks: BlinkModel | None  # the lids' blink process; None: the flow's own lids
    # With phonemes heard in a recording known whole (offline): the jaw of frame t is a * the "visemes"
    # filter's + sum over k of b[k] * the heard jaw (audio.heard_jaw, unit-spread) of frame t + taps[k], + c
    # (training/viseme_net/finetune.py). None: the filter's alone.
    heard_jaw: HeardJawStack | None = None
    heard_jaw_sha256: str | None = None  # the heard jaw net's digest, pinned with its stack
    # Live (phones and the heard jaw as the audio streams in): the stack of each live filter ("live",
    # "live_edge") with the live heard jaw (audio.heard_jaw.LiveHeardJaw) and what that assumes before it
    # has heard much (training/viseme_net/live_stack.py). None: the live filters' jaw alone.
    heard_jaw_live: LiveHeardJawModel | None = None


def load_model(path: str | Path | None = None):
    """(onnxruntime session, ModelMeta) of the motion model at `path` (an .onnx file with its .json beside
    it; default: the shipped model), loaded once per process and path."""
    return assets.load_model(_read_model, path, shipped=MODEL_FILE)


def _read_model(model: Path):
    import onnxruntime as ort

    try:
        meta_json = json.loads(model.with_suffix(".json").read_text(encoding="utf-8"))
        model_bytes = model.read_bytes()
    except FileNotFoundError:
        raise TalkfaceError(f"no motion model at {model} (run `make train`)") from None
    s = meta_json["settings"]
    cal = meta_json.get("calibration", {})
    mouth = meta_json.get("mouth", {})
    meta = ModelMeta(
        context=int(s["context"]),
        window=int(s["window"]),
        lookahead=int(s["lookahead"]),
        steps=int(s["steps"]),
        guidance=float(s["guidance"]),
        temperature=float(s["temperature"]),
        motion_mean=np.asarray(meta_json["motion_mean"], np.float32),
        motion_std=np.asarray(meta_json["motion_std"], np.float32),
        rotation_gain=np.asarray(cal.get("rotation_gain", [1.0, 1.0, 1.0]), np.float32),
        jaw_gain=float(cal.get("jaw_gain", 1.0)),
        jaw_curve=_jaw_curve(cal.get("jaw_curve")),
        rules_jaw=float(np.clip(cal.get("rules_jaw", 0.0), 0.0, 1.0)),
        rules_jaw_live=float(np.clip(cal.get("rules_jaw_live", cal.get("rules_jaw", 0.0)), 0.0, 1.0)),
        rotation_limit=np.asarray(cal["rotation_limit"], np.float32) if "rotation_limit" in cal else None,
        mouth={k: MouthFilter.from_json(meta_json["mouth"][k]) for k in MOUTH_KINDS if k in mouth},
        blinks=_blink_model(meta_json, cal),
        heard_jaw=_heard_jaw(mouth.get("heard_jaw")),
        heard_jaw_sha256=mouth.get("heard_jaw", {}).get("sha256"),
        heard_jaw_live=_heard_jaw_live(mouth.get("heard_jaw", {}).get("live")),
    )
    opts = ort.SessionOptions()
    # Small matrices: one thread per op is fastest and leaves the other core to the renderer.
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    return session, meta


@dataclass(frozen=True)
class HeardJawStack:
    """ModelMeta.heard_jaw: jaw(t) = filter * filter's jaw(t) + sum_k net[k] * heard(t + taps[k]) + offset."""

    filter: float
    net: np.ndarray  # (K,)
    taps: np.ndarray  # (K,) frames, >= 0
    offset: float


def _heard_jaw(d: dict | None) -> HeardJawStack | None:
    if d is None:
        return None
    try:
        net = np.atleast_1d(np.asarray(d["net"], np.float64))
        taps = np.asarray(d.get("net_taps", [0]), np.int64)
        if net.shape != taps.shape or (taps < 0).any():
            raise ValueError
        return HeardJawStack(float(d["filter"]), net, taps, float(d["offset"]))
    except (KeyError, TypeError, ValueError):
        raise TalkfaceError(
            "motion model: mouth heard_jaw must give filter, net (one weight per tap of net_taps) and offset"
        ) from None


@dataclass(frozen=True)
class LiveHeardJawModel:
    """ModelMeta.heard_jaw_live: the live heard jaw's prior, each live filter's stack with it (one tap: the
    frame's own value), and the digest of its net (heard_jaw.LIVE_HEARD_JAW_FILE)."""

    prior: LivePrior
    stacks: dict[str, HeardJawStack]
    sha256: str


def _heard_jaw_live(d: dict | None) -> LiveHeardJawModel | None:
    if d is None:
        return None
    try:
        profile = np.asarray(d["profile"], np.float64)
        stacks = {k: _heard_jaw(v) for k, v in d["stacks"].items()}
        if profile.shape != (N_MELS,) or not d["prior_frames"] >= 0 or not stacks:
            raise ValueError
        if any(st.taps.tolist() != [0] for st in stacks.values()) or not isinstance(d["sha256"], str):
            raise ValueError
        return LiveHeardJawModel(LivePrior(profile, float(d["prior_frames"])), stacks, d["sha256"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise TalkfaceError(
            "motion model: mouth heard_jaw live must give profile (one per mel band), prior_frames, "
            "stacks (one tap each) and the sha256 of its net"
        ) from None


def _jaw_curve(d: dict | None) -> tuple[np.ndarray, np.ndarray] | None:
    if not d:
        return None
    x, y = np.asarray(d["x"], np.float32), np.asarray(d["y"], np.float32)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2 or (np.diff(x) <= 0).any() or (np.diff(y) < 0).any():
        raise TalkfaceError("motion model: calibration jaw_curve must be increasing knots x, y")
    return x, y


def _blink_model(meta_json: dict, cal: dict) -> BlinkModel | None:
    """The blink process, its widths stretched by the calibration's blink_width_stretch (rendered blinks
    last as long as real ones to the eval's detector: export.calibrate)."""
    if "blinks" not in meta_json:
        return None
    model = BlinkModel.from_json(meta_json["blinks"])
    return dataclasses.replace(model, widths=model.widths * float(cal.get("blink_width_stretch", 1.0)))


class LivePhoneSource(Protocol):
    """Phonemes recognised so far in a stream (audio.phones.LivePhones)."""

    known_until: float  # seconds of audio recognised

    def phonemes(self, since: float = 0.0) -> tuple[Phoneme, ...]: ...


class LearnedStream:
    """The learned generator as a MotionStream (see motion.stream): push features of the next video frames
    (at `fps`, from AudioFeatures.at_fps with offset lead_s), get back the motion frames that are final.

    Internally: features are interpolated to MODEL_FPS, normalised causally, and each model window of
    `window` frames is generated once the audio `lookahead` frames past it has arrived; the model motion is
    interpolated back to `fps`. The mouth of each window is then replaced by the learned mouth filter's
    (MouthFilter): from the viseme targets of `phonemes` when they are known (text to speech, a transcript,
    or phones recognised from the audio: audio.phones), else from the acoustic mouth cues. Memory is
    bounded (only the last context + window + lookahead model frames are kept). Noise is drawn per window
    from (seed, window index), so the output does not depend on how the features are chunked."""

    needs_phonemes = True  # offline, phones are recognised in the audio when no text gives them
    lead_s: float = 0.0  # the model has its own audio lookahead; video frame j gets the audio of frame j

    def __init__(
        self,
        fps: float,
        controls: MotionControls,
        phonemes: tuple[Phoneme, ...] = (),
        model: str | Path | None = None,
    ):
        """model: the .onnx file of another motion model (its .json beside it) to use instead of the shipped
        one, to compare a retrained model without replacing the shipped one."""
        if not fps > 0:
            raise TalkfaceError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        self.controls = controls
        self._session, self.meta = load_model(model)
        self._model = model
        m = self.meta
        self._span = m.context + m.window + m.lookahead
        self._norm = FeatureNormalizer()
        self._phonemes = tuple(phonemes)
        self._visemes = VisemeTrack(self._phonemes)
        self._spans: np.ndarray | None = None  # (start, end) s of the spoken stretches, made when needed
        self._heard: np.ndarray | None = None  # hear(): the heard jaw per model frame (audio.heard_jaw)
        self._heard_weight: np.ndarray | None = None  # and its weight per frame (heard_jaw.speech_weight)
        # Live: the heard jaw as the audio streams in (hear_live), and the live filters' stacks with it
        # (by the filter's id: the filters are in meta.mouth, shared by every stream of the model).
        self._live_heard: LiveHeardJaw | None = None
        self._live_stacks: dict[int, HeardJawStack] = {}
        self._mouth = m.mouth.get("visemes" if phonemes else "acoustic")
        if self._mouth is not None and not phonemes and self._mouth.ahead > m.lookahead:
            raise TalkfaceError("the acoustic mouth filter looks further ahead than the model waits for")
        self._cue_fn = MouthCues()
        # The rules' acoustic mouth filter, for the jaw mix: when the phonemes were timed from the audio
        # (recognised, or a transcript aligned), not when text to speech gave their exact timings.
        self._rules_mouth: MouthFilter | None = None
        if max(m.rules_jaw, m.rules_jaw_live) > 0 and all(p.heard for p in self._phonemes):
            fitted_fps, rules_mouth = load_rules_mouth()
            self._rules_mouth = rules_mouth.at_rate(fitted_fps, MODEL_FPS)
        self._cues = np.zeros((0, CUE_DIM), np.float32)  # MouthCues of the model frames, aligned with _feat
        self._held_fn = HeldNotes(MODEL_FPS)
        self._voice = np.zeros((0, 2))  # voicing and HeldNotes of the model frames, aligned with _feat
        self._raw: list[AudioFeatures] = []  # pending input features at fps (a short tail)
        self._n_in = 0  # input frames pushed
        self._raw_start = 0  # input index of the first frame of self._raw's concatenation
        self._n_model_feat = 0  # model frames whose features are known
        self._feat = np.zeros((0, FEATURE_DIM), np.float32)  # model-frame features, last `_span` of them
        self._feat_start = 0  # model index of self._feat[0]
        self._n_model_motion = 0  # model frames generated
        self._motion = np.zeros((0, MOTION_DIM), np.float32)  # generated model frames (normalised), tail
        self._motion_start = 0
        self._n_out = 0  # output frames returned
        self._blinks = BlinkTrack(m.blinks) if m.blinks is not None else None
        self._finished = False
        self._live_phones: LivePhoneSource | None = None  # set by listen()
        self._live_filters: list[MouthFilter] = []  # listen(): the live mouth filters, most ahead first
        # Live: the mouth of model frames _live_start... (made frame by frame, ahead of the flow's windows),
        # and how many model frames the rest of the face is late (listen()).
        self._live_mouth = np.zeros((0, 3), np.float32)
        # Live: the lip shape's smoothers (rounding, spreading), LIVE_SHAPE_TAU
        self._live_shape = [CausalSmoother(LIVE_SHAPE_TAU, stages=1) for _ in range(2)]
        self._live_start = 0
        self._n_live_mouth = 0
        self._delay = 0
        self._wait = 0  # live: model frames of audio past a frame before it is made (listen, set_lookahead)

    @property
    def lookahead_s(self) -> float:
        """At most: a window's first frame waits for the whole window and the model's lookahead; live, a
        frame waits for its mouth's look-ahead only (set_lookahead)."""
        if self._live_phones is not None:
            return self._wait / MODEL_FPS
        return (self.meta.window + self.meta.lookahead) / MODEL_FPS

    def set_lookahead(self, seconds: float) -> float:
        """Live: make each frame once the audio `seconds` past it is in (rounded to model frames, within the
        live filters' look-aheads), any time; returns the look-ahead now in effect. By default a frame is
        made as soon as the nearest filter's audio is in (40 ms); a feeder that pushes audio ahead of the
        clock (stream.avatar.LiveAvatar) asks for the furthest filter's (80 ms) and gets better lips at the
        same latency; asked before the first push, the rest of the face is then shown that much less late
        (`_delay`: 120 ms instead of 160). Offline it changes nothing."""
        if self._live_phones is not None:
            near, far = self._live_filters[-1].ahead, self._live_filters[0].ahead
            self._wait = int(np.clip(round(seconds * MODEL_FPS), near, far))
            if self._n_in == 0:  # before the first frame, the rest of the face can be that much less late
                self._delay = self.meta.window + self.meta.lookahead - 1 - self._wait
        return self.lookahead_s

    @property
    def hears(self) -> bool:
        """Whether hear() would use a whole recording: phonemes heard in it (recognised, or a transcript
        aligned), the phonemes' filter, and a model with a heard jaw (ModelMeta.heard_jaw)."""
        heard = bool(self._phonemes) and all(p.heard for p in self._phonemes)
        return heard and self.meta.heard_jaw is not None and self._mouth is self.meta.mouth.get("visemes")

    def hear(self, features: AudioFeatures, speech: np.ndarray | None = None) -> None:
        """The whole recording's 100 Hz features, known before it streams (offline): when `hears`, the jaw
        read from the phonemes is stacked with the heard jaw of audio.heard_jaw (ModelMeta.heard_jaw), where
        the voice is speech: speech, silero-vad's speech probability of the recording (as
        audio.vad.speech_probability gives it), weighs the stack frame by frame (heard_jaw.speech_weight);
        None: everywhere."""
        if not self.hears:
            return
        from talkface.audio.features import n_video_frames
        from talkface.audio.heard_jaw import heard_jaw, speech_weight

        n = n_video_frames(features.duration, MODEL_FPS) + self.meta.lookahead
        self._heard = heard_jaw(
            features, MODEL_FPS, n, self._heard_net(HEARD_JAW_FILE), self.meta.heard_jaw_sha256
        )
        self._heard_weight = None if speech is None else speech_weight(speech, MODEL_FPS, n)

    def _heard_net(self, name: str) -> Path | None:
        """The heard jaw net `name` (heard_jaw.HEARD_JAW_FILE offline, LIVE_HEARD_JAW_FILE live) of another
        motion model: the one beside it; None (the shipped net, which must be the one the model's stacks
        were fitted with: its digest is checked)."""
        beside = Path(self._model).with_name(name) if self._model is not None else None
        return beside if beside is not None and beside.is_file() else None

    @property
    def hears_live(self) -> bool:
        """Live (listen()), whether the mouth reads the heard jaw of the audio as it streams in: then whoever
        feeds this stream feeds hear_live() the 100 Hz features of the same audio."""
        return self._live_heard is not None

    def hear_live(self, features: AudioFeatures, speech: np.ndarray) -> None:
        """Live: the next 100 Hz features of the audio (before they are pooled into the frames push() gets;
        at least as far along) and silero-vad's speech probability of each (FeatureStream.speech)."""
        if self._live_heard is not None:
            self._live_heard.push(features, speech)

    def listen(self, phones: LivePhoneSource) -> None:
        """Go live: read the mouth from phones recognised as the audio streams in (audio.phones.LivePhones,
        fed by whoever feeds this stream the same audio) and make each frame as soon as its mouth is known.

        The mouth comes from the live filters (training/learned_motion/live_mouth.py), fitted on the phones
        the recogniser guesses by the time a frame is made, beside the acoustic cues. Each frame is made with
        the filter that reads furthest ahead among those whose audio is in: "live" (two frames past the
        frame) when the audio arrives ahead of real time, as text to speech sends it, else "live_edge" (one
        frame past, as the rules' live mouth waits): a frame fed in real time waits for 40 ms of audio past
        its end, and no more. The rest of the face (head, gaze, brows, blinks) comes from the flow model's
        windows, which need the audio of a whole window and the model's look-ahead: it is shown `_delay`
        model frames late (4 frames, 160 ms, with the shipped filters; the rest pose before the first
        window). Waiting for settled phones instead (0.3 s) would give back the offline mouth's r, at 0.3 s
        more latency. With a model that has live stacks (ModelMeta.heard_jaw_live), each filter's jaw is
        stacked with the heard jaw of the audio received so far (audio.heard_jaw.LiveHeardJaw, fed by
        hear_live), weighed by speech as offline: `hears_live`."""
        if self._n_in:
            raise TalkfaceError("listen() must come before the first push()")
        filters = [f for f in (self.meta.mouth.get(k) for k in ("live", "live_edge")) if f is not None]
        if not filters:
            raise TalkfaceError("this motion model has no live mouth filter (live_mouth.py)")
        m = self.meta
        if max(f.ahead for f in filters) > m.lookahead:
            raise TalkfaceError("the live mouth filter looks further ahead than the model waits for")
        self._live_filters = sorted(filters, key=lambda f: -f.ahead)
        live = m.heard_jaw_live
        if live is not None:
            self._live_stacks = {id(m.mouth[k]): st for k, st in live.stacks.items() if k in m.mouth}
            self._live_heard = LiveHeardJaw(
                live.prior, MODEL_FPS, self._heard_net(LIVE_HEARD_JAW_FILE), live.sha256
            )
        # The widest past, for the phones heard and the frames kept (_hear, _trim).
        self._live_phones, self._mouth = phones, max(filters, key=lambda f: f.past)
        # Frame k's mouth needs model features up to k + ahead (at least the nearest filter's); the window
        # holding frame k - delay needs them up to its end + the model's look-ahead: the delay that makes
        # the second never later.
        self._delay = m.window + m.lookahead - 1 - self._live_filters[-1].ahead
        self._wait = self._live_filters[-1].ahead

    def _hear(self, w0: int) -> None:
        """The live phones around window w0's mouth filter windows, as known now."""
        f = self._mouth
        since = (w0 - f.past) / MODEL_FPS - 0.5  # a phoneme's influence reaches about 0.4 s (visemes)
        self._phonemes = self._live_phones.phonemes(since)
        self._visemes = VisemeTrack(self._phonemes)
        self._spans = None

    # -- input side -----------------------------------------------------------------------------------

    def _model_features(self, final: bool) -> None:
        """Convert pending input frames into model-frame features: model frame k needs the input frames on
        both sides of its centre (or the end of the input when final)."""
        if not self._raw:
            return
        raw = concat_features(self._raw)
        if self.fps == MODEL_FPS:
            k_end = self._n_in
        else:
            # Model frame k's centre at input position (k + 0.5) * fps / MODEL_FPS - 0.5 needs input frame
            # ceil(position) to exist.
            k_end = int(math.floor((self._n_in - 1 + 0.5) * MODEL_FPS / self.fps - 0.5)) + 1
            if final:
                k_end = max(k_end, int(math.ceil(self._n_in * MODEL_FPS / self.fps)))
        k_end = max(k_end, self._n_model_feat)
        if k_end == self._n_model_feat:
            return
        ks = np.arange(self._n_model_feat, k_end)
        if self.fps == MODEL_FPS:
            idx = ks - self._raw_start
            f = _take(raw, idx, idx, np.zeros(len(ks)))
        else:
            pos = np.clip((ks + 0.5) * self.fps / MODEL_FPS - 0.5, 0, self._n_in - 1) - self._raw_start
            i0 = np.clip(np.floor(pos).astype(np.int64), 0, len(raw) - 1)
            i1 = np.clip(i0 + 1, 0, len(raw) - 1)
            f = _take(raw, i0, i1, pos - i0)
        x = self._norm(f)
        self._feat = np.concatenate([self._feat, x])
        self._cues = np.concatenate([self._cues, self._cue_fn(f)])
        self._voice = np.concatenate([self._voice, np.column_stack([f.voicing, self._held_fn(f)])])
        self._n_model_feat = k_end
        # Keep the input frames a later model frame may still interpolate from.
        if self.fps == MODEL_FPS:
            keep_from = self._n_in
        else:
            keep_from = int(math.floor(k_end * self.fps / MODEL_FPS)) - 1
        keep_from = min(max(keep_from, self._raw_start), self._n_in)
        if keep_from > self._raw_start:
            raw = raw.sliced(keep_from - self._raw_start)
            self._raw_start = keep_from
        self._raw = [raw] if len(raw) else []

    # -- model side -----------------------------------------------------------------------------------

    def _run_windows(self, final: bool) -> None:
        """Generate every window whose audio (including lookahead) has arrived; when final, also the
        windows that reach past the end of the input (their missing audio is masked)."""
        m = self.meta
        n_total = self._model_frames_needed() if final else None
        while True:
            w0 = self._n_model_motion
            if final:
                if w0 >= n_total:
                    break
            elif w0 + m.window + m.lookahead > self._n_model_feat:
                break
            self._motion_append(self._generate(w0))

    def _live_mouths(self, final: bool) -> None:
        """Live: the mouth of every model frame whose audio `_wait` frames past it has arrived, each with
        the filter that reads furthest ahead among those whose audio is in, as the phones are known now
        (when final: of every frame the last window holds, with the furthest)."""
        k0 = self._n_live_mouth
        parts: list[tuple[int, int, MouthFilter]] = []
        if final:
            w = self.meta.window
            parts.append((k0, -(-self._model_frames_needed() // w) * w, self._live_filters[0]))
        else:
            start, last = k0, self._n_model_feat - self._wait
            for f in self._live_filters:
                stop = min(self._n_model_feat - f.ahead, last)
                if stop > start:
                    parts.append((start, stop, f))
                    start = stop
        parts = [(a, b, f) for a, b, f in parts if b > a]
        if not parts:
            return
        self._hear(k0)
        mouth = np.concatenate([self._mouth_of(a, b - a, f) for a, b, f in parts])
        for column, smooth in zip((1, 2), self._live_shape, strict=True):
            mouth[:, column] = smooth(mouth[:, column])
        self._live_mouth = np.concatenate([self._live_mouth, mouth])
        self._n_live_mouth = parts[-1][1]

    def _model_frames_needed(self) -> int:
        """Model frames whose motion the output frames need (up to the last output frame's centre)."""
        if self.fps == MODEL_FPS:
            return self._n_in
        return int(math.ceil(((self._n_in - 0.5) / self.fps) * MODEL_FPS - 0.5)) + 1

    def _generate(self, w0: int) -> np.ndarray:
        """Model frames w0 .. w0+window-1 (normalised motion, (window, MOTION_DIM))."""
        m = self.meta
        c0 = w0 - m.context
        idx = np.arange(c0, c0 + self._span)
        audio = np.zeros((self._span, FEATURE_DIM), np.float32)
        audio_ok = (idx >= 0) & (idx < self._n_model_feat)
        audio[audio_ok] = self._feat[idx[audio_ok] - self._feat_start]
        ctx = np.zeros((m.context, MOTION_DIM), np.float32)
        cidx = idx[: m.context]
        ctx_ok = cidx >= 0
        ctx[ctx_ok] = self._motion[cidx[ctx_ok] - self._motion_start]
        rng = np.random.default_rng([self.controls.seed, w0 // m.window])
        x = (rng.standard_normal((m.window, MOTION_DIM)) * m.temperature).astype(np.float32)
        guided = m.guidance != 1.0
        b = 2 if guided else 1
        feeds = {
            "audio": np.repeat(audio[None], b, 0),
            "audio_mask": np.stack([audio_ok, np.zeros_like(audio_ok)][:b]).astype(np.float32),
            "context": np.repeat(ctx[None], b, 0),
            "context_mask": np.repeat(ctx_ok[None].astype(np.float32), b, 0),
        }
        ts = np.linspace(0.0, 1.0, m.steps + 1, dtype=np.float32)
        for k in range(m.steps):
            t = ts[k]
            feeds["noisy"] = np.repeat(x[None], b, 0)
            feeds["t"] = np.full((b,), t, np.float32)
            pred = self._session.run(None, feeds)[0]  # (b, window, MOTION_DIM): the clean motion
            x1 = pred[1] + m.guidance * (pred[0] - pred[1]) if guided else pred[0]
            # Rectified flow x_t = (1 - t) noise + t x1: the velocity towards the predicted x1.
            x = x + (ts[k + 1] - t) * (x1 - x) / (1.0 - t)
        if self._live_phones is not None:
            mouth = self._live_mouth[w0 - self._live_start : w0 - self._live_start + m.window]
            x[:, MOUTH] = (mouth - m.motion_mean[MOUTH]) / m.motion_std[MOUTH]
        elif self._mouth is not None:
            mouth = self._mouth_of(w0, m.window)
            x[:, MOUTH] = (mouth - m.motion_mean[MOUTH]) / m.motion_std[MOUTH]
        if self._blinks is not None:
            # Both eyes blink together; the draws are per window, like the noise (chunking-invariant).
            lids = self._blinks(m.window, np.random.default_rng([self.controls.seed, w0 // m.window, 1]))
            x[:, LIDS] = (lids[:, None] - m.motion_mean[LIDS]) / m.motion_std[LIDS]
        return x.astype(np.float32)

    def _motion_append(self, x: np.ndarray) -> None:
        self._motion = np.concatenate([self._motion, x])
        self._n_model_motion += len(x)

    def _mouth_of(self, w0: int, count: int, f: MouthFilter | None = None) -> np.ndarray:
        """The learned mouth (count, 3) of model frames w0 .. w0+count-1, from their windows of filter f
        (default: the stream's): viseme targets of the phonemes at the frames' times, or the acoustic cues
        (frames before the start hold the first frame, frames past the known audio the last known one), shut
        where no voice is and held open on sung notes (_voiced)."""
        f = f or self._mouth
        idx = np.arange(w0 - f.past, w0 + count + f.ahead)
        if not self._phonemes and self._live_phones is None:
            mouth = f.apply(self._cues[np.clip(idx, 0, self._n_model_feat - 1) - self._feat_start])
            return self._voiced(mouth, w0, self.meta.lookahead)
        visemes = self._visemes((np.maximum(idx, 0) + 0.5) / MODEL_FPS)
        if f.in_mean.size == f.span * (3 + CUE_DIM):  # the live filter reads the acoustic cues as well
            cues = self._cues[np.clip(idx, 0, self._n_model_feat - 1) - self._feat_start]
            visemes = np.concatenate([visemes, cues], 1)
        mouth = f.apply(visemes)
        if self._heard is not None and f is self._mouth:
            st = self.meta.heard_jaw
            at = np.clip(np.arange(w0, w0 + count)[:, None] + st.taps, 0, len(self._heard) - 1)
            w = None
            if self._heard_weight is not None:
                w = self._heard_weight[np.clip(np.arange(w0, w0 + count), 0, len(self._heard) - 1)]
            mouth[:, 0] = _stacked(mouth[:, 0], self._heard[at], w, st)
        elif self._live_heard is not None and id(f) in self._live_stacks:
            heard, w = self._live_heard.jaw(w0, count)
            mouth[:, 0] = _stacked(mouth[:, 0], heard[:, None], w, self._live_stacks[id(f)])
        # In pauses the lips close: real faces in the training data rest with the lips slightly parted
        # (the filter's jaw for a pause is 0.045), but a mouth that stays ajar in silence looks wrong.
        gap = self._pause_distance((np.arange(w0, w0 + count) + 0.5) / MODEL_FPS)
        mouth[:, 0] *= np.clip(1.0 - (gap - PAUSE_OPEN_S) / PAUSE_CLOSE_S, 0.0, 1.0)
        # Then the song: a recogniser hears a long sung vowel as a pause as often as not.
        mouth = self._voiced(mouth, w0, f.ahead if self._live_phones is not None else self.meta.lookahead)
        if self._rules_mouth is not None and (self._phonemes or self._live_phones is not None):
            mix = self.meta.rules_jaw_live if self._live_phones is not None else self.meta.rules_jaw
            mouth[:, 0] = (1.0 - mix) * mouth[:, 0] + mix * self._rules_jaw(w0, count)
        return mouth

    def _rules_jaw(self, w0: int, count: int) -> np.ndarray:
        """The rule generator's acoustic jaw (motion.cues.acoustic_mouth: its fitted filter on the same
        MouthCues, shut where the voice stops, held open on sung notes) of model frames w0.., read
        RULES_LEAD frames later as the rules read it, in this model's jaw units (before the jaw gain)."""
        f = self._rules_mouth
        k = np.arange(w0 + RULES_LEAD - f.past, w0 + count + RULES_LEAD)
        k = np.clip(k, 0, self._n_model_feat - 1) - self._feat_start
        here = k[f.past :]
        cues = self._cues[here]
        jaw = acoustic_mouth(f.apply(self._cues[k]), cues, self._voice[here, 0], self._voice[here, 1])[:, 0]
        return jaw / self.meta.jaw_gain

    def _voiced(self, mouth: np.ndarray, w0: int, ahead: int) -> np.ndarray:
        """mouth (count, 3) of model frames w0... with the jaw shut where there is no voice (music, noise: a
        recogniser finds phones in anything; the voice gate is the rules', motion.cues.voice_gate) and held
        open on sung notes: at least SUNG_JAW x the open cue where HeldNotes says a note is held (in the
        jaw's units before the output's jaw_gain). The gate reads the most voice over the VOICE_BACK frames
        before and the look-ahead frames after (the voice-activity detector dips inside words; gating on the
        frame alone cost 0.03 of lip-sync r on the validation clips, this gains 0.003). The look-ahead,
        `ahead` frames, is the model's, or live, the mouth filter's."""
        count = len(mouth)
        k = (
            np.clip(np.arange(w0 - VOICE_BACK, w0 + count + ahead), 0, self._n_model_feat - 1)
            - self._feat_start
        )
        voicing = np.lib.stride_tricks.sliding_window_view(self._voice[k, 0], VOICE_BACK + 1 + ahead).max(1)
        here = k[VOICE_BACK : VOICE_BACK + count]
        floor = self._voice[here, 1] * SUNG_JAW * self._cues[here, 1] / self.meta.jaw_gain
        mouth[:, 0] = np.maximum(mouth[:, 0] * voice_gate(voicing), floor)
        return mouth

    def _pause_distance(self, times: np.ndarray) -> np.ndarray:
        """Seconds from each of `times` to the nearest spoken (non-pause) phoneme; 0 inside one."""
        if self._spans is None:
            spans: list[list[float]] = []
            for p in self._phonemes:
                if p.symbol.startswith("_"):
                    continue
                if spans and p.start <= spans[-1][1] + 1e-6:
                    spans[-1][1] = max(spans[-1][1], p.end)
                else:
                    spans.append([p.start, p.end])
            self._spans = np.array(spans, np.float64).reshape(-1, 2)
        if not len(self._spans):
            return np.full(len(times), np.inf)
        starts, ends = self._spans[:, 0], self._spans[:, 1]
        k = np.searchsorted(starts, times, side="right")  # spans[k - 1] starts at or before t
        before = np.where(k > 0, times - ends[np.maximum(k - 1, 0)], np.inf)
        after = np.where(k < len(starts), starts[np.minimum(k, len(starts) - 1)] - times, np.inf)
        return np.maximum(np.minimum(before, after), 0.0)

    def _trim(self) -> None:
        """Drop the model frames no later window or output frame needs (bounded memory)."""
        first = self._n_model_motion - self.meta.context  # the next window's context and audio
        if self._mouth is not None:  # the mouth filter's window may reach further back than the context
            first = min(first, self._n_model_motion - self._mouth.past)
        first = min(first, self._n_model_motion - VOICE_BACK)
        if self._rules_mouth is not None:
            first = min(first, self._n_model_motion - self._rules_mouth.past)
        drop = first - self._feat_start
        if drop > 0:
            self._feat, self._cues, self._voice = self._feat[drop:], self._cues[drop:], self._voice[drop:]
            self._feat_start += drop
        # Output interpolation still needs the model frames around the next output frame's centre (live,
        # the flow's motion `_delay` frames before it).
        first_out = int(math.floor((self._n_out + 0.5) / self.fps * MODEL_FPS - 0.5)) - 1
        drop = min(first, first_out - self._delay) - self._motion_start
        if drop > 0:
            self._motion, self._motion_start = self._motion[drop:], self._motion_start + drop
        drop = min(first_out, self._n_model_motion) - self._live_start  # the next window's mouth
        if drop > 0:
            self._live_mouth, self._live_start = self._live_mouth[drop:], self._live_start + drop

    # -- output side ----------------------------------------------------------------------------------

    def _emit(self, final: bool) -> MotionSequence:
        """Output frames whose centre lies within the generated model frames (all of them when final)."""
        if self._live_phones is not None:
            return self._emit_live(final)
        n_avail = self._n_model_motion
        n_out_end = self._out_end(n_avail, final)
        count = n_out_end - self._n_out
        if count == 0 or n_avail == 0:
            return _empty(self.fps)
        if self.fps == MODEL_FPS:
            x = self._motion[self._n_out - self._motion_start : n_out_end - self._motion_start]
        else:
            pos = (np.arange(self._n_out, n_out_end) + 0.5) / self.fps * MODEL_FPS - 0.5
            pos = np.clip(pos, 0, n_avail - 1) - self._motion_start
            i0 = np.clip(np.floor(pos).astype(np.int64), 0, len(self._motion) - 1)
            i1 = np.clip(i0 + 1, 0, len(self._motion) - 1)
            w = (pos - i0)[:, None]
            x = self._motion[i0] * (1 - w) + self._motion[i1] * w
        self._n_out = n_out_end
        return self._to_motion(x)

    def _out_end(self, n_avail: int, final: bool) -> int:
        """The output frames that n_avail model frames complete (all pushed when final): output frame j
        needs model frame ceil(its centre's position)."""
        if final:
            n_out_end = self._n_in
        elif self.fps == MODEL_FPS:
            n_out_end = n_avail
        else:
            n_out_end = int(math.floor(((n_avail - 1 + 0.5) / MODEL_FPS) * self.fps - 0.5)) + 1
        return min(max(n_out_end, self._n_out), self._n_in)

    def _emit_live(self, final: bool) -> MotionSequence:
        """Live: output frames whose centre lies within the frames with a mouth, and `_delay` frames past the
        flow's motion (all of them when final)."""
        n_out_end = self._out_end(min(self._n_live_mouth, self._n_model_motion + self._delay), final)
        if n_out_end == self._n_out:
            return _empty(self.fps)
        m = self.meta
        pos = (np.arange(self._n_out, n_out_end) + 0.5) / self.fps * MODEL_FPS - 0.5
        rest = (-m.motion_mean / m.motion_std).astype(np.float32)  # the portrait's pose and expression
        x = _interpolated(self._motion, self._motion_start, self._n_model_motion, pos - self._delay, rest)
        mouth = _interpolated(
            self._live_mouth, self._live_start, self._n_live_mouth, np.maximum(pos, 0.0), rest[MOUTH]
        )
        x[:, MOUTH] = (mouth - m.motion_mean[MOUTH]) / m.motion_std[MOUTH]
        self._n_out = n_out_end
        return self._to_motion(x)

    def _to_motion(self, x: np.ndarray) -> MotionSequence:
        """Normalised model motion (n, MOTION_DIM) -> MotionSequence with the controls applied."""
        m, s = self.meta, self.controls
        y = x * m.motion_std + m.motion_mean
        expr = y[:, :N_EXPR]
        expr[:, 0] = np.clip(expr[:, 0] * m.jaw_gain, 0.0, 1.0)  # the mouth never closes past the portrait's
        if m.jaw_curve is not None:
            expr[:, 0] = np.clip(np.interp(expr[:, 0], *m.jaw_curve), 0.0, 1.0)
        expr[:, 1:4] = np.clip(expr[:, 1:4], -0.6, 1.0)
        expr[:, :4] *= s.expression_scale
        # Lids: 0 open (as in the portrait), 1 shut; both eyes blink together.
        expr[:, LIDS] = np.clip(expr[:, LIDS].max(1, keepdims=True), 0.0, 1.0)
        # The gains make up for the model's too small head motion (the renderer turns the head as asked:
        # 0.4-1 degree self-reenactment error), so the limit on real heads' angles applies after them.
        y[:, ROT] *= m.rotation_gain
        if m.rotation_limit is not None:
            y[:, ROT] = m.rotation_limit * np.tanh(y[:, ROT] / m.rotation_limit)
        y[:, ROT] *= s.motion_scale
        y[:, TRANS] *= s.motion_scale
        y[:, GAZE] += np.asarray(s.gaze, np.float32)
        first = self._n_out - len(y)  # _emit has counted these frames out already
        return dataclasses.replace(
            array_to_motion(y, self.fps), emotion=emotion_rows(s, first, len(y), self.fps)
        )

    # -- the MotionStream interface -------------------------------------------------------------------

    def push(self, features: AudioFeatures) -> MotionSequence:
        """Features of the next len(features) video frames (rate = fps); returns the motion frames that are
        now final (any count, in order)."""
        if self._finished:
            raise TalkfaceError("push() after finish()")
        if len(features) == 0:
            return _empty(self.fps)
        self._raw.append(features)
        self._n_in += len(features)
        self._model_features(final=False)
        if self._live_phones is not None:
            self._live_mouths(final=False)
        self._run_windows(final=False)
        out = self._emit(final=False)
        self._trim()
        return out

    def finish(self) -> MotionSequence:
        """The remaining motion frames: in all, one per feature frame pushed."""
        if self._finished:
            return _empty(self.fps)
        self._finished = True
        if self._n_in == 0:
            return _empty(self.fps)
        self._model_features(final=True)
        if self._live_phones is not None:
            self._live_mouths(final=True)
        self._run_windows(final=True)
        return self._emit(final=True)


_ARRAY_FIELDS = ("energy_db", "voicing", "pitch_hz", "periodicity", "low_ratio", "high_ratio", "centroid_hz")


def _stacked(jaw: np.ndarray, heard: np.ndarray, weight: np.ndarray | None, st: HeardJawStack) -> np.ndarray:
    """The filter's jaw (n,) stacked with the heard jaw at the stack's taps (n, K), weighed by `weight` (n,)
    (None: 1): where the voice is not speech (a song), the filter's own jaw."""
    stacked = st.filter * jaw + heard @ st.net + st.offset
    return stacked if weight is None else weight * stacked + (1.0 - weight) * jaw


def _take(f: AudioFeatures, i0: np.ndarray, i1: np.ndarray, w: np.ndarray) -> AudioFeatures:
    """Features interpolated between rows i0 and i1 with weight w (n,) on i1. Pitch takes the nearer row
    (interpolating into an unvoiced 0 would invent a low pitch)."""
    out = {}
    for k in (*_ARRAY_FIELDS, "log_mel"):
        a = getattr(f, k)
        ww = w.reshape(-1, *([1] * (a.ndim - 1)))
        out[k] = (a[i0] * (1 - ww) + a[i1] * ww).astype(np.float32)
    out["pitch_hz"] = np.where(w < 0.5, f.pitch_hz[i0], f.pitch_hz[i1]).astype(np.float32)
    return dataclasses.replace(f, rate=MODEL_FPS, **out)


def _interpolated(
    rows: np.ndarray, start: int, known: int, pos: np.ndarray, before: np.ndarray
) -> np.ndarray:
    """Rows of frames start... of a sequence (`known` frames so far, `rows` its tail) interpolated at frame
    positions pos: clipped to the last known frame, `before` for the frames before the first."""

    def at(i: np.ndarray) -> np.ndarray:
        out = np.repeat(before[None].astype(np.float32), len(i), 0)
        ok = i >= 0
        if known and ok.any():
            out[ok] = rows[np.minimum(i[ok], known - 1) - start]
        return out

    pos = np.minimum(pos, max(known - 1, 0))
    i0 = np.floor(pos).astype(np.int64)
    w = (pos - i0)[:, None].astype(np.float32)
    return at(i0) * (1 - w) + at(i0 + 1) * w


def _empty(fps: float) -> MotionSequence:
    return MotionSequence.still(0, fps)
