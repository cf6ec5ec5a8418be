"""Visemes from phoneme timings, with coarticulation.

Each phoneme (an espeak-ng mnemonic; other sources map to the same symbols) has a mouth target
(jaw_open, lip_round, lip_spread) and a dominance: how strongly it holds the mouth against its neighbours.
The mouth at time t is the dominance-weighted mean of the targets of nearby phonemes (Cohen & Massaro's
coarticulation model): bilabials close the lips even between open vowels, velars and /h/ take the shape of
their neighbours, and nothing snaps from one shape to the next.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from talkface.motion.contract import Phoneme

# (jaw_open, lip_round, lip_spread, dominance, reach in seconds)
_OPEN = (0.55, 0.0, 0.1, 1.0, 0.07)
_MID_FRONT = (0.35, 0.0, 0.4, 1.0, 0.07)
_CLOSE_FRONT = (0.15, 0.0, 0.6, 1.0, 0.07)
_FRONT_ROUND = (0.2, 0.7, 0.0, 1.0, 0.07)
_MID_BACK = (0.35, 0.7, 0.0, 1.0, 0.08)
_CLOSE_BACK = (0.15, 0.9, 0.0, 1.0, 0.08)
_CENTRAL = (0.3, 0.0, 0.0, 0.7, 0.06)
_BILABIAL = (0.0, 0.0, 0.0, 4.0, 0.035)
_LABIODENTAL = (0.06, 0.0, 0.15, 2.5, 0.035)
_DENTAL = (0.15, 0.0, 0.1, 0.8, 0.04)
_ALVEOLAR = (0.12, 0.0, 0.15, 0.5, 0.04)
_SIBILANT = (0.08, 0.0, 0.3, 1.2, 0.04)
_POSTALVEOLAR = (0.12, 0.5, 0.0, 1.2, 0.045)
_VELAR = (0.2, 0.0, 0.0, 0.25, 0.04)
_RHOTIC = (0.15, 0.3, 0.0, 0.6, 0.05)
_GLIDE_W = (0.12, 0.9, 0.0, 1.5, 0.05)
_GLIDE_J = (0.12, 0.0, 0.5, 0.8, 0.05)
_PAUSE = (0.0, 0.0, 0.0, 1.5, 0.06)

_BY_SYMBOL = {
    "p": _BILABIAL, "b": _BILABIAL, "m": _BILABIAL, "B": _BILABIAL, "F": _LABIODENTAL,
    "f": _LABIODENTAL, "v": _LABIODENTAL, "T": _DENTAL, "D": _DENTAL,
    "t": _ALVEOLAR, "d": _ALVEOLAR, "n": _ALVEOLAR, "l": _ALVEOLAR, "L": _ALVEOLAR, "4": _ALVEOLAR,
    "s": _SIBILANT, "z": _SIBILANT, "ts": _SIBILANT, "dz": _SIBILANT,
    "S": _POSTALVEOLAR, "Z": _POSTALVEOLAR, "tS": _POSTALVEOLAR, "dZ": _POSTALVEOLAR, "C": _POSTALVEOLAR,
    "k": _VELAR, "g": _VELAR, "N": _VELAR, "x": _VELAR, "X": _VELAR, "h": _VELAR, "?": _VELAR, "Q": _VELAR,
    "r": _RHOTIC, "R": _RHOTIC, "*": _RHOTIC, "w": _GLIDE_W, "W": _FRONT_ROUND, "j": _GLIDE_J, "J": _GLIDE_J,
    "a": _OPEN, "A": _OPEN, "&": _OPEN, "aI": _OPEN, "aU": _OPEN, "Au": _OPEN, "ai": _OPEN,
    "e": _MID_FRONT, "E": _MID_FRONT, "eI": _MID_FRONT, "ei": _MID_FRONT,
    "i": _CLOSE_FRONT, "I": _CLOSE_FRONT,
    "y": _FRONT_ROUND, "Y": _FRONT_ROUND, "2": _FRONT_ROUND, "9": _FRONT_ROUND,
    "o": _MID_BACK, "O": _MID_BACK, "0": _MID_BACK, "oU": _MID_BACK, "OI": _MID_BACK, "ou": _MID_BACK,
    "u": _CLOSE_BACK, "U": _CLOSE_BACK,
    "@": _CENTRAL, "3": _CENTRAL, "V": _CENTRAL, "a#": _CENTRAL, "@L": _CENTRAL, "1": _CENTRAL, "8": _CENTRAL,
}  # fmt: skip


def viseme_of(symbol: str) -> tuple[float, float, float, float, float]:
    """(jaw_open, lip_round, lip_spread, dominance, reach_s) for a phoneme symbol. Stress marks, length
    marks and diacritics are ignored; unknown symbols are treated as a neutral, weak consonant."""
    if symbol.startswith("_"):
        return _PAUSE
    s = symbol.lstrip("',").replace(":", "")
    for candidate in (s, s.rstrip("#-~;\\."), s[:2], s[:1]):
        if candidate in _BY_SYMBOL:
            return _BY_SYMBOL[candidate]
    return _VELAR


class VisemeTrack:
    """The mouth of one phoneme sequence at any times: the phonemes' targets, dominances and spans are
    prepared once, so a stream that asks for a few frames at a time does not redo them per call."""

    def __init__(self, phonemes: Sequence[Phoneme]):
        self.empty = not phonemes
        if self.empty:
            return
        starts = np.array([p.start for p in phonemes])
        ends = np.array([p.end for p in phonemes])
        table = np.array([viseme_of(p.symbol) for p in phonemes])  # (P, 5)
        centres = (starts + ends) / 2
        order = np.argsort(centres)
        self.first_start, self.last_end = float(starts[0]), float(ends[-1])
        self.centres = centres[order]
        self.half = np.maximum((ends - starts) / 2, 1e-3)[order]
        self.table = table[order]

    def __call__(self, times: np.ndarray) -> np.ndarray:
        """Mouth coefficients (jaw_open, lip_round, lip_spread) at `times` (seconds), (len(times), 3)."""
        times = np.asarray(times, np.float64)
        if self.empty:
            return np.zeros((len(times), 3))
        num = np.zeros((len(times), 3))
        # Rest before and after the speech, as a weak pause target.
        den = 0.05 * ((times < self.first_start) | (times > self.last_end)).astype(float)
        window = 0.4  # s: phonemes further away than this do not influence t
        # Blocks of times, so long inputs stay bounded.
        for lo in range(0, len(times), 4096):
            t = times[lo : lo + 4096]
            first = np.searchsorted(self.centres, t.min() - window)
            last = np.searchsorted(self.centres, t.max() + window)
            c, h, tab = self.centres[first:last], self.half[first:last], self.table[first:last]
            if len(c) == 0:
                continue
            # Dominance: flat over the phoneme's own span, then an exponential fall-off over its reach.
            dist = np.maximum(np.abs(t[:, None] - c[None, :]) - h[None, :], 0.0)
            dom = tab[None, :, 3] * np.exp(-dist / tab[None, :, 4])
            num[lo : lo + len(t)] = dom @ tab[:, :3]
            den[lo : lo + len(t)] += dom.sum(1)
        return num / np.maximum(den, 1e-9)[:, None]


def viseme_targets(phonemes: Sequence[Phoneme], times: np.ndarray) -> np.ndarray:
    """Mouth coefficients (jaw_open, lip_round, lip_spread) at `times` (seconds), shape (len(times), 3).
    Before the first and after the last phoneme the mouth rests (closed). (VisemeTrack for repeated calls.)"""
    return VisemeTrack(phonemes)(times)
