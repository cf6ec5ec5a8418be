import numpy as np
import pytest
from conftest import synth_band, synth_speech, write_audio

from talkface.audio.features import FEATURE_RATE, compute_features, n_video_frames
from talkface.audio.load import SAMPLE_RATE, from_samples, load_audio
from talkface.errors import TalkfaceError


@pytest.mark.parametrize(
    "suffix,rate,channels",
    [
        (".wav", 16000, 1),
        (".wav", 8000, 2),
        (".mp3", 44100, 2),
        (".m4a", 48000, 1),
        (".flac", 22050, 1),
        (".ogg", 48000, 2),
    ],
)
def test_load_any_format_rate_and_layout(tmp_path, suffix, rate, channels):
    x = synth_speech(1.5, rate)
    path = write_audio(tmp_path / f"a{suffix}", x, rate, channels=channels)
    audio = load_audio(path)
    assert audio.source_rate == rate and audio.source_channels == channels
    # Lossy codecs pad a little at the start or end; the duration is the decoded length.
    assert abs(audio.duration - 1.5) < 0.08
    assert abs(len(audio.samples) / SAMPLE_RATE - audio.duration) < 0.01
    assert audio.samples.dtype == np.float32 and np.abs(audio.samples).max() > 0.1


def test_bad_audio_files(tmp_path):
    with pytest.raises(TalkfaceError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"this is not audio" * 100)
    with pytest.raises(TalkfaceError, match="cannot read|no audio"):
        load_audio(junk)
    empty = write_audio(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(TalkfaceError, match="no audio samples"):
        load_audio(empty)
    long = write_audio(tmp_path / "long.wav", np.zeros(16000 * 3, np.float32), 16000)
    with pytest.raises(TalkfaceError, match="limit"):
        load_audio(long, max_seconds=2)


def test_features_align_to_video_frames_without_drift():
    # Clicks at known times across a long (4 min) signal must land in the frame that covers them.
    seconds, fps = 240.0, 25.0
    x = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
    click_times = [0.5, 61.22, 179.98, 239.5]
    for t in click_times:
        i = int(t * SAMPLE_RATE)
        x[i : i + 80] = 0.9
    feats = compute_features(from_samples(x, SAMPLE_RATE))
    assert len(feats) == int(np.ceil(len(x) / (SAMPLE_RATE / FEATURE_RATE)))
    n = n_video_frames(seconds, fps)
    assert n == 6000
    per_frame = feats.at_fps(fps, n)
    loud = np.flatnonzero(per_frame.energy_db > -60)
    for t in click_times:
        assert int(t * fps) in loud or int(t * fps) - 1 in loud or int(t * fps) + 1 in loud
    assert len(loud) <= 3 * len(click_times)


def test_voicing_separates_speech_from_silence():
    x = np.concatenate([np.zeros(16000, np.float32), synth_speech(2.0), np.zeros(16000, np.float32)])
    f = compute_features(from_samples(x, SAMPLE_RATE))
    assert f.energy_db[:90].max() < -80
    assert np.median(f.energy_db[120:280]) > -40
    assert f.pitch_hz[120:280][f.pitch_hz[120:280] > 0].size > 50
    assert np.all(f.pitch_hz[:90] == 0)


def test_a_voice_sung_over_music_is_heard_and_music_alone_is_not():
    """audio.music: silero-vad loses much of a voice under a loud band; the separated voice brings most of it
    back. The band alone stays silent, separated or not, and a voice alone keeps silero-vad's activity to the
    bit."""
    from talkface.assets import asset_path
    from talkface.audio.music import HEARD_SHARE, MUSIC_SHARE, loud_shares, separated_voice, voice_activity
    from talkface.audio.vad import speech_probability

    voice = load_audio(asset_path("speech.flac")).samples[: 8 * SAMPLE_RATE]
    speaking = speech_probability(voice) > 0.5
    np.testing.assert_array_equal(voice_activity(voice), speech_probability(voice))
    for seed in (1, 2):
        band = synth_band(len(voice) / SAMPLE_RATE, seed) * 5.0  # 5x as loud as synth_band makes it
        mix = voice + band
        silero = speech_probability(mix)
        heard_share, unheard_share = loud_shares(mix, silero)
        assert heard_share >= HEARD_SHARE and unheard_share >= MUSIC_SHARE
        heard_before = np.mean(silero[speaking] > 0.5)
        heard = np.mean(voice_activity(mix)[speaking] > 0.5)
        assert heard_before < 0.5 and heard > heard_before + 0.3, (seed, heard_before, heard)
        # The band alone: the separation finds no voice in it (a window in a few hundred may pass), and no
        # voice is heard, so no mouth.
        assert np.mean(speech_probability(separated_voice(band)) > 0.5) < 0.02
        assert np.mean(voice_activity(band) > 0.5) < 0.02
        f = compute_features(from_samples(band, SAMPLE_RATE))
        assert np.mean(f.voicing > 0.5) < 0.02


def test_the_voice_is_separated_a_segment_at_a_time_as_if_whole():
    """audio.music.separated_voice works on SEGMENT_S at a time (bounded memory on a long song): what it gives
    is what the whole signal separated at once gives."""
    from talkface import stages
    from talkface.audio.music import SEPARATION_STAGE, separated_voice

    x = synth_speech(7.0) + 3.0 * synth_band(7.0, seed=4)
    whole = separated_voice(x, segment_s=60.0)
    assert np.abs(whole).max() > 0.01
    reports = []
    with stages.listening(lambda stage, fraction: reports.append((stage, fraction))):
        separated_voice(x, segment_s=2.5)
    # It says how far it is (talkface.stages: the command's progress line), a segment at a time.
    assert {stage for stage, _ in reports} == {SEPARATION_STAGE}
    fractions = [f for _, f in reports]
    assert len(fractions) == 4 and fractions == sorted(fractions) and fractions[-1] == 1.0
    for segment_s in (2.5, 3.1):
        np.testing.assert_allclose(
            separated_voice(x, segment_s=segment_s), whole, atol=1e-4 * np.abs(whole).max()
        )


def test_voice_activity_of_a_long_signal_says_how_far_it_is():
    """speech_probability reports its progress (talkface.stages) on a signal longer than a piece, not on a
    short one; the probabilities are the same either way."""
    from talkface import stages
    from talkface.audio.vad import VOICE_STAGE, speech_probability

    x = np.tile(synth_speech(5.0), 8)  # 40 s: two pieces
    reports = []
    with stages.listening(lambda stage, fraction: reports.append((stage, fraction))):
        long = speech_probability(x)
        speech_probability(x[: 16000 * 5])
    assert [stage for stage, _ in reports] == [VOICE_STAGE] * 3
    assert [round(f, 2) for _, f in reports] == [0.0, round(524288 / len(x), 2), 1.0]
    np.testing.assert_array_equal(long, speech_probability(x))


def test_features_of_a_long_signal_say_how_far_they_are():
    """compute_features reports its progress (talkface.stages) on a signal longer than 30 s (the learned
    generator's heard jaw waits for them before the first frame), not on a short one."""
    from talkface import stages
    from talkface.audio.features import FEATURES_STAGE

    x = np.tile(synth_speech(5.0), 8)  # 40 s: four blocks
    reports = []
    with stages.listening(lambda stage, fraction: reports.append((stage, fraction))):
        compute_features(from_samples(x, 16000))
        compute_features(from_samples(x[: 16000 * 5], 16000))
    fractions = [f for stage, f in reports if stage == FEATURES_STAGE]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert len(fractions) == 5


def test_a_signal_asked_again_is_heard_once(monkeypatch):
    """recognize_phones, audio.music.voice_activity and the heard jaw all ask for the learned generator's
    whole audio: silero-vad runs once, also with other signals asked for between (a song's separated voice),
    up to vad.MEMO of them. Another signal, even one sample off, is heard afresh; callers get their own
    arrays."""
    from talkface.audio import vad

    heard = []
    work = vad._heard
    monkeypatch.setattr(vad, "_heard", lambda x: heard.append(len(x)) or work(x))
    monkeypatch.setattr(vad, "_memo", type(vad._memo)())
    x = synth_speech(3.0)
    first = vad.speech_probability(x)
    first[:] = -1.0  # the caller's array, not the memo's
    second = vad.speech_probability(x.copy())
    assert heard == [len(x)] and second.min() >= 0.0
    y = x.copy()
    y[1000] += 1e-3
    np.testing.assert_allclose(vad.speech_probability(y), second, atol=0.05)
    vad.speech_probability(x)
    assert heard == [len(x)] * 2
    vad.speech_probability(y[:16000], remember=False)  # heard, and not kept: x is still remembered
    vad.speech_probability(x)
    assert heard == [len(x)] * 2 + [16000]
    for k in range(vad.MEMO):  # as many others: x is forgotten
        vad.speech_probability(x[: 16000 + 512 * k])
    vad.speech_probability(x)
    assert len(heard) == 3 + vad.MEMO + 1 and heard[-1] == len(x)


def test_a_missing_voice_activity_model_is_a_clean_error(monkeypatch):
    from talkface.audio import vad

    monkeypatch.setattr(vad.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(TalkfaceError, match="silero-vad is not installed"):
        vad._model_path()


def test_video_frame_count_matches_duration():
    assert n_video_frames(10.0, 25) == 250
    assert n_video_frames(0.01, 25) == 1
    assert abs(n_video_frames(16.57466, 25) / 25 - 16.57466) <= 0.5 / 25
