"""The learned generator's blink process (motion.blinks): the hazard's refractory period, streaming in any
chunks, and the shipped fit blinking like people in conversation."""

from __future__ import annotations

import numpy as np

from talkface.motion.blinks import BlinkModel, BlinkTrack, blinks_per_minute
from talkface.motion.learned import load_model


def _model(bias: float = -3.0) -> BlinkModel:
    return BlinkModel(
        fps=25.0,
        refractory=6,
        edges=np.array([12, 25]),
        weights=np.array([bias, 0.5, 1.0, -0.5]),
        profile=np.array([0.7, 1.0, 0.8, 0.3, 0.1]),
        widths=np.array([0.7, 1.0, 1.5]),
    )


def test_hazard_terms():
    m = _model()
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    assert m.hazard(None) == sig(-2.5)
    assert m.hazard(5) == 0.0  # within the refractory period
    assert m.hazard(6) == sig(-3.0)
    assert m.hazard(12) == sig(-2.0)
    assert m.hazard(30) == sig(-2.5)


def test_each_blink_shuts_fully_and_has_the_profile_shape():
    m = _model()
    for level in (0.0, 0.5, 1.0):
        p = m.shape(level)
        assert p.max() == 1.0 and p[0] > 0.5 and p[-1] < 0.2
    assert len(m.shape(0.0)) < len(m.shape(0.5)) < len(m.shape(1.0))


def test_blinks_carry_over_from_one_call_to_the_next():
    """LearnedStream asks for one 4-frame window at a time: a blink that starts near the end of a window
    must finish in the next ones, with the whole profile, and none starts within the refractory period."""
    m = _model(bias=-1.5)
    track = BlinkTrack(m)
    lids = np.concatenate([track(4, np.random.default_rng([0, k])) for k in range(200)])
    starts = np.flatnonzero((lids > 0) & ~np.r_[False, lids[:-1] > 0])
    assert len(starts) > 10 and np.diff(starts).min() >= m.refractory
    late = [s for s in starts if s % 4 >= 2 and s + 4 < len(lids)]
    assert late  # blinks that start in the last frames of a call
    for s in late:
        seen = lids[s : s + 4]
        assert seen.max() == 1.0 and seen[-1] > 0.1, (s, seen)  # shut, and still reopening past the call


def test_shipped_process_blinks_like_a_speaker_in_conversation():
    """The fit to the train split's real blinks (speakers weighted equally): people blink 26 times a minute
    in conversation (Bentivoglio 1997; 95 % of people 10.5-32.5, Doughty 2001), with intervals spread
    over a log-normal-like range, and each blink is brief."""
    _, meta = load_model()
    m = meta.blinks
    assert m is not None
    assert 15.0 < blinks_per_minute(m) < 33.0
    lids = BlinkTrack(m)(25 * 600, np.random.default_rng(1))
    shut = lids >= 1.0
    starts = np.flatnonzero(shut & ~np.r_[False, shut[:-1]])
    gaps = np.diff(starts) / m.fps
    assert np.percentile(gaps, 10) < 1.0 < np.percentile(gaps, 90) < 6.0
    closed = lids > 0.5
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, closed.astype(int), 0])))[::2] / m.fps
    assert np.median(runs) <= 0.2 and runs.max() < 0.5
