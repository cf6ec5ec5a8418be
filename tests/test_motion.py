import numpy as np
import pytest
from conftest import synth_speech

from talkface.audio.features import compute_features
from talkface.audio.load import from_samples
from talkface.config import MotionControls
from talkface.motion.generators import generate

FPS = 25.0


def _motion(x, seed=0, **kw):
    f = compute_features(from_samples(x, 16000))
    n = round(len(x) / 16000 * FPS)
    return generate("rules", f, n, FPS, MotionControls(seed=seed, **kw))


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
    m = generate("loudness", compute_features(from_samples(x, 16000)), 75, FPS, MotionControls())
    assert m.coefficient("jaw_open").max() > 0.2
    assert np.abs(m.rotation).max() == 0 and m.coefficient("blink_left").max() == 0


def test_visemes_close_lips_on_bilabials_and_round_on_u():
    from talkface.motion.contract import Phoneme
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
    f = compute_features(from_samples(speech.samples, speech.sample_rate))
    n = round(speech.duration * FPS)
    jaw = generate("rules", f, n, FPS, MotionControls(), speech.phonemes).coefficient("jaw_open")
    t = (np.arange(n) + 0.5) / FPS
    for p in speech.phonemes:
        mid = (p.start + p.end) / 2
        k = int(np.argmin(np.abs(t - mid)))
        if p.symbol.lstrip("'") in ("m", "p", "b") and p.end - p.start > 0.05:
            assert jaw[k] < 0.1, (p, jaw[k])
        if p.symbol.lstrip("'").startswith("A") and p.end - p.start > 0.08:
            assert jaw[k] > 0.12, (p, jaw[k])


