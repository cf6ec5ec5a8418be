"""Phoneme timings of recorded English speech from its transcript: forced alignment with pocketsphinx.

pocketsphinx 5.1.1 (BSD-2-Clause) ships a US-English acoustic model (16 kHz, 100 frames/s) and the CMU
pronouncing dictionary (134k words, ARPAbet without stress marks). Alignment is two passes over each piece
of audio: a Viterbi word search through a finite-state grammar made of the transcript's words (optional
silence between them), then a phone/state alignment of that word sequence (`set_alignment`). The phones,
ARPAbet, are returned as espeak-ng mnemonics (the symbols `tts.synthesize` gives and motion.visemes knows),
so that `--transcript` drives the mouth exactly like the text-to-speech path.

What was found out by running it (pocketsphinx 5.1.1, English espeak-ng speech and GRID recordings):
- `bestpath` (the default) makes the word pass read its result off a lattice, which can give a phone
  fewer frames than its HMM has states; the phone pass then fails ("Failed to stop utterance processing"
  or "Failed to set up sub-word alignment"). It is off here. The word-exit beam (`wbeam`, 7e-29 by
  default, narrower than `beam`) loses the right path on many utterances; it is set equal to `beam`.
- Even so, the default beam (1e-48) loses the right path on robotic TTS speech, and on some real
  recordings it survives on a squeezed path (phones of 30 ms, the HMM's minimum, then the rest stretched).
  The search starts at 1e-80 and is retried wider (BEAMS) when it finds no path, or a path that puts
  speech (silero-vad, within 30 dB of the loud frames) in pauses: a pruned search can survive on a path
  that calls speech silence.
- A word missing from the dictionary makes the grammar invalid. Such words get a pronunciation from
  espeak-ng's English rules (its phonemes mapped to ARPAbet); a word espeak-ng cannot pronounce is dropped
  with a warning. Numbers are words espeak-ng reads ("37" -> "thirty seven").
- The phone pass keeps a score per frame and state of the whole utterance. Audio longer than
  PIECE_SECONDS is aligned in pieces cut in the middle of pauses (silero-vad): each piece but the last
  aligns a prefix of the words left (any word may end it, followed by silence), so words need not be
  assigned to pieces in advance, and memory and time stay bounded for any length. A prefix path tends to
  end one word early, calling the piece's last word a pause: that is checked and fixed.

Measured (2-core machine): on espeak-ng speech aligned to its own text, 97% of espeak's phones paired
with an aligned one, start times off by 20 ms on average (median 12 ms; espeak marks stops at the burst,
the aligner at the closure); 0.03-0.1x real time on human speech (GRID), ~0.1x on TTS speech, which often
needs a second beam; 3 decoders of ~28 MB each.

A transcript that does not fit the audio raises TalkfaceError (one line, exit code 2 from the CLI): the
search finds no path through the grammar at any beam, or the path leaves more than half of the speech
(and over 1 s) to pauses (a transcript of a small part of the audio). This is an error rather than a
fallback to the acoustic mouth because a user who gave --transcript asked for it: silently ignoring it
would hide a wrong file. Speech that matches no word, but less than that, is a warning (missing words).
A wrong transcript of about the right length and rhythm can still align: the mouth then follows it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkface.audio.load import SAMPLE_RATE, Audio
from talkface.audio.vad import WINDOW, speech_probability
from talkface.errors import TalkfaceError
from talkface.motion.contract import Phoneme

log = logging.getLogger(__name__)

FRAME_RATE = 100  # pocketsphinx feature frames per second (its default -frate)
HOP = SAMPLE_RATE // FRAME_RATE  # 160 samples per frame
assert SAMPLE_RATE == 16000  # the shipped acoustic model is for 16 kHz audio
# Beams tried in order (log-probability ratios to the best path in a frame), see the module docstring.
BEAMS = (1e-80, 1e-120, 1e-160)
SILENCE_PROB = 0.1  # probability of an optional pause at each word boundary in the grammar
PIECE_SECONDS = 20.0  # longest piece aligned at once (longer audio is cut at pauses)
MIN_PIECE_SECONDS = 6.0  # a cut is looked for between this and PIECE_SECONDS after the previous one
PAUSE_PROB = 0.3  # silero-vad speech probability below which a 32 ms window counts as pause
MIN_PAUSE_SECONDS = 0.12  # shortest pause a piece may be cut in
# Words offered to a piece: the words expected from its share of the speech, times this, plus WORD_MARGIN.
WORD_SLACK, WORD_MARGIN = 1.5, 8
# An alignment that calls more than this share of a piece's speech (and at least MIN_DOUBT_SECONDS) a pause
# is doubted. Right ones leave ~4% (silero's speech spans run past the words into short pauses).
MAX_PAUSED_SPEECH, MIN_DOUBT_SECONDS = 0.1, 0.5
EDGE_FRAMES = 3  # frames at each end of a pause not checked for speech
SPEECH_BELOW_DB = 30.0  # frames quieter than the loud ones (95th percentile) by more than this are no speech
UNCOVERED_SPEECH = 0.5  # an alignment that leaves more than this share of the speech to pauses is an error
MAX_JOINED_SECONDS = 3 * PIECE_SECONDS  # pieces that fail are joined to the next, up to this length
PAD_SECONDS = 0.1  # quiet padding after each piece, so that the grammar's final silence always fits
PAUSE_SYMBOL = "_"  # espeak's pause mnemonic: what silence and noise become
MAX_TRANSCRIPT_BYTES = 1_000_000  # a transcript file larger than this is not a transcript

# ARPAbet (CMU dictionary, no stress marks) -> espeak-ng mnemonic, as motion.visemes knows them. AH is the
# schwa and the strut vowel alike (the dictionary has no stress to tell them apart); both are central.
ARPABET_TO_ESPEAK = {
    "AA": "A", "AE": "a", "AH": "@", "AO": "O", "AW": "aU", "AY": "aI", "B": "b", "CH": "tS", "D": "d",
    "DH": "D", "EH": "E", "ER": "3", "EY": "eI", "F": "f", "G": "g", "HH": "h", "IH": "I", "IY": "i",
    "JH": "dZ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "N", "OW": "oU", "OY": "OI", "P": "p",
    "R": "r", "S": "s", "SH": "S", "T": "t", "TH": "T", "UH": "U", "UW": "u", "V": "v", "W": "w",
    "Y": "j", "Z": "z", "ZH": "Z",
}  # fmt: skip

# espeak-ng en-us mnemonics (stress marks stripped) -> ARPAbet, for words the dictionary lacks. Symbols not
# here are looked up without their trailing modifiers ("t#" -> "t", "I2" -> "I"), then dropped.
_ESPEAK_TO_ARPABET = {
    "a": "AE", "aa": "AE", "a#": "AH", "A": "AA", "A:": "AA", "A@": "AA R", "0": "AA", "O": "AO",
    "O:": "AO", "O2": "AO", "O@": "AO R", "o@": "AO R", "OI": "OY", "V": "AH", "@": "AH", "@2": "AH",
    "@5": "AH", "@L": "AH L", "3": "ER", "3:": "ER", "E": "EH", "e": "EH", "e@": "EH R", "eI": "EY",
    "I": "IH", "i": "IY", "i:": "IY", "i@": "IH R", "i@3": "IH R", "U": "UH", "U@": "UH R", "u": "UW",
    "u:": "UW", "aI": "AY", "aI@": "AY ER", "aI3": "AY ER", "aU": "AW", "aU@": "AW ER", "oU": "OW",
    "o": "OW", "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "g": "G", "f": "F", "v": "V",
    "T": "TH", "D": "DH", "s": "S", "z": "Z", "S": "SH", "Z": "ZH", "h": "HH", "m": "M", "n": "N",
    "N": "NG", "l": "L", "r": "R", "w": "W", "j": "Y", "tS": "CH", "dZ": "JH", "?": "T", "x": "K",
    "4": "D", "*": "R",
}  # fmt: skip

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def read_transcript(arg: str) -> str:
    """The transcript named by a --transcript argument: the contents of `arg` if it is the path of an
    existing .txt file (UTF-8), else `arg` itself. Raises TalkfaceError for a .txt path that does not
    exist or cannot be read, and for an empty transcript."""
    path = Path(arg)
    looks_like_path = arg.strip().lower().endswith(".txt") and not any(c.isspace() for c in arg.strip())
    if path.suffix.lower() == ".txt" and path.is_file():
        try:
            if path.stat().st_size > MAX_TRANSCRIPT_BYTES:
                raise TalkfaceError(f"transcript file {path} is larger than {MAX_TRANSCRIPT_BYTES} bytes")
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise TalkfaceError(f"cannot read transcript file {path}: {e}") from None
    elif looks_like_path:
        raise TalkfaceError(f"transcript file not found: {arg}")
    else:
        text = arg
    if not transcript_words(text):
        raise TalkfaceError("the transcript is empty (no words to align)")
    return text


def transcript_words(text: str) -> list[str]:
    """The words of a transcript, lower case, in order: letters and digits with inner apostrophes
    ("don't"); punctuation, hyphens and other symbols separate words."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


