"""H.264 + AAC MP4 written in-process with PyAV, frame by frame, atomically.

The video is written to a temporary file beside the target and renamed only when complete, so a failure
never leaves a half-written MP4. The audio track is the original file's audio, re-decoded and encoded to
AAC as the video advances, so packets interleave and memory stays flat however long the input.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from talkface.errors import TalkfaceError
from talkface.video.provenance import Ingredient, sign_mp4

AAC_BITRATE = 160_000


class _AudioSource:
    """Decodes the first audio stream of a file and feeds an AAC stream up to a requested time."""

    def __init__(self, path: Path, out: av.container.OutputContainer):
        self._in = av.open(str(path))
        stream = self._in.streams.audio[0]
        self.rate = stream.rate
        layout = "mono" if stream.channels == 1 else "stereo"
        self.stream = out.add_stream("aac", rate=self.rate)
        self.stream.layout = layout
        self.stream.bit_rate = AAC_BITRATE
        self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=self.rate)
        self._frames = self._in.decode(stream)
        self._written = 0  # samples sent to the encoder
        self._done = False

    def encode_until(self, seconds: float | None, out: av.container.OutputContainer) -> None:
        """Encode audio up to `seconds` (all of it when None)."""
        while not self._done and (seconds is None or self._written < seconds * self.rate):
            try:
                frame = next(self._frames)
            except (StopIteration, av.error.FFmpegError):
                self._done = True
                for f in self._resampler.resample(None):
                    self._mux(f, out)
                break
            frame.pts = None
            for f in self._resampler.resample(frame):
                self._mux(f, out)

    def _mux(self, frame: av.AudioFrame, out: av.container.OutputContainer) -> None:
        frame.pts = self._written
        frame.time_base = Fraction(1, self.rate)
        self._written += frame.samples
        for packet in self.stream.encode(frame):
            out.mux(packet)

    def close(self, out: av.container.OutputContainer) -> None:
        self.encode_until(None, out)
        for packet in self.stream.encode(None):
            out.mux(packet)
        self._in.close()


class Mp4Writer:
    """Context manager: `with Mp4Writer(path, (width, height), fps, audio_path) as w: w.write(frame)`.
    frame: shape (height, width, 3) uint8 RGB, both even. The file appears at `path` only on a clean exit.
    ingredients: the inputs of a generated video; given, a signed C2PA manifest that names them and says
    talkface made the video (video.provenance) is embedded before the file appears. None: no manifest."""

    def __init__(
        self,
        path: str | Path,
        frame_size: tuple[int, int],
        fps: float,
        audio_path: str | Path | None = None,
        crf: int = 18,
        metadata: dict[str, str] | None = None,
        ingredients: Sequence[Ingredient] | None = None,
    ):
        self.path = Path(path)
        self._ingredients = ingredients
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".tmp.mp4", dir=self.path.parent)
        except OSError as e:  # a read-only place, a file where a folder should be: bad input, one line
            raise TalkfaceError(f"cannot write {self.path}: {e.strerror or e}") from None
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the result should be an ordinary file
        self._tmp = Path(tmp)
        self.fps = Fraction(fps).limit_denominator(1001)
        self._out = av.open(str(self._tmp), "w", format="mp4")
        for k, v in (metadata or {}).items():
            self._out.metadata[k] = v
        self._video = self._out.add_stream("libx264", rate=self.fps)
        self._video.width, self._video.height = frame_size
        self._video.pix_fmt = "yuv420p"
        self._video.options = {"crf": str(crf), "preset": "veryfast", "tune": "film"}
        self._video.codec_context.time_base = 1 / self.fps
        self._audio = _AudioSource(Path(audio_path), self._out) if audio_path else None
        self._count = 0

    def write(self, frame: np.ndarray) -> None:
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self._count
        vf.time_base = 1 / self.fps
        for packet in self._video.encode(vf):
            self._out.mux(packet)
        self._count += 1
        if self._audio is not None:
            self._audio.encode_until(self._count / self.fps, self._out)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                for packet in self._video.encode(None):
                    self._out.mux(packet)
                if self._audio is not None:
                    self._audio.close(self._out)
            self._out.close()
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        if exc_type is None:
            if self._ingredients is not None:
                self._sign()
            try:
                os.replace(self._tmp, self.path)
            except OSError as e:  # e.g. a folder appeared at the path while rendering
                self._tmp.unlink(missing_ok=True)
                raise TalkfaceError(f"cannot write {self.path}: {e.strerror or e}") from None
        else:
            self._tmp.unlink(missing_ok=True)

    def _sign(self) -> None:
        """Replace the finished temporary file by a copy with the C2PA manifest (it too a temporary file
        beside the target, so the rename that follows stays atomic)."""
        signed = self._tmp.with_name(self._tmp.name.removesuffix(".tmp.mp4") + ".signed.tmp.mp4")
        try:
            sign_mp4(self._tmp, signed, self._ingredients, title=self.path.name)
            os.chmod(signed, os.stat(self._tmp).st_mode & 0o777)
            os.replace(signed, self._tmp)
        except BaseException:
            signed.unlink(missing_ok=True)
            self._tmp.unlink(missing_ok=True)
            raise
