"""Output files: checked before any work is done (a folder given as the output, a place we may not write)."""

from __future__ import annotations

import os
from pathlib import Path

from talkface.errors import TalkfaceError


def check_output(
    output: str | Path, suffixes: tuple[str, ...] = (".mp4", ".m4v", ".mov"), what: str = "an .mp4 file"
) -> Path:
    """The output path, if it names a file (an MP4 by default: `suffixes`, described as `what`) that can be
    written: checked before any work, so that a folder given as the output or a place we may not write fails
    at once. Missing folders are fine (the writer makes them, so a failed run leaves none); the nearest
    existing one must be a writable folder."""
    output = Path(output)
    if output.suffix.lower() not in suffixes:
        raise TalkfaceError(f"output must be {what}, got {output.name or output}")
    if output.is_dir():
        raise TalkfaceError(f"output {output} is a folder; give a file name ending in {suffixes[0]}")
    parent = output.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise TalkfaceError(f"cannot write {output}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise TalkfaceError(f"cannot write {output}: permission denied in {parent}")
    return output