@dataclass(frozen=True)
class _Piece:
    """Samples [start, end) of the 16 kHz audio, aligned in one go."""

    start: int
    end: int


def _where(piece: _Piece, pieces: list[_Piece]) -> str:
    """ " in 12.0-30.5 s" when the audio is aligned in several pieces, for messages."""
    return "" if len(pieces) == 1 else " in {:.1f}-{:.1f} s".format(*piece_s(piece))


def piece_s(piece: _Piece) -> tuple[float, float]:
    """(start, end) of a piece in seconds, for messages."""
    return piece.start / SAMPLE_RATE, piece.end / SAMPLE_RATE


class _Aligner:
    """pocketsphinx decoders (one per beam, made when first needed) and the pronunciations added to them.
    A decoder is not thread-safe: use it under _lock."""

    def __init__(self):
        import pocketsphinx

        self._ps = pocketsphinx
        self._decoders: dict[float, object] = {}
        self._added: dict[str, str] = {}  # word -> ARPAbet, words that are not in the dictionary
        self._base = self.decoder(BEAMS[0])

    def decoder(self, beam: float):
        d = self._decoders.get(beam)
        if d is None:
            # lm=None: no language model is loaded (27 MB, ~1 s); the grammar is set per piece.
            d = self._ps.Decoder(loglevel="FATAL", lm=None, bestpath=False, beam=beam, pbeam=beam, wbeam=beam)
            for word, phones in self._added.items():
                d.add_word(word, phones, False)
            self._decoders[beam] = d
        return d

    def pronounce(self, words: list[str]) -> list[str]:
        """`words` with those that have no pronunciation left out (logged); the others get one from
        espeak-ng when the dictionary lacks them."""
        kept, dropped = [], []
        for word in words:
            if word in self._added or self._base.lookup_word(word) is not None:
                kept.append(word)
                continue
            phones = _espeak_arpabet(word)
            if not phones:
                dropped.append(word)
                continue
            log.debug("pronunciation of %r from espeak-ng: %s", word, phones)
            self._added[word] = phones
            for d in self._decoders.values():
                d.add_word(word, phones, True)
            kept.append(word)
        if dropped:
            log.warning(
                "transcript: no English pronunciation for %d word(s), left out of the alignment: %s",
                len(dropped),
                ", ".join(sorted(set(dropped))[:20]),
            )
        return kept

    def align_piece(
        self, pcm: np.ndarray, words: list[str], prefix: bool, speech: np.ndarray
    ) -> _Result | None:
        """Align `words` (all of them; with prefix=True any first n of them, n >= 0) to int16 samples
        `pcm`; speech: per 10 ms frame of pcm, True where there is speech (_speech_frames). Tries BEAMS
        in turn until a path puts no more than _doubt_limit(speech) seconds of speech in pauses; returns
        the path that puts the least, or None when no beam finds a path through the grammar."""
        data = np.concatenate([pcm, _padding()]).tobytes()
        best: _Result | None = None
        for beam in BEAMS:
            d = self.decoder(beam)
            n = len(words)
            final = n + 1
            transitions = [(i, i + 1, 1.0, w) for i, w in enumerate(words)]
            # "</s>" (a silence word) into the final state, not an epsilon: set_alignment looks every word
            # of the hypothesis up in the dictionary, and an epsilon shows up there as "(NULL)".
            transitions += [(i, final, 1.0, "</s>") for i in range(0 if prefix else n, n + 1)]
            fsg = d.create_fsg("piece", 0, final, transitions)
            for state in range(n + 1):
                fsg.add_silence("<sil>", state, SILENCE_PROB)
            d.add_fsg("piece", fsg)
            d.activate_search("piece")
            try:
                d.start_utt()
                d.process_raw(data, full_utt=True)
                d.end_utt()
                if d.hyp() is None:
                    log.debug("no word path at beam %g", beam)
                    continue
                segments = [(s.word, s.start_frame, s.end_frame + 1) for s in d.seg()]
                d.set_alignment()
                d.start_utt()
                d.process_raw(data, full_utt=True)
                d.end_utt()
                phones = [(p.name, p.start, p.duration) for p in d.get_alignment().phones()]
            except RuntimeError as e:  # no path in the phone pass, or the decoder is in a bad state
                log.debug("alignment failed at beam %g: %s", beam, e)
                # A failure may leave an utterance open: start the next attempt on a fresh decoder.
                del self._decoders[beam]
                continue
            used = sum(1 for w, _, _ in segments if not _is_filler(w))
            # A pruned search can survive on a path that explains speech as a long pause (with a prefix
            # grammar, by stopping early): speech the path calls pause tells such a path from a right one.
            # A pause's first and last EDGE_FRAMES are not counted: voice activity is blurred at its edges.
            e = EDGE_FRAMES
            in_pause = [int(speech[a + e : b - e].sum()) if _is_filler(w) else 0 for w, a, b in segments]
            last_word = max((i for i, (w, _, _) in enumerate(segments) if not _is_filler(w)), default=-1)
            result = _Result(
                used, phones, sum(in_pause) / FRAME_RATE, sum(in_pause[last_word + 1 :]) / FRAME_RATE
            )
            if best is None or result.speech_in_pause < best.speech_in_pause:
                best = result
            if result.speech_in_pause <= _doubt_limit(speech):
                break
            log.debug("beam %g: %.2f s of speech aligned to pauses", beam, result.speech_in_pause)
        return best


