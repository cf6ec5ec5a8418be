r"""Measure real talking faces on the TRAIN split and fit the acoustic rule generator's constants.

Tracks every train clip of the development set with the product's face mesh (talkface.eval.tracking),
computes the clip's audio features at its frame rate (as `talkface eval` does) and prints:

1. per candidate acoustic feature and audio lead (-200..+200 ms), the mean per-clip Pearson r with the
   real mouth opening; then a nonnegative least-squares mouth model over 8 per-file-normalised band
   levels (leave-one-speaker-out r), which shows which bands carry the opening;
2. the rule's mouth (motion.rules.open_cue, smoothed): a grid over its nasal tilt and range, the lip lead
   (0-40 ms) and the smoothing, then JAW_GAIN so that the voiced opening matches the real one;
3. real statistics: voiced-frame opening percentiles and closures, head pose std, blinks;
4. (with --train-eval) head std calibrated through the renderer and the tracker;
5. how real head motion spreads over frequency, and the sway band and slope that match it.

The constants it prints are pasted into src/talkface/motion/rules.py, whose comments name this script.
Only the train clips of src/talkface/eval/split.json are read; validation stays for `talkface eval`.
Tracks are cached as per-frame signals (mouth opening and width, eye aspect ratio, head pose; no frames
or landmarks) in a git-ignored folder: they are derived from third-party media and must not be committed.

    .venv/bin/python training/fit_rules.py /work/shared/data/talking
    # calibrate through the renderer: evaluate the train split with the current rules first
    .venv/bin/talkface eval /work/shared/data/talking --split train --generator rules --generator loudness \
        --report reports/eval-rules-train
    .venv/bin/python training/fit_rules.py /work/shared/data/talking \
        --train-eval reports/eval-rules-train/report.json
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkface.audio.features import AudioFeatures, compute_features, n_video_frames
from talkface.audio.load import load_audio
from talkface.config import MotionControls
from talkface.eval import metrics as M
from talkface.eval import split as S
from talkface.eval.tracking import head_pose, probe, track_video
from talkface.motion import cues as C
from talkface.motion import rules as R
from talkface.motion.generators import generate

log = logging.getLogger("fit_rules")

LEADS_MS = list(range(-200, 201, 40))  # audio lead searched for each feature; > 0: the lips lead the voice
RULE_LEADS_MS = [0, 20, 40]  # the product allows the lips to lead by 0-40 ms, never to lag
TILTS = [0.0, 0.25, 0.5, 0.75, 1.0]
RANGES_DB = [30.0, 40.0, 50.0]
SMOOTHS_S = [0.02, 0.035, 0.05]
SEEDS = 20  # seeds the head sway's reach on a clip is averaged over
CLOSED = 0.03  # eye distances: lips closed (as the eval's CLOSED_MOUTH)
# Rendered inner-lip gap per unit jaw_open, eye distances: 0.55 lower-lip drop + 0.03 upper-lip rise
# (face.expression), as the face mesh measures it on renders.
GAP_PER_JAW = 0.58


@dataclass
class Clip:
    """One train clip measured at its own frame rate: real per-frame signals (T,) and features."""

    name: str
    fps: float
    opening: np.ndarray  # (T,) inner-lip gap / eye distance, NaN where no face
    width: np.ndarray  # (T,) mouth width (outer corners 61-291) / eye distance
    ear: np.ndarray  # (T,) eye aspect ratio
    pose: np.ndarray  # (T, 3) yaw, pitch, roll degrees (rotation_angles order, as the eval reads it)
    feats100: AudioFeatures  # 100 Hz features of the whole clip
    feats: AudioFeatures  # features at fps, T frames


def measure_clip(path: Path, cache: Path) -> Clip:
    """Track (or read the cached track of) one clip, and compute its audio features."""
    fps = float(min(60.0, max(1.0, probe(path).fps)))
    cached = cache / f"{path.name}.npz"
    if cached.exists():
        z = np.load(cached)
        opening, width, ear, pose = z["opening"], z["width"], z["ear"], z["pose"]
    else:
        track = track_video(path)
        opening = M.mouth_opening(track.points)
        corners = track.points[:, [61, 291], :2].astype(np.float64)
        width = np.linalg.norm(corners[:, 0] - corners[:, 1], axis=-1) / M.eye_distance(track.points)
        ear = M.eye_aspect_ratio(track.points)
        pose = head_pose(track.points)
        np.savez_compressed(cached, opening=opening, width=width, ear=ear, pose=pose)
    audio = load_audio(path)
    n = min(len(opening), n_video_frames(audio.duration, fps))
    f100 = compute_features(audio)
    return Clip(path.name, fps, opening[:n], width[:n], ear[:n], pose[:n], f100, f100.at_fps(fps, n))


def load_clips(data_dir: Path, cache: Path) -> list[Clip]:
    cache.mkdir(parents=True, exist_ok=True)
    names = S.load_split()["train"]
    clips = []
    for name in names:
        path = data_dir / name
        if not path.exists():
            log.warning("missing train clip %s", name)
            continue
        clips.append(measure_clip(path, cache))
        log.info("%s: %d frames at %g fps", name, len(clips[-1].opening), clips[-1].fps)
    return clips


# --- 1. Which acoustic feature follows the mouth, at which lag ---------------------------------------


def candidate_features(f: AudioFeatures) -> dict[str, np.ndarray]:
    """Per-frame acoustic candidates (T,) for the mouth opening."""
    return {
        "level dB": f.energy_db,
        "F1 band 300-1000 Hz dB": C.band_level_db(f, (300.0, 1000.0)),
        "F2-F3 band 1.8-3.8 kHz dB": C.band_level_db(f, C.OPEN_BAND_HZ),
        "nasal band 60-500 Hz dB": C.band_level_db(f, C.NASAL_BAND_HZ),
        "sibilant band 4.5-7.6 kHz dB": C.band_level_db(f, (4500.0, 7600.0)),
        "low_ratio": f.low_ratio,
        "high_ratio": f.high_ratio,
        "centroid_hz": f.centroid_hz,
        "voicing": f.voicing,
        "d level / dt": np.gradient(f.energy_db),
        "loudness (old rule)": C.loudness(f),
        "open cue (new rule)": C.open_cue(f),
    }


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return M.pearson(a[ok], b[ok])


def feature_lag_table(clips: list[Clip]) -> None:
    """Mean over clips of r(feature, real mouth opening) when frame j sees the audio `lead` ms ahead."""
    table: dict[str, list[float]] = {}
    for lead in LEADS_MS:
        per_clip = [candidate_features(c.feats100.at_fps(c.fps, len(c.opening), lead / 1000)) for c in clips]
        for name in per_clip[0]:
            r = np.nanmean([_pearson(fs[name], c.opening) for fs, c in zip(per_clip, clips, strict=True)])
            table.setdefault(name, []).append(float(r))
    print("\n## 1. Feature vs real mouth opening: mean per-clip r by audio lead (ms; > 0: the lips lead)")
    print(f"{'feature':30s} " + " ".join(f"{lead:+5d}" for lead in LEADS_MS) + "   best")
    for name, rs in table.items():
        i = int(np.nanargmax(rs))
        print(f"{name:30s} " + " ".join(f"{r:5.2f}" for r in rs) + f"   {rs[i]:.3f} at {LEADS_MS[i]:+d} ms")


def _speaker(name: str) -> str:
    """Speaker of a train clip, from split.json's naming: clips of one person share a name part."""
    for who in ("obama", "aoc", "andrew", "m030"):
        if who in name:
            return who
    return name


