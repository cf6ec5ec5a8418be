"""Phone recognition without a transcript (audio.phones): espeak-ng speech is heard as phones whose visemes
follow the exact ones, output tiles the audio, silence is pause."""

from __future__ import annotations

import numpy as np
import pytest

from talkface.audio import phones as P
from talkface.audio.load import from_samples
from talkface.audio.tts import synthesize
from talkface.motion.visemes import viseme_targets

TEXT = "The quick brown fox jumps over the lazy dog. My grandmother bought seventeen oranges on Thursday."


@pytest.fixture(scope="module")
def speech():
    s = synthesize(TEXT, "en-us")
    return s, from_samples(s.samples, s.sample_rate)


def test_recognised_phones_tile_the_audio_and_follow_the_speech(speech):
    from talkface import stages

    s, audio = speech
    reports = []
    with stages.listening(lambda stage, fraction: reports.append((stage, fraction))):
        heard = P.recognize_phones(audio)
    # It says how far it is, a piece of speech at a time (talkface.stages: the command's progress line).
    fractions = [f for stage, f in reports if stage == P.PHONES_STAGE]
    assert len(fractions) == len(reports) >= 2 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert heard[0].start == 0 and abs(heard[-1].end - audio.duration) < 1e-6
    assert all(abs(a.end - b.start) < 1e-6 for a, b in zip(heard, heard[1:], strict=False))
    spoken = [p for p in heard if p.symbol != P.PAUSE_SYMBOL]
    assert len(spoken) > 0.6 * sum(1 for p in s.phonemes if not p.symbol.startswith("_"))
    # The mouth the recognised phones give follows the one the exact phonemes give (measured r 0.55; 0.61
    # for the en-gb voice, 0.49 fr, 0.29 de).
    t = np.arange(0, audio.duration, 0.04)
    exact, rec = viseme_targets(s.phonemes, t)[:, 0], viseme_targets(heard, t)[:, 0]
    assert np.corrcoef(exact, rec)[0, 1] > 0.4


def test_the_same_audio_gives_the_same_phones_whatever_came_before(speech):
    """The decoder is shared in a process (a batch, the eval); its features' running state must not carry
    from one recording into the next. Heard phonemes say so (Phoneme.heard)."""
    _, audio = speech
    first = P.recognize_phones(audio)
    rng = np.random.default_rng(0)
    loud = np.clip(audio.samples * 4.0 + 0.05 * rng.standard_normal(len(audio.samples)), -1, 1)
    P.recognize_phones(from_samples(loud.astype(np.float32), 16000))
    assert P.recognize_phones(audio) == first
    assert all(p.heard for p in first)


def test_silence_is_pause():
    quiet = np.random.default_rng(0).normal(0, 1e-4, 16000 * 2).astype(np.float32)
    heard = P.recognize_phones(from_samples(quiet, 16000))
    spoken = sum(p.end - p.start for p in heard if p.symbol != P.PAUSE_SYMBOL)
    assert spoken < 0.3


def _live(samples: np.ndarray, chunk: int = 320, read_every: int = 8) -> P.LivePhones:
    live = P.LivePhones()
    for i, k in enumerate(range(0, len(samples), chunk)):
        live.push(samples[k : k + chunk])
        if i % read_every == 0:  # as a live stream reads them: once per motion window
            known = live.phonemes(max(0.0, live.known_until - 1.0))
            assert abs(known[-1].end - live.known_until) < 1e-6  # the guess reaches the audio's edge
            assert all(abs(a.end - b.start) < 1e-6 for a, b in zip(known, known[1:], strict=False))
    live.finish()
    return live


def test_live_phones_follow_the_speech_as_it_streams_in(speech):
    s, audio = speech
    live = _live(audio.samples)
    heard = live.phonemes()
    assert heard[0].start == 0 and abs(heard[-1].end - audio.duration) < 1e-3
    assert all(abs(a.end - b.start) < 1e-6 for a, b in zip(heard, heard[1:], strict=False))
    t = np.arange(0, audio.duration, 0.04)
    exact, rec = viseme_targets(s.phonemes, t)[:, 0], viseme_targets(heard, t)[:, 0]
    assert np.corrcoef(exact, rec)[0, 1] > 0.4


def test_live_phones_keep_bounded_state_over_a_long_stream(speech):
    """Utterances restart every UTTERANCE_S: the audio kept for re-decoding stays bounded, and the phones
    still tile the whole stream."""
    _, audio = speech
    samples = np.tile(audio.samples, int(np.ceil(3 * P.UTTERANCE_S / audio.duration)))
    live = P.LivePhones()
    longest = 0
    for i, k in enumerate(range(0, len(samples), 320)):
        live.push(samples[k : k + 320])
        if i % 8 == 0:
            live.phonemes(live.known_until - 1.0)
            longest = max(longest, len(live._tail))
    live.finish()
    assert longest <= (P.UTTERANCE_S + 0.5) * 16000
    heard = live.phonemes()
    assert abs(heard[-1].end - len(samples) / 16000) < 1e-3
    assert all(abs(a.end - b.start) < 1e-6 for a, b in zip(heard, heard[1:], strict=False))
    spoken = sum(p.end - p.start for p in heard if p.symbol != P.PAUSE_SYMBOL)
    assert spoken > 0.4 * len(samples) / 16000
