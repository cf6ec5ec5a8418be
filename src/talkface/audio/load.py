"""Decode any audio file PyAV reads to 16 kHz mono float32."""

from __future__ import annotations

from collections.abc import Iterator
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


class AudioReader:
    """Streaming decode of the first audio stream of a file (WAV, MP3, M4A/AAC, FLAC, OGG/Opus, or a video's
    audio): iterate for 16 kHz mono float32 chunks, so any length decodes in bounded memory. Opening raises
    TalkfaceError for a missing or unreadable file or one without audio; iterating raises it for an empty
    or too long one. After iteration, `duration` is exact (the source's sample count over its rate)."""

    def __init__(self, path: str | Path, max_seconds: float = MAX_AUDIO_SECONDS):
        self.path = Path(path)
        self.max_seconds = max_seconds
        if not self.path.is_file():
            raise TalkfaceError(f"audio file not found: {self.path}")
        try:
            container = av.open(str(self.path))
        except av.error.FFmpegError as e:
            raise TalkfaceError(f"cannot read audio file {self.path}: {e.strerror or e}") from None
        with container:
            if not container.streams.audio:
                raise TalkfaceError(f"{self.path} has no audio stream")
            stream = container.streams.audio[0]
            self.source_rate, self.source_channels = stream.rate, stream.channels
            seconds = None
            if stream.duration is not None and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration:
                seconds = container.duration / av.time_base
        self.duration_hint = seconds  # from the container's header, when it says
        if seconds is not None and seconds > max_seconds + 1.0:
            raise TalkfaceError(self._too_long())
        self.duration: float | None = None

    def read(self) -> Audio:
        """The whole signal at once (for what needs all of it, such as a transcript's alignment)."""
        samples = np.concatenate(list(self))
        return Audio(samples, self.duration, self.source_rate, self.source_channels)

    def _too_long(self) -> str:
        return f"{self.path} is longer than the {self.max_seconds / 60:g}-minute limit; split it into parts"

    def __iter__(self) -> Iterator[np.ndarray]:
        n = 0  # source samples
        rate = self.source_rate
        resampler = None
        with av.open(str(self.path)) as container:
            stream = container.streams.audio[0]
            # Convert the sample format and mix down only; soxr does the rate change (a better filter than
            # swr's).
            to_mono = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
            try:
                for frame in container.decode(stream):
                    for f in to_mono.resample(frame):
                        rate = f.sample_rate
                        chunk = f.to_ndarray().reshape(-1)
                        n += len(chunk)
                        if resampler is None:
                            resampler = _Resampler(rate)
                        yield resampler(chunk)
                    if n > self.max_seconds * rate:
                        raise TalkfaceError(self._too_long())
                for f in to_mono.resample(None):
                    chunk = f.to_ndarray().reshape(-1)
                    n += len(chunk)
                    if len(chunk):
                        resampler = resampler or _Resampler(rate)
                        yield resampler(chunk)
            except av.error.FFmpegError as e:
                if n == 0:
                    raise TalkfaceError(f"cannot decode audio in {self.path}: {e.strerror or e}") from None
                # A damaged tail: keep what decoded, as players do.
        if n == 0:
            raise TalkfaceError(f"{self.path} holds no audio samples")
        yield resampler(np.zeros(0, np.float32), last=True)
        self.source_rate = rate
        self.duration = n / rate


class _Resampler:
    """Streaming soxr resampling of mono float32 to SAMPLE_RATE (identity at 16 kHz)."""

    def __init__(self, rate: int):
        self._stream = (
            None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1, "float32", "HQ")
        )

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if self._stream is None:
            return x
        return self._stream.resample_chunk(x, last=last).astype(np.float32, copy=False)


def load_audio(path: str | Path, max_seconds: float = MAX_AUDIO_SECONDS) -> Audio:
    """Decode the first audio stream of `path` whole: mono, 16 kHz. Raises TalkfaceError for a missing,
    unreadable, audio-less, empty or too long file."""
    return AudioReader(path, max_seconds).read()


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
