"""The live path: talkface.Session (stream.session: push audio, pull frames) and the server with its web page
(stream.server)."""
