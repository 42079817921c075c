"""Rules on assistant call steps, shared by the simulator's vote, the verifier and sample building."""

from __future__ import annotations

from typing import Any

from jsonschema.validators import Draft202012Validator

from looptool.schema import Call, Tool
from looptool.synth.validate import Problem
from looptool.synth.values import grounded, normalise_text, value_texts


def _context_text(messages: list[dict[str, Any]]) -> str:
    """What the assistant can know: user words and tool results (not its own earlier claims)."""
    return normalise_text(" ".join(m.get("content") or "" for m in messages if m.get("role") in ("user", "tool")))


def check_calls(calls: list[Call], tools: dict[str, Tool], history: list[dict[str, Any]]) -> list[Problem]:
    """Rules on one assistant call step given the conversation before it (also used for samples)."""
    problems: list[Problem] = []
    context = _context_text(history)
    for call in calls:
        tool = tools.get(call.name)
        if tool is None:
            problems.append(Problem("unknown_tool", f"{call.name!r} is not among {sorted(tools)}"))
            continue
        errors = sorted(Draft202012Validator(tool.parameters).iter_errors(call.arguments), key=lambda e: list(e.path))
        if errors:
            where = "/".join(map(str, errors[0].absolute_path)) or "<arguments>"
            problems.append(Problem("invalid_arguments", f"{call.name} at {where}: {errors[0].message}"))
            continue
        for name in tool.parameters.get("required", []):
            for text in value_texts(call.arguments.get(name)):
                if not grounded(text, context):
                    problems.append(Problem("ungrounded_value", f"{call.name}.{name}={text!r} never said before the call"))
    return problems