@dataclass(frozen=True)
class _Result:
    """A piece's alignment: words used (of those offered), phones as (ARPAbet, start frame, frames) from
    the piece's start, and the seconds of speech frames that the path puts in pauses."""

    used: int
    phones: list[tuple[str, int, int]]
    speech_in_pause: float
    speech_at_end: float  # the part of speech_in_pause after the last word


def _doubt_limit(speech: np.ndarray) -> float:
    """Seconds of speech (speech: bool per 10 ms frame) an alignment may call pause before it is doubted."""
    return max(MAX_PAUSED_SPEECH * speech.sum() / FRAME_RATE, MIN_DOUBT_SECONDS)


def _is_filler(word: str) -> bool:
    return word.startswith(("<", "[", "(")) or word == "</s>"


def _padding() -> np.ndarray:
    """PAD_SECONDS of quiet noise (int16, about -70 dBFS): digital zeros give log(0) energies."""
    rng = np.random.default_rng(0)
    return rng.integers(-4, 5, int(PAD_SECONDS * SAMPLE_RATE)).astype(np.int16)


def _espeak_arpabet(word: str) -> str:
    """ARPAbet pronunciation of `word` by espeak-ng's en-us rules, space-separated; "" if none."""
    from talkface.audio.tts import synthesize

    try:
        speech = synthesize(word, "en-us")
    except TalkfaceError:
        return ""
    phones = []
    for p in speech.phonemes:
        symbol = p.symbol.lstrip("',")
        if symbol.startswith("_") or symbol.startswith("("):
            continue
        for candidate in (symbol, symbol.rstrip("#-~;:0123456789"), symbol[:2], symbol[:1]):
            if candidate in _ESPEAK_TO_ARPABET:
                phones.append(_ESPEAK_TO_ARPABET[candidate])
                break
    return " ".join(phones)


