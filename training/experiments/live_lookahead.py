"""How far ahead must a live mouth look (issue 18's 100 ms)? Ridge filters on the rules' causal acoustic cues
computed at 100 Hz (10-ms steps, no 40-ms frame pooling), past 200 ms, ahead A ms from the frame's centre;
speaker-disjoint 4-fold CV on the train split; r of the jaw at the 25-fps frame centres with the real jaw.

Measured on the 43 train clips: ahead 0/20/40/60/80 ms -> r 0.199/0.226/0.247/0.260/0.266, against the
rules' mouth (120 ms of look-ahead) 0.241 and the 25-fps pooled filter at 80 ms 0.257.

    .venv/bin/python -m training.experiments.live_lookahead ../shared/data
"""

import sys
from pathlib import Path

import numpy as np

from talkface.audio.features import compute_features
from talkface.audio.load import load_audio
from talkface.motion.cues import MouthCues, held_ends, window_rows
from training.learned_motion.dataset import build_all
from training.learned_motion.mouth import _r, ridge_filter, speaker_order

DATA = Path(sys.argv[1])
clips = [c for c in build_all(DATA) if c.talking]
paths = {p.stem: p for p in (DATA / "talking").iterdir()}
cues = {}
for c in clips:
    f = compute_features(load_audio(paths[c.name]))  # 100 Hz
    cues[c.name] = MouthCues(f.rate)(f)


def rows(c, past, ahead):
    """Input windows at each 25-fps frame's centre, (n, 6 * span), and the real jaw (n, 1)."""
    x, n = cues[c.name], len(c.motion["orig"])
    # frame j's centre at (j + 0.5) / 25 s is 100-Hz index 4j + 2 (feature i covers [i/100, (i+1)/100))
    idx = np.clip(4 * np.arange(n) + 2, 0, len(x) - 1)
    return window_rows(held_ends(x, past, ahead), past + 1 + ahead)[idx], c.motion["orig"][:, :1]


order = speaker_order(clips)
for past, ahead in [(20, 0), (20, 2), (20, 4), (20, 6), (20, 8), (30, 4)]:
    rs = []
    for k in range(4):
        held = set(order[k::4])
        fitted = [rows(c, past, ahead) for c in clips if c.speaker not in held]
        f = ridge_filter(*(np.concatenate(z) for z in zip(*fitted, strict=True)), past, ahead, 0.1)
        for c in clips:
            if c.speaker in held:
                x, real = rows(c, past, ahead)
                rs.append(_r(f.of_windows(x)[:, 0], real[:, 0]))
    print(
        f"100 Hz past {past * 10} ms ahead {ahead * 10} ms: CV jaw r {np.nanmean(rs):.3f} ({len(rs)} clips)",
        flush=True,
    )
