# One command sets everything up and runs the job: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: demo test lint eval bench clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(DEVSTAMP): $(STAMP) requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -r requirements-dev.lock
	touch $@

demo: $(STAMP)
	$(BIN)/talkface demo

test: $(DEVSTAMP)
	$(BIN)/pytest

lint: $(DEVSTAMP)
	$(BIN)/ruff check src tests training
	$(BIN)/ruff format --check src tests training

bench: $(STAMP)
	$(BIN)/talkface bench --json

clean:
	rm -rf $(VENV) out
