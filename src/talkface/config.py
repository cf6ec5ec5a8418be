"""One source of defaults for the API and the CLI.

The CLI is generated from these dataclasses (see cli.py): a field's `metadata["help"]` is its help text,
`metadata["check"]` a (low, high) range and `metadata["choices"]` the allowed values, which both the API
and the CLI enforce.
"""

from __future__ import annotations

import dataclasses
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


@dataclass(frozen=True)
class AnimateOptions:
    size: int = _opt(512, "output width and height in pixels", (128, 2048))
    fps: float = _opt(25.0, "output frame rate", (1.0, 60.0))
    seed: int = _opt(0, "random seed: the same inputs and seed give identical frames", (0, 2**31 - 1))
    motion_scale: float = _opt(1.0, "head motion amplitude (0 holds the head still)", (0.0, 3.0))
    expression_scale: float = _opt(1.0, "mouth and face expression amplitude", (0.0, 2.0))
    crf: int = _opt(18, "H.264 quality (lower is better, 0-51)", (0, 51))
    gaze: tuple[float, float] = _opt(
        (0.0, 0.0),
        "main gaze direction YAW,PITCH in degrees, relative to the portrait's (+yaw: right, +pitch: down)",
        (-25.0, 25.0),
        parse=parse_pair,
    )
    emotion: str = _opt(
        "neutral",
        "emotion offset learned from labelled clips",
        choices=("neutral", "happy", "sad", "angry", "surprised", "disgusted"),
    )
    emotion_strength: float = _opt(0.7, "strength of --emotion", (0.0, 1.5))
    label: bool = _opt(False, "add a small visible 'AI-generated' mark in a corner")
    full_frame: bool = _opt(False, "paste the animated face back into the whole portrait (at most 1920 px)")
    head_distance: float = _opt(
        1.0, "framing: above 1 the face is smaller (further away), below 1 larger", (0.6, 1.8)
    )
    generator: str = _opt(
        "learned",
        "motion generator: learned (trained on real talking faces; its mouth reads phones recognised in "
        "the audio), rules (hand-made phonetic and acoustic rules), or loudness (a naive baseline for "
        "evaluation)",
        choices=("rules", "learned", "loudness"),
    )

    def __post_init__(self):
        check_ranges(self)


def check_ranges(options) -> None:
    """Raise TalkfaceError naming the first field outside its documented range."""
    for f in dataclasses.fields(options):
        rng = f.metadata.get("check")
        value = getattr(options, f.name)
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            name = f.name.replace("_", "-")
            raise TalkfaceError(f"--{name} {value!r} is not one of: {', '.join(choices)}")
        if rng is None:
            continue
        lo, hi = rng
        if not all(lo <= v <= hi for v in (value if isinstance(value, tuple) else (value,))):
            name = f.name.replace("_", "-")
            raise TalkfaceError(f"--{name} {value} is out of range: it must be between {lo:g} and {hi:g}")


def with_overrides(options, **overrides):
    """dataclasses.replace that ignores None values (unset CLI flags)."""
    return dataclasses.replace(options, **{k: v for k, v in overrides.items() if v is not None})