def band_model(clips: list[Clip], lead_s: float = 0.04) -> None:
    """Nonnegative least squares of the real opening on 8 band levels (dB relative to the file's 95th
    percentile over voiced frames, 0 at 45 dB below) plus a free intercept, clips weighted equally;
    leave-one-speaker-out r, and the weights fitted on all clips."""
    from scipy.optimize import nnls

    edges = (60, 250, 500, 800, 1200, 1800, 2600, 3800, 7600)

    def design(c: Clip) -> np.ndarray:
        f = c.feats100.at_fps(c.fps, len(c.opening), lead_s)
        bands = zip(edges[:-1], edges[1:], strict=True)
        levels = np.stack([C.band_level_db(f, band) for band in bands], 1)  # (T, 8) dB
        ref = np.percentile(levels[f.voicing > 0.5], 95, axis=0)
        return np.clip((levels - ref + 45.0) / 45.0, 0, None)

    xs = [design(c) for c in clips]

    def fit(idx: list[int]) -> np.ndarray:
        w = np.concatenate([np.full(len(clips[i].opening), 1 / np.sqrt(len(clips[i].opening))) for i in idx])
        x = np.concatenate([xs[i] for i in idx])
        a = np.column_stack([x, np.ones(len(x)), -np.ones(len(x))]) * w[:, None]  # intercept of either sign
        y = np.concatenate([np.nan_to_num(clips[i].opening, nan=np.nanmean(clips[i].opening)) for i in idx])
        coef, _ = nnls(a, y * w)
        return np.r_[coef[:-2], coef[-2] - coef[-1]]

    speakers = [_speaker(c.name) for c in clips]
    rs = []
    for who in sorted(set(speakers)):
        coef = fit([i for i, s in enumerate(speakers) if s != who])
        rs += [_pearson(xs[i] @ coef[:-1], clips[i].opening) for i, s in enumerate(speakers) if s == who]
    coef = fit(list(range(len(clips))))
    print(
        f"\nNNLS on 8 bands {edges} Hz at {1000 * lead_s:.0f} ms lead: "
        f"leave-one-speaker-out r {np.nanmean(rs):.3f}"
    )
    print("weights: " + " ".join(f"{w:.3f}" for w in coef[:-1]) + f", intercept {coef[-1]:.3f}")


