"""Verified dialogues -> per-step training samples, and the seeded round-1 / pool split (issue #5).

Every assistant message of a verified dialogue is one sample: the conversation before it is the
prompt, the dialogue's tool subset is the tool list, and the message itself is the label (its
calls, or its text). A call step whose results include a tool error is dropped: the label would
teach the model a call the environment refused. Each emitted sample is re-checked with the same
rules the verifier uses (:func:`check_sample`), so nothing that breaks a rule reaches training.
"""

from __future__ import annotations

import json
import random
from typing import Any

from looptool.schema import Call, Sample, Tool, label_from_json
from looptool.synth.validate import Problem
from looptool.synth.rules import check_calls
from looptool.synth.verify import text_looks_like_call


def _clean(message: dict[str, Any]) -> dict[str, Any]:
    out = {"role": message["role"], "content": message.get("content") or ""}
    if message.get("tool_calls"):
        out["tool_calls"] = [{"name": c["name"], "arguments": c["arguments"]} for c in message["tool_calls"]]
    if message["role"] == "tool" and message.get("name"):
        out["name"] = message["name"]
    return out


def _is_error_result(message: dict[str, Any]) -> bool:
    try:
        body = json.loads(message.get("content") or "")
    except json.JSONDecodeError:
        return True  # unreadable result: treat like a failure
    return not isinstance(body, dict) or body.get("status") == "error"


def check_sample(sample: Sample) -> list[Problem]:
    """Rules every emitted sample must pass: history order, label calls valid and grounded."""
    problems: list[Problem] = []
    messages = sample.messages
    opening = next((m for m in messages if m["role"] != "system"), None)
    if opening is None or opening["role"] != "user" or any(m["role"] == "system" for m in messages[1:]):
        problems.append(Problem("turn_order", "history must start with a user message (after one optional system turn)"))
    if messages and messages[-1]["role"] not in ("user", "tool"):
        problems.append(Problem("turn_order", "the step must follow a user or tool message"))
    if isinstance(sample.label, str):
        if not sample.label.strip():
            problems.append(Problem("empty_label", "text label is empty"))
        elif text_looks_like_call(sample.label):
            # The reward would score a correct text answer as a (broken) call attempt.
            problems.append(Problem("call_markup_in_text", "text label holds tool-call markup"))
        return problems
    if not sample.label:
        problems.append(Problem("empty_label", "call label without calls"))
    tools = {t.name: t for t in sample.tools}
    problems += check_calls(list(sample.label), tools, messages)
    return problems


def samples_from_dialogue(dialogue: dict[str, Any], ledger: Any) -> list[Sample]:
    """All samples of one verified dialogue; every assistant step gets a ledger record."""
    tools = [Tool.from_dict(t) for t in dialogue["tools"]]
    messages = [_clean(m) for m in dialogue["messages"]]
    turns = dialogue.get("turns") or {}
    out: list[Sample] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        step_id = f"{dialogue['id']}/m{i}"
        ledger.expect(1)
        calls = message.get("tool_calls") or []
        if calls:
            results = messages[i + 1 : i + 1 + len(calls)]
            if any(_is_error_result(r) for r in results):
                ledger.reject(step_id, "followed_by_tool_error")
                continue
            label: list[Call] | str = [Call.from_dict(c) for c in calls]
        else:
            label = message["content"]
        turn = turns.get(str(i)) or {}
        need = turn.get("need")
        plan = dialogue.get("plan") or []
        sample = Sample(
            tools=tools,
            messages=messages[:i],
            label=label,
            origin="seed",
            round=0,
            parent=dialogue["id"],
            meta={"dialogue": dialogue["id"], "message_index": i, "step": "call" if calls else "text",
                  "need_kind": plan[need]["kind"] if isinstance(need, int) and need < len(plan) else None,
                  "vote_agreement": turn.get("agreement"), "votes": turn.get("votes"),
                  "split": dialogue.get("split", "seen"),
                  # Program dialogues: phenomena, step in need, the need's recipe, and for a noisy label the
                  # clean one (kept through every later stage for the JGLV audit).
                  **(turn.get("meta") or {}),
                  **({"program_tools": dialogue["tool_meta"], "today": dialogue.get("today")}
                     if dialogue.get("tool_meta") else {})},
        )
        problems = check_sample(sample)
        if problems:
            ledger.reject(step_id, problems[0].code, detail=problems[0].detail)
            continue
        ledger.keep(step_id, sample_id=sample.id, step=sample.meta["step"])
        out.append(sample)
    return out


