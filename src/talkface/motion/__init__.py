"""motion: the face's dynamics per video frame, and the generators that make them from audio."""
