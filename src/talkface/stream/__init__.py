"""The live path: talkface.Session (push audio, pull frames) and the server with its web page."""

from talkface.stream.session import Session

__all__ = ["Session"]