def build_samples(dialogues: list[dict[str, Any]], ledger: Any) -> list[Sample]:
    """Samples of every dialogue; exact duplicates (same content id) are rejected as such."""
    samples: list[Sample] = []
    seen: set[str] = set()
    ledger.expect(0)  # steps are declared one by one; an empty input must still balance
    for dialogue in dialogues:
        for sample in samples_from_dialogue(dialogue, ledger):
            if sample.id in seen:
                # Re-label the record: the step was kept above, but its sample duplicates another.
                record = next(r for r in reversed(ledger.records) if r.info.get("sample_id") == sample.id)
                record.fate, record.reason = "rejected", "duplicate_sample"
                continue
            seen.add(sample.id)
            samples.append(sample)
    return samples


def _split_count(size: int | float, available: int, name: str) -> int:
    """A count (int >= 0) or a share (0 < float <= 1) of ``available``, capped at ``available``."""
    if isinstance(size, float) and 0 < size <= 1:
        n = round(size * available)
    else:
        n = int(size)
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {size}")
    return min(n, available)


def _with_round(sample: Sample, round_index: int) -> Sample:
    return Sample(tools=sample.tools, messages=sample.messages, label=sample.label, origin=sample.origin,
                  round=round_index, parent=sample.parent, meta=sample.meta, id=sample.id)


def restore_clean_label(sample: Sample) -> Sample:
    """The sample with the oracle's clean label where the noisy annotator corrupted it.

    Training data keeps the corrupted labels (JGLV is meant to find them); a held-out set is the
    measuring stick and must not: 10% noise on the labels would cap every model's score near 90%
    and reward the models that learned the noise. ``meta.label_restored`` names the corruption.
    """
    if not sample.meta.get("noise") or "clean_label" not in sample.meta:
        return sample
    meta = {k: v for k, v in sample.meta.items() if k not in ("noise", "noise_detail", "clean_label")}
    meta["label_restored"] = sample.meta["noise"]
    return Sample(tools=sample.tools, messages=sample.messages, label=label_from_json(sample.meta["clean_label"]),
                  origin=sample.origin, round=sample.round, parent=sample.parent, meta=meta, id=sample.id)


def split_by_dialogue(samples: list[Sample], seed: int, heldout_seen_size: int | float, round1_size: int | float,
                      ) -> tuple[list[Sample], list[Sample], list[Sample], list[Sample]]:
    """(heldout_unseen, heldout_seen, round-1 slice, pool), whole dialogues at a time.

    Samples of ``split: unseen`` dialogues (capabilities no training tool has) are ``heldout_unseen``.
    The others are grouped by dialogue (``parent``) and the dialogues shuffled by a seeded RNG over
    their sorted ids, so no step of a held-out dialogue reaches training; sizes count samples (int)
    or take a share (float) and are met by whole dialogues, the last one possibly overshooting.
    """
    unseen = [s for s in samples if s.meta.get("split") == "unseen"]
    seen = [s for s in samples if s.meta.get("split") != "unseen"]
    groups: dict[str, list[Sample]] = {}
    for s in sorted(seen, key=lambda s: s.id):
        groups.setdefault(str(s.parent or s.id), []).append(s)
    order = sorted(groups)
    random.Random(f"dialogue-split:{seed}").shuffle(order)
    n_heldout = _split_count(heldout_seen_size, len(seen), "heldout_size")
    heldout: list[Sample] = []
    rest_groups: list[str] = []
    for key in order:
        if len(heldout) < n_heldout:
            heldout += groups[key]
        else:
            rest_groups.append(key)
    n_rest = sum(len(groups[k]) for k in rest_groups)
    n_round1 = _split_count(round1_size, n_rest, "round1_size")
    round1: list[Sample] = []
    pool: list[Sample] = []
    for key in rest_groups:
        (round1 if len(round1) < n_round1 else pool).extend(groups[key])
    return unseen, heldout, [_with_round(s, 1) for s in round1], pool
