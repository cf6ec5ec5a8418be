"""The portrait's analysis kept on disk for the offline jobs (Engine(cached=True): animate, say, drive). What
mediapipe finds in a portrait (the face's landmarks, and the person mask of its crop) costs about 0.2 s of
CPU at a job's start, half of it mediapipe's import; a portrait animated again (another clip, another take)
gets it from the cache, and the job never imports mediapipe.

An entry is keyed by the decoded portrait's pixels, the crop (size, head distance), the source of the code
that analyses it and the versions of mediapipe, OpenCV and numpy, so it only ever holds what the analysis
would find again: a rig from the cache is the rig built afresh, to the bit. Entries (1 MB for a 512 crop)
live in $XDG_CACHE_HOME/talkface/portraits (~/.cache/talkface/portraits), at most MAX_BYTES of them (the
least recently used go), are written atomically, and one that cannot be read or does not hold what it
should is ignored and written anew. TALKFACE_NO_CACHE=1 turns the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from talkface.face import topology as T
from talkface.face.landmarks import Found, Landmarks, find_face
from talkface.face.rig import FaceRig, build_rig

log = logging.getLogger(__name__)

FORMAT = 1  # bump when an entry's contents change
MAX_BYTES = 256 * 2**20  # beyond this, the least recently used entries are deleted
# The modules whose code decides what an entry holds: a change to any of them is a new key.
_ANALYSIS_SOURCES = ("cache.py", "landmarks.py", "rig.py", "topology.py")


def cache_dir() -> Path | None:
    """Where entries live, or None when TALKFACE_NO_CACHE turns the cache off."""
    if os.environ.get("TALKFACE_NO_CACHE", "") not in ("", "0"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "talkface" / "portraits"


def portrait_rig(portrait: np.ndarray, size: int, *, head_distance: float = 1.0) -> FaceRig:
    """build_rig(portrait, size, head_distance=head_distance), with the face's landmarks and the person mask
    from the cache when this portrait was analysed before at this size and head distance. The same rig
    either way, and the same messages (several faces, a face found only in a changed copy)."""
    folder = cache_dir()
    path = folder / f"{_key(portrait, size, head_distance)}.npz" if folder else None
    entry = _read(path, size) if path else None
    if entry is not None:
        found, person = entry
        log.debug("the portrait's analysis is from the cache (%s)", path)
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept (_evict)
        found.report("the portrait")
        return build_rig(portrait, size, found.face, head_distance, person=person)
    found = find_face(portrait)
    found.report("the portrait")
    rig = build_rig(portrait, size, found.face, head_distance)
    if path:
        _write(path, found, rig.person)
    return rig


def _key(portrait: np.ndarray, size: int, head_distance: float) -> str:
    digest = hashlib.blake2b(digest_size=20)
    here = Path(__file__).parent
    for name in _ANALYSIS_SOURCES:
        digest.update((here / name).read_bytes())
    mediapipe = importlib.util.find_spec("mediapipe")  # its __init__ names its version; not imported
    if mediapipe is not None and mediapipe.origin:
        digest.update(Path(mediapipe.origin).read_bytes())
    image = np.ascontiguousarray(portrait)
    versions = f"{FORMAT} {cv2.__version__} {np.__version__}"
    digest.update(f"{versions} {image.shape} {image.dtype} {size} {head_distance!r}".encode())
    digest.update(memoryview(image).cast("B"))
    return digest.hexdigest()


def _read(path: Path, size: int) -> tuple[Found, np.ndarray] | None:
    """The entry at `path` (the finding and the person mask (size, size) float32), or None when there is
    none or it is unreadable or malformed (then it is rewritten)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            points, faces, view, person = f["points"], int(f["faces"]), str(f["view"]), f["person"]
    except FileNotFoundError:
        return None
    except Exception as e:  # a truncated or foreign file: analyse again
        log.debug("ignoring the cache entry %s: %s", path, e)
        return None
    if (
        points.shape != (T.N_POINTS, 3)
        or points.dtype != np.float32
        or person.shape != (size, size)
        or person.dtype != np.float32
        or faces < 1
    ):
        log.debug("ignoring the cache entry %s: not what an entry holds", path)
        return None
    return Found(Landmarks(points), faces, view), person


def _write(path: Path, found: Found, person: np.ndarray | None) -> None:
    """Write an entry atomically (a temporary file renamed over it). A cache that cannot be written (a
    read-only home) is skipped: it only saves time."""
    if person is None:
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            tmp = Path(f.name)
            np.savez(f, points=found.face.points, faces=found.faces, view=found.view, person=person)
        os.replace(tmp, path)
    except OSError as e:
        log.debug("cannot write the cache entry %s: %s", path, e)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        return
    _evict(path.parent)


def _evict(folder: Path) -> None:
    """Delete the least recently used entries (a read touches its entry) beyond MAX_BYTES in all."""
    entries = []
    for entry in folder.glob("*.npz"):
        with contextlib.suppress(OSError):  # another process may delete it meanwhile
            entries.append((entry.stat(), entry))
    entries.sort(key=lambda e: e[0].st_mtime, reverse=True)
    total = 0
    for stat, entry in entries:
        total += stat.st_size
        if total > MAX_BYTES:
            with contextlib.suppress(OSError):
                entry.unlink()
