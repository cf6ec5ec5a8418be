"""One source of defaults for the API and the CLI.

The CLI is generated from these dataclasses (see cli.py): a field's `metadata["help"]` is its help text,
`metadata["check"]` a (low, high) range and `metadata["choices"]` the allowed values, which both the API
and the CLI enforce.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from talkface.errors import TalkfaceError

# Longest audio we accept, in seconds. Features for 30 min are ~20 MB; frames stream, so the limit
# guards the user's time (a 30-min video takes ~10 min to render), not memory.
MAX_AUDIO_SECONDS = 30 * 60


def _opt(
    default,
    help: str,
    check: tuple[float, float] | None = None,
    choices: tuple[str, ...] | None = None,
    parse=None,
):
    """A dataclass field with CLI metadata. parse: str -> value for the CLI (default: the default's type)."""
    return field(default=default, metadata={"help": help, "check": check, "choices": choices, "parse": parse})


def parse_pair(text: str) -> tuple[float, float]:
    """'A,B' -> (A, B) floats (for --gaze)."""
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"expected two numbers like 5,-3, got {text!r}") from None
    return a, b


# The emotions the face can show (each a combination of action units, face.action_units); "neutral" is none.
EMOTIONS = ("happy", "sad", "angry", "surprised", "disgusted", "fearful", "contemptuous")


# An emotion track (Steering.emotion): keyframes NAME[:STRENGTH]@SECONDS. From its time, each keyframe eases
# the face from the emotion it shows then to its own over this many seconds (a cosine ease: no jolt at either
# end; 0.6 s is about the onset of a posed expression).
EMOTION_TRANSITION_S = 0.6
EMOTION_STRENGTH_RANGE = (0.0, 1.5)  # an emotion's strength: 0 none, 1 as in the labelled clips


@dataclass(frozen=True)
class EmotionKey:
    """One keyframe of an emotion track: from `time` (seconds) the face turns to `emotion` ("neutral" or one
    of EMOTIONS) at `strength` (None: the controls' emotion_strength)."""

    time: float
    emotion: str
    strength: float | None = None

    def __str__(self) -> str:
        strength = "" if self.strength is None else f":{_number(self.strength)}"
        return f"{self.emotion}{strength}@{_number(self.time)}"


@dataclass(frozen=True)
class EmotionTrack:
    """Emotion over time (motion.controls.emotion_rows gives its rows): keyframes at increasing times from
    0 s. The face is neutral before the first keyframe, a keyframe at 0 s holds from the first frame, and
    every other keyframe starts an ease of EMOTION_TRANSITION_S at its time, from the emotion shown then (a
    transition under way included) to its own. Raises TalkfaceError for an unknown emotion, a negative or
    non-increasing time, or a strength outside EMOTION_STRENGTH_RANGE. str() is its text (parse_emotion)."""

    keys: tuple[EmotionKey, ...]

    def __post_init__(self):
        names, lo, hi = ("neutral", *EMOTIONS), *EMOTION_STRENGTH_RANGE
        if not self.keys:
            raise TalkfaceError("--emotion has no keyframe")
        for i, key in enumerate(self.keys):
            if key.emotion not in names:
                raise TalkfaceError(f"--emotion {key.emotion!r} is not one of: {', '.join(names)}")
            if key.time < 0 or not math.isfinite(key.time):
                why = "negative" if key.time < 0 else "not a finite number"
                raise TalkfaceError(f"--emotion {key}: the keyframe time {key.time:g} s is {why}")
            if i and key.time <= self.keys[i - 1].time:
                raise TalkfaceError(
                    f"--emotion keyframe times must increase: {key} comes after {self.keys[i - 1]}"
                )
            if key.strength is not None and key.emotion == "neutral":
                raise TalkfaceError(f"--emotion {key}: neutral takes no strength")
            if key.strength is not None and not lo <= key.strength <= hi:
                raise TalkfaceError(
                    f"--emotion {key}: strength {key.strength:g} is out of range: it must be between "
                    f"{lo:g} and {hi:g}"
                )

    def __str__(self) -> str:
        if len(self.keys) == 1 and self.keys[0].time == 0:  # a constant emotion: "happy", "happy:0.8"
            return str(self.keys[0]).removesuffix("@0")
        return ",".join(map(str, self.keys))


