"""Samples -> the datasets TRL trains on, with every problem found before training starts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looptool.chat import check_chat_template, sample_completion, sample_prompt
from looptool.io import DataError, read_jsonl
from looptool.schema import Sample, label_to_json


class TrainingInputError(ValueError):
    """The training inputs are unusable; raised before any training time is spent."""


def load_samples(path: str | Path) -> list[Sample]:
    """All samples of a JSONL file; a malformed or empty row is an error naming file and line."""
    path = Path(path)
    try:
        samples = read_jsonl(path, Sample.from_dict)
    except DataError as err:
        raise TrainingInputError(f"training data {err}") from None
    if not samples:
        raise TrainingInputError(f"training data {path} holds no samples")
    return samples


@dataclass
class PromptStats:
    kept: int
    too_long: int
    max_prompt_tokens: int


def sft_rows(samples: list[Sample], tokenizer: Any) -> list[dict[str, str]]:
    """Prompt/completion pairs: TRL computes the loss on the completion tokens only."""
    check_chat_template(tokenizer)
    return [{"prompt": sample_prompt(tokenizer, s), "completion": sample_completion(tokenizer, s)} for s in samples]


def grpo_rows(samples: list[Sample], tokenizer: Any, max_prompt_length: int | None) -> tuple[list[dict[str, str]], PromptStats]:
    """Prompt + label rows for GRPO. Prompts longer than ``max_prompt_length`` tokens are left out
    (and counted) rather than truncated: a cut-off tool list would teach calls to unseen tools."""
    check_chat_template(tokenizer)
    rows, too_long, longest = [], 0, 0
    for sample in samples:
        prompt = sample_prompt(tokenizer, sample)
        n_tokens = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        longest = max(longest, n_tokens)
        if max_prompt_length and n_tokens > max_prompt_length:
            too_long += 1
            continue
        rows.append({"prompt": prompt, "label": json.dumps(label_to_json(sample.label)), "sample_id": sample.id})
    if not rows:
        raise TrainingInputError(
            f"all {len(samples)} samples have prompts longer than max_prompt_length={max_prompt_length} tokens "
            f"(longest {longest}); raise train.max_prompt_length"
        )
    return rows, PromptStats(kept=len(rows), too_long=too_long, max_prompt_tokens=longest)
