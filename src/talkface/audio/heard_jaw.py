"""The heard jaw: how far a voice's jaw opens, frame by frame, read by a small network from the sound of a
recording (assets/heard_jaw.onnx offline, assets/heard_jaw_live.onnx live; 218k weights each).

The network is VisemeNet (training/viseme_net): a 1-D convolutional net over the 100 Hz features (40 log-mel
bands, voice activity, periodicity), trained on hours of synthetic espeak-ng speech with exact phoneme
timings, then fine-tuned on the real jaws of the train split's talking faces
(training/viseme_net/finetune.py). Its log-mel inputs are taken relative to the recording's own mean level
per band. The learned generator stacks its jaw with the one its viseme filter reads from the recognised
phones (motion.learned): the two err differently, where the voice is speech (speech_weight): the net learned
speech, and on a sung voice it reads the jaw worse than the phones' filter does.

Offline (heard_jaw) the net hears 0.53 s back and 190 ms ahead, and was fine-tuned to give the jaw of 40 ms
before its frame (finetune.py's OFFLINE_DELAY): read later (the stack's taps, motion_model.json
mouth.heard_jaw: one frame later), it hears 230 ms past the frame, as real lips move ahead of the sounds
they make.

Live (LiveHeardJaw) another net, which hears 0.65 s back and 70 ms ahead, gives its frame's own jaw from the
audio received so far: the log-mel level is the running mean of what has been heard, drawn at first towards
the train voices' mean spectral shape at the level heard so far, and a frame the net would read ahead of the
audio received reads the last frame received in its place.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkface.assets import load_model
from talkface.audio.features import FEATURE_RATE, N_MELS, AudioFeatures, frame_ranges
from talkface.errors import TalkfaceError

HEARD_JAW_FILE = "heard_jaw.onnx"  # offline: the jaw of 40 ms before its frame
LIVE_HEARD_JAW_FILE = "heard_jaw_live.onnx"  # live: its frame's own jaw
PAST, AHEAD = 72, 8  # feature frames the live net's output reaches back and ahead (65 and 7, and a margin)
MARGIN = 80  # heard_jaw: feature frames on each side of a piece (the offline net reaches 53 back, 19 ahead)
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
    shipped: str = HEARD_JAW_FILE,
) -> np.ndarray:
    """The net's jaw for video frames 0..n_frames-1 at `fps` (each the mean over the feature frames centred
    in it, as AudioFeatures.at_fps), made unit-spread over the recording: (n_frames,) float32. path: another
    net (.onnx) than the shipped one `shipped` (a retrained motion model's, beside it); sha256: the hex
    digest the net must have (the one the motion model's stack was fitted with)."""
    session = _session(path, sha256, shipped)
    x = net_inputs(features)
    jaw = np.empty(len(x), np.float32)
    for start in range(0, len(x), CHUNK):
        lo, hi = max(start - MARGIN, 0), min(start + CHUNK + MARGIN, len(x))
        out = session.run(None, {"features": x[None, lo:hi]})[0][0]
        jaw[start : start + CHUNK] = out[start - lo : start - lo + CHUNK]
    lo, hi = frame_ranges(np.arange(n_frames), fps, 0.0, len(jaw))
    sums = np.concatenate([[0.0], np.cumsum(jaw, dtype=np.float64)])
    return unit_spread((sums[hi] - sums[lo]) / np.maximum(hi - lo, 1))


@dataclass(frozen=True)
class LivePrior:
    """What a live heard jaw assumes before it has heard much (motion_model.json mouth.heard_jaw.live):
    `profile`, the train voices' mean log-mel per band less its mean over the bands (40,), counts for
    `frames` feature frames in the running mean, at the level of the bands heard so far."""

    profile: np.ndarray
    frames: float


class LiveHeardJaw:
    """The heard jaw of audio as it streams in: push() the 100 Hz features (and silero-vad's speech
    probability per frame) as they come, ask jaw() for video frames in order. A frame's value is what the
    net reads from the audio received so far (the running mean level, the frames ahead of the audio
    received read as the last one received), not unit-spread: the live stack (motion.learned) is fitted on
    these values as they are (training/viseme_net/live_stack.py). Memory is bounded: the net's reach and
    the speech weight's are kept."""

    def __init__(
        self, prior: LivePrior, fps: float, path: str | Path | None = None, sha256: str | None = None
    ):
        self._session = _session(path, sha256, LIVE_HEARD_JAW_FILE)
        self._prior = prior
        self.fps = float(fps)
        self._sum = np.zeros(N_MELS, np.float64)  # log-mel summed over the frames heard
        self._x = np.zeros((0, 2 + N_MELS), np.float32)  # the net's inputs of feature frames _first...
        self._speech = np.zeros(0, np.float32)  # and their speech probability
        self._first = 0

    @property
    def received(self) -> int:
        """Feature frames pushed."""
        return self._first + len(self._x)

    def push(self, features: AudioFeatures, speech: np.ndarray) -> None:
        """The next feature frames (100 Hz) and silero-vad's speech probability of each."""
        if len(features) == 0:
            return
        log_mel = features.log_mel.astype(np.float64)
        sums = self._sum + np.cumsum(log_mel, 0)
        count = self.received + 1 + np.arange(len(log_mel), dtype=np.float64)[:, None]
        level = sums.mean(1, keepdims=True) / count  # the mean level heard so far, over the bands
        k = self._prior.frames
        mean = (sums + k * (self._prior.profile + level)) / (count + k)
        self._sum = sums[-1]
        x = np.column_stack([(log_mel - mean) / 3.0, features.voicing, features.periodicity])
        self._x = np.concatenate([self._x, x.astype(np.float32)])
        self._speech = np.concatenate([self._speech, np.asarray(speech, np.float32).reshape(-1)])

    def jaw(self, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(jaw, weight) of video frames first..first+count-1 at fps, each (count,) float32: the net's jaw
        averaged over the feature frames centred in the frame, and the speech weight (speech_weight's, over
        the speech probability received: at most SPEECH_REACH_S back and as far ahead as received). Before
        any audio, zeros. Frames must be asked in order (older feature frames are dropped)."""
        lo, hi = frame_ranges(np.arange(first, first + count), self.fps)
        start, stop = max(int(lo[0]) - PAST, self._first), int(hi[-1]) + AHEAD
        x = self._x[start - self._first : stop - self._first]
        if not len(x) or lo[0] < self._first:
            return np.zeros(count, np.float32), np.zeros(count, np.float32)
        x = np.concatenate([x, np.repeat(x[-1:], stop - start - len(x), 0)])
        out = self._session.run(None, {"features": x[None]})[0][0].astype(np.float64)
        sums = np.concatenate([[0.0], np.cumsum(out)])
        jaw = (sums[hi - start] - sums[lo - start]) / (hi - lo)
        reach = int(round(SPEECH_REACH_S * FEATURE_RATE))
        a = np.maximum(lo - reach, self._first) - self._first
        b = np.minimum(hi + reach, self.received) - self._first
        weight = np.array([self._speech[i:j].max() if j > i else 0.0 for i, j in zip(a, b, strict=True)])
        drop = min(int(lo[0]) - max(PAST, reach), self.received) - self._first
        if drop > 0:
            self._x, self._speech, self._first = self._x[drop:], self._speech[drop:], self._first + drop
        return jaw.astype(np.float32), weight.astype(np.float32)


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


def _session(path: str | Path | None, sha256: str | None, shipped: str):
    """The net's onnxruntime session (path: another net than the shipped one, `shipped`), its digest checked
    against sha256 when given."""
    digest, session = load_model(_read_session, path, shipped=shipped)
    if sha256 is not None and digest != sha256:
        raise TalkfaceError(
            f"{path or shipped} is not the heard jaw net its motion model was fitted with (sha256 "
            f"{digest[:12]}..., expected {sha256[:12]}...): put the model's own {shipped} beside it, "
            "or retrain (make train)"
        )
    return session


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
