"""`talkface eval`: re-animate real talking clips from one of their own frames and their own audio, track
the real and the generated video with the face mesh, and compare them.

For each clip in DATA_DIR: the portrait is the first closed-mouth frame in the first PORTRAIT_SEARCH_S
seconds (else the first frame), the audio is the clip's own, and each generator renders a video at the
clip's frame rate so that frame i of both videos covers the same audio. Self-reenactment (eval.reenact)
drives the same portrait with the clip's own tracked motion instead, which measures the renderer alone.
Writes DIR/report.json, DIR/report.md and DIR/plots/*.png (and each clip's mouth openings per frame as
plots/mouth_*.npz); the generated videos are kept in DIR/videos
(git-ignored, like all of reports/: they are derived from third-party media and must not be committed or
published).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

from talkface import __version__
from talkface.audio.features import compute_features, n_video_frames
from talkface.audio.load import load_audio
from talkface.config import AnimateOptions, EvalOptions
from talkface.errors import TalkfaceError
from talkface.eval import metrics as M
from talkface.eval import split as S
from talkface.eval.reenact import BLINK_TOLERANCE_S, MASK_GROW, REENACT_METRICS, reenact_clip
from talkface.eval.tracking import (
    VIDEO_SUFFIXES,
    FaceEmbedder,
    Track,
    head_pose,
    probe,
    read_frame,
    track_frames,
    track_video,
)
from talkface.video.watermark import new_payload

log = logging.getLogger(__name__)

PORTRAIT_SEARCH_S = 2.0  # look this far into the clip for a closed-mouth portrait frame
IDENTITY_FRAMES = 10  # frames per video sampled for the face embedding
LAG_SEARCH_MS = 200.0

# (key, unit, which way is better, description): the report's rows, in order. "real" = closer to the
# real clip's own value is better.
METRICS = [
    ("lipsync_corr", "r", "higher", "Pearson r, real vs generated mouth opening, lag 0"),
    ("lipsync_corr_best", "r", "higher", "the same at the best lag within +-200 ms"),
    (
        "lipsync_lag_ms",
        "ms",
        "0",
        "lag of the best r where it peaks inside +-200 ms; > 0: the generated mouth lags",
    ),
    ("mouth_lmd", "eye dist", "lower", "lip-motion distance (40 lip points, pose-free)"),
    (
        "closure_f1",
        "F1",
        "higher",
        "closed-mouth frames (opening < 0.03 eye dist) matching the real ones within +-40 ms",
    ),
    (
        "closure_onset_f1",
        "F1",
        "higher",
        "closures (the opening falling below 0.03 from 0.045 or more) matching the real ones within +-80 ms",
    ),
    ("mouth_open_voiced", "eye dist", "real", "mean mouth opening in voiced frames"),
    ("silence_ratio", "ratio", "real", "mouth opening in silence / in speech"),
    ("audio_corr", "r", "real", "Pearson r of mouth opening and audio level (dB)"),
    (
        "brow_motion",
        "eye dist",
        "real",
        "std over time of the brows' height above the eye corners, head pose removed (2-D fit)",
    ),
    ("brow_ratio", "x", "real", "brow_motion / the real clip's; summary: median over clips"),
    (
        "upper_face_motion",
        "eye dist",
        "real",
        "RMS non-rigid motion of brows, lids, cheeks and nose about their mean (2-D Procrustes)",
    ),
    ("upper_face_ratio", "x", "real", "upper_face_motion / the real clip's; summary: median over clips"),
    ("blinks_per_min", "1/min", "real", "blink rate (conversation: 26/min, 95% CI 10.5-32.5)"),
    ("blink_ms", "ms", "real", "blink duration, from closing to reopening as the blink detector sees it"),
    ("pose_std_yaw", "deg", "real", "head yaw std"),
    ("pose_std_pitch", "deg", "real", "head pitch std"),
    ("pose_std_roll", "deg", "real", "head roll std"),
    (
        "delta_pose",
        "deg/frame",
        "real",
        "mean absolute change of yaw, pitch, roll between frames (VASA-1 dP)",
    ),
    ("jitter", "eye dist/s", "real", "RMS landmark velocity above 6 Hz, pose-free face mesh"),
    ("identity_dist", "dlib", "lower", "128-d dlib embedding distance to the portrait (same person < 0.6)"),
    ("realtime_factor", "x", "lower", "render time / audio duration"),
    ("face_found", "share", "higher", "share of frames where the face mesh found a face"),
]
# Values of the real clip compared with itself, where a metric is defined only against the real clip.
REAL_CEILING = {
    "lipsync_corr": 1.0,
    "lipsync_corr_best": 1.0,
    "lipsync_lag_ms": 0.0,
    "mouth_lmd": 0.0,
    "closure_f1": 1.0,
    "closure_onset_f1": 1.0,
    "brow_ratio": 1.0,
    "upper_face_ratio": 1.0,
}
# Summarised by the median over clips, not the mean: a ratio to a real clip whose face hardly moves is
# large, and one such clip would set the mean.
MEDIAN_KEYS = ("brow_ratio", "upper_face_ratio")
# Measured on a still photo too (the portrait crop on every frame, tracked like a video): the face mesh's
# own noise, the floor of the upper-face metrics; and what a mouth that never moves from the (closed)
# portrait scores on the closure metrics.
STILL_KEYS = (
    "brow_motion",
    "brow_ratio",
    "upper_face_motion",
    "upper_face_ratio",
    "closure_f1",
    "closure_onset_f1",
)


def clip_seed(seed: int, clip_name: str) -> int:
    """The generators' seed for one clip: from the eval's seed and the clip's file name, so that every clip
    draws its own blinks and head sway, as separate videos would (with one seed for all, every clip blinked
    at the same moments from its start, and the pooled blink rate was that of one draw's first seconds),
    and a clip's seed does not depend on which other clips are evaluated."""
    return (seed * 1_000_003 + zlib.crc32(clip_name.encode("utf-8"))) % 2**31


def list_clips(data_dir: str | Path) -> list[Path]:
    """Video files in data_dir (not recursive) that have an audio stream, sorted by name."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise TalkfaceError(f"not a folder: {data_dir}")
    clips = []
    for p in sorted(data_dir.iterdir()):
        if p.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        try:
            has_audio = probe(p).has_audio
        except TalkfaceError as e:
            log.warning("skipping %s: %s", p.name, e)
            continue
        if has_audio:
            clips.append(p)
        else:
            log.info("skipping %s: no audio", p.name)
    return clips


def choose_portrait(opening: np.ndarray, fps: float) -> tuple[int, str]:
    """(frame index, how it was chosen): the first frame in the first PORTRAIT_SEARCH_S seconds with a
    face whose mouth opening is below M.CLOSED_MOUTH, else the first frame with a face."""
    n = max(1, int(round(PORTRAIT_SEARCH_S * fps)))
    head = opening[:n]
    closed = np.flatnonzero(np.isfinite(head) & (head < M.CLOSED_MOUTH))
    if len(closed):
        return int(closed[0]), "first closed-mouth frame"
    found = np.flatnonzero(np.isfinite(opening))
    if not len(found):
        raise TalkfaceError("no face in any frame")
    return int(found[0]), f"first frame with a face (no closed mouth in the first {PORTRAIT_SEARCH_S:g} s)"


def _sample(n: int, k: int, exclude: int | None = None) -> list[int]:
    idx = np.unique(np.linspace(0, n - 1, min(n, k + 1)).round().astype(int))
    return [int(i) for i in idx if i != exclude][:k]


def _identity(embedder, portrait_vec, track: Track, frames: list[int]) -> float:
    if embedder is None or portrait_vec is None:
        return float("nan")
    vecs = [embedder.embed(track.frames[i], track.points[i]) for i in frames if i in track.frames]
    vecs = [v for v in vecs if v is not None]
    return M.identity_distance(portrait_vec, np.array(vecs)) if vecs else float("nan")


def _motion_metrics(points: np.ndarray, fps: float, voicing: np.ndarray, level_db: np.ndarray) -> dict:
    """The metrics of one video on its own (no comparison), from its track (T, 478, 3)."""
    opening = M.mouth_opening(points)
    found = np.isfinite(points[:, 0, 0])
    aligned = M.align_frames(points, points[np.argmax(found)]) if found.any() else points * np.nan
    pose = M.pose_stats(head_pose(points))
    blinks = M.count_blinks(M.eye_aspect_ratio(points), fps)
    return {
        "mouth_open_voiced": M.voiced_mean(opening, voicing, fps),
        "silence_ratio": M.silence_ratio(opening, voicing, fps),
        "audio_corr": M.pearson(opening, level_db[: len(opening)]),
        "brow_motion": M.brow_motion(points),
        "upper_face_motion": M.upper_face_motion(points),
        "blinks": blinks.count,
        "blinks_per_min": blinks.per_min,
        "blink_ms": float(np.mean(blinks.durations_ms)) if blinks.durations_ms else float("nan"),
        "blinks_timed": len(blinks.durations_ms),
        "pose_std_yaw": float(pose.std[0]),
        "pose_std_pitch": float(pose.std[1]),
        "pose_std_roll": float(pose.std[2]),
        "delta_pose": pose.delta,
        "jitter": M.jitter(aligned, fps),
        "face_found": float(found.mean()) if len(found) else float("nan"),
        "face_minutes": float(found.sum() / fps / 60.0),
    }


def _upper_face_ratios(ours: dict, real: dict) -> dict:
    """brow_ratio and upper_face_ratio: a video's brow and upper-face motion over the real clip's."""
    return {
        "brow_ratio": M.motion_ratio(ours["brow_motion"], real["brow_motion"]),
        "upper_face_ratio": M.motion_ratio(ours["upper_face_motion"], real["upper_face_motion"]),
    }


def evaluate_clip(path: Path, options: EvalOptions, video_dir: Path, embedder) -> tuple[dict, dict]:
    """(the clip's record for report.json, per-frame series for its plot)."""
    from talkface.face.rig import build_rig
    from talkface.pipeline import animate

    info = probe(path)
    fps = float(min(60.0, max(1.0, info.fps)))
    if abs(info.av_offset_s) > 0.5 / fps:
        log.warning(
            "%s: the video starts %+.0f ms after the audio; frames are compared by index",
            path.name,
            1000 * info.av_offset_s,
        )
    audio = load_audio(path)
    n = n_video_frames(audio.duration, fps)
    feats = compute_features(audio).at_fps(fps, n)
    voicing, level_db = feats.voicing, feats.energy_db

    # One frame more than needed, so that IDENTITY_FRAMES remain without the portrait frame.
    candidates = _sample(n, IDENTITY_FRAMES + 1) if embedder is not None else []
    real = track_video(path, keep=candidates)
    real_open = M.mouth_opening(real.points)
    k, how = choose_portrait(real_open, fps)
    portrait = read_frame(path, k)
    real_ids = [i for i in candidates if i != k][:IDENTITY_FRAMES]
    if abs(len(real) - n) > 1:
        log.warning(
            "%s: %d video frames for %d expected from the audio; comparing the first %d",
            path.name,
            len(real),
            n,
            min(len(real), n),
        )
    t_real = min(len(real), n)
    portrait_vec = embedder.embed(portrait, real.points[k]) if embedder is not None else None

    record = {
        "clip": path.name,
        "fps": fps,
        "duration_s": audio.duration,
        "frames": n,
        "real_frames": len(real),
        "av_offset_ms": 1000 * info.av_offset_s,
        "size": list(real.size),
        "portrait": {"frame": k, "time_s": k / fps, "how": how, "mouth_opening": float(real_open[k])},
        "voiced_share": float(np.mean(voicing >= 0.5)),
        "seed": clip_seed(options.seed, path.name),
        "real": {},
        "generators": {},
    }
    real_aligned = M.align_frames(real.points, real.points[k])
    record["real"] = _motion_metrics(real.points[:t_real], fps, voicing, level_db)
    record["real"].update(REAL_CEILING)
    record["real"]["identity_dist"] = _identity(embedder, portrait_vec, real, real_ids)
    series = {"fps": fps, "voicing": voicing, "real": real_open[:t_real], "generators": {}}

    # The generated videos' neutral frame: the portrait's aligned crop, the image the renderer deforms,
    # tracked like a video frame.
    rig = build_rig(portrait, options.size)
    neutral = track_frames([rig.image])[0]
    still = track_frames(rig.image for _ in range(t_real)).astype(np.float64)
    still_open = M.mouth_opening(still)
    record["still"] = {
        "brow_motion": M.brow_motion(still),
        "upper_face_motion": M.upper_face_motion(still),
        "closure_f1": M.closure_f1(real_open[:t_real], still_open, fps),
        "closure_onset_f1": M.closure_onset_f1(real_open[:t_real], still_open, fps),
    }
    record["still"].update(_upper_face_ratios(record["still"], record["real"]))
    for name in options.generators:
        out = video_dir / f"{path.stem}.{name}.mp4"
        model = options.motion_model if name == "learned" else None
        anim = AnimateOptions(
            size=options.size, fps=fps, seed=record["seed"], generator=name, motion_model=model
        )
        t0 = time.perf_counter()
        # The watermark's video id from the clip's seed: its faint pattern moves the face mesh's points a
        # little, and a random id made reruns of the same motion disagree (per-clip r by up to 0.14).
        animate(portrait, path, out, anim, payload=new_payload(record["seed"]))
        render_s = time.perf_counter() - t0
        gen_ids = _sample(n, IDENTITY_FRAMES)
        gen = track_video(out, keep=gen_ids if embedder is not None else ())
        if not options.keep_videos:
            out.unlink()
        t = min(len(gen), t_real)
        gen_open = M.mouth_opening(gen.points)
        gen_ref = neutral if np.isfinite(neutral).all() else gen.points[np.argmax(gen.found)]
        gen_aligned = M.align_frames(gen.points, gen_ref)
        lag = M.lagged_correlation(real_open[:t], gen_open[:t], fps, LAG_SEARCH_MS)
        m = {
            "lipsync_corr": lag.r_zero,
            "lipsync_corr_best": lag.r_best,
            "lipsync_lag_ms": lag.lag_ms,
            "mouth_lmd": M.mouth_lmd(
                real_aligned[:t], gen_aligned[:t], real_aligned[k], M.align_frames(gen_ref[None], gen_ref)[0]
            ),
            "closure_f1": M.closure_f1(real_open[:t], gen_open[:t], fps),
            "closure_onset_f1": M.closure_onset_f1(real_open[:t], gen_open[:t], fps),
        }
        m.update(_motion_metrics(gen.points[:t], fps, voicing, level_db))
        m.update(_upper_face_ratios(m, record["real"]))
        m["identity_dist"] = _identity(embedder, portrait_vec, gen, gen_ids)
        m["realtime_factor"] = render_s / audio.duration
        m["render_s"] = render_s
        record["generators"][name] = m
        series["generators"][name] = gen_open[:t]
    if options.reenact:
        try:
            record["reenact"] = reenact_clip(
                path, real, k, rig, neutral, fps, video_dir if options.keep_videos else None
            )
        except TalkfaceError as e:
            log.warning("%s: no self-reenactment: %s", path.name, e)
            record["reenact"] = {"error": str(e)}
    return record, series


def summarize(clips: list[dict], generators: tuple[str, ...]) -> dict:
    """{generator or "real": {metric: mean over the clips where it is defined}}; blinks_per_min is pooled
    (all blinks / all minutes) so that 2-second clips do not dominate it, and blink_ms over all blinks;
    MEDIAN_KEYS are medians. "still": the STILL_KEYS of the still photo, summarised alike."""
    ok = [c for c in clips if not c.get("error")]
    out = {}
    for col in (*generators, "real"):
        rows = [c["real"] if col == "real" else c["generators"][col] for c in ok]
        s = {}
        for key, *_ in METRICS:
            s[key] = _summary_value([r.get(key, np.nan) for r in rows], key)
        minutes = sum(r["face_minutes"] for r in rows)
        if minutes > 0:
            s["blinks_per_min"] = sum(r["blinks"] for r in rows) / minutes
        s["blink_ms"] = _pooled_blink_ms(rows)
        s["clips"] = len(rows)
        out[col] = s
    still = [c["still"] for c in ok if "still" in c]
    if still:
        out["still"] = {key: _summary_value([r.get(key, np.nan) for r in still], key) for key in STILL_KEYS}
        out["still"]["clips"] = len(still)
    return out


def _summary_value(values: list[float], key: str) -> float:
    """The mean (the median for MEDIAN_KEYS) of the finite values; NaN if none."""
    v = np.array(values, np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan")
    return float(np.median(v) if key in MEDIAN_KEYS else v.mean())


BOOTSTRAP_RESAMPLES = 2000


def _pooled_blink_ms(rows: list[dict]) -> float:
    timed = sum(r.get("blinks_timed", 0) for r in rows)
    total = sum(r["blink_ms"] * r["blinks_timed"] for r in rows if r.get("blinks_timed"))
    return total / timed if timed else float("nan")


def _clip_values(clips: list[dict], col: str, key: str) -> np.ndarray:
    rows = [c["real"] if col == "real" else c["generators"][col] for c in clips]
    if key == "blinks_per_min":  # pooled: (blinks, minutes) per clip
        return np.array([(r["blinks"], r["face_minutes"]) for r in rows], np.float64)
    if key == "blink_ms":  # pooled over blinks: (total ms, blinks timed) per clip
        return np.array(
            [
                (
                    r["blink_ms"] * r["blinks_timed"] if r.get("blinks_timed") else 0.0,
                    r.get("blinks_timed", 0),
                )
                for r in rows
            ],
            np.float64,
        )
    return np.array([r.get(key, np.nan) for r in rows], np.float64)


def _resampled(values: np.ndarray, idx: np.ndarray, median: bool = False) -> np.ndarray:
    """The summary statistic of each resample of clips (idx: (B, n) clip indices), shape (B,): the mean of
    the finite values, or their median."""
    if values.ndim == 2:  # pooled: sum of the first column over sum of the second
        weight = values[idx, 1].sum(1)
        return np.where(weight > 0, values[idx, 0].sum(1) / np.maximum(weight, 1e-12), np.nan)
    v = values[idx]
    ok = np.isfinite(v)
    if median:
        with warnings.catch_warnings():  # a resample with no finite value gives NaN, as intended
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(v, axis=1)
    return np.where(ok.any(1), np.where(ok, v, 0.0).sum(1) / np.maximum(ok.sum(1), 1), np.nan)


def bootstrap(clips: list[dict], generators: tuple[str, ...], resamples: int = BOOTSTRAP_RESAMPLES) -> dict:
    """How much the summary depends on which clips were drawn: the clips are resampled with replacement
    (the same resamples for every column, so comparisons are paired). Returns {"ci": {col: {metric:
    [2.5 %, 97.5 %]}}, "better": {"A vs B": {metric: share of resamples in which A is better than B, ties
    counted half}}},
    better as the metric says (higher, lower, nearer 0, nearer the real clips' value in the same resample).
    A share near 1 or 0 is a difference the clips settle; near 0.5, one they do not."""
    ok = [c for c in clips if not c.get("error")]
    out: dict = {"ci": {}, "better": {}, "resamples": resamples}
    if len(ok) < 2:
        return out
    idx = np.random.default_rng(0).integers(0, len(ok), (resamples, len(ok)))
    stats = {}
    for col in (*generators, "real"):
        stats[col] = {
            key: _resampled(_clip_values(ok, col, key), idx, key in MEDIAN_KEYS) for key, *_ in METRICS
        }
        out["ci"][col] = {
            key: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))]
            for key, v in stats[col].items()
            if np.isfinite(v).any()
        }
    for i, a in enumerate(generators):
        for b in generators[i + 1 :]:
            shares = {}
            for key, _, way, _ in METRICS:
                x, y = stats[a][key], stats[b][key]
                if way == "real":
                    real = stats["real"][key]
                    x, y = np.abs(x - real), np.abs(y - real)
                elif way == "0":
                    x, y = np.abs(x), np.abs(y)
                both = np.isfinite(x) & np.isfinite(y)
                if not both.any():
                    continue
                wins = x[both] > y[both] if way == "higher" else x[both] < y[both]
                shares[key] = float(wins.mean() + 0.5 * (x[both] == y[both]).mean())  # ties: half
            out["better"][f"{a} vs {b}"] = shares
    return out


