r"""Fit the learned generator's LIVE mouth: the mouth filters a live stream uses (Session, `talkface serve`),
where phones are recognised as the audio streams in (audio.phones.LivePhones) and each frame's mouth reads
them as they are known when the frame is made, not as they are known at the end.

A live learned stream makes each frame's mouth as soon as the audio `ahead` frames past it is in, frame by
frame, not a motion window (160 ms) at a time: the mouth is what sets a live frame's latency (the head and
the rest of the face follow the flow model's windows a few frames late; motion.learned.LearnedStream.listen).
Two filters, and each frame takes the one that reads furthest ahead among those whose audio is in:
- "live_edge", one frame ahead (40 ms past the frame's end, as the rules' live mouth waits): audio fed in real
  time gets it. The phones at the decoder's very edge are worth little (cross-validation jaw r 0.253, against
  0.241 for the acoustic cues alone; on the validation clips, scripts/live_lipsync.py, 0.267 fed in 20-ms
  pushes, a tie with the rules' live mouth).
- "live", two frames ahead: audio that arrives ahead of real time (text to speech) gets it for most frames
  (cross-validation 0.291; validation, fed in 200-ms pushes, 0.306 against the rules' 0.267).

Phones near the audio's edge are the decoder's current best guess: on the validation clips the offline
viseme filter driven by such guesses lost a third of its lip-sync r (0.353 -> 0.236 on one clip; waiting
300 ms more for settled phones gave it back, at 300 ms more latency). So the live filter is fitted on what it
will see: for every frame of every train clip (all audio variants), LivePhones is fed the audio up to the
moment the live stream makes that frame's mouth, and the viseme targets of the phones known then, beside
the causal acoustic mouth cues (MouthCues, which are final as soon as their audio is in), are the filter's
inputs. The regression learns how far to trust the guesses near the edge and how to fill in from the sound.

Speaker-disjoint cross-validation on the train split (mean per-clip jaw r with the real jaw, before
rendering), printed by `--cv-only`, beside the acoustic-only filter and the rules' acoustic jaw, with the lip
shape's r and jitter raw and smoothed as the stream smooths it. Writes motion_model.json "mouth" -> "live"
and "live_edge".

    .venv/bin/python -m training.learned_motion.live_mouth /work/shared/data --cv-only
    .venv/bin/python -m training.learned_motion.live_mouth /work/shared/data
"""

from __future__ import annotations

import argparse
import json
import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from talkface.audio.load import SAMPLE_RATE, load_audio
from talkface.audio.phones import LivePhones
from talkface.motion.cues import CUE_DIM, MouthFilter, window_rows
from talkface.motion.learned import LIVE_SHAPE_TAU, META_FILE, MODEL_FPS
from talkface.motion.stream import CausalSmoother
from talkface.motion.visemes import VisemeTrack
from training.learned_motion.dataset import (
    CACHE,
    CACHE_VERSION,
    VARIANTS,
    ClipData,
    _augment_audio,
    build_all,
)
from training.learned_motion.mouth import ASSETS, MOUTH, _r, ridge_filter, speaker_order

log = logging.getLogger("learned_motion.live_mouth")

# Filter taps (frames back, ahead) and ridge strength (a share of the rows). Two filters, by how far ahead
# they read (see above): "live" two frames ahead, "live_edge" one frame ahead, for frames that must be made
# before the audio two frames past them is in (a stream fed in real time, within the latency budget).
PAST, RIDGE = 5, 0.1
AHEADS = {"live": 2, "live_edge": 1}
WINDOW = 1  # frames whose mouth a live stream makes at once: each as soon as its audio is in
CHUNK = 320  # the live benchmark's 20-ms pushes


def window_inputs(samples: np.ndarray, cues: np.ndarray, window: int, ahead: int) -> np.ndarray:
    """Per model frame j, the live filter's input window (PAST + 1 + ahead rows of [viseme targets (3),
    MouthCues (CUE_DIM)]) as the live stream builds it: viseme rows from the phones LivePhones knows when
    j's motion window (window frames) is made, once the audio `ahead` frames past the window is in.
    cues: (n, CUE_DIM) of the same audio. Returns (n, span * (3 + CUE_DIM))."""
    n, span = len(cues), PAST + 1 + ahead
    phones, pushed = LivePhones(), 0
    out = np.zeros((n, span * (3 + CUE_DIM)), np.float32)
    for w0 in range(0, n, window):
        count = min(window, n - w0)
        gate = min((w0 + window + ahead) / MODEL_FPS, len(samples) / SAMPLE_RATE)
        while pushed < len(samples) and phones.known_until < gate - 1e-9:
            phones.push(samples[pushed : pushed + CHUNK])
            pushed += CHUNK
        idx = np.arange(w0 - PAST, w0 + count + ahead)
        track = VisemeTrack(phones.phonemes((w0 - PAST) / MODEL_FPS - 0.5))
        rows = np.concatenate(
            [track((np.maximum(idx, 0) + 0.5) / MODEL_FPS), cues[np.clip(idx, 0, n - 1)]], 1
        )
        out[w0 : w0 + count] = window_rows(rows, span)
    return out


def _clip_inputs(args: tuple[Path, dict[str, np.ndarray], int, int]) -> dict[str, np.ndarray]:
    path, cues, window, ahead = args
    audio = load_audio(path)
    result = {}
    for i, (variant, speed, snr, gain_db) in enumerate(VARIANTS):
        if variant not in cues:
            continue
        samples = _augment_audio(audio.samples, speed, snr, seed=i) * np.float32(10 ** (gain_db / 20))
        result[variant] = window_inputs(samples.astype(np.float32), cues[variant], window, ahead)
    return result


