"""Does the rendered face show the emotion it was asked for? An emotion reader that knows nothing of the rig.

For each portrait and each emotion in config.EMOTIONS, a short clip is rendered through the public API
(talkface.animate, the rules generator, the bundled speech cut to `seconds`, or silence), tracked with the
face mesh (eval.tracking.track_video) and read as geometric action-unit (AU) signals relative to a neutral
render of the same portrait with the same seed, audio and options. The same speech, blinks and head motion
are in both renders, so what differs is the emotion. Nothing here imports the renderer's emotion code
(face.action_units, motion.controls): the only input is the rendered pixels, through the tracker.

    python -m talkface.eval.emotions [PORTRAIT ...] --out DIR

writes DIR/emotions.json, DIR/emotions.md and the clips (DIR/videos). Default portrait: the bundled one.

Measurement. Every frame is put into the neutral render's frame with a 2-D similarity fit (rotation in the
image plane, scale, shift; eval.metrics.align_2d) of the nose bridge and tip, the eye corners and the cheek
sides (metrics.POSE_ANCHORS) onto the neutral render's mean face, levelled so that the eye corners lie on
a horizontal line; lengths are in that face's eye distances (eye centre to eye centre, ~63 mm on an adult:
1 mm ~ 0.016). Each measure below is the median over frames (robust to blinks and to the odd mistracked
frame), and an AU signal is a difference of medians, emotion render minus neutral render; positive = the
action unit's direction. "Height" is above the line of the four eye corners; the nose point is 2 (below the
tip); the lip centre is the middle of the inner lips (13, 14); the midline is the mean x of 0, 2, 13, 14, 17.

    AU1    inner brow raise      height of the inner brows (107 66 55 65 | 336 296 285 295) up
    AU2    outer brow raise      height of the outer brows (70 63 46 53 | 300 293 276 283) up
    AU4    brow lower / draw     the larger of: inner brow height down, inner brows' gap (x) narrower
    AU5    upper lid raise       height of the upper lids' middle (160 159 158 | 387 386 385) up: the
                                 aperture opened from above
    AU6/7  cheek raise, lid      height of the lower lids' middle (144 145 153 | 373 374 380) up: the
           tighten               aperture closed from below (one signal: the mesh cannot tell 6 from 7)
    AU9    nose wrinkle          height of the nose wings (48 64 98 | 278 294 327) up. A wrinkle also
                                 lowers the inner brows, shortening the nose-to-brow distance, but so does
                                 AU4: the wings' rise towards the eye line is the part only AU9 makes
    AU10   upper lip raise       distance from the nose point down to the upper lip (0), shorter
    AU12   lip corner pull       corners (61 | 291) up relative to the mean height of the lip centre and
                                 the nose point ("lift"), plus their outward move (x from the midline,
                                 "out") as far as it is matched by the lift: an oblique pull
    AU14U  unilateral pull       |right corner's (lift + out) - left corner's|: one side pulled (contempt)
    AU15   lip corner depress    corners down: -lift
    AU16   lower lip depress     lower lip (17) towards the chin (152): their distance shorter
    AU17   chin raise            lower lip (17) up towards the nose point
    AU20   lip stretch           the outward move the lift does not match: out - min(out, max(lift, 0))
    AU23/24 lip tighten/press    red of the lips thinner: (13 - 0) + (17 - 14) heights, shorter
    AU26   jaw drop              chin (152) down from the nose point

Evidence. A signal s becomes evidence e = clip((s - onset) / (full - onset), 0, 1) with the (onset, full)
of AU_THRESHOLDS, in eye distances. The onsets lie at or above what the face mesh reports between two
neutral renders that differ only in their random seed (the `control` row of the table: up to ~0.01); the
full values are a clear posed movement of a few millimetres: brows 5 mm (0.08), brow lowering 3 mm,
lids 2 mm, nose and lips 3 mm, lip corners 6 mm, jaw 10 mm (0.15). These thresholds are ours (FACS scores
intensity by appearance, not by distance): change them here and the table says what they give.

Rules. Emotions are Ekman & Friesen's EMFACS prototypes (Friesen & Ekman 1983, EMFACS-7; the predictions
table of the FACS Investigator's Guide, Ekman, Friesen & Hager 2002): happy 6+12; sad 1+4+15; surprised
1+2+5+26; fearful 1+2+4+5+20+26; angry 4+5+7+23/24; disgusted 9+15+16 (10 optional); contemptuous
unilateral 12+14 (here AU14U; the bilateral AU12 optional). An emotion's score is the soft Jaccard
(Tanimoto) overlap of the evidence with its prototype: the evidence of the prototype's AUs over (the number
of them + the evidence of AUs outside the prototype and its optional ones), 1 for exactly the prototype at
full strength, 0 for none of it. So a surprised face (1+2+5+26) scores surprised 1 and fearful 4/6, and a
fearful one fearful 1 and surprised 4/6. The top emotion is the highest score, or "neutral" when no score
reaches TOP_MIN.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from talkface.config import EMOTIONS, AnimateOptions, check_ranges
from talkface.errors import TalkfaceError
from talkface.eval import metrics as M
from talkface.eval.tracking import track_video

log = logging.getLogger(__name__)

TOP_MIN = 0.2  # below this best score the face reads as neutral

# (onset, full) of each AU signal, eye distances (see the module docstring).
AU_THRESHOLDS: dict[str, tuple[float, float]] = {
    "AU1": (0.01, 0.08),
    "AU2": (0.01, 0.08),
    "AU4": (0.008, 0.05),
    "AU5": (0.005, 0.03),
    "AU6/7": (0.005, 0.03),
    "AU9": (0.008, 0.05),
    "AU10": (0.008, 0.05),
    "AU12": (0.01, 0.1),
    "AU14U": (0.02, 0.06),  # an absolute difference: its noise is all positive
    "AU15": (0.005, 0.05),
    "AU16": (0.008, 0.05),
    "AU17": (0.008, 0.05),
    "AU20": (0.01, 0.06),
    "AU23/24": (0.005, 0.03),
    "AU26": (0.02, 0.15),
}
AUS = tuple(AU_THRESHOLDS)


@dataclass(frozen=True)
class Prototype:
    """An emotion's EMFACS prototype: the AUs it needs, and the AUs that may come with it (neither counted
    for nor against it)."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


