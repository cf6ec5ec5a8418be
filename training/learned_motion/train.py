r"""Train the learned motion generator (MotionFlow) on the TRAIN split, then export it for the runtime.

Reads top to bottom: data (dataset.build_all: tracked motion + causal audio features, augmented) ->
normalisation statistics -> random windows (context + window + lookahead frames of a clip, with the
audio dropped for classifier-free guidance, the context sometimes missing as at a stream's start, and
noise on the context against drift) -> rectified-flow training with x1-prediction (MSE on the clean
motion, jaw weighted up, plus the same on frame-to-frame differences so that windows join smoothly) ->
a training curve (PNG) -> sampled rollouts on the held-out speakers (per-clip r of the generated and real
jaw, head and blink statistics) -> export.py writes src/talkface/assets/motion_model.{onnx,json}.

    .venv/bin/python -m training.learned_motion.train /work/shared/data            # what `make train` runs
    .venv/bin/python -m training.learned_motion.train /work/shared/data --holdout "Ronald Reagan" \
        --holdout "GRID speaker J" --out reports/learned_motion_dev --no-export     # a dev run

The validation split of talkface eval is never read here; --holdout speakers (from the train split) give
the curve's dev loss. The output calibration already in motion_model.json is kept; re-measure it with
export.py --calibrate after a retrain that changes the model's amplitudes.

Measured: 4000 steps in 382-458 s on 2 shared cores (1 torch thread); the data extraction takes 2-3 minutes
once the face-mesh tracks are cached (tracking the 43 clips from scratch takes several minutes more).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from talkface.face.expression import EXPRESSIONS
from talkface.motion.learned import FEATURE_DIM, MODEL_FPS, MOTION_DIM, ROT
from training.learned_motion.dataset import CACHE, ClipData, build_all
from training.learned_motion.model import ModelConfig, MotionFlow

log = logging.getLogger("learned_motion.train")

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "reports" / "learned_motion"


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 4000
    batch: int = 96
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 300
    p_silent: float = 0.15  # share of windows from the silent clips (always without audio)
    p_drop_audio: float = 0.1  # talking windows with the audio dropped (classifier-free guidance)
    p_drop_context: float = 0.05  # windows without previous motion (a stream's first window)
    context_noise: float = 0.1  # max std of the noise added to the context (normalised units)
    # Clips are drawn in proportion to their length ** this. 1 (by length) let the five 20-30 s clips of
    # lively speakers dominate: the generated head moved 2-4x as much as the real one on the train split's
    # 3-s GRID and MEAD clips (their speakers hold still); 0.5 gives short clips a fairer share.
    clip_weight_power: float = 0.5
    jaw_weight: float = 3.0
    diff_weight: float = 1.0
    seed: int = 0
    # Sampling (stored in motion_model.json for the runtime). Chosen on held-out train speakers (dev run):
    # temperature 0.8 suppressed blinks (4/min vs 10 real), 1.0 gives 24; guidance 2 and 8 steps gave the
    # best jaw r (0.20-0.21 vs 0.15 without guidance).
    steps_sample: int = 8
    guidance: float = 2.0
    temperature: float = 1.0


class Windows:
    """Random training windows drawn from the clips (numpy; one batch at a time)."""

    def __init__(self, clips: list[ClipData], model_cfg: ModelConfig, cfg: TrainConfig, mean, std, seed: int):
        self.talk = [c for c in clips if c.talking]
        self.silent = [c for c in clips if not c.talking]
        self.m, self.cfg = model_cfg, cfg
        self.mean, self.std = mean, std
        self.rng = np.random.default_rng(seed)
        # Sample clips in proportion to length ** clip_weight_power (variants are equally likely).
        self.w_talk = self._weights(self.talk)
        self.w_silent = self._weights(self.silent)

    def _weights(self, clips):
        if not clips:
            return None
        n = np.array([max(len(c.motion["orig"]) - self.m.window, 1) for c in clips], np.float64)
        w = n**self.cfg.clip_weight_power
        return w / w.sum()

    def one(self, silent: bool):
        m, rng = self.m, self.rng
        clips, w = (self.silent, self.w_silent) if silent else (self.talk, self.w_talk)
        clip = clips[rng.choice(len(clips), p=w)]
        variant = rng.choice(sorted(clip.motion)) if not silent else "orig"
        motion = (clip.motion[variant] - self.mean) / self.std
        t_len = len(motion)
        w0 = int(rng.integers(0, max(t_len - m.window, 0) + 1))
        idx = np.arange(w0 - m.context, w0 + m.window + m.lookahead)
        inside = (idx >= 0) & (idx < t_len)
        audio = np.zeros((m.span, FEATURE_DIM), np.float32)
        audio_mask = np.zeros(m.span, np.float32)
        if not silent and rng.random() >= self.cfg.p_drop_audio:
            audio[inside] = clip.features[variant][idx[inside]]
            audio_mask[:] = inside
        cidx = idx[: m.context]
        context = np.zeros((m.context, MOTION_DIM), np.float32)
        cmask = (cidx >= 0).astype(np.float32)
        if rng.random() < self.cfg.p_drop_context:
            cmask[:] = 0
        context[cmask > 0] = motion[cidx[cmask > 0]]
        context += rng.standard_normal(context.shape).astype(np.float32) * rng.uniform(
            0, self.cfg.context_noise
        )
        context *= cmask[:, None]
        target = np.zeros((m.window, MOTION_DIM), np.float32)
        tidx = np.arange(w0, w0 + m.window)
        tin = tidx < t_len
        target[tin] = motion[tidx[tin]]
        target[~tin] = motion[-1]  # clips shorter than a window: hold the last frame
        prev = motion[w0 - 1] if w0 > 0 and cmask[-1] > 0 else target[0]
        return audio, audio_mask, context, cmask, target, prev.astype(np.float32)

    def batch(self, n: int):
        silent = self.rng.random(n) < (self.cfg.p_silent if self.silent else 0.0)
        rows = [self.one(bool(s)) for s in silent]
        return [torch.from_numpy(np.stack(col)) for col in zip(*rows, strict=True)]


def flow_loss(model: MotionFlow, batch, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    audio, audio_mask, context, cmask, target, prev = batch
    b = len(target)
    t = torch.rand(b, generator=gen)
    noise = torch.randn(target.shape, generator=gen)
    x_t = (1 - t[:, None, None]) * noise + t[:, None, None] * target
    pred = model(audio, audio_mask, context, cmask, x_t, t)
    w = torch.ones(MOTION_DIM)
    w[EXPRESSIONS.index("jaw_open")] = cfg.jaw_weight
    loss = ((pred - target) ** 2 * w).mean()
    # Frame-to-frame steps, including the step from the last context frame into the window.
    p_full = torch.cat([prev[:, None], pred], 1)
    t_full = torch.cat([prev[:, None], target], 1)
    dloss = (((p_full[:, 1:] - p_full[:, :-1]) - (t_full[:, 1:] - t_full[:, :-1])) ** 2 * w).mean()
    return loss + cfg.diff_weight * dloss


@torch.no_grad()
def rollout(model: MotionFlow, feats: np.ndarray | None, n: int, cfg: TrainConfig, seed: int) -> np.ndarray:
    """Normalised motion (n, MOTION_DIM) generated window by window, as the runtime does it (feats: the
    clip's FEATURE_DIM features, None for no audio)."""
    m = model.cfg
    out = np.zeros((0, MOTION_DIM), np.float32)
    steps = cfg.steps_sample
    ts = np.linspace(0, 1, steps + 1, dtype=np.float32)
    for w0 in range(0, n, m.window):
        idx = np.arange(w0 - m.context, w0 + m.window + m.lookahead)
        audio = np.zeros((m.span, FEATURE_DIM), np.float32)
        amask = np.zeros(m.span, np.float32)
        if feats is not None:
            ok = (idx >= 0) & (idx < n)
            audio[ok] = feats[idx[ok]]
            amask[ok] = 1
        cidx = idx[: m.context]
        cmask = (cidx >= 0).astype(np.float32)
        context = np.zeros((m.context, MOTION_DIM), np.float32)
        context[cmask > 0] = out[cidx[cmask > 0]]
        rng = np.random.default_rng([seed, w0 // m.window])
        x = (rng.standard_normal((m.window, MOTION_DIM)) * cfg.temperature).astype(np.float32)
        a = torch.from_numpy(np.stack([audio, audio]))
        am = torch.from_numpy(np.stack([amask, np.zeros_like(amask)]))
        c = torch.from_numpy(np.stack([context, context]))
        cm = torch.from_numpy(np.stack([cmask, cmask]))
        for k in range(steps):
            xt = torch.from_numpy(np.stack([x, x]))
            pred = model(a, am, c, cm, xt, torch.full((2,), float(ts[k]))).numpy()
            x1 = pred[1] + cfg.guidance * (pred[0] - pred[1]) if feats is not None else pred[0]
            x = x + (ts[k + 1] - ts[k]) * (x1 - x) / (1 - ts[k])
        out = np.concatenate([out, x.astype(np.float32)])
    return out[:n]


def dev_report(model: MotionFlow, dev: list[ClipData], cfg: TrainConfig, mean, std) -> dict:
    """Sampled rollouts on the dev clips: mean per-clip r of generated vs real jaw, and motion stats."""
    model.eval()
    rs, rot_std, real_rot_std, blink, real_blink = [], [], [], [], []
    for clip in dev:
        feats, real = clip.features["orig"], clip.motion["orig"]
        gen = rollout(model, feats, len(real), cfg, seed=0) * std + mean
        jaw = EXPRESSIONS.index("jaw_open")
        if real[:, jaw].std() > 1e-6 and gen[:, jaw].std() > 1e-6:
            rs.append(float(np.corrcoef(gen[:, jaw], real[:, jaw])[0, 1]))
        rot_std.append(gen[:, ROT].std(0))
        real_rot_std.append(real[:, ROT].std(0))
        b = EXPRESSIONS.index("blink_right")
        minutes = len(real) / MODEL_FPS / 60
        blink.append(_count_blinks(gen[:, b]) / minutes)
        real_blink.append(_count_blinks(real[:, b]) / minutes)
    model.train()
    return {
        "jaw_r": float(np.mean(rs)) if rs else float("nan"),
        "jaw_r_per_clip": [round(r, 3) for r in rs],
        "rotation_std": np.mean(rot_std, 0).round(2).tolist(),
        "real_rotation_std": np.mean(real_rot_std, 0).round(2).tolist(),
        "blinks_per_min": round(float(np.mean(blink)), 1),
        "real_blinks_per_min": round(float(np.mean(real_blink)), 1),
    }


def _count_blinks(x: np.ndarray, on: float = 0.5) -> int:
    above = x > on
    return int(np.sum(above[1:] & ~above[:-1]) + (1 if len(above) and above[0] else 0))


def save_curve(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["train"] for h in history], label="train (running mean)")
    if any(h.get("dev") is not None for h in history):
        ax.plot(steps, [h.get("dev") for h in history], label="held-out speakers")
    ax.set_xlabel("step")
    ax.set_ylabel("flow-matching loss (x1 MSE + steps)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("MotionFlow training")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="the development media folder (talking/, silent/, manifest.tsv)")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--tracks", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--holdout", action="append", default=[], help="train-split speaker kept out (dev loss)")
    ap.add_argument("--steps", type=int, default=TrainConfig.steps)
    ap.add_argument("--guidance", type=float, default=TrainConfig.guidance)
    ap.add_argument("--no-export", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    # One thread: these matrices are small, and two threads contending with other work on a 2-core
    # machine ran 10-50x slower than one.
    torch.set_num_threads(1)
    cfg = TrainConfig(steps=args.steps, guidance=args.guidance)
    model_cfg = ModelConfig()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    clips = build_all(args.data, args.cache, args.tracks)
    unknown = set(args.holdout) - {c.speaker for c in clips}
    if unknown:
        raise SystemExit(f"--holdout speakers not in the training data: {sorted(unknown)}")
    dev = [c for c in clips if c.speaker in args.holdout and c.talking]
    train = [c for c in clips if c.speaker not in args.holdout]
    motion_all = np.concatenate([c.motion["orig"] for c in train])
    mean, std = motion_all.mean(0), np.maximum(motion_all.std(0), 1e-3)
    feats_all = np.concatenate([c.features["orig"] for c in train if c.talking])
    log.info(
        "train: %d clips (%.0f s talking), dev: %d clips (%s)",
        len(train),
        sum(len(c.motion["orig"]) for c in train if c.talking) / MODEL_FPS,
        len(dev),
        ", ".join(args.holdout) or "none",
    )

    model = MotionFlow(model_cfg, torch.from_numpy(feats_all.mean(0)), torch.from_numpy(feats_all.std(0)))
    n_params = sum(p.numel() for p in model.parameters())
    log.info("MotionFlow: %.2f M parameters", n_params / 1e6)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / cfg.warmup) * 0.5 * (1 + np.cos(np.pi * min(s / cfg.steps, 1.0))),
    )
    windows = Windows(train, model_cfg, cfg, mean, std, cfg.seed)
    dev_windows = Windows(dev, model_cfg, cfg, mean, std, 1234) if dev else None
    dev_batches = [dev_windows.batch(256) for _ in range(4)] if dev_windows else []

    history, running, t0 = [], None, time.time()
    for step in range(cfg.steps):
        loss = flow_loss(model, windows.batch(cfg.batch), cfg, gen)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if (step + 1) % 200 == 0 or step + 1 == cfg.steps:
            entry = {"step": step + 1, "train": running}
            if dev_batches:
                model.eval()
                with torch.no_grad():
                    g = torch.Generator().manual_seed(99)
                    entry["dev"] = float(np.mean([flow_loss(model, b, cfg, g).item() for b in dev_batches]))
                model.train()
            history.append(entry)
            log.info(
                "step %d: train %.4f%s, %.0f s",
                step + 1,
                running,
                f", dev {entry['dev']:.4f}" if "dev" in entry else "",
                time.time() - t0,
            )
    train_s = time.time() - t0
    model.eval()
    save_curve(history, args.out / "training_curve.png")
    report = dev_report(model, dev, cfg, mean, std) if dev else {}
    if report:
        log.info("dev rollouts: %s", json.dumps(report))
    torch.save(
        {
            "model": model.state_dict(),
            "model_config": model_cfg.to_dict(),
            "train_config": cfg.__dict__,
            "motion_mean": mean.tolist(),
            "motion_std": std.tolist(),
        },
        args.out / "model.pt",
    )
    info = {
        "train_config": cfg.__dict__,
        "model_config": model_cfg.to_dict(),
        "parameters": n_params,
        "train_seconds": round(train_s),
        "data": {
            "talking_clips": sorted(c.name for c in train if c.talking),
            "silent_clips": sorted(c.name for c in train if not c.talking),
            "talking_seconds": round(sum(len(c.motion["orig"]) for c in train if c.talking) / MODEL_FPS, 1),
            "silent_seconds": round(
                sum(len(c.motion["orig"]) for c in train if not c.talking) / MODEL_FPS, 1
            ),
            "holdout_speakers": args.holdout,
        },
        "history": history,
        "dev": report,
    }
    (args.out / "train.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    if not args.no_export:
        from training.learned_motion.export import export

        export(model, info, mean, std)


if __name__ == "__main__":
    main()
