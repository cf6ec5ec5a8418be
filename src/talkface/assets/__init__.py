"""Small shipped files (made by training/make_demo_assets.py): the sample portrait and speech."""

from importlib.resources import as_file, files
from pathlib import Path


def asset_path(name: str) -> Path:
    """Filesystem path of a shipped asset (the package is installed as files, so this is stable)."""
    with as_file(files(__name__) / name) as p:
        return Path(p)