def live_inputs(clips: list[ClipData], data: Path, window: int, cache: Path, ahead: int) -> dict[str, dict]:
    """{clip name: {variant: (n, k) input windows}}, cached in cache/live_mouth/ (derived from third-party
    media: git-ignored, never committed)."""
    folder = cache / "live_mouth"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {p.stem: p for p in (data / "talking").iterdir()}

    def file(c: ClipData) -> Path:
        return folder / f"{c.name}.{CACHE_VERSION}.w{window}.p{PAST}a{ahead}.npz"

    todo = [c for c in clips if not file(c).exists()]
    jobs = [(paths[c.name], {v: x[:, :CUE_DIM] for v, x in c.cues.items()}, window, ahead) for c in todo]
    with ProcessPoolExecutor(2) as pool:
        for c, result in zip(todo, pool.map(_clip_inputs, jobs), strict=True):
            np.savez_compressed(file(c), **result)
            log.info("live phones of %s, %d ahead", c.name, ahead)
    out = {}
    for c in clips:
        z = np.load(file(c))
        out[c.name] = {v: z[v] for v in z.files}
    return out


def fit(
    clips: list[ClipData], inputs: dict[str, dict], ahead: int, columns: slice | None = None
) -> MouthFilter:
    """Ridge regression of the real mouth on the live input windows (columns: a subset of each row's
    inputs, for the comparisons)."""
    xs, ys = [], []
    for c in clips:
        for v, x in inputs[c.name].items():
            xs.append(_columns(x, columns))
            ys.append(c.motion[v][: len(x), MOUTH])
    return ridge_filter(np.concatenate(xs), np.concatenate(ys), PAST, ahead, RIDGE)


def _columns(x: np.ndarray, columns: slice | None) -> np.ndarray:
    if columns is None:
        return x
    k = 3 + CUE_DIM
    return x.reshape(len(x), -1, k)[:, :, columns].reshape(len(x), -1)


def cross_validate(clips: list[ClipData], inputs: dict[str, dict], ahead: int, folds: int) -> dict:
    """Per held-out clip: the jaw r of the live filter, of its viseme and acoustic halves alone and of the
    rules; and of the live filter's lip shape (rounding, spreading) raw and smoothed as the stream smooths it
    (motion.learned.LIVE_SHAPE_TAU), with its mean frame-to-frame change beside the real lips'."""
    kinds = {"live": None, "live_visemes_only": slice(0, 3), "acoustic_only": slice(3, 3 + CUE_DIM)}
    order = speaker_order(clips)
    rows, shapes = [], []
    for k in range(folds):
        held = set(order[k::folds])
        train = [c for c in clips if c.speaker not in held]
        filters = {name: fit(train, inputs, ahead, cols) for name, cols in kinds.items()}
        for c in clips:
            if c.speaker in held:
                x = inputs[c.name]["orig"]
                real = c.motion["orig"][: len(x), 0]
                row = {"clip": c.name}
                for name, cols in kinds.items():
                    row[name] = _r(filters[name].of_windows(_columns(x, cols))[:, 0], real)
                row["rules"] = _r(c.rules[: len(x), 0], real)
                rows.append(row)
                shape = filters["live"].of_windows(x)[:, 1:3]
                real_shape = c.motion["orig"][: len(x), 1:3]
                smooth = np.column_stack(
                    [CausalSmoother(LIVE_SHAPE_TAU, stages=1)(shape[:, k]) for k in range(2)]
                )
                shapes.append(
                    [
                        *(_r(shape[:, k], real_shape[:, k]) for k in range(2)),
                        *(_r(smooth[:, k], real_shape[:, k]) for k in range(2)),
                        *np.abs(np.diff(shape, axis=0)).mean(0),
                        *np.abs(np.diff(smooth, axis=0)).mean(0),
                        *np.abs(np.diff(real_shape, axis=0)).mean(0),
                    ]
                )
    summary = {name: round(float(np.nanmean([r[name] for r in rows])), 3) for name in [*kinds, "rules"]}
    sh = np.round(np.nanmean(np.array(shapes), 0), 3).tolist()
    summary["shape_round_spread"] = {
        "r": sh[0:2],
        "r_smoothed": sh[2:4],
        "change": sh[4:6],
        "change_smoothed": sh[6:8],
        "change_real": sh[8:10],
    }
    return {"rows": rows, "summary": {**summary, "clips": len(rows), "folds": folds}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="the development media folder (talking/, silent/, manifest.tsv)")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--cv-only", action="store_true", help="print the cross-validation, write nothing")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    meta_path = ASSETS / META_FILE
    clips = [c for c in build_all(args.data, args.cache) if c.talking]
    filters, summaries = {}, {}
    for kind, ahead in AHEADS.items():
        inputs = live_inputs(clips, args.data, WINDOW, args.cache, ahead)
        cv = cross_validate(clips, inputs, ahead, args.folds)
        for r in cv["rows"]:
            log.info(
                "%-36s %d ahead: live %.3f  visemes only %.3f  acoustic only %.3f  rules %.3f",
                r["clip"],
                ahead,
                r["live"],
                r["live_visemes_only"],
                r["acoustic_only"],
                r["rules"],
            )
        log.info("cross-validation, %d ahead (jaw r with the real jaw): %s", ahead, json.dumps(cv["summary"]))
        filters[kind], summaries[kind] = fit(clips, inputs, ahead), cv["summary"]
    if args.cv_only:
        return
    meta = json.loads(meta_path.read_text(encoding="utf-8"))  # mouth.py may have written it meanwhile
    for kind in AHEADS:
        meta["mouth"][kind] = filters[kind].to_json()
        meta["mouth"][f"{kind}_cross_validation"] = summaries[kind]
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    log.info("wrote the live mouth filters into %s", meta_path)


if __name__ == "__main__":
    main()
