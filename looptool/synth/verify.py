"""Two-stage verification of simulated dialogues: rules first, then an LLM judge (issue #5).

Rules (cheap, exact, each failure a named reason):

* ``turn_order`` — the dialogue opens with the user; an assistant message follows a user or tool
  message; tool messages only answer the assistant call block right before them; the dialogue
  ends with an assistant text reply;
* ``unknown_tool`` — every call names a tool of the dialogue's subset;
* ``invalid_arguments`` — every call's arguments validate against that tool's JSON Schema
  (required parameters present, types, enums, no unknown keys where the schema forbids them);
* ``ungrounded_value`` — every required argument's value (each string and number inside it) was
  written earlier in the conversation, by the user or in a tool result: a label must not invent
  values the model could not know;
* ``result_mismatch`` — exactly one tool message per call, in call order, each named after its call
  and holding a JSON object with a ``status``;
* ``off_plan_call`` — a call step called the tools the plan put there (a dialogue whose assistant
  wandered off its plan is not a clean demonstration).

The judge then reads the transcript and answers yes/no checks plus a short reason (see
``JUDGE_CHECKS``); the verdict is pass iff at least ``judge_min_yes`` checks are yes, and a fail
rejects the dialogue with the judge's reason.
"""

from __future__ import annotations

import json
import random
from typing import Any

from looptool.llm.client import ChatRequest
from looptool.schema import Call, Tool
from looptool.synth.dialogue import describe_tools
from looptool.synth.validate import Problem
from looptool.synth.rules import check_calls
from looptool.synth.values import normalise_text
from looptool.toolcall import CALL_CLOSE, CALL_OPEN, parse_tool_calls


def text_looks_like_call(text: str) -> bool:
    """A text reply the tool-call parser would read as a call (or a broken one), e.g. "<tool_call>"."""
    parsed = parse_tool_calls(text)
    return parsed.has_calls or not parsed.ok or CALL_OPEN in text or CALL_CLOSE in text


def check_dialogue(dialogue: dict[str, Any]) -> list[Problem]:
    """Every rule on one dialogue; an empty list means it passes."""
    messages = dialogue.get("messages") or []
    tools = {t["name"]: Tool.from_dict(t) for t in dialogue.get("tools") or []}
    turns = dialogue.get("turns") or {}
    problems: list[Problem] = []
    if not messages:
        return [Problem("turn_order", "no messages")]
    start = 1 if messages[0].get("role") == "system" else 0  # one optional system turn (e.g. today's date)
    if len(messages) <= start or messages[start].get("role") != "user":
        problems.append(Problem("turn_order", "the dialogue does not open with a user message"))
        return problems
    if messages[-1].get("role") != "assistant" or messages[-1].get("tool_calls"):
        problems.append(Problem("turn_order", "the dialogue does not end with an assistant text reply"))
    i = start
    while i < len(messages):
        msg = messages[i]
        role = msg.get("role")
        if role == "assistant":
            previous = messages[i - 1].get("role") if i else None
            if previous not in ("user", "tool"):
                problems.append(Problem("turn_order", f"message {i}: assistant after {previous}"))
            raw_calls = msg.get("tool_calls") or []
            if raw_calls:
                try:
                    calls = [Call.from_dict(c) for c in raw_calls]
                except ValueError as err:
                    problems.append(Problem("invalid_arguments", f"message {i}: {err}"))
                    calls = []
                problems += [Problem(p.code, f"message {i}: {p.detail}") for p in check_calls(calls, tools, messages[:i])]
                planned = (turns.get(str(i)) or {}).get("planned_tools")
                if planned is not None and sorted(planned) != sorted(c.name for c in calls):
                    problems.append(Problem("off_plan_call", f"message {i}: called {[c.name for c in calls]}, plan says {planned}"))
                results = messages[i + 1 : i + 1 + len(raw_calls)]
                if len(results) != len(raw_calls) or any(r.get("role") != "tool" for r in results):
                    problems.append(Problem("result_mismatch", f"message {i}: {len(raw_calls)} calls need as many tool results after them"))
                else:
                    for call, result in zip(raw_calls, results):
                        if result.get("name") != call.get("name"):
                            problems.append(Problem("result_mismatch", f"message {i}: result for {result.get('name')!r} where {call.get('name')!r} was called"))
                        try:
                            body = json.loads(result.get("content") or "")
                        except json.JSONDecodeError:
                            body = None
                        if not isinstance(body, dict) or "status" not in body:
                            problems.append(Problem("result_mismatch", f"message {i}: a tool result is not a JSON object with a status"))
                i += 1 + len(results)
                continue
        elif role == "tool":
            problems.append(Problem("turn_order", f"message {i}: tool result without a call before it"))
        elif role == "user" and i and messages[i - 1].get("role") == "user":
            problems.append(Problem("turn_order", f"message {i}: two user messages in a row"))
        if role == "assistant" and not msg.get("tool_calls") and text_looks_like_call(msg.get("content") or ""):
            problems.append(Problem("call_markup_in_text", f"message {i}: text reply holds tool-call markup"))
        if role in ("user", "assistant") and not msg.get("tool_calls") and i:
            previous = messages[i - 1]
            if previous.get("role") in ("user", "assistant") and previous.get("role") != role and (
                    normalise_text(previous.get("content") or "") == normalise_text(msg.get("content") or "")):
                # Seen from SmolLM2: the assistant "asks" by repeating the user's message word for word.
                problems.append(Problem("echoed_message", f"message {i} repeats message {i - 1}"))
        i += 1
    return problems


