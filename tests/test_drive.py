"""Video-driven reenactment: motion captured from a video whose motion we know, then replayed."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import write_audio

from talkface.config import DriveOptions
from talkface.face.expression import EMOTIONS, EXPRESSIONS
from talkface.face.tracking import track_video
from talkface.motion.capture import motion_from_track
from talkface.motion.contract import MotionSequence
from talkface.pipeline import drive
from talkface.render.renderer import Renderer
from talkface.video.encode import Mp4Writer

FPS = 25.0


def _known_motion(n: int) -> MotionSequence:
    m = MotionSequence.still(n, FPS)
    t = np.arange(n)
    m.expression[:, EXPRESSIONS.index("jaw_open")] = 0.5 * np.clip(np.sin(2 * np.pi * t / 20), 0, None)
    m.expression[30:34, EXPRESSIONS.index("blink_left")] = 1.0
    m.expression[30:34, EXPRESSIONS.index("blink_right")] = 1.0
    m.rotation[:, 0] = 6.0 * np.sin(2 * np.pi * t / n)  # yaw
    m.scale[:] = 1.0 + 0.06 * np.sin(2 * np.pi * t / 25)  # towards and away from the camera
    return m


def test_capture_recovers_known_motion(tmp_path, rig):
    n = 50
    known = _known_motion(n)
    wav = write_audio(tmp_path / "a.wav", np.zeros(int(16000 * n / FPS), np.float32), 16000)
    video = tmp_path / "driving.mp4"
    r = Renderer(rig)
    with Mp4Writer(video, (rig.size, rig.size), FPS, wav) as w:
        for i in range(n):
            w.write(r.render(known, i))
    got = motion_from_track(track_video(video))
    assert len(got) == n
    jaw_known = known.coefficient("jaw_open")
    jaw_got = got.coefficient("jaw_open")
    assert np.corrcoef(jaw_known, jaw_got)[0, 1] > 0.9
    assert np.corrcoef(known.rotation[:, 0], got.rotation[:, 0])[0, 1] > 0.9
    assert np.corrcoef(known.scale, got.scale)[0, 1] > 0.9
    assert np.abs(got.scale - known.scale).max() < 0.03
    blink = got.coefficient("blink_left")
    assert blink[30:34].max() > 0.4 and np.median(blink) < 0.15

    # The whole command: the driving video's audio is kept and the frame count matches.
    out = drive(rig.image, video, tmp_path / "out.mp4")
    import av

    with av.open(str(out)) as c:
        assert c.streams.audio and sum(1 for _ in c.decode(video=0)) == n


# -- drive honours every option it takes -------------------------------------------------------------------


@pytest.fixture(scope="module")
def driving_video(tmp_path_factory, rig):
    """A 2-s driving video whose motion is known; tracking is replaced by that motion (drive_with)."""
    path = tmp_path_factory.mktemp("drive") / "driving.mp4"
    wav = write_audio(path.with_suffix(".wav"), np.zeros(32000, np.float32), 16000)
    r = Renderer(rig)
    known = _known_motion(50)
    with Mp4Writer(path, (rig.size, rig.size), FPS, wav) as w:
        for i in range(len(known)):
            w.write(r.render(known, i))
    return path


def drive_with(monkeypatch, rig, video, tmp_path, **options) -> MotionSequence:
    """The motion drive() renders for `video` with `options`, its tracking replaced by the known motion."""
    import talkface.face.tracking
    import talkface.motion.capture
    from talkface.engine import Engine

    got = []
    monkeypatch.setattr(talkface.face.tracking, "track_video", lambda path: None)
    monkeypatch.setattr(talkface.motion.capture, "motion_from_track", lambda track: _known_motion(50))
    monkeypatch.setattr(Engine, "write", lambda self, motion, *a, **k: got.append(motion))
    drive(rig.image, video, tmp_path / "out.mp4", DriveOptions(**options))
    return got[0]


def test_drive_defaults_replay_the_motion(monkeypatch, rig, driving_video, tmp_path):
    m = drive_with(monkeypatch, rig, driving_video, tmp_path)
    known = _known_motion(50)
    assert m.fps == FPS and np.array_equal(m.expression, known.expression)
    assert np.array_equal(m.rotation, known.rotation) and not m.emotion.any()


def test_drive_motion_scale(monkeypatch, rig, driving_video, tmp_path):
    m = drive_with(monkeypatch, rig, driving_video, tmp_path, motion_scale=0.5)
    known = _known_motion(50)
    np.testing.assert_allclose(m.rotation, 0.5 * known.rotation, atol=1e-6)
    np.testing.assert_allclose(m.scale, known.scale)  # the head's distance is not head motion


def test_drive_expression_scale(monkeypatch, rig, driving_video, tmp_path):
    m = drive_with(monkeypatch, rig, driving_video, tmp_path, expression_scale=0.5)
    known = _known_motion(50)
    np.testing.assert_allclose(m.coefficient("jaw_open"), 0.5 * known.coefficient("jaw_open"), atol=1e-6)
    assert np.array_equal(m.coefficient("blink_left"), known.coefficient("blink_left"))  # blinks stay shut


def test_drive_gaze(monkeypatch, rig, driving_video, tmp_path):
    m = drive_with(monkeypatch, rig, driving_video, tmp_path, gaze=(5.0, -3.0))
    np.testing.assert_allclose(m.gaze, np.tile([5.0, -3.0], (50, 1)))


def test_drive_emotion_and_strength(monkeypatch, rig, driving_video, tmp_path):
    m = drive_with(monkeypatch, rig, driving_video, tmp_path, emotion="sad")
    assert np.allclose(m.emotion[:, EMOTIONS.index("sad")], DriveOptions().emotion_strength)
    m = drive_with(monkeypatch, rig, driving_video, tmp_path, emotion="sad", emotion_strength=0.3)
    assert np.allclose(m.emotion[:, EMOTIONS.index("sad")], 0.3) and m.emotion.sum(1).max() <= 0.3 + 1e-6


def test_drive_emotion_track(monkeypatch, rig, driving_video, tmp_path):
    """An emotion track over the driven frames, at the output frame rate."""
    from talkface.motion.controls import emotion_rows

    for fps, n in ((None, 50), (12.5, 25)):
        options = DriveOptions(emotion="neutral@0,sad:0.5@1", fps=fps)
        m = drive_with(monkeypatch, rig, driving_video, tmp_path, emotion=options.emotion, fps=fps)
        np.testing.assert_array_equal(m.emotion, emotion_rows(options, 0, n, m.fps))
        sad = m.emotion[:, EMOTIONS.index("sad")]
        assert not sad[: n // 2].any() and sad[-1] == np.float32(0.5)


def test_drive_fps(monkeypatch, rig, driving_video, tmp_path):
    m = drive_with(monkeypatch, rig, driving_video, tmp_path, fps=12.5)
    known = _known_motion(50)
    assert m.fps == 12.5 and len(m) == 25  # the same 2 seconds
    np.testing.assert_allclose(
        m.rotation[:, 0], (known.rotation[0::2, 0] + known.rotation[1::2, 0]) / 2, atol=1e-4
    )


def test_drive_fps_end_to_end_and_refused_options(portrait, driving_video, tmp_path):
    import av

    from talkface.cli import main

    out = tmp_path / "half.mp4"
    args = [
        "drive",
        str(portrait),
        str(driving_video),
        "-o",
        str(out),
        "--fps",
        "12.5",
        "--size",
        "128",
        "-q",
    ]
    assert main(args) == 0
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 25 and float(c.streams.video[0].average_rate) == 12.5
    for flag in (["--seed", "3"], ["--generator", "rules"]):
        r = subprocess.run(
            [sys.executable, "-m", "talkface.cli", "drive", "p.jpg", "v.mp4", "-o", "x.mp4", *flag],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
        assert f"{flag[0]} does not apply" in r.stderr and "driving video" in r.stderr


def test_a_driving_face_looking_down_does_not_blink_twice(tmp_path, rig):
    """The renderer lowers the upper lids with a downward gaze; captured from such a video, the lowering is
    taken out of the blinks (the renderer adds it again), so the eyes are not driven half shut."""
    n = 30
    m = MotionSequence.still(n, FPS)
    m.gaze[10:, 1] = 14.0  # look down from frame 10 on
    video = tmp_path / "down.mp4"
    r = Renderer(rig)
    with Mp4Writer(video, (rig.size, rig.size), FPS, None) as w:
        for i in range(n):
            w.write(r.render(m, i))
    got = motion_from_track(track_video(video))
    assert got.gaze[15:, 1].mean() > 2.0  # the look down is captured (the tracker sees less of it)
    lids = got.expression[15:, [EXPRESSIONS.index("blink_right"), EXPRESSIONS.index("blink_left")]]
    assert np.median(lids) < 0.12, np.median(lids)
