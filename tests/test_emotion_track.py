"""Emotions over time (issue 15): the track's text, its rows (constant, transitions, strengths), every
generator setting them frame by frame, a live change, and animate with a track."""

import numpy as np
import pytest
from conftest import synth_speech, write_audio

from talkface.audio.features import compute_features
from talkface.audio.load import from_samples
from talkface.config import (
    EMOTION_TRANSITION_S,
    EMOTIONS,
    AnimateOptions,
    EmotionKey,
    EmotionTrack,
    MotionControls,
    parse_emotion,
)
from talkface.errors import TalkfaceError
from talkface.motion.controls import LiveEmotion, emotion_rows
from talkface.motion.generators import GENERATORS, make_stream
from talkface.motion.stream import run_stream

FPS = 25.0
HAPPY, SAD, ANGRY = (EMOTIONS.index(name) for name in ("happy", "sad", "angry"))


def rows(text: str, n: int = 100, first: int = 0, fps: float = FPS, strength: float = 0.7) -> np.ndarray:
    return emotion_rows(MotionControls(emotion=text, emotion_strength=strength), first, n, fps)


def at(seconds: float, fps: float = FPS) -> int:
    """The first frame whose centre is at or after `seconds`."""
    return int(np.ceil(seconds * fps - 0.5))


# -- the text -------------------------------------------------------------------------------------------


def test_the_text_of_a_track():
    assert parse_emotion("happy") == EmotionTrack((EmotionKey(0.0, "happy"),))
    assert parse_emotion("happy:0.8") == EmotionTrack((EmotionKey(0.0, "happy", 0.8),))
    assert parse_emotion(" neutral@0, happy:0.8@2.5 ,sad@6") == EmotionTrack(
        (EmotionKey(0.0, "neutral"), EmotionKey(2.5, "happy", 0.8), EmotionKey(6.0, "sad"))
    )
    for text in ("neutral", "happy:0.8", "neutral@0,happy:0.8@2.5,sad@6", "sad@0.1"):
        assert str(parse_emotion(text)) == text
    # Options take the text and hold the track: frozen, hashable, equal however the track was written.
    options = AnimateOptions(emotion="happy@0")
    assert options.emotion == parse_emotion("happy") and hash(options.controls()) == hash(options.controls())
    assert str(AnimateOptions().emotion) == "neutral"


@pytest.mark.parametrize(
    "text,expect",
    [
        ("joy", "--emotion 'joy' is not one of: neutral, happy, sad"),
        ("neutral@0,joy@2", "--emotion 'joy' is not one of"),
        ("happy@2,sad@1", "times must increase: sad@1 comes after happy@2"),
        ("happy,sad", "times must increase"),
        ("happy@-1", "time -1 s is negative"),
        ("happy@inf", "not a finite number"),
        ("happy:2", "strength 2 is out of range: it must be between 0 and 1.5"),
        ("happy:-0.1@1", "strength -0.1 is out of range"),
        ("neutral:0.5", "neutral takes no strength"),
        ("happy:lots", "'happy:lots' is not NAME[:STRENGTH][@SECONDS]"),
        ("happy@soon", "'happy@soon' is not NAME[:STRENGTH][@SECONDS]"),
    ],
)
def test_bad_tracks_are_one_line_errors(text, expect):
    with pytest.raises(TalkfaceError) as error:
        AnimateOptions(emotion=text)
    assert expect in str(error.value) and "\n" not in str(error.value)


# -- its rows -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["neutral", *EMOTIONS])
def test_a_constant_emotion_is_the_same_row_on_every_frame(name):
    """Exactly the rows a single emotion always gave: its strength, as float32, in its column only."""
    for strength in (0.7, 0.4, 1.3):
        expect = np.zeros((60, len(EMOTIONS)), np.float32)
        if name != "neutral":
            expect[:, EMOTIONS.index(name)] = strength
        for first in (0, 7, 1000):
            got = rows(name, 60, first, strength=strength)
            assert got.dtype == np.float32 and np.array_equal(got, expect)
        assert np.array_equal(rows(f"{name}@0", 60, strength=strength), expect)


def test_a_keyframe_eases_in_from_its_time():
    r = rows("neutral@0,happy@1", 60)[:, HAPPY]
    start, end = at(1.0), at(1.0 + EMOTION_TRANSITION_S)
    assert not r[:start].any()  # frames before the keyframe keep the emotion before it
    assert np.array_equal(r[end:], np.full(60 - end, np.float32(0.7)))  # then it holds
    assert np.all(np.diff(r[start - 1 : end + 1]) > 0)  # in between it rises, smoothly
    half = at(1.0 + EMOTION_TRANSITION_S / 2)  # the cosine ease is half way at half the time
    np.testing.assert_allclose(r[half], 0.35, atol=1e-6)
    assert np.abs(np.diff(r)).max() < 0.7 * np.pi / 2 / (EMOTION_TRANSITION_S * FPS) + 1e-6
    # A first keyframe after 0 s starts from neutral, the same way.
    np.testing.assert_array_equal(rows("happy@1", 60), rows("neutral@0,happy@1", 60))


def test_transitions_cross_fade_at_each_keyframes_strength():
    r = rows("happy:0.8,sad:0.3@2,neutral@4", 125)
    happy, sad = r[: at(2.0)], r[at(2.0 + EMOTION_TRANSITION_S) : at(4.0)]
    assert np.all(happy[:, HAPPY] == np.float32(0.8)) and not np.delete(happy, HAPPY, axis=1).any()
    assert np.all(sad[:, SAD] == np.float32(0.3)) and not np.delete(sad, SAD, axis=1).any()
    done = at(2.0 + EMOTION_TRANSITION_S)
    fade = slice(at(2.0), done)
    np.testing.assert_allclose(r[fade, HAPPY] / 0.8 + r[fade, SAD] / 0.3, 1.0, atol=1e-6)
    assert not r[at(4.0 + EMOTION_TRANSITION_S) :].any()  # back to neutral
    # A keyframe without strength takes emotion_strength.
    np.testing.assert_allclose(rows("sad@0,happy@1", 50, strength=0.5)[-1, HAPPY], 0.5)


