"""Sliding windows: features and motion computed in chunks of any size equal the whole-signal result, so
window borders cannot show, and live and offline output agree."""

import numpy as np
import pytest
from conftest import synth_band, synth_speech

from talkface.audio.features import FeatureStream, FramePooler, compute_features, concat_features
from talkface.audio.load import from_samples
from talkface.config import MotionControls
from talkface.motion.contract import concat_motion
from talkface.motion.generators import generate, make_stream
from talkface.motion.stream import AudioMotion, run_stream

FPS = 25.0
FIELDS = ("expression", "rotation", "translation", "gaze", "emotion")


def _speech_with_pauses(seconds=12.0, seed=0):
    x = synth_speech(seconds, seed=seed)
    x[int(4.0 * 16000) : int(5.5 * 16000)] = 0.0  # a pause
    return x


def _chunks(x, rng, low, high):
    i = 0
    while i < len(x):
        n = int(rng.integers(low, high))
        yield x[i : i + n]
        i += n


def test_features_do_not_depend_on_chunking():
    x = _speech_with_pauses(6.0)
    whole = compute_features(from_samples(x, 16000))
    stream = FeatureStream()
    parts, speech = [], []
    for c in _chunks(x, np.random.default_rng(1), 1, 2500):
        parts.append(stream.push(c))
        speech.append(stream.speech)  # silero-vad's speech probability of the frames just returned
    parts.append(stream.finish())
    speech.append(stream.speech)
    chunked = concat_features(parts)
    assert len(chunked) == len(whole) == -(-len(x) // 160)
    for name in ("energy_db", "voicing", "pitch_hz", "log_mel", "centroid_hz"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))
    speech = np.concatenate(speech)
    assert speech.shape == (len(whole),) and (speech <= whole.voicing + 1e-6).all()  # voicing adds periodic


def test_features_are_out_at_most_32_ms_after_their_time():
    # A frame needs the 20 ms of pitch window after its centre and the 32 ms voice-activity window that
    # holds it, never the window after: pushed 10 ms at a time, each frame is out 20-42 ms after its centre.
    stream, x = FeatureStream(), synth_speech(1.0)
    lags = []
    for end in range(160, len(x) + 1, 160):
        out = stream.push(x[end - 160 : end])
        first = len(lags)
        lags += [(end - (first + i) * 160) / 16 for i in range(len(out))]
    assert len(lags) >= 97
    assert min(lags) >= 20 and max(lags) <= 42


def test_pooling_to_video_frames_does_not_depend_on_chunking():
    x = _speech_with_pauses(5.0)
    f = compute_features(from_samples(x, 16000))
    n = round(len(x) / 16000 * FPS)
    whole = f.at_fps(FPS, n, offset=0.04)
    pooler = FramePooler(FPS, 0.04)
    rng = np.random.default_rng(2)
    parts, i = [], 0
    while i < len(f):
        k = int(rng.integers(1, 40))
        parts.append(pooler.push(f.sliced(i, i + k)))
        i += k
    parts.append(pooler.finish(len(x) / 16000))
    pooled = concat_features(parts)
    assert len(pooled) == n
    np.testing.assert_array_equal(pooled.log_mel, whole.log_mel)
    np.testing.assert_array_equal(pooled.pitch_hz, whole.pitch_hz)


@pytest.mark.parametrize("generator", ["rules", "loudness"])
@pytest.mark.parametrize("window", [1, 7, 50])
def test_motion_windows_equal_the_whole_signal(generator, window):
    x = _speech_with_pauses()
    f = compute_features(from_samples(x, 16000))
    n = round(len(x) / 16000 * FPS)
    settings = MotionControls(seed=4, motion_scale=1.2, gaze=(3.0, -2.0))
    whole = generate(generator, f, n, FPS, settings)
    windowed = run_stream(make_stream(generator, FPS, settings), f, n, window=window)
    assert len(windowed) == n
    for name in FIELDS:
        np.testing.assert_allclose(getattr(windowed, name), getattr(whole, name), atol=1e-5)


