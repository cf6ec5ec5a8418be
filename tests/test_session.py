"""talkface.Session: live audio in, watermarked frames out, agreeing with the offline pipeline."""

import threading

import numpy as np
import pytest
from conftest import synth_speech

import talkface
from talkface.audio.features import compute_features
from talkface.audio.load import from_samples
from talkface.config import EMOTIONS, EmotionKey, EmotionTrack, MotionControls
from talkface.errors import TalkfaceError
from talkface.motion.controls import emotion_rows
from talkface.motion.generators import generate
from talkface.render.renderer import Renderer
from talkface.video.watermark import detect_frames

SIZE = 192


@pytest.fixture(scope="module")
def session(portrait):
    # The rules: live, they make the same motion as offline, so frames can be compared pixel by pixel (the
    # learned generator's live mouth reads phones as recognised so far: test_the_learned_generator_...).
    with talkface.Session(portrait, size=SIZE, seed=3, generator="rules") as s:
        yield s


def _feed(session, x, rate, chunk):
    out = []
    for i in range(0, len(x), chunk):
        session.push_audio(x[i : i + chunk], rate)
        out.extend(session.frames())
    return out


def test_live_frames_match_the_offline_render(session, portrait):
    session.reset()
    x = synth_speech(3.0, seed=1)
    frames = _feed(session, x, 16000, 640)  # 40 ms chunks, as a microphone sends them
    assert len(frames) >= 3.0 * 25 - 5  # all but the last ~150 ms are out before the end is known
    session.flush()
    frames.extend(session.frames())
    assert len(frames) >= 75
    times = np.array([t for t, _ in frames])
    np.testing.assert_allclose(np.diff(times), 1 / 25)
    # The offline generator on the same audio gives the same motion; rendered, the same pixels up to the
    # watermark (PSNR of a marked frame is ~41 dB).
    motion = generate("rules", compute_features(from_samples(x, 16000)), 75, 25.0, MotionControls(seed=3))
    renderer = Renderer(session._engine.rig)
    for j in (10, 40, 70):
        offline = renderer.render(motion, j).astype(np.float64)
        mse = np.mean((frames[j][1].astype(np.float64) - offline) ** 2)
        assert 10 * np.log10(255**2 / max(mse, 1e-9)) > 38
    mouth = np.array([f[SIZE // 2 + SIZE // 8 :, SIZE // 3 : 2 * SIZE // 3].mean() for _, f in frames])
    assert mouth.std() > 0.5  # the mouth region changes while the voice plays


def test_any_rate_chunk_and_format(session):
    session.reset()
    x = synth_speech(1.0, rate=48000)
    stereo = np.column_stack([x, x])
    pcm = (stereo * 32767).astype(np.int16)
    frames = _feed(session, pcm, 48000, 4800)
    session.flush()
    frames.extend(session.frames())
    assert len(frames) == 25 and frames[0][1].shape == (SIZE, SIZE, 3) and frames[0][1].dtype == np.uint8


def test_live_frames_are_watermarked(session):
    session.reset()
    frames = _feed(session, synth_speech(2.0), 16000, 1600)
    session.flush()
    frames.extend(session.frames())
    found = detect_frames([f for _, f in frames])
    assert found.found and found.payload.video_id == session.payload.video_id


def test_bad_input_is_a_clear_error(session, portrait):
    session.reset()
    with pytest.raises(TalkfaceError, match="sample rate"):
        session.push_audio(np.zeros(100, np.float32), 100)
    with pytest.raises(TalkfaceError, match="int16"):
        session.push_audio(np.zeros(100, np.int32), 16000)
    session.push_audio(np.zeros(100, np.float32), 16000)
    with pytest.raises(TalkfaceError, match="changed"):
        session.push_audio(np.zeros(100, np.float32), 48000)
    with pytest.raises(TalkfaceError, match="unknown option"):
        talkface.Session(portrait, colour="red")
    with pytest.raises(TalkfaceError, match="size"):
        talkface.Session(portrait, size=10)
    s = talkface.Session(portrait, size=SIZE)
    s.close()
    with pytest.raises(TalkfaceError, match="closed"):
        s.push_audio(np.zeros(10, np.float32), 16000)


def test_set_emotion_changes_the_frames_not_made_yet(portrait, monkeypatch):
    """The frames made before set_emotion keep their emotion; from the next one the face eases into the new
    one, as an emotion track's keyframe at that frame's time would; a reset starts with it."""
    with talkface.Session(portrait, size=128, emotion="happy:0.5") as s:
        shown = []  # the emotion row of each frame, in order (not rendered: only the motion matters here)
        monkeypatch.setattr(s._engine, "frame", lambda motion, i: shown.append(motion.emotion[i]))
        x = synth_speech(2.0)
        _feed(s, x[:16000], 16000, 640)
        made = len(shown)
        s.set_emotion("sad", 0.8)
        _feed(s, x[16000:], 16000, 640)
        s.flush()
        list(s.frames())
        track = EmotionTrack((EmotionKey(0.0, "happy", 0.5), EmotionKey(made / s.fps, "sad", 0.8)))
        assert made > 15 and len(shown) >= 50
        np.testing.assert_array_equal(
            np.array(shown), emotion_rows(MotionControls(emotion=track), 0, len(shown), 25)
        )
        assert np.all(np.array(shown[:made])[:, EMOTIONS.index("happy")] == np.float32(0.5))
        assert shown[-1][EMOTIONS.index("sad")] == np.float32(0.8) and not shown[-1][EMOTIONS.index("happy")]
        for bad, why in ((("joy",), "'joy' is not one of"), (("sad", 2.0), "out of range")):
            with pytest.raises(TalkfaceError, match=why):
                s.set_emotion(*bad)
        s.reset()
        shown.clear()
        _feed(s, x[:8000], 16000, 640)
        assert shown and all(row[EMOTIONS.index("sad")] == np.float32(0.8) for row in shown)


def test_set_emotion_from_another_thread(portrait, monkeypatch):
    with talkface.Session(portrait, size=128) as s:
        shown = []
        monkeypatch.setattr(s._engine, "frame", lambda motion, i: shown.append(motion.emotion[i]))
        stop = threading.Event()

        def click():
            while not stop.is_set():
                for name in ("happy", "sad", "neutral"):
                    s.set_emotion(name)

        clicker = threading.Thread(target=click)
        clicker.start()
        try:
            _feed(s, synth_speech(2.0), 16000, 320)
        finally:
            stop.set()
            clicker.join()
        rows = np.array(shown)
        assert len(rows) > 40 and np.all(rows >= 0) and np.all(rows.sum(1) <= 0.7 + 1e-6)


def test_the_learned_generator_streams_live(portrait):
    """The live default, the learned generator: the learned mouth on phones recognised as the audio arrives
    (no whole-file recognition), every frame out by the end, the mouth moving with the voice."""
    x = synth_speech(2.0, seed=2)
    with talkface.Session(portrait, size=SIZE, seed=3) as s:
        assert s.options.generator == "learned"
        assert s._motion._phones is not None  # it listens to live phones
        frames = _feed(s, x, 16000, 320)
        s.flush()
        frames.extend(s.frames())
    assert len(frames) >= 50  # flush() may close the mouth over a few frames more
    mouth = np.array([f[SIZE // 2 + SIZE // 8 :, SIZE // 3 : 2 * SIZE // 3].mean() for _, f in frames])
    assert mouth.std() > 0.5