def _speech_frames(prob: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Per 10 ms pocketsphinx frame (ceil(len(samples) / HOP) of them): True where silero-vad's speech
    probability (prob, one per vad.WINDOW samples) is above one half and the frame is within
    SPEECH_BELOW_DB of the loud frames (silero holds "speech" through the pauses between phrases)."""
    n = -(-len(samples) // HOP)
    centres = np.arange(n) * HOP + HOP // 2
    voiced = prob[np.minimum(centres // WINDOW, len(prob) - 1)] > 0.5
    x = np.pad(samples, (0, n * HOP - len(samples)))
    db = 10 * np.log10((x.reshape(n, HOP).astype(np.float64) ** 2).mean(1) + 1e-12)
    return voiced & (db > np.percentile(db, 95) - SPEECH_BELOW_DB)


def _pieces(samples: np.ndarray, prob: np.ndarray) -> list[_Piece]:
    """Cut 16 kHz samples into pieces of at most PIECE_SECONDS, in the middle of the longest pause (prob,
    silero-vad's speech probability per vad.WINDOW samples, below PAUSE_PROB for MIN_PAUSE_SECONDS or
    more) between MIN_PIECE_SECONDS and PIECE_SECONDS after the previous cut; at the quietest 32 ms there
    when there is no pause."""
    n = len(samples)
    quiet = prob < PAUSE_PROB
    # Runs of quiet windows: (first, last + 1) window indices.
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    runs = edges.reshape(-1, 2)
    runs = runs[(runs[:, 1] - runs[:, 0]) * WINDOW >= MIN_PAUSE_SECONDS * SAMPLE_RATE]
    centres = (runs.sum(1) * WINDOW) // 2  # samples
    lengths = (runs[:, 1] - runs[:, 0]) * WINDOW
    pieces, start = [], 0
    while n - start > PIECE_SECONDS * SAMPLE_RATE:
        lo, hi = start + MIN_PIECE_SECONDS * SAMPLE_RATE, start + PIECE_SECONDS * SAMPLE_RATE
        inside = (centres >= lo) & (centres <= hi)
        if inside.any():
            cut = int(centres[inside][np.argmax(lengths[inside])])
        else:
            w0, w1 = int(lo) // WINDOW, int(hi) // WINDOW
            power = (samples[w0 * WINDOW : w1 * WINDOW].reshape(-1, WINDOW) ** 2).mean(1)
            cut = (w0 + int(np.argmin(power))) * WINDOW + WINDOW // 2
            log.debug("no pause between %.1f and %.1f s; cut at %.2f s", lo / 16e3, hi / 16e3, cut / 16e3)
        pieces.append(_Piece(start, cut))
        start = cut
    pieces.append(_Piece(start, n))
    return pieces


def _to_phonemes(
    phones: list[tuple[str, float, float]], duration: float, start: float = 0.0, heard: bool = False
) -> tuple[Phoneme, ...]:
    """(espeak symbol, start s, end s) spans -> Phonemes tiling [start, duration]: gaps become pauses,
    touching pauses merge, nothing runs past the end or before the start. heard: Phoneme.heard."""
    out: list[Phoneme] = []
    t = start
    for symbol, start, end in phones:
        start, end = max(start, t), min(end, duration)
        if end <= start + 1e-6:
            continue
        if start > t + 1e-6:
            out.append(Phoneme(t, start, PAUSE_SYMBOL, heard))
        out.append(Phoneme(start, end, symbol, heard))
        t = end
    if duration > t + 1e-6:
        out.append(Phoneme(t, duration, PAUSE_SYMBOL, heard))
    merged: list[Phoneme] = []
    for p in out:
        if merged and p.symbol == PAUSE_SYMBOL and merged[-1].symbol == PAUSE_SYMBOL:
            merged[-1] = Phoneme(merged[-1].start, p.end, PAUSE_SYMBOL, heard)
        else:
            merged.append(p)
    return tuple(merged)


_lock = threading.Lock()
_aligner: _Aligner | None = None


def align_transcript(audio: Audio, text: str) -> tuple[Phoneme, ...]:
    """Phoneme timings of English speech `audio` (16 kHz, from talkface.audio.load) saying `text`.

    Returns Phonemes in seconds on the audio's time base (sample 0 = 0 s) that tile [0, audio.duration]
    in order: espeak-ng mnemonics (ARPABET_TO_ESPEAK) for speech, "_" for pauses and noise. Words the
    dictionary lacks are pronounced by espeak-ng's English rules, or left out with a warning. Raises
    TalkfaceError when the transcript has no words, none can be pronounced, or it does not fit the audio
    (no alignment found). About 0.03-0.1x real time on one core.
    """
    global _aligner
    words = transcript_words(text)
    if not words:
        raise TalkfaceError("the transcript is empty (no words to align)")
    t0 = time.perf_counter()
    pcm = (np.clip(audio.samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)
    prob = speech_probability(audio.samples)
    speech = _speech_frames(prob, audio.samples)
    pieces = _pieces(audio.samples, prob)
    spans: list[tuple[str, float, float]] = []
    with _lock:
        if _aligner is None:
            try:
                _aligner = _Aligner()
            except ImportError:
                raise TalkfaceError("pocketsphinx is not installed; it is needed for --transcript") from None
        aligner = _aligner
        words = aligner.pronounce(words)
        if not words:
            raise TalkfaceError("no word of the transcript has an English pronunciation")
        next_word, k = 0, 0
        while k < len(pieces):
            piece = pieces[k]
            last = k == len(pieces) - 1
            remaining = words[next_word:]
            f0, f1 = piece.start // HOP, -(-piece.end // HOP)
            if last:
                offered = remaining
            else:
                # As many words as the piece's share of the remaining speech, with some to spare.
                share = (speech[f0:f1].sum() + 1.0) / (speech[f0:].sum() + 1.0)
                offered = remaining[: int(np.ceil(WORD_SLACK * share * len(remaining))) + WORD_MARGIN]
            result = aligner.align_piece(pcm[piece.start : piece.end], offered, not last, speech[f0:f1])
            if result is not None and not last and result.speech_at_end > 0.1 and result.used < len(offered):
                # A prefix path tends to end one word early, calling the last word of the piece a pause
                # (seen on TTS speech): try the piece with that word as the required last one.
                more = aligner.align_piece(
                    pcm[piece.start : piece.end], offered[: result.used + 1], False, speech[f0:f1]
                )
                if more is not None and more.speech_in_pause < result.speech_in_pause:
                    result = more
            limit = _doubt_limit(speech[f0:f1])
            doubtful = result is None or result.speech_in_pause > limit
            if doubtful and not last and piece.end - piece.start < MAX_JOINED_SECONDS * SAMPLE_RATE:
                # Try again with the next piece joined on: more context, the same words.
                log.debug("doubtful alignment of %.1f-%.1f s; joining the next piece", *piece_s(piece))
                pieces[k : k + 2] = [_Piece(piece.start, pieces[k + 1].end)]
                continue
            if result is None:
                raise TalkfaceError(
                    f"the transcript does not fit the audio{_where(piece, pieces)}: no alignment found "
                    "(is it the right text, in English?)"
                )
            spoken = speech[f0:f1].sum() / FRAME_RATE
            if result.speech_in_pause > max(UNCOVERED_SPEECH * spoken, 1.0):
                raise TalkfaceError(
                    f"the transcript does not fit the audio: {result.speech_in_pause:.1f} of the "
                    f"{spoken:.1f} s of speech{_where(piece, pieces)} match none of its words"
                )
            if result.speech_in_pause > limit:
                log.warning(
                    "transcript: %.1f s of speech in %.1f-%.1f s matched no word (missing from the "
                    "transcript?); the mouth stays closed there",
                    result.speech_in_pause,
                    *piece_s(piece),
                )
            log.debug(
                "piece %.1f-%.1f s: %d of %d offered words, ending %r",
                *piece_s(piece),
                result.used,
                len(offered),
                " ".join(offered[max(result.used - 3, 0) : result.used]),
            )
            next_word += result.used
            offset = piece.start / SAMPLE_RATE
            end_of_piece = piece.end / SAMPLE_RATE
            for name, start, frames in result.phones:
                symbol = ARPABET_TO_ESPEAK.get(name, PAUSE_SYMBOL)  # SIL, +NSN+, ... are pauses
                begin = offset + start / FRAME_RATE
                end = min(offset + (start + frames) / FRAME_RATE, end_of_piece)
                spans.append((symbol, begin, end))
            k += 1
    elapsed = time.perf_counter() - t0
    log.info(
        "aligned %d words in %.1f s of audio (%d piece(s)) in %.2f s (%.3fx real time)",
        len(words),
        audio.duration,
        len(pieces),
        elapsed,
        elapsed / max(audio.duration, 1e-9),
    )
    return _to_phonemes(spans, audio.duration, heard=True)