PROTOTYPES: dict[str, Prototype] = {
    "happy": Prototype(("AU6/7", "AU12")),
    "sad": Prototype(("AU1", "AU4", "AU15")),
    "angry": Prototype(("AU4", "AU5", "AU6/7", "AU23/24")),
    "surprised": Prototype(("AU1", "AU2", "AU5", "AU26")),
    "disgusted": Prototype(("AU9", "AU15", "AU16"), optional=("AU10",)),
    "fearful": Prototype(("AU1", "AU2", "AU4", "AU5", "AU20", "AU26")),
    "contemptuous": Prototype(("AU14U",), optional=("AU12",)),
}
assert set(PROTOTYPES) == set(EMOTIONS), "one prototype per emotion the face can show"

# Landmarks (mediapipe face mesh; the subject's right side first).
INNER_BROWS = ([107, 66, 55, 65], [336, 296, 285, 295])
OUTER_BROWS = ([70, 63, 46, 53], [300, 293, 276, 283])
UPPER_LIDS = ([160, 159, 158], [387, 386, 385])
LOWER_LIDS = ([144, 145, 153], [373, 374, 380])
NOSE_WINGS = ([48, 64, 98], [278, 294, 327])
LIP_CORNERS = (61, 291)
NOSE_POINT, UPPER_LIP_TOP, LOWER_LIP_BOTTOM, CHIN = 2, 0, 17, 152
INNER_UPPER_MID, INNER_LOWER_MID = 13, 14
MIDLINE = [0, 2, 13, 14, 17]


def _opt(default, help: str, check=None, choices=None, parse=None):
    """A dataclass field with the CLI metadata of config.py's options (cli._add_options reads it)."""
    return field(default=default, metadata={"help": help, "check": check, "choices": choices, "parse": parse})


