"""Shared fixtures. The tiny model is built once per test session (a few seconds after the
~15 s GGUF tokenizer conversion) and reused by every test that needs a model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Tests never reach a model hub; everything comes from installed packages or is built here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """The SmolLM2 tokenizer converted from the embedded GGUF, with LoopTool's template and pad."""
    from looptool.models import load_gguf_tokenizer, prepare_tokenizer

    return prepare_tokenizer(load_gguf_tokenizer(), "looptool")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smollm2_tokenizer) -> Path:
    """A random ~3M-parameter Llama with the SmolLM2 tokenizer, saved as a HF checkpoint."""
    from looptool.models import build_tiny_llama

    out = tmp_path_factory.mktemp("tiny-llama")
    build_tiny_llama(out, tokenizer=smollm2_tokenizer)
    return out
