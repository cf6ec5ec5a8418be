r"""Does VisemeNet give the learned mouth better inputs than pocketsphinx's phones? The speaker-disjoint
4-fold ridge cross-validation of training/learned_motion/mouth.py on the train split's real talking clips
(all audio variants), with inputs:

  a  pocketsphinx viseme targets (the shipped "visemes" filter; the baseline)
  b  VisemeNet's viseme targets (3), pooled to 25 fps        b+ : with its class probabilities (3 + 18)
  c  a + b                                                   d  : b + MouthCues
each with mouth.py's "visemes" settings (past 3, ahead 3, ridge 0.3) and the live-like (4, 2, 0.1).

Each variant's audio is rebuilt exactly as dataset.py does (VARIANTS, _augment_audio, gain); its 100 Hz
features are cached in reports/viseme_net_cache/real/ (git-ignored; derived from third-party media).

    .venv/bin/python -m training.viseme_net.evaluate ../shared/data --model reports/viseme_net_cache/model.pt
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from talkface.audio.features import compute_features, frame_ranges
from talkface.audio.load import SAMPLE_RATE, from_samples, load_audio
from talkface.eval.split import train_clips
from talkface.motion.cues import CUE_DIM, held_ends, window_rows
from talkface.motion.learned import MODEL_FPS
from training.learned_motion.dataset import CACHE as LM_CACHE
from training.learned_motion.dataset import VARIANTS, ClipData, _augment_audio, build_all
from training.learned_motion.mouth import MOUTH, _r, ridge_filter, speaker_order
from training.viseme_net.data import CACHE, CLASSES
from training.viseme_net.model import Config, VisemeNet, predict

log = logging.getLogger("viseme_net.evaluate")

SETTINGS = {"visemes": (3, 3, 0.3), "live": (4, 2, 0.1)}
CLASS_TARGETS = np.array([c[:3] for c in CLASSES], np.float32)  # (n_classes, 3)


def real_inputs(path: Path, out: Path) -> dict[str, np.ndarray]:
    """{variant: (T, 42) 100 Hz features} of a real clip's audio variants (cached)."""
    cached = out / f"{path.stem}.npz"
    if cached.exists():
        z = np.load(cached)
        return {k: z[k] for k in z.files}
    audio = load_audio(path)
    arrays = {}
    for i, (variant, speed, snr, gain_db) in enumerate(VARIANTS):
        samples = _augment_audio(audio.samples, speed, snr, seed=i) * np.float32(10 ** (gain_db / 20))
        f = compute_features(from_samples(samples, SAMPLE_RATE))
        arrays[variant] = np.concatenate([f.log_mel, f.voicing[:, None], f.periodicity[:, None]], 1)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(cached, **arrays)
    return arrays


def pooled(x: np.ndarray, n: int) -> np.ndarray:
    """100 Hz rows (T, k) -> n frames at MODEL_FPS (mean over each frame's span, as AudioFeatures.at_fps)."""
    lo, hi = frame_ranges(np.arange(n), MODEL_FPS, 0.0, len(x))
    c = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, 0, dtype=np.float64)])
    return ((c[hi] - c[lo]) / np.maximum(hi - lo, 1)[:, None]).astype(np.float32)


def cross_validate(
    talk: list[ClipData],
    inputs: dict[str, dict[str, np.ndarray]],
    past: int,
    ahead: int,
    lam: float,
    folds: int = 4,
) -> dict[str, np.ndarray]:
    """Per held-out clip, r (jaw, round, spread) of the ridge filter on inputs[clip][variant] with the real
    mouth: {clip: (3,)}."""
    order = speaker_order(talk)
    rows = {}
    for k in range(folds):
        held = set(order[k::folds])
        train = [c for c in talk if c.speaker not in held]
        xs = [inputs[c.name][v] for c in train for v in c.cues]
        ys = [c.motion[v][:, MOUTH] for c in train for v in c.cues]
        x = np.concatenate([window_rows(held_ends(a, past, ahead), past + 1 + ahead) for a in xs])
        f = ridge_filter(x, np.concatenate(ys), past, ahead, lam)
        for c in talk:
            if c.speaker in held:
                real = c.motion["orig"][:, MOUTH]
                pred = f(inputs[c.name]["orig"])
                rows[c.name] = np.array([_r(pred[:, j], real[:, j]) for j in range(3)])
    return rows


