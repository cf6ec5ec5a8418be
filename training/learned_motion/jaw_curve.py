r"""Fit the learned generator's jaw curve: below a jaw of `a` (after the jaw gain) the lips close, from `a`
to 2a the jaw ramps back up to itself, above 2a it is unchanged. `a` is chosen so that the rendered mouth
is closed in as many voiced frames as real speakers' mouths are, on the TRAIN split.

Why: the mouth filter is a regression, so its jaw hovers near the middle of its range. Rendered, it rarely
closes while the voice goes on (train: 13 % of voiced frames against the real mouths' 20 %; validation:
23 % against 33 %). Real lips touch between syllables and on p, b, m. The curve is monotone and keeps the
peaks, so the lip-sync r barely moves; it moves the low values to where real lips close.

It matches the rate, it does not maximise the closed-mouth F1: that frame-level F1 rewards closing more
(a mouth that never opens scores 0.49 on train and 0.58 on validation, more than any generator), so a
fit on it would close the mouth too often.

How, from a `talkface eval --split train --generator learned ...` report (it saves each clip's real and
rendered openings per frame, and the voicing, in REPORT/plots/mouth_*.npz):
1. the jaw of each frame before the curve: the learned generator (the shipped model without its curve) run
   again on each clip's audio with the report's fps and seed (the motion does not depend on the portrait);
2. per clip, the rendered opening as a monotone function of the jaw (medians over jaw bins, extended
   linearly): the renderer and tracker on that clip's portrait;
3. for each candidate `a`, the openings the curve would render, and their share of closed voiced frames
   (opening < talkface.eval.metrics.CLOSED_MOUTH), per clip then averaged like the eval; `a` is where it
   meets the real share. Clips whose real mouth never opens to the tracker (median voiced opening below
   MIN_REAL_OPENING: a tracking failure on small, blurred faces) are left out.
The new curve replaces the one the report was rendered with (the jaws are taken before it; the renderer's
response is read through it).

The rules' mouth needs none: it already renders closed in 26 % of voiced train frames (its stop closures
and voice gate) against the real 20 % (`--generator rules` prints its table).

With --mix it fits the other calibration of the learned jaw instead: the share of the rule generator's
acoustic jaw mixed into the jaw read from heard phones (calibration "rules_jaw"; motion.learned), the
share whose mix of the two generators' rendered openings follows the real ones best (mean per-clip r).
The two mouths err differently: on the 43 train clips r 0.307 unmixed, 0.348 at 0.35. Fit the mix first
(a report with both generators), then the curve on a new report of the mixed jaw:

    talkface eval ../shared/data/talking --split train --generator learned --generator rules \
        --no-videos --no-reenact --report REPORT_DIR
    .venv/bin/python -m training.learned_motion.jaw_curve REPORT_DIR ../shared/data/talking --mix
    talkface eval ... --generator learned ... --report REPORT2_DIR
    .venv/bin/python -m training.learned_motion.jaw_curve REPORT2_DIR ../shared/data/talking

The shipped model's offline jaw now stacks the heard jaw, whose net was fine-tuned on the train clips: its
calibrations are refitted out of fold by training/viseme_net/calibrate.py, with this script's fits.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkface.eval import metrics as M
from talkface.motion.learned import META_FILE, MODEL_FILE
from training.learned_motion.export import ASSETS, CALIBRATION

CANDIDATES = np.round(np.arange(0.0, 0.2001, 0.005), 3)  # the closing threshold `a` tried
H_BINS = 12  # jaw bins of each clip's jaw -> rendered opening function
MIN_REAL_OPENING = 0.01  # eye distances: a real voiced median below this is a tracking failure
VOICED = 0.5


def curve_knots(a: float) -> tuple[np.ndarray, np.ndarray]:
    """Knots (x, y) of the curve with threshold a: shut below a, back to the jaw itself at 2a."""
    if a > 0:
        return np.array([0.0, a, 2 * a, 1.0]), np.array([0.0, 0.0, 2 * a, 1.0])
    return np.array([0.0, 1.0]), np.array([0.0, 1.0])


@dataclass
class Clip:
    name: str
    fps: float
    jaw: np.ndarray  # (T,) before the jaw curve
    ours: np.ndarray  # rendered opening per frame (NaN: no face)
    real: np.ndarray
    voiced: np.ndarray  # bool
    h_jaw: np.ndarray  # the clip's jaw -> rendered opening function: knots
    h_open: np.ndarray
    h_slope: float  # above the last knot

    def render(self, jaw: np.ndarray) -> np.ndarray:
        """The openings the renderer would give these jaws (NaN where it found no face)."""
        out = np.interp(jaw, self.h_jaw, self.h_open)
        top = jaw > self.h_jaw[-1]
        out[top] = self.h_open[-1] + (jaw[top] - self.h_jaw[-1]) * self.h_slope
        return np.where(np.isfinite(self.ours), out, np.nan)


def load(
    report_dir: Path, jaws: dict[str, np.ndarray], generator: str, curve: dict | None = None
) -> list[Clip]:
    """The clips, with their jaws before the curve (`jaws`) and, through `curve` (the one the report was
    rendered with), each clip's rendered opening as a function of the jaw as rendered."""
    clips = []
    for name, jaw in jaws.items():
        d = np.load(report_dir / "plots" / f"mouth_{Path(name).stem}.npz")
        n = min(len(jaw), len(d["real"]), len(d[f"gen_{generator}"]), len(d["voicing"]))
        jaw, ours = jaw[:n], d[f"gen_{generator}"][:n]
        shown = np.interp(jaw, curve["x"], curve["y"]) if curve else jaw
        seen = np.isfinite(ours)
        edges = np.unique(np.quantile(shown[seen], np.linspace(0.0, 1.0, H_BINS + 1)))
        which = np.clip(np.searchsorted(edges, shown[seen], side="right") - 1, 0, len(edges) - 2)
        bins = [b for b in range(len(edges) - 1) if (which == b).any()]
        h_jaw = np.array([np.median(shown[seen][which == b]) for b in bins])
        h_open = np.maximum.accumulate(np.array([np.median(ours[seen][which == b]) for b in bins]))
        mid = len(bins) // 2
        slope = (h_open[-1] - h_open[mid]) / max(h_jaw[-1] - h_jaw[mid], 1e-3)
        clips.append(
            Clip(
                name,
                float(d["fps"]),
                jaw,
                ours,
                d["real"][:n],
                d["voicing"][:n] >= VOICED,
                h_jaw,
                h_open,
                slope,
            )
        )
    return clips