def parse_emotion(text: str) -> EmotionTrack:
    """An emotion or an emotion track as text -> EmotionTrack. "happy" (from 0 s, at the controls'
    emotion_strength), "happy:0.8" (at strength 0.8), or keyframes NAME[:STRENGTH]@SECONDS separated by
    commas: "neutral@0,happy:0.8@2.5,sad@6". Raises TalkfaceError naming the problem, in one line."""
    keys = []
    for item in str(text).split(","):
        name_strength, at, time = item.strip().partition("@")
        name, colon, strength = name_strength.strip().partition(":")
        try:
            key = EmotionKey(float(time) if at else 0.0, name.strip(), float(strength) if colon else None)
        except ValueError:
            raise TalkfaceError(
                f"--emotion {text!r}: {item.strip()!r} is not NAME[:STRENGTH][@SECONDS] like happy:0.8@2.5"
            ) from None
        keys.append(key)
    return EmotionTrack(tuple(keys))


def _number(x: float) -> str:
    """A number as an emotion track's text writes it: short, and read back as the same float."""
    return f"{x:g}" if float(f"{x:g}") == x else repr(float(x))


class _Checked:
    def __post_init__(self):
        check_ranges(self)


@dataclass(frozen=True)
class Steering(_Checked):
    """What steers any motion, generated or captured from a driving video."""

    motion_scale: float = _opt(1.0, "head motion amplitude (0 holds the head still)", (0.0, 3.0))
    expression_scale: float = _opt(1.0, "mouth and face expression amplitude", (0.0, 2.0))
    gaze: tuple[float, float] = _opt(
        (0.0, 0.0),
        "main gaze direction YAW,PITCH in degrees, relative to the portrait's (+yaw: right, +pitch: down)",
        (-25.0, 25.0),
        parse=parse_pair,
    )
    emotion: EmotionTrack = _opt(
        EmotionTrack((EmotionKey(0.0, "neutral"),)),
        f"emotion offset learned from labelled clips: NAME ({', '.join(('neutral', *EMOTIONS))}) at "
        "--emotion-strength, NAME:STRENGTH, or a track of keyframes NAME[:STRENGTH]@SECONDS such as "
        "neutral@0,happy:0.8@2.5,sad@6: from its time, each keyframe eases to its emotion over "
        f"{EMOTION_TRANSITION_S:g} s (neutral before the first keyframe)",
        parse=str,  # the text, parsed by parse_emotion when the options are made (its errors are one line)
    )
    emotion_strength: float = _opt(
        0.7, "strength of --emotion's keyframes that give none", EMOTION_STRENGTH_RANGE
    )

    def __post_init__(self):
        # emotion: an EmotionTrack, its text, or the emotion of a live stream, changed while it plays
        # (motion.controls.LiveEmotion, the live Session's); the text becomes a track.
        if isinstance(self.emotion, str):
            object.__setattr__(self, "emotion", parse_emotion(self.emotion))
        elif not hasattr(self.emotion, "keys"):
            raise TalkfaceError(f"--emotion must be an emotion track or its text, got {self.emotion!r}")
        super().__post_init__()


@dataclass(frozen=True)
class MotionControls(Steering):
    """What a motion generator is given besides the audio (motion.contract): the steering and the seed."""

    seed: int = _opt(0, "random seed: the same inputs and seed give identical frames", (0, 2**31 - 1))


@dataclass(frozen=True)
class RenderOptions(_Checked):
    """How motion becomes pixels and a file."""

    size: int = _opt(512, "output width and height in pixels", (128, 2048))
    crf: int = _opt(18, "H.264 quality (lower is better)", (0, 51))
    label: bool = _opt(False, "add a small visible 'AI-generated' mark in a corner")
    full_frame: bool = _opt(False, "paste the animated face back into the whole portrait (at most 1920 px)")
    head_distance: float = _opt(
        1.0, "framing: above 1 the face is smaller (further away), below 1 larger", (0.6, 1.8)
    )
    neutralize: bool = _opt(
        False,
        "take the portrait's own expression (a smile) away for the whole video; by default the face keeps "
        "its character, and an emotion replaces its expression",
    )