def test_offline_motion_hears_a_voice_sung_over_music(portrait):
    """A voice under a loud band: the offline paths (compute_features, Engine.motion_windows on audio in
    memory) take audio.music's voice activity and open the mouth where silero-vad alone, as a stream hears
    it, keeps it shut; both offline paths give the same motion."""
    from talkface.assets import asset_path
    from talkface.audio.load import load_audio
    from talkface.config import AnimateOptions
    from talkface.engine import Engine

    voice = load_audio(asset_path("speech.flac")).samples
    x = voice + 5.0 * synth_band(len(voice) / 16000, seed=1)
    n = round(len(x) / 16000 * FPS)
    options = AnimateOptions(size=128, generator="rules", seed=3)
    offline = generate("rules", compute_features(from_samples(x, 16000)), n, FPS, options.controls())
    windows = Engine(portrait, options).motion_windows(from_samples(x, 16000), options, phonemes=())
    engine = concat_motion(list(windows))
    np.testing.assert_allclose(engine.expression, offline.expression, atol=1e-5)
    streamed = AudioMotion(make_stream("rules", FPS, options.controls()))
    live = concat_motion([streamed.push(x[i : i + 320]) for i in range(0, len(x), 320)] + [streamed.finish()])
    opened = lambda m: np.mean(m.expression[:, 0] > 0.1)  # noqa: E731
    assert opened(offline) > opened(live) + 0.15, (opened(offline), opened(live))


def test_offline_learned_motion_hears_the_whole_recording(portrait):
    """The learned generator offline, with phonemes heard in the audio: Engine.motion_windows (audio in
    memory) gives the stream the whole recording (AudioMotion.hear: the heard jaw, weighed by silero-vad's
    speech probability) as generate() does on the whole signal's features, so the two agree; motion export
    goes through AudioMotion.hear too."""
    from talkface.audio.vad import speech_probability
    from talkface.config import AnimateOptions
    from talkface.engine import Engine
    from talkface.motion.contract import Phoneme

    x = _speech_with_pauses(6.0, seed=2)
    t = np.arange(0.0, 6.0, 0.2)
    ph = tuple(Phoneme(a, a + 0.2, "a" if i % 2 else "p", heard=True) for i, a in enumerate(t))
    options = AnimateOptions(size=128, generator="learned", seed=3)
    n = round(len(x) / 16000 * FPS)
    features = compute_features(from_samples(x, 16000))
    whole = generate("learned", features, n, FPS, options.controls(), ph, speech_probability(x))
    windows = Engine(portrait, options).motion_windows(from_samples(x, 16000), options, phonemes=ph)
    engine = concat_motion(list(windows))
    for name in FIELDS:
        np.testing.assert_allclose(getattr(engine, name), getattr(whole, name), atol=1e-4)


def test_no_jump_at_window_borders():
    x = _speech_with_pauses(20.0)
    f = compute_features(from_samples(x, 16000))
    n = round(len(x) / 16000 * FPS)
    window = 50  # 2 s
    m = run_stream(make_stream("rules", FPS, MotionControls(seed=1)), f, n, window=window)
    latent = np.concatenate([m.expression, m.rotation / 10, m.gaze / 10], axis=1)
    step = np.abs(np.diff(latent, axis=0)).max(1)  # step[i]: frame i -> i + 1
    borders = np.arange(window - 1, n - 1, window)
    inside = np.setdiff1d(np.arange(n - 1), borders)
    assert step[borders].max() <= np.percentile(step[inside], 99)


def test_audio_to_motion_in_live_chunks_equals_offline():
    x = _speech_with_pauses(8.0, seed=3)
    settings = MotionControls(seed=2)
    offline = generate(
        "rules", compute_features(from_samples(x, 16000)), round(len(x) / 16000 * FPS), FPS, settings
    )
    live = AudioMotion(make_stream("rules", FPS, settings))
    parts = [live.push(c) for c in _chunks(x, np.random.default_rng(5), 100, 1200)]
    # Live frames come out with a bounded delay: about 100-160 ms behind the audio pushed.
    emitted = sum(len(p) for p in parts)
    assert len(x) / 16000 - emitted / FPS < 0.2
    parts.append(live.finish())
    m = concat_motion(parts)
    assert len(m) == len(offline)
    for name in FIELDS:
        np.testing.assert_allclose(getattr(m, name), getattr(offline, name), atol=1e-5)


def test_levels_follow_the_speaker_whatever_the_recording_gain():
    x = _speech_with_pauses(10.0)
    loud = generate("rules", compute_features(from_samples(x * 3.0, 16000)), 250, FPS, MotionControls())
    quiet = generate("rules", compute_features(from_samples(x * 0.3, 16000)), 250, FPS, MotionControls())
    jaw_loud, jaw_quiet = loud.coefficient("jaw_open"), quiet.coefficient("jaw_open")
    # After the first second (the running reference has heard the voice), the same speech 20 dB apart moves
    # the mouth alike.
    assert jaw_quiet[25:].max() > 0.2
    assert np.abs(jaw_loud[50:] - jaw_quiet[50:]).mean() < 0.04  # silero itself differs a little
