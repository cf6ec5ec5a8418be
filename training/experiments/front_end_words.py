"""Front-end experiment (issue 16): pocketsphinx allphone (what audio.phones uses) against word recognition
(pocketsphinx's en-us language model) followed by forced alignment of its own hypothesis (audio.align),
judged by the learned viseme mouth filter's speaker-disjoint cross-validation on the train split (orig audio).

Measured on the 43 train clips: jaw r 0.362 with allphone, 0.333 with words + alignment (the hypotheses are
poor on this material, and the alignment then forces wrong words); allphone stays. About 25 minutes of
decoding on two loaded cores; decoded visemes are cached in reports/ (derived from the clips: never commit).

    .venv/bin/python -m training.experiments.front_end_words ../shared/data
"""

import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import pocketsphinx

from talkface.audio.align import align_transcript
from talkface.audio.load import load_audio
from talkface.audio.phones import recognize_phones
from talkface.errors import TalkfaceError
from talkface.motion.learned import MODEL_FPS
from talkface.motion.visemes import viseme_targets
from training.learned_motion import mouth as M
from training.learned_motion.dataset import build_all

DATA = Path(sys.argv[1])
MODEL = Path(pocketsphinx.__file__).parent / "model" / "en-us"
dec = pocketsphinx.Decoder(
    loglevel="FATAL",
    hmm=str(MODEL / "en-us"),
    lm=str(MODEL / "en-us.lm.bin"),
    dict=str(MODEL / "cmudict-en-us.dict"),
)
out = Path("reports/front_end_words.json")
out.parent.mkdir(exist_ok=True)
cache = json.loads(out.read_text()) if out.exists() else {}
clips = [c for c in build_all(DATA) if c.talking]
paths = {p.stem: p for p in (DATA / "talking").iterdir()}
t0 = time.time()
for c in clips:
    if c.name in cache:
        continue
    a = load_audio(str(paths[c.name]))
    pcm = (np.clip(a.samples, -1, 1) * 32767).astype(np.int16)
    dec.start_utt()
    dec.process_raw(pcm.tobytes(), full_utt=True)
    dec.end_utt()
    hyp = dec.hyp().hypstr if dec.hyp() else ""
    words = [w for w in hyp.split() if not w.startswith("<")]
    try:
        ph = align_transcript(a, " ".join(words)) if words else ()
        how = "aligned"
    except TalkfaceError as e:
        ph, how = recognize_phones(a), f"fallback: {e}"
    n = len(c.motion["orig"])
    vis = viseme_targets(ph, (np.arange(n) + 0.5) / MODEL_FPS)
    cache[c.name] = {"hyp": hyp, "how": how, "vis": vis.round(4).tolist()}
    out.write_text(json.dumps(cache))
    print(f"{c.name}: {how[:60]} | {hyp[:80]}", flush=True)
print("decoded in", time.time() - t0)


# swap the viseme part of the cues, CV both
def cv(clipset):
    return M.cross_validate(clipset, 4)["summary"]


base = [copy.copy(c) for c in clips]
for c in base:
    c.cues = {"orig": c.cues["orig"]}
words = [copy.copy(c) for c in clips]
for c in words:
    cu = c.cues["orig"].copy()
    cu[:, -3:] = np.asarray(cache[c.name]["vis"])[: len(cu)]
    c.cues = {"orig": cu}
print("allphone", cv(base))
print("words+align", cv(words))
