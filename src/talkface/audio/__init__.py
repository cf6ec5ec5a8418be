"""audio: loading, features, voice activity, text to speech."""