def test_a_keyframe_during_a_transition_starts_from_where_it_got():
    fps = 100.0
    r = rows("happy@0,sad@1,angry@1.2", 300, fps=fps)
    assert np.abs(np.diff(r, axis=0)).max() < 0.03  # no jump at 1.2 s, halfway through happy -> sad
    during = r[at(1.2, fps) - 1]
    assert during[HAPPY] > 0 and during[SAD] > 0
    assert np.array_equal(r[-1], np.eye(len(EMOTIONS), dtype=np.float32)[ANGRY] * np.float32(0.7))


def test_rows_in_pieces_equal_the_whole():
    text = "neutral@0,happy@0.5,sad:0.4@0.9,angry@1.1,neutral@3"
    whole = rows(text, 100)
    for size in (1, 7, 33):
        pieces = np.concatenate([rows(text, min(size, 100 - i), i) for i in range(0, 100, size)])
        np.testing.assert_array_equal(pieces, whole)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_generator_sets_the_track_frame_by_frame(name):
    """Pushed in windows of 7 frames at 30 fps, each generator's emotion rows are the track's."""
    features = compute_features(from_samples(synth_speech(3.0), 16000))
    controls = MotionControls(emotion="neutral@0,happy:0.9@0.5,sad@1.6,neutral@2.2", seed=2)
    motion = run_stream(make_stream(name, 30.0, controls), features, 90, window=7)
    np.testing.assert_array_equal(motion.emotion, emotion_rows(controls, 0, 90, 30.0))


# -- a live change --------------------------------------------------------------------------------------


def test_a_live_change_keeps_what_was_made_and_eases_from_what_is_shown():
    start = parse_emotion("happy")
    live = LiveEmotion(start, 0.7)
    controls = MotionControls(emotion=live)
    before = emotion_rows(controls, 0, 50, FPS)
    live.change(50 / FPS, "sad", 1.0)
    after = emotion_rows(controls, 50, 50, FPS)
    assert np.array_equal(emotion_rows(MotionControls(emotion=start), 0, 50, FPS), before)
    assert np.array_equal(after, rows("happy@0,sad:1@2", 100)[50:])
    assert 0 < after[0, SAD] < 0.05 and after[-1, SAD] == 1.0 and not after[-1, HAPPY]
    with pytest.raises(TalkfaceError, match="'joy' is not one of"):
        live.change(3.0, "joy")
    with pytest.raises(TalkfaceError, match="out of range"):
        live.change(3.0, "sad", 1.6)
    assert np.array_equal(emotion_rows(controls, 50, 50, FPS), after)  # unchanged by the errors
    # Before any frame, a change shows at once.
    live = LiveEmotion(start, 0.7)
    live.change(0.0, "angry")
    assert np.array_equal(emotion_rows(MotionControls(emotion=live), 0, 10, FPS), rows("angry", 10))


def test_live_changes_during_transitions_are_those_of_a_track():
    """Changes faster than a transition ease from where the face had got to, as the keyframes of a track
    do; the live emotion holds one segment however many changes."""
    live, keys = LiveEmotion(parse_emotion("neutral"), 0.7), [EmotionKey(0.0, "neutral")]
    controls, names = MotionControls(emotion=live), ["happy", "sad", "angry", "neutral"]
    gaps = [0.12, 0.35, 0.25, 0.8]
    for i, time in enumerate(np.cumsum(gaps * 30)):
        time = at(time) / FPS  # a live change happens at a frame's start
        live.change(time, names[i % 4])
        keys.append(EmotionKey(time, names[i % 4]))
        track = MotionControls(emotion=EmotionTrack(tuple(keys)))
        n = at(time + 0.4) - at(time)
        np.testing.assert_allclose(
            emotion_rows(controls, at(time), n, FPS), emotion_rows(track, at(time), n, FPS), atol=1e-7
        )
        assert len(live.segments[0]) == 1


# -- animate with a track ---------------------------------------------------------------------------------


def test_animate_with_a_track(tmp_path, portrait, monkeypatch):
    """The CLI takes a track; the motion rendered carries it."""
    from talkface.cli import main
    from talkface.engine import Engine

    wav = write_audio(tmp_path / "speech.wav", synth_speech(1.2), 16000)
    frame = Engine.frame
    shown = []

    def recording(self, motion, i):
        shown.append(motion.emotion[i])
        return frame(self, motion, i)

    monkeypatch.setattr(Engine, "frame", recording)
    out = tmp_path / "out.mp4"
    args = ["animate", str(portrait), str(wav), "-o", str(out), "--size", "128", "--generator", "rules", "-q"]
    assert main([*args, "--emotion", "neutral@0,happy:1.2@0.4"]) == 0 and out.stat().st_size > 0
    expect = emotion_rows(MotionControls(emotion="neutral@0,happy:1.2@0.4"), 0, 30, FPS)
    np.testing.assert_array_equal(np.array(shown), expect)
    assert shown[-1][HAPPY] == np.float32(1.2)


def test_a_bad_track_on_the_command_line_is_one_line(tmp_path, portrait, capsys):
    from talkface.cli import main

    assert main(["animate", str(portrait), "a.wav", "-o", str(tmp_path / "x.mp4"), "--emotion", "joy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("talkface: error: --emotion 'joy' is not one of") and err.count("\n") == 1
    assert not (tmp_path / "x.mp4").exists()
