r"""The heard jaw live: fit how a live stream stacks the live heard jaw (audio.heard_jaw.LiveHeardJaw) with
each live mouth filter's jaw ("live", "live_edge": training/learned_motion/live_mouth.py), as finetune.py
fits the offline stack.

Live, the heard jaw cannot take its log-mel relative to the whole recording's mean level: it takes it
relative to the running mean of what it has heard, drawn at first towards the train voices' mean spectral
shape (`profile`, at the level heard so far) as if that had been heard for `prior_frames` frames. A frame
whose net reads audio not yet received (the "live_edge" filter makes a frame 40 ms past its end, the net
reads 70 ms ahead) reads the last frame received in its place. Its values are not made unit-spread (that
needs the whole recording): the stack is fitted on them as they are.

Each train clip (its own audio) is replayed as a live stream makes it: for each frame, the live filter's
inputs from the phones LivePhones knows when the frame is made (live_mouth.window_inputs), and the heard jaw
of the fold's live net (finetune.py --fold-models: fine-tuned without the clip's speakers) from the 100 Hz
features received by then (4 * (frame + ahead + 1) feature frames), and the live filter fitted without the
clip's speakers as live_mouth.py fits it (the same folds: both use mouth.speaker_order). In sample, the
filters would follow the train jaws better than they follow new ones (0.314 against 0.291 for "live") and
the stack would trust them more than it should. prior_frames is chosen among PRIOR_FRAMES by the heard
jaw's own out-of-fold r. Prints the cross-validation (mean per-clip r with the real jaw of the filter,
the heard jaw and the stack, weighed by speech as the stream weighs it); writes motion_model.json "mouth"
"heard_jaw" "live" unless --cv-only.

--mix then measures the live share of the rules' acoustic jaw (calibration rules_jaw_live, mixed in after
the stack, the voice gate and the pauses, as offline): each train clip streamed live in 20-ms pushes (real
time) through its fold's model (the fold's nets, the stacks just fitted) at each share of MIX_SHARES, and
writes the share with the best mean per-clip r of the jaw with the real one. `make train` does not: the
shares tie (0.286, 0.286, 0.287, 0.284 and 0.278 at 0, 0.1, 0.2, 0.35 and 0.5), and at 0.2 the mouth on
screen followed the voice's level half as well as at the shipped 0.35 (tests/test_webrtc.py's A/V check).

    .venv/bin/python -m training.viseme_net.finetune ../shared/data --cv-only --fold-models /tmp/folds
    .venv/bin/python -m training.viseme_net.live_stack ../shared/data --folds /tmp/folds [--cv-only]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from talkface.audio.features import FeatureStream, concat_features
from talkface.audio.heard_jaw import HEARD_JAW_FILE, LIVE_HEARD_JAW_FILE, LiveHeardJaw, LivePrior
from talkface.audio.load import load_audio
from talkface.motion.learned import META_FILE, MODEL_FILE, MODEL_FPS
from training.learned_motion.dataset import CACHE as LM_CACHE
from training.learned_motion.dataset import ClipData, build_all
from training.learned_motion.live_mouth import AHEADS, WINDOW, fit, live_inputs
from training.learned_motion.mouth import ASSETS, _r, speaker_order
from training.viseme_net.finetune import FOLDS, stack

log = logging.getLogger("viseme_net.live_stack")

PRIOR_FRAMES = (0.0, 100.0, 300.0, 1000.0)  # candidates: 0, 1, 3 and 10 s of the profile in the running mean
PER_FRAME = 4  # feature frames per model frame (100 Hz / 25 fps)
MIX_SHARES = (0.0, 0.1, 0.2, 0.35, 0.5)  # --mix: the live shares of the rules' jaw tried
PUSH = 320  # --mix: 20 ms at 16 kHz, audio in real time


def heard_features(path: Path):
    """(100 Hz features, silero-vad's speech probability per frame) of a clip's audio, as a live
    FeatureStream gives them."""
    stream = FeatureStream()
    audio = load_audio(path)
    first = stream.push(audio.samples)
    speech = [stream.speech]
    last = stream.finish()
    speech.append(stream.speech)
    return concat_features([first, last]), np.concatenate(speech)


def live_heard(features, speech: np.ndarray, prior: LivePrior, net: Path, n: int, ahead: int):
    """(jaw, weight) per model frame 0..n-1 as a live stream reads them when it makes each frame, `ahead`
    frames past it."""
    heard = LiveHeardJaw(prior, MODEL_FPS, net)
    jaw, weight = np.zeros(n, np.float32), np.zeros(n, np.float32)
    fed = 0
    for j in range(n):
        known = min(PER_FRAME * (j + ahead + 1), len(features))
        if known > fed:
            heard.push(features.sliced(fed, known), speech[fed:known])
            fed = known
        jaw[j : j + 1], weight[j : j + 1] = heard.jaw(j, 1)
    return jaw, weight


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="the development media folder (talking/, manifest.tsv)")
    ap.add_argument("--folds", type=Path, required=True, help="finetune.py --fold-models' folder")
    ap.add_argument("--cv-only", action="store_true", help="print the cross-validation, write nothing")
    ap.add_argument("--mix", action="store_true", help="then refit the live share of the rules' jaw")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    meta_path = ASSETS / META_FILE
    fold_of = {
        link.stem: folder / LIVE_HEARD_JAW_FILE
        for folder in sorted(args.folds.glob("fold*"))
        for link in (folder / "clips").iterdir()
    }
    clips: list[ClipData] = [c for c in build_all(args.data, LM_CACHE) if c.talking and c.name in fold_of]
    paths = {p.stem: p for p in (args.data / "talking").iterdir()}
    log.info("%d clips in %d folds", len(clips), len(set(fold_of.values())))
    heard = {c.name: heard_features(paths[c.name]) for c in clips}
    means = [f.log_mel.mean(0) for f, _ in heard.values()]
    profile = np.mean([m - m.mean() for m in means], 0)
    # Each clip's out-of-fold live filter jaw, of its own audio.
    inputs = {kind: live_inputs(clips, args.data, WINDOW, LM_CACHE, ahead) for kind, ahead in AHEADS.items()}
    order, filtered = speaker_order(clips), {kind: {} for kind in AHEADS}
    for k in range(FOLDS):
        held = set(order[k::FOLDS])
        if {fold_of[c.name] for c in clips if c.speaker in held} != {
            args.folds / f"fold{k}" / LIVE_HEARD_JAW_FILE
        }:
            raise SystemExit(f"{args.folds}/fold{k} does not hold out fold {k}'s speakers")
        train = [c for c in clips if c.speaker not in held]
        for kind, ahead in AHEADS.items():
            f = fit(train, inputs[kind], ahead)
            for c in clips:
                if c.speaker in held:
                    filtered[kind][c.name] = f.of_windows(inputs[kind][c.name]["orig"])[:, 0]
    log.info("live filters fitted out of fold")

    def rows_of(
        prior: LivePrior, kind: str
    ) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        out = []
        for c in clips:
            f, real = filtered[kind][c.name], c.motion["orig"][:, 0]
            n = min(len(f), len(real))
            g, w = live_heard(*heard[c.name], prior, fold_of[c.name], n, AHEADS[kind])
            out.append((c.name, f[:n], g, real[:n], w))
        return out

    # The prior by the heard jaw alone, with the furthest-reading filter's timing.
    scores = {}
    for k in PRIOR_FRAMES:
        rows = rows_of(LivePrior(profile, k), "live")
        scores[k] = float(np.nanmean([_r(g, real) for _, _, g, real, _ in rows]))
        log.info("prior of %.0f frames: heard jaw alone r %.3f", k, scores[k])
    prior = LivePrior(profile, max(scores, key=scores.get))
    stacks, cv = {}, {"prior_frames_r": {str(int(k)): round(v, 3) for k, v in scores.items()}}
    for kind in AHEADS:
        rows = rows_of(prior, kind)
        a, b, c0 = stack([(f, g, real) for _, f, g, real, _ in rows], (0,))
        r_f = np.array([_r(f, real) for _, f, _, real, _ in rows])
        r_g = np.array([_r(g, real) for _, _, g, real, _ in rows])
        r_s = np.array([_r(w * (a * f + b[0] * g + c0) + (1 - w) * f, real) for _, f, g, real, w in rows])
        d = r_s - r_f
        cv[kind] = {
            "filter": round(float(np.nanmean(r_f)), 3),
            "heard_jaw": round(float(np.nanmean(r_g)), 3),
            "stack": round(float(np.nanmean(r_s)), 3),
            "stack_minus_filter": [
                round(float(np.nanmean(d)), 3),
                round(float(np.nanstd(d, ddof=1) / np.sqrt(len(d))), 3),
            ],
            "stack_better_clips": f"{int((d > 0).sum())}/{len(d)}",
        }
        stacks[kind] = {
            "filter": round(a, 5),
            "net": np.round(b, 5).tolist(),
            "net_taps": [0],
            "offset": round(c0, 5),
        }
        log.info("%s: %s; stack a %.3f b %.4f c %.3f", kind, json.dumps(cv[kind]), a, b[0], c0)
    live = {
        "profile": np.round(prior.profile, 4).tolist(),
        "prior_frames": prior.frames,
        "stacks": stacks,
    }
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if args.mix:
        share, table = fit_live_mix(clips, paths, args.folds, live)
        if not args.cv_only:
            meta["calibration"]["rules_jaw_live"] = share
            meta["calibration"]["rules_jaw_live_how"] = (
                "training/viseme_net/live_stack.py --mix: the best mean jaw r (before rendering) of the "
                "train clips streamed live in 20-ms pushes through the fold model whose heard jaw never saw "
                "them, the live heard jaw stacked: "
                + ", ".join(f"{m:.2f}: {r:.3f}" for m, r in table.items())
            )
    if args.cv_only:
        return
    meta["mouth"]["heard_jaw"]["live"] = {
        **live,
        "sha256": _sha256(ASSETS / LIVE_HEARD_JAW_FILE),
        "cross_validation": {**cv, "clips": len(clips)},
        "how": (
            "training/viseme_net/live_stack.py: the stacks fitted on the train clips replayed live, the "
            "heard jaw of the folds' nets (finetune.py --fold-models) and the folds' live filters"
        ),
    }
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    log.info("wrote the live stacks into %s", meta_path)


def fit_live_mix(
    clips: list[ClipData], paths: dict[str, Path], folds: Path, live: dict
) -> tuple[float, dict[float, float]]:
    """(share, {share: mean per-clip r}): the live share of the rules' jaw with the best r of each train
    clip streamed live through its fold's model (with `live` as its heard_jaw live section)."""
    import tempfile

    from talkface.config import MotionControls
    from talkface.motion.contract import concat_motion
    from talkface.motion.learned import LearnedStream
    from talkface.motion.stream import AudioMotion

    samples = {c.name: load_audio(paths[c.name]).samples for c in clips}
    # The live filters as shipped now (live_mouth.py may have refitted them since the folds were written).
    shipped = json.loads((ASSETS / META_FILE).read_text(encoding="utf-8"))["mouth"]
    fold_dirs = sorted(folds.glob("fold*"))
    held = {link.stem: d for d in fold_dirs for link in (d / "clips").iterdir()}
    table = {}
    with tempfile.TemporaryDirectory() as tmp:
        for share in MIX_SHARES:
            rs = []
            for d in fold_dirs:
                model = Path(tmp) / f"{d.name}_{share}" / MODEL_FILE
                model.parent.mkdir()
                for name in (MODEL_FILE, HEARD_JAW_FILE, LIVE_HEARD_JAW_FILE):
                    (model.parent / name).write_bytes((d / name).read_bytes())
                meta = json.loads((d / META_FILE).read_text(encoding="utf-8"))
                meta["mouth"].update({kind: shipped[kind] for kind in AHEADS})
                meta["mouth"]["heard_jaw"]["live"] = {**live, "sha256": _sha256(d / LIVE_HEARD_JAW_FILE)}
                meta["calibration"]["rules_jaw_live"] = share
                model.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
                for c in clips:
                    if held[c.name] != d:
                        continue
                    source = AudioMotion(
                        LearnedStream(MODEL_FPS, MotionControls(), model=model), live_phones=True
                    )
                    x = samples[c.name]
                    parts = [source.push(x[k : k + PUSH]) for k in range(0, len(x), PUSH)]
                    jaw = concat_motion([*parts, source.finish()]).expression[:, 0]
                    real = c.motion["orig"][:, 0]
                    n = min(len(jaw), len(real))
                    rs.append(_r(jaw[:n], real[:n]))
            table[share] = float(np.nanmean(rs))
            log.info("live share of the rules' jaw %.2f: r %.4f", share, table[share])
    return max(table, key=table.get), table


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    main()
