"""eval: metrics on real talking clips, and the benchmark."""
