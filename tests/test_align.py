"""Forced alignment of a transcript (pocketsphinx): timings against espeak-ng's exact ones, the phone
table, out-of-dictionary words, long audio in pieces, wrong and empty transcripts, --transcript files, and
a real GRID clip (skipped without ../shared/data).

`python tests/test_align.py` measures how much better the mouth follows the real GRID clips with their
transcripts than without (lipsync_corr, as `talkface eval` computes it); it needs ../shared/data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkface.audio import align as A
from talkface.audio.load import from_samples, load_audio
from talkface.audio.tts import synthesize
from talkface.errors import TalkfaceError
from talkface.motion.contract import Phoneme
from talkface.motion.visemes import _BY_SYMBOL

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "talking"

SENTENCES = (
    "Hello world, this is a test of the forced alignment.",
    "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore.",
    "I will see you tomorrow at nine, said the lawyer, and then he left the room quietly.",
    "My grandmother bought seventeen oranges on Thursday morning.",
    "Please remember to bring your umbrella, because the weather report says it will rain all afternoon.",
)

# GRID sentences are "command colour preposition letter digit adverb", and the clip's name spells them.
_GRID = (
    {"b": "bin", "l": "lay", "p": "place", "s": "set"},
    {"b": "blue", "g": "green", "r": "red", "w": "white"},
    {"a": "at", "b": "by", "i": "in", "w": "with"},
    None,  # the letter itself
    {
        "z": "zero",
        **{str(i): w for i, w in enumerate("zero one two three four five six seven eight nine".split())},
    },
    {"a": "again", "n": "now", "p": "please", "s": "soon"},
)


def grid_transcript(name: str) -> str:
    """The sentence of a GRID clip from its six-letter name: "bbaf2n" -> "bin blue at f two now"."""
    return " ".join(code if table is None else table[code] for code, table in zip(name, _GRID, strict=True))


def _espeak_class(symbol: str) -> str:
    """An espeak mnemonic as the first ARPAbet phone it maps to, to pair it with an aligned phone."""
    s = symbol.lstrip("',")
    for candidate in (s, s.rstrip("#-~;:0123456789"), s[:2], s[:1]):
        if candidate in A._ESPEAK_TO_ARPABET:
            return A._ESPEAK_TO_ARPABET[candidate].split()[0]
    return "?"


_ARPABET_OF = {v: k for k, v in A.ARPABET_TO_ESPEAK.items()}


def boundary_errors(truth: tuple[Phoneme, ...], aligned: tuple[Phoneme, ...]) -> tuple[np.ndarray, int]:
    """Start-time errors (aligned - truth, seconds) of the phones paired by a minimum-edit alignment of the
    two phone strings (pauses left out; dictionary and espeak pronunciations differ a little), and the
    number of sounding phones in `truth`."""
    a = [p for p in truth if not p.symbol.startswith("_")]
    b = [p for p in aligned if not p.symbol.startswith("_")]
    sa = [_espeak_class(p.symbol) for p in a]
    sb = [_ARPABET_OF.get(p.symbol, "?") for p in b]
    n, m = len(sa), len(sb)
    cost = np.zeros((n + 1, m + 1))
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(
                cost[i - 1, j] + 1, cost[i, j - 1] + 1, cost[i - 1, j - 1] + 2 * (sa[i - 1] != sb[j - 1])
            )
    errors, i, j = [], n, m
    while i > 0 and j > 0:
        if sa[i - 1] == sb[j - 1] and cost[i, j] == cost[i - 1, j - 1]:
            errors.append(b[j - 1].start - a[i - 1].start)
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        elif cost[i, j] == cost[i, j - 1] + 1:
            j -= 1
        else:
            i, j = i - 1, j - 1
    return np.array(errors[::-1]), n


def assert_tiles(phonemes: tuple[Phoneme, ...], duration: float) -> None:
    """Phonemes tile [0, duration] in order, with no empty span and no two pauses in a row."""
    assert phonemes[0].start == 0.0 and phonemes[-1].end == pytest.approx(duration)
    for p, q in zip(phonemes, phonemes[1:], strict=False):
        assert p.end == pytest.approx(q.start) and p.end > p.start
        assert not (p.symbol == q.symbol == A.PAUSE_SYMBOL)


@pytest.fixture(scope="module")
def espeak_speech():
    speech = synthesize(" ".join(SENTENCES[:3]), "en-us")
    return speech, from_samples(speech.samples, speech.sample_rate)


def test_every_dictionary_phone_has_an_espeak_symbol_the_visemes_know():
    import pocketsphinx

    phones = set()
    with open(pocketsphinx.get_model_path("en-us/cmudict-en-us.dict"), encoding="utf-8") as f:
        for line in f:
            phones.update(line.split()[1:])
    assert phones == set(A.ARPABET_TO_ESPEAK)
    assert set(A.ARPABET_TO_ESPEAK.values()) <= set(_BY_SYMBOL)


def test_espeak_speech_aligns_to_its_own_phoneme_times(espeak_speech):
    speech, audio = espeak_speech
    aligned = A.align_transcript(audio, " ".join(SENTENCES[:3]))
    assert_tiles(aligned, audio.duration)
    errors, n = boundary_errors(speech.phonemes, aligned)
    # Measured: 97% of espeak's 135 phones paired, mean |error| 21 ms, median 12 ms. Stops account for the
    # largest errors: espeak marks /p t k/ at the burst, the aligner at the closure (what the lips show).
    assert len(errors) >= 0.9 * n
    assert np.mean(np.abs(errors)) < 0.035
    assert np.median(np.abs(errors)) < 0.02
    assert np.mean(np.abs(errors) > 0.1) < 0.05


def test_pauses_between_sentences_are_pauses(espeak_speech):
    speech, audio = espeak_speech
    aligned = A.align_transcript(audio, " ".join(SENTENCES[:3]))
    for pause in (p for p in speech.phonemes if p.symbol == "_:" and p.end - p.start > 0.15):
        middle = (pause.start + pause.end) / 2
        assert next(p for p in aligned if p.start <= middle < p.end).symbol == A.PAUSE_SYMBOL


def test_words_missing_from_the_dictionary_are_pronounced_by_espeak():
    text = "Zorbleflax bought 37 kwimbles."
    speech = synthesize(text, "en-us")
    audio = from_samples(speech.samples, speech.sample_rate)
    aligned = A.align_transcript(audio, text)
    errors, n = boundary_errors(speech.phonemes, aligned)
    assert len(errors) >= 0.8 * n and np.median(np.abs(errors)) < 0.03
    sounding = "".join(p.symbol for p in aligned if p.symbol != A.PAUSE_SYMBOL)
    assert "T3" in sounding and "s" in sounding  # "thirty seven"


def test_long_audio_is_aligned_in_pieces(monkeypatch):
    # Pieces of at most 8 s instead of 20 keep the test short; the logic is the same.
    monkeypatch.setattr(A, "PIECE_SECONDS", 8.0)
    monkeypatch.setattr(A, "MIN_PIECE_SECONDS", 3.0)
    text = " ".join(SENTENCES)
    speech = synthesize(text, "en-us")
    audio = from_samples(speech.samples, speech.sample_rate)
    assert len(A._pieces(audio.samples, A.speech_probability(audio.samples))) >= 3
    aligned = A.align_transcript(audio, text)
    assert_tiles(aligned, audio.duration)
    errors, n = boundary_errors(speech.phonemes, aligned)
    assert len(errors) >= 0.9 * n
    assert np.mean(np.abs(errors)) < 0.04 and np.mean(np.abs(errors) > 0.1) < 0.05


def test_cuts_fall_in_pauses():
    speech = synthesize(" ".join(SENTENCES * 2), "en-us")
    audio = from_samples(speech.samples, speech.sample_rate)
    pieces = A._pieces(audio.samples, A.speech_probability(audio.samples))
    assert len(pieces) >= 2 and pieces[0].start == 0 and pieces[-1].end == len(audio.samples)
    for p, q in zip(pieces, pieces[1:], strict=False):
        assert p.end == q.start and p.end - p.start <= A.PIECE_SECONDS * 16000
        cut = p.end / 16000
        assert next(ph for ph in speech.phonemes if ph.start <= cut < ph.end).symbol.startswith("_")


def test_a_transcript_that_does_not_fit_is_one_clear_error(espeak_speech):
    _, audio = espeak_speech
    with pytest.raises(TalkfaceError, match="does not fit the audio: no alignment found") as e:
        A.align_transcript(audio, "Pack my box with five dozen liquor jugs. " * 3)
    assert "\n" not in str(e.value)
    speech = synthesize("Hello world, this is a short test.", "en-us")
    short = from_samples(speech.samples, speech.sample_rate)
    with pytest.raises(TalkfaceError, match="of speech match none of its words"):
        A.align_transcript(short, "yes")


@pytest.mark.parametrize("text", ["", "   ", "... -- !!"])
def test_empty_transcript(espeak_speech, text):
    with pytest.raises(TalkfaceError, match="empty"):
        A.align_transcript(espeak_speech[1], text)
    with pytest.raises(TalkfaceError, match="empty"):
        A.read_transcript(text)


def test_transcript_words():
    assert A.transcript_words("Don’t stop-me now, 2 times!") == ["don't", "stop", "me", "now", "2", "times"]


def test_read_transcript_from_a_file_or_the_text(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("Hello there.\nGeneral words.\n", encoding="utf-8")
    assert A.read_transcript(str(path)) == "Hello there.\nGeneral words.\n"
    assert A.read_transcript("hello there") == "hello there"
    with pytest.raises(TalkfaceError, match="not found"):
        A.read_transcript(str(tmp_path / "missing.txt"))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(TalkfaceError, match="cannot read"):
        A.read_transcript(str(bad))


def _grid_clips() -> list[Path]:
    return sorted(DATA.glob("lipnet_grid_*.mpg")) if DATA.is_dir() else []


@pytest.mark.skipif(not _grid_clips(), reason="needs ../shared/data/talking (GRID clips)")
def test_real_grid_clips():
    for path in _grid_clips():
        audio = load_audio(path)
        aligned = A.align_transcript(audio, grid_transcript(path.stem.split("_")[-1]))
        assert_tiles(aligned, audio.duration)
        sounding = [p for p in aligned if p.symbol != A.PAUSE_SYMBOL]
        assert len(sounding) >= 12
        # The words lie where the voice is: the first and last phones start and end within 120 ms of the
        # speech (measured: within 90 ms on all 7 clips), and no phone is stretched over a silence.
        speech = np.flatnonzero(A._speech_frames(A.speech_probability(audio.samples), audio.samples)) / 100
        assert abs(sounding[0].start - speech[0]) < 0.12 and abs(sounding[-1].end - speech[-1]) < 0.12
        assert max(p.end - p.start for p in sounding) < 0.5


def lipsync_with_and_without_transcripts() -> None:
    """Render each GRID clip from its own closed-mouth frame with and without its transcript and print
    lipsync_corr (r at lag 0, and the best r within +-200 ms) against the real mouth."""
    import tempfile

    from talkface.config import AnimateOptions
    from talkface.eval import metrics as M
    from talkface.eval.report import LAG_SEARCH_MS, choose_portrait
    from talkface.eval.tracking import probe, read_frame, track_video
    from talkface.pipeline import animate

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in _grid_clips():
            name = path.stem.split("_")[-1]
            fps = float(min(60.0, max(1.0, probe(path).fps)))
            real = M.mouth_opening(track_video(path).points)
            k, _ = choose_portrait(real, fps)
            portrait = read_frame(path, k)
            row = {}
            for label, transcript in (("acoustic", None), ("transcript", grid_transcript(name))):
                out = Path(tmp) / f"{name}.{label}.mp4"
                options = AnimateOptions(size=256, fps=fps, seed=0)
                animate(portrait, path, out, options, transcript=transcript)
                gen = M.mouth_opening(track_video(out).points)
                t = min(len(gen), len(real))
                row[label] = M.lagged_correlation(real[:t], gen[:t], fps, LAG_SEARCH_MS)
            rows.append(row)
            print(
                name,
                "  ".join(
                    f"{k}: r={v.r_zero:.3f} best={v.r_best:.3f} lag={v.lag_ms:.0f} ms" for k, v in row.items()
                ),
                flush=True,
            )
    for label in ("acoustic", "transcript"):
        r0 = np.mean([row[label].r_zero for row in rows])
        rb = np.mean([row[label].r_best for row in rows])
        print(f"{label}: mean lipsync_corr {r0:.3f}, at best lag {rb:.3f} ({len(rows)} clips)")


if __name__ == "__main__":
    lipsync_with_and_without_transcripts()
