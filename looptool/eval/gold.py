"""Reference predictions built from a benchmark's own possible answers.

Feeding these to the scorer must give 100% on every category (apart from entries whose ground
truth cannot pass the benchmark's rules, which the tests list with reasons). They are the
scorer's end-to-end self-check, and a model-free way to try the pipeline.

Single-turn BFCL: each expected call becomes a call with, per parameter, the first acceptable
value that is not the optional marker (parameters whose only acceptable value is the marker are
left out). Java/JavaScript values are written back into source syntax so the checker's converters
read them as the answer's values.
"""

from __future__ import annotations

import json
from typing import Any

from looptool.eval.ast_checker import OPTIONAL, find_doc


def _first(acceptable: Any) -> tuple[bool, Any]:
    """(present, value): the first acceptable value that is not the optional marker."""
    if not isinstance(acceptable, list):
        return True, acceptable
    for value in acceptable:
        if value != OPTIONAL:
            return True, value
    return False, None


def _pick_nested(value: Any) -> Any:
    """Acceptable-value dicts (``{key: [acceptable]}``) inside a value become plain dicts."""
    if isinstance(value, dict):
        out = {}
        for key, acceptable in value.items():
            present, chosen = _first(acceptable)
            if present:
                out[key] = _pick_nested(chosen) if isinstance(chosen, dict) else chosen
        return out
    if isinstance(value, list):
        return [_pick_nested(v) if isinstance(v, dict) else v for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# Writing Python values as Java / JavaScript source
# ---------------------------------------------------------------------------------------------

_JAVA_ELEMENT_TYPE = {"integer": "int", "long": "long", "double": "double", "float": "float",
                      "boolean": "boolean", "String": "String", "char": "char", "byte": "byte", "short": "short"}


def _java_number(value: Any, declared: str | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if declared == "long" and isinstance(value, int):
        return f"{value}L"
    if declared == "float":
        return f"{float(value)!r}f"
    return repr(value)


def _java_generic(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    return _java_number(value, None)


def to_java_source(value: Any, declared: str, item_type: str | None = None) -> str:
    if isinstance(value, str):
        return value  # String/char/any values and variable names are written verbatim
    if declared == "Array" and isinstance(value, list):
        element_type = _JAVA_ELEMENT_TYPE.get(item_type or "", "Object")
        body = ", ".join(v if isinstance(v, str) else _java_number(v, item_type) for v in value)
        return f"new {element_type}[]{{{body}}}"
    if declared == "ArrayList" and isinstance(value, list):
        def element(v: Any) -> str:
            if item_type in ("String", "char") and isinstance(v, str):
                quote = "'" if item_type == "char" else '"'
                return f"{quote}{v}{quote}"
            return v if isinstance(v, str) else _java_number(v, item_type)
        return f"new ArrayList<>(Arrays.asList({', '.join(element(v) for v in value)}))"
    if declared == "HashMap" and isinstance(value, dict):
        puts = " ".join(f"put({json.dumps(k)}, {_java_generic(v)});" for k, v in value.items())
        return f"new HashMap<String, Object>() {{{{ {puts} }}}}"
    return _java_number(value, declared)


def _js_generic(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_js_generic(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_js_generic(v)}" for k, v in value.items()) + "}"
    return repr(value)


def to_js_source(value: Any, declared: str, item_type: str | None = None) -> str:
    if isinstance(value, str):
        return value
    if declared == "Bigint" and isinstance(value, int):
        return f"{value}n"
    return _js_generic(value)


def gold_call(functions: list[dict], expected: dict, language: str = "python") -> dict:
    """One expected call ``{name: {param: [acceptable]}}`` -> ``{"name", "arguments"}``."""
    (name, answer), = expected.items()
    doc = find_doc(functions, name)
    if doc is None and len(functions) == 1:
        doc = functions[0]  # single-function entries are checked against their one function
    doc = doc or {}
    name = doc.get("name", name)
    properties = (doc.get("parameters") or {}).get("properties") or {}
    arguments: dict[str, Any] = {}
    for param, acceptable in answer.items():
        present, value = _first(acceptable)
        if not present or (param not in properties and OPTIONAL in acceptable):
            continue  # an optional parameter the function does not have is best left out
        value = _pick_nested(value)
        if language != "python":
            spec = properties.get(param, {})
            declared = spec.get("type", "any")
            item_type = (spec.get("items") or {}).get("type")
            write = to_java_source if language == "java" else to_js_source
            value = write(value, declared, item_type)
        arguments[param] = value
    return {"name": name, "arguments": arguments}


def gold_calls(entry: dict, possible_answer: list[dict], language: str = "python") -> list[dict]:
    return [gold_call(entry["function"], expected, language) for expected in possible_answer]
