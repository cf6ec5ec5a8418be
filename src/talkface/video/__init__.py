"""video: encoding and decoding."""