@dataclass(frozen=True)
class AnimateOptions(MotionControls, RenderOptions):
    """Everything animate, say, demo and a live Session take (a Session's generator defaults to the live
    one)."""

    fps: float = _opt(25.0, "output frame rate", (1.0, 60.0))
    generator: str = _opt(
        "learned",
        "motion generator: learned (trained on real talking faces; its mouth reads phones recognised in "
        "the audio), rules (hand-made phonetic and acoustic rules), or loudness (a naive baseline for "
        "evaluation)",
        choices=("rules", "learned", "loudness"),
    )
    motion_model: str | None = _opt(
        None,
        "the learned generator's model: an .onnx file with its .json beside it, used instead of the shipped "
        "one (to compare a retrained model; default: the shipped model)",
        parse=str,
    )

    def controls(self) -> MotionControls:
        """The fields of these options that steer the motion generator."""
        return MotionControls(**{f.name: getattr(self, f.name) for f in dataclasses.fields(MotionControls)})


@dataclass(frozen=True)
class DriveOptions(Steering, RenderOptions):
    """What drive takes: the motion comes from the driving video (no generator, no seed), steered like a
    generator's."""

    fps: float | None = _opt(
        None, "output frame rate (default: the driving video's, at most 60)", (1.0, 60.0), parse=float
    )


def check_ranges(options) -> None:
    """Raise TalkfaceError naming the first field outside its documented range or choices. None (unset) is
    not checked; each item of a tuple is (gaze's two angles, eval's generators)."""
    for f in dataclasses.fields(options):
        value, choices, rng = getattr(options, f.name), f.metadata.get("choices"), f.metadata.get("check")
        if value is None:
            continue
        name = f.name.replace("_", "-")
        for v in value if isinstance(value, tuple) else (value,):
            if choices and v not in choices:
                raise TalkfaceError(f"--{name} {v!r} is not one of: {', '.join(choices)}")
            if rng and isinstance(v, float) and not math.isfinite(v):
                raise TalkfaceError(f"--{name} {v}: not a finite number")
            if rng and not rng[0] <= v <= rng[1]:
                lo, hi = (str(x) if isinstance(x, int) else f"{x:g}" for x in rng)
                raise TalkfaceError(f"--{name} {v} is out of range: it must be between {lo} and {hi}")


# --- The other commands' options. Their flags are generated like AnimateOptions' (cli._add_options). ----

DEFAULT_VOICE = "en-us"  # espeak-ng voice of `talkface say` (talkface.say)
SAMPLE_RATE_RANGE = (8000, 192000)  # live audio sample rates accepted (Hz), by Session and the server
SPLITS = ("validation", "train", "all")  # clip splits of the development set (talkface.eval.split)


def _metadata(cls, name: str, key: str):
    """One field's metadata, to share a range or choices between options classes."""
    return next(f for f in dataclasses.fields(cls) if f.name == name).metadata[key]


