r"""Export a trained MotionFlow to the runtime's files: src/talkface/assets/motion_model.onnx (the network,
float32, dynamic batch) and motion_model.json (window sizes, sampling settings, motion normalisation,
output calibration, the training data and settings, and validation numbers once measured).

train.py calls export() at its end. Run alone, it re-exports a checkpoint and can record the numbers of
a `talkface eval` report (the learned generator vs the rules on the validation split) in the JSON, or
calibrate the output gains on an eval of the TRAIN split:

    .venv/bin/python -m training.learned_motion.export --checkpoint reports/learned_motion/model.pt \
        --eval-report /tmp/eval-s0/report.json --eval-report /tmp/eval-s1/report.json
    .venv/bin/python -m training.learned_motion.export --calibrate reports/eval-learned-train/report.json
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import torch

from talkface.motion.learned import FEATURE_DIM, META_FILE, MODEL_FILE, MOTION_DIM, ROT
from training.learned_motion.model import ModelConfig, MotionFlow

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "src" / "talkface" / "assets"
INPUTS = ("audio", "audio_mask", "context", "context_mask", "noisy", "t")
# Output calibration through the renderer and the tracker, until calibrate() measures it.
CALIBRATION = {"rotation_gain": [1.0, 1.0, 1.0], "jaw_gain": 1.0}


def _onnx_bytes(model: MotionFlow) -> bytes:
    """The model as ONNX (TorchScript exporter, opset 17)."""
    from torch.onnx._internal.torchscript_exporter import onnx_proto_utils

    try:
        import onnx  # noqa: F401
    except ImportError:
        # The exporter only needs the `onnx` package to splice in onnxscript functions, which this model
        # has none of; onnx itself would pull numpy 2 and protobuf 7 into the environment.
        onnx_proto_utils._add_onnxscript_fn = lambda proto, custom_opsets: proto
    cfg = model.cfg
    b = 2
    example = (
        torch.zeros(b, cfg.span, FEATURE_DIM),
        torch.ones(b, cfg.span),
        torch.zeros(b, cfg.context, MOTION_DIM),
        torch.ones(b, cfg.context),
        torch.zeros(b, cfg.window, MOTION_DIM),
        torch.full((b,), 0.5),
    )
    buf = io.BytesIO()
    model.eval()
    torch.onnx.export(
        model,
        example,
        buf,
        dynamo=False,
        input_names=list(INPUTS),
        output_names=["clean"],
        dynamic_axes={name: {0: "batch"} for name in (*INPUTS, "clean")},
        opset_version=17,
    )
    return buf.getvalue()


def _check(model: MotionFlow, data: bytes) -> float:
    """Largest absolute difference between torch and onnxruntime on random inputs."""
    import onnxruntime as ort

    cfg = model.cfg
    g = torch.Generator().manual_seed(0)
    b = 3
    x = (
        torch.randn(b, cfg.span, FEATURE_DIM, generator=g),
        (torch.rand(b, cfg.span, generator=g) > 0.2).float(),
        torch.randn(b, cfg.context, MOTION_DIM, generator=g),
        (torch.rand(b, cfg.context, generator=g) > 0.2).float(),
        torch.randn(b, cfg.window, MOTION_DIM, generator=g),
        torch.rand(b, generator=g),
    )
    with torch.no_grad():
        ref = model(*x).numpy()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    out = sess.run(None, {k: v.numpy() for k, v in zip(INPUTS, x, strict=True)})[0]
    return float(np.abs(out - ref).max())


def export(model: MotionFlow, info: dict, mean: np.ndarray, std: np.ndarray, assets: Path = ASSETS) -> None:
    data = _onnx_bytes(model)
    err = _check(model, data)
    if err > 1e-3:
        raise SystemExit(f"ONNX export differs from torch by {err}")
    tc = info["train_config"]
    meta_path = assets / META_FILE
    old = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta = {
        "what": "talkface learned motion generator (MotionFlow): rectified-flow transformer, x1-prediction; "
        "see src/talkface/motion/learned.py and training/learned_motion/",
        "settings": {
            "fps": 25.0,
            "context": model.cfg.context,
            "window": model.cfg.window,
            "lookahead": model.cfg.lookahead,
            "steps": tc["steps_sample"],
            "guidance": tc["guidance"],
            "temperature": tc["temperature"],
        },
        "motion_mean": [round(float(v), 6) for v in mean],
        "motion_std": [round(float(v), 6) for v in std],
        "calibration": old.get("calibration", CALIBRATION),
        "model_config": info["model_config"],
        "parameters": info["parameters"],
        "train_config": tc,
        "train_seconds": info["train_seconds"],
        "data": info["data"],
        "final_train_loss": round(info["history"][-1]["train"], 4) if info["history"] else None,
        "onnx_max_abs_diff": err,
        "validation": old.get("validation", {}),
    }
    for part in ("mouth", "blinks"):  # fitted separately (mouth.py, blinks.py), after the flow model
        if part in old:
            meta[part] = old[part]
    (assets / MODEL_FILE).write_bytes(data)
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(
        f"wrote {assets / MODEL_FILE} ({len(data) / 1e6:.2f} MB, torch/onnx max diff {err:.2e}) "
        f"and {meta_path}"
    )


def record_eval(reports: list[Path], assets: Path = ASSETS) -> None:
    """Copy the validation summary of `talkface eval` reports (one per seed) into motion_model.json: per
    generator, the mean over the reports of each summary value."""
    rs = [json.loads(r.read_text()) for r in reports]
    meta_path = assets / META_FILE
    meta = json.loads(meta_path.read_text())
    st = rs[0].get("settings", {})
    summary = {}
    for name in rs[0].get("summary", {}):
        keys = [k for k, v in rs[0]["summary"][name].items() if isinstance(v, int | float)]
        summary[name] = {
            k: round(
                float(np.mean([r["summary"][name][k] for r in rs if r["summary"][name].get(k) is not None])),
                4,
            )
            for k in keys
        }
    meta["validation"] = {
        "command": "talkface eval DATA/talking --seed S (the mean over the seeds)",
        "seeds": [r.get("settings", {}).get("seed") for r in rs],
        "split": st.get("split"),
        "clips": st.get("clips_evaluated", len(rs[0].get("clips", []))),
        "talkface_version": st.get("version"),
        "summary": summary,
    }
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"recorded {len(rs)} reports in {meta_path}")


def calibrate(train_eval: Path, assets: Path = ASSETS, jaw_only: bool = False) -> None:
    """Output gains from a `talkface eval --split train --generator learned --generator loudness` report
    (the TRAIN split, rendered and re-tracked): per head axis, the gain that makes the rendered head std
    match the real one above the still-head floor (the loudness baseline: tracker noise), and the jaw gain
    that makes the rendered voiced mouth opening match the real one. Medians over clips; the new gains
    multiply the ones the report was made with. jaw_only: keep the head gains (after a change of the
    mouth alone)."""
    clips = [c for c in json.loads(train_eval.read_text())["clips"] if not c.get("error")]
    meta_path = assets / META_FILE
    meta = json.loads(meta_path.read_text())
    cal = meta.get("calibration", dict(CALIBRATION))
    gains = []
    for i, axis in enumerate(("yaw", "pitch", "roll")):
        key = f"pose_std_{axis}"
        real = np.array([c["real"][key] for c in clips])
        ours = np.array([c["generators"]["learned"][key] for c in clips])
        floor = np.array([c["generators"]["loudness"][key] for c in clips])
        want = np.sqrt(np.maximum(np.nanmedian(real) ** 2 - np.nanmedian(floor) ** 2, 0.0))
        have = np.sqrt(np.maximum(np.nanmedian(ours) ** 2 - np.nanmedian(floor) ** 2, 1e-6))
        gains.append(float(np.clip(want / have, 0.5, 2.5)) * cal["rotation_gain"][i])
    real_open = np.nanmedian([c["real"]["mouth_open_voiced"] for c in clips])
    ours_open = np.nanmedian([c["generators"]["learned"]["mouth_open_voiced"] for c in clips])
    jaw = float(np.clip(real_open / ours_open, 0.5, 2.0)) * cal["jaw_gain"]
    if jaw_only:
        gains = cal["rotation_gain"]
    else:
        _calibrate_blink_widths(json.loads(train_eval.read_text())["summary"], meta, cal)
    meta["calibration"] = {
        **cal,  # the rotation limit, when there is one
        "rotation_gain": [round(g, 3) for g in gains],
        "jaw_gain": round(jaw, 3),
        "how": f"training/learned_motion/export.py calibrate() on {len(clips)} train-split clips of "
        "talkface eval --split train --generator learned --generator loudness",
    }
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"calibration: {meta['calibration']}")


def _calibrate_blink_widths(summary: dict, meta: dict, cal: dict) -> None:
    """Stretch the blink process's widths so that rendered blinks last as long as real ones, as the eval's
    blink detector sees both (blink_ms pooled over all blinks of the clips): cal["blink_width_stretch"],
    which multiplies the one the report was made with. It lives in the calibration, not in meta["blinks"],
    which blinks.py rewrites whole."""
    real, ours = summary["real"].get("blink_ms"), summary["learned"].get("blink_ms")
    if "blinks" not in meta or not real or not ours:
        return
    stretch = float(np.clip(real / ours, 0.5, 2.0)) * cal.get("blink_width_stretch", 1.0)
    cal["blink_width_stretch"] = round(stretch, 3)
    print(f"blink widths x {stretch:.3f} (rendered blinks {ours:.0f} ms, real {real:.0f} ms)")


ROTATION_LIMIT_PERCENTILE = 95.0


def calibrate_outputs(data: Path, assets: Path = ASSETS) -> None:
    """Output calibration from the train split's talking clips: the head's rotation limit
    (ROTATION_LIMIT_PERCENTILE of the real heads' absolute yaw, pitch and roll)."""
    from training.learned_motion.dataset import CACHE, build_all

    rotation = [c.motion["orig"][:, ROT] for c in build_all(data, CACHE) if c.talking]
    limit = np.percentile(np.abs(np.concatenate(rotation)), ROTATION_LIMIT_PERCENTILE, axis=0)
    meta_path = assets / META_FILE
    meta = json.loads(meta_path.read_text())
    meta.setdefault("calibration", dict(CALIBRATION))["rotation_limit"] = np.round(limit, 2).tolist()
    meta["calibration"].pop("blink_curve", None)  # lids now come from the blink process (blinks.py)
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"rotation limit {limit.round(2)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "reports" / "learned_motion" / "model.pt")
    ap.add_argument(
        "--eval-report",
        type=Path,
        action="append",
        help="report.json of talkface eval (repeat: one per seed)",
    )
    ap.add_argument(
        "--calibrate",
        type=Path,
        default=None,
        help="report.json of talkface eval --split train (see calibrate)",
    )
    ap.add_argument("--jaw-only", action="store_true", help="with --calibrate: keep the head gains")
    ap.add_argument(
        "--calibrate-outputs",
        type=Path,
        default=None,
        help="the development media folder (see calibrate_outputs)",
    )
    args = ap.parse_args()
    if args.calibrate_outputs:
        calibrate_outputs(args.calibrate_outputs)
        return
    if args.calibrate:
        calibrate(args.calibrate, jaw_only=args.jaw_only)
        return
    if args.eval_report:
        record_eval(args.eval_report)
        return
    ck = torch.load(args.checkpoint, weights_only=False)
    cfg = ModelConfig(**ck["model_config"])
    model = MotionFlow(cfg, torch.zeros(FEATURE_DIM), torch.ones(FEATURE_DIM))
    model.load_state_dict(ck["model"])
    info = json.loads((args.checkpoint.parent / "train.json").read_text())
    export(model, info, np.asarray(ck["motion_mean"]), np.asarray(ck["motion_std"]))


if __name__ == "__main__":
    main()