def _animate_range(name: str) -> tuple[float, float]:
    """AnimateOptions' range of field `name`: one source for the ranges these options share with it."""
    return next(f for f in dataclasses.fields(AnimateOptions) if f.name == name).metadata["check"]


@dataclass(frozen=True)
class EmotionCheckOptions:
    """`python -m talkface.eval.emotions`: what is rendered for each portrait and emotion."""

    emotions: tuple[str, ...] = _opt(EMOTIONS, "emotion to render; repeat for several", choices=EMOTIONS)
    strength: float = _opt(
        AnimateOptions.emotion_strength,
        "emotion strength of every render",
        _animate_range("emotion_strength"),
    )
    size: int = _opt(256, "render size in pixels", _animate_range("size"))
    seconds: float = _opt(2.0, "length of each clip: the bundled speech cut to this", (0.5, 10.0))
    silence: bool = _opt(False, "render silence instead of speech (the mouth at rest)")
    seed: int = _opt(
        0,
        "random seed of every render (the control neutral render uses seed + 1)",
        (0, _animate_range("seed")[1] - 1),
    )

    def __post_init__(self):
        check_ranges(self)


# -- measurement ---------------------------------------------------------------------------------------------


def levelled(shape: np.ndarray) -> np.ndarray:
    """A face (478, 2) turned in the image plane about its eye-corner centre so that the eye corners' line
    (the right pair's mean to the left pair's) is horizontal."""
    s = np.asarray(shape, np.float64)[:, :2]
    right = s[[M.EYE_CORNERS[0], M.EYE_CORNERS[1]]].mean(0)
    left = s[[M.EYE_CORNERS[2], M.EYE_CORNERS[3]]].mean(0)
    dx, dy = left - right
    a = -math.atan2(dy, dx)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    centre = 0.5 * (left + right)
    return (s - centre) @ rot.T + centre


def measures(aligned: np.ndarray) -> dict[str, np.ndarray]:
    """The geometric measures behind the AU signals, per frame, shape (T,) each, for levelled pose-free
    landmarks (T, 478, 2) in eye distances, y down (align_2d onto a levelled reference). Heights are
    above the eye corners' line; '_r' and '_l' are the subject's right and left."""
    a = np.asarray(aligned, np.float64)
    y, x = a[..., 1], a[..., 0]
    eye_line = y[:, M.EYE_CORNERS].mean(1)

    def height(idx):
        return eye_line - y[:, idx].mean(1)

    nose = y[:, NOSE_POINT]
    lip_centre = 0.5 * (y[:, INNER_UPPER_MID] + y[:, INNER_LOWER_MID])
    mid_x = x[:, MIDLINE].mean(1)
    out = {
        "inner_brow_height": 0.5 * (height(INNER_BROWS[0]) + height(INNER_BROWS[1])),
        "outer_brow_height": 0.5 * (height(OUTER_BROWS[0]) + height(OUTER_BROWS[1])),
        "inner_brow_gap": x[:, INNER_BROWS[1]].mean(1) - x[:, INNER_BROWS[0]].mean(1),
        "upper_lid_height": 0.5 * (height(UPPER_LIDS[0]) + height(UPPER_LIDS[1])),
        "lower_lid_height": 0.5 * (height(LOWER_LIDS[0]) + height(LOWER_LIDS[1])),
        "nose_wing_height": 0.5 * (height(NOSE_WINGS[0]) + height(NOSE_WINGS[1])),
        "nose_to_upper_lip": y[:, UPPER_LIP_TOP] - nose,
        "lip_thickness": (y[:, INNER_UPPER_MID] - y[:, UPPER_LIP_TOP])
        + (y[:, LOWER_LIP_BOTTOM] - y[:, INNER_LOWER_MID]),
        "nose_to_lower_lip": y[:, LOWER_LIP_BOTTOM] - nose,
        "lower_lip_to_chin": y[:, CHIN] - y[:, LOWER_LIP_BOTTOM],
        "nose_to_chin": y[:, CHIN] - nose,
    }
    for side, corner in zip("rl", LIP_CORNERS, strict=True):
        out[f"corner_lift_{side}"] = 0.5 * (lip_centre + nose) - y[:, corner]
        out[f"corner_out_{side}"] = np.abs(x[:, corner] - mid_x)
    return out


