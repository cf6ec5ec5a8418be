import numpy as np
from conftest import synth_speech

from talkface.audio.features import compute_features
from talkface.audio.load import from_samples
from talkface.motion.rules import RuleSettings, generate_rules

FPS = 25.0


def _motion(x, seed=0, **kw):
    f = compute_features(from_samples(x, 16000))
    n = round(len(x) / 16000 * FPS)
    return generate_rules(f, n, FPS, RuleSettings(seed=seed, **kw))


def test_mouth_follows_voice_and_closes_in_silence():
    x = np.concatenate([synth_speech(3.0), np.zeros(32000, np.float32)])
    m = _motion(x)
    jaw = m.coefficient("jaw_open")
    assert jaw[:75].max() > 0.2
    # Silence starts at 3.0 s (frame 75): closed within ~100 ms, and stays closed.
    assert jaw[75 + 3 :].max() < 0.03
    # The mouth moves with the 4 Hz syllables, not a constant opening.
    assert jaw[10:70].std() > 0.05


def test_silence_is_an_idle_face_that_still_blinks():
    m = _motion(np.zeros(16000 * 20, np.float32))
    assert np.abs(m.coefficient("jaw_open")).max() < 1e-3
    blinks = np.sum(np.diff((m.coefficient("blink_left") > 0.5).astype(int)) == 1)
    assert 3 <= blinks <= 12  # 9-36 per minute
    assert np.ptp(m.rotation[:, 0]) > 0.5  # idle sway


def test_blink_rate_and_duration_while_talking():
    m = _motion(synth_speech(60.0))
    closed = m.coefficient("blink_left") > 0.5
    starts = np.flatnonzero(np.diff(closed.astype(int)) == 1)
    assert 12 <= len(starts) <= 34
    # No blink lasts more than about 300 ms (8 frames at 25 fps with the >0.5 threshold).
    ends = np.flatnonzero(np.diff(closed.astype(int)) == -1)
    lengths = ends[: len(starts)] - starts[: len(ends)]
    assert lengths.max() <= 8
    # Never in lockstep: intervals vary.
    assert np.std(np.diff(starts)) > 5


def test_seed_determinism_and_motion_scale():
    x = synth_speech(5.0)
    a, b, c = _motion(x, seed=1), _motion(x, seed=1), _motion(x, seed=2)
    assert np.array_equal(a.rotation, b.rotation) and np.array_equal(a.expression, b.expression)
    assert not np.allclose(a.rotation, c.rotation)
    still = _motion(x, motion_scale=0.0)
    assert np.abs(still.rotation).max() == 0
    assert np.abs(a.rotation).max() < 12


def test_generator_choices_match_the_registry():
    import dataclasses

    from talkface.config import AnimateOptions
    from talkface.motion.generators import GENERATORS

    field = {f.name: f for f in dataclasses.fields(AnimateOptions)}["generator"]
    assert set(field.metadata["choices"]) == set(GENERATORS)


def test_loudness_baseline_opens_the_jaw_with_loudness_only():
    from talkface.audio.features import compute_features
    from talkface.audio.load import from_samples
    from talkface.motion.generators import generate

    x = synth_speech(3.0)
    m = generate("loudness", compute_features(from_samples(x, 16000)), 75, FPS, RuleSettings())
    assert m.coefficient("jaw_open").max() > 0.2
    assert np.abs(m.rotation).max() == 0 and m.coefficient("blink_left").max() == 0


def test_visemes_close_lips_on_bilabials_and_round_on_u():
    from talkface.audio.tts import Phoneme
    from talkface.motion.visemes import viseme_of, viseme_targets

    seq = [
        ("_", 0.0, 0.2),
        ("m", 0.2, 0.3),
        ("'A:", 0.3, 0.5),
        ("p", 0.5, 0.58),
        ("'u:", 0.58, 0.8),
        ("_:", 0.8, 1.2),
    ]
    phonemes = tuple(Phoneme(s, e, sym) for sym, s, e in seq)
    t = np.array([0.25, 0.4, 0.54, 0.69, 1.1])
    v = viseme_targets(phonemes, t)
    jaw, rnd = v[:, 0], v[:, 1]
    assert jaw[1] > 0.3  # open vowel
    assert jaw[0] < 0.1 and jaw[2] < 0.12  # m and p close the mouth between vowels
    assert rnd[3] > 0.6 and rnd[1] < 0.1  # u rounds, a does not
    assert jaw[4] < 0.05  # pause rests
    # Stress and length marks do not change a phoneme's viseme; unknown symbols fall back quietly.
    assert viseme_of("'a:") == viseme_of("a") and len(viseme_of("§")) == 5


def test_text_to_speech_motion_follows_the_phonemes():
    from talkface.audio.features import compute_features
    from talkface.audio.load import from_samples
    from talkface.audio.tts import synthesize

    speech = synthesize("Mama, papa, baby.", "en-us")
    f = compute_features(from_samples(speech.samples, speech.sample_rate), speech.phonemes)
    n = round(speech.duration * FPS)
    jaw = generate_rules(f, n, FPS, RuleSettings()).coefficient("jaw_open")
    t = (np.arange(n) + 0.5) / FPS
    for p in speech.phonemes:
        mid = (p.start + p.end) / 2
        k = int(np.argmin(np.abs(t - mid)))
        if p.symbol.lstrip("'") in ("m", "p", "b") and p.end - p.start > 0.05:
            assert jaw[k] < 0.15, (p, jaw[k])
        if p.symbol.lstrip("'").startswith("A") and p.end - p.start > 0.08:
            assert jaw[k] > 0.25, (p, jaw[k])
