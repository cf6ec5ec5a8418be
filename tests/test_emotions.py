"""The emotion check (talkface.eval.emotions): the EMFACS rule classifier on synthetic action-unit signals,
the action-unit measures on synthetic landmarks, and one emotion rendered, tracked and read end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from talkface.config import EMOTIONS
from talkface.eval import emotions as E
from talkface.eval import metrics as M


def _full(*aus: str, scale: float = 1.0) -> dict[str, float]:
    """AU signals with the given AUs at `scale` x their full value and every other AU at 0."""
    return {au: (scale * E.AU_THRESHOLDS[au][1] if au in aus else 0.0) for au in E.AUS}


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_each_prototype_at_full_strength_scores_1_and_wins(emotion):
    signals = _full(*E.PROTOTYPES[emotion].required)
    scores = E.emotion_scores(signals)
    assert scores[emotion] == pytest.approx(1.0)
    assert E.top_emotion(scores) == emotion
    assert all(s < 1.0 for name, s in scores.items() if name != emotion)


def test_classifier_scores_overlap_as_documented():
    none = E.emotion_scores(_full())
    assert all(s == 0.0 for s in none.values()) and E.top_emotion(none) == "neutral"
    # Surprise (1+2+5+26) is fear (1+2+4+5+20+26) without 4 and 20, and the other way round.
    surprised = E.emotion_scores(_full("AU1", "AU2", "AU5", "AU26"))
    assert surprised["fearful"] == pytest.approx(4 / 6)
    fearful = E.emotion_scores(_full("AU1", "AU2", "AU4", "AU5", "AU20", "AU26"))
    assert fearful["surprised"] == pytest.approx(4 / (4 + 2))
    # Half the evidence of happy's two AUs: score 0.5; an extra AU outside the prototype costs.
    # Evidence is linear from onset (0) to full (1): half way for both of happy's AUs scores 0.5.
    midway = {au: 0.5 * sum(E.AU_THRESHOLDS[au]) for au in ("AU6/7", "AU12")}
    assert E.emotion_scores({**_full(), **midway})["happy"] == pytest.approx(0.5)
    with_sad_brows = E.emotion_scores({**_full("AU6/7", "AU12"), "AU1": E.AU_THRESHOLDS["AU1"][1]})
    assert with_sad_brows["happy"] == pytest.approx(2 / 3)
    # Contempt: one corner pulled (AU14U); the bilateral pull that comes with it neither helps nor hurts.
    contempt = E.emotion_scores(_full("AU14U", "AU12", scale=1.0))
    assert contempt["contemptuous"] == 1.0 and E.top_emotion(contempt) == "contemptuous"
    # Disgust's optional AU10 does not count against it.
    assert E.emotion_scores(_full("AU9", "AU15", "AU16", "AU10"))["disgusted"] == 1.0
    # Below the onsets nothing is read: the noise of two neutral renders.
    quiet = {au: 0.9 * on for au, (on, _) in E.AU_THRESHOLDS.items()}
    assert E.top_emotion(E.emotion_scores(quiet)) == "neutral"
    assert all(math.isnan(s) for s in E.emotion_scores({**_full(), "AU1": float("nan")}).values())


@pytest.fixture(scope="module")
def face_points() -> np.ndarray:
    from talkface.assets import asset_path
    from talkface.face.image import load_image
    from talkface.face.rig import build_rig

    return build_rig(load_image(asset_path("portrait.jpg")), 256).points.astype(np.float64)


def test_au_signals_read_known_landmark_moves_through_head_motion(face_points):
    """Inner brows up by 0.05 eye distances and the lip corners up by 0.04 (each frame under its own
    in-plane head turn, scale and shift): AU1 0.05, AU12 0.04 plus no outward move; the rest near 0."""
    ref = E.levelled(face_points)
    eye = float(M.eye_distance(ref))
    rng = np.random.default_rng(0)

    def frames(face: np.ndarray) -> np.ndarray:
        out = []
        for _ in range(12):
            a = np.radians(rng.uniform(-8, 8))
            rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            out.append(rng.uniform(0.8, 1.2) * face @ rot.T + rng.uniform(-20, 20, 2))
        return np.stack(out)

    moved = ref.copy()
    moved[sum(E.INNER_BROWS, []), 1] -= 0.05 * eye  # y down: minus is up
    moved[list(E.LIP_CORNERS), 1] -= 0.04 * eye
    base = E.median_measures(frames(ref), ref)
    signals = E.au_signals(E.median_measures(frames(moved), ref), base)
    assert signals["AU1"] == pytest.approx(0.05, abs=1e-9)
    assert signals["AU12"] == pytest.approx(0.04, abs=1e-9)
    assert signals["AU15"] == pytest.approx(-0.04, abs=1e-9) and signals["AU14U"] == pytest.approx(
        0, abs=1e-9
    )
    others = [au for au in E.AUS if au not in ("AU1", "AU12", "AU15", "AU4")]
    assert all(abs(signals[au]) < 1e-9 for au in others), signals
    assert signals["AU4"] == pytest.approx(0.0, abs=1e-9)  # brows up and not drawn together: no AU4
    # One corner only: a unilateral pull.
    one = ref.copy()
    one[E.LIP_CORNERS[0], 1] -= 0.04 * eye
    assert E.au_signals(E.median_measures(frames(one), ref), base)["AU14U"] == pytest.approx(0.04, abs=1e-9)


def test_emotion_check_renders_reads_and_tabulates_one_emotion(tmp_path):
    import cv2

    blank = tmp_path / "no_face.png"  # a portrait without a face is reported, and the others go on
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    options = E.EmotionCheckOptions(emotions=("surprised",), size=128, seconds=1.0)
    report = E.run_emotion_check([blank], tmp_path, options)
    p, skipped = report["portraits"]
    assert skipped["name"] == "no_face" and "face" in skipped["error"]
    assert set(p["rows"]) == {"control", "surprised"}
    row = p["rows"]["surprised"]
    assert row["face_found"] > 0.9 and set(row["signals"]) == set(E.AUS)
    assert set(row["scores"]) == set(EMOTIONS) and all(0 <= s <= 1 for s in row["scores"].values())
    assert row["top"] in (*EMOTIONS, "neutral") and row["hit"] == (row["top"] == "surprised")
    assert row["rise"] == pytest.approx(
        row["scores"]["surprised"] - p["rows"]["control"]["scores"]["surprised"]
    )
    # Surprise raises the brows in any renderer worth the name: the reader must see that much.
    assert row["signals"]["AU1"] > 0.01 and row["signals"]["AU2"] > 0.01
    data = json.loads((tmp_path / "emotions.json").read_text())
    assert data["portraits"][0]["rows"]["surprised"]["top"] == row["top"]
    md = (tmp_path / "emotions.md").read_text()
    assert "| surprised |" in md and "| control (neutral) |" in md and "AU26" in md
    assert "## no_face" in md and "Skipped:" in md
    assert (tmp_path / "videos" / "portrait.surprised.mp4").is_file()


def test_emotion_check_does_not_import_the_rig_s_emotion_code():
    """The check judges pixels only: the renderer's emotion code is not among its imports."""
    source = Path(E.__file__).read_text()
    for module in ("action_units", "motion.controls", "motion import controls", "learned_basis"):
        assert f"talkface.face.{module}" not in source and f"talkface.{module}" not in source


def test_emotion_check_flags():
    from talkface.config import AnimateOptions

    assert E.EmotionCheckOptions().strength == AnimateOptions().emotion_strength
    assert E.EmotionCheckOptions().emotions == EMOTIONS
    from talkface.errors import TalkfaceError

    with pytest.raises(TalkfaceError):
        E.EmotionCheckOptions(size=64)
