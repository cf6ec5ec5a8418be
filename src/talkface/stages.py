"""How far a job's slow stages before its first frame are: the voice found in a long recording (about 9 ms of
CPU per second of it), phones recognised in the whole audio (about 50 ms) and, for a voice over music, the
voice separated from the music (about 100 ms). On a long recording they take minutes before a frame
renders, so they report to whoever listens: the `talkface` command shows them on its progress line.

    with stages.listening(lambda stage, fraction: print(stage, fraction)):
        talkface.animate(...)

One listener per process (the stages run on the job's threads, not the caller's), called from those threads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

Listener = Callable[[str, float], None]  # (what is being done, fraction done 0..1)

_listener: Listener | None = None


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send the stages' reports to `listener` while the block runs."""
    global _listener
    previous, _listener = _listener, listener
    try:
        yield
    finally:
        _listener = previous


def report(stage: str, fraction: float) -> None:
    """Say that `stage` is `fraction` done (0..1)."""
    listener = _listener
    if listener is not None:
        listener(stage, min(1.0, max(0.0, float(fraction))))
