"""Frame-level audio features at 100 Hz, and their alignment to video frames.

Feature frame i is centred on time i / FEATURE_RATE. Video frame j covers audio [j/fps, (j+1)/fps); its
features are the mean of the feature frames whose centres fall in that interval, indexed on the whole
signal's time base so that a long input never drifts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from talkface.audio.load import SAMPLE_RATE, Audio
from talkface.audio.tts import Phoneme
from talkface.audio.vad import VAD_RATE, speech_probability

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
# PERIODIC_BELOW_DB of the file's loud voice (fading in over the 5 dB below), and above PERIODIC_FLOOR_DB.
PERIODIC_MIN = 0.55
PERIODIC_BELOW_DB = 20.0
PERIODIC_FLOOR_DB = -45.0
assert SAMPLE_RATE % FEATURE_RATE == 0


@dataclass(frozen=True)
class AudioFeatures:
    """Per-frame features at `rate` frames per second; every array has shape (T,) except log_mel (T, 40).

    energy_db: RMS level, dB re full scale.   voicing: speech probability 0..1 (silero-vad).
    pitch_hz: fundamental frequency, 0 where unvoiced.   periodicity: autocorrelation peak 0..1.
    low_ratio: share of 250-1000 Hz (first-formant region) in the 80-5000 Hz energy.
    high_ratio: share of 2-5 kHz (fricatives, spread vowels' second formant).
    centroid_hz: spectral centroid in 80-5000 Hz.   log_mel: log mel energies, 40 bands 60-7600 Hz.
    phonemes: phoneme timings when they are known (text to speech, or an alignment), else empty.
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
    phonemes: tuple[Phoneme, ...] = ()

    def __len__(self) -> int:
        return len(self.energy_db)

    def at_fps(self, fps: float, n_frames: int, offset: float = 0.0) -> AudioFeatures:
        """Features per video frame: frame j averages the frames centred in
        [j/fps + offset, (j+1)/fps + offset).
        A positive offset shows frame j the audio slightly ahead (lips lead the voice)."""
        edges = (np.arange(n_frames + 1) / fps + offset) * self.rate
        lo = np.clip(np.ceil(edges[:-1] - 1e-9).astype(np.int64), 0, len(self))
        hi = np.clip(np.ceil(edges[1:] - 1e-9).astype(np.int64), 0, len(self))
        hi = np.maximum(hi, np.minimum(lo + 1, len(self)))  # fps above 100: take the nearest frame
        lo = np.minimum(lo, hi - 1).clip(0)

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
            rate=float(fps),
            energy_db=pool(self.energy_db),
            voicing=pool(self.voicing),
            pitch_hz=pitch,
            periodicity=pool(self.periodicity),
            low_ratio=pool(self.low_ratio),
            high_ratio=pool(self.high_ratio),
            centroid_hz=pool(self.centroid_hz),
            log_mel=pool(self.log_mel),
        )


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