def _vowel(seconds: float, f0: float = 150.0, vibrato: float = 0.0, rate: int = 16000) -> np.ndarray:
    """A steady vowel: harmonics of f0 (optionally with 5 Hz vibrato of +-vibrato Hz) shaped by formants
    at 700 and 1200 Hz over a -6 dB/octave source, shape (N,) float32 peaking at 0.3."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(f0 + vibrato * np.sin(2 * np.pi * 5 * t)) / rate
    y = sum(
        np.sin(k * phase)
        / k
        * (1 + 4 * np.exp(-(((k * f0 - 700) / 200) ** 2)) + 3 * np.exp(-(((k * f0 - 1200) / 250) ** 2)))
        for k in range(1, int(5000 / f0))
    )
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def test_lips_close_on_a_stop_inside_speech():
    # "a-pa": a vowel, a 120 ms stop closure (near silence), the vowel again, all inside one utterance.
    rate = 16000
    a = _vowel(0.6)
    x = np.concatenate([a, 0.002 * np.random.default_rng(0).standard_normal(int(0.12 * rate)), a])
    jaw = _motion(x.astype(np.float32)).coefficient("jaw_open")
    gap = slice(int(0.6 * FPS), int(0.72 * FPS) + 1)
    assert jaw[5:12].mean() > 0.2 and jaw[20:27].mean() > 0.2
    # A closed rendered mouth is a gap under 0.03 eye distances: jaw under ~0.05.
    assert jaw[gap].min() < 0.05


def test_lips_close_on_a_nasal_murmur():
    # "a-ma": during the m the voice goes on, but only its low harmonics (< 500 Hz) leave through the nose.
    from scipy.signal import butter, sosfiltfilt

    a = _vowel(0.6)
    m = sosfiltfilt(butter(6, 400, fs=16000, output="sos"), _vowel(0.16)).astype(np.float32)
    m *= 0.5 * np.abs(a).max() / np.abs(m).max()
    jaw = _motion(np.concatenate([a, m, a])).coefficient("jaw_open")
    nasal = slice(int(0.62 * FPS), int(0.74 * FPS) + 1)
    assert jaw[5:12].mean() > 0.2 and jaw[nasal].min() < 0.5 * jaw[5:12].mean()


@pytest.mark.parametrize("name", ["rules", "learned"])
def test_a_held_sung_vowel_holds_the_mouth_open(name):
    x = _vowel(4.0, f0=220.0, vibrato=4.0)
    jaw = generate(name, compute_features(from_samples(x, 16000)), 100, FPS, MotionControls()).coefficient(
        "jaw_open"
    )
    assert jaw[5:-5].min() > 0.2  # open from start to end, not pulsing shut
    assert jaw[10:-5].std() < 0.05


def _music(seconds: float, rate: int = 16000) -> np.ndarray:
    """Instrumental music, no voice: a chord (three notes, four harmonics each) every half second, struck
    (decaying) with a drum hit, peaking at 0.3."""
    rng = np.random.default_rng(0)
    notes = [220, 262, 330, 392, 440, 349, 294, 247]
    t = np.arange(rate // 2) / rate
    bars = []
    for i in range(int(seconds * 2)):
        chord = [notes[(i + 2 * k) % len(notes)] for k in range(3)]
        y = sum(np.sin(2 * np.pi * f * h * t) / h for f in chord for h in (1, 2, 3, 4)) * np.exp(-3 * t)
        y[:800] += 2 * rng.standard_normal(800) * np.exp(-np.arange(800) / 100)
        bars.append(y)
    x = np.concatenate(bars)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize("name", ["rules", "learned"])
def test_music_without_a_voice_does_not_move_the_jaw(name):
    from talkface.audio.phones import recognize_phones

    audio = from_samples(_music(6.0), 16000)
    phones = tuple(recognize_phones(audio)) if name == "learned" else ()  # it hears phones in music too
    jaw = generate(name, compute_features(audio), 150, FPS, MotionControls(), phones).coefficient("jaw_open")
    assert np.mean(jaw > 0.05) < 0.1 and jaw.mean() < 0.02


def test_held_notes_are_sung_not_spoken():
    from talkface.motion.cues import HOLD_S, HeldNotes

    sung = compute_features(from_samples(_vowel(3.0, f0=220.0, vibrato=4.0), 16000)).at_fps(FPS, 75)
    held = HeldNotes(FPS)(sung)
    settled = int(np.ceil(HOLD_S * FPS)) + 2
    assert held[settled:].min() > 0.9 and held[:3].max() == 0.0  # causal: a note is held once it has lasted
    # The same in pieces (it streams).
    pieces = HeldNotes(FPS)
    np.testing.assert_array_equal(
        np.concatenate([pieces(sung.sliced(i, i + 7)) for i in range(0, 75, 7)]), held
    )
    spoken = compute_features(from_samples(synth_speech(6.0), 16000)).at_fps(FPS, 150)
    assert HeldNotes(FPS)(spoken).mean() < 0.05  # speech glides from syllable to syllable


def test_background_hum_is_not_voice():
    # A steady electrical whine (200 Hz and harmonics: strongly periodic) at -35 dBFS, under speech whose
    # loud frames reach about -7 dBFS (as on GRID), alone before and after the speech: the periodic-voice
    # override must not take it for a held vowel, and the mouth stays shut there.
    rate = 16000
    t = np.arange(4 * rate) / rate
    hum = sum(np.sin(2 * np.pi * 200 * k * t) / k for k in (1, 2, 3))
    hum *= 10 ** (-35 / 20) / np.sqrt(np.mean(hum**2))
    x = (np.concatenate([np.zeros(rate), 3.0 * synth_speech(2.0), np.zeros(rate)]) + hum).astype(np.float32)
    f = compute_features(from_samples(x, rate))
    assert np.median(f.periodicity[:90]) > 0.8 and f.energy_db[:90].mean() > -40  # periodic, not faint
    assert f.voicing[:90].max() < 0.5 and f.voicing[-90:].max() < 0.5
    assert np.mean(f.voicing[110:290] > 0.5) > 0.4  # the speech is still voice
    jaw = _motion(x).coefficient("jaw_open")
    assert jaw[:22].max() < 0.03 and jaw[-22:].max() < 0.03


def test_lips_lead_the_voice_by_at_most_40_ms():
    from talkface.motion.cues import open_cue
    from talkface.motion.rules import LIP_LEAD

    fps = 100.0
    x = synth_speech(4.0)
    f = compute_features(from_samples(x, 16000))
    n = round(len(x) / 16000 * fps)
    jaw = generate("rules", f, n, fps, MotionControls()).coefficient("jaw_open").astype(np.float64)
    cue = open_cue(f.at_fps(fps, n)).astype(np.float64)
    # r of jaw[t] with cue[t + k]: k > 0 frames means the jaw shows the sound k frames early (the lips lead).
    lags = np.arange(-10, 11)
    r = [np.corrcoef(jaw[max(0, -k) : n - max(0, k)], cue[max(0, k) : n - max(0, -k)])[0, 1] for k in lags]
    best = lags[int(np.argmax(r))]
    assert 0 <= best <= round(LIP_LEAD * fps) + 1 and 0 <= LIP_LEAD <= 0.04


def test_every_blink_shows_a_closed_frame():
    from talkface.motion.rules import blink_track

    for fps in (25.0, 30.0, 60.0):
        lids = blink_track(int(120 * fps), fps, np.ones(int(120 * fps), bool), np.random.default_rng(3))
        shut = lids > 0.01
        starts = np.flatnonzero(np.diff(shut.astype(int)) == 1) + 1
        ends = np.flatnonzero(np.diff(shut.astype(int)) == -1) + 1
        for a, b in zip(starts, ends, strict=False):
            assert lids[a:b].max() == 1.0  # held shut for at least one frame
            assert 0.15 <= (b - a) / fps <= 0.36  # 200-300 ms (+- a frame of sampling)
        assert 15 <= len(starts) / 2 <= 35  # per minute


def test_mel_band_centres_match_the_features():
    from talkface.audio.features import N_FFT, SAMPLE_RATE, _mel_filters, mel_centres_hz

    peak = np.fft.rfftfreq(N_FFT, 1 / SAMPLE_RATE)[_mel_filters().argmax(1)]
    assert np.all(np.abs(mel_centres_hz() - peak) <= SAMPLE_RATE / N_FFT)


def test_the_brow_filter_is_fitted_streams_and_keeps_its_response_at_any_frame_rate():
    import json

    from talkface.assets import asset_path
    from talkface.motion.cues import BrowStream, load_brows

    meta = json.loads(asset_path("brows.json").read_text())
    cv = meta["cross_validation"]
    assert cv["r_filter"] > cv["r_old_rules"] + 0.05  # held-out speakers: it follows real brows better
    brows = load_brows()
    rng = np.random.default_rng(0)
    t = np.arange(0, 8, 1 / 25)
    cues = np.column_stack([np.clip(np.sin(2 * np.pi * 0.7 * t), 0, 1), *rng.uniform(0, 1, (4, len(t)))])
    whole = BrowStream(brows, 25.0, max_ahead=1)
    a = np.concatenate([whole.push(cues), whole.finish()])
    chunked = BrowStream(brows, 25.0, max_ahead=1)
    b = np.concatenate([*(chunked.push(cues[i : i + 7]) for i in range(0, len(cues), 7)), chunked.finish()])
    assert len(a) == len(cues) and np.allclose(a, b)
    # The same cues at 50 fps (each row twice) give the same brows, twice as many.
    fast = BrowStream(brows, 50.0, max_ahead=2)
    c = np.concatenate([fast.push(np.repeat(cues, 2, 0)), fast.finish()])
    assert len(c) == 2 * len(cues) and np.corrcoef(c[::2], a)[0, 1] > 0.98
    # A stream allowed no look-ahead reads the same filter one frame late, not a cut-down one.
    late = BrowStream(brows, 25.0, max_ahead=0)
    d = np.concatenate([late.push(cues), late.finish()])
    np.testing.assert_allclose(d[1:], a[:-1])


def test_the_rules_acoustic_mouth_filter_streams_and_reads_nothing_ahead():
    from talkface.motion.cues import load_rules_mouth, mouth_filter_stream

    fitted_fps, f = load_rules_mouth()
    assert f.ahead == 0 and f.at_rate(fitted_fps, 60.0).ahead == 0
    rows = np.random.default_rng(0).uniform(0, 1, (50, f.in_mean.size // f.span))
    stream = mouth_filter_stream(f)
    parts = [stream.push(rows[i : i + 3]) for i in range(0, 50, 3)]
    assert sum(len(p) for p in parts) == 50  # each frame out as soon as it is pushed
    np.testing.assert_allclose(np.concatenate([*parts, stream.finish()]), f(rows))
    # At another frame rate the taps span the same time: 60 fps reads 12-13 frames back for 25 fps' 5.
    assert f.at_rate(fitted_fps, 60.0).past == int(np.ceil(f.past * 60 / fitted_fps))