def median_measures(points: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """The median over frames of each of `measures`, for a track (T, 478, 3) in pixels aligned onto a
    levelled reference face (478, 2); NaN frames skipped (NaN if fewer than MIN_FRAMES have a face)."""
    aligned = M.align_2d(points, reference)
    found = np.isfinite(aligned).all((1, 2))
    if found.sum() < M.MIN_FRAMES:
        return {k: float("nan") for k in measures(aligned[:1])}
    return {k: float(np.median(v)) for k, v in measures(aligned[found]).items()}


def au_signals(face: dict[str, float], neutral: dict[str, float]) -> dict[str, float]:
    """The AU signals (eye distances, positive = the AU's direction; see the module docstring) of a face's
    median measures against the neutral render's."""
    d = {k: face[k] - neutral[k] for k in neutral}
    lift = 0.5 * (d["corner_lift_r"] + d["corner_lift_l"])
    out = 0.5 * (d["corner_out_r"] + d["corner_out_l"])
    oblique = min(max(out, 0.0), max(lift, 0.0))  # the part of the outward move a lift matches
    pull_r = d["corner_lift_r"] + d["corner_out_r"]
    pull_l = d["corner_lift_l"] + d["corner_out_l"]
    return {
        "AU1": d["inner_brow_height"],
        "AU2": d["outer_brow_height"],
        "AU4": max(-d["inner_brow_height"], -d["inner_brow_gap"]),
        "AU5": d["upper_lid_height"],
        "AU6/7": d["lower_lid_height"],
        "AU9": d["nose_wing_height"],
        "AU10": -d["nose_to_upper_lip"],
        "AU12": lift + oblique,
        "AU14U": abs(pull_r - pull_l),
        "AU15": -lift,
        "AU16": -d["lower_lip_to_chin"],
        "AU17": -d["nose_to_lower_lip"],
        "AU20": out - oblique,
        "AU23/24": -d["lip_thickness"],
        "AU26": d["nose_to_chin"],
    }


# -- classification ------------------------------------------------------------------------------------------


def evidence(signals: dict[str, float]) -> dict[str, float]:
    """Each AU signal as evidence 0..1 by its AU_THRESHOLDS (NaN stays NaN)."""
    out = {}
    for au, (onset, full) in AU_THRESHOLDS.items():
        s = signals.get(au, 0.0)
        out[au] = float(np.clip((s - onset) / (full - onset), 0.0, 1.0)) if math.isfinite(s) else float("nan")
    return out


def emotion_scores(signals: dict[str, float]) -> dict[str, float]:
    """The score 0..1 of every emotion for AU signals (eye distances): the soft Jaccard overlap of their
    evidence with the emotion's EMFACS prototype (see the module docstring)."""
    e = evidence(signals)
    if not all(math.isfinite(v) for v in e.values()):
        return {name: float("nan") for name in PROTOTYPES}
    scores = {}
    for name, proto in PROTOTYPES.items():
        hit = sum(e[au] for au in proto.required)
        extra = sum(v for au, v in e.items() if au not in proto.required and au not in proto.optional)
        scores[name] = hit / (len(proto.required) + extra)
    return scores


def top_emotion(scores: dict[str, float]) -> str:
    """The emotion with the highest score, or "neutral" when none reaches TOP_MIN (or the scores are NaN)."""
    finite = {k: v for k, v in scores.items() if math.isfinite(v)}
    if not finite or max(finite.values()) < TOP_MIN:
        return "neutral"
    return max(finite, key=finite.get)


# -- rendering and the table ---------------------------------------------------------------------------------


def clip_audio(path: Path, seconds: float, silence: bool) -> Path:
    """A WAV of the first `seconds` of the bundled speech (or of silence) at `path`."""
    from talkface.assets import asset_path
    from talkface.audio.load import SAMPLE_RATE, load_audio, write_wav

    n = int(round(seconds * SAMPLE_RATE))
    samples = np.zeros(n, np.float32) if silence else load_audio(asset_path("speech.flac")).samples[:n]
    return write_wav(path, samples, SAMPLE_RATE)


def portrait_readings(
    portrait: Path, audio: Path, video_dir: Path, name: str, options: EmotionCheckOptions
) -> dict:
    """Render, track and read one portrait: the neutral reference, a control neutral render (seed + 1) and
    every emotion of `options`. Returns {"portrait", "rows": {row: {"signals", "scores", "top", ...}}}."""
    from talkface import animate
    from talkface.video.watermark import new_payload

    def render(emotion: str, seed: int, tag: str) -> np.ndarray:
        out = video_dir / f"{name}.{tag}.mp4"
        anim = AnimateOptions(
            emotion=emotion,
            emotion_strength=options.strength,
            size=options.size,
            generator="rules",
            seed=seed,
        )
        # A fixed watermark id (eval.report's reason): the same seed renders the same pixels.
        animate(portrait, audio, out, anim, payload=new_payload(seed))
        return track_video(out).points.astype(np.float64)

    neutral = render("neutral", options.seed, "neutral")
    reference = levelled(M.mean_shape_2d(neutral))
    base = median_measures(neutral, reference)
    rows: dict[str, dict] = {}
    runs = [("control", "neutral", options.seed + 1)] + [(e, e, options.seed) for e in options.emotions]
    for row, emotion, seed in runs:
        track = render(emotion, seed, row)
        signals = au_signals(median_measures(track, reference), base)
        scores = emotion_scores(signals)
        rows[row] = {
            "emotion": emotion,
            "seed": seed,
            "face_found": float(np.isfinite(track[:, 0, 0]).mean()),
            "signals": signals,
            "scores": scores,
            "top": top_emotion(scores),
        }
    control = rows["control"]["scores"]
    for row in options.emotions:
        r = rows[row]
        r["hit"] = r["top"] == row
        r["target_score"] = r["scores"][row]
        r["rise"] = r["scores"][row] - control[row]
        ranked = sorted(r["scores"], key=r["scores"].get, reverse=True)
        r["target_rank"] = ranked.index(row) + 1
    return {"portrait": str(portrait), "name": name, "rows": rows}


def _fmt(v: float, digits: int = 3) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:+.{digits}f}"


