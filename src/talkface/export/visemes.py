"""Oculus' 15 visemes (OVRLipSync, also read by Ready Player Me and TalkingHead avatars) per frame.

The weights come from the same phonemes and the same coarticulation model that shape our mouth
(motion.visemes: each phoneme holds the mouth with its dominance, falling off over its reach), gathered per
viseme class instead of per mouth coefficient: at each frame the weights are the shares of the phonemes'
dominance, so they sum to 1, as OVRLipSync's do. Before, between (pauses) and after the phonemes, and
wherever voice activity detection hears no speech (a phone recogniser hears phones in noise), `sil` takes
the weight.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from talkface.motion.contract import Phoneme
from talkface.motion.visemes import viseme_of

OCULUS_VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
LIP_LEAD_S = 0.04  # s: frame i shows the phonemes 40 ms after its time (lips lead the voice, as the motion's)
REST_WEIGHT = 0.05  # sil's dominance outside the phonemes (as motion.visemes' resting mouth)
WINDOW_S = 0.4  # phonemes further than this from a frame do not influence it
GATE_S = 0.08  # s: outside speech, sil takes over within this long

# espeak-ng mnemonics (other phoneme sources are mapped to them, motion.contract.Phoneme) -> viseme.
_CLASS = {
    "PP": "p b m B",
    "FF": "f v F",
    "TH": "T D",
    "DD": "t d 4 *",
    "kk": "k g N x X h ? Q",
    "CH": "S Z tS dZ C J",
    "SS": "s z ts dz",
    "nn": "n l L",
    "RR": "r R 3",
    "aa": "a A & aI aU Au ai V a#",
    "E": "e E eI ei @ @L 1 8",
    "ih": "i I j",
    "oh": "o O 0 oU OI ou",
    "ou": "u U w W y Y 2 9",
}
VISEME_OF = {symbol: name for name, symbols in _CLASS.items() for symbol in symbols.split()}


def oculus_viseme(symbol: str) -> str:
    """The Oculus viseme of a phoneme symbol ("sil" for a pause); stress, length marks and diacritics are
    ignored, and an unknown symbol counts as kk (a consonant that takes its neighbours' shape)."""
    if symbol.startswith("_"):
        return "sil"
    s = symbol.lstrip("',").replace(":", "")
    for candidate in (s, s.rstrip("#-~;\\."), s[:2], s[:1]):
        if candidate in VISEME_OF:
            return VISEME_OF[candidate]
    return "kk"


def viseme_weights(
    phonemes: Sequence[Phoneme], n_frames: int, fps: float, speaking: np.ndarray | None = None
) -> np.ndarray:
    """Weights of OCULUS_VISEMES per video frame, shape (n_frames, 15) float32, each row summing to 1. Frame i
    shows the phonemes at (i + 0.5) / fps + LIP_LEAD_S seconds. speaking: (n_frames,) bool, the frames within
    speech (voice activity): outside it sil takes over, eased over GATE_S."""
    out = _weights(phonemes, n_frames, fps)
    if speaking is not None and n_frames:
        k = max(1, int(round(GATE_S * fps)))
        gate = np.convolve(np.pad(speaking.astype(float), k // 2, mode="edge"), np.ones(k) / k, mode="valid")
        gate = gate[:n_frames, None]
        out = gate * out + (1 - gate) * np.eye(len(OCULUS_VISEMES))[0]
    return out.astype(np.float32)


def _weights(phonemes: Sequence[Phoneme], n_frames: int, fps: float) -> np.ndarray:
    times = (np.arange(n_frames) + 0.5) / fps + LIP_LEAD_S
    out = np.zeros((n_frames, len(OCULUS_VISEMES)))
    out[:, 0] = 1.0
    if not phonemes or n_frames == 0:
        return out
    starts = np.array([p.start for p in phonemes])
    ends = np.array([p.end for p in phonemes])
    classes = np.array([OCULUS_VISEMES.index(oculus_viseme(p.symbol)) for p in phonemes])
    table = np.array([viseme_of(p.symbol) for p in phonemes])  # (P, 5): ..., dominance, reach
    centres, half = (starts + ends) / 2, np.maximum((ends - starts) / 2, 1e-3)
    onehot = np.eye(len(OCULUS_VISEMES))[classes]  # (P, 15)
    order = np.argsort(centres)
    centres, half, table, onehot = centres[order], half[order], table[order], onehot[order]
    outside = (times < starts.min()) | (times > ends.max())
    for lo in range(0, n_frames, 4096):
        t = times[lo : lo + 4096]
        first = np.searchsorted(centres, t.min() - WINDOW_S)
        last = np.searchsorted(centres, t.max() + WINDOW_S)
        dist = np.maximum(np.abs(t[:, None] - centres[None, first:last]) - half[None, first:last], 0.0)
        dom = table[None, first:last, 3] * np.exp(-dist / table[None, first:last, 4])  # (t, P)
        dom[dist > WINDOW_S] = 0.0
        w = dom @ onehot[first:last]
        w[:, 0] += REST_WEIGHT * outside[lo : lo + 4096]
        total = w.sum(1, keepdims=True)
        w = np.where(total > 1e-9, w / np.maximum(total, 1e-12), np.eye(len(OCULUS_VISEMES))[0])
        out[lo : lo + len(t)] = w
    return out


def visemes_json(weights: np.ndarray, fps: float, duration: float) -> str:
    """{"format": "oculus-visemes", "fps", "duration", "names" (15), "frames": [{"time", "weights" (15)}]}."""
    frames = [
        {"time": round(i / fps, 4), "weights": [round(float(v), 4) for v in row]}
        for i, row in enumerate(weights)
    ]
    doc = {
        "format": "oculus-visemes",
        "fps": fps,
        "duration": round(duration, 4),
        "names": list(OCULUS_VISEMES),
        "frames": frames,
    }
    return json.dumps(doc, separators=(",", ":")) + "\n"
