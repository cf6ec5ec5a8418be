"""talkface: one portrait + any voice track -> a lip-synced talking-face video, on two CPU cores.

import talkface
talkface.animate("me.jpg", "speech.m4a", "me_talking.mp4")
"""

__version__ = "0.1.0"

from talkface.config import AnimateOptions  # noqa: E402
from talkface.errors import NoFaceError, TalkfaceError  # noqa: E402
from talkface.pipeline import animate, drive, say  # noqa: E402
from talkface.stream.session import Session  # noqa: E402

__all__ = [
    "AnimateOptions",
    "NoFaceError",
    "Session",
    "TalkfaceError",
    "animate",
    "drive",
    "say",
    "__version__",
]