def write_markdown(report: dict, path: Path) -> None:
    """emotions.md: per portrait, a table of AU signals and one of emotion scores, row by row."""
    st = report["settings"]
    lines = [
        "# Emotion check",
        "",
        f"talkface {st['version']}; rules generator, {st['size']} px, emotion strength {st['strength']}, "
        f"{st['seconds']:g} s of {'silence' if st['silence'] else 'the bundled speech'}, seed {st['seed']} "
        f"(control: a second neutral render, seed {st['seed'] + 1}); wall time {st['wall_time_s']:.0f} s.",
        "",
        "Each clip is tracked with the face mesh and read as action-unit signals: medians over frames of "
        "pose-free landmark measures minus the neutral render's, in eye distances (positive = the AU's "
        "direction). Scores: soft Jaccard overlap of the AU evidence with each emotion's EMFACS prototype "
        f"(0..1); top: the best score, or neutral below {TOP_MIN}. rise: the target's score minus its score "
        "in the control render. Definitions and thresholds: `talkface/eval/emotions.py`.",
    ]
    for p in report["portraits"]:
        if "error" in p:
            lines += ["", f"## {p['name']} ({p['portrait']})", "", f"Skipped: {p['error']}"]
            continue
        rows = p["rows"]
        targets = [r for r in rows if r != "control"]
        hits = sum(rows[r]["hit"] for r in targets)
        lines += [
            "",
            f"## {p['name']} ({p['portrait']})",
            "",
            f"Target emotion read as top: {hits} of {len(targets)}.",
            "",
            "| render | top | target score | rise | rank | " + " | ".join(PROTOTYPES) + " |",
            "|---|---|---:|---:|---:|" + "---:|" * len(PROTOTYPES),
        ]
        for name, r in rows.items():
            scores = " | ".join(
                f"{r['scores'][e]:.2f}" if math.isfinite(r["scores"][e]) else "–" for e in PROTOTYPES
            )
            if name == "control":
                lines.append(f"| control (neutral) | {r['top']} | | | | {scores} |")
            else:
                mark = "**" if r["hit"] else ""
                lines.append(
                    f"| {name} | {mark}{r['top']}{mark} | {r['target_score']:.2f} | {r['rise']:+.2f} | "
                    f"{r['target_rank']} | {scores} |"
                )
        lines += [
            "",
            "| render | " + " | ".join(AUS) + " |",
            "|---|" + "---:|" * len(AUS),
        ]
        for name, r in rows.items():
            lines.append(f"| {name} | " + " | ".join(_fmt(r["signals"][au]) for au in AUS) + " |")
    lines += [
        "",
        "## Rules and thresholds",
        "",
        "| emotion | prototype (EMFACS) | optional |",
        "|---|---|---|",
    ]
    lines += [f"| {e} | {' + '.join(p.required)} | {' + '.join(p.optional)} |" for e, p in PROTOTYPES.items()]
    lines += ["", "| AU | onset | full |", "|---|---:|---:|"]
    lines += [f"| {au} | {on:g} | {full:g} |" for au, (on, full) in AU_THRESHOLDS.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _json_safe(x):
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def run_emotion_check(
    portraits: list[str | Path] | None, out_dir: str | Path, options: EmotionCheckOptions | None = None
) -> dict:
    """Render, track and score every emotion of `options` on the bundled portrait and each of `portraits`;
    write out_dir/emotions.json, out_dir/emotions.md and the clips (out_dir/videos); return the report."""
    from talkface import __version__
    from talkface.assets import asset_path

    options = options or EmotionCheckOptions()
    start = time.perf_counter()
    out_dir = Path(out_dir)
    video_dir = out_dir / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)
    audio = clip_audio(out_dir / "audio.wav", options.seconds, options.silence)
    paths = [asset_path("portrait.jpg"), *(Path(p) for p in portraits or ())]
    results, names = [], set()
    for i, path in enumerate(paths):
        name = path.stem if path.stem not in names else f"{path.stem}-{i}"
        names.add(name)
        t0 = time.perf_counter()
        try:
            result = portrait_readings(path, audio, video_dir, name, options)
        except TalkfaceError as e:  # one unusable portrait does not stop the others
            log.warning("%s: skipped: %s", name, e)
            results.append({"portrait": str(path), "name": name, "error": str(e)})
            continue
        results.append(result)
        hits = [r for r, v in result["rows"].items() if v.get("hit")]
        log.info(
            "%s: %d of %d read as asked (%s) [%.0f s]",
            name,
            len(hits),
            len(options.emotions),
            ", ".join(hits) or "none",
            time.perf_counter() - t0,
        )
    report = {
        "portraits": results,
        "settings": {
            **dataclasses.asdict(options),
            "version": __version__,
            "generator": "rules",
            "top_min": TOP_MIN,
            "thresholds": AU_THRESHOLDS,
            "prototypes": {k: dataclasses.asdict(v) for k, v in PROTOTYPES.items()},
            "wall_time_s": time.perf_counter() - start,
        },
    }
    (out_dir / "emotions.json").write_text(json.dumps(_json_safe(report), indent=1) + "\n", encoding="utf-8")
    write_markdown(report, out_dir / "emotions.md")
    return report


def main(argv: list[str] | None = None) -> int:
    from talkface.cli import _add_options, _options

    parser = argparse.ArgumentParser(
        prog="python -m talkface.eval.emotions",
        description="Render each emotion on portraits and read it back with an independent AU classifier.",
    )
    parser.add_argument("portraits", nargs="*", help="portraits besides the bundled one")
    parser.add_argument("--out", required=True, help="output folder")
    _add_options(parser, EmotionCheckOptions, {"emotions": "--emotion"})
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("talkface.eval").setLevel(logging.INFO)  # one line per portrait
    try:
        run_emotion_check(args.portraits, args.out, _options(args, EmotionCheckOptions))
    except TalkfaceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {Path(args.out) / 'emotions.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
