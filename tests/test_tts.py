"""Text to speech through espeak-ng: audio, exact phoneme and word timings, voices, errors."""

import json
import threading

import av
import numpy as np
import pytest

from talkface.assets import asset_path
from talkface.audio.tts import Speech, list_voices, synthesize
from talkface.errors import TalkfaceError


def assert_consistent(speech: Speech) -> None:
    """Audio is mono float32 in [-1, 1]; phonemes tile it in order, from the first one to the end."""
    assert speech.samples.dtype == np.float32 and speech.samples.ndim == 1 and len(speech.samples) > 0
    assert np.abs(speech.samples).max() <= 1.0 and np.abs(speech.samples).max() > 0.05
    assert speech.duration == len(speech.samples) / speech.sample_rate
    starts = np.array([p.start for p in speech.phonemes])
    ends = np.array([p.end for p in speech.phonemes])
    assert len(starts) > 0 and starts[0] >= 0
    assert np.all(ends > starts) and np.all(np.diff(starts) > 0)
    assert np.allclose(ends[:-1], starts[1:]) and ends[-1] == pytest.approx(speech.duration)
    for w in speech.words:
        assert 0 <= w.start <= w.end <= speech.duration
    assert all(a.start <= b.start for a, b in zip(speech.words, speech.words[1:], strict=False))


def test_english_audio_phonemes_and_words():
    speech = synthesize("Hello! Give me one photo.")
    assert speech.sample_rate == 22050
    assert 0.8 < speech.duration < 4.0
    assert_consistent(speech)
    symbols = [p.symbol for p in speech.phonemes]
    assert "m" in symbols and "f" in symbols  # "me", "photo"
    assert "_:" in symbols  # the pause between the sentences
    assert [w.text for w in speech.words] == ["Hello", "Give", "me", "one", "photo"]
    # The pause after "Hello!" lies between the two sentences' words.
    pause = next(p for p in speech.phonemes if p.symbol == "_:")
    assert speech.words[0].end <= pause.start < pause.end <= speech.words[1].start


def test_rate_changes_duration():
    slow = synthesize("one two three four five", words_per_minute=100)
    fast = synthesize("one two three four five", words_per_minute=300)
    assert fast.duration < 0.6 * slow.duration


@pytest.mark.parametrize(
    "voice,text,first_word",
    [
        ("de", "Guten Morgen, wie geht es dir?", "Guten"),
        ("ru", "Привет, как дела?", "Привет"),
        ("cmn", "你好,世界。", "你"),
    ],
)
def test_other_languages(voice, text, first_word):
    speech = synthesize(text, voice)
    assert_consistent(speech)
    assert speech.words[0].text == first_word


def test_voices_listed_and_case_insensitive():
    voices = list_voices()
    assert voices == sorted(voices)
    for name in ("en-us", "en", "de", "fr", "es", "it", "ja", "ru", "cmn", "zh"):
        assert name in voices
    assert "fo" not in voices  # listed by espeak but its dictionary is not in the shipped data
    assert synthesize("yes", "EN-US").duration > 0


def test_unknown_voice_names_available_ones():
    with pytest.raises(TalkfaceError, match="unknown voice 'klingon-xx'") as err:
        synthesize("hello", "klingon-xx")
    message = str(err.value)
    assert "\n" not in message and "en-us" in message and "de" in message
    assert f"({len(list_voices())} in all)" in message


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_text(text):
    with pytest.raises(TalkfaceError, match="the text is empty"):
        synthesize(text)


def test_options_out_of_range():
    with pytest.raises(TalkfaceError, match="words_per_minute"):
        synthesize("hello", words_per_minute=20)
    with pytest.raises(TalkfaceError, match="pitch"):
        synthesize("hello", pitch=101)


def symbols_and_words(speech: Speech) -> tuple[list[str], list[str]]:
    return [p.symbol for p in speech.phonemes], [w.text for w in speech.words]


def test_repeat_calls_give_the_same_phonemes():
    # espeak's wave generator carries state between calls, so audio and times vary slightly.
    first, second = synthesize("Give me one photo."), synthesize("Give me one photo.")
    assert symbols_and_words(first) == symbols_and_words(second)
    assert abs(first.duration - second.duration) < 0.02
    starts = np.array([[p.start for p in s.phonemes] for s in (first, second)])
    assert np.abs(starts[0] - starts[1]).max() < 0.02


def test_threads_get_their_own_speech():
    jobs = [("one two three", "en-us"), ("Guten Tag", "de"), ("Привет", "ru")] * 2
    expected = [symbols_and_words(synthesize(text, voice)) for text, voice in jobs]
    got: list = [None] * len(jobs)

    def run(i: int) -> None:
        got[i] = symbols_and_words(synthesize(*jobs[i]))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_shipped_speech_matches_its_timings():
    timings = json.loads(asset_path("speech.json").read_text(encoding="utf-8"))
    with av.open(str(asset_path("speech.flac"))) as f:
        stream = f.streams.audio[0]
        assert stream.rate == timings["sample_rate"] and stream.channels == 1
        n = sum(frame.samples for frame in f.decode(stream))
    assert n == timings["num_samples"]
    phonemes = timings["phonemes"]
    assert phonemes[-1][1] == pytest.approx(n / timings["sample_rate"], abs=1e-5)
    assert all(a[1] == b[0] for a, b in zip(phonemes, phonemes[1:], strict=False))
