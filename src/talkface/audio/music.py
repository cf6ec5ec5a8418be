"""Voice activity that hears a voice sung over music (offline: the whole signal at once).

silero-vad is trained to call music "not speech", and it often calls a voice sung over a band music too: on
the song multitalk_multi_2_1 of the shared audio set it hears the voice in 22 % of the 32-ms windows. Where a
voice is heard over what sounds like music (of the loud windows, silero-vad hears speech in at least
HEARD_SHARE and none in at least MUSIC_SHARE), the voice is first pulled out of the accompaniment by two
median-filter separations (FitzGerald 2010; Tachibana et al. 2010, "two-stage HPSS"), and silero-vad listens
to that as well:

1. long windows (128 ms, fine in frequency), median over 0.5 s in time: what holds its pitch that long (pads,
   chords, held instrument notes) is the accompaniment, the rest (the voice's vibrato and glides, the
   drums) goes on;
2. short windows (32 ms), medians over 136 ms in time and 530 Hz in frequency: the harmonic part of that is
   the voice, the broadband clicks are the drums.

The voice probability of a window is the larger of silero-vad's on the recording and on the separated voice
(the latter faded out below 0.5, to nothing at NOT_SPEECH): multitalk_multi_2_1 is heard in 53 % of its
windows. Instrumental music alone stays silent to it: a synthetic band, a lead line with vibrato, both
together. Speech seldom looks like a voice over music: of the 63 talking clips of the shared data none (the
singer reaches MUSIC_SHARE, but silero-vad hears no speech in it, separated or not); of its 96 recordings two
MultiTalk songs, a speaker with music under the second half, and two expressive voices
(vexpress_emo_talk_jocker, openvoice_demo_speaker1). Elsewhere the voice activity stays silero-vad's alone, to
the bit. A voice silero-vad hears nowhere (a synthetic test voice, a singer it takes for music throughout) is
left to the features' periodic-voice path: the separation adds next to nothing there. Live sessions hear
silero-vad alone: the separation needs a quarter second of audio past each frame.
"""

from __future__ import annotations

import numpy as np

from talkface import stages
from talkface.audio.load import SAMPLE_RATE
from talkface.audio.vad import WINDOW, speech_probability

MUSIC_SHARE = 0.3  # loud windows silero-vad does not hear as speech (< NOT_SPEECH), at least: music
NOT_SPEECH = 0.3
HEARD_SHARE = 0.1  # loud windows silero-vad does hear as speech (>= 0.5), at least: a voice is there
PIECE_S = 160 * WINDOW / SAMPLE_RATE  # 5.12 s: silero-vad heard from a fresh state this long at a time
LOUD_BELOW_DB = 15.0  # a loud window: within this of the recording's 95th-percentile window level
# The two separations: (window, hop, time median in hops, frequency median in bins).
ACCOMPANIMENT = (2048, 256, 31, 17)
DRUMS = (512, 128, 17, 17)
SEGMENT_S = 30.0  # separated this much at a time,
MARGIN_S = 1.0  # with this much more on either side (the filters reach 0.4 s)
SEPARATION_STAGE = "separating the voice from the music"  # the stage separated_voice reports


def voice_activity(samples: np.ndarray) -> np.ndarray:
    """Voice probability of a whole 16 kHz signal per vad.WINDOW samples, as speech_probability gives it,
    raised where a voice sings over music (see the module's doc)."""
    speech = speech_probability(samples)
    heard, unheard = loud_shares(samples, speech)
    if unheard < MUSIC_SHARE:
        return speech
    if heard < HEARD_SHARE:
        # Over a long song silero-vad's state settles on "music" and it stops hearing the voice at all (the
        # song multitalk_multi_2_1 looped: 22 % heard in its first 7 s, 0 % from the fourth loop on); heard
        # afresh every PIECE_S it hears 19 %.
        step = int(PIECE_S * SAMPLE_RATE)
        pieces = range(0, len(samples), step)
        fresh = [speech_probability(samples[i : i + step], remember=False) for i in pieces]
        heard, _ = loud_shares(samples, np.concatenate(fresh)[: len(speech)])
        if heard < HEARD_SHARE:
            return speech
    sung = speech_probability(separated_voice(samples))[: len(speech)]
    # Only what silero-vad is fairly sure of: its faint guesses on what the separation leaves of a band (up
    # to 0.27 on the validation singer's separated song, where it hears no voice at all) half-opened the
    # mouth, and made the singer's jaw follow hers worse (pre-render r 0.230 -> 0.217).
    sure = np.clip((sung - NOT_SPEECH) / (0.5 - NOT_SPEECH), 0.0, 1.0)
    return np.maximum(speech, sung * sure)


