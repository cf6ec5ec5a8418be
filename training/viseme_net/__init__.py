r"""A small phone/viseme network trained on synthetic speech (espeak-ng, exact timings), tested as a
phonetic front-end for the learned mouth (issue 16). Training code only: the runtime never imports it. As a
front-end it did not beat pocketsphinx on real speech (below); fine-tuned on the real jaws and stacked with
the phones' filter it does, and that ships as the heard jaw (finetune.py, calibrate.py; audio.heard_jaw),
offline and, on a running mean level, live (live_stack.py; audio.heard_jaw.LiveHeardJaw).

What was measured (speaker-disjoint 4-fold cross-validation on the 43 real train clips, all 5 audio
variants, mean per-clip r of the ridge mouth filter's jaw with the real jaw, as
training/learned_motion/mouth.py; evaluate.py):

- pocketsphinx's viseme targets (what ships): 0.362
- this network's viseme targets: 0.342 (worse on 25 of 43 clips), 0.337 with 12.5 h of training speech
- both side by side: 0.377 (+0.015 +- 0.010 per clip), 0.375 with the 12.5-h model: too little for a second
  model to ship and maintain
- live (live_compare.py, past 5 frames): the shipped live filter (pocketsphinx's guesses + cues, 80 ms past
  the frame's end) 0.291; this network 0 / 1 / 2 frames ahead (70 / 110 / 150 ms) 0.255 / 0.303 / 0.327: a tie
  at equal latency, and it normalises log-mel by the whole clip's mean (live_stack.py's running mean is the
  live form: the fine-tuned net stacked with the live filters lifts them to 0.331, and 0.253 -> 0.315 one
  frame ahead).

On synthetic validation speech it reaches 0.80 class accuracy (18 viseme classes) and jaw r 0.81; more
synthetic speech (4.5 -> 7.9 -> 12.5 h) kept improving that and stopped improving real speech: the gap is
synthetic-to-real, not data size.

Data (data.py, text.py): espeak-ng utterances, about 65 % English (10 accents) and 35 % 27 other Latin-script
languages, 66 voice variants, 120-250 wpm, random pitch; random words from a vocabulary covering every mouth
shape and pseudo-words; augmented (speed 0.85-1.15 with the timings scaled, EQ, low/high-pass, reverb RT60
0.1-0.8 s, saturation, espeak babble at 12-25 dB SNR, white/pink/brown/hum noise at 5-30 dB, level -30..-1
dBFS, slow level changes). Labels per 10-ms frame: the VisemeTrack targets of the exact phonemes and one of 18
viseme classes. Features: the runtime's compute_features. Model (model.py): a 1-D residual conv net, 218k
parameters, 0.65 s of past and 70 ms ahead (live); model.WIDE, 0.53 s of past and 190 ms ahead, starts the
offline heard jaw (train.py --wide; on the folds the fine-tuned net alone 0.403 against 0.328-0.334).

    .venv/bin/python -m training.viseme_net.data --hours 5 --workers 2
    .venv/bin/python -m training.viseme_net.data --hours 3.5 --first 1000000 --workers 2
    .venv/bin/python -m training.viseme_net.train --minutes 20 --threads 2 --out reports/viseme_net_cache/run2
    M=reports/viseme_net_cache/run2/model.pt
    .venv/bin/python -m training.viseme_net.evaluate ../shared/data --model $M
    .venv/bin/python -m training.viseme_net.live_compare ../shared/data --model $M
"""
