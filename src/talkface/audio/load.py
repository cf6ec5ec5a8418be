"""Decode any audio file PyAV reads to 16 kHz mono float32."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soxr

from talkface.config import MAX_AUDIO_SECONDS
from talkface.errors import TalkfaceError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # Hz, the rate every audio feature is computed at

# A sample is bad when it is NaN, infinite, or so large that it is no sound: float WAVs from broken tools
# hold such values, and they overflow the features (squares beyond float32) and the AAC encoder (which
# refuses "near NaN" input). Bad samples are zeroed with a warning, unless more than MAX_BAD_FRACTION of
# the file is bad: then it is refused.
MAX_SAMPLE = 1e6
MAX_BAD_FRACTION = 0.5
# A DC offset (a cheap microphone's or converter's) reads as loudness to the motion generators: the
# mouth would move in silence. The offset is tracked (the signal low-passed at DC_CUTOFF_HZ) and removed
# when it exceeds DC_TOLERANCE, wholly from twice that (in between, a share: no step): ordinary recordings,
# with offsets of a few thousandths, pass unchanged sample for sample (the aligner and the voice activity
# detector were tuned on them).
DC_CUTOFF_HZ = 1.0
DC_TOLERANCE = 0.005  # full scale 1


@dataclass(frozen=True)
class Audio:
    """samples: shape (N,) float32 in [-1, 1] at SAMPLE_RATE. duration: seconds, from the source's own
    sample count and rate (the video must last exactly this long)."""

    samples: np.ndarray
    duration: float
    source_rate: int
    source_channels: int


def from_samples(samples: np.ndarray, sample_rate: int) -> Audio:
    """Audio from an in-memory mono or (N, channels) float array at any sample rate. Bad samples (see
    MAX_SAMPLE) are zeroed."""
    x = np.asarray(samples, dtype=np.float32)
    channels = 1 if x.ndim == 1 else x.shape[1]
    if x.ndim == 2:
        x = x.mean(axis=1)
    x = _silence_bad(x)
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
            float_pcm = stream.codec_context.name.startswith("pcm_f")
            seconds = None
            if stream.duration is not None and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration:
                seconds = container.duration / av.time_base
        self.duration_hint = seconds  # from the container's header, when it says
        if seconds is not None and seconds > max_seconds + 1.0:
            raise TalkfaceError(self._too_long())
        self.duration: float | None = None
        # Bad samples (see MAX_SAMPLE) in the source, counted before anything reads it. Only raw float PCM
        # can hold them (integer PCM cannot; codecs decode to bounded values), so only it is scanned.
        self.bad_samples = self._count_bad_samples() if float_pcm else 0

    def _count_bad_samples(self) -> int:
        """Scan the file: the number of its bad samples (any channel), warned about; raise
        TalkfaceError when more than MAX_BAD_FRACTION of them are bad."""
        bad = total = 0
        try:
            with av.open(str(self.path)) as container:
                for frame in container.decode(container.streams.audio[0]):
                    x = frame.to_ndarray()  # (C, N) planar, (1, N * C) interleaved: either way
                    bad += int(np.count_nonzero(~(np.abs(x) <= MAX_SAMPLE)))
                    total += x.size
                    if total > self.max_seconds * self.source_rate * self.source_channels:
                        raise TalkfaceError(self._too_long())
        except av.error.FFmpegError:
            pass  # a damaged tail: decoding reports it (or keeps what decoded)
        if bad and bad > MAX_BAD_FRACTION * total:
            raise TalkfaceError(
                f"{self.path}: {bad / total:.0%} of its samples are not numbers (NaN, infinite or huge); "
                "it is no audio"
            )
        if bad:
            log.warning(
                "%s: %d of its samples are not numbers (NaN, infinite or huge); they were silenced",
                self.path,
                bad,
            )
        return bad

    @contextlib.contextmanager
    def encodable(self) -> Iterator[Path]:
        """The file an encoder may take this audio from (video.encode.Mp4Writer): the file itself, or if it
        holds bad samples, a temporary float WAV of it (mono or stereo, at the source's rate) with them
        zeroed, deleted on exit."""
        if not self.bad_samples:
            yield self.path
            return
        with tempfile.TemporaryDirectory(prefix="talkface-") as tmp:
            yield self._write_repaired(Path(tmp) / "repaired.wav")

    def _write_repaired(self, path: Path) -> Path:
        layout = "mono" if self.source_channels == 1 else "stereo"  # as the encoder will mix it
        with av.open(str(self.path)) as src, av.open(str(path), "w") as out:
            stream = src.streams.audio[0]
            rate = stream.rate
            dst = out.add_stream("pcm_f32le", rate=rate)
            dst.layout = layout
            mix = av.AudioResampler(format="flt", layout=layout, rate=rate)
            written = 0

            def mux(frames):
                nonlocal written
                for f in frames:
                    x = f.to_ndarray()  # (1, N * channels), interleaved
                    x[~(np.abs(x) <= MAX_SAMPLE)] = 0.0
                    g = av.AudioFrame.from_ndarray(x, format="flt", layout=layout)
                    g.sample_rate, g.pts, g.time_base = rate, written, Fraction(1, rate)
                    written += g.samples
                    for packet in dst.encode(g):
                        out.mux(packet)

            try:
                for frame in src.decode(stream):
                    frame.pts = None
                    mux(mix.resample(frame))
            except av.error.FFmpegError:
                pass  # a damaged tail: keep what decoded, as the reader does
            mux(mix.resample(None))
            for packet in dst.encode(None):
                out.mux(packet)
        return path

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
        dc_block = _DCRemover()
        with av.open(str(self.path)) as container:
            stream = container.streams.audio[0]
            # Convert the sample format and mix down only; soxr does the rate change (a better filter than
            # swr's).
            to_mono = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
            try:
                for frame in container.decode(stream):
                    for f in to_mono.resample(frame):
                        rate = f.sample_rate
                        chunk = _silence_bad(f.to_ndarray().reshape(-1))
                        n += len(chunk)
                        if resampler is None:
                            resampler = _Resampler(rate)
                        yield dc_block(resampler(chunk))
                    if n > self.max_seconds * rate:
                        raise TalkfaceError(self._too_long())
                for f in to_mono.resample(None):
                    chunk = _silence_bad(f.to_ndarray().reshape(-1))
                    n += len(chunk)
                    if len(chunk):
                        resampler = resampler or _Resampler(rate)
                        yield dc_block(resampler(chunk))
            except av.error.FFmpegError as e:
                if n == 0:
                    raise TalkfaceError(f"cannot decode audio in {self.path}: {e.strerror or e}") from None
                # A damaged tail: keep what decoded, as players do.
        if n == 0:
            raise TalkfaceError(f"{self.path} holds no audio samples")
        yield dc_block(resampler(np.zeros(0, np.float32), last=True))
        self.source_rate = rate
        self.duration = n / rate


def _silence_bad(x: np.ndarray) -> np.ndarray:
    """x with its bad samples (see MAX_SAMPLE) zeroed: none reaches a model (a safety net behind the scan
    of AudioReader, which counts and warns)."""
    bad = ~(np.abs(x) <= MAX_SAMPLE)
    if bad.any():
        x = np.where(bad, np.float32(0), x)
    return x


class _DCRemover:
    """Streaming removal of a DC offset from 16 kHz mono float32 chunks (see DC_TOLERANCE): the offset is
    the signal low-passed at DC_CUTOFF_HZ (two poles: loud speech leaks 1e-4 of itself, not 1e-2),
    starting from the first chunk's mean (so that a file with an offset does not start with one)."""

    def __init__(self):
        pole = np.exp(-2 * np.pi * DC_CUTOFF_HZ / SAMPLE_RATE)
        self._b, self._a = np.array([(1.0 - pole) ** 2]), np.array([1.0, -2.0 * pole, pole**2])
        self._state: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from talkface.audio.iir import lfilter, lfilter_zi  # scipy.signal's, without its 0.5-1.5 s import

        if len(x) == 0:
            return x
        if self._state is None:
            self._state = lfilter_zi(self._b, self._a) * float(np.mean(x))
        offset, self._state = lfilter(self._b, self._a, x, zi=self._state)
        share = np.clip(np.abs(offset) / DC_TOLERANCE - 1.0, 0.0, 1.0)
        return (x - share * offset).astype(np.float32) if share.any() else x


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

    pcm = (np.clip(_silence_bad(np.asarray(samples)), -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return Path(path)
