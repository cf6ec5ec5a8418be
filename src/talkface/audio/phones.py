"""Phoneme timings of recorded speech without a transcript: phone recognition with pocketsphinx.

pocketsphinx 5.1.1 (BSD-2-Clause, already used for --transcript) ships a US-English acoustic model and a
phone bigram model (en-us-phone.lm.bin). Its `allphone` search decodes speech straight into a sequence of
ARPAbet phones with times, no words, no transcript: a phoneme recogniser trained on far more speech than
our talking-face clips. The learned motion generator reads the recognised phones as visemes (one of its
inputs, beside the acoustic features), because the shape of the lips is a matter of which phoneme is
spoken, and 5 minutes of talking video cannot teach a network to hear phonemes.

Recognition is far from exact (phone error rates of such recognisers are 30-50 %), but mistakes mostly stay
within a viseme class (p/b/m, f/v, open vowels), which is what the mouth needs; non-English speech is
heard as the nearest English phones. Long audio is decoded in pieces cut in pauses (audio.align's cutter),
so memory stays bounded. About 0.04x real time on one core.

Measured on the train split's 28 talking clips (mean per-clip Pearson r of the jaw with the real tracked
jaw, motion at 25 fps, speaker-disjoint folds): the rule generator's acoustic mouth 0.254, its viseme mouth
driven by the recognised phones 0.318, the learned mouth filter on them 0.39
(`python -m training.learned_motion.mouth DATA --cv-only`).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from talkface.assets import load_model
from talkface.audio.align import ARPABET_TO_ESPEAK, FRAME_RATE, PAUSE_SYMBOL, _padding, _pieces, _to_phonemes
from talkface.audio.load import SAMPLE_RATE, Audio
from talkface.audio.vad import speech_probability
from talkface.errors import TalkfaceError
from talkface.motion.contract import Phoneme

# Search settings: beam and phone beam (log-probability ratios to the best path), language weight of the
# phone bigram and phone insertion penalty. Chosen by the learned mouth's speaker-disjoint cross-validation
# on the train split (jaw r, see training/learned_motion/mouth.py): language weight 0.5 / 1 / 2 / 4 / 8 gave
# r 0.392 / 0.386 / 0.370 / 0.305 / 0.210 (the phone bigram is English's; a weak one lets the acoustics
# speak); beams 1e-20 and 1e-30 gave the same, 1e-10 less (0.344); the penalty (0.01-10) changed nothing.
BEAM = 1e-20
LANGUAGE_WEIGHT = 0.5
PHONE_PENALTY = 1.0

_lock = threading.Lock()


def _get_decoder():
    """The phone decoder on pocketsphinx's US-English model, made once per process; use it under _lock."""
    try:
        import pocketsphinx
    except ImportError:
        raise TalkfaceError("pocketsphinx is not installed; the learned generator needs it") from None
    return load_model(_read_decoder, Path(pocketsphinx.__file__).parent / "model" / "en-us")


def _read_decoder(model: Path):
    import pocketsphinx

    return pocketsphinx.Decoder(
        loglevel="FATAL",
        lm=None,
        allphone=str(model / "en-us-phone.lm.bin"),
        beam=BEAM,
        pbeam=BEAM,
        lw=LANGUAGE_WEIGHT,
        pip=PHONE_PENALTY,
    )


def recognize_phones(audio: Audio) -> tuple[Phoneme, ...]:
    """Phonemes (espeak-ng mnemonics, "_" for pauses and noise) tiling [0, audio.duration] of 16 kHz
    `audio`, recognised without a transcript."""
    if audio.duration <= 0:
        return ()
    pcm = (np.clip(audio.samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)
    pieces = _pieces(audio.samples, speech_probability(audio.samples))
    spans: list[tuple[str, float, float]] = []
    with _lock:
        d = _get_decoder()
        for piece in pieces:
            offset = piece.start / SAMPLE_RATE
            d.start_utt()
            d.process_raw(np.concatenate([pcm[piece.start : piece.end], _padding()]).tobytes(), full_utt=True)
            d.end_utt()
            for s in d.seg():
                symbol = ARPABET_TO_ESPEAK.get(s.word, PAUSE_SYMBOL)
                start, end = s.start_frame / FRAME_RATE, (s.end_frame + 1) / FRAME_RATE
                spans.append((symbol, offset + start, offset + end))
    return _to_phonemes(spans, audio.duration)
