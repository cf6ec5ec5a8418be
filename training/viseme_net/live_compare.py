r"""VisemeNet against pocketsphinx as a LIVE front-end: the same speaker-disjoint folds, with
pocketsphinx's live phones as training/learned_motion/live_mouth.py builds them (its cached input windows,
PAST 5, AHEAD 2: read only) beside VisemeNet's outputs windowed with PAST 5 and 0-2 frames ahead.

Latency past the end of frame j: live pocketsphinx 2 frames = 80 ms; VisemeNet with `ahead` frames
40 * ahead + 70 ms (its lookahead; the features' own delay is common to both). VisemeNet's log-mel mean is
the whole clip's here; live it would be a running mean.

    .venv/bin/python -m training.viseme_net.live_compare ../shared/data \
        --model reports/viseme_net_cache/model.pt
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from talkface.eval.split import train_clips
from talkface.motion.cues import CUE_DIM, held_ends, window_rows
from training.learned_motion.dataset import CACHE as LM_CACHE
from training.learned_motion.dataset import CACHE_VERSION, build_all
from training.learned_motion.mouth import MOUTH, _r, ridge_filter, speaker_order
from training.viseme_net.data import CACHE
from training.viseme_net.evaluate import load_model, pooled, real_inputs
from training.viseme_net.model import predict

log = logging.getLogger("viseme_net.live_compare")

PAST, RIDGE = 5, 0.1
LIVE_SPAN = 8  # live_mouth.py's windows: PAST 5 + 1 + AHEAD 2 rows of [visemes (3), MouthCues]


def windows(x: np.ndarray, ahead: int) -> np.ndarray:
    return window_rows(held_ends(x, PAST, ahead), PAST + 1 + ahead)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--model", type=Path, default=CACHE / "model.pt")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(2)
    talk = [c for c in build_all(args.data, LM_CACHE) if c.talking]
    paths = {p.stem: p for p in train_clips(args.data) if p.parent.name == "talking"}
    net = load_model(args.model)
    live, ours = {}, {}
    for c in talk:
        z = np.load(LM_CACHE / "live_mouth" / f"{c.name}.{CACHE_VERSION}.w1.p5a2.npz")
        live[c.name] = {v: z[v].reshape(len(z[v]), LIVE_SPAN, 3 + CUE_DIM) for v in z.files}
        feats = real_inputs(paths[c.name], CACHE / "real")
        ours[c.name] = {v: pooled(predict(net, feats[v]), len(c.cues[v]))[:, :3] for v in c.cues}

    def ps(c, v, cues=False):
        w = live[c.name][v] if cues else live[c.name][v][:, :, :3]
        return w.reshape(len(w), -1)

    kinds = {
        "pocketsphinx live visemes (a2)": lambda c, v: ps(c, v),
        "pocketsphinx live visemes + cues (a2, shipped)": lambda c, v: ps(c, v, True),
        "ours a0": lambda c, v: windows(ours[c.name][v], 0),
        "ours a1": lambda c, v: windows(ours[c.name][v], 1),
        "ours a2": lambda c, v: windows(ours[c.name][v], 2),
        "ours a1 + cues a1": lambda c, v: windows(
            np.concatenate([ours[c.name][v], c.cues[v][:, :CUE_DIM]], 1), 1
        ),
        "pocketsphinx live (a2) + ours a0": lambda c, v: np.concatenate(
            [ps(c, v), windows(ours[c.name][v], 0)], 1
        ),
        "pocketsphinx live + cues (a2) + ours a0": lambda c, v: np.concatenate(
            [ps(c, v, True), windows(ours[c.name][v], 0)], 1
        ),
    }
    order = speaker_order(talk)
    for name, get in kinds.items():
        rows = []
        for k in range(4):
            held = set(order[k::4])
            train = [c for c in talk if c.speaker not in held]
            pairs = [(c, v) for c in train for v in c.cues]
            xs = [get(c, v) for c, v in pairs]
            ys = [c.motion[v][: len(x), MOUTH] for (c, v), x in zip(pairs, xs, strict=True)]
            f = ridge_filter(np.concatenate(xs), np.concatenate(ys), PAST, 0, RIDGE)
            for c in talk:
                if c.speaker in held:
                    x = get(c, "orig")
                    pred, real = f.of_windows(x), c.motion["orig"][: len(x), MOUTH]
                    rows.append([_r(pred[:, j], real[:, j]) for j in range(3)])
        log.info("%-44s jaw %.3f  round %.3f  spread %.3f", name, *np.nanmean(rows, 0))


if __name__ == "__main__":
    main()
