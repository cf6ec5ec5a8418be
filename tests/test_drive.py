"""Video-driven reenactment: motion captured from a video whose motion we know, then replayed."""

import numpy as np
from conftest import write_audio

from talkface.face.expression import EXPRESSIONS
from talkface.face.tracking import track_video
from talkface.motion.capture import motion_from_track
from talkface.motion.sequence import MotionSequence
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