# --- 2. The mouth rule: cue shape, lead, amplitude -----------------------------------------------------


def rule_jaw(f: AudioFeatures, fps: float, tilt: float, range_db: float, smooth_s: float) -> np.ndarray:
    """The rule generator's jaw (T,) with the given constants, unit gain (JAW_GAIN = 1)."""
    gate = np.clip((f.voicing - 0.25) / 0.4, 0, 1)
    target = C.open_cue(f, tilt, range_db) * gate
    return R.smooth_mouth(target[:, None], fps, smooth_s)[:, 0]


def score_rule(clips: list[Clip], lead_s: float, **kw) -> tuple[float, list[float]]:
    """(mean per-clip r with the real opening, per-clip r) of the unit-gain rule jaw."""
    rs = []
    for c in clips:
        f = c.feats100.at_fps(c.fps, len(c.opening), lead_s)
        rs.append(_pearson(rule_jaw(f, c.fps, **kw), c.opening))
    return float(np.nanmean(rs)), rs


def fit_mouth(clips: list[Clip], gap_per_jaw: float) -> dict:
    """Grid search of the cue's nasal tilt and range on mean per-clip r; then the lip lead (0-40 ms, the
    product range) and the jaw gain that makes the voiced mouth opening match the real one."""
    print("\n## 2. Mouth rule on train: mean per-clip r of the rule jaw with the real opening")
    smooth = R.MOUTH_SMOOTH_S
    best = (-1.0, 0.0, 0.0)
    print("tilt \\ range_db " + " ".join(f"{d:6.0f}" for d in RANGES_DB))
    for tilt in TILTS:
        row = []
        for range_db in RANGES_DB:
            r, _ = score_rule(clips, R.LIP_LEAD, tilt=tilt, range_db=range_db, smooth_s=smooth)
            row.append(r)
            best = max(best, (r, tilt, range_db))
        print(f"{tilt:16.2f} " + " ".join(f"{r:6.3f}" for r in row))
    _, tilt, range_db = best
    print(f"best: NASAL_TILT = {tilt}, OPEN_RANGE_DB = {range_db} (r {best[0]:.3f})")
    leads = {
        ms: score_rule(clips, ms / 1000, tilt=tilt, range_db=range_db, smooth_s=smooth)[0]
        for ms in RULE_LEADS_MS
    }
    lead_ms = max(leads, key=leads.get)
    print(
        "lead ms: "
        + ", ".join(f"{ms}: {r:.3f}" for ms, r in leads.items())
        + f" -> LIP_LEAD = {lead_ms / 1000}"
    )
    sm = {
        s: score_rule(clips, lead_ms / 1000, tilt=tilt, range_db=range_db, smooth_s=s)[0] for s in SMOOTHS_S
    }
    print("smoothing s: " + ", ".join(f"{s}: {r:.3f}" for s, r in sm.items()) + f" (rules use {smooth})")

    # Amplitude: the rendered gap is gap_per_jaw x jaw; match the real voiced opening (eval's voiced mask).
    real_open, unit_open, closed_real = [], [], []
    for c in clips:
        f = c.feats100.at_fps(c.fps, len(c.opening), lead_ms / 1000)
        jaw = rule_jaw(f, c.fps, tilt, range_db, smooth)
        voiced = c.feats.voicing >= 0.5
        ok = voiced & np.isfinite(c.opening)
        real_open.append(c.opening[ok].mean())
        unit_open.append(jaw[ok].mean())
        closed_real.append(np.mean(c.opening[ok] < CLOSED))
    gain = float(np.mean(real_open) / (gap_per_jaw * np.mean(unit_open)))
    closed_rule = []
    for c in clips:
        f = c.feats100.at_fps(c.fps, len(c.opening), lead_ms / 1000)
        gap = gap_per_jaw * gain * rule_jaw(f, c.fps, tilt, range_db, smooth)
        closed_rule.append(np.mean(gap[c.feats.voicing >= 0.5] < CLOSED))
    print(
        f"real voiced opening {np.mean(real_open):.3f} eye dist; rule at unit gain "
        f"{np.mean(unit_open):.3f} jaw; gap per jaw {gap_per_jaw:.2f} -> JAW_GAIN = {gain:.2f}"
    )
    print(
        f"closed (< {CLOSED}) in voiced frames: real {np.mean(closed_real):.2f}, "
        f"rule {np.mean(closed_rule):.2f}"
    )
    return {"tilt": tilt, "range_db": range_db, "lead_s": lead_ms / 1000, "jaw_gain": gain}


