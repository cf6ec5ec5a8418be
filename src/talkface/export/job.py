"""`talkface motion`: audio -> the motion our generator makes -> a file for game engines and 3D tools.

No portrait is needed (the motion is identity-agnostic) and nothing is rendered: the audio goes through the
same generator, controls and sliding windows as `animate` (features -> motion, window by window), then one
of the writers of this package turns the MotionSequence into a file. The file is written to a temporary
file beside the target and renamed when complete, so a failed run leaves nothing, and an existing file at
the output path stays as it was.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from talkface.audio.load import SAMPLE_RATE, Audio, AudioReader
from talkface.audio.music import voice_activity
from talkface.config import MotionControls, MotionExportOptions
from talkface.errors import TalkfaceError
from talkface.motion.contract import MotionSequence, Phoneme, concat_motion
from talkface.motion.generators import generator
from talkface.motion.stream import AudioMotion
from talkface.outputs import check_output as output_path

if TYPE_CHECKING:
    from talkface.face.rig import FaceRig

log = logging.getLogger(__name__)

WINDOW_S = 2.0  # seconds of audio per push (the motion does not depend on it)
# Output extensions per format (the first is the one suggested in errors).
SUFFIXES = {
    "arkit": (".json",),
    "arkit-csv": (".csv",),
    "visemes": (".json",),
    "rhubarb": (".tsv", ".txt", ".json", ".xml"),
    "gltf": (".glb",),
}
NEEDS_PHONEMES = ("visemes", "rhubarb")  # formats that read the phonemes themselves


SPEECH_GUARD_S = 0.1  # lips move this long before the voice starts and after it stops
LIP_LEAD_S = 0.04  # frame i shows the audio this far after its time (as the motion's lips)


@dataclasses.dataclass(frozen=True)
class ExportedMotion:
    """What a motion export computed: the motion, the phonemes it read, the audio's duration (s), and for
    the formats that read phonemes, which frames are within speech (voice activity, silero-vad, widened by
    SPEECH_GUARD_S), shape (T,) bool: a phone recogniser also hears phones in silence and noise."""

    motion: MotionSequence
    phonemes: tuple[Phoneme, ...]
    duration: float
    speaking: np.ndarray | None = None


def speaking_frames(audio: Audio, fps: float, n_frames: int) -> np.ndarray:
    """Frames within speech, (n_frames,) bool (see ExportedMotion.speaking)."""
    from talkface.audio.features import compute_features

    voiced = compute_features(audio).at_fps(fps, n_frames, offset=LIP_LEAD_S).voicing >= 0.5
    guard = int(round(SPEECH_GUARD_S * fps))
    if guard:
        voiced = np.convolve(voiced.astype(float), np.ones(2 * guard + 1), mode="same") > 0
    return voiced


def check_output(output: str | Path, fmt: str) -> Path:
    """The output path if it can take `fmt` (its extension) and be written; raises TalkfaceError before any
    work otherwise. Missing folders are fine (made when the file is written)."""
    suffixes, name = SUFFIXES[fmt], Path(output).name or str(output)
    if Path(output).suffix.lower() not in suffixes:
        raise TalkfaceError(f"output for --format {fmt} must end in {' or '.join(suffixes)}, got {name}")
    return output_path(output, suffixes)


def write_atomic(output: Path, data: bytes) -> Path:
    """`data` to `output` through a temporary file beside it, renamed when complete (parents made)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.stem}.", suffix=".tmp", dir=output.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the result should be an ordinary file
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return output


def motion_for(
    audio: Audio,
    options: MotionExportOptions,
    transcript: str | None = None,
    phonemes: tuple[Phoneme, ...] | None = None,
) -> ExportedMotion:
    """The generator's motion for `audio` under the options' controls, and the phonemes: given, or the
    transcript aligned to the audio, or (for a generator or a format that needs them) phones recognised in
    it. The generator gets them as in `animate` (given or aligned, or recognised for a generator that needs
    them), so the motion is the one `animate` renders."""
    make = generator(options.generator)
    known = phonemes is not None or bool(transcript)
    if phonemes is None:
        phonemes = ()
        if transcript:
            from talkface.audio.align import align_transcript

            phonemes = align_transcript(audio, transcript)
        elif make.needs_phonemes or options.format in NEEDS_PHONEMES:
            from talkface.audio.phones import recognize_phones

            phonemes = recognize_phones(audio)
    controls = MotionControls(
        **{f.name: getattr(options, f.name) for f in dataclasses.fields(MotionControls)}
    )
    heard = tuple(phonemes) if known or make.needs_phonemes else ()
    voice = voice_activity(audio.samples)
    stream = AudioMotion(make(options.fps, controls, heard, options.motion_model), voice=voice)
    stream.hear(audio, voice)
    window = int(WINDOW_S * SAMPLE_RATE)
    parts = [stream.push(audio.samples[i : i + window]) for i in range(0, len(audio.samples), window)]
    parts.append(stream.finish())
    motion = concat_motion(parts)
    speaking = speaking_frames(audio, options.fps, len(motion)) if options.format in NEEDS_PHONEMES else None
    return ExportedMotion(motion, tuple(phonemes), audio.duration, speaking)