def closed_share(openings: np.ndarray, clip: Clip) -> float:
    ok = clip.voiced & np.isfinite(openings) & np.isfinite(clip.real)
    return float(np.mean(openings[ok] < M.CLOSED_MOUTH)) if ok.any() else float("nan")


def fit(clips: list[Clip]) -> tuple[float, dict]:
    """The threshold `a`, and the table of every candidate's simulated numbers."""
    used = [c for c in clips if np.nanmedian(np.where(c.voiced, c.real, np.nan)) >= MIN_REAL_OPENING]
    real = np.nanmean([closed_share(c.real, c) for c in used])
    table = []
    for a in CANDIDATES:
        x, y = curve_knots(float(a))
        sim = [c.render(np.interp(c.jaw, x, y)) for c in used]
        table.append(
            {
                "a": float(a),
                "voiced_closed": float(
                    np.nanmean([closed_share(s, c) for s, c in zip(sim, used, strict=True)])
                ),
                "closure_f1": float(
                    np.nanmean([M.closure_f1(c.real, s, c.fps) for s, c in zip(sim, used, strict=True)])
                ),
                "closure_onset_f1": float(
                    np.nanmean([M.closure_onset_f1(c.real, s, c.fps) for s, c in zip(sim, used, strict=True)])
                ),
                "r": float(np.nanmean([_r(c.real, s) for s, c in zip(sim, used, strict=True)])),
            }
        )
    shares = np.array([t["voiced_closed"] for t in table])
    a = float(np.interp(real, shares, CANDIDATES)) if shares[0] < real < shares[-1] else 0.0
    info = {
        "clips": len(used),
        "left_out": [c.name for c in clips if c not in used],
        "real_voiced_closed": float(real),
        "table": table,
    }
    return round(a, 3), info