def loud_shares(samples: np.ndarray, speech: np.ndarray) -> tuple[float, float]:
    """Of the signal's loud vad windows (within LOUD_BELOW_DB of its 95th-percentile level), the shares whose
    speech probability is at least 0.5 (heard) and below NOT_SPEECH (not heard)."""
    n = len(speech)
    if n == 0:
        return 0.0, 0.0
    x = np.zeros(n * WINDOW, np.float32)
    x[: min(len(samples), len(x))] = samples[: len(x)]
    level = 10 * np.log10(np.mean(x.reshape(n, WINDOW) ** 2, 1) + 1e-10)
    loud = speech[level > np.percentile(level, 95) - LOUD_BELOW_DB]
    return float(np.mean(loud >= 0.5)), float(np.mean(loud < NOT_SPEECH))


def separated_voice(samples: np.ndarray, segment_s: float = SEGMENT_S) -> np.ndarray:
    """The voice of a 16 kHz song pulled out of its accompaniment and drums (same length), segment_s seconds
    at a time with MARGIN_S of the signal on either side (what the filters reach is well inside it), so that
    the memory it takes does not grow with the song (a 30-minute one whole: several GB)."""
    x = np.asarray(samples, np.float32)
    grid = ACCOMPANIMENT[1] * DRUMS[1] // np.gcd(ACCOMPANIMENT[1], DRUMS[1])  # segments start on both hops
    seg, margin = (max(1, round(s * SAMPLE_RATE / grid)) * grid for s in (segment_s, MARGIN_S))
    out = np.zeros_like(x)
    for start in range(0, len(x), seg):
        stages.report(SEPARATION_STAGE, start / len(x))
        a, b = max(0, start - margin), min(len(x), start + seg + margin)
        rest = _keep(x[a:b], *ACCOMPANIMENT, harmonic=False)
        voice = _keep(rest, *DRUMS, harmonic=True)
        out[start : start + seg] = voice[start - a : start - a + seg]
    stages.report(SEPARATION_STAGE, 1.0)
    return out


def _keep(x: np.ndarray, n: int, hop: int, in_time: int, in_freq: int, harmonic: bool) -> np.ndarray:
    """x's harmonic part (harmonic=True: what a time median keeps against a frequency median) or the rest,
    through a soft (Wiener) mask on its short-time spectrum."""
    from scipy.ndimage import median_filter  # a song's cost only: speech never gets here

    spec, frames = _stft(x, n, hop)
    mag = np.abs(spec)
    h = median_filter(mag, size=(in_time, 1)) ** 2
    p = median_filter(mag, size=(1, in_freq)) ** 2
    mask = h / (h + p + 1e-12)
    return _istft(spec * (mask if harmonic else 1.0 - mask), n, hop, frames, len(x))


def _stft(x: np.ndarray, n: int, hop: int) -> tuple[np.ndarray, int]:
    pad = np.concatenate([np.zeros(n // 2, np.float32), np.asarray(x, np.float32), np.zeros(n, np.float32)])
    frames = (len(pad) - n) // hop + 1
    view = np.lib.stride_tricks.sliding_window_view(pad, n)[::hop][:frames]
    return np.fft.rfft(view * np.hanning(n).astype(np.float32), axis=1), frames


def _istft(spec: np.ndarray, n: int, hop: int, frames: int, length: int) -> np.ndarray:
    """Overlap-add of the frames of `spec`: the analysis window again, over the sum of its squares."""
    w = np.hanning(n)
    y = np.zeros((frames - 1) * hop + n)
    norm = np.zeros_like(y)
    pieces = np.fft.irfft(spec, n, axis=1) * w
    for i in range(frames):
        y[i * hop : i * hop + n] += pieces[i]
        norm[i * hop : i * hop + n] += w**2
    y = y / np.maximum(norm, 1e-8)
    return y[n // 2 : n // 2 + length].astype(np.float32)