def summarize_reenact(clips: list[dict]) -> dict:
    """{"reenact" | "still": {metric: mean over the clips where it is defined}}; blink_f1 is pooled (all
    matched onsets over all onsets) because most clips have no blink or one."""
    ok = [c["reenact"] for c in clips if not c.get("error") and "frames" in c.get("reenact", {})]
    out = {}
    for col in ("reenact", "still"):
        s = {}
        for key, *_ in REENACT_METRICS:
            vals = np.array([c[col].get(key, np.nan) for c in ok], np.float64)
            vals = vals[np.isfinite(vals)]
            s[key] = float(vals.mean()) if len(vals) else float("nan")
        s["blink_f1"] = M.f1(
            sum(c[col]["blinks_matched"] for c in ok),
            sum(c["real"]["blinks"] for c in ok),
            sum(c[col]["blinks"] for c in ok),
        )
        s["clips"] = len(ok)
        out[col] = s
    out["reenact"]["realtime_factor"] = (
        float(np.mean([c["reenact"]["realtime_factor"] for c in ok])) if ok else float("nan")
    )
    out["reenact"]["rest_psnr"] = float(np.nanmean([c["rest_psnr"] for c in ok])) if ok else float("nan")
    return out


def _json_safe(x):
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _fmt(v, key: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if key in ("lipsync_lag_ms",):
        return f"{v:+.0f}"
    if key == "blink_ms":
        return f"{v:.0f}"
    if key in ("blinks_per_min", "render_s"):
        return f"{v:.1f}"
    if key in ("mouth_lmd", "face_lmd", "mouth_open_voiced", "jitter", "delta_pose", "ssim"):
        return f"{v:.3f}"
    if key in ("brow_motion", "upper_face_motion"):
        return f"{v:.4f}"
    return f"{v:.2f}"


def _uncertainty_markdown(report: dict) -> list[str]:
    """The bootstrap section of report.md: 95 % intervals of the summary and paired comparisons."""
    unc = report.get("uncertainty") or {}
    if not unc.get("ci"):
        return []
    cols = [*report["settings"]["generators"], "real"]
    pairs = list(unc["better"])
    lines = [
        "",
        f"## Uncertainty ({unc['resamples']} resamples of the clips)",
        "",
        "95 % intervals of each summary value when the clips are drawn again with replacement, and the share "
        "of those resamples in which the first generator of a pair is better (as the metric says: higher, "
        "lower, nearer 0, nearer the real clips of the same resample). Near 100 % or 0 %: the clips settle "
        "the difference; near 50 %: they do not. Each clip has its own seed, so the generators' randomness "
        "is in it as far as one draw per clip carries it.",
        "",
        "| metric | " + " | ".join(cols) + " | " + " | ".join(f"{p}: first better" for p in pairs) + " |",
        "|---|" + "---:|" * (len(cols) + len(pairs)),
    ]
    for key, *_ in METRICS:
        cis = []
        for c in cols:
            lo_hi = unc["ci"].get(c, {}).get(key)
            cis.append(f"{_fmt(lo_hi[0], key)}..{_fmt(lo_hi[1], key)}" if lo_hi else "–")
        shares = [unc["better"][p].get(key) for p in pairs]
        vals = " | ".join(cis + [f"{100 * v:.0f} %" if v is not None else "–" for v in shares])
        lines.append(f"| {key} | {vals} |")
    return lines


def _reenact_markdown(report: dict) -> list[str]:
    """The self-reenactment section of report.md: its summary table, a note and the per-clip table."""
    summ = report["reenact"]
    cols = ("reenact", "still")
    better = {"higher": "higher", "lower": "lower"}
    lines = [
        "",
        f"## Self-reenactment: the renderer alone (mean over {summ['reenact']['clips']} clips)",
        "",
        "The same portrait (frame k of each clip) driven by the clip's own tracked motion (head pose, "
        "expression, blinks, gaze relative to frame k; no audio involved) and compared with the real frames "
        "cropped by the portrait's framing: the crop stays put and the real head moves inside it. `still` is "
        "the portrait crop on every frame (no motion): the floor the renderer's motion has to beat. Frame k "
        "itself is left out. PSNR and SSIM are taken over the real frame's face oval, dilated by "
        f"{100 * MASK_GROW:g}% of the crop side; landmarks are the face mesh's on both sides.",
        "",
        "| metric | unit | better | " + " | ".join(cols) + " | what |",
        "|---|---|---|" + "---:|" * len(cols) + "---|",
    ]
    for key, unit, way, what in REENACT_METRICS:
        vals = " | ".join(_fmt(summ[c].get(key), key) for c in cols)
        lines.append(f"| {key} | {unit} | {better[way]} | {vals} | {what} |")
    lines += [
        "",
        f"The renderer at rest (zero motion) against the portrait crop: "
        f"{_fmt(summ['reenact']['rest_psnr'])} dB PSNR over the whole crop; rendering at "
        f"{_fmt(summ['reenact']['realtime_factor'])} x real time. "
        "blink_f1 is pooled over all clips' blinks.",
        "",
        "Anchor, with care: FIELD.md quotes FlowVQTalker's MEAD SSIM 0.689, but that is audio-driven "
        "generation scored on whole frames of another data set, not reenactment on the face region; it "
        "shows the scale of published numbers, not a target for this table.",
        "",
        "| clip | frames | portrait | video | PSNR | SSIM | mouth LMD | face LMD | pose err "
        "| blinks real/seen/matched |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in report["clips"]:
        r = c.get("reenact")
        if c.get("error") or not r:
            continue
        if r.get("error"):
            lines.append(f"| {c['clip']} | error: {r['error']} | | | | | | | | |")
            continue
        for col in cols:
            m = r[col]
            head = f"| {c['clip']} | {r['frames']} | {r['source_frame']} " if col == "reenact" else "| | | "
            blinks = f"{r['real']['blinks']}/{m['blinks']}/{m['blinks_matched']}"
            vals = " | ".join(
                _fmt(m.get(k), k) for k in ("psnr", "ssim", "mouth_lmd", "face_lmd", "pose_err")
            )
            lines.append(f"{head}| {col} | {vals} | {blinks} |")
    return lines


def write_markdown(report: dict, path: Path) -> None:
    """report.md: settings, the summary table (generators, then the real clips as the ceiling), the
    per-clip table and the plots."""
    st, summ = report["settings"], report["summary"]
    gens = st["generators"]
    cols = [*gens, "real"]
    lines = [
        "# talkface eval",
        "",
        f"talkface {st['version']}; {st['clips_evaluated']} clips ({st['split']} split) from "
        f"`{st['data_dir']}`; generators {', '.join(gens)}; {st['size']} px at each clip's own frame rate; "
        f"seed {st['seed']} (each clip's own seed derived from it and the clip's name); "
        f"wall time {st['wall_time_s']:.0f} s.",
        "",
        "Each clip is re-animated from one of its own frames (the portrait column says which) with its own "
        "audio, and the render is compared frame by frame with the real clip. `loudness` is the naive floor "
        "(the jaw follows loudness, nothing else moves); `real` is the clip itself, the ceiling: for "
        "lipsync_corr and mouth_lmd the real clip compared with itself at lag 0.",
        "",
        f"identity_dist: {st['identity']}",
        "",
        f"## Summary (mean over {summ['real']['clips']} clips; the ratios: median)",
        "",
    ]
    table_cols = [*cols, "still"] if "still" in summ else cols
    if "still" in summ:
        lines += [
            "`still` is a still photo (the portrait crop on every frame, tracked like a video): the face "
            "mesh's own noise, the floor of the upper-face metrics; on the closure metrics, a mouth that "
            "never moves from the closed-mouth portrait.",
            "",
        ]
    lines += [
        "| metric | unit | better | " + " | ".join(table_cols) + " | what |",
        "|---|---|---|" + "---:|" * len(table_cols) + "---|",
    ]
    better = {"higher": "higher", "lower": "lower", "0": "near 0", "real": "near real"}
    for key, unit, way, what in METRICS:
        vals = " | ".join(_fmt(summ[c].get(key), key) for c in table_cols)
        lines.append(f"| {key} | {unit} | {better[way]} | {vals} | {what} |")
    lines += _uncertainty_markdown(report)
    if report.get("reenact"):
        lines += _reenact_markdown(report)
    keys = [
        ("lipsync_corr", "r"),
        ("lipsync_lag_ms", "lag ms"),
        ("lipsync_corr_best", "best r"),
        ("mouth_lmd", "LMD"),
        ("closure_f1", "closed F1"),
        ("closure_onset_f1", "closures F1"),
        ("mouth_open_voiced", "open"),
        ("silence_ratio", "sil. ratio"),
        ("audio_corr", "audio r"),
        ("brow_ratio", "brows x"),
        ("upper_face_ratio", "upper face x"),
        ("blinks_per_min", "blinks/min"),
        ("blink_ms", "blink ms"),
        ("pose_std_yaw", "yaw std"),
        ("pose_std_pitch", "pitch std"),
        ("pose_std_roll", "roll std"),
        ("delta_pose", "dP"),
        ("jitter", "jitter"),
        ("identity_dist", "identity"),
        ("realtime_factor", "RTF"),
    ]
    lines += [
        "",
        "## Per clip",
        "",
        "| clip | portrait | video | " + " | ".join(h for _, h in keys) + " |",
        "|---|---|---|" + "---:|" * len(keys),
    ]
    for c in report["clips"]:
        if c.get("error"):
            lines.append(f"| {c['clip']} | error: {c['error']} | |" + " |" * len(keys))
            continue
        p = c["portrait"]
        where = f"frame {p['frame']} ({p['time_s']:.2f} s){'' if 'closed' in p['how'] else ', mouth open'}"
        for col in [*cols, "still"] if "still" in c else cols:
            row = c[col] if col in ("real", "still") else c["generators"][col]
            first = f"{c['clip']} ({c['duration_s']:.1f} s, {c['fps']:g} fps)" if col == cols[0] else ""
            vals = " | ".join(_fmt(row.get(k), k) for k, _ in keys)
            lines.append(f"| {first} | {where if col == cols[0] else ''} | {col} | {vals} |")
    lines += ["", "## Plots", ""]
    lines += [f"![{p}]({p})" for p in report["plots"]]
    lines += ["", "## Definitions", ""]
    lines += [f"- **{k}** ({u}): {w}." for k, u, _, w in METRICS]
    lines += [
        "- Voiced frames: silero-vad speech probability >= 0.5; silent frames: < 0.2 and more than 0.2 s "
        "from speech (lips move before the voice starts).",
        "- mouth_lmd subtracts each video's neutral lip shape (real: the portrait frame; generated: the "
        "portrait crop the renderer deforms) so that only lip motion is compared.",
        "- closure_f1 counts frames, and the portrait's mouth is closed: a face that never moves from it "
        "scores about 0.5-0.6 on it, more than the generators. closure_onset_f1 counts the moments the "
        "lips close, which a still face never does.",
        "- Portrait: the first frame in the first 2 s whose mouth opening is below "
        f"{M.CLOSED_MOUTH} eye distances, else the first frame with a face.",
        "- Upper face (talkface.eval.metrics): head pose is removed in 2-D (rotation in the image plane, "
        "scale, shift). brow_motion fits the nose bridge and tip, eye corners and cheek sides "
        f"({len(M.POSE_ANCHORS)} points) of each frame onto the clip's mean face and measures the mean of "
        f"the {len(M.BROWS)} brow points above the eye corners. upper_face_motion fits the "
        f"{len(M.UPPER_FACE)} points of brows ({len(M.BROWS)}), lids ({len(M.LIDS)}), cheeks "
        f"({len(M.CHEEKS)}) and nose ({len(M.NOSE)}) onto their own mean shape (generalised Procrustes) "
        "and takes the RMS distance of each point from its mean position. Ratios are per clip, generated "
        "over real, and summarised by their median.",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _plot_clip(series: dict, name: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    fps = series["fps"]
    n = len(series["real"])
    t = np.arange(n) / fps
    fig, ax = plt.subplots(figsize=(10, 3.2), dpi=100)
    voiced = series["voicing"][:n] >= 0.5
    ax.fill_between(
        t,
        0,
        1,
        where=voiced,
        step="mid",
        color="0.88",
        transform=ax.get_xaxis_transform(),
        label="voice (VAD)",
    )
    ax.plot(t, series["real"], color="k", lw=1.8, label="real")
    for (g, y), color in zip(
        series["generators"].items(), ("tab:red", "tab:blue", "tab:green"), strict=False
    ):
        ax.plot(t, y[:n], color=color, lw=1.2, label=g)
    ax.set_xlim(0, max(t[-1], 1 / fps))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mouth opening (eye dist.)")
    ax.set_title(name, fontsize=10)
    ax.legend(loc="upper right", fontsize=8, ncol=4, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_metric(report: dict, key: str, unit: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    cols = [*report["settings"]["generators"], "real"]
    ok = [c for c in report["clips"] if not c.get("error")]
    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=100)
    for i, col in enumerate(cols):
        mean = report["summary"][col].get(key)
        per = [(c["real"] if col == "real" else c["generators"][col]).get(key) for c in ok]
        per = np.array([v for v in per if v is not None and math.isfinite(v)], np.float64)
        color = "0.6" if col == "real" else f"C{i}"
        if mean is not None and math.isfinite(mean):
            ax.bar(i, mean, color=color, alpha=0.8)
            box = {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8}
            ax.annotate(_fmt(mean, key), (i + 0.42, mean), ha="right", va="bottom", fontsize=8, bbox=box)
        if len(per):
            jit = np.linspace(-0.2, 0.2, len(per)) if len(per) > 1 else np.zeros(1)
            ax.scatter(i + jit, per, s=10, color="k", zorder=3)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(range(len(cols)), cols)
    ax.set_ylabel(unit)
    how = {"blinks_per_min": "all blinks / all minutes", "blink_ms": "over all blinks"}.get(key, "mean")
    how = "median" if key in MEDIAN_KEYS else how
    ax.set_title(f"{key} (bars: {how}, dots: clips)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_reenact(report: dict, path: Path) -> None:
    """Reenactment vs the still portrait: one panel per metric, bars = mean, dots = clips."""
    import matplotlib.pyplot as plt

    shown = ("psnr", "ssim", "mouth_lmd", "face_lmd", "pose_err", "blink_f1")
    keys = [m for m in REENACT_METRICS if m[0] in shown]
    ok = [c["reenact"] for c in report["clips"] if "frames" in (c.get("reenact") or {})]
    fig, axes = plt.subplots(1, len(keys), figsize=(2.3 * len(keys), 3.2), dpi=100)
    for ax, (key, unit, way, _) in zip(axes, keys, strict=True):
        for i, col in enumerate(("reenact", "still")):
            mean = report["reenact"][col].get(key)
            per = np.array([c[col].get(key) for c in ok], np.float64)
            per = per[np.isfinite(per)]
            if mean is not None and math.isfinite(mean):
                ax.bar(i, mean, color="C0" if col == "reenact" else "0.6", alpha=0.8)
                ax.annotate(_fmt(mean, key), (i, mean), ha="center", va="bottom", fontsize=8)
            if len(per) and key != "blink_f1":
                jit = np.linspace(-0.2, 0.2, len(per)) if len(per) > 1 else np.zeros(1)
                ax.scatter(i + jit, per, s=8, color="k", zorder=3)
        ax.set_xticks([0, 1], ["reenact", "still"])
        ax.set_title(f"{key} ({way} better)", fontsize=9)
        ax.set_ylabel(unit, fontsize=8)
    fig.suptitle("self-reenactment vs the still portrait (bars: mean, dots: clips)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_plots(report: dict, series: dict[str, dict], plot_dir: Path) -> list[str]:
    """One mouth-opening plot per clip and one bar chart per metric; returns their paths relative to the
    report folder."""
    import matplotlib

    matplotlib.use("Agg")
    plot_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, s in series.items():
        p = plot_dir / f"mouth_{Path(name).stem}.png"
        _plot_clip(s, name, p)
        paths.append(p)
        # The plotted series as data, for analyses the report does not make (voicing, openings per frame).
        openings = {f"gen_{g}": v for g, v in s["generators"].items()}
        np.savez_compressed(
            plot_dir / f"mouth_{Path(name).stem}.npz",
            fps=s["fps"],
            voicing=s["voicing"],
            real=s["real"],
            **openings,
        )
    for key, unit, *_ in METRICS:
        if key == "face_found":
            continue
        p = plot_dir / f"metric_{key}.png"
        _plot_metric(report, key, unit, p)
        paths.append(p)
    if report.get("reenact"):
        p = plot_dir / "reenact.png"
        _plot_reenact(report, p)
        paths.append(p)
    return [str(p.relative_to(plot_dir.parent)) for p in paths]


def run_eval(data_dir: str | Path, report_dir: str | Path, options: EvalOptions | None = None) -> dict:
    """Evaluate every clip with audio in data_dir (on the chosen split) with each generator; write
    report.json, report.md and plots/ into report_dir and return the report as a dict."""
    options = options or EvalOptions()
    start = time.perf_counter()
    clips = list_clips(data_dir)
    if not clips:
        raise TalkfaceError(f"no video with audio in {data_dir}")
    split = options.split or S.default_split(clips)
    clips = S.select(clips, split)
    if options.limit is not None:
        clips = clips[: max(0, options.limit)]
    report_dir = Path(report_dir)
    video_dir = report_dir / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)
    embedder, why = FaceEmbedder.load()
    if embedder is None:
        log.warning("identity_dist disabled: %s", why)

    records, series = [], {}
    for i, path in enumerate(clips, 1):
        t0 = time.perf_counter()
        try:
            record, s = evaluate_clip(path, options, video_dir, embedder)
        except TalkfaceError as e:
            log.warning("clip %d/%d %s: skipped: %s", i, len(clips), path.name, e)
            records.append({"clip": path.name, "error": str(e)})
            continue
        records.append(record)
        series[path.name] = s
        scores = ", ".join(
            f"{g} r={_fmt(m['lipsync_corr'])} lag={_fmt(m['lipsync_lag_ms'], 'lipsync_lag_ms')} ms "
            f"brows {_fmt(m['brow_ratio'])}x upper face {_fmt(m['upper_face_ratio'])}x"
            for g, m in record["generators"].items()
        )
        if "frames" in record.get("reenact", {}):
            re, still = record["reenact"]["reenact"], record["reenact"]["still"]
            scores += (
                f", reenact PSNR {_fmt(re['psnr'])} dB (still {_fmt(still['psnr'])}), "
                f"SSIM {_fmt(re['ssim'], 'ssim')} (still {_fmt(still['ssim'], 'ssim')})"
            )
        log.info(
            "clip %d/%d %s (%.1f s audio): %s [%.1f s]",
            i,
            len(clips),
            path.name,
            record["duration_s"],
            scores,
            time.perf_counter() - t0,
        )

    report = {
        "clips": records,
        "summary": summarize(records, options.generators),
        "uncertainty": bootstrap(records, options.generators),
        "reenact": summarize_reenact(records) if options.reenact else None,
        "settings": {
            **dataclasses.asdict(options),
            "version": __version__,
            "data_dir": str(data_dir),
            "split": split,
            "clips_evaluated": sum(not r.get("error") for r in records),
            "closed_mouth_threshold": M.CLOSED_MOUTH,
            "portrait_search_s": PORTRAIT_SEARCH_S,
            "lag_search_ms": LAG_SEARCH_MS,
            "reenact_mask_grow": MASK_GROW,
            "reenact_blink_tolerance_s": BLINK_TOLERANCE_S,
            "lag_sign": "positive lipsync_lag_ms: the generated mouth lags the real one",
            "identity": "dlib 20 ResNet embedding, face_recognition_models 0.3.0"
            if embedder is not None
            else f"null: {why}",
            "summary": "mean over clips; blinks_per_min pooled over all clips' minutes; "
            f"{', '.join(MEDIAN_KEYS)}: median over clips",
        },
        "plots": [],
    }
    report["plots"] = write_plots(report, series, report_dir / "plots")
    report["settings"]["wall_time_s"] = time.perf_counter() - start
    (report_dir / "report.json").write_text(json.dumps(_json_safe(report), indent=1) + "\n", encoding="utf-8")
    write_markdown(report, report_dir / "report.md")
    if not options.keep_videos:
        try:
            video_dir.rmdir()
        except OSError:
            pass
    return report
