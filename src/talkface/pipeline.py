"""The offline jobs: animate, say and drive, each a few calls on the engine (talkface.engine)."""

from __future__ import annotations

import logging
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np

from talkface.audio.features import n_video_frames
from talkface.audio.load import AudioReader, from_samples, write_wav
from talkface.config import DEFAULT_VOICE, AnimateOptions, DriveOptions
from talkface.engine import Engine, Progress, StageClock, phonemes_for
from talkface.errors import TalkfaceError
from talkface.face.rig import FaceRig
from talkface.outputs import check_output
from talkface.video.watermark import Payload

log = logging.getLogger(__name__)


def animate(
    portrait: str | Path | np.ndarray,
    audio: str | Path,
    output: str | Path,
    options: AnimateOptions | None = None,
    progress: Progress | None = None,
    transcript: str | None = None,
    clock: StageClock | None = None,
    rig: FaceRig | None = None,
    payload: Payload | None = None,
) -> Path:
    """Render `portrait` speaking `audio` into an H.264 + AAC MP4 at `output`; returns the path. The audio
    streams through in windows (bounded memory), except when phones are recognised in it for the learned
    generator, which reads it whole. `transcript`: the words spoken (English), force-aligned to the audio so
    that phonemes drive the visemes. The file is written atomically: on any error no file (and no partial
    file) is left at `output`. clock: times each stage (the benchmark). rig: the portrait already analysed at
    options.size and options.head_distance (talkface.batch), else it is analysed here. payload: the
    watermark's (default: this version and a random video id; the evaluation fixes it, so that its renders
    repeat)."""
    options = options or AnimateOptions()
    output = check_output(output)
    # The portrait is analysed on a second thread while the audio is opened and, for a generator that needs
    # them, its phones are recognised. They overlap less than it seems (measured: each lets the other run at
    # 12-68 % of its speed, the GIL), but some. A bad portrait is still reported before bad audio.
    with ThreadPoolExecutor(1, thread_name_prefix="talkface-portrait") as pool:
        analysed = pool.submit(Engine, portrait, options, clock, payload, rig=rig, cached=True)
        try:
            reader = AudioReader(audio)
            phonemes, whole = phonemes_for(options, reader, transcript, clock)
        except BaseException:
            analysed.result()
            raise
        engine = analysed.result()
    total = n_video_frames(reader.duration_hint, options.fps) if reader.duration_hint else None
    source = whole if whole is not None else reader
    motion = engine.motion_windows(source, options, phonemes=phonemes)
    with reader.encodable() as audio_path:  # the file, or a copy with its bad samples zeroed
        return engine.write(motion, output, options.fps, audio_path, progress, total)


def say(
    portrait: str | Path | np.ndarray,
    text: str,
    output: str | Path,
    voice: str = DEFAULT_VOICE,
    options: AnimateOptions | None = None,
    progress: Progress | None = None,
    rig: FaceRig | None = None,
) -> Path:
    """Speak `text` with espeak-ng in `voice` and render `portrait` saying it; the phoneme timings of the
    synthesis drive the visemes exactly. Returns the path of the MP4. rig: as for animate."""
    from talkface.audio.tts import synthesize

    options = options or AnimateOptions()
    output = check_output(output)
    engine = Engine(portrait, options, rig=rig, cached=True)
    speech = synthesize(text, voice)
    sound = from_samples(speech.samples, speech.sample_rate)
    motion = engine.motion_windows(sound, options, phonemes=speech.phonemes)
    total = n_video_frames(sound.duration, options.fps)
    with tempfile.TemporaryDirectory(prefix="talkface-") as tmp:
        wav = write_wav(Path(tmp) / "speech.wav", speech.samples, speech.sample_rate)
        return engine.write(motion, output, options.fps, wav, progress, total)


def drive(
    portrait: str | Path | np.ndarray,
    driving_video: str | Path,
    output: str | Path,
    options: DriveOptions | None = None,
    progress: Progress | None = None,
) -> Path:
    """Reenact `portrait` with the head pose, expression, blinks and gaze of the face in `driving_video`
    (relative to its first frame), steered by the options (head and expression scale, gaze offset, emotion),
    at options.fps (default: the driving video's rate, at most 60); its audio, if any, is kept."""
    from talkface.face.tracking import probe, track_video
    from talkface.motion.capture import motion_from_track
    from talkface.motion.controls import retime, steer

    options = options or DriveOptions()
    output = check_output(output)
    engine = Engine(portrait, options, cached=True)
    info = probe(driving_video)
    log.info("tracking the driving video")
    try:
        track = track_video(driving_video)
    except av.error.FFmpegError as e:  # FFmpeg guessed a format from the header, but the frames are not one
        raise TalkfaceError(f"cannot read video {driving_video}: {e.strerror or e}") from None
    motion = motion_from_track(track)
    motion = retime(motion, min(max(info.fps, 1.0), 60.0))  # the tracked rate, clamped like any output
    motion = steer(retime(motion, options.fps or motion.fps), options)
    if not info.has_audio:
        return engine.write(motion, output, motion.fps, None, progress)
    with AudioReader(driving_video).encodable() as audio:  # its sound, with any bad samples zeroed
        return engine.write(motion, output, motion.fps, audio, progress)