# --- 3. Real statistics the other rules are calibrated to ---------------------------------------------


def width_check(clips: list[Clip]) -> None:
    """Does the real mouth width follow the rules' rounding and spreading? r of the relative width change
    they command (lip_round narrows by ROUND_NARROW, lip_spread widens by SPREAD_WIDEN) with the real
    relative width, and the least-squares scale of the command (1 = the amplitude fits)."""
    from talkface.face.expression import ROUND_NARROW, SPREAD_WIDEN

    rs, scales = [], []
    for c in clips:
        f = c.feats100.at_fps(c.fps, len(c.opening), R.LIP_LEAD)
        level, cue, _ = C.SpeechLevels(f.rate)(f)
        t = C.mouth_targets(f, level, cue)
        cmd = -ROUND_NARROW * t[:, 1] + SPREAD_WIDEN * t[:, 2]
        real = c.width / np.nanmedian(c.width) - 1
        ok = np.isfinite(real)
        rs.append(_pearson(cmd, real))
        d = cmd[ok] - cmd[ok].mean()
        scales.append(float(d @ (real[ok] - real[ok].mean()) / max(d @ d, 1e-12)))
    print(
        f"mouth width vs rounding/spreading: mean per-clip r {np.nanmean(rs):.3f}, "
        f"least-squares scale of the command {np.nanmedian(scales):.2f} (median over clips)"
    )


def real_stats(clips: list[Clip]) -> None:
    print("\n## 3. Real faces on train")
    voiced = np.concatenate([c.opening[(c.feats.voicing >= 0.5) & np.isfinite(c.opening)] for c in clips])
    p10, p50, p90 = np.percentile(voiced, [10, 50, 90])
    print(
        f"voiced mouth opening p10/p50/p90 {p10:.3f}/{p50:.3f}/{p90:.3f}, "
        f"closed share {np.mean(voiced < CLOSED):.2f}"
    )
    std = np.array([M.pose_stats(c.pose).std for c in clips])
    print(
        "head pose std per clip (yaw/pitch/roll deg): median "
        + "/".join(f"{v:.2f}" for v in np.nanmedian(std, 0))
        + ", mean "
        + "/".join(f"{v:.2f}" for v in np.nanmean(std, 0))
    )
    blinks, minutes, depth, length = 0, 0.0, [], []
    for c in clips:
        b = M.count_blinks(c.ear, c.fps)
        blinks += b.count
        minutes += np.isfinite(c.ear).sum() / c.fps / 60
        base = np.nanmedian(c.ear)
        for k in b.onsets:
            seg = c.ear[k : k + int(0.6 * c.fps)] / base
            depth.append(np.nanmin(seg))
            length.append(np.sum(seg < 0.75) / c.fps)
    print(
        f"blinks {blinks / minutes:.1f}/min; eye aspect ratio at the bottom {np.median(depth):.2f} x open; "
        f"below 0.75 x open for {1000 * np.median(length):.0f} ms (median)"
    )