# ------------------------------------------------------------------------------------- judge
# The judge answers three yes/no checks, then a short reason; the verdict is computed from the
# checks (pass iff at least ``min_yes`` are yes). Asking a weak judge for one overall pass/fail
# after a reason made SmolLM2 reject rule-clean dialogues with made-up reasons (seen: "1402293657");
# narrow yes/no questions are easier to answer and the threshold is a parameter.
JUDGE_CHECKS = {
    "request_served": "Do the assistant's tool calls (or replies, where no tool fits) serve what the user asked?",
    "values_from_user": "Do the call arguments use the values the user gave?",
    "replies_consistent": "Are the assistant's text replies relevant and consistent with the tool results?",
}
JUDGE_SCHEMA = {
    "type": "object",
    "properties": {**{k: {"type": "string", "enum": ["yes", "no"]} for k in JUDGE_CHECKS}, "reason": {"type": "string"}},
    "required": [*JUDGE_CHECKS, "reason"],
    "additionalProperties": False,
}
JUDGE_SYSTEM = (
    "You review conversations between a user and a tool-using assistant, used as training data. Answer each "
    "check with yes or no, then give a reason in at most ten words."
)


def judge_verdict(answer: dict[str, Any], min_yes: int) -> str:
    return "pass" if sum(answer.get(k) == "yes" for k in JUDGE_CHECKS) >= min_yes else "fail"


def render_transcript(dialogue: dict[str, Any]) -> str:
    lines = []
    for m in dialogue["messages"]:
        if m.get("tool_calls"):
            lines.append("assistant calls: " + json.dumps(m["tool_calls"], ensure_ascii=False))
        elif m["role"] == "tool":
            lines.append(f"tool {m.get('name')}: {m.get('content')}")
        else:
            lines.append(f"{m['role']}: {m.get('content')}")
    return "\n".join(lines)


def judge_request(dialogue: dict[str, Any], seed: int, max_tokens: int) -> ChatRequest:
    tools = [Tool.from_dict(t) for t in dialogue["tools"]]
    checks = "\n".join(f"- {k}: {q}" for k, q in JUDGE_CHECKS.items())
    prompt = f"Tools:\n{describe_tools(tools)}\n\nConversation:\n{render_transcript(dialogue)}\n\nChecks:\n{checks}"
    return ChatRequest(messages=[{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": prompt}],
                       schema=JUDGE_SCHEMA, schema_name="verdict", temperature=0.0, max_tokens=max_tokens,
                       seed=seed * 7919 + int(dialogue.get("index", 0)))


def verify_dialogues(dialogues: list[dict[str, Any]], *, client: Any | None, seed: int, judge_max_tokens: int,
                     ledger: Any, use_judge: bool = True, judge_min_yes: int = len(JUDGE_CHECKS),
                     judge_sample: int | None = None) -> list[dict[str, Any]]:
    """Rules on every dialogue, then the judge on the survivors; returns the verified dialogues.

    ``client`` may be None when ``use_judge`` is False (rules only). A judge request that fails
    (malformed output, truncated) rejects the dialogue with ``judge_failed``: unverified data is
    not let through.
    """
    ledger.expect(len(dialogues))
    survivors = []
    for dialogue in dialogues:
        problems = check_dialogue(dialogue)
        if problems:
            ledger.reject(dialogue["id"], problems[0].code, detail=problems[0].detail,
                          all_problems=[str(p) for p in problems][:10], stage_part="rules")
        else:
            survivors.append(dialogue)
    if not use_judge:
        for dialogue in survivors:
            ledger.keep(dialogue["id"], judge="skipped")
        return survivors
    if not survivors:
        return []
    unjudged: list[dict[str, Any]] = []
    if judge_sample is not None and int(judge_sample) < len(survivors):
        # A seeded sample of the rule-clean dialogues goes to the judge; the rest pass on the rules
        # alone, recorded as such (the judge's pass rate on the sample is in the metrics).
        picked = set(random.Random(f"judge-sample:{seed}").sample(sorted(d["id"] for d in survivors), int(judge_sample)))
        unjudged = [d for d in survivors if d["id"] not in picked]
        survivors = [d for d in survivors if d["id"] in picked]
        for dialogue in unjudged:
            ledger.keep(dialogue["id"], judge="not_sampled")
    results = client.chat_many([judge_request(d, seed, judge_max_tokens) for d in survivors], desc="judge")
    verified = []
    for dialogue, result in zip(survivors, results):
        if not result.ok:
            ledger.reject(dialogue["id"], "judge_failed", detail=result.error, stage_part="judge")
        elif judge_verdict(result.parsed, judge_min_yes) != "pass":
            failed = [k for k in JUDGE_CHECKS if result.parsed.get(k) != "yes"]
            ledger.reject(dialogue["id"], "judge_fail", detail=result.parsed["reason"][:300], failed_checks=failed,
                          stage_part="judge")
        else:
            ledger.keep(dialogue["id"], judge_reason=result.parsed["reason"][:300])
            verified.append({**dialogue, "judge": {**result.parsed, "verdict": "pass"}})
    if not unjudged:
        return verified
    passed = {d["id"]: d for d in verified} | {d["id"]: d for d in unjudged}
    return [passed[d["id"]] for d in dialogues if d["id"] in passed]  # input order
