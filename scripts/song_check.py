"""Songs and voices over music: how much of each recording the voice is heard in, and how often the mouth
opens (issue 16, "a song looks sung"). For every sung recording of the shared data (the manifest's kind says
singing; the AniPortrait singer's video too) and the speech recordings with music under the voice:

- the share of 32-ms windows silero-vad hears as speech (> 0.5) on the recording, and with audio.music's
  voice activity (the voice pulled out of the accompaniment, where a voice is heard over music),
- the share of frames held on a sung note (motion.cues.HeldNotes > 0.5),
- the learned and the rule generator's jaw on the whole audio (phones recognised in it, audio.music's voice
  activity: as `talkface animate` makes the learned one; `--generator rules` streams the file and keeps
  silero-vad's voice activity alone): mean, and the share of frames open past 0.1.

For the singer's video, also the jaw's Pearson r with her tracked mouth opening (at lag 0 and the best lag
within +-200 ms, before rendering, as scripts/live_lipsync.py measures it).

    .venv/bin/python scripts/song_check.py ../shared/data [--tracks /tmp/live_tracks]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from talkface.audio.features import compute_features
from talkface.audio.load import load_audio
from talkface.audio.music import voice_activity
from talkface.audio.phones import recognize_phones
from talkface.audio.vad import speech_probability
from talkface.config import MotionControls
from talkface.eval.metrics import lagged_correlation
from talkface.face.geometry import mouth_opening
from talkface.face.tracking import track_video
from talkface.motion.cues import HeldNotes
from talkface.motion.generators import generate

FPS = 25.0
# Speech recordings of the shared data with music under (part of) the voice.
VOICE_OVER_MUSIC = ("audio/hallo_driving_4.wav",)


def recordings(data: Path) -> list[str]:
    with open(data / "manifest.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    sung = [r["file"] for r in rows if "singing" in r["kind"]]
    return sorted(sung) + [f for f in VOICE_OVER_MUSIC if (data / f).exists()]


def real_opening(path: Path, tracks: Path) -> np.ndarray:
    """The video's mouth opening per frame (its face tracked; cached as scripts/live_lipsync.py caches it)."""
    cached = tracks / f"{path.stem}.npz"
    if not cached.exists():
        tracks.mkdir(parents=True, exist_ok=True)
        t = track_video(path)
        np.savez(cached, opening=mouth_opening(t.points), fps=t.fps)
    z = np.load(cached)
    if abs(float(z["fps"]) - FPS) > 0.01:
        raise SystemExit(f"{path.name}: {float(z['fps']):g} fps, not {FPS:g}")
    return z["opening"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--tracks", type=Path, default=Path("/tmp/live_tracks"))
    args = ap.parse_args()
    for name in recordings(args.data):
        path = args.data / name
        audio = load_audio(path)
        n = int(round(audio.duration * FPS))
        features = compute_features(audio)
        speech = speech_probability(audio.samples)
        heard = np.mean(speech > 0.5)
        heard_music = np.mean(voice_activity(audio.samples) > 0.5)
        held = np.mean(HeldNotes(features.rate)(features) > 0.5)
        row = f"{path.name[:36]:36s} voice heard {heard:4.0%} -> {heard_music:4.0%}  held {held:4.0%}"
        phones = recognize_phones(audio)
        jaws = {}
        for gen in ("learned", "rules"):
            phonemes = phones if gen == "learned" else ()
            motion = generate(gen, features, n, FPS, MotionControls(), phonemes, speech)
            jaws[gen] = jaw = motion.expression[:, 0]
            row += f"  {gen} jaw {jaw.mean():.3f}, open {np.mean(jaw > 0.1):4.0%}"
        print(row, flush=True)
        if path.suffix == ".mp4":
            real = real_opening(path, args.tracks)[:n]
            real = np.where(np.isfinite(real), real, np.nanmedian(real))
            for gen, jaw in jaws.items():
                c = lagged_correlation(real, jaw[: len(real)], FPS)
                best = f"best {c.r_best:.3f}, {c.lag_ms:+.0f} ms"
                print(f"    {gen} jaw vs the singer's mouth: r {c.r_zero:.3f} ({best})")


if __name__ == "__main__":
    main()