@dataclass(frozen=True)
class ServerSettings(_Checked):
    """`talkface serve` (talkface.stream.server): where it listens, and the limits that keep one server
    responsive whatever its clients send."""

    host: str = _opt("127.0.0.1", "address to listen on")
    port: int = _opt(8000, "port", (0, 65535))
    max_sessions: int = _opt(
        3,
        "live sessions at once (WebSocket and WebRTC); more get 'busy'. One 512 x 512 session at 25 fps "
        "takes about 0.55 of a core (WebRTC, VP8 included: scripts/webrtc_load.py), so two cores hold 3 "
        "with session processes; in one process they shared one core (the GIL) and held 2",
        (1, 1024),
    )
    session_processes: bool = _opt(
        True,
        "run each live session in a process of its own (talkface.stream.worker), so that sessions render "
        "on every core instead of sharing one in the server's process (numpy holds the GIL)",
    )
    idle_timeout: float = _opt(
        60.0,
        "seconds without a message from a client (pings do not count) before its socket closes",
        (0.1, 86400.0),
    )
    start_deadline: float = _opt(
        10.0, "seconds a new WebSocket client has to send its start message", (0.1, 3600.0)
    )
    allowed_origins: str = _opt(
        "",
        "comma-separated origins (scheme://host:port, or *) whose pages may use the server, besides its own "
        "and localhost's; clients that send no Origin (not browsers) are always allowed",
    )
    upload_timeout: float = _opt(
        30.0, "seconds a client has to send a portrait upload's whole body", (0.1, 3600.0)
    )
    header_timeout: float = _opt(
        10.0,
        "seconds a connection has to send a request's headers (from connecting, or from its first byte "
        "after a keep-alive pause); a stalled one is closed",
        (0.1, 3600.0),
    )
    max_connections: int = _opt(
        256,
        "open HTTP and WebSocket connections at once; more are answered 503 (bounds the sockets and memory "
        "that idle or stalled clients can hold)",
        (4, 100_000),
    )
    max_upload_bytes: int = _opt(10 * 1024 * 1024, "portrait upload size in bytes", (1024, 2**30))
    max_upload_pixels: int = _opt(40_000_000, "decoded portrait size in pixels", (1, 10**9))
    max_portrait_side: int = _opt(
        2048, "uploads are stored downscaled to this side in pixels (a 512 crop needs no more)", (128, 8192)
    )
    max_decode_bytes: int = _opt(
        192 * 1024 * 1024,
        "memory one upload's decoding may take in bytes, reckoned from its header before decoding (pixels "
        "x bytes per pixel at the peak: a 30-megapixel RGB PNG fits, a 12-megapixel RGBA one, and a JPEG of "
        "any size, decoded downscaled); more is refused with 413",
        (1024 * 1024, 2**34),
    )
    max_portraits: int = _opt(16, "uploads kept in memory, least recently used dropped first", (1, 10_000))
    max_size: int = _opt(
        512, "largest frame side a client may ask for", _metadata(AnimateOptions, "size", "check")
    )
    max_fps: float = _opt(
        30.0, "highest frame rate a client may ask for", _metadata(AnimateOptions, "fps", "check")
    )
    jpeg_quality: int = _opt(85, "JPEG quality of the frames sent", (1, 100))
    max_chunk_seconds: float = _opt(2.0, "longest single audio message in seconds", (0.01, 60.0))
    max_stream_seconds: float = _opt(
        float(MAX_AUDIO_SECONDS), "audio per stream (between resets) in seconds", (1.0, 86400.0)
    )
    max_lead_seconds: float = _opt(
        5.0,
        "audio a client may send ahead of real time, in seconds; beyond it, its messages are read at the "
        "pace of real time (one client cannot take the others' CPU by sending audio faster)",
        (0.1, 3600.0),
    )
    max_render_lag: float = _opt(
        1.5,
        "seconds a frame may be late (after its audio was due, at real-time pace) before the frames waiting "
        "to be rendered are skipped to the newest; the client is told with a 'behind' message (WebSocket; "
        "a WebRTC peer's tracks go on from the present once 0.1 s late)",
        (0.1, 3600.0),
    )
    max_queued_seconds: float = _opt(
        2.0,
        "frames waiting for a slow client beyond this many seconds are dropped, oldest first",
        (0.1, 60.0),
    )
    start_timeout: float = _opt(
        120.0, "seconds allowed for the portrait analysis (face mesh, rig) of one start", (1.0, 3600.0)
    )


@dataclass(frozen=True)
class EvalOptions:
    """`talkface eval` (talkface.eval.report.run_eval)."""

    generators: tuple[str, ...] = _opt(
        ("learned", "rules", "loudness"),
        "generator to evaluate; repeat for several",
        choices=_metadata(AnimateOptions, "generator", "choices"),
    )
    size: int = _opt(
        256,
        "render size in pixels (256: the face mesh sees the face at the resolution of most real clips, and "
        "renders twice as fast as at 512)",
        _metadata(AnimateOptions, "size", "check"),
    )
    seed: int = _opt(
        0,
        "random seed of the generators: each clip's seed comes from it and the clip's name",
        _metadata(AnimateOptions, "seed", "check"),
    )
    limit: int | None = _opt(
        None, "evaluate only the first N clips (default: all)", (0, 2**31 - 1), parse=int
    )
    split: str | None = _opt(
        None,
        "clips to use (default: validation for the development set, all for any other folder)",
        choices=SPLITS,
        parse=str,
    )
    motion_model: str | None = _opt(
        None,
        "the learned generator's model (.onnx, its .json beside it) instead of the shipped one",
        parse=str,
    )
    keep_videos: bool = _opt(True, "keep the rendered videos in REPORT/videos")
    reenact: bool = _opt(True, "measure self-reenactment (the renderer driven by each clip's own motion)")

    def __post_init__(self):
        check_ranges(self)
        if not self.generators:
            raise TalkfaceError("no generator to evaluate")


