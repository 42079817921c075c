"""JSON Schemas for constrained decoding, built from tool definitions.

Tool parameter schemas come from anywhere (our generator, ToolBench, OpenAPI) and carry keywords a
decoding grammar does not need or cannot compile (descriptions, examples, formats, ``nullable``).
:func:`decoding_schema` keeps the structural core so that what the model writes is valid for the
tool by construction: types, properties, required, enums, array items, and no extra keys.
"""

from __future__ import annotations

import re
from typing import Any

from looptool.schema import Tool

# Kept for decoding. minLength/maxLength are dropped on purpose: llama.cpp compiles them into one
# nested rule per character and generation slowed to ~1 tok/s in our measurements.
_KEEP_NUMERIC = ("minimum", "maximum", "minItems", "maxItems")


def decoding_schema(schema: Any, *, max_string: int = 60) -> dict[str, Any]:
    """Structural copy of a parameter schema for grammar-constrained decoding.

    String lengths are left to the token limit (see ``_KEEP_NUMERIC``). Objects with declared
    properties admit no other keys; objects without properties take flat scalar values.
    """
    # max_string is passed down for servers where string lengths are cheap; unused by llama.cpp.
    if not isinstance(schema, dict):
        return {"type": "string"}
    out: dict[str, Any] = {}
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return {"enum": list(schema["enum"])}
    if "const" in schema:
        return {"const": schema["const"]}
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return {"anyOf": [decoding_schema(s, max_string=max_string) for s in schema[key]]}
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or ["string"]
        if len(kinds) > 1:
            return {"anyOf": [decoding_schema({**schema, "type": k}, max_string=max_string) for k in kinds]}
        kind = kinds[0]
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    out["type"] = kind
    for key in _KEEP_NUMERIC:
        if isinstance(schema.get(key), (int, float)) and not isinstance(schema.get(key), bool):
            out[key] = schema[key]
    if kind == "string":
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and pattern.startswith("^") and pattern.endswith("$") and "\\" not in pattern:
            out["pattern"] = pattern  # backslash escapes do not compile in llama.cpp grammars
        elif "enum" not in schema:
            # Non-empty: SmolLM2 otherwise plans empty ids (seen: "tracking_id": ""). A lower bound
            # alone compiles to a cheap rule; only an upper bound unrolls (see _KEEP_NUMERIC).
            out["minLength"] = max(1, int(schema.get("minLength", 1)) if isinstance(schema.get("minLength"), int) else 1)
    elif kind == "array":
        out["items"] = decoding_schema(schema.get("items", {"type": "string"}), max_string=max_string)
        out.setdefault("maxItems", 4)
    elif kind == "object":
        props = schema.get("properties")
        if isinstance(props, dict) and props:
            out["properties"] = {k: decoding_schema(v, max_string=max_string) for k, v in props.items()}
            required = [r for r in schema.get("required") or [] if r in props]
            out["required"] = required
            out["additionalProperties"] = False
        else:
            # Free-form object: keep values flat so the grammar stays small and the output short.
            out["additionalProperties"] = {"type": ["string", "number", "boolean"]}
    return out


def arguments_schema(tool: Tool, *, max_string: int = 60) -> dict[str, Any]:
    schema = decoding_schema(tool.parameters, max_string=max_string)
    schema.setdefault("properties", {})
    schema.setdefault("required", [])
    schema["additionalProperties"] = False
    return schema


def call_schema(tools: list[Tool], *, max_string: int = 60) -> dict[str, Any]:
    """One call to any of ``tools``: the name picks the arguments schema (an anyOf per tool)."""
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": arguments_schema(t, max_string=max_string)},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in tools
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


def text_schema() -> dict[str, Any]:
    """A free string (lengths are bounded by max_tokens, see ``_KEEP_NUMERIC``)."""
    return {"type": "string"}


# Message text between the mentioned values: a positive class without quotes, backslashes or
# newlines (a quote would end the JSON string, and escapes do not compile in llama.cpp grammars).
_FILLER = "[a-zA-Z0-9 ,.;:!?'()/&%+*=@#$-]*"


def _literal(value: str) -> str:
    """A regex matching ``value`` literally, written without backslash escapes (llama.cpp rejects
    most of them): every non-alphanumeric character goes into a one-character class."""
    out = []
    for ch in value:
        if ch.isalnum() or ch == " ":
            out.append(ch)
        elif ch in "-":
            out.append("[-]")
        else:
            out.append(f"[{ch}]")
    return "".join(out)


def mentionable(value: str) -> bool:
    """Values a pattern can demand verbatim (no quotes, backslashes, brackets, carets, newlines)."""
    return bool(value.strip()) and not any(c in value for c in '"\\[]^\n')


def mention_pattern(values: list[str]) -> str:
    """A regex a message must match to contain every value, in order, as written.

    Used as the ``pattern`` of the user agent's message so that the values the plan needs are
    in the conversation by construction (the grounding rule then holds for a correct call).
    """
    return "^" + _FILLER + "".join(_literal(v) + _FILLER for v in values if mentionable(v)) + "$"