def encode(
    result: ExportedMotion,
    options: MotionExportOptions,
    output: Path,
    sound_file: Path,
    rig: FaceRig | None = None,
) -> bytes:
    """The file's bytes for options.format (the output's extension picks Rhubarb's layout; the rig, the
    portrait's, gives the glTF head its face and texture)."""
    motion, fmt = result.motion, options.format
    if fmt in ("arkit", "arkit-csv"):
        from talkface.export.arkit import arkit_csv, arkit_json, arkit_track

        track = arkit_track(motion)
        text = arkit_json(track, result.duration) if fmt == "arkit" else arkit_csv(track)
        return text.encode("utf-8")
    if fmt == "visemes":
        from talkface.export.visemes import viseme_weights, visemes_json

        weights = viseme_weights(result.phonemes, len(motion), motion.fps, result.speaking)
        return visemes_json(weights, motion.fps, result.duration).encode("utf-8")
    if fmt == "rhubarb":
        from talkface.export import rhubarb as R

        cues = R.mouth_cues(
            R.frame_shapes(motion, result.phonemes, result.speaking),
            motion.fps,
            result.duration,
            options.extended_shapes,
        )
        layout = R.LAYOUTS[output.suffix.lower()]
        if layout == "tsv":
            text = R.rhubarb_tsv(cues, result.duration, options.extended_shapes)
        elif layout == "json":
            text = R.rhubarb_json(cues, result.duration, sound_file)
        else:
            text = R.rhubarb_xml(cues, result.duration, sound_file)
        return text.encode("utf-8")
    from talkface.export.arkit import arkit_track
    from talkface.export.gltf import JPEG_QUALITY, head_glb

    track = arkit_track(motion)
    if rig is None:
        return head_glb(track, motion.translation, result.duration)
    import cv2

    ok, jpeg = cv2.imencode(".jpg", rig.image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    assert ok
    return head_glb(track, motion.translation, result.duration, rig.points, jpeg.tobytes(), rig.size)


def check_options(options: MotionExportOptions) -> None:
    """Raise TalkfaceError for options that do not fit together."""
    if set(options.extended_shapes) - set("GHX"):
        raise TalkfaceError(
            f"--extended-shapes {options.extended_shapes!r}: only G, H and X are extended shapes"
        )
    if options.portrait is not None and options.format != "gltf":
        raise TalkfaceError(f"--portrait applies to --format gltf only, not {options.format}")
    if options.portrait is not None and not Path(options.portrait).is_file():
        raise TalkfaceError(f"portrait file not found: {options.portrait}")


def export_motion(
    audio: str | Path,
    output: str | Path,
    options: MotionExportOptions | None = None,
    transcript: str | None = None,
) -> Path:
    """Write the motion for `audio` (any file PyAV decodes, up to 30 minutes) in options.format to `output`
    atomically; returns its path. transcript: the words spoken (English), aligned so that phonemes drive the
    mouth (else the learned generator and the viseme and Rhubarb formats recognise phones in the audio).
    Raises TalkfaceError (one line) for bad input, before anything is written."""
    options = options or MotionExportOptions()
    output = check_output(output, options.format)
    check_options(options)
    reader = AudioReader(audio)
    sound = reader.read()
    rig = None
    if options.portrait is not None:  # a portrait without a face fails before the motion is made
        from talkface.face.image import load_image
        from talkface.face.rig import build_rig

        rig = build_rig(load_image(options.portrait), options.texture_size)
    result = motion_for(sound, options, transcript)
    log.info(
        "%d frames of motion at %g fps for %.2f s of audio", len(result.motion), options.fps, sound.duration
    )
    data = encode(result, options, output, Path(audio), rig)
    return write_atomic(output, data)
