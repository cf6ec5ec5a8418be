"""Rhubarb Lip Sync's mouth shapes, in the three layouts Rhubarb writes (TSV, JSON, XML), byte for byte as
Rhubarb 1.13 lays them out, so that its integrations (Godot, Spine, After Effects, Moho, OpenToonz, Unity and
many 2D pipelines) read our file unchanged.

The shapes (Rhubarb's documentation, after Hanna-Barbera's mouth chart):
    A  closed mouth (P, B, M)                 B  slightly open, teeth together (most consonants, EE)
    C  open (EH, AE)                          D  wide open (AA)
    E  slightly rounded (AO, ER)              F  puckered (UW, OW, W)
    G  upper teeth on the lower lip (F, V)    H  tongue raised (long L)
    X  idle, at rest (silence)
G, H and X are Rhubarb's "extended" shapes; without one, its basic shape stands in (G -> B, H -> C,
X -> A), as Rhubarb does for --extendedShapes.

Each video frame's shape is read from our motion's mouth (jaw opening, lip rounding), with the phonemes
for the shapes the mouth alone does not tell (lips closed for P/B/M, teeth on lip for F/V, a long L);
consecutive equal shapes make one cue. Times are in centiseconds, as Rhubarb's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from talkface.face.expression import JAW_OPEN, LIP_ROUND
from talkface.motion.contract import MotionSequence, Phoneme

SHAPES = "ABCDEFGHX"
EXTENDED = "GHX"
BASIC_OF = {"G": "B", "H": "C", "X": "A"}
LAYOUTS = {".tsv": "tsv", ".txt": "tsv", ".json": "json", ".xml": "xml"}

# Thresholds on the motion's coefficients (face.expression units: jaw_open 1 = a wide-open mouth), fitted on
# the train split's real talking faces (training/fit_rhubarb.py: the cues' opening follows the real one best).
CLOSED_JAW = 0.02  # below, while speaking: the lips meet (A), or the teeth (B) on a consonant
OPEN_JAW = 0.15  # from here the mouth is open (C); in silence, the rest shape (X) below it
WIDE_JAW = 0.22  # from here wide open (D)
ROUNDED = 0.25  # lip_round from which the lips are rounded (E), and from PUCKERED puckered (F)
PUCKERED = 0.45
LONG_L_S = 0.08  # an L lasting this long shows the raised tongue (H)
# The mouth opening each shape stands for, to compare a Rhubarb file with a real mouth: the real speakers'
# mean opening under each shape on the train split (training/fit_rhubarb.py), in jaw_open units (JAW_GAP eye
# distances) above each speaker's closed mouth. (At rest, X, real mouths are not quite shut.)
OPENING = {
    "A": 0.131, "B": 0.154, "C": 0.186, "D": 0.25, "E": 0.151, "F": 0.122, "G": 0.125, "H": 0.156, "X": 0.126,
}  # fmt: skip


@dataclass(frozen=True)
class MouthCue:
    """One cue: `shape` from `start` to `end` seconds (multiples of 0.01)."""

    start: float
    end: float
    shape: str


def _phoneme_at(phonemes: Sequence[Phoneme], times: np.ndarray) -> list[Phoneme | None]:
    starts = np.array([p.start for p in phonemes])
    idx = np.searchsorted(starts, times, side="right") - 1
    out: list[Phoneme | None] = []
    for t, i in zip(times, idx, strict=True):
        out.append(phonemes[i] if i >= 0 and phonemes[i].end > t else None)
    return out


def frame_shapes(
    motion: MotionSequence, phonemes: Sequence[Phoneme] = (), speaking: np.ndarray | None = None
) -> str:
    """One shape per frame of `motion` (a string of len(motion) letters of SHAPES). speaking: (T,) bool, the
    frames within speech (default: any phoneme that is not a pause around the frame, else an open jaw)."""
    jaw = motion.expression[:, JAW_OPEN].astype(np.float64)
    rnd = motion.expression[:, LIP_ROUND].astype(np.float64)
    n = len(motion)
    times = (np.arange(n) + 0.5) / motion.fps + 0.04  # the lips lead the voice, as the motion's
    phonemes = sorted(phonemes, key=lambda p: p.start)
    at = _phoneme_at(phonemes, times) if phonemes else [None] * n
    if speaking is None:
        if phonemes:
            speaking = np.array([p is not None and not p.symbol.startswith("_") for p in at])
        else:
            speaking = jaw >= CLOSED_JAW
    shapes = []
    for i in range(n):
        p = at[i]
        sym = p.symbol.lstrip("',").replace(":", "") if p is not None else ""
        if not speaking[i]:
            shape = "X" if jaw[i] < OPEN_JAW else ("C" if jaw[i] < WIDE_JAW else "D")
        elif sym[:1] in ("p", "b", "m", "B"):
            shape = "A"
        elif sym[:1] in ("f", "v", "F"):
            shape = "G"
        elif sym[:1] in ("l", "L") and p.end - p.start >= LONG_L_S:
            shape = "H"
        elif jaw[i] < CLOSED_JAW and rnd[i] < ROUNDED:
            shape = "A" if not sym or sym[:1] in ("_",) else "B"
        elif rnd[i] >= PUCKERED and jaw[i] < WIDE_JAW:
            shape = "F"
        elif rnd[i] >= ROUNDED and jaw[i] < WIDE_JAW:
            shape = "E"
        elif jaw[i] >= WIDE_JAW:
            shape = "D"
        elif jaw[i] >= OPEN_JAW:
            shape = "C"
        else:
            shape = "B"
        shapes.append(shape)
    return "".join(shapes)


def to_shape_set(shape: str, extended: str) -> str:
    """A shape in the target set: basic shapes always, of GHX only those in `extended`."""
    return shape if shape not in EXTENDED or shape in extended else BASIC_OF[shape]


def mouth_cues(shapes: str, fps: float, duration: float, extended: str = EXTENDED) -> list[MouthCue]:
    """Cues covering 0..duration (centiseconds): runs of equal shapes in the target set; a run that rounds to
    no centisecond joins its neighbour."""
    end_cs = int(round(duration * 100))
    cues: list[MouthCue] = []
    start_cs = 0
    for i, shape in enumerate(to_shape_set(s, extended) for s in shapes):
        stop_cs = min(int(round((i + 1) / fps * 100)), end_cs)
        if i == len(shapes) - 1:
            stop_cs = end_cs
        if stop_cs <= start_cs:
            continue
        if cues and cues[-1].shape == shape and int(round(cues[-1].end * 100)) == start_cs:
            cues[-1] = MouthCue(cues[-1].start, stop_cs / 100, shape)
        else:
            cues.append(MouthCue(start_cs / 100, stop_cs / 100, shape))
        start_cs = stop_cs
    if not cues:  # as Rhubarb: a zero-length rest shape when there is nothing else
        cues.append(MouthCue(0.0, 0.0, to_shape_set("X", extended)))
    return cues


def _t(seconds: float) -> str:
    """Rhubarb's time format: seconds with two decimals."""
    return f"{seconds:.2f}"


