"""The offline pipeline: portrait + audio -> MP4, stage by stage, the audio streaming through in windows."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from talkface import __version__
from talkface.audio.features import n_video_frames
from talkface.audio.load import SAMPLE_RATE, AudioReader, from_samples, write_wav
from talkface.audio.tts import Phoneme, synthesize
from talkface.config import AnimateOptions
from talkface.errors import TalkfaceError
from talkface.face.image import load_image
from talkface.face.rig import FaceRig, build_rig
from talkface.face.tracking import probe, track_video
from talkface.motion.capture import motion_from_track
from talkface.motion.generators import HEARS_PHONES, make_stream
from talkface.motion.rules import RuleSettings
from talkface.motion.sequence import MotionSequence
from talkface.motion.stream import AudioMotion
from talkface.render.paste import PasteBack
from talkface.render.renderer import Renderer
from talkface.video.encode import Mp4Writer
from talkface.video.label import draw_label
from talkface.video.watermark import Payload, Watermarker, new_payload

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]  # (frames done, frames in all when known)

WINDOW_S = 2.0  # seconds of audio per sliding window offline (live: whatever chunk arrives)


def _check_output(output: str | Path) -> Path:
    output = Path(output)
    if output.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise TalkfaceError(f"output must be an .mp4 file, got {output.name}")
    return output


def motion_source(options: AnimateOptions, phonemes: tuple[Phoneme, ...] = ()) -> AudioMotion:
    """Audio in, motion out, window by window: options.generator's stream with the options' controls."""
    settings = RuleSettings(options.seed, options.motion_scale, options.expression_scale, options.gaze)
    stream = make_stream(options.generator, options.fps, settings, phonemes)
    return AudioMotion(stream, options.fps, options.emotion, options.emotion_strength)


def motion_windows(chunks: Iterable[np.ndarray], source: AudioMotion) -> Iterator[MotionSequence]:
    """Motion for 16 kHz audio `chunks`, pushed in windows of WINDOW_S: memory stays bounded whatever the
    length, and the result is the same as for any other window size."""
    window = int(WINDOW_S * SAMPLE_RATE)
    pending: list[np.ndarray] = []
    count = 0
    for chunk in chunks:
        pending.append(chunk)
        count += len(chunk)
        if count >= window:
            yield source.push(np.concatenate(pending))
            pending, count = [], 0
    if pending:
        yield source.push(np.concatenate(pending))
    yield source.finish()


def _in_windows(samples: np.ndarray) -> Iterator[np.ndarray]:
    window = int(WINDOW_S * SAMPLE_RATE)
    for i in range(0, len(samples), window):
        yield samples[i : i + window]


class FrameMaker:
    """Motion rows -> finished frames: rendered on the rig, pasted into the whole portrait (--full-frame),
    labelled (--label), and watermarked with one payload per video (or live session)."""

    def __init__(self, portrait: np.ndarray, rig: FaceRig, options: AnimateOptions, payload: Payload):
        self.renderer = Renderer(rig)
        self._paste = PasteBack(rig, portrait) if options.full_frame else None
        self.frame_size = self._paste.frame_size if self._paste else (options.size, options.size)
        self._marker = Watermarker(payload, *self.frame_size)
        self._label = options.label

    def __call__(self, motion: MotionSequence, i: int) -> np.ndarray:
        """Frame i of `motion`, RGB uint8 (H, W, 3), a new array."""
        frame = self.renderer.render(motion, i)  # a new array each call: marking it in place is safe
        if self._paste:
            frame = self._paste.paste(frame)
        if self._label:
            frame = draw_label(frame)
        return self._marker.embed(frame, out=frame)


def render_motion(
    portrait: np.ndarray,
    rig: FaceRig,
    motion: MotionSequence | Iterable[MotionSequence],
    fps: float,
    audio_path: Path | None,
    output: Path,
    options: AnimateOptions,
    progress: Progress | None = None,
    total: int | None = None,
) -> Path:
    """Render every row of `motion` (one sequence, or consecutive windows of one) on `rig` and write the
    MP4 at `fps`, with the first audio stream of `audio_path` if given. total: frames expected (progress)."""
    windows = [motion] if isinstance(motion, MotionSequence) else motion
    if isinstance(motion, MotionSequence):
        total = len(motion)
    payload = new_payload()
    make_frame = FrameMaker(portrait, rig, options, payload)
    log.info("rendering at %g fps (video id %08x)", fps, payload.video_id)
    done = 0
    with Mp4Writer(
        output, make_frame.frame_size, fps, audio_path, crf=options.crf, metadata=_metadata(payload)
    ) as w:
        for window in windows:
            for i in range(len(window)):
                w.write(make_frame(window, i))
                done += 1
                if progress:
                    progress(done, total)
    return output


def _metadata(payload: Payload) -> dict[str, str]:
    """MP4 tags that say the video is synthetic and who made it (the watermark says it in the pixels)."""
    return {
        "comment": f"synthetic video generated by talkface {__version__}",
        "description": (
            "AI-generated (IPTC digital source type trainedAlgorithmicMedia): synthetic talking-face video "
            f"made by talkface {__version__} from one image; video id {payload.video_id:08x}; "
            "check with `talkface verify`"
        ),
        "creation_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
    }


def portrait_rig(portrait: str | Path | np.ndarray, options: AnimateOptions) -> tuple[np.ndarray, FaceRig]:
    """The portrait image and its face rig at options.size / options.head_distance."""
    image = portrait if isinstance(portrait, np.ndarray) else load_image(portrait)
    return image, build_rig(image, options.size, head_distance=options.head_distance)


def animate(
    portrait: str | Path | np.ndarray,
    audio: str | Path,
    output: str | Path,
    options: AnimateOptions | None = None,
    progress: Progress | None = None,
    transcript: str | None = None,
) -> Path:
    """Render `portrait` speaking `audio` into an H.264 + AAC MP4 at `output`; returns the path. The audio
    streams through in windows (memory does not grow with its length). `transcript`: the words spoken
    (English), force-aligned to the audio so that phonemes drive the visemes. The file is written
    atomically: on any error no file (and no partial file) is left at `output`."""
    options = options or AnimateOptions()
    output = _check_output(output)
    image, rig = portrait_rig(portrait, options)
    reader = AudioReader(audio)
    phonemes: tuple[Phoneme, ...] = ()
    if transcript:
        from talkface.audio.align import align_transcript

        sound = reader.read()  # alignment needs the whole signal
        phonemes = align_transcript(sound, transcript)
        chunks: Iterable[np.ndarray] = _in_windows(sound.samples)
    elif options.generator in HEARS_PHONES:
        from talkface.audio.phones import recognize_phones

        sound = reader.read()  # the recogniser decodes whole pieces between pauses
        phonemes = recognize_phones(sound)
        chunks = _in_windows(sound.samples)
    else:
        chunks = reader
    total = n_video_frames(reader.duration_hint, options.fps) if reader.duration_hint else None
    motion = motion_windows(chunks, motion_source(options, phonemes))
    return render_motion(image, rig, motion, options.fps, Path(audio), output, options, progress, total)


def say(
    portrait: str | Path | np.ndarray,
    text: str,
    output: str | Path,
    voice: str = "en-us",
    options: AnimateOptions | None = None,
    progress: Progress | None = None,
) -> Path:
    """Speak `text` with espeak-ng in `voice` and render `portrait` saying it; the phoneme timings of the
    synthesis drive the visemes exactly. Returns the path of the MP4."""
    options = options or AnimateOptions()
    output = _check_output(output)
    image, rig = portrait_rig(portrait, options)
    speech = synthesize(text, voice)
    sound = from_samples(speech.samples, speech.sample_rate)
    motion = motion_windows(_in_windows(sound.samples), motion_source(options, speech.phonemes))
    total = n_video_frames(sound.duration, options.fps)
    with tempfile.TemporaryDirectory(prefix="talkface-") as tmp:
        wav = write_wav(Path(tmp) / "speech.wav", speech.samples, speech.sample_rate)
        return render_motion(image, rig, motion, options.fps, wav, output, options, progress, total)


def drive(
    portrait: str | Path | np.ndarray,
    driving_video: str | Path,
    output: str | Path,
    options: AnimateOptions | None = None,
    progress: Progress | None = None,
) -> Path:
    """Reenact `portrait` with the head pose, expression, blinks and gaze of the face in `driving_video`
    (relative to its first frame), at the driving video's frame rate; its audio, if any, is kept."""
    options = options or AnimateOptions()
    output = _check_output(output)
    image, rig = portrait_rig(portrait, options)
    info = probe(driving_video)
    fps = min(max(info.fps, 1.0), 60.0)
    log.info("tracking the driving video")
    motion = motion_from_track(track_video(driving_video))
    motion = dataclasses.replace(motion, fps=fps)
    audio = Path(driving_video) if info.has_audio else None
    return render_motion(image, rig, motion, fps, audio, output, options, progress)
