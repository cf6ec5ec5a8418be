"""Frame-level audio features at 100 Hz, and their alignment to video frames.

Feature frame i is centred on time i / FEATURE_RATE. Video frame j covers audio [j/fps, (j+1)/fps); its
features are the mean of the feature frames whose centres fall in that interval, indexed on the whole
signal's time base so that a long input never drifts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from talkface import stages
from talkface.audio.load import SAMPLE_RATE, Audio
from talkface.audio.vad import VAD_RATE, VoiceActivity
from talkface.audio.vad import WINDOW as VAD_WINDOW

FEATURE_RATE = 100  # feature frames per second
HOP = SAMPLE_RATE // FEATURE_RATE  # 160 samples, 10 ms
WIN = 400  # 25 ms analysis window for spectra and energy
PITCH_WIN = 640  # 40 ms window for pitch: two periods of 50 Hz
N_FFT = 512
N_MELS = 40
MEL_RANGE_HZ = (60.0, 7600.0)  # span of the log_mel bands
PITCH_RANGE = (60.0, 500.0)  # Hz: speech and most singing
BLOCK = 1000  # feature frames per processing block (10 s): bounds memory on long inputs
# A frame whose periodicity exceeds PERIODIC_MIN (fully at +0.25) counts as voice when it is within
# PERIODIC_BELOW_DB of the speaker's loud voice (fading in over the 5 dB below), and above PERIODIC_FLOOR_DB.
PERIODIC_MIN = 0.55
PERIODIC_BELOW_DB = 20.0
PERIODIC_FLOOR_DB = -45.0
# Loud voice (95th percentile of voiced energy) before any has been heard: the median over the real clips of
# ../shared/data/talking (10-90 %: -21 to -11 dBFS).
VOICE_LEVEL_PRIOR_DB = -16.7
assert SAMPLE_RATE % FEATURE_RATE == 0
# What compute_features reports on a signal longer than LONG_BLOCKS blocks (30 s; about 5 ms of CPU per second
# of it): offline, the learned generator's heard jaw needs the whole recording's features before its first
# frame (talkface.stages).
FEATURES_STAGE, LONG_BLOCKS = "listening to the voice", 3


@dataclass(frozen=True)
class AudioFeatures:
    """Per-frame features at `rate` frames per second; every array has shape (T,) except log_mel (T, 40).

    energy_db: RMS level, dB re full scale.   voicing: speech probability 0..1 (silero-vad).
    pitch_hz: fundamental frequency, 0 where unvoiced.   periodicity: autocorrelation peak 0..1.
    low_ratio: share of 250-1000 Hz (first-formant region) in the 80-5000 Hz energy.
    high_ratio: share of 2-5 kHz (fricatives, spread vowels' second formant).
    centroid_hz: spectral centroid in 80-5000 Hz.   log_mel: log mel energies, 40 bands 60-7600 Hz.
    """

    rate: float
    duration: float
    energy_db: np.ndarray
    voicing: np.ndarray
    pitch_hz: np.ndarray
    periodicity: np.ndarray
    low_ratio: np.ndarray
    high_ratio: np.ndarray
    centroid_hz: np.ndarray
    log_mel: np.ndarray

    def __len__(self) -> int:
        return len(self.energy_db)

    def at_fps(self, fps: float, n_frames: int, offset: float = 0.0) -> AudioFeatures:
        """Features per video frame: frame j averages the frames centred in
        [j/fps + offset, (j+1)/fps + offset).
        A positive offset shows frame j the audio slightly ahead (lips lead the voice)."""
        lo, hi = frame_ranges(np.arange(n_frames), fps, offset, len(self))
        return self.pooled(lo, hi, fps)

    def pooled(self, lo: np.ndarray, hi: np.ndarray, rate: float) -> AudioFeatures:
        """Mean features over the frame ranges [lo, hi) (indices into these frames; an empty range gives
        zeros) at `rate` frames per second. Pitch is the mean over the range's voiced frames."""

        def pool(x: np.ndarray) -> np.ndarray:
            c = np.concatenate(
                [np.zeros((1, *x.shape[1:]), np.float64), np.cumsum(x, axis=0, dtype=np.float64)]
            )
            n = (hi - lo).reshape(-1, *([1] * (x.ndim - 1)))
            return ((c[hi] - c[lo]) / np.maximum(n, 1)).astype(np.float32)

        voiced = self.pitch_hz > 0
        pitch_sum = pool(np.where(voiced, self.pitch_hz, 0.0))
        voiced_share = pool(voiced.astype(np.float32))
        pitch = np.where(voiced_share > 0, pitch_sum / np.maximum(voiced_share, 1e-6), 0.0).astype(np.float32)
        return dataclasses.replace(
            self,
            rate=float(rate),
            energy_db=pool(self.energy_db),
            voicing=pool(self.voicing),
            pitch_hz=pitch,
            periodicity=pool(self.periodicity),
            low_ratio=pool(self.low_ratio),
            high_ratio=pool(self.high_ratio),
            centroid_hz=pool(self.centroid_hz),
            log_mel=pool(self.log_mel),
        )

    def sliced(self, start: int, stop: int | None = None) -> AudioFeatures:
        """Frames start..stop-1 (the same rate and duration)."""
        arrays = {name: getattr(self, name)[start:stop] for name in _ARRAYS}
        return dataclasses.replace(self, **arrays)

    @staticmethod
    def empty(rate: float = FEATURE_RATE) -> AudioFeatures:
        """No frames."""
        arrays = {name: np.zeros((0, N_MELS) if name == "log_mel" else 0, np.float32) for name in _ARRAYS}
        return AudioFeatures(rate=float(rate), duration=0.0, **arrays)


_ARRAYS = (
    "energy_db",
    "voicing",
    "pitch_hz",
    "periodicity",
    "low_ratio",
    "high_ratio",
    "centroid_hz",
    "log_mel",
)


def frame_ranges(
    frames: np.ndarray, fps: float, offset: float = 0.0, total: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The feature frames [lo, hi) that video frames `frames` average: those centred in
    [j/fps + offset, (j+1)/fps + offset), at least one (above 100 fps: the nearest); clipped to `total`
    feature frames when the signal's end is known."""
    start = (frames / fps + offset) * FEATURE_RATE
    stop = ((frames + 1) / fps + offset) * FEATURE_RATE
    lo = np.maximum(np.ceil(start - 1e-9).astype(np.int64), 0)
    hi = np.maximum(np.ceil(stop - 1e-9).astype(np.int64), lo + 1)
    if total is not None:
        hi = np.minimum(hi, total)
        lo = np.minimum(lo, hi - 1).clip(0)
    return lo, hi


def n_video_frames(duration: float, fps: float) -> int:
    """Frames in a video of `duration` seconds: the nearest whole count, so the video ends within
    half a frame of the audio."""
    return max(1, round(duration * fps))


def _mel_edges_hz() -> np.ndarray:
    """N_MELS + 2 band edges equally spaced on the mel scale over MEL_RANGE_HZ."""

    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    m = np.linspace(mel(MEL_RANGE_HZ[0]), mel(MEL_RANGE_HZ[1]), N_MELS + 2)
    return 700.0 * (10 ** (m / 2595.0) - 1.0)


def mel_centres_hz() -> np.ndarray:
    """Centre frequency of each log_mel band, shape (N_MELS,), Hz."""
    return _mel_edges_hz()[1:-1]


def _mel_filters() -> np.ndarray:
    """Triangular mel filterbank, shape (N_MELS, N_FFT // 2 + 1)."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    pts = _mel_edges_hz()
    fb = np.zeros((N_MELS, len(freqs)), np.float32)
    for m in range(N_MELS):
        left, centre, right = pts[m : m + 3]
        up = (freqs - left) / (centre - left)
        down = (right - freqs) / (right - centre)
        fb[m] = np.maximum(0.0, np.minimum(up, down))
    return fb


def _frames(x: np.ndarray, count: int, width: int) -> np.ndarray:
    """Windows of `width` samples centred on `count` frame centres, shape (count, width). x starts at the
    first frame's window of PITCH_WIN samples (the widest), so the centres sit at PITCH_WIN // 2 + k * HOP."""
    idx = (np.arange(count) * HOP + PITCH_WIN // 2 - width // 2)[:, None] + np.arange(width)[None, :]
    return x[idx]


class _Spectra:
    """The per-frame features that depend on nothing but the frame's own samples (vectorized per block)."""

    def __init__(self):
        freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
        self.freqs = freqs
        self.band = (freqs >= 80) & (freqs <= 5000)
        self.low = (freqs >= 250) & (freqs <= 1000)
        self.high = (freqs >= 2000) & (freqs <= 5000)
        self.mel_fb = _mel_filters()
        self.hann = np.hanning(WIN).astype(np.float32)
        self.hann_p = np.hanning(PITCH_WIN).astype(np.float32)
        self.lag_lo = int(SAMPLE_RATE / PITCH_RANGE[1])
        self.lag_hi = int(SAMPLE_RATE / PITCH_RANGE[0])

    def __call__(self, x: np.ndarray, count: int) -> dict[str, np.ndarray]:
        """Features of `count` frames whose samples start at x[0] (see _frames), each array (count,) or
        (count, N_MELS)."""
        fr = _frames(x, count, WIN) * self.hann
        power = np.abs(np.fft.rfft(fr, N_FFT)) ** 2  # (count, 257)
        energy = (fr**2).sum(1) / self.hann.dot(self.hann)
        pb = power[:, self.band].sum(1) + 1e-10
        out = {
            "energy": 10 * np.log10(energy + 1e-10),
            "low": power[:, self.low].sum(1) / pb,
            "high": power[:, self.high].sum(1) / pb,
            "centroid": (power[:, self.band] * self.freqs[self.band]).sum(1) / pb,
            "mel": np.log(power @ self.mel_fb.T + 1e-8),
        }
        # Pitch: normalised autocorrelation peak over the speech lag range.
        fp = _frames(x, count, PITCH_WIN)
        fp = (fp - fp.mean(1, keepdims=True)) * self.hann_p
        spec = np.fft.rfft(fp, 2 * PITCH_WIN)
        acf = np.fft.irfft(np.abs(spec) ** 2)[:, : self.lag_hi + 2]
        norm = acf[:, 0] + 1e-9
        seg = acf[:, self.lag_lo : self.lag_hi + 1] / norm[:, None]
        best = seg.argmax(1)
        rows = np.arange(count)
        peak = seg[rows, best]
        # Parabolic interpolation of the peak for sub-sample lag.
        i = np.clip(best, 1, seg.shape[1] - 2)
        a, b, c = seg[rows, i - 1], seg[rows, i], seg[rows, i + 1]
        curv = a - 2 * b + c
        safe = np.where(np.abs(curv) > 1e-9, curv, 1.0)
        shift = np.where(np.abs(curv) > 1e-9, 0.5 * (a - c) / safe, 0.0).clip(-1, 1)
        lag = self.lag_lo + i + shift
        out["period"] = peak.clip(0, 1)
        out["pitch"] = np.where(peak > 0.45, SAMPLE_RATE / lag, 0.0)
        return {k: v.astype(np.float32) for k, v in out.items()}


class RunningReference:
    """A level reference that follows a stream causally, so that loudness is relative to the speaker's own
    voice on any recording, live or offline: the q-th percentile of the last `history` marked values (for
    example the energy of the voiced frames). It is updated every `block` frames from the frames before the
    update only, so the output does not depend on how the input is chunked. While fewer than `min_count`
    values have been seen, `prior` (a typical value, measured on real recordings) fills the missing share."""

    def __init__(self, q: float, prior: float, history: int, block: int, min_count: int):
        self.q, self.prior, self.block, self.min_count = q, prior, max(1, block), max(1, min_count)
        self._values = np.zeros(history, np.float64)
        self.reset()

    def reset(self) -> None:
        self._count = 0  # marked values seen (the ring buffer holds the last len(_values) of them)
        self._frames = 0  # frames seen
        self._ref, self._confidence = self.prior, 0.0

    def _update_reference(self) -> None:
        n = min(self._count, len(self._values))
        p = float(np.percentile(self._values[:n], self.q)) if n else self.prior
        w = min(1.0, self._count / self.min_count)
        self._ref, self._confidence = w * p + (1 - w) * self.prior, w

    def __call__(self, x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """References and confidences (the share of min_count seen, 0..1) for the frames x (T,) that follow
        the ones already seen; mask (T,) bool marks the frames whose values count."""
        refs = np.empty(len(x), np.float64)
        confidence = np.empty(len(x), np.float64)
        i = 0
        while i < len(x):
            if self._frames % self.block == 0:
                self._update_reference()
            end = min(len(x), i + self.block - self._frames % self.block)
            refs[i:end], confidence[i:end] = self._ref, self._confidence
            new = np.asarray(x[i:end], np.float64)[np.asarray(mask[i:end], bool)][-len(self._values) :]
            self._values[(self._count + np.arange(len(new))) % len(self._values)] = new
            self._count += len(new)
            self._frames += end - i
            i = end
        return refs, confidence


class FeatureStream:
    """The 100 Hz features of a 16 kHz signal fed in chunks of any size: push() returns the frames whose
    samples (and voice activity) have all arrived, finish() the rest. Frame i is centred at i / 100 s and
    needs 20 ms of audio after its centre (the pitch window) and the 32 ms voice-activity window around
    it, so a frame is out about 50 ms after its centre was pushed. The same samples give the same
    features whatever the chunking (compute_features is this stream run on the whole signal).

    voice: the voice activity of the whole signal per vad window, known before it streams (offline:
    audio.music.voice_activity, which hears a voice sung over music), used instead of running silero-vad as
    the audio comes; it holds for the first signal only (reset() goes back to silero-vad)."""

    def __init__(self, voice: np.ndarray | None = None):
        self._spectra = _Spectra()
        self._vad = VoiceActivity()
        # Loud-voice levels for the periodic-voice gate, over the last 20 s of speech / periodic frames.
        self._speech_level = RunningReference(95, VOICE_LEVEL_PRIOR_DB, 2000, 25, 50)
        self._periodic_level = RunningReference(95, VOICE_LEVEL_PRIOR_DB, 2000, 25, 10)
        self.reset()
        self._voice = None if voice is None else np.asarray(voice, np.float32)

    def reset(self) -> None:
        """Start a new signal (time 0)."""
        self._voice: np.ndarray | None = None
        self._voice_fed = 0  # samples (with finish()'s padding) that _voice_for has seen
        self._vad.reset()
        self._speech_level.reset()
        self._periodic_level.reset()
        self._x = np.zeros(PITCH_WIN // 2, np.float32)  # samples from padded index _next * HOP on
        self._received = 0  # samples pushed
        self._next = 0  # next feature frame to emit
        self._vad_probs = np.zeros(0, np.float32)  # voice activity from window _vad_first on
        self._vad_first = 0
        self._vad_tail = 0  # samples in the voice-activity detector's incomplete window
        # The speech probability of each frame the last push() or finish() returned: silero-vad's (or the
        # voice activity given), before the periodic voice is added into `voicing`.
        self.speech = np.zeros(0, np.float32)

    @property
    def samples_received(self) -> int:
        return self._received

    def push(self, samples: np.ndarray) -> AudioFeatures:
        """Features of every frame that became complete with `samples` (16 kHz mono float32)."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        self._received += len(samples)
        self._x = np.concatenate([self._x, samples])
        self._add_vad(self._voice_for(samples))
        self._vad_tail = (self._vad_tail + len(samples)) % VAD_WINDOW
        # Frame i needs samples up to i * HOP + PITCH_WIN // 2 and the voice activity window that holds its
        # centre (_speech reads each window's probability at the window's end).
        by_samples = (self._received - PITCH_WIN // 2) // HOP + 1
        n_vad = self._vad_first + len(self._vad_probs)
        by_vad = n_vad * VAD_WINDOW // HOP + 1 if n_vad else 0
        return self._emit(max(self._next, min(by_samples, by_vad)))

    def finish(self) -> AudioFeatures:
        """The remaining frames, as if the signal were followed by silence: ceil(N / HOP) frames in all."""
        if self._vad_tail:
            self._add_vad(self._voice_for(np.zeros(VAD_WINDOW - self._vad_tail, np.float32)))
            self._vad_tail = 0
        self._x = np.concatenate([self._x, np.zeros(PITCH_WIN // 2 + HOP, np.float32)])
        return self._emit(-(-self._received // HOP))

    def _voice_for(self, samples: np.ndarray) -> np.ndarray:
        """The voice activity of the vad windows that `samples` complete: silero-vad's, or the given."""
        if self._voice is None:
            return self._vad.push(samples)
        self._voice_fed += len(samples)
        done = self._vad_first + len(self._vad_probs)  # windows already in
        upto = self._voice_fed // VAD_WINDOW
        probs = self._voice[done:upto]
        return np.concatenate([probs, np.zeros(max(0, upto - done - len(probs)), np.float32)])

    def _add_vad(self, probs: np.ndarray) -> None:
        self._vad_probs = np.concatenate([self._vad_probs, probs])

    def _speech(self, frames: np.ndarray) -> np.ndarray:
        """Voice activity at the centres of `frames`, interpolated between the 32 ms windows' ends (held
        at the first and last): a frame reads the window that holds it and the one before, never the
        window after it, which would keep a live frame waiting up to 48 ms past its centre."""
        ends = (self._vad_first + np.arange(len(self._vad_probs)) + 1) / VAD_RATE
        return np.interp(frames / FEATURE_RATE, ends, self._vad_probs)

    def _emit(self, stop: int) -> AudioFeatures:
        parts: list[dict[str, np.ndarray]] = []
        speeches = [np.zeros(0, np.float32)]
        while self._next < stop:
            count = min(BLOCK, stop - self._next)
            part = self._spectra(self._x, count)
            frames = np.arange(self._next, self._next + count)
            speech = self._speech(frames) if len(self._vad_probs) else np.zeros(count)
            part["voicing"] = self._voicing(part, speech)
            parts.append(part)
            speeches.append(speech.astype(np.float32))
            self._next += count
            self._x = self._x[count * HOP :]
        # Keep the voice activity windows that later frames may still interpolate from.
        keep_from = max(0, self._next * HOP // VAD_WINDOW - 1)
        drop = min(max(0, keep_from - self._vad_first), len(self._vad_probs) - 1)
        if drop > 0:
            self._vad_probs = self._vad_probs[drop:]
            self._vad_first += drop
        self.speech = np.concatenate(speeches)
        return self._features(parts)

    def _voicing(self, part: dict[str, np.ndarray], speech: np.ndarray) -> np.ndarray:
        """Voice probability 0..1 per frame: silero-vad's, or, for strongly periodic frames about as loud
        as the speaker's own voice, the periodic-voice probability. silero-vad is trained on speech and can
        miss a held sung vowel or humming (on a whole song, sometimes every frame); such a frame is voice
        too. Mains hum and fan whine are periodic as well but far quieter than the voice on the same
        recording (GRID's studio hum sits 30-35 dB below its speech), so the level gate is relative to the
        loud voice heard so far: the running 95th percentile of the frames silero calls speech once it has
        heard some, and before that of the periodic frames, but never below a typical voice level (so that
        a hum heard before anyone speaks does not become the reference)."""
        energy = part["energy"]
        periodic = np.clip((part["period"] - PERIODIC_MIN) / 0.25, 0, 1)
        speech_ref, heard = self._speech_level(energy, speech > 0.5)
        periodic_ref, _ = self._periodic_level(energy, periodic > 0)
        ref = heard * speech_ref + (1 - heard) * np.maximum(periodic_ref, VOICE_LEVEL_PRIOR_DB)
        loud = np.clip((energy - (ref - PERIODIC_BELOW_DB)) / 5.0, 0, 1) * (energy > PERIODIC_FLOOR_DB)
        voicing = np.maximum(speech, periodic * loud).astype(np.float32)
        part["pitch"] = np.where((energy > -50) & (voicing > 0.3), part["pitch"], 0.0).astype(np.float32)
        return voicing

    def _features(self, parts: list[dict[str, np.ndarray]]) -> AudioFeatures:
        def cat(key: str, shape: tuple[int, ...] = ()) -> np.ndarray:
            if not parts:
                return np.zeros((0, *shape), np.float32)
            return np.concatenate([p[key] for p in parts]).astype(np.float32, copy=False)

        return AudioFeatures(
            rate=float(FEATURE_RATE),
            duration=self._received / SAMPLE_RATE,
            energy_db=cat("energy"),
            voicing=cat("voicing"),
            pitch_hz=cat("pitch"),
            periodicity=cat("period"),
            low_ratio=cat("low"),
            high_ratio=cat("high"),
            centroid_hz=cat("centroid"),
            log_mel=cat("mel", (N_MELS,)),
        )


def concat_features(parts: list[AudioFeatures]) -> AudioFeatures:
    """Consecutive pieces of one feature stream joined (duration from the last piece)."""
    if len(parts) == 1:
        return parts[0]
    last = parts[-1]
    arrays = {
        f.name: np.concatenate([getattr(p, f.name) for p in parts])
        for f in dataclasses.fields(AudioFeatures)
        if f.name not in ("rate", "duration")
    }
    return AudioFeatures(rate=last.rate, duration=last.duration, **arrays)


def compute_features(audio: Audio, voice: np.ndarray | None = None) -> AudioFeatures:
    """100 Hz features of a whole 16 kHz signal; T = ceil(N / HOP) frames, frame i centred at i / 100 s.
    This is FeatureStream fed the whole signal, so offline and live features agree, but for the voice
    activity, which is audio.music.voice_activity's (`voice`, when the caller has it): it also hears a voice
    sung over music."""
    if voice is None:
        from talkface.audio.music import voice_activity

        voice = voice_activity(audio.samples)
    stream = FeatureStream(voice)
    chunk = BLOCK * HOP  # bounded temporary arrays on long inputs
    n = len(audio.samples)
    parts = []
    for i in range(0, n, chunk):
        if n > LONG_BLOCKS * chunk:
            stages.report(FEATURES_STAGE, i / n)
        parts.append(stream.push(audio.samples[i : i + chunk]))
    parts.append(stream.finish())
    if n > LONG_BLOCKS * chunk:
        stages.report(FEATURES_STAGE, 1.0)
    return dataclasses.replace(concat_features(parts), duration=audio.duration)


class FramePooler:
    """Streaming AudioFeatures.at_fps: 100 Hz feature frames in, per-video-frame features out as soon as
    every feature frame a video frame averages has arrived. finish() closes the stream with
    n_video_frames(duration, fps) frames in all, as at_fps does for the whole signal."""

    def __init__(self, fps: float, offset: float = 0.0):
        self.fps, self.offset = float(fps), offset
        self.reset()

    def reset(self) -> None:
        self._buffer = AudioFeatures.empty()  # feature frames from _base on
        self._base = 0
        self._next = 0  # next video frame

    @property
    def _end(self) -> int:
        return self._base + len(self._buffer)

    def push(self, features: AudioFeatures) -> AudioFeatures:
        """Video-frame features of every frame now complete (feature frame hi - 1 has arrived)."""
        self._buffer = concat_features([self._buffer, features])
        candidates = np.arange(self._next, self._next + int(len(features) * self.fps / FEATURE_RATE) + 2)
        ready = candidates[frame_ranges(candidates, self.fps, self.offset)[1] <= self._end]
        return self._pool(np.arange(self._next, self._next + len(ready)), None)

    def finish(self, duration: float) -> AudioFeatures:
        """The remaining video frames of a signal `duration` seconds long."""
        return self.finish_frames(n_video_frames(duration, self.fps) if self._end else 0)

    def finish_frames(self, n_frames: int) -> AudioFeatures:
        """The remaining video frames up to n_frames in all (beyond the signal, its last frame repeats)."""
        return self._pool(np.arange(self._next, max(n_frames, self._next)), self._end)

    def _pool(self, frames: np.ndarray, total: int | None) -> AudioFeatures:
        lo, hi = frame_ranges(frames, self.fps, self.offset, total)
        out = self._buffer.pooled(lo - self._base, hi - self._base, self.fps)
        if len(frames):
            self._next = int(frames[-1]) + 1
            # Drop the feature frames that no later video frame averages.
            keep_from = int(frame_ranges(np.array([self._next]), self.fps, self.offset, total)[0][0])
            # (always the last one: frames past the end of the signal repeat it)
            drop = min(max(keep_from - self._base, 0), len(self._buffer) - 1)
            if drop:
                self._buffer = self._buffer.sliced(drop)
                self._base += drop
        return out