@dataclass(frozen=True)
class BenchOptions(_Checked):
    """`talkface bench` (talkface.eval.bench.run_bench): the bundled speech, looped."""

    seconds: float = _opt(10.0, "length of the benchmark audio in seconds", (1.0, 600.0))
    size: int = _opt(512, "frame width and height in pixels", _metadata(AnimateOptions, "size", "check"))


@dataclass(frozen=True)
class BatchOptions(_Checked):
    """`talkface batch` (talkface.batch.run_batch): where the jobs run."""

    workers: int | None = _opt(
        None,
        "worker processes (with --ray local: the Ray instance's CPUs); default one per core",
        (1, 1024),
        parse=int,
    )
    ray: str | None = _opt(
        None,
        "run the jobs as Ray tasks (the ray extra, requirements-ray.lock): local (start Ray here), auto (the "
        "cluster this machine belongs to) or a cluster address such as ray://head:10001",
        parse=str,
    )


@dataclass(frozen=True)
class VerifyOptions(_Checked):
    """`talkface verify` (talkface.video.watermark.detect_video): which frames are read."""

    frames: int = _opt(40, "frames to read from the start of the video", (1, 100_000))
    stride: int = _opt(2, "read every STRIDE-th frame", (1, 1000))


MOTION_FORMATS = ("arkit", "arkit-csv", "visemes", "rhubarb", "gltf")  # `talkface motion --format`


@dataclass(frozen=True)
class MotionExportOptions(MotionControls):
    """`talkface motion` (talkface.export.job.export_motion): the motion for game engines and 3D tools, no
    pixels; the steering and the seed act as in animate."""

    format: str = _opt(
        "arkit",
        "arkit: ARKit's 52 blendshapes + head and eye rotation (JSON); arkit-csv: the same as Live Link "
        "Face's CSV; visemes: Oculus' 15 visemes (JSON); rhubarb: Rhubarb Lip Sync's mouth cues (TSV, JSON "
        "or XML by the output's extension); gltf: an animated head (.glb) with the blendshapes as morph "
        "targets",
        choices=MOTION_FORMATS,
    )
    fps: float = _opt(
        AnimateOptions.fps, "frames per second of the motion", _metadata(AnimateOptions, "fps", "check")
    )
    generator: str = _opt(
        AnimateOptions.generator,
        "motion generator (as animate's)",
        choices=_metadata(AnimateOptions, "generator", "choices"),
    )
    motion_model: str | None = _opt(
        None,
        "the learned generator's model (.onnx, its .json beside it) instead of the shipped one",
        parse=str,
    )
    portrait: str | None = _opt(
        None,
        "gltf: an image whose face gives the head its shape and texture (default: a plain face)",
        parse=str,
    )
    texture_size: int = _opt(512, "gltf: the portrait texture's side in pixels", (128, 2048))
    extended_shapes: str = _opt(
        "GHX",
        "rhubarb: which of the extended mouth shapes G, H, X to use, as Rhubarb's --extendedShapes ('' for "
        "none: B, C and A stand in)",
    )


# --- Portrait images (talkface.face.image.load_image) ---------------------------------------------------
# Only a crop around the face is rendered, so large photos are decoded downscaled (JPEG while decoding).
# The header is checked before anything is decoded: a small file can declare a huge image (a
# decompression bomb).
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")  # Pillow's names; JPEG opens phones' MPO too
MAX_IMAGE_PIXELS = 160_000_000  # declared width x height; the largest camera sensors make ~150 MP
MAX_DECODE_BYTES = 512 * 2**20  # memory of one decode at full size (formats without downscaled decoding)
MAX_PORTRAIT_SIDE = 4096  # px: a larger portrait is downscaled to this longer side (a face crop needs less)
MIN_PORTRAIT_SIDE = 32  # px: a smaller image cannot hold a face the face mesh finds
