"""Build the demo assets shipped in src/talkface/assets, so `talkface demo` runs with no download.

- portrait.jpg: scikit-image's `astronaut` image, a NASA photo of Eileen Collins (public domain as a
  work of the US government), 512x512, JPEG quality 92.
- speech.flac: ~8 s of English made here by espeak-ng (talkface.audio.tts), mono 16-bit FLAC at the
  TTS rate (22050 Hz). Generated audio: no speaker, no recording, nothing to license. It is the
  script's first synthesis, so a rerun gives the same file (espeak's output drifts on later calls).
- speech.json: the text, voice and settings of speech.flac with its exact phoneme and word timings
  ([start, end, symbol] and [start, end, text], seconds), so code and tests can drive visemes from the
  truth instead of an estimate.

The sentence is chosen for the mouth: bilabials (p, b, m) close the lips, rounded vowels (o, u) round
them, and the pauses between sentences let the mouth rest.

    python training/make_demo_assets.py                  # both
    python training/make_demo_assets.py --only portrait  # needs scikit-image (not a run-time dependency)
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ASSETS = SRC / "talkface" / "assets"

PORTRAIT_QUALITY = 92  # JPEG quality
SPEECH_TEXT = (
    "Hello! I am talkface. Give me one photo, pick any voice, and I will bring the face to life. "
    "Pretty cool, huh?"
)
SPEECH_VOICE = "en-us"
SPEECH_WORDS_PER_MINUTE = 160
SPEECH_PITCH = 50


def make_portrait(path: Path) -> None:
    """Write scikit-image's astronaut (512x512 RGB) as a JPEG."""
    try:
        from skimage import data
    except ImportError:
        sys.exit("the portrait comes from scikit-image: pip install scikit-image==0.26.0")
    import cv2

    rgb = data.astronaut()  # (512, 512, 3) uint8
    if not cv2.imwrite(str(path), rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, PORTRAIT_QUALITY]):
        sys.exit(f"could not write {path}")


def make_speech(audio_path: Path, timings_path: Path) -> None:
    """Synthesise SPEECH_TEXT, write it as mono s16 FLAC and its timings as JSON."""
    import av
    import numpy as np

    from talkface.audio.tts import synthesize

    speech = synthesize(SPEECH_TEXT, SPEECH_VOICE, SPEECH_WORDS_PER_MINUTE, SPEECH_PITCH)
    # The TTS gives int16 / 32768, so this is the exact original PCM.
    pcm = np.clip(np.round(speech.samples * 32768.0), -32768, 32767).astype(np.int16)
    rate = speech.sample_rate
    with av.open(str(audio_path), "w") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono", format="s16")
        block = stream.codec_context.frame_size or 4096  # samples per frame the encoder takes
        for start in range(0, len(pcm), block):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + block], format="s16", layout="mono")
            frame.sample_rate = rate
            frame.time_base = Fraction(1, rate)
            frame.pts = start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))

    timings = {
        "text": SPEECH_TEXT,
        "voice": SPEECH_VOICE,
        "words_per_minute": SPEECH_WORDS_PER_MINUTE,
        "pitch": SPEECH_PITCH,
        "synthesizer": "espeak-ng 1.52 (espeakng-loader), talkface.audio.tts",
        "sample_rate": rate,
        "num_samples": len(pcm),
        "duration": round(speech.duration, 6),
        "phonemes": [[round(p.start, 6), round(p.end, 6), p.symbol] for p in speech.phonemes],
        "words": [[round(w.start, 6), round(w.end, 6), w.text] for w in speech.words],
    }
    timings_path.write_text(_json_one_row_per_line(timings), encoding="utf-8")


def _json_one_row_per_line(obj: dict) -> str:
    """JSON with each top-level key, and each row of a list value, on its own line: easy to read and diff."""
    lines = []
    for key, value in obj.items():
        if isinstance(value, list):
            rows = ",\n".join(f"  {json.dumps(row, ensure_ascii=False)}" for row in value)
            lines.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("portrait", "speech"), help="make just this asset")
    args = parser.parse_args(argv)
    # Make the assets with this checkout's code, whether or not talkface is installed.
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    ASSETS.mkdir(parents=True, exist_ok=True)

    if args.only in (None, "speech"):
        audio, timings = ASSETS / "speech.flac", ASSETS / "speech.json"
        make_speech(audio, timings)
        for path in (audio, timings):
            print(f"{path}: {path.stat().st_size / 1024:.0f} KB")
    if args.only in (None, "portrait"):
        path = ASSETS / "portrait.jpg"
        make_portrait(path)
        print(f"{path}: {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
