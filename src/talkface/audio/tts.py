"""Text to speech with exact phoneme and word timings: espeak-ng 1.52 (from espeakng-loader) via ctypes.

espeak-ng reports every phoneme and word as an event carrying the index of the audio sample where it
starts, so the timings are those of the synthesised waveform itself, not an alignment estimated after
the fact. That makes it the source of demo speech and of test speech whose visemes are known exactly.

What espeak-ng emits (seen with 1.52, voices en-us, de, fr, es, it, ja, cmn, ru):
- Phoneme symbols are espeak mnemonics (Kirshenbaum-like ASCII): "h", "@", "l", "'oU" (a leading "'"
  or "," marks primary or secondary stress), "_:" (a pause), "t#" (reduced t).
- Pauses are phonemes whose symbol starts with "_": "_:" (pause, e.g. between sentences), "_|" (very
  short pause), "_!" (short pause before a vowel-initial word, works like a glottal stop), "_". They
  are kept, so the phonemes tile the speech without gaps from the first phoneme to the end of the audio.
- Each clause ends with a "_" event where the next clause's audio starts (or at the end of the audio).
  Mostly the next phoneme starts at the same sample, so it lasts no time and is dropped, as is any
  phoneme of zero duration; before a stop ("g" of "Give") it keeps the few ms of closure.
- A switch of dictionary inside the text (e.g. the ja voice reads kanji as English "Chinese letter")
  is an event named after the language in parentheses, "(en)", "(ja)": a marker, not a sound, so it
  is dropped and the phoneme before it keeps the time.
- The first phoneme starts a few ms after sample 0 (leading silence that no phoneme covers).
- Words are espeak's WORD events: it may read two words as one ("I am" gives one word "I" whose
  phonemes are "aI a# m"), and a number as several ("123": "123" then "23").

libespeak-ng is a process-global C singleton: every call goes through one lock, and the library is
loaded on the first call, not at import. Its wave generator keeps state between calls that nothing
resets (the pitch "flutter" index, the gain control): the same text gives the same phonemes and words
every time, but audio and times depend slightly on what the process synthesised before (times move
by up to ~10 ms over 8 s of speech). The first call in a fresh process is reproducible to the sample.
"""

from __future__ import annotations

import bisect
import ctypes
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkface.config import MAX_AUDIO_SECONDS
from talkface.errors import TalkfaceError
from talkface.motion.contract import Phoneme

log = logging.getLogger(__name__)

RATE_RANGE = (80, 450)  # words per minute accepted by espeak_SetParameter(espeakRATE)
PITCH_RANGE = (0, 100)  # espeak base pitch, 50 = the voice's normal pitch
# Longest text accepted, in characters: at the default rate, English takes ~14 characters a second, so
# 20 000 characters are about 24 minutes of speech (synthesised in ~3 s), under the audio limit
# (MAX_AUDIO_SECONDS). Longer text is refused before synthesis, so a huge argument fails at once.
MAX_TEXT_CHARS = 20_000

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of exit() when the voice data is missing
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_EE_OK = 0
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_END = 5  # end of a clause or sentence
_EVENT_PHONEME = 7


