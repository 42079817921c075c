"""Reward functions in TRL's calling convention: ``f(completions, label, **kwargs) -> list[float]``.

``label`` is the dataset column of the same name (the sample's label as JSON text), repeated by
TRL once per generation. TRL also passes ``completion_ids`` (cut after the first stop token); with
``stop_ids`` (bound by the GRPO stage) a completion whose last id is not a stop token was cut off by
``max_completion_length`` and cannot earn a text label's reward. The binary reward is the default (DESIGN.md §4); the partial-credit one
is an option for ablations, never the default.

TRL passes the ``prompts`` as well: a prompt that ends inside an open think block (a thinking
template's generation prompt, ``looptool.toolcall.prompt_opens_thinking``) means its completion
starts inside the thought, and only the answer after ``</think>`` is scored.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from typing import Any

from looptool.schema import Label, label_from_json
from looptool.toolcall import call_key, parse_tool_calls, prompt_opens_thinking, tool_call_reward


def decode_label(text: str) -> Label:
    return label_from_json(json.loads(text))


def _completion_text(completion: Any) -> str:
    # Conversational datasets hand completions over as message lists; ours are plain strings.
    if isinstance(completion, list) and completion and isinstance(completion[0], dict):
        return str(completion[-1].get("content", ""))
    return completion if isinstance(completion, str) else ""


def completions_ended(n: int, completion_ids: Sequence[Sequence[int]] | None,
                      stop_ids: Collection[int] | None) -> list[bool]:
    """Per completion: did it end on a stop token? All True when the ids or stop ids are unknown."""
    if completion_ids is None or not stop_ids:
        return [True] * n
    return [bool(ids) and int(ids[-1]) in stop_ids for ids in completion_ids]


def completions_in_thought(n: int, prompts: Sequence[Any] | None) -> list[bool]:
    """Per completion: did its prompt leave a think block open? All False when the prompts are unknown."""
    if prompts is None:
        return [False] * n
    return [isinstance(p, str) and prompt_opens_thinking(p) for p in prompts]


def binary_tool_call_reward(completions: Sequence[Any], label: Sequence[str], completion_ids=None, stop_ids=None,
                            prompts=None, **_: Any) -> list[float]:
    """1.0 iff the completion does exactly what the label says (see looptool.toolcall)."""
    ended = completions_ended(len(completions), completion_ids, stop_ids)
    thought = completions_in_thought(len(completions), prompts)
    return [tool_call_reward(_completion_text(c), decode_label(lab), ended=e, in_thought=t)
            for c, lab, e, t in zip(completions, label, ended, thought)]


def partial_call_credit(completion: str, label: Label, ended: bool = True, in_thought: bool = False) -> float:
    """Fraction of matched calls (F1 over the call multisets); text labels score as the binary reward."""
    if isinstance(label, str) or not label:
        return tool_call_reward(completion, label, ended=ended, in_thought=in_thought)
    parsed = parse_tool_calls(completion, in_thought)
    if not parsed.ok:
        return 0.0
    predicted, expected = Counter(map(call_key, parsed.calls)), Counter(map(call_key, label))
    overlap = sum((predicted & expected).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / sum(predicted.values()), overlap / sum(expected.values())
    return 2 * precision * recall / (precision + recall)


def partial_tool_call_reward(completions: Sequence[Any], label: Sequence[str], completion_ids=None, stop_ids=None,
                             prompts=None, **_: Any) -> list[float]:
    ended = completions_ended(len(completions), completion_ids, stop_ids)
    thought = completions_in_thought(len(completions), prompts)
    return [partial_call_credit(_completion_text(c), decode_label(lab), ended=e, in_thought=t)
            for c, lab, e, t in zip(completions, label, ended, thought)]


REWARDS: dict[str, Callable[..., list[float]]] = {
    "binary": binary_tool_call_reward,
    "partial": partial_tool_call_reward,
}


def get_reward(name: str) -> Callable[..., list[float]]:
    try:
        return REWARDS[name]
    except KeyError:
        raise ValueError(f"train.reward must be one of {sorted(REWARDS)}, got {name!r}") from None
