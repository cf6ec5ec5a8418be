"""Decode any audio file PyAV reads to 16 kHz mono float32."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soxr

from talkface.config import MAX_AUDIO_SECONDS
from talkface.errors import TalkfaceError

SAMPLE_RATE = 16000  # Hz, the rate every audio feature is computed at


@dataclass(frozen=True)
class Audio:
    """samples: shape (N,) float32 in [-1, 1] at SAMPLE_RATE. duration: seconds, from the source's own
    sample count and rate (the video must last exactly this long)."""

    samples: np.ndarray
    duration: float
    source_rate: int
    source_channels: int


def from_samples(samples: np.ndarray, sample_rate: int) -> Audio:
    """Audio from an in-memory mono or (N, channels) float array at any sample rate."""
    x = np.asarray(samples, dtype=np.float32)
    channels = 1 if x.ndim == 1 else x.shape[1]
    if x.ndim == 2:
        x = x.mean(axis=1)
    if len(x) == 0:
        raise TalkfaceError("the audio is empty (no samples)")
    y = x if sample_rate == SAMPLE_RATE else soxr.resample(x, sample_rate, SAMPLE_RATE, quality="HQ")
    return Audio(y.astype(np.float32, copy=False), len(x) / sample_rate, sample_rate, channels)


def load_audio(path: str | Path, max_seconds: float = MAX_AUDIO_SECONDS) -> Audio:
    """Decode the first audio stream of `path` (WAV, MP3, M4A/AAC, FLAC, OGG/Opus, or a video's audio),
    mix to mono and resample to 16 kHz. Raises TalkfaceError for a missing, unreadable, silent-less
    (no audio stream), empty or too long file."""
    path = Path(path)
    if not path.is_file():
        raise TalkfaceError(f"audio file not found: {path}")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as e:
        raise TalkfaceError(f"cannot read audio file {path}: {e.strerror or e}") from None
    with container:
        if not container.streams.audio:
            raise TalkfaceError(f"{path} has no audio stream")
        stream = container.streams.audio[0]
        # Convert the sample format and mix down only; soxr does the rate change (a better filter than swr's).
        to_mono = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
        chunks: list[np.ndarray] = []
        n = 0
        channels = stream.channels
        rate = stream.rate
        try:
            for frame in container.decode(stream):
                rate = frame.sample_rate
                for f in to_mono.resample(frame):
                    chunk = f.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    n += len(chunk)
                if n > max_seconds * rate:
                    raise TalkfaceError(
                        f"{path} is longer than the {max_seconds / 60:g}-minute limit; split it into parts"
                    )
            for f in to_mono.resample(None):
                chunks.append(f.to_ndarray().reshape(-1))
        except av.error.FFmpegError as e:
            if not chunks:
                raise TalkfaceError(f"cannot decode audio in {path}: {e.strerror or e}") from None
            # A damaged tail: keep what decoded, as players do.
    if not chunks or sum(len(c) for c in chunks) == 0:
        raise TalkfaceError(f"{path} holds no audio samples")
    mono = np.concatenate(chunks)
    audio = from_samples(mono, rate)
    return Audio(audio.samples, audio.duration, rate, channels)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write mono float samples in [-1, 1] as a 16-bit PCM WAV file."""
    import wave

    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return Path(path)
