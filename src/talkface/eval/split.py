"""The speaker-disjoint train / validation split of the development clips (../shared/data/talking).

split.json (package data) holds clip file names and speaker labels only, never media. Training code may
use only the train clips; numbers are quoted on the validation clips. Every clip of a speaker is on one
side. Regenerate split.json from the data set's manifest with

    python -m talkface.eval.split ../shared/data/manifest.tsv
"""

from __future__ import annotations

import csv
import json
import re
import sys
from importlib.resources import files
from pathlib import Path

from talkface.config import SPLITS
from talkface.errors import TalkfaceError

# 19 of the 51 speakers (37%, 20 of 63 clips, 2.3 of 11.7 minutes), from every kind of source. The 8 of
# the first split stay (so that numbers stay comparable across rounds): two GRID speakers (studio, 3 s,
# silence at both ends), two MEAD actors (1080p, emotional), one LRS3/TED speaker (a 2 s cut), two named
# public figures (a 256 px styletalk crop, an AniPortrait 512 px clip) and the singer (not speech: a stress
# test). Added with the grown set: six VoxCeleb2 speakers (224 px interview crops; 00010 shares face group
# fg02 with the LRS3 speaker), the LRS2 speaker (160 px, two clips), a DFDC participant (1080p, small face,
# glasses), the LIA VoxCeleb young man, Donald Trump and the German news presenter (not English). Obama's six
# clips, the long news-anchor and Macron clips stay in train: they are most of its minutes.
VALIDATION_SPEAKERS = (
    "GRID speaker B",
    "GRID speaker H",
    "MEAD actor M026",
    "MEAD actor W023",
    "LRS3 speaker (TED video QoT0S2vu9m4) [group fg02]",
    "Kristi Noem",
    "Theresa May",
    "unnamed singer in red beret (AniPortrait Aragaki driving video)",
    "VoxCeleb2 speaker: man with glasses, seaside background (PC-AVS 00010) [group fg02]",
    "VoxCeleb2 speaker: man in suit and tie, red TV-show set (PC-AVS 00086)",
    "VoxCeleb2 speaker: bald older man (PC-AVS 00473)",
    "VoxCeleb2 speaker: bald man in dark jacket (PC-AVS 620900105)",
    "VoxCeleb2 speaker: bearded dark-haired man in black shirt (PC-AVS 731200067)",
    "VoxCeleb2 speaker: dark-haired man in navy shirt, TV studio (PC-AVS 796100172)",
    "LRS2 speaker: grey-haired man with stubble, outdoors (unmute_the_muted demo 00001/00002)",
    "unnamed DFDC participant with glasses (lynaeydofd)",
    "unnamed young man (LIA vox driving2)",
    "Donald Trump (d38.jpg, TPSMM source: Trump-like)",
    "unnamed male news presenter (MimicTalk German_20s)",
)


def _speaker_group(speaker: str) -> str:
    """The manifest's speaker label without its `[group vgNN]`/`[group fgNN]` tag, or the tag itself when
    present (a voice group or a face group must stay on one side)."""
    tag = re.search(r"\[group ((?:vg|fg)\d+)\]", speaker)
    return tag.group(1) if tag else speaker.strip()


def build_split(manifest: str | Path) -> dict:
    """The split of the manifest's `talking/` rows: {"validation": [file names], "train": [...],
    "speakers": {"validation": [...], "train": [...]}}, names sorted."""
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["file"].startswith("talking/")]
    unknown = set(VALIDATION_SPEAKERS) - {r["speaker"] for r in rows}
    if unknown:
        raise TalkfaceError(f"validation speakers not in {manifest}: {', '.join(sorted(unknown))}")
    groups_val = {_speaker_group(s) for s in VALIDATION_SPEAKERS}
    out: dict = {"validation": [], "train": [], "speakers": {"validation": set(), "train": set()}}
    for r in rows:
        side = "validation" if _speaker_group(r["speaker"]) in groups_val else "train"
        out[side].append(Path(r["file"]).name)
        out["speakers"][side].add(r["speaker"])
    assert not out["speakers"]["validation"] & out["speakers"]["train"]
    return {
        "validation": sorted(out["validation"]),
        "train": sorted(out["train"]),
        "speakers": {k: sorted(v) for k, v in out["speakers"].items()},
    }


def load_split() -> dict:
    """The shipped split (see build_split for its layout)."""
    return json.loads((files("talkface.eval") / "split.json").read_text(encoding="utf-8"))


def manifest_speakers(data: str | Path) -> dict[str, str]:
    """Speaker label of every file of the data set (`talking/x.mp4` -> label), from DATA/manifest.tsv."""
    with open(Path(data) / "manifest.tsv", newline="", encoding="utf-8") as f:
        return {r["file"]: r["speaker"] for r in csv.DictReader(f, delimiter="\t")}


def train_clips(data: str | Path) -> list[Path]:
    """What training may learn from: the TRAIN split's talking clips plus every silent clip (the silent clips
    are outside the split), those present under DATA."""
    data = Path(data)
    talking = [data / "talking" / name for name in load_split()["train"]]
    silent = sorted((data / "silent").glob("*.mp4"))
    return [p for p in talking + silent if p.is_file()]


def default_split(clips: list[Path]) -> str:
    """ "validation" when the folder holds every validation clip of the split file (the development set, which
    may have grown since the split was made: clips the file does not name are in neither side), else "all"."""
    names = {c.name for c in clips}
    return "validation" if clips and set(load_split()["validation"]) <= names else "all"


def select(clips: list[Path], split: str) -> list[Path]:
    """The clips on one side of the split ("all" keeps every clip). Raises TalkfaceError when a split is
    asked for on a folder whose clips are not in the split file."""
    if split not in SPLITS:
        raise TalkfaceError(f"--split {split!r} is not one of: {', '.join(SPLITS)}")
    if split == "all":
        return list(clips)
    names = set(load_split()[split])
    chosen = [c for c in clips if c.name in names]
    if not chosen:
        raise TalkfaceError(f"no clip of the {split} split in this folder (use --split all)")
    return chosen


if __name__ == "__main__":
    result = build_split(sys.argv[1])
    path = Path(__file__).with_name("split.json")
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}: {len(result['validation'])} validation, {len(result['train'])} train clips")
