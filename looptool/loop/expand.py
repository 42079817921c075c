"""Error-Driven Data Expansion (EDDE): new, verified samples grown from the round's error seeds.

For each error seed the generator sees the tools, the conversation, the correct answer, the
model's wrong answer and the judge's error analysis, and writes a *new* user request that needs
the same tools in the same way (so the same mistake is tempting) together with the correct
answer — varying one sampled axis of the scenario. The answer is schema-constrained to the seed's
tools and to the seed's number of calls, so the error pattern (single, parallel, clarification
reply) is kept by construction. Every candidate then passes the same rule checks as the seed set
(arguments valid against the schema, required values written in the request) and the same judge.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from looptool.ledger import Ledger
from looptool.schema import Call, Sample, label_to_json
from looptool.synth.dialogue import describe_tools
from looptool.synth.rules import check_calls
from looptool.synth.schemas import call_schema
from looptool.synth.verify import judge_request, judge_verdict, JUDGE_CHECKS
from looptool.toolcall import render_label

# The scenario axes a variant may change (the tools and the kind of answer stay fixed).
AXES = {
    "complexity": "make the request more involved: more context, more details the assistant must pick from",
    "persona": "have a different kind of user ask (a professional, a student, a hurried traveller...)",
    "interaction_style": "change how the user writes: terse, chatty, indirect, or with a side remark",
    "data_values": "use different concrete values (names, numbers with units, dates, ids)",
}
SYSTEM = (
    "You write training data for a tool-calling assistant. You are shown a case where the assistant made a "
    "mistake. Write a NEW user message on a different topic detail that needs the same tools in the same way, "
    "so the same mistake would be tempting, and give the correct answer for it. Every argument value of the "
    "answer must be written in the user message."
)


@dataclass
class ExpandConfig:
    """How many variants per error seed and how they are generated and checked."""

    per_seed: int = field(default=3, metadata={"help": "New samples requested per error seed (k)."})
    max_seeds: int | None = field(default=None, metadata={
        "help": "Expand at most this many error seeds (a seeded draw); None = all. Bounds the generator "
                "time of a round on a slow server."})
    max_tokens: int = field(default=220, metadata={"help": "Generation limit of one variant."})
    temperature: float = field(default=0.8, metadata={"help": "Generator temperature (variety between variants)."})
    max_message_chars: int = field(default=300, metadata={"help": "Longest user message accepted from the generator."})
    judge: bool = field(default=True, metadata={"help": "Run the seed set's LLM judge on rule-clean variants."})
    judge_min_yes: int = field(default=len(JUDGE_CHECKS), metadata={"help": "Judge checks that must be yes."})
    judge_max_tokens: int = field(default=120, metadata={"help": "Generation limit of one judge verdict."})


def variant_schema(seed: Sample) -> dict[str, Any]:
    """User message + an answer of the seed's shape: the same number of calls to its tools, or a text reply."""
    # No minLength/maxLength: llama.cpp grammars with length limits decode at ~1-2 tok/s (measured);
    # lengths are checked after decoding instead (variant_sample).
    message = {"type": "string"}
    if isinstance(seed.label, str):
        answer = {"reply": {"type": "string"}}
    else:
        n = len(seed.label)
        answer = {"calls": {"type": "array", "minItems": n, "maxItems": n, "items": call_schema(seed.tools)}}
    return {"type": "object", "properties": {"user_message": message, **answer},
            "required": ["user_message", *answer], "additionalProperties": False}


