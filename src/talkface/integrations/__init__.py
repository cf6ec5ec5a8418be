"""Integrations with voice-agent frameworks: talkface as the avatar of a Pipecat bot (integrations.pipecat)
or of a LiveKit agent (integrations.livekit). Each imports its framework, an optional extra:
requirements-pipecat.lock (into .venv) and requirements-livekit.lock (an environment of its own)."""
