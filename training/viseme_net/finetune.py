r"""The heard jaw: VisemeNet (trained on synthetic speech, training/viseme_net/train.py) fine-tuned on the
real jaw of the train split's talking faces, and stacked with the learned mouth's viseme filter (issue 16).

Why: alone, the synthetic-speech net lost to pocketsphinx's phones on real speech (its docstring in
__init__.py), and every network trained on the real clips from scratch learned the speakers, not the sounds.
Started from the synthetic net's phonetic features and fine-tuned briefly (2 passes, learning rate 1e-4, all
weights) on each real clip's jaw made zero-mean and unit-spread per clip (so that what it learns is the
timing and the relative opening, not a speaker's scale), its jaw follows real jaws as well as the viseme
filter does, and it errs differently: the two together follow them better than either.

Measured by speaker-disjoint 4-fold cross-validation on the train split (mean per-clip r of the jaw with the
real jaw, 25 fps, before rendering; the folds of training/learned_motion/mouth.py), the 70-ms net (stop 28):

    viseme filter (ships)                0.363
    fine-tuned net alone                 0.336 (seeds 0/1/2: 0.336 / 0.334 / 0.345)
    both, each made unit-spread, summed  0.402 (+0.039 +- 0.019 per clip over the filter, better in 26 of 43)
    fine-tuned from scratch / unscaled   0.24-0.27 (the speakers again)

Two nets ship. Offline (assets/heard_jaw.onnx), the net hears 190 ms ahead (VisemeNet model.WIDE, train.py
--wide) and learns the jaw of OFFLINE_DELAY frames before the one it hears: alone, it follows the real jaws
better than the phones' filter (0.40 against 0.363), and stacked, at 0.43 (the table at TAPS). Live
(assets/heard_jaw_live.onnx), the 70-ms net gives its frame's own jaw (live_stack.py fits its stacks).

What ships (`main`): each net fine-tuned on all train clips (100 Hz features in, a jaw per 100 Hz frame out),
and in motion_model.json "mouth" "heard_jaw" the offline stack: jaw = a * (viseme filter's jaw) + sum over
TAPS of b * (net's jaw pooled to 25 fps, made unit-spread over the recording, read that many frames later) +
c, fitted by least squares on the out-of-fold predictions of the folds and re-scaled to the real jaw's
spread, as mouth.py does. motion.learned.LearnedStream uses it whenever the phonemes were heard in audio it
has whole (offline).

    .venv/bin/python -m training.viseme_net.finetune ../shared/data --cv-only
    .venv/bin/python -m training.viseme_net.finetune ../shared/data          # writes the two nets

Needs reports/viseme_net_cache/model.pt and model_wide.pt (training/viseme_net/train.py, and with --wide)
and the learned-motion cache (training/learned_motion/dataset.py).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from talkface.audio.heard_jaw import HEARD_JAW_FILE, LIVE_HEARD_JAW_FILE, unit_spread
from talkface.eval.split import train_clips
from talkface.motion.learned import META_FILE, MODEL_FILE
from training.learned_motion.dataset import CACHE as LM_CACHE
from training.learned_motion.dataset import ClipData, build_all
from training.learned_motion.mouth import ASSETS, _r, fit, inputs, speaker_order
from training.viseme_net.data import CACHE
from training.viseme_net.evaluate import load_model, real_inputs
from training.viseme_net.model import VisemeNet, normalise
from training.viseme_net.train import meta_file

log = logging.getLogger("viseme_net.finetune")

EPOCHS, LR, WEIGHT_DECAY = 2, 1e-4, 1e-2  # the live net's (LIVE_HEARD_JAW_FILE)
CROP = 100  # 25-fps frames per training crop (4 s), crops overlap by half
BATCH = 16
FOLDS = 4
# The offline net (HEARD_JAW_FILE) starts from the wide VisemeNet (model.WIDE: 190 ms ahead, against the live
# one's 70), learns the jaw of OFFLINE_DELAY frames before the one it hears, in OFFLINE_EPOCHS passes, and
# the stack reads it at TAPS frames after each frame. Real lips move ahead of the sounds they make: on the
# folds the 70-ms net alone lagged the real jaw by 38 ms (the filter by -5). Stack r on the folds, out of
# fold (two seeds where given; "alone": the net read OFFLINE_DELAY frames later):
#   70-ms net, delay 0, 2 passes, taps (0, 1)        0.399 / 0.402  (stops 29-30; alone 0.328 / 0.334)
#   70-ms net, delay 0, 2 passes, taps (0, 1, 2)     0.405 / 0.409
#   70-ms net, delay 0, 3 passes, taps (0, 1, 2)     0.410
#   70-ms net, delay 1, 2 passes, taps (0, 1, 2)     0.408          (alone 0.370)
#   70-ms net, delay 2, 2 passes, taps (1, 2, 3)     0.411 / 0.414  (alone 0.385 / 0.391)
#   70-ms net, delay 2, 3 passes, taps (1, 2, 3)     0.417 / 0.420  (alone 0.392 / 0.392)
#   70-ms net, delay 2, 4 passes, taps (1, 2, 3)     0.415
#   70-ms net, delay 3 / 4 / 6, 2 passes             0.407 / 0.400 / 0.378 (its 0.65 s of past runs short)
#   wide net, delay 0, 3 passes, taps (0, 1, 2)      0.426          (alone 0.384)
#   wide net, delay 1, 3 passes, taps (0, 1, 2)      0.429 / 0.427  (alone 0.403 / 0.397)
#   wide net, delay 1, 3 passes, taps (0, 1, 2, 3)   0.430 / 0.429
#   wide net, delay 2, 3 passes, taps (1, 2, 3, 4)   0.426          (alone 0.404)
#   wide net, delay 1, 3 passes, taps (1,)           0.421 / 0.420  (the net read as late as it learned)
# One 70-ms net with both jaws (two heads, delays 0 and 2) did worse at each: 0.315 and 0.382 alone. The
# wide net read at taps (0, 1, 2, 3) smooths the jaw: on the validation clips it gained at lag 0 on clips
# whose audio is off their lips and lost on the in-sync ones. Before rendering (scripts/live_lipsync.py),
# r / best-lag r: 70-ms net, taps (0, 1), 0.395 / 0.512; wide, (0, 1, 2, 3) 0.413 / 0.502; (0, 1, 2) 0.414
# / 0.515; (1, 2) 0.412 / 0.519; (1,) 0.411 / 0.522. Rendered and tracked (talkface eval, seeds 0-2),
# against the 70-ms net: (0, 1, 2, 3) r +0.008, best-lag r -0.022 (-0.041..-0.004); (1,) r +0.011
# (-0.007..+0.028), best-lag r +0.005; both closures F1 -0.03.
OFFLINE_DELAY, OFFLINE_EPOCHS = 1, 3
TAPS = (1,)
# Fine-tunes averaged into one net (souped). Three (a VisemeNet retrained at stop 29, the same recipe): the
# net alone 0.329 -> 0.332, the stack 0.389 -> 0.389 (+0.000 +- 0.003 per clip): not worth three times the
# work. On those folds the stack weighed per clip (the filter's jaw made unit-spread, as "unit_sum") reached
# 0.397, and the best fixed ratio of the two 0.392: what a per-recording scale of the filter's jaw might buy.
SEEDS = 1
# Tried at stop 32 on the shipped recipe (wide net, delay 1, 3 passes, taps (1,); stack r on the folds 0.421 /
# 0.420 at seeds 0 / 1, and 0.432 / 0.436 against the inner-lip gap the eval measures, 0.843 correlated
# with the jaw coefficient on the train clips), all worse or level:
#   the round and spread targets learned beside the jaw (loss weight 0.5 / 1)   0.411 / 0.404
#   front and first 2 (4) blocks frozen                                        0.397 (0.385, 4 passes)
#   learning rate 5e-5 for 6 passes; 2e-4 for 2; the front's rate x3          0.417; 0.409; 0.418
#   three seeds' outputs averaged; 8-s crops; spectral tilt and band masks     0.419; 0.407; 0.408
#   the inner-lip gap as the target instead of the jaw (raw / smoothed 0.7)    0.429 / 0.428 against the gap
# and the wide VisemeNet trained longer or shorter than the shipped 30 min (4613 steps, synthetic jaw r
# 0.846): 12 min (1747 steps, 0.813) 0.416; 20 min (2799 steps, 0.830) 0.419; 70 min (10563 steps,
# 0.870) 0.407 / 0.407. A better fit to the synthetic speech does not carry over to real voices.


class JawNet(nn.Module):
    """VisemeNet's trunk with one output, the jaw per 100 Hz frame: (B, T, 42) inputs -> (B, T)."""

    def __init__(self, base: VisemeNet):
        super().__init__()
        self.front, self.blocks, self.norms = base.front, base.blocks, base.norms
        self.head = nn.Conv1d(base.cfg.width, 1, 1)
        with torch.no_grad():  # start from the synthetic net's jaw target
            self.head.weight.copy_(base.head.weight[:1])
            self.head.bias.copy_(base.head.bias[:1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.front(x.transpose(1, 2))
        for conv, norm in zip(self.blocks, self.norms, strict=True):
            h = h + conv(torch.relu(norm(h)))
        return self.head(torch.relu(h))[:, 0]


def pooled(jaw: torch.Tensor) -> torch.Tensor:
    """(B, 4n) jaw per 100 Hz frame -> (B, n) per 25-fps frame: frame j averages feature frames 4j..4j+3,
    the ones centred in [j/25, (j+1)/25) (AudioFeatures.at_fps)."""
    return jaw.reshape(jaw.shape[0], -1, 4).mean(-1)


def pair(feats: np.ndarray, jaw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A variant's normalised 100 Hz inputs and its real jaw at 25 fps made unit-spread, cut to 4 frames per
    video frame."""
    n = min(len(jaw), len(feats) // 4)
    return normalise(feats)[: 4 * n], unit_spread(jaw[:n].astype(np.float32))


def finetune(
    base: VisemeNet,
    data: list[tuple[np.ndarray, np.ndarray]],
    seed: int = 0,
    delay: int = 0,
    epochs: int = EPOCHS,
) -> JawNet:
    """base fine-tuned on (inputs, jaw) pairs: its jaw at 25-fps frame j + delay learns the real jaw of frame
    j (delay > 0: it hears 40 * delay ms further past the jaw it gives)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = JawNet(copy.deepcopy(base))
    net.train()
    opt = torch.optim.AdamW(net.parameters(), LR, weight_decay=WEIGHT_DECAY)
    for _ in range(epochs):
        crops = []
        for x, y in data:
            if len(y) <= CROP:
                crops.append((x, y))
                continue
            for s in range(int(rng.integers(0, CROP // 2)), len(y) - CROP, CROP // 2):
                crops.append((x[4 * s : 4 * (s + CROP)], y[s : s + CROP]))
        rng.shuffle(crops)
        for i in range(0, len(crops), BATCH):
            batch = crops[i : i + BATCH]
            n = min(len(y) for _, y in batch)
            x = torch.from_numpy(np.stack([x[: 4 * n] for x, _ in batch]))
            y = torch.from_numpy(np.stack([y[:n] for _, y in batch]))
            loss = ((pooled(net(x))[:, delay:] - y[:, : n - delay]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def souped(
    base: VisemeNet, data: list[tuple[np.ndarray, np.ndarray]], seeds: int, **how
) -> tuple[JawNet, JawNet]:
    """(soup, first): the mean of the weights of `seeds` nets fine-tuned (finetune(..., **how)) from the same
    start with seeds 0.. (a "model soup": brief fine-tunes from one start stay close enough for the mean of
    their weights to work as the mean of their outputs does, at the cost of one net), and the fine-tune of
    seed 0 alone."""
    nets = [finetune(base, data, seed, **how) for seed in range(seeds)]
    if len(nets) == 1:
        return nets[0], nets[0]
    states = [n.state_dict() for n in nets]
    mean = {
        k: sum(s[k] for s in states) / len(states) if states[0][k].is_floating_point() else states[0][k]
        for k in states[0]
    }
    soup = copy.deepcopy(nets[0])
    soup.load_state_dict(mean)
    return soup.eval(), nets[0]


@torch.no_grad()
def net_jaw(net: JawNet, feats: np.ndarray, n: int) -> np.ndarray:
    """The net's jaw of a variant, per 25-fps frame (n frames), made unit-spread."""
    x = torch.from_numpy(normalise(feats)[: 4 * (len(feats) // 4)])[None]
    jaw = pooled(net(x))[0].numpy()
    return unit_spread(np.concatenate([jaw, np.repeat(jaw[-1:], max(n - len(jaw), 0))])[:n])


def taps(g: np.ndarray, at: tuple[int, ...] = TAPS) -> np.ndarray:
    """(T, len(at)) the net's jaw read `at` frames later (past the end, its last value)."""
    return np.column_stack([np.r_[g[k:], np.repeat(g[-1:], k)] for k in at])


def stack(
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], at: tuple[int, ...] = TAPS
) -> tuple[float, np.ndarray, float]:
    """(a, b, c): the least-squares jaw = a * filter + taps(net, at) @ b + c over (filter, net, real) rows,
    re-scaled about its mean to the real jaw's spread (a regression shrinks towards the mean)."""
    f = np.concatenate([r[0] for r in rows])
    g = np.concatenate([taps(r[1], at) for r in rows])
    y = np.concatenate([r[2] for r in rows])
    w = np.linalg.lstsq(np.column_stack([f, g, np.ones_like(f)]), y, rcond=None)[0]
    a, b, c = w[0], w[1:-1], w[-1]
    pred = a * f + g @ b + c
    gain = y.std() / max(pred.std(), 1e-6)
    return float(a * gain), b * gain, float(gain * c + (1.0 - gain) * pred.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="the development media folder (talking/, manifest.tsv)")
    ap.add_argument(
        "--model", type=Path, default=CACHE / "model.pt", help="the synthetic-speech VisemeNet (live)"
    )
    ap.add_argument(
        "--wide-model",
        type=Path,
        default=CACHE / "model_wide.pt",
        help="the synthetic-speech VisemeNet that hears 190 ms ahead (offline; train.py --wide)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cv-only", action="store_true", help="print the cross-validation, write nothing")
    ap.add_argument("--seeds", type=int, default=SEEDS, help="fine-tunes averaged into each net (souped)")
    ap.add_argument(
        "--fold-models",
        type=Path,
        help="also write each fold's model to FOLDER/fold<k>/ (the shipped motion model with that fold's "
        "nets, offline and live, and the stack, the rules' jaw share set to 0) and links to its held-out "
        "clips in FOLDER/fold<k>/clips/: talkface eval of each renders out-of-fold train clips, to refit "
        "the calibrations (training/learned_motion/jaw_curve.py); live_stack.py replays them live",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)
    t0 = time.time()
    talk: list[ClipData] = [c for c in build_all(args.data, LM_CACHE) if c.talking]
    paths = {p.stem: p for p in train_clips(args.data) if p.parent.name == "talking"}
    feats = {c.name: real_inputs(paths[c.name], CACHE / "real") for c in talk}
    base, wide = load_model(args.model), load_model(args.wide_model)

    def data(clips: list[ClipData]) -> list[tuple[np.ndarray, np.ndarray]]:
        return [pair(feats[c.name][v], c.motion[v][:, 0]) for c in clips for v in c.cues]

    order = speaker_order(talk)
    offline = {"delay": OFFLINE_DELAY, "epochs": OFFLINE_EPOCHS}
    rows, out_of_fold, orig, nets = [], [], [], []
    one_seed = []  # with --seeds > 1: the out-of-fold jaws of each fold's seed-0 fine-tune, for comparison
    for k in range(FOLDS):
        held = set(order[k::FOLDS])
        train = [c for c in talk if c.speaker not in held]
        (net, first), filt = souped(wide, data(train), args.seeds, **offline), fit(train, "visemes")
        live = finetune(base, data(train)) if args.fold_models else None
        nets.append((net, live, [paths[c.name] for c in talk if c.speaker in held]))
        for c in talk:
            if c.speaker not in held:
                continue
            for v in c.cues:
                real = c.motion[v][:, 0]
                f = filt(inputs(c, v, "visemes"))[:, 0]
                g = net_jaw(net, feats[c.name][v], len(real))
                out_of_fold.append((f, g, real))
                if args.seeds > 1:
                    one_seed.append((f, net_jaw(first, feats[c.name][v], len(real)), real))
                if v == "orig":
                    orig.append(len(out_of_fold) - 1)
                    read = taps(g, (OFFLINE_DELAY,))[:, 0]  # the net read as late as it learned
                    rows.append((c.name, _r(f, real), _r(read, real), _r(unit_spread(f) + read, real)))
        log.info("fold %d of %d (%.0f s)", k + 1, FOLDS, time.time() - t0)
    a, b, c = stack(out_of_fold)
    r_stack = [_r(a * f + taps(g) @ b, real) for f, g, real in (out_of_fold[i] for i in orig)]
    cv = {
        "viseme_filter": round(float(np.nanmean([r[1] for r in rows])), 3),
        "net": round(float(np.nanmean([r[2] for r in rows])), 3),
        "unit_sum": round(float(np.nanmean([r[3] for r in rows])), 3),
        "stack": round(float(np.nanmean(r_stack)), 3),
        "clips": len(rows),
        "folds": FOLDS,
    }
    if one_seed:
        a1, b1, _ = stack(one_seed)
        held_out = [one_seed[i] for i in orig]
        cv["net_one_seed"] = round(float(np.nanmean([_r(g, real) for _, g, real in held_out])), 3)
        r_one = [_r(a1 * f + taps(g) @ b1, real) for f, g, real in held_out]
        cv["stack_one_seed"] = round(float(np.nanmean(r_one)), 3)
        e = np.array(r_stack) - np.array(r_one)
        e = e[np.isfinite(e)]
        cv["stack_minus_one_seed"] = [
            round(float(e.mean()), 3),
            round(float(e.std(ddof=1) / np.sqrt(len(e))), 3),
        ]
        cv["seeds"] = args.seeds
    d = np.array(r_stack) - np.array([r[1] for r in rows])
    d = d[np.isfinite(d)]
    cv["stack_minus_filter"] = [round(float(d.mean()), 3), round(float(d.std(ddof=1) / np.sqrt(len(d))), 3)]
    cv["stack_better_clips"] = f"{int((d > 0).sum())}/{len(d)}"
    log.info("cross-validation (jaw r with the real jaw): %s; stack a %.3f b %s c %.3f", cv, a, b, c)
    stacked = {
        "filter": round(a, 5),
        "net": np.round(b, 5).tolist(),
        "net_taps": list(TAPS),
        "offset": round(c, 5),
        "cross_validation": cv,
    }
    if args.fold_models:
        for k, (net, live, clips) in enumerate(nets):
            write_fold(args.fold_models / f"fold{k}", net, live, clips, stacked)
    if args.cv_only:
        return
    net, _ = souped(wide, data(talk), args.seeds, **offline)
    onnx = _onnx_bytes(net)
    live = finetune(base, data(talk))
    live_onnx = _onnx_bytes(live)
    err = max(_check(net, onnx), _check(live, live_onnx))
    if err > 1e-4:
        raise SystemExit(f"ONNX export differs from torch by {err}")
    (ASSETS / HEARD_JAW_FILE).write_bytes(onnx)
    (ASSETS / LIVE_HEARD_JAW_FILE).write_bytes(live_onnx)
    meta_path = ASSETS / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["mouth"]["heard_jaw"] = {
        **stacked,
        "sha256": hashlib.sha256(onnx).hexdigest(),
        "how": (
            f"training/viseme_net/finetune.py: {args.wide_model.name} (VisemeNet hearing 190 ms ahead, "
            "synthetic espeak-ng speech, training/viseme_net/train.py --wide) fine-tuned "
            f"{OFFLINE_EPOCHS} passes at lr {LR} on the train split's {len(talk)} talking clips (5 audio "
            f"variants each), jaw unit-spread per clip, its jaw at frame j + {OFFLINE_DELAY} on the real "
            f"jaw of frame j, the weights of {args.seeds} such fine-tunes (seeds 0..{args.seeds - 1}) "
            "averaged; stack fitted on the out-of-fold predictions of 4 speaker-disjoint folds. The live "
            f"net ({LIVE_HEARD_JAW_FILE}): {args.model.name} (70 ms ahead), {EPOCHS} passes, its jaw at "
            "its own frame"
        ),
        "synthetic_nets": {"offline": _trained(args.wide_model), "live": _trained(args.model)},
    }
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s, %s and the stack into %s", HEARD_JAW_FILE, LIVE_HEARD_JAW_FILE, meta_path)


def _trained(model: Path) -> dict:
    """How train.py trained a synthetic-speech VisemeNet: the meta it wrote beside it (train.meta_file)."""
    beside = meta_file(model)
    if not beside.is_file():
        return {"file": model.name}
    m = json.loads(beside.read_text(encoding="utf-8"))
    keys = ("lookahead_frames", "train_hours", "steps", "minutes", "validation")
    return {"file": model.name, **{k: m[k] for k in keys if k in m}}


def write_fold(folder: Path, net: JawNet, live: JawNet, clips: list[Path], stacked: dict) -> None:
    """The shipped motion model with a fold's nets (offline and live) and the offline stack, without the
    rules' jaw, in `folder`, and links to the fold's held-out clips in folder/clips."""
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    onnx = _onnx_bytes(net)
    (folder / HEARD_JAW_FILE).write_bytes(onnx)
    (folder / LIVE_HEARD_JAW_FILE).write_bytes(_onnx_bytes(live))
    (folder / MODEL_FILE).write_bytes((ASSETS / MODEL_FILE).read_bytes())
    meta = json.loads((ASSETS / META_FILE).read_text(encoding="utf-8"))
    meta["mouth"]["heard_jaw"] = dict(stacked, sha256=hashlib.sha256(onnx).hexdigest())
    meta["calibration"]["rules_jaw"] = 0.0
    (folder / META_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    for clip in clips:
        link = folder / "clips" / clip.name
        if not link.exists():
            link.symlink_to(clip.resolve())


def _onnx_bytes(net: JawNet) -> bytes:
    """The net as ONNX (TorchScript exporter, opset 17), any batch and length."""
    from torch.onnx._internal.torchscript_exporter import onnx_proto_utils

    try:
        import onnx  # noqa: F401
    except ImportError:  # as training/learned_motion/export.py: the exporter does not need it here
        onnx_proto_utils._add_onnxscript_fn = lambda proto, custom_opsets: proto
    buf = io.BytesIO()
    torch.onnx.export(
        net.eval(),
        (torch.zeros(1, 200, 42),),
        buf,
        dynamo=False,
        input_names=["features"],
        output_names=["jaw"],
        dynamic_axes={"features": {0: "batch", 1: "time"}, "jaw": {0: "batch", 1: "time"}},
        opset_version=17,
    )
    return buf.getvalue()


def _check(net: JawNet, data: bytes) -> float:
    """Largest absolute difference between torch and onnxruntime on random inputs."""
    import onnxruntime as ort

    x = torch.randn(2, 537, 42, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = net(x).numpy()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return float(np.abs(sess.run(None, {"features": x.numpy()})[0] - ref).max())


if __name__ == "__main__":
    main()