def load_model(path: Path) -> VisemeNet:
    """The VisemeNet saved by train.py (weights + config)."""
    ck = torch.load(path, weights_only=False)
    cfg = Config(**{k: tuple(map(tuple, v)) if k == "blocks" else v for k, v in ck["config"].items()})
    net = VisemeNet(cfg)
    net.load_state_dict(ck["state"])
    return net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--model", type=Path, default=CACHE / "model.pt")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)
    clips = build_all(args.data, LM_CACHE)
    talk = [c for c in clips if c.talking]
    paths = {p.stem: p for p in train_clips(args.data) if p.parent.name == "talking"}
    net = load_model(args.model)
    cfg = net.cfg
    ours: dict[str, dict[str, np.ndarray]] = {}
    for c in talk:
        feats = real_inputs(paths[c.name], CACHE / "real")
        ours[c.name] = {v: pooled(predict(net, feats[v]), len(c.cues[v])) for v in c.cues}
    n_cls = cfg.n_classes
    kinds = {
        "a pocketsphinx": lambda c, v: c.cues[v][:, CUE_DIM:],
        "b ours (3)": lambda c, v: ours[c.name][v][:, :3],
        "b+ ours (3+classes)": lambda c, v: ours[c.name][v],
        "b' ours expected from classes": lambda c, v: ours[c.name][v][:, 3:] @ CLASS_TARGETS[:n_cls],
        "c pocketsphinx + ours": lambda c, v: np.concatenate(
            [c.cues[v][:, CUE_DIM:], ours[c.name][v][:, :3]], 1
        ),
        "d ours + MouthCues": lambda c, v: np.concatenate(
            [ours[c.name][v][:, :3], c.cues[v][:, :CUE_DIM]], 1
        ),
        "e pocketsphinx + MouthCues": lambda c, v: c.cues[v],
        "f all": lambda c, v: np.concatenate([c.cues[v], ours[c.name][v][:, :3]], 1),
    }
    table, per_clip = {}, {}
    for kind, get in kinds.items():
        inputs = {c.name: {v: get(c, v) for v in c.cues} for c in talk}
        for setting, (past, ahead, lam) in SETTINGS.items():
            rows = cross_validate(talk, inputs, past, ahead, lam)
            per_clip[(kind, setting)] = rows
            r = np.nanmean(list(rows.values()), 0)
            table[f"{kind} @{setting}"] = r.round(3).tolist()
            log.info("%-34s %-8s jaw %.3f  round %.3f  spread %.3f", kind, setting, *r)
    base = per_clip[("a pocketsphinx", "visemes")]
    for kind, setting in per_clip:
        if kind.startswith("a "):
            continue
        d = np.array([per_clip[(kind, setting)][n][0] - base[n][0] for n in base])
        d = d[np.isfinite(d)]
        table[f"{kind} @{setting} jaw minus a@visemes"] = {
            "mean": round(float(d.mean()), 3),
            "se": round(float(d.std(ddof=1) / np.sqrt(len(d))), 3),
            "better_clips": f"{int((d > 0).sum())}/{len(d)}",
        }
        log.info(
            "%-34s %-8s jaw - a: %+.3f +- %.3f (better in %d/%d clips)",
            kind,
            setting,
            d.mean(),
            d.std(ddof=1) / np.sqrt(len(d)),
            (d > 0).sum(),
            len(d),
        )
    (args.model.parent / "cv.json").write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