def head_spectrum(clips: list[Clip]) -> None:
    """How real head motion spreads over frequency (clips of 5 s or more): std in each band as a share of
    the total, median over clips, per axis; then the same for the rules' sway (SWAY_* constants) and a
    small grid of its band and slope, ranked by the distance to the real yaw and pitch shares below 3 Hz
    (above 3 Hz the real tracks are mostly tracker noise)."""
    bands = ((0.0, 0.3), (0.3, 0.6), (0.6, 1.5), (1.5, 3.0))

    def shares(a: np.ndarray, fps: float) -> np.ndarray:  # (bands, axes)
        a = a - a.mean(0)
        spec = np.abs(np.fft.rfft(a * np.hanning(len(a))[:, None], axis=0)) ** 2
        freqs = np.fft.rfftfreq(len(a), 1.0 / fps)
        return np.sqrt(
            np.array([spec[(freqs >= lo) & (freqs < hi)].sum(0) for lo, hi in bands]) / spec.sum(0)
        )

    real = np.median(
        [shares(c.pose, c.fps) for c in clips if len(c.pose) >= 5 * c.fps and np.isfinite(c.pose).all()], 0
    )

    def sway_shares(band_hz, slope) -> np.ndarray:
        fps, n = 30.0, 600
        sways = [R.head_sway(n, fps, np.random.default_rng(s), band_hz, slope) for s in range(40)]
        return np.median([shares(a, fps) for a in sways], 0)

    print("\n## 5. Head motion over frequency: std share per band (0-0.3/0.3-0.6/0.6-1.5/1.5-3 Hz)")
    for i, axis in enumerate(("yaw", "pitch", "roll")):
        print(f"real {axis:5s}: " + "/".join(f"{v:.2f}" for v in real[:, i]))
    grid = []
    for lo in (0.08, 0.12, 0.18):
        for hi in (2.0, 3.0):
            for slope in (0.3, 0.45, 0.6, 0.75):
                sh = sway_shares((lo, hi), slope)[:, 0]
                grid.append((float(np.abs(sh - real[:, :2].mean(1)).sum()), lo, hi, slope, sh))
    grid.sort(key=lambda g: g[0])
    for dist, lo, hi, slope, sh in grid[:3]:
        print(
            f"sway {lo}-{hi} Hz, slope {slope}: "
            + "/".join(f"{v:.2f}" for v in sh)
            + f" (distance {dist:.2f})"
        )
    now = sway_shares(R.SWAY_BAND_HZ, R.SWAY_SLOPE)[:, 0]
    print(f"rules now ({R.SWAY_BAND_HZ}, slope {R.SWAY_SLOPE}): " + "/".join(f"{v:.2f}" for v in now))


def _eval_clips(train_eval: Path) -> list[dict]:
    import json

    return [c for c in json.loads(train_eval.read_text())["clips"] if not c.get("error")]


def rendered_gap_per_jaw(train_eval: Path, clips: list[Clip]) -> float:
    """Rendered inner-lip gap per unit jaw_open, from an eval of the train split run with the current
    rules.py: the rules' rendered voiced opening over the jaw those rules give on the same frames (means
    over clips). Larger than the mesh's 0.58 because the tracker reads parted lips on most portraits."""
    by_name = {c["clip"]: c for c in _eval_clips(train_eval)}
    rendered, jaw = [], []
    for c in clips:
        if c.name not in by_name:
            continue
        n = len(c.opening)
        motion = generate("rules", c.feats100, n, c.fps, MotionControls())
        voiced = c.feats.voicing >= 0.5
        rendered.append(by_name[c.name]["generators"]["rules"]["mouth_open_voiced"])
        jaw.append(motion.coefficient("jaw_open")[voiced].mean())
    ratio = float(np.nanmean(rendered) / np.mean(jaw))
    print(
        f"\nrendered voiced opening {np.nanmean(rendered):.3f} eye dist for mean jaw {np.mean(jaw):.3f}: "
        f"{ratio:.2f} eye dist per unit jaw (the mesh alone: {GAP_PER_JAW})"
    )
    return ratio


