"""Voice activity with silero-vad's ONNX model (shipped in the silero-vad wheel) on onnxruntime.

The silero_vad Python package imports torch; we only locate its data folder and never import it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from talkface import stages
from talkface.assets import load_model
from talkface.audio.load import SAMPLE_RATE
from talkface.errors import TalkfaceError

WINDOW = 512  # samples per model call at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous window the model expects in front of each window
VAD_RATE = SAMPLE_RATE / WINDOW  # probabilities per second (31.25)
VOICE_STAGE = "finding the voice"  # what speech_probability reports on a long signal (talkface.stages)


def _model_path() -> Path:
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise TalkfaceError("silero-vad is not installed; talkface needs its voice-activity model")
    return Path(spec.submodule_search_locations[0]) / "data" / "silero_vad.onnx"


def _session():
    """The silero-vad model's onnxruntime session, loaded once per process."""
    return load_model(_read_session, _model_path())


def _read_session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class VoiceActivity:
    """Streaming voice-activity detector: feed 16 kHz samples of any chunk size, get one speech
    probability per 32 ms window. State is explicit: reset() starts a new stream."""

    def __init__(self):
        self._session = _session()
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities (0..1) for every complete 512-sample window now available, shape (K,)."""
        x = np.concatenate([self._pending, np.asarray(samples, np.float32)])
        k = len(x) // WINDOW
        out = np.empty(k, np.float32)
        sr = np.array(SAMPLE_RATE, np.int64)
        for i in range(k):
            window = x[i * WINDOW : (i + 1) * WINDOW]
            inp = np.concatenate([self._context, window])[None, :]
            prob, self._state = self._session.run(None, {"input": inp, "state": self._state, "sr": sr})
            out[i] = prob[0, 0]
            self._context = window[-CONTEXT:]
        self._pending = x[k * WINDOW :]
        return out


# The last whole signals' probabilities (MEMO of them), by a digest of their samples: the learned generator's
# offline audio is asked for three times (recognize_phones cuts it into pieces at pauses,
# audio.music.voice_activity gates the mouth, the heard jaw counts where it is speech), and on a song the
# separated voice and the song's pieces come between. silero-vad costs about 5-9 ms of CPU per second of
# audio, the digest about 0.05; an entry is 16 bytes and 31 probabilities per second.
MEMO = 8
_memo: OrderedDict[bytes, np.ndarray] = OrderedDict()
_memo_lock = threading.Lock()


def speech_probability(samples: np.ndarray, remember: bool = True) -> np.ndarray:
    """Speech probability of a whole 16 kHz signal, one value per 32 ms window, shape (ceil(N/512),). A signal
    longer than a piece (33 s; about 9 ms of CPU per second) says how far it is (talkface.stages). One of the
    last MEMO signals asked for again is not heard again (a new array is returned each time); remember=False
    keeps a signal nobody will ask for again from pushing out one that may be."""
    samples = np.ascontiguousarray(samples, np.float32)
    key = hashlib.blake2b(memoryview(samples).cast("B"), digest_size=16).digest()
    with _memo_lock:
        if key in _memo:
            _memo.move_to_end(key)
            return _memo[key].copy()
    probs = _heard(samples)
    if not remember:
        return probs
    with _memo_lock:
        _memo[key] = probs.copy()
        while len(_memo) > MEMO:
            _memo.popitem(last=False)
    return probs


def _heard(samples: np.ndarray) -> np.ndarray:
    """speech_probability's work: silero-vad over the whole of `samples` (float32), from a fresh state."""
    vad = VoiceActivity()
    chunk = WINDOW * 1024  # push in pieces: no whole-signal copies on long inputs
    probs = []
    for i in range(0, len(samples), chunk):
        if len(samples) > chunk:
            stages.report(VOICE_STAGE, i / len(samples))
        probs.append(vad.push(samples[i : i + chunk]))
    tail = len(samples) % WINDOW
    if tail:
        probs.append(vad.push(np.zeros(WINDOW - tail, np.float32)))
    if len(samples) > chunk:
        stages.report(VOICE_STAGE, 1.0)
    return np.concatenate(probs) if probs else np.zeros(0, np.float32)
