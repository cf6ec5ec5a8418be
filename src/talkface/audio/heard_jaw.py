"""The heard jaw: how far a voice's jaw opens, frame by frame, read by a small network from the sound of a
whole recording (assets/heard_jaw.onnx, 218k weights).

The network is VisemeNet (training/viseme_net): a 1-D convolutional net over the 100 Hz features (40 log-mel
bands, voice activity, periodicity), trained on hours of synthetic espeak-ng speech with exact phoneme
timings, then fine-tuned on the real jaws of the train split's talking faces
(training/viseme_net/finetune.py).
It sees 0.65 s of the past and 70 ms ahead; its log-mel inputs are taken relative to the recording's own
mean level per band, so it needs the whole recording (offline). The learned generator stacks its jaw with
the one its viseme filter reads from the recognised phones (motion.learned): the two err differently,
where the voice is speech (speech_weight): the net learned speech, and on a sung voice it reads the jaw worse
than the phones' filter does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from talkface.assets import load_model
from talkface.audio.features import AudioFeatures, frame_ranges
from talkface.errors import TalkfaceError

HEARD_JAW_FILE = "heard_jaw.onnx"
PAST, AHEAD = 72, 8  # feature frames the net's output reaches back and ahead (65 and 7, and a margin)
CHUNK = 6000  # feature frames (60 s) per run: bounded memory on long recordings
SPEECH_REACH_S = 0.4  # speech_weight: silero-vad's most sure window this near a frame (it dips inside words)


def net_inputs(features: AudioFeatures) -> np.ndarray:
    """(T, 42) network inputs of 100 Hz features: log-mel minus its per-band mean over the recording (removes
    gain and a fixed channel colour), divided by 3, then voice activity and periodicity."""
    log_mel = features.log_mel.astype(np.float32)
    x = np.concatenate(
        [log_mel, features.voicing[:, None], features.periodicity[:, None]], 1, dtype=np.float32
    )
    return normalise(x)


def normalise(x: np.ndarray) -> np.ndarray:
    """(T, 42) [log-mel, voicing, periodicity] -> the net's inputs (a new array): log-mel minus its per-band
    mean over the rows, / 3."""
    x = np.array(x, np.float32)
    x[:, :40] = (x[:, :40] - x[:, :40].mean(0, keepdims=True)) / 3.0
    return x


def unit_spread(x: np.ndarray) -> np.ndarray:
    """x minus its mean, over its standard deviation (a constant gives zeros)."""
    x = np.asarray(x, np.float32)
    return (x - x.mean()) / (x.std() + 1e-3)


def heard_jaw(
    features: AudioFeatures,
    fps: float,
    n_frames: int,
    path: str | Path | None = None,
    sha256: str | None = None,
) -> np.ndarray:
    """The net's jaw for video frames 0..n_frames-1 at `fps` (each the mean over the feature frames centred
    in it, as AudioFeatures.at_fps), made unit-spread over the recording: (n_frames,) float32. path: another
    net (.onnx) than the shipped one (a retrained motion model's, beside it); sha256: the hex digest the net
    must have (the one the motion model's stack was fitted with)."""
    digest, session = load_model(_read_session, path, shipped=HEARD_JAW_FILE)
    if sha256 is not None and digest != sha256:
        raise TalkfaceError(
            f"{path or HEARD_JAW_FILE} is not the heard jaw net its motion model was fitted with (sha256 "
            f"{digest[:12]}..., expected {sha256[:12]}...): put the model's own {HEARD_JAW_FILE} beside it, "
            "or retrain (make train)"
        )
    x = net_inputs(features)
    jaw = np.empty(len(x), np.float32)
    for start in range(0, len(x), CHUNK):
        lo, hi = max(start - PAST, 0), min(start + CHUNK + AHEAD, len(x))
        out = session.run(None, {"features": x[None, lo:hi]})[0][0]
        jaw[start : start + CHUNK] = out[start - lo : start - lo + CHUNK]
    lo, hi = frame_ranges(np.arange(n_frames), fps, 0.0, len(jaw))
    sums = np.concatenate([[0.0], np.cumsum(jaw, dtype=np.float64)])
    return unit_spread((sums[hi] - sums[lo]) / np.maximum(hi - lo, 1))


def speech_weight(speech: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """How much the heard jaw counts in each of video frames 0..n_frames-1 at `fps`, 0..1: silero-vad's
    speech probability of the recording (audio.vad.speech_probability: one per vad.WINDOW samples) at the
    frame's time, its highest within SPEECH_REACH_S. silero-vad was trained on speech and calls most song
    "not speech" (the validation singer: none of her windows), as the net was trained on speech."""
    from talkface.audio.load import SAMPLE_RATE
    from talkface.audio.vad import WINDOW

    speech = np.asarray(speech, np.float64)
    if not len(speech):
        return np.zeros(n_frames, np.float32)
    step = WINDOW / SAMPLE_RATE
    times = (np.arange(n_frames) + 0.5) / fps
    at = np.interp(times, (np.arange(len(speech)) + 0.5) * step, speech)
    k = int(round(SPEECH_REACH_S * fps))
    padded = np.pad(at, k, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * k + 1).max(1).astype(np.float32)


def _read_session(path: Path):
    """(sha256 hex digest of the file, its onnxruntime session)."""
    import onnxruntime as ort

    data = path.read_bytes()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    return hashlib.sha256(data).hexdigest(), session
