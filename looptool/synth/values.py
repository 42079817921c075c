"""Argument values as text: what a message must contain to mention a value, and grounding checks.

Shared by the dialogue simulator (the user agent must say the planned values) and the verifier
(a required argument value must have been said before the call that uses it).
"""

from __future__ import annotations

import re
from typing import Any


def format_number(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def value_texts(value: Any) -> list[str]:
    """Strings and numbers inside a value, as text (booleans and nulls are not grounded in words)."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [format_number(value)]
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [t for v in value for t in value_texts(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in value_texts(v)]
    return [str(value)]


def normalise_text(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def grounded(value_text: str, context: str) -> bool:
    """Is the value written in ``context`` (already normalised)? Case and whitespace do not count;
    numbers match numerically (5 matches 5.0)."""
    needle = normalise_text(value_text)
    if needle and needle in context:
        return True
    try:
        number = float(needle)
    except ValueError:
        return False
    return any(float(found) == number for found in re.findall(r"-?\d+(?:\.\d+)?", context))


def missing_mentions(values: list[str], text: str) -> list[str]:
    context = normalise_text(text)
    return [v for v in values if not grounded(v, context)]
