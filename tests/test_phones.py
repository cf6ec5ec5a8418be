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
    s, audio = speech
    heard = P.recognize_phones(audio)
    assert heard[0].start == 0 and abs(heard[-1].end - audio.duration) < 1e-6
    assert all(abs(a.end - b.start) < 1e-6 for a, b in zip(heard, heard[1:], strict=False))
    spoken = [p for p in heard if p.symbol != P.PAUSE_SYMBOL]
    assert len(spoken) > 0.6 * sum(1 for p in s.phonemes if not p.symbol.startswith("_"))
    # The mouth the recognised phones give follows the one the exact phonemes give (measured r 0.55; 0.61
    # for the en-gb voice, 0.49 fr, 0.29 de).
    t = np.arange(0, audio.duration, 0.04)
    exact, rec = viseme_targets(s.phonemes, t)[:, 0], viseme_targets(heard, t)[:, 0]
    assert np.corrcoef(exact, rec)[0, 1] > 0.4


def test_silence_is_pause():
    quiet = np.random.default_rng(0).normal(0, 1e-4, 16000 * 2).astype(np.float32)
    heard = P.recognize_phones(from_samples(quiet, 16000))
    spoken = sum(p.end - p.start for p in heard if p.symbol != P.PAUSE_SYMBOL)
    assert spoken < 0.3
