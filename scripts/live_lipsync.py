"""Lip sync of the live path against the offline one, on the validation clips (issue 16: a live learned
mouth). Per clip: the real mouth opening (the clip tracked with the face mesh) against the jaw of

- learned, offline: phones recognised in the whole audio (what `talkface animate` does),
- learned, live: phones recognised as the audio streams in (audio.phones.LivePhones), 20-ms pushes (audio
  in real time: each frame is made one frame ahead, with the "live_edge" filter),
- learned, live in bursts: 200-ms pushes (audio ahead of real time, as text to speech sends it: most frames
  are made two frames ahead, with the "live" filter),
- learned, live as LiveAvatar(lookahead_s=LOOKAHEAD_S) feeds it: 20-ms pushes with an 80-ms look-ahead asked
  (Session.set_lookahead: every frame two frames ahead; the avatar pushes its voice a frame period ahead),
- rules, live: the acoustic mouth, 20-ms pushes,

as Pearson r at lag 0 and at the best lag within +-200 ms, in motion space (before rendering: r is
scale-free, and the renderer's mouth follows the jaw monotonically). Also the generator's share of the live
latency: how far the last final frame's end trails the audio received, median over pushes, and the paired
differences between the live mouths with a 95 % bootstrap interval over clips.

    .venv/bin/python scripts/live_lipsync.py ../shared/data/talking [--limit N] [--tracks /tmp/live_tracks]
        [--record]

--record writes the summary into the shipped motion_model.json as mouth.live_validation (the mouth filters'
provenance; training/learned_motion/mouth.py drops it when it refits them).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from talkface.assets import asset_path
from talkface.audio.features import compute_features
from talkface.audio.load import SAMPLE_RATE, load_audio
from talkface.audio.phones import recognize_phones
from talkface.audio.vad import speech_probability
from talkface.config import MotionControls
from talkface.eval.metrics import lagged_correlation
from talkface.eval.split import load_split
from talkface.face.geometry import mouth_opening
from talkface.face.tracking import track_video
from talkface.motion.generators import generate, make_stream
from talkface.motion.learned import META_FILE
from talkface.motion.stream import AudioMotion
from talkface.stream.avatar import LOOKAHEAD_S

CHUNK = 320  # 20 ms at 16 kHz, as the live benchmark pushes
BURST = 3200  # 200 ms: audio that arrives ahead of real time
PAIRS = (
    ("learned live", "rules live"),
    ("learned live, bursts", "rules live"),
    ("learned live, avatar", "rules live"),
)


def live_jaw(
    name: str,
    samples: np.ndarray,
    fps: float,
    n: int,
    phones: bool,
    chunk: int = CHUNK,
    lookahead_s: float = 0.0,
) -> tuple[np.ndarray, float]:
    """The jaw of a live stream (n frames) fed `chunk` samples at a time, asked for `lookahead_s` of
    look-ahead (AudioMotion.set_lookahead), and the median of (audio received - end of the last final frame)
    over pushes, in seconds."""
    source = AudioMotion(make_stream(name, fps, MotionControls()), live_phones=phones)
    source.set_lookahead(lookahead_s)
    parts, done, trail = [], 0, []
    for k in range(0, len(samples), chunk):
        m = source.push(samples[k : k + chunk])
        parts.append(m.expression[:, 0])
        done += len(m)
        trail.append(min(k + chunk, len(samples)) / SAMPLE_RATE - done / fps)
    parts.append(source.finish().expression[:, 0])
    jaw = np.concatenate(parts)[:n]
    return jaw, statistics.median(trail)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--tracks", type=Path, default=Path("/tmp/live_tracks"))
    ap.add_argument("--record", action="store_true", help="write the summary into motion_model.json")
    args = ap.parse_args()
    args.tracks.mkdir(parents=True, exist_ok=True)
    names = load_split()["validation"][: args.limit or None]
    rows = []
    for name in names:
        path = args.data / name
        cached = args.tracks / f"{path.stem}.npz"
        if not cached.exists():
            t = track_video(path)
            np.savez(cached, opening=mouth_opening(t.points), fps=t.fps)
        z = np.load(cached)
        real, fps = z["opening"], float(z["fps"])
        audio = load_audio(str(path))
        n = min(len(real), int(round(audio.duration * fps)))
        real = real[:n]
        ok = np.isfinite(real)
        real = np.where(ok, real, np.nanmedian(real))
        jaws = {
            "learned offline": generate(
                "learned",
                compute_features(audio),
                n,
                fps,
                MotionControls(),
                recognize_phones(audio),
                speech_probability(audio.samples),
            ).expression[:n, 0]
        }
        jaws["learned live"], trail_learned = live_jaw("learned", audio.samples, fps, n, phones=True)
        jaws["learned live, bursts"], _ = live_jaw("learned", audio.samples, fps, n, True, BURST)
        jaws["learned live, avatar"], _ = live_jaw("learned", audio.samples, fps, n, True, CHUNK, LOOKAHEAD_S)
        jaws["rules live"], trail_rules = live_jaw("rules", audio.samples, fps, n, phones=False)
        row = {"clip": name, "seconds": n / fps, "trail": (trail_learned, trail_rules)}
        for k, jaw in jaws.items():
            c = lagged_correlation(real, jaw[: len(real)], fps)
            row[k] = (c.r_zero, c.r_best, c.lag_ms)
        rows.append(row)
        print(
            f"{name:40s} "
            + "  ".join(f"{k} r {row[k][0]:.2f} (best {row[k][1]:.2f}, {row[k][2]:+.0f} ms)" for k in jaws)
            + f"  trail learned {1000 * trail_learned:.0f} ms, rules {1000 * trail_rules:.0f} ms",
            flush=True,
        )
    print(f"\nmean over {len(rows)} clips:")
    summary: dict = {"jaw": {}, "paired_r": {}}
    for k in rows[0]:
        if k in ("clip", "seconds", "trail"):
            continue
        r0 = np.mean([r[k][0] for r in rows])
        rb = np.mean([r[k][1] for r in rows])
        lags = [r[k][2] for r in rows if np.isfinite(r[k][2])]
        print(f"  {k:20s} r {r0:.3f}  best-lag r {rb:.3f}  lag {np.mean(lags):+.0f} ms")
        summary["jaw"][k] = {"r": round(r0, 3), "r_best": round(rb, 3), "lag_ms": round(np.mean(lags), 1)}
    for a, b in PAIRS:
        d = np.array([r[a][0] - r[b][0] for r in rows])
        boot = d[np.random.default_rng(0).integers(0, len(d), (2000, len(d)))].mean(1)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        print(f"  r, {a} - {b}: {d.mean():+.3f} ({lo:+.3f}..{hi:+.3f})")
        summary["paired_r"][f"{a} - {b}"] = [round(d.mean(), 3), round(lo, 3), round(hi, 3)]
    if args.record:
        record(summary, len(rows))
    print(
        "  live trail (median over pushes, mean over clips): learned "
        f"{1000 * np.mean([r['trail'][0] for r in rows]):.0f} ms, rules "
        f"{1000 * np.mean([r['trail'][1] for r in rows]):.0f} ms"
    )


def record(summary: dict, clips: int) -> None:
    """The summary into the shipped motion_model.json's mouth section (live_validation)."""
    path = asset_path(META_FILE)
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["mouth"]["live_validation"] = {
        "command": "python scripts/live_lipsync.py ../shared/data/talking --record",
        "what": "jaw r with the real jaw before rendering, validation split; paired: mean, 95 % bootstrap",
        "clips": clips,
        **summary,
    }
    path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"recorded into {path}")


if __name__ == "__main__":
    main()
