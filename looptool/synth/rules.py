"""Rules on assistant call steps, shared by the simulator's vote, the verifier and sample building."""

from __future__ import annotations

import re
from typing import Any

from jsonschema.validators import Draft202012Validator

from looptool.schema import Call, Tool
from looptool.synth.concepts import resolve_relative_dates, today_from_messages
from looptool.synth.validate import Problem
from looptool.synth.values import grounded, normalise_text, value_texts


def _context_text(messages: list[dict[str, Any]]) -> str:
    """What the assistant can know: user words and tool results (not its own earlier claims)."""
    return normalise_text(" ".join(m.get("content") or "" for m in messages if m.get("role") in ("user", "tool")))


def check_calls(calls: list[Call], tools: dict[str, Tool], history: list[dict[str, Any]]) -> list[Problem]:
    """Rules on one assistant call step given the conversation before it (also used for samples)."""
    problems: list[Problem] = []
    context = _context_text(history)
    today = today_from_messages(history)
    dates = resolve_relative_dates(context, today) if today else set()
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
        props = tool.parameters.get("properties", {})
        for name in tool.parameters.get("required", []):
            for text in ungrounded_texts(call.arguments.get(name), props.get(name), context, dates):
                problems.append(Problem("ungrounded_value", f"{call.name}.{name}={text!r} never said before the call"))
    return problems


ISO_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2})(?::\d{2})?)?$")


def ungrounded_texts(value: Any, schema: Any, context: str, dates: set[str]) -> list[str]:
    """The parts of a required value the conversation does not state, read with its schema.

    A value the schema enumerates is a choice among listed options (the user may say "the cheapest
    class" for ``economy``): it needs no verbatim mention. An ISO date counts as said when it is
    written or when a relative phrase ("tomorrow", "next Friday") resolves to it against the date
    the system turn gives (``dates``); a date-time needs its date that way and its HH:MM written.
    """
    schema = schema if isinstance(schema, dict) else {}
    if isinstance(schema.get("enum"), list) and value in schema["enum"]:
        return []
    if isinstance(value, list):
        return [t for v in value for t in ungrounded_texts(v, schema.get("items"), context, dates)]
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        return [t for k, v in value.items() for t in ungrounded_texts(v, props.get(k), context, dates)]
    if isinstance(value, str):
        hit = ISO_DATE.match(value.strip())
        if hit:
            day_ok = grounded(hit.group(1), context) or hit.group(1) in dates
            time_ok = hit.group(2) is None or grounded(hit.group(2), context)
            return [] if day_ok and time_ok else [value]
    return [t for t in value_texts(value) if not grounded(t, context)]


