r"""Train VisemeNet on the synthetic shards (training.viseme_net.data): random 4-s windows of the
per-utterance-normalised feature stream; loss = cross-entropy of the viseme class + MSE_WEIGHT * MSE of the
viseme targets; frequency masking as extra augmentation. The VAL_SHARDS are held out
(different texts, voices and augmentations): class accuracy and jaw r are printed on them. Saves
model.pt (weights + config) and meta.json (settings, data, validation) in reports/viseme_net_cache/; with
--wide, the offline net (model.WIDE) as model_wide.pt and model_wide.json.

    .venv/bin/python -m training.viseme_net.train --minutes 15
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.viseme_net.data import CACHE
from training.viseme_net.model import WIDE, Config, VisemeNet, lookahead, normalise

log = logging.getLogger("viseme_net.train")

VAL_SHARDS = ("shard_0002100.npz", "shard_0002200.npz")  # held out: the last two of the first data set
WINDOW = 400  # frames (4 s) per training window
BATCH = 32
MSE_WEIGHT = 30.0


def meta_file(model: Path) -> Path:
    """Where train.py writes how it trained `model`: meta.json beside model.pt, model_wide.json beside
    model_wide.pt."""
    return model.with_name("meta.json" if model.stem == "model" else f"{model.stem}.json")


def load(paths: list[Path]) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    xs, ys, cs = [], [], []
    for p in paths:
        z = np.load(p)
        bounds = np.cumsum(np.r_[0, z["lengths"]])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            xs.append(normalise(z["inputs"][a:b]))
            ys.append(z["targets"][a:b])
            cs.append(z["classes"][a:b].astype(np.int64))
    return xs, ys, cs


@torch.no_grad()
def validate(net: VisemeNet, xs, ys, cs) -> dict:
    net.eval()
    correct = total = 0
    preds, reals = [], []
    for x, y, c in zip(xs, ys, cs, strict=True):
        reg, logits = net(torch.from_numpy(x)[None])
        correct += int((logits[0].argmax(-1).numpy() == c).sum())
        total += len(c)
        preds.append(reg[0].numpy())
        reals.append(y)
    p, r = np.concatenate(preds), np.concatenate(reals)
    net.train()
    return {
        "class_accuracy": round(correct / total, 3),
        "r_jaw_round_spread": [round(float(np.corrcoef(p[:, j], r[:, j])[0, 1]), 3) for j in range(3)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", type=Path, default=CACHE / "synth")
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=CACHE)
    ap.add_argument(
        "--wide", action="store_true", help="the offline net (model.WIDE, 190 ms ahead): model_wide.pt"
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    paths = sorted(args.shards.glob("shard_*.npz"))
    train_x, train_y, train_c = load([p for p in paths if p.name not in VAL_SHARDS])
    val = load([p for p in paths if p.name in VAL_SHARDS])
    x_all = torch.from_numpy(np.concatenate(train_x))
    y_all = torch.from_numpy(np.concatenate(train_y))
    c_all = torch.from_numpy(np.concatenate(train_c))
    hours = len(x_all) / 100 / 3600
    log.info("train %.2f h (%d utterances), validation %d utterances", hours, len(train_x), len(val[0]))

    cfg = WIDE if args.wide else Config()
    net = VisemeNet(cfg)
    n_params = sum(p.numel() for p in net.parameters())
    log.info("VisemeNet: %d parameters, lookahead %d frames", n_params, lookahead(cfg))
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-2)
    # class weights: the inverse square root of the class frequency, so rare visemes count
    freq = torch.bincount(c_all, minlength=cfg.n_classes).float() + 100
    ce = nn.CrossEntropyLoss(weight=(freq.sum() / freq).sqrt() / (freq.sum() / freq).sqrt().mean())
    budget = args.minutes * 60
    t0 = time.time()
    step = 0
    history = []
    while True:
        frac = (time.time() - t0) / budget
        if frac >= 1:
            break
        for g in opt.param_groups:  # warm-up, then cosine over the time budget
            g["lr"] = args.lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * frac))
        starts = rng.integers(0, len(x_all) - WINDOW, BATCH)
        idx = torch.from_numpy(starts[:, None] + np.arange(WINDOW)[None, :])
        x, y, c = x_all[idx].clone(), y_all[idx], c_all[idx]
        for b in range(BATCH):  # frequency masks
            for _ in range(int(rng.integers(0, 3))):
                w, f0 = int(rng.integers(1, 6)), int(rng.integers(0, 36))
                x[b, :, f0 : f0 + w] = 0
        reg, logits = net(x)
        loss_c = ce(logits.reshape(-1, cfg.n_classes), c.reshape(-1))
        loss_r = ((reg - y) ** 2).mean()
        loss = loss_c + MSE_WEIGHT * loss_r
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 200 == 0:
            v = validate(net, *val)
            history.append({"step": step, "seconds": round(time.time() - t0), **v})
            log.info("step %d  ce %.3f  mse %.4f  val %s", step, loss_c.item(), loss_r.item(), v)
    v = validate(net, *val)
    log.info("final (%d steps, %.1f min): %s", step, (time.time() - t0) / 60, v)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "model_wide" if args.wide else "model"
    torch.save({"config": net.meta(), "state": net.state_dict()}, args.out / f"{name}.pt")
    meta = {
        "config": net.meta(),
        "parameters": n_params,
        "lookahead_frames": lookahead(cfg),
        "train_hours": round(hours, 2),
        "train_utterances": len(train_x),
        "val_utterances": len(val[0]),
        "steps": step,
        "minutes": round((time.time() - t0) / 60, 1),
        "settings": {"window": WINDOW, "batch": BATCH, "mse_weight": MSE_WEIGHT, "lr": args.lr},
        "validation": v,
        "history": history,
    }
    meta_file(args.out / f"{name}.pt").write_text(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