def variant_messages(seed: Sample, axis: str) -> list[dict[str, str]]:
    judge = seed.meta.get("judge") or {}
    wrong = (seed.meta.get("probe") or {}).get("prediction", "")
    history = "\n".join(f"{m['role']}: {m.get('content') or json.dumps(m.get('tool_calls', []))}" for m in seed.messages)
    prompt = (
        f"Tools:\n{describe_tools(seed.tools)}\n\nConversation:\n{history}\n\n"
        f"Correct answer:\n{render_label(seed.label)}\n\nThe assistant's wrong answer:\n{wrong[:600]}\n\n"
        f"Error analysis: {judge.get('analysis') or 'not given'}\n\n"
        f"Write a new case. Change this aspect: {AXES[axis]}."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def plan_variants(seeds: Sequence[Sample], per_seed: int, seed: int,
                  max_seeds: int | None = None) -> list[tuple[int, int, str]]:
    """(seed index, variant number, axis) for every requested variant; axes drawn per seed, seeded.

    With ``max_seeds``, a seeded draw of that many error seeds (by id, so the input order does not
    matter) is expanded and the others are not.
    """
    chosen = range(len(seeds))
    if max_seeds is not None and max_seeds < len(seeds):
        by_id = sorted(range(len(seeds)), key=lambda i: seeds[i].id)
        chosen = sorted(random.Random(f"edde-seeds:{seed}").sample(by_id, max(0, max_seeds)))
    plan = []
    for i in chosen:
        sample = seeds[i]
        rng = random.Random(f"edde:{seed}:{sample.id}")
        axes = list(AXES)
        rng.shuffle(axes)
        plan += [(i, k, axes[k % len(axes)]) for k in range(per_seed)]
    return plan


class RejectedVariant(ValueError):
    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code, self.detail = code, detail


def variant_sample(seed: Sample, reply: Any, axis: str, max_chars: int) -> Sample:
    """A generator reply -> a new sample, or :class:`RejectedVariant` naming the broken rule."""
    if not isinstance(reply, dict) or not isinstance(reply.get("user_message"), str):
        raise RejectedVariant("malformed_variant", "no user_message")
    text = reply["user_message"].strip()
    if not 8 <= len(text) <= max_chars:
        raise RejectedVariant("bad_message_length", f"{len(text)} characters")
    system = [m for m in seed.messages[:1] if m["role"] == "system"]
    messages = [*system, {"role": "user", "content": text}]
    if isinstance(seed.label, str):
        label: Any = str(reply.get("reply", "")).strip()
        if not label:
            raise RejectedVariant("malformed_variant", "empty reply")
    else:
        try:
            label = [Call.from_dict(c) for c in reply.get("calls") or []]
        except ValueError as err:
            raise RejectedVariant("malformed_variant", str(err)) from None
        if sorted(c.name for c in label) != sorted(c.name for c in seed.label):
            raise RejectedVariant("changed_tools", f"{[c.name for c in label]} vs {[c.name for c in seed.label]}")
        problems = check_calls(label, {t.name: t for t in seed.tools}, messages)
        if problems:
            raise RejectedVariant(problems[0].code, problems[0].detail)
    sample = Sample(seed.tools, messages, label, "edde", seed.round, seed.id,
                    {"axis": axis, "seed_origin": seed.origin})
    if sample.content_id() == seed.content_id():
        raise RejectedVariant("same_as_seed")
    return sample


def expand(client: Any, seeds: Sequence[Sample], cfg: ExpandConfig, seed: int = 0) -> tuple[list[Sample], Ledger]:
    """Generate, rule-check and judge ``cfg.per_seed`` variants of every error seed."""
    from looptool.llm.client import ChatRequest

    plan = plan_variants(seeds, cfg.per_seed, seed, cfg.max_seeds)
    ledger = Ledger("expand")
    ledger.expect(len(plan))
    expanded = len({i for i, _, _ in plan})
    if expanded < len(seeds):
        ledger.note(f"expand.max_seeds={cfg.max_seeds}: {expanded} of {len(seeds)} error seeds expanded")
    requests = [
        ChatRequest(messages=variant_messages(seeds[i], axis), schema=variant_schema(seeds[i]),
                    schema_name="variant", temperature=cfg.temperature, max_tokens=cfg.max_tokens, seed=seed,
                    sample_index=k)
        for i, k, axis in plan
    ]
    results = client.chat_many(requests, desc="expand") if requests else []
    candidates: list[tuple[str, Sample]] = []
    for (i, k, axis), result in zip(plan, results):
        item = f"{seeds[i].id}:{k}"
        if not result.ok:
            ledger.reject(item, "generator_failed", detail=str(result.error)[:200], axis=axis)
            continue
        try:
            candidates.append((item, variant_sample(seeds[i], result.parsed, axis, cfg.max_message_chars)))
        except RejectedVariant as err:
            ledger.reject(item, err.code, detail=err.detail[:200], axis=axis)
    if not cfg.judge:
        for item, sample in candidates:
            ledger.keep(item, judge="skipped", sample=sample.id)
        ledger.check_balanced()
        return [s for _, s in candidates], ledger
    dialogues = [{"id": item, "index": n, "tools": [t.to_dict() for t in s.tools],
                  "messages": s.messages + [{"role": "assistant", "content": s.label if isinstance(s.label, str) else "",
                                             **({} if isinstance(s.label, str) else {"tool_calls": label_to_json(s.label)})}]}
                 for n, (item, s) in enumerate(candidates)]
    verdicts = client.chat_many([judge_request(d, seed, cfg.judge_max_tokens) for d in dialogues], desc="judge") if dialogues else []
    kept = []
    for (item, sample), result in zip(candidates, verdicts):
        if not result.ok:
            ledger.reject(item, "judge_failed", detail=str(result.error)[:200])
        elif judge_verdict(result.parsed, cfg.judge_min_yes) != "pass":
            ledger.reject(item, "judge_fail", detail=str(result.parsed.get("reason", ""))[:200])
        else:
            ledger.keep(item, sample=sample.id)
            kept.append(sample)
    ledger.check_balanced()
    return kept, ledger
