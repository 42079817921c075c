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


@pytest.fixture(scope="session")
def replying_tiny_model_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """The tiny model rewired so its greedy answer to any chat prompt is ``OK`` and end of turn.

    A random model never ends its turn within a short budget, and a cut-off reply earns no reward
    (issue 14 item 6), so it can master nothing. Here the layers are scaled down until each
    position's state is mostly its own token's embedding, and the output head maps the generation
    prompt's last token ("\\n") to "OK" and "OK" to ``<|im_end|>``; what is left of the layers makes
    the perplexity differ a little between prompts. It never emits a call.
    """
    import torch

    from looptool.models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(tiny_model_dir)
    newline, ok = tokenizer.encode("\n")[-1], tokenizer.encode("OK")[0]
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.mul_(0.05)
            layer.mlp.down_proj.weight.mul_(0.05)
        embed = model.model.embed_tokens.weight
        unit = lambda v: v / v.norm()  # noqa: E731
        # After the final RMSNorm a state has norm ~sqrt(hidden); a logit of ~12 at the intended
        # token gives it p ~ 0.5 against the 49k others at 0.
        scale = 12.0 / embed.shape[1] ** 0.5
        head = torch.zeros_like(embed)
        head[ok] = scale * unit(embed[newline])
        head[end] = scale * unit(embed[ok])
        model.config.tie_word_embeddings = False  # the head gets weights of its own
        model.lm_head.weight = torch.nn.Parameter(head)
    out = tmp_path_factory.mktemp("replying-tiny-llama")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
