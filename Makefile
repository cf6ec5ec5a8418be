# One command sets everything up and runs the job: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
EVALSTAMP := $(VENV)/.installed-eval
TRAINSTAMP := $(VENV)/.installed-train
RAYSTAMP := $(VENV)/.installed-ray
PIPECATSTAMP := $(VENV)/.installed-pipecat
LIVEKIT := .venv-livekit
LIVEKITSTAMP := $(LIVEKIT)/.installed
DATA ?= ../shared/data/talking

.PHONY: demo test lint eval bench train clean browser

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(DEVSTAMP): $(STAMP) requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -r requirements-dev.lock
	touch $@

# Evaluation-only tools (dlib's face embedding for identity_dist); never needed at run time.
$(EVALSTAMP): $(STAMP) requirements-eval.lock
	$(BIN)/pip install --quiet --no-deps -r requirements-eval.lock
	touch $@

# Optional: Ray for `talkface batch --ray` (the tests run a local Ray instance).
$(RAYSTAMP): $(STAMP) requirements-ray.lock
	$(BIN)/pip install --quiet --no-deps -r requirements-ray.lock
	touch $@

# Optional: the Pipecat integration (talkface.integrations.pipecat, examples/pipecat_bot.py).
$(PIPECATSTAMP): $(STAMP) requirements-pipecat.lock
	$(BIN)/pip install --quiet --no-deps -r requirements-pipecat.lock
	touch $@

# Optional: the LiveKit Agents integration, in an environment of its own (protobuf >= 5.29 for LiveKit, < 5 for
# mediapipe): see requirements-livekit.lock.
$(LIVEKITSTAMP): requirements-livekit.lock pyproject.toml
	$(PYTHON) -m venv $(LIVEKIT)
	$(LIVEKIT)/bin/pip install --quiet --no-deps -r requirements-livekit.lock
	$(LIVEKIT)/bin/pip install --quiet --no-deps -e .
	touch $@

# Training-only tools (torch, CPU build); never needed at run time.
$(TRAINSTAMP): $(STAMP) requirements-train.lock
	$(BIN)/pip install --quiet --no-deps -r requirements-train.lock
	touch $@

demo: $(STAMP)
	$(BIN)/talkface demo

# tests/test_browser.py drives Debian's chromium (playwright never downloads one): install it when we may.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
	    || echo "chromium could not be installed: the browser test will be skipped"; \
	  else echo "chromium is missing and needs root to install: the browser test will be skipped"; fi; }

test: $(DEVSTAMP) $(EVALSTAMP) $(RAYSTAMP) $(PIPECATSTAMP) $(LIVEKITSTAMP) browser
	$(BIN)/pytest

lint: $(DEVSTAMP)
	$(BIN)/ruff check src tests training
	$(BIN)/ruff format --check src tests training

eval: $(EVALSTAMP)
	@if [ -d "$(DATA)" ]; then $(BIN)/talkface eval $(DATA) --report reports/eval; \
	else echo "no evaluation data at $(DATA) (set DATA=...)"; fi

# Retrain the learned motion generator on the train split (8 min of training on 2 cores, plus tracking the
# clips and recognising their phones on the first run), export it to src/talkface/assets/motion_model.{onnx,json},
# fit its mouth filters (offline, and live on phones recognised as audio streams in), the heard jaw (a phone
# network trained on synthetic espeak-ng speech, 8 h made and 20 + 30 min of training on the first run (a net that
# hears 70 ms ahead, for live sessions, and one that hears 190 ms ahead, offline), fine-tuned on the real jaws:
# src/talkface/assets/heard_jaw_live.onnx and heard_jaw.onnx; their stacks with the mouth filters offline and live are fitted
# on the out-of-fold jaws of the fold nets it writes to reports/viseme_net_folds/) and blink process and
# calibrate its head range into the json (5 minutes), then the rule generator's brow and mouth filters; the training curve goes to reports/learned_motion/. The jaw and head gains, the blink widths' stretch (export.py --calibrate) and the jaw curve (training/learned_motion/jaw_curve.py) need an eval of the train split; they live in the json's calibration, which retraining keeps.
train: $(TRAINSTAMP)
	@if [ -d "$(DATA)" ]; then $(BIN)/python -m training.learned_motion.train $(DATA)/.. \
	  && $(BIN)/python -m training.learned_motion.mouth $(DATA)/.. \
	  && ( [ -f reports/viseme_net_cache/model.pt ] \
	       || ( $(BIN)/python -m training.viseme_net.data --hours 5 --workers 2 \
	            && $(BIN)/python -m training.viseme_net.data --hours 3.5 --first 1000000 --workers 2 \
	            && $(BIN)/python -m training.viseme_net.train --minutes 20 --threads 2 ) ) \
	  && ( [ -f reports/viseme_net_cache/model_wide.pt ] \
	       || $(BIN)/python -m training.viseme_net.train --wide --minutes 30 --threads 2 ) \
	  && $(BIN)/python -m training.viseme_net.finetune $(DATA)/.. --fold-models reports/viseme_net_folds \
	  && $(BIN)/python -m training.learned_motion.live_mouth $(DATA)/.. \
	  && $(BIN)/python -m training.viseme_net.live_stack $(DATA)/.. --folds reports/viseme_net_folds \
	  && $(BIN)/python -m training.learned_motion.blinks $(DATA)/.. \
	  && $(BIN)/python -m training.learned_motion.export --calibrate-outputs $(DATA)/.. \
	  && $(BIN)/python -m training.fit_brows $(DATA)/.. \
	  && $(BIN)/python -m training.fit_rules_mouth $(DATA)/..; \
	else echo "no training data at $(DATA) (set DATA=.../talking)"; exit 1; fi

bench: $(STAMP)
	$(BIN)/talkface bench --json

clean:
	rm -rf $(VENV) $(LIVEKIT) out
