r"""The learned jaw's two calibrations (training/learned_motion/jaw_curve.py: the rules' share of the jaw,
then the jaw curve), refitted out of fold for the heard jaw: the shipped net was fine-tuned on every train
clip, so a train-split eval of it would render jaws it has seen. finetune.py --fold-models writes, per
speaker-disjoint fold, the shipped model with the fold's net and links to the fold's held-out clips; each
fold's eval renders clips its net never saw.

    .venv/bin/python -m training.viseme_net.finetune ../shared/data --cv-only --fold-models F
    for k in 0 1 2 3; do talkface eval F/fold$k/clips --generator learned --no-videos --no-reenact \
        --motion-model F/fold$k/motion_model.onnx --report F/eval$k; done    # the folds' rules_jaw is 0
    .venv/bin/python -m training.viseme_net.calibrate F ../shared/data --mix RULES_REPORT
        # RULES_REPORT: a train-split eval with --generator rules (its plots/mouth_*.npz)
    # set each F/fold*/motion_model.json's calibration rules_jaw to the share printed, eval the folds again
    .venv/bin/python -m training.viseme_net.calibrate F ../shared/data --curve

--mix prints each share's mean per-clip r of the rendered openings mixed (as jaw_curve.py --mix) and writes
the best into the shipped calibration; --curve fits the jaw curve on the folds' renders (jaw_curve.fit, the
jaws recomputed with each fold's model without its curve) and writes it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from talkface.audio.heard_jaw import HEARD_JAW_FILE
from talkface.motion.learned import META_FILE, MODEL_FILE
from training.learned_motion.jaw_curve import MIXES, _r, clip_jaws, curve_json, fit, load, print_table
from training.learned_motion.mouth import ASSETS

FOLDS = 4


def fold_reports(folds: Path) -> list[tuple[Path, dict]]:
    dirs = [folds / f"eval{k}" for k in range(FOLDS)]
    return [(d, json.loads((d / "report.json").read_text())) for d in dirs]


def fit_mix(folds: Path, rules_report: Path) -> tuple[float, dict[float, float]]:
    """The rules' share of the jaw with the best mean per-clip r over the folds' held-out clips: the folds'
    rendered openings (rules_jaw 0) mixed with the rules' from rules_report."""
    series = []
    for report_dir, report in fold_reports(folds):
        for c in report["clips"]:
            if c.get("error"):
                continue
            stem = Path(c["clip"]).stem
            ours = np.load(report_dir / "plots" / f"mouth_{stem}.npz")
            rules = np.load(rules_report / "plots" / f"mouth_{stem}.npz")
            n = min(len(ours["real"]), len(ours["gen_learned"]), len(rules["gen_rules"]))
            series.append((ours["real"][:n], ours["gen_learned"][:n], rules["gen_rules"][:n]))
    table = {
        float(m): float(np.nanmean([_r(real, (1 - m) * o + m * r) for real, o, r in series])) for m in MIXES
    }
    return max(table, key=table.get), table


def fit_curve(folds: Path, data: Path) -> tuple[float, dict]:
    """jaw_curve.fit over the folds' held-out clips, each clip's jaw made by its fold's model without the
    curve it was rendered with."""
    clips = []
    for k, (report_dir, report) in enumerate(fold_reports(folds)):
        meta = json.loads((folds / f"fold{k}" / META_FILE).read_text())
        curve = meta["calibration"].get("jaw_curve")
        with tempfile.TemporaryDirectory() as tmp:
            model = Path(tmp) / MODEL_FILE
            for name in (MODEL_FILE, HEARD_JAW_FILE):
                (Path(tmp) / name).write_bytes((folds / f"fold{k}" / name).read_bytes())
            bare = {key: v for key, v in meta["calibration"].items() if key != "jaw_curve"}
            model.with_suffix(".json").write_text(json.dumps(dict(meta, calibration=bare)))
            jaws = clip_jaws(report, folds / f"fold{k}" / "clips", "learned", model)
        clips += load(report_dir, jaws, "learned", curve)
    return fit(clips)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folds", type=Path, help="finetune.py --fold-models' folder, with eval0..3 in it")
    ap.add_argument("data", type=Path, help="the development media folder")
    ap.add_argument("--mix", type=Path, metavar="RULES_REPORT", help="fit the rules' share of the jaw")
    ap.add_argument("--curve", action="store_true", help="fit the jaw curve")
    args = ap.parse_args()
    meta_path = ASSETS / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    cal = meta["calibration"]
    if args.mix:
        mix, table = fit_mix(args.folds, args.mix)
        for m, r in table.items():
            print(f"  rules' share {m:.2f}: r {r:.4f}")
        cal["rules_jaw"] = mix
        cal["rules_jaw_how"] = (
            "training/viseme_net/calibrate.py --mix: the best mean lip-sync r of the train split's clips, "
            f"each rendered by the fold model whose heard jaw never saw it (r {table[0.0]:.3f} unmixed, "
            f"{table[mix]:.3f} at {mix:.2f})"
        )
        print(f"rules' share of the jaw: {mix}")
    if args.curve:
        a, info = fit_curve(args.folds, args.data)
        print_table(info)
        cal["jaw_curve"] = curve_json(
            a,
            info,
            "training/viseme_net/calibrate.py --curve",
            "train-split clips, each rendered by the fold model whose heard jaw never saw it",
        )
        print(f"jaw curve: closes below {a}")
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