def _r(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 2 and np.std(b[ok]) > 0 else float("nan")


MIXES = np.round(np.arange(0.0, 0.601, 0.05), 2)  # the rules' shares of the jaw tried (fit_mix)


def fit_mix(report_dir: Path, clips: list[str]) -> tuple[float, dict]:
    """The share of the rules' acoustic jaw in the learned jaw (calibration "rules_jaw") that gives the
    best mean per-clip lip-sync r on the report's clips, mixing the rendered openings of the two
    generators (the renderer is near linear in the jaw); and each share's r."""
    series = []
    for name in clips:
        d = np.load(report_dir / "plots" / f"mouth_{Path(name).stem}.npz")
        n = min(len(d["real"]), len(d["gen_learned"]), len(d["gen_rules"]))
        series.append((d["real"][:n], d["gen_learned"][:n], d["gen_rules"][:n]))
    table = {
        float(m): float(np.nanmean([_r(real, (1 - m) * ours + m * rules) for real, ours, rules in series]))
        for m in MIXES
    }
    return max(table, key=table.get), table


def clip_jaws(report: dict, data: Path, generator: str, model: Path | None = None) -> dict[str, np.ndarray]:
    """{clip: the generator's jaw per frame} for the report's clips (the learned one with `model`)."""
    from talkface.audio.load import AudioReader
    from talkface.config import AnimateOptions
    from talkface.engine import Engine

    engine = Engine(ASSETS / "portrait.jpg", AnimateOptions(size=256))
    jaws = {}
    for c in report["clips"]:
        if c.get("error"):
            continue
        options = AnimateOptions(
            size=256, fps=c["fps"], seed=c["seed"], generator=generator, motion_model=model
        )
        motion = engine.motion_windows(AudioReader(data / c["clip"]), options)
        jaws[c["clip"]] = np.concatenate([m.expression[:, 0] for m in motion])
        print(f"  {c['clip']}: {len(jaws[c['clip']])} frames", flush=True)
    return jaws


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", type=Path, help="folder of talkface eval --split train (with plots/)")
    ap.add_argument("data", type=Path, help="the development media folder the report was made on")
    ap.add_argument(
        "--generator",
        choices=("learned", "rules"),
        default="learned",
        help="rules: print the table only (the rules' mouth has no curve)",
    )
    ap.add_argument(
        "--mix",
        action="store_true",
        help="fit the share of the rules' acoustic jaw in the learned jaw instead (needs both generators "
        "in the report); refit the curve on a new report after it",
    )
    args = ap.parse_args()
    report = json.loads((args.report / "report.json").read_text())
    if args.mix:
        write_mix(args.report, report)
        return
    meta_path = ASSETS / META_FILE
    meta = json.loads(meta_path.read_text())
    cal = meta.setdefault("calibration", dict(CALIBRATION))
    curve = cal.get("jaw_curve") if args.generator == "learned" else None
    with tempfile.TemporaryDirectory() as tmp:
        model = None
        if curve:  # the jaws before the curve: the shipped model without it
            model = Path(tmp) / MODEL_FILE
            model.write_bytes((ASSETS / MODEL_FILE).read_bytes())
            bare = dict(cal)
            del bare["jaw_curve"]
            model.with_suffix(".json").write_text(json.dumps(dict(meta, calibration=bare)))
        jaws = clip_jaws(report, args.data, args.generator, model)
    a, info = fit(load(args.report, jaws, args.generator, curve))
    print_table(info)
    if args.generator != "learned":
        print(f"{args.generator}: closes below {a} would match the real rate (not written)")
        return
    cal["jaw_curve"] = curve_json(a, info, "training/learned_motion/jaw_curve.py", "train-split clips")
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"jaw curve: closes below {a}: {cal['jaw_curve']}")


def print_table(info: dict) -> None:
    """fit()'s table, a line per candidate threshold."""
    for t in info["table"]:
        print(
            f"  a {t['a']:.3f}: voiced closed {t['voiced_closed']:.3f} "
            f"(real {info['real_voiced_closed']:.3f}), simulated closed-mouth F1 {t['closure_f1']:.3f}, "
            f"closures F1 {t['closure_onset_f1']:.3f}, r {t['r']:.3f}"
        )


def curve_json(a: float, info: dict, script: str, clips: str) -> dict:
    """The calibration's jaw_curve entry for threshold a, fitted by `script` on `clips` (fit()'s info)."""
    x, y = curve_knots(a)
    return {
        "x": np.round(x, 4).tolist(),
        "y": np.round(y, 4).tolist(),
        "how": f"{script}: closes below {a} so that {100 * info['real_voiced_closed']:.0f} % of voiced "
        f"frames render closed, as real mouths are, on {info['clips']} {clips} (left out, the real mouth "
        f"never opens to the tracker: {', '.join(info['left_out']) or 'none'})",
    }


def write_mix(report_dir: Path, report: dict) -> None:
    clips = [c["clip"] for c in report["clips"] if not c.get("error")]
    mix, table = fit_mix(report_dir, clips)
    for m, r in table.items():
        print(f"  rules' share {m:.2f}: r {r:.3f}")
    meta_path = ASSETS / META_FILE
    meta = json.loads(meta_path.read_text())
    cal = meta.setdefault("calibration", dict(CALIBRATION))
    old = float(cal.get("rules_jaw", 0.0))
    cal["rules_jaw"] = round(old + mix * (1.0 - old), 3)  # the report's learned jaw already held `old`
    cal["rules_jaw_how"] = (
        f"training/learned_motion/jaw_curve.py --mix: the best mean lip-sync r of {len(clips)} train-split "
        f"clips (r {table[0.0]:.3f} unmixed, {table[mix]:.3f} at {mix:.2f} on top of {old:.2f})"
    )
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"rules' share of the jaw: {cal['rules_jaw']}")


if __name__ == "__main__":
    main()