@dataclass(frozen=True)
class Word:
    """One word as espeak read it: start and end in seconds (end = end of its last non-pause phoneme);
    text is the slice of the input text the word came from."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Speech:
    """samples: shape (N,) float32 in [-1, 1] at sample_rate (Hz). phonemes tile the speech from the
    first phoneme to the end of the audio, in order; words are in reading order."""

    samples: np.ndarray
    sample_rate: int
    phonemes: tuple[Phoneme, ...]
    words: tuple[Word, ...]

    @property
    def duration(self) -> float:
        """Length of the audio in seconds."""
        return len(self.samples) / self.sample_rate


class _EventId(ctypes.Union):
    _fields_ = [
        ("number", ctypes.c_int),  # WORD and SENTENCE events: word or sentence count
        ("name", ctypes.c_char_p),  # MARK and PLAY events
        ("string", ctypes.c_ubyte * 8),  # PHONEME events: UTF-8, zero-terminated unless 8 bytes long
    ]


class _Event(ctypes.Structure):
    # espeak_EVENT of speak_lib.h (1.52); 40 bytes on 64-bit (8 ints/pointers, the union aligned to 8)
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # characters from the start of the text, 1-based
        ("length", ctypes.c_int),  # word length in characters (WORD events)
        ("audio_position", ctypes.c_int),  # ms, = floor(sample * 1000 / sample_rate)
        ("sample", ctypes.c_int),  # index of the sample where the event happens
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, zero-terminated name)*, then a 0 byte
        ("identifier", ctypes.c_char_p),  # path below espeak-ng-data/lang, e.g. b"gmw/en-US"
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class _RawEvent:
    kind: int  # _EVENT_WORD, _EVENT_END or _EVENT_PHONEME
    sample: int  # sample index where the event happens
    text_position: int  # 1-based character index into the text
    length: int  # characters (WORD events)
    symbol: str  # phoneme mnemonic (PHONEME events)


def _event_sample(ev: _Event, sample_rate: int) -> int:
    """Sample index of an event. `sample` is marked "internal use" in speak_lib.h, so it is trusted only
    when it agrees with the documented `audio_position` (ms)."""
    if abs(ev.sample * 1000 // sample_rate - ev.audio_position) <= 1:
        return ev.sample
    return ev.audio_position * sample_rate // 1000


class _Engine:
    """The loaded library, its voices and the buffers the synthesis callback fills. One per process."""

    def __init__(self):
        import espeakng_loader

        data_path = Path(espeakng_loader.get_data_path())
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,  # text
            ctypes.c_size_t,  # size in bytes, including the terminating zero
            ctypes.c_uint,  # position
            ctypes.c_int,  # position type
            ctypes.c_uint,  # end position
            ctypes.c_uint,  # flags
            ctypes.c_void_p,  # unique_identifier
            ctypes.c_void_p,  # user_data
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int

        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, os.fsencode(data_path), options)
        if rate <= 0:
            raise TalkfaceError(f"espeak-ng could not start with the voice data in {data_path}")
        self.lib = lib
        self.sample_rate: int = rate
        self.voices: dict[str, bytes] = _voice_table(lib, data_path)
        self._chunks: list[np.ndarray] = []
        self._events: list[_RawEvent] = []
        # The C library keeps only a raw pointer: this reference keeps the thunk alive (the engine
        # itself lives in the module-level _engine).
        self._callback = _SynthCallback(self._on_synth)
        lib.espeak_SetSynthCallback(self._callback)
        log.debug("espeak-ng ready: %d Hz, %d voice names, data %s", rate, len(self.voices), data_path)

    def _on_synth(self, wav, n_samples: int, events) -> int:
        """espeak's callback: a block of int16 audio and the events that fall in it. Returns 0 (go on)."""
        if wav and n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        i = 0
        while events and events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            i += 1
            if ev.type not in (_EVENT_WORD, _EVENT_END, _EVENT_PHONEME):
                continue
            symbol = ""
            if ev.type == _EVENT_PHONEME:
                symbol = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
            sample = _event_sample(ev, self.sample_rate)
            self._events.append(_RawEvent(ev.type, sample, ev.text_position, ev.length, symbol))
        return 0

    def synthesize(self, text: str, identifier: bytes, words_per_minute: int, pitch: int) -> Speech:
        if self.lib.espeak_SetVoiceByName(identifier) != _EE_OK:
            raise TalkfaceError(f"espeak-ng could not load the voice {identifier.decode()}")
        # Set after the voice: loading a voice may reset them.
        self.lib.espeak_SetParameter(_PARAM_RATE, words_per_minute, 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
        data = text.encode("utf-8") + b"\0"
        self._chunks, self._events = [], []
        try:
            err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self.lib.espeak_Synchronize()
            if err != _EE_OK:
                raise TalkfaceError(f"espeak-ng failed to synthesise the text (error {err})")
            pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            events = self._events
        finally:
            self._chunks, self._events = [], []
        if len(pcm) == 0:
            raise TalkfaceError("espeak-ng produced no audio for the text")
        samples = pcm.astype(np.float32) / 32768.0
        phonemes, words = _timings(events, len(pcm), self.sample_rate, text)
        return Speech(samples, self.sample_rate, phonemes, words)


def _voice_table(lib: ctypes.CDLL, data_path: Path) -> dict[str, bytes]:
    """Language name (lower case, e.g. "en-us", "zh") -> identifier of the voice espeak ranks first
    for it (lowest priority number; ties go to the voice espeak lists first). Voices whose dictionary
    is not in the data (espeakng-loader 0.2.4 lacks fo, kaa, xex) are left out."""
    voices = lib.espeak_ListVoices(None)
    best: dict[str, tuple[int, int, bytes]] = {}
    i = 0
    while voices[i]:
        voice = voices[i].contents
        identifier = voice.identifier
        order = i
        i += 1
        languages = _languages(voice.languages)
        if not languages or not _has_dictionary(data_path, identifier.decode(), languages[0][1]):
            log.debug("espeak voice %s has no dictionary, skipped", identifier.decode())
            continue
        for priority, name in languages:
            key = name.lower()
            if key not in best or (priority, order) < best[key][:2]:
                best[key] = (priority, order, identifier)
    return {name: ident for name, (_, _, ident) in best.items()}


def _languages(address: int | None) -> list[tuple[int, str]]:
    """Decode espeak_VOICE.languages: (priority byte, zero-terminated name)* ended by a 0 byte."""
    out = []
    while address:
        priority = ctypes.string_at(address, 1)[0]
        if priority == 0:
            break
        name = ctypes.string_at(address + 1)
        out.append((priority, name.decode("utf-8", "replace")))
        address += 2 + len(name)
    return out


def _has_dictionary(data_path: Path, identifier: str, language: str) -> bool:
    """espeak loads `<dictionary>_dict`, named by the voice file's "dictionary" line, else by its first
    language up to the first "-" (en-us -> en)."""
    name = language.split("-")[0]
    try:
        for line in (data_path / "lang" / identifier).read_text("utf-8", "replace").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "dictionary":
                name = parts[1]
                break
    except OSError:
        pass  # not a file we can read: judge by the language name
    return (data_path / f"{name}_dict").is_file()


def _timings(
    events: list[_RawEvent], n_samples: int, sample_rate: int, text: str
) -> tuple[tuple[Phoneme, ...], tuple[Word, ...]]:
    """Phonemes and words from espeak's events (see the module docstring for what is dropped)."""
    marks = [
        (min(max(ev.sample, 0), n_samples), ev.symbol)
        for ev in events
        if ev.kind == _EVENT_PHONEME and ev.symbol and not ev.symbol.startswith("(")
    ]
    spans = []  # (start, end, symbol), samples; a phoneme ends where the next one starts
    for k, (start, symbol) in enumerate(marks):
        end = marks[k + 1][0] if k + 1 < len(marks) else n_samples
        if end > start:
            spans.append((start, end, symbol))
    starts = [s for s, _, _ in spans]

    # A word runs from its WORD event to the end of its last sounding phoneme, cut at the next word or
    # clause end: espeak marks a word where its audio starts (e.g. the closure before a "t"), a little
    # before the phoneme event. Some voices repeat a WORD event (ja: once per kanji); repeats are merged.
    word_events: list[_RawEvent] = []
    for ev in events:
        if ev.kind == _EVENT_WORD and not (word_events and word_events[-1].text_position == ev.text_position):
            word_events.append(ev)
    clause_ends = sorted(ev.sample for ev in events if ev.kind == _EVENT_END)
    words = []
    for k, ev in enumerate(word_events):
        start = min(max(ev.sample, 0), n_samples)
        limit = word_events[k + 1].sample if k + 1 < len(word_events) else n_samples
        c = bisect.bisect_right(clause_ends, start)
        limit = max(
            min(limit, clause_ends[c], n_samples) if c < len(clause_ends) else min(limit, n_samples), start
        )
        inside = spans[bisect.bisect_left(starts, start) : bisect.bisect_left(starts, limit)]
        sounding = [e for _, e, symbol in inside if not symbol.startswith("_")]
        end = min(sounding[-1], limit) if sounding else limit
        first = max(ev.text_position - 1, 0)
        words.append(Word(start / sample_rate, end / sample_rate, text[first : first + ev.length].strip()))
    phonemes = tuple(Phoneme(s / sample_rate, e / sample_rate, symbol) for s, e, symbol in spans)
    return phonemes, tuple(words)


_lock = threading.Lock()
_engine: _Engine | None = None


def _get_engine() -> _Engine:
    """The process's engine, made on first use. Call with _lock held."""
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


def list_voices() -> list[str]:
    """Voice names synthesize accepts: espeak's language names, sorted (e.g. "de", "en", "en-gb",
    "en-us", "fr", "ja", "ru", "zh" for Mandarin). Loads espeak-ng on the first call."""
    with _lock:
        return sorted(_get_engine().voices)


def _unknown_voice_message(voice: str, names: list[str], shown: int = 40) -> str:
    listed = ", ".join(names[:shown])
    if len(names) > shown:
        listed += f", ... ({len(names)} in all)"
    return f"unknown voice {voice!r}; available voices: {listed}"


def synthesize(text: str, voice: str = "en-us", words_per_minute: int = 160, pitch: int = 50) -> Speech:
    """Speak `text` (UTF-8, plain text, punctuation sets the pauses) with an espeak-ng voice.

    voice: a name from list_voices(), case-insensitive. words_per_minute: 80-450. pitch: 0-100, 50 is
    the voice's normal pitch. Returns mono float32 audio at espeak's rate (22050 Hz) with the phoneme
    and word timings, in seconds, of that exact audio (bit-exact only for a process's first call, see the
    module docstring). Control characters are read as spaces. Raises TalkfaceError for empty text, text
    over MAX_TEXT_CHARS or MAX_AUDIO_SECONDS of speech, an unknown voice or an out-of-range option.
    """
    # A zero byte would end the C string early, and other control characters (escape sequences pasted from
    # a terminal, bells) are not text: a space each keeps every character position.
    text = "".join(" " if ord(c) < 32 and c not in "\n\r\t" or 127 <= ord(c) < 160 else c for c in text or "")
    if not text.strip():
        raise TalkfaceError("the text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise TalkfaceError(
            f"the text is too long ({len(text)} characters); the limit is {MAX_TEXT_CHARS} (about 24 "
            "minutes of speech): split it"
        )
    if not RATE_RANGE[0] <= words_per_minute <= RATE_RANGE[1]:
        raise TalkfaceError(
            f"words_per_minute must be in {RATE_RANGE[0]}-{RATE_RANGE[1]}, got {words_per_minute}"
        )
    if not PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]:
        raise TalkfaceError(f"pitch must be in {PITCH_RANGE[0]}-{PITCH_RANGE[1]}, got {pitch}")
    with _lock:
        engine = _get_engine()
        identifier = engine.voices.get(voice.strip().lower())
        if identifier is None:
            raise TalkfaceError(_unknown_voice_message(voice, sorted(engine.voices)))
        speech = engine.synthesize(text, identifier, int(words_per_minute), int(pitch))
    if speech.duration > MAX_AUDIO_SECONDS:  # slow speech, long numbers read out: under the character limit
        raise TalkfaceError(
            f"the text makes {speech.duration / 60:.0f} minutes of speech, longer than the "
            f"{MAX_AUDIO_SECONDS // 60}-minute limit: split it"
        )
    log.debug(
        "synthesised %.2f s, %d phonemes, %d words with %s",
        speech.duration,
        len(speech.phonemes),
        len(speech.words),
        identifier.decode(),
    )
    return speech