def rhubarb_tsv(cues: list[MouthCue], duration: float, extended: str = EXTENDED) -> str:
    """Rhubarb's TSV: one line per cue, start<TAB>shape, then the end time with the rest shape."""
    lines = [f"{_t(c.start)}\t{c.shape}" for c in cues if c.end > c.start]
    lines.append(f"{_t(duration)}\t{to_shape_set('X', extended)}")
    return "\n".join(lines) + "\n"


def rhubarb_json(cues: list[MouthCue], duration: float, sound_file: str | Path) -> str:
    """Rhubarb's JSON, laid out as Rhubarb writes it (metadata: soundFile, an absolute path, and duration)."""
    head = (
        "{\n"
        '  "metadata": {\n'
        f'    "soundFile": {json.dumps(str(Path(sound_file).absolute()), ensure_ascii=False)},\n'
        f'    "duration": {_t(duration)}\n'
        "  },\n"
        '  "mouthCues": [\n'
    )
    body = ",\n".join(
        f'    {{ "start": {_t(c.start)}, "end": {_t(c.end)}, "value": "{c.shape}" }}' for c in cues
    )
    return head + body + "\n  ]\n}\n"


def rhubarb_xml(cues: list[MouthCue], duration: float, sound_file: str | Path) -> str:
    """Rhubarb's XML (as boost's property-tree writer lays it out, two-space indent)."""
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        "<rhubarbResult>",
        "  <metadata>",
        f"    <soundFile>{escape(str(Path(sound_file).absolute()))}</soundFile>",
        f"    <duration>{_t(duration)}</duration>",
        "  </metadata>",
        "  <mouthCues>",
        *(
            f"    <mouthCue start={quoteattr(_t(c.start))} end={quoteattr(_t(c.end))}>{c.shape}</mouthCue>"
            for c in cues
        ),
        "  </mouthCues>",
        "</rhubarbResult>",
    ]
    return "\n".join(lines) + "\n"


def opening_from_cues(cues: list[MouthCue], n_frames: int, fps: float) -> np.ndarray:
    """The mouth opening an animation of the cues shows at each frame's centre, (n_frames,) in jaw_open
    units (OPENING): to compare a Rhubarb file with a real mouth."""
    out = np.zeros(n_frames)
    times = (np.arange(n_frames) + 0.5) / fps
    for c in cues:
        sel = (times >= c.start) & (times < c.end)
        out[sel] = OPENING[c.shape]
    return out


def parse_tsv(text: str) -> list[MouthCue]:
    """Cues from Rhubarb's TSV (its last line, the end time, closes the last cue)."""
    rows = [line.split("\t") for line in text.strip().splitlines()]
    cues = []
    for (start, shape), (end, _) in zip(rows, rows[1:], strict=False):
        if not (math.isfinite(float(start)) and shape in SHAPES):
            raise ValueError(f"bad Rhubarb TSV line: {start}\t{shape}")
        cues.append(MouthCue(float(start), float(end), shape))
    return cues
