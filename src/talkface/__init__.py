"""talkface: one portrait + any voice track -> a lip-synced talking-face video, on two CPU cores.

import talkface
talkface.animate("me.jpg", "speech.m4a", "me_talking.mp4")

The names below are loaded on first use (PEP 562), so `import talkface` and `talkface --help` do not pay for
the face mesh, the codecs and the numeric libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "AnimateOptions": "talkface.config",
    "DriveOptions": "talkface.config",
    "MotionControls": "talkface.config",
    "NoFaceError": "talkface.errors",
    "TalkfaceError": "talkface.errors",
    "Session": "talkface.stream.session",
    "animate": "talkface.pipeline",
    "drive": "talkface.pipeline",
    "say": "talkface.pipeline",
}

__all__ = [  # what _EXPORTS names (a test checks that the two agree), and the version
    "AnimateOptions",
    "DriveOptions",
    "MotionControls",
    "NoFaceError",
    "Session",
    "TalkfaceError",
    "animate",
    "drive",
    "say",
    "__version__",
]

if TYPE_CHECKING:
    from talkface.config import AnimateOptions, DriveOptions, MotionControls
    from talkface.errors import NoFaceError, TalkfaceError
    from talkface.pipeline import animate, drive, say
    from talkface.stream.session import Session


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'talkface' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
