"""Small shipped files (made by training/): the sample portrait and speech, the expression basis, the motion
model; and the one way models are loaded (load_model)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.resources import as_file, files
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_models: dict[tuple[Callable, Path], object] = {}
_models_lock = threading.Lock()


def asset_path(name: str) -> Path:
    """Filesystem path of a shipped asset (the package is installed as files, so this is stable)."""
    with as_file(files(__name__) / name) as p:
        return Path(p)


def load_model(loader: Callable[[Path], T], path: str | Path | None = None, shipped: str | None = None) -> T:
    """loader(path), once per process for each loader and file: `path`, or the shipped asset `shipped` when
    path is None. Models are read-only once loaded, so every caller shares one; a retrained model given by
    path is loaded beside the shipped one, never in its place. Thread-safe."""
    if path is None:
        if shipped is None:
            raise ValueError("load_model needs a path or the name of a shipped asset")
        path = asset_path(shipped)
    key = (loader, Path(path).resolve())
    with _models_lock:
        if key not in _models:
            _models[key] = loader(key[1])
        return _models[key]  # type: ignore[return-value]
