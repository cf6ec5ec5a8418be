"""Errors a user can act on. The CLI prints them as one line and exits with code 2."""


class TalkfaceError(Exception):
    """Bad input or an impossible option; the message names the problem in one line."""


class NoFaceError(TalkfaceError):
    """The portrait (or a frame) holds no face the face mesh can find."""