def _rotation_std(clip: Clip, seed: int) -> np.ndarray:
    """Std (3,) of the head rotation the rules give a clip with `seed`, degrees."""
    motion = generate("rules", clip.feats100, len(clip.opening), clip.fps, MotionControls(seed=seed))
    return motion.rotation.std(0)


def head_calibration(train_eval: Path, clips: list[Clip]) -> None:
    """Nominal head std per axis (HEAD_STD_DEG) that makes the rendered, re-tracked std match the real one
    on train. Per clip: rendered^2 = (gain x commanded)^2 + floor^2, where commanded is the std of the
    rotation the rules gave that clip (seed 0, as in the eval) and the floor is the loudness baseline's
    (no head motion: tracker noise, jaw motion leaking into pose). A short clip sees only part of the
    sway's long-run std: `reach` is the commanded std per unit HEAD_STD_DEG averaged over SEEDS seeds.
    Then HEAD_STD_DEG = sqrt(real^2 - floor^2) / (gain x reach), with medians over the clips."""
    by_name = {c["clip"]: c for c in _eval_clips(train_eval)}
    keys = ("pose_std_yaw", "pose_std_pitch", "pose_std_roll")
    real, rendered, floor, commanded, reach = [], [], [], [], []
    for c in clips:
        if c.name not in by_name:
            continue
        e = by_name[c.name]
        real.append([e["real"][k] for k in keys])
        rendered.append([e["generators"]["rules"][k] for k in keys])
        floor.append([e["generators"]["loudness"][k] for k in keys])
        commanded.append(_rotation_std(c, 0))
        reach.append(np.mean([_rotation_std(c, s) for s in range(SEEDS)], 0) / R.HEAD_STD_DEG)
    real, rendered, floor, commanded, reach = map(np.array, (real, rendered, floor, commanded, reach))
    gain = np.nanmedian(np.sqrt(np.maximum(rendered**2 - floor**2, 1e-6)) / commanded, 0)
    real_m, floor_m, reach_m = np.nanmedian(real, 0), np.nanmedian(floor, 0), np.median(reach, 0)
    new = np.sqrt(np.maximum(real_m**2 - floor_m**2, 0)) / (gain * reach_m)
    print(f"\n## 4. Head motion calibration from {train_eval} (medians over {len(real)} train clips)")
    for i, axis in enumerate(("yaw", "pitch", "roll")):
        print(
            f"{axis:5s}: real {real_m[i]:.2f}, rules {np.nanmedian(rendered[:, i]):.2f}, still floor "
            f"{floor_m[i]:.2f}; render gain {gain[i]:.2f}, clip reach {reach_m[i]:.2f} "
            f"-> HEAD_STD_DEG {new[i]:.2f} (now {R.HEAD_STD_DEG[i]:.2f})"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--cache", type=Path, default=Path("reports/fit_rules_cache"))
    ap.add_argument(
        "--train-eval",
        type=Path,
        default=None,
        help="report.json of `talkface eval --split train --generator rules --generator loudness` run with "
        "the current rules.py: calibrates the head motion and the rendered gap per unit jaw",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    clips = load_clips(args.data_dir, args.cache)
    print(f"{len(clips)} train clips, {sum(len(c.opening) / c.fps for c in clips):.0f} s")
    feature_lag_table(clips)
    band_model(clips)
    gap_per_jaw = rendered_gap_per_jaw(args.train_eval, clips) if args.train_eval else GAP_PER_JAW
    fit_mouth(clips, gap_per_jaw)
    real_stats(clips)
    width_check(clips)
    if args.train_eval:
        head_calibration(args.train_eval, clips)
    head_spectrum(clips)


if __name__ == "__main__":
    main()
