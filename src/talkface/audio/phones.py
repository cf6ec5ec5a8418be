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

from talkface import stages
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


def _read_decoder(model: Path, lw: float = LANGUAGE_WEIGHT, pip: float = PHONE_PENALTY):
    """A phone decoder on the model folder; lw, pip: other search settings (training/experiments)."""
    import pocketsphinx

    return pocketsphinx.Decoder(
        loglevel="FATAL",
        lm=None,
        allphone=str(model / "en-us-phone.lm.bin"),
        beam=BEAM,
        pbeam=BEAM,
        lw=lw,
        pip=pip,
    )


PHONES_STAGE = "recognising phones"  # the stage recognize_phones reports (talkface.stages)


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
        # The features' running state (cepstral mean, noise estimate) carries from one utterance into the
        # next: start each call afresh, so that the same audio gives the same phones whatever was decoded
        # before it in this process (a batch, the eval).
        d.reinit_feat()
        for piece in pieces:
            stages.report(PHONES_STAGE, piece.start / len(pcm))
            offset = piece.start / SAMPLE_RATE
            d.start_utt()
            d.process_raw(np.concatenate([pcm[piece.start : piece.end], _padding()]).tobytes(), full_utt=True)
            d.end_utt()
            for s in d.seg():
                symbol = ARPABET_TO_ESPEAK.get(s.word, PAUSE_SYMBOL)
                start, end = s.start_frame / FRAME_RATE, (s.end_frame + 1) / FRAME_RATE
                spans.append((symbol, offset + start, offset + end))
    stages.report(PHONES_STAGE, 1.0)
    return _to_phonemes(spans, audio.duration, heard=True)


# Live recognition (LivePhones): an utterance is restarted once it is longer than UTTERANCE_S, from the audio
# after the last phone older than SETTLE_S (re-decoded in the new utterance), so the decoder's memory and the
# cost of reading its best path stay bounded in a stream of any length. Phones end SETTLE_S before the audio's
# edge are final: pocketsphinx's partial best path moves the boundaries of the last 50-100 ms as audio comes.
UTTERANCE_S = 6.0
SETTLE_S = 0.3


class LivePhones:
    """Phone recognition as 16 kHz audio streams in (incremental decoding): push() samples, read phonemes()
    (espeak-ng mnemonics, "_" for pauses) tiling [0, known_until]. The phones near the edge are the decoder's
    current best guess and may still change on the next push; those more than SETTLE_S behind it are final.
    One pocketsphinx decoder (~28 MB) per stream, so sessions do not wait for each other; about 0.05x real
    time on one core."""

    def __init__(self):
        import pocketsphinx

        model = Path(pocketsphinx.__file__).parent / "model" / "en-us"
        self._decoder = _read_decoder(model)  # its own, fresh: a stream's phones depend on it alone
        self._final: list[Phoneme] = []  # settled phones, tiling [0, self._final_end]
        self._final_end = 0.0
        self._guess: tuple[Phoneme, ...] = ()  # the current best path after _final_end
        self._utt_start = 0.0  # time (s) of the open utterance's first sample
        self._tail = np.zeros(0, np.int16)  # samples since _utt_start (re-decoded when restarting)
        self._samples = 0
        self._unread = False  # audio decoded since the best path was last read
        self._decoder.start_utt()

    @property
    def known_until(self) -> float:
        """Seconds of audio decoded so far."""
        return self._samples / SAMPLE_RATE

    def phonemes(self, since: float = 0.0) -> tuple[Phoneme, ...]:
        """The phonemes known now, from the one that covers `since` (seconds) to known_until. Reading the
        decoder's best path costs more than decoding 20 ms of audio, so it is read here, when asked (a motion
        window at a time), not on every push."""
        if self._unread:
            self._read(final=False)
            if self.known_until - self._utt_start > UTTERANCE_S:
                self._restart()
        kept = [p for p in self._final if p.end > since]
        return (*kept, *self._guess)

    def push(self, samples: np.ndarray) -> None:
        """Decode 16 kHz mono float samples (any number)."""
        if len(samples) == 0:
            return
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)
        self._samples += len(pcm)
        self._tail = np.concatenate([self._tail, pcm])
        self._decoder.process_raw(pcm.tobytes(), full_utt=False)
        self._unread = True

    def finish(self) -> None:
        """End of the audio: every phone becomes final."""
        self._decoder.end_utt()
        self._read(final=True)
        self._decoder.start_utt()
        self._utt_start, self._tail = self.known_until, np.zeros(0, np.int16)

    def _read(self, final: bool) -> None:
        """Split the utterance's best path into settled phones (appended to _final) and the guess."""
        edge = self.known_until
        settle = edge if final else edge - SETTLE_S
        self._unread = False
        spans = [
            (ARPABET_TO_ESPEAK.get(s.word, PAUSE_SYMBOL), *self._times(s))
            for s in (self._decoder.seg() or ())
        ]
        spans = [(sym, max(a, self._final_end), b) for sym, a, b in spans if b > self._final_end + 1e-6]
        done = [s for s in spans if s[2] <= settle]
        if done:
            self._final.extend(_to_phonemes(done, done[-1][2], start=self._final_end, heard=True))
            self._final_end = done[-1][2]
            del self._final[:-256]
        guess = [s for s in spans if s[2] > settle]
        self._guess = _to_phonemes(guess, edge, start=self._final_end, heard=True)

    def _times(self, seg) -> tuple[float, float]:
        return (
            self._utt_start + seg.start_frame / FRAME_RATE,
            min(self._utt_start + (seg.end_frame + 1) / FRAME_RATE, self.known_until),
        )

    def _restart(self) -> None:
        """A new utterance from the end of the settled phones (the audio after it is decoded again)."""
        self._decoder.end_utt()
        keep = int(round((self.known_until - self._final_end) * SAMPLE_RATE))
        tail = self._tail[len(self._tail) - keep :] if keep > 0 else np.zeros(0, np.int16)
        self._utt_start, self._tail = self._final_end, tail
        self._guess = ()
        self._decoder.start_utt()
        if len(tail):
            self._decoder.process_raw(tail.tobytes(), full_utt=False)
            self._read(final=False)