def _frames(x: np.ndarray, start: int, count: int, width: int) -> np.ndarray:
    """Windows of `width` samples centred on frame centres start..start+count-1, shape (count, width).
    x must be padded by PITCH_WIN // 2 on the left."""
    pad = PITCH_WIN // 2
    idx = (np.arange(start, start + count) * HOP + pad - width // 2)[:, None] + np.arange(width)[None, :]
    return x[idx]


def _periodic_voice(periodicity: np.ndarray, energy_db: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """Voice probability 0..1 per frame, shape (T,), for strongly periodic frames about as loud as the
    file's own voice. silero-vad is trained on speech and can miss a held sung vowel or humming; such a
    frame is voice too. Mains hum and fan whine are periodic as well but far quieter than the voice on the
    same recording (GRID's studio hum sits 30-35 dB below its speech), so the level gate is relative to the
    file's loud voice: the 95th percentile of the frames that silero calls speech or that are periodic
    (of all frames when there are under 100 ms of those), never an absolute level."""
    periodic = np.clip((periodicity - PERIODIC_MIN) / 0.25, 0, 1)
    candidates = (speech > 0.5) | (periodic > 0)
    ref = float(np.percentile(energy_db[candidates] if candidates.sum() >= 10 else energy_db, 95))
    loud = np.clip((energy_db - (ref - PERIODIC_BELOW_DB)) / 5.0, 0, 1) * (energy_db > PERIODIC_FLOOR_DB)
    return periodic * loud


def compute_features(audio: Audio, phonemes: tuple[Phoneme, ...] = ()) -> AudioFeatures:
    """100 Hz features of a whole 16 kHz signal; T = ceil(N / HOP) frames, frame i centred at i / 100 s.
    `phonemes` (timings in seconds on the same time base) are passed through for the motion generator."""
    x = audio.samples.astype(np.float32, copy=False)
    n_frames = max(1, -(-len(x) // HOP))
    pad = PITCH_WIN // 2
    xp = np.pad(x, (pad, pad + HOP))
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    band = (freqs >= 80) & (freqs <= 5000)
    low = (freqs >= 250) & (freqs <= 1000)
    high = (freqs >= 2000) & (freqs <= 5000)
    mel_fb = _mel_filters()
    hann = np.hanning(WIN).astype(np.float32)
    hann_p = np.hanning(PITCH_WIN).astype(np.float32)
    lag_lo = int(SAMPLE_RATE / PITCH_RANGE[1])
    lag_hi = int(SAMPLE_RATE / PITCH_RANGE[0])

    out = {k: [] for k in ("energy", "pitch", "period", "low", "high", "centroid", "mel")}
    for start in range(0, n_frames, BLOCK):
        count = min(BLOCK, n_frames - start)
        fr = _frames(xp, start, count, WIN) * hann
        power = np.abs(np.fft.rfft(fr, N_FFT)) ** 2  # (count, 257)
        energy = (fr**2).sum(1) / hann.dot(hann)
        out["energy"].append(10 * np.log10(energy + 1e-10))
        pb = power[:, band].sum(1) + 1e-10
        out["low"].append(power[:, low].sum(1) / pb)
        out["high"].append(power[:, high].sum(1) / pb)
        out["centroid"].append((power[:, band] * freqs[band]).sum(1) / pb)
        out["mel"].append(np.log(power @ mel_fb.T + 1e-8))
        # Pitch: normalised autocorrelation peak over the speech lag range.
        fp = _frames(xp, start, count, PITCH_WIN)
        fp = (fp - fp.mean(1, keepdims=True)) * hann_p
        spec = np.fft.rfft(fp, 2 * PITCH_WIN)
        acf = np.fft.irfft(np.abs(spec) ** 2)[:, : lag_hi + 2]
        norm = acf[:, 0] + 1e-9
        seg = acf[:, lag_lo : lag_hi + 1] / norm[:, None]
        best = seg.argmax(1)
        peak = seg[np.arange(count), best]
        # Parabolic interpolation of the peak for sub-sample lag.
        i = np.clip(best, 1, seg.shape[1] - 2)
        a, b, c = seg[np.arange(count), i - 1], seg[np.arange(count), i], seg[np.arange(count), i + 1]
        curv = a - 2 * b + c
        safe = np.where(np.abs(curv) > 1e-9, curv, 1.0)
        shift = np.where(np.abs(curv) > 1e-9, 0.5 * (a - c) / safe, 0.0).clip(-1, 1)
        lag = lag_lo + i + shift
        out["period"].append(peak.clip(0, 1))
        out["pitch"].append(np.where(peak > 0.45, SAMPLE_RATE / lag, 0.0))

    cat = {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}
    energy_db = cat["energy"]
    # Voice activity at 31.25 Hz, interpolated onto the 100 Hz frame centres.
    vad = speech_probability(x)
    t_vad = (np.arange(len(vad)) + 0.5) / VAD_RATE
    speech = np.interp(np.arange(n_frames) / FEATURE_RATE, t_vad, vad)
    voicing = np.maximum(speech, _periodic_voice(cat["period"], energy_db, speech)).astype(np.float32)
    pitch = np.where((energy_db > -50) & (voicing > 0.3), cat["pitch"], 0.0).astype(np.float32)
    return AudioFeatures(
        rate=float(FEATURE_RATE),
        duration=audio.duration,
        energy_db=energy_db,
        voicing=voicing,
        pitch_hz=pitch,
        periodicity=cat["period"],
        low_ratio=cat["low"],
        high_ratio=cat["high"],
        centroid_hz=cat["centroid"],
        log_mel=cat["mel"],
        phonemes=tuple(phonemes),
    )
