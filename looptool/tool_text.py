"""A compact text form of a tool list for prompts: one signature line per tool, then one line per
described parameter.

The JSON schema of a tool spends most of its tokens on syntax (quotes, ``"type":``,
``"properties":``, ``"description":``, braces). This form keeps what a model needs to call the tool
(name, description, each parameter's name, type, whether it is required, enum values, default,
format and bounds, nested object fields and list item types) and drops the rest::

    get_weather(city: string, unit?: "c"|"f" = "c") -- Weather for a city.
      city: City name, e.g. Paris.

``?`` marks an optional parameter. Only the prompt changes: calls are still written as the JSON of
``looptool.toolcall.render_call``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_BOUNDS = (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"),
           ("minLength", "len>="), ("maxLength", "len<="), ("minItems", "items>="), ("maxItems", "items<="))


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def type_text(schema: Any) -> str:
    """A schema's type as short text: ``string``, ``"a"|"b"``, ``list[integer]``, ``{x: number, y?: string}``."""
    if not isinstance(schema, Mapping):
        return "any"
    if isinstance(schema.get("enum"), list):
        text = "|".join(_value(v) for v in schema["enum"])
    elif schema.get("anyOf") or schema.get("oneOf"):
        text = " or ".join(type_text(s) for s in schema.get("anyOf") or schema.get("oneOf"))
    else:
        kind = schema.get("type", "any")
        if isinstance(kind, list):
            text = " or ".join(map(str, kind))
        elif kind == "array":
            text = f"list[{type_text(schema.get('items'))}]"
        elif kind == "object" and isinstance(schema.get("properties"), Mapping):
            text = "{" + ", ".join(_param_text(n, s, n in (schema.get("required") or []))
                                   for n, s in schema["properties"].items()) + "}"
        else:
            text = str(kind)
        if schema.get("format"):
            text += f"<{schema['format']}>"
        if schema.get("pattern"):
            text += f" matching {schema['pattern']}"
    bounds = [f"{sign}{_value(schema[key])}" for key, sign in _BOUNDS if key in schema]
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def _param_text(name: str, schema: Any, required: bool) -> str:
    text = f"{name}{'' if required else '?'}: {type_text(schema)}"
    if isinstance(schema, Mapping) and "default" in schema:
        text += f" = {_value(schema['default'])}"
    return text


def _descriptions(schema: Mapping[str, Any], prefix: str, indent: str) -> list[str]:
    lines = []
    for name, spec in (schema.get("properties") or {}).items():
        if not isinstance(spec, Mapping):
            continue
        path = f"{prefix}{name}"
        if spec.get("description"):
            lines.append(f"{indent}{path}: {' '.join(str(spec['description']).split())}")
        nested = spec.get("items") if spec.get("type") == "array" else spec
        if isinstance(nested, Mapping) and isinstance(nested.get("properties"), Mapping):
            lines += _descriptions(nested, f"{path}.", indent)
    return lines


def tool_text(tool: Mapping[str, Any]) -> str:
    """One tool (``{"name", "description", "parameters"}`` or the OpenAI ``{"function": ...}`` form)."""
    fn = tool.get("function", tool)
    params = fn.get("parameters") or {}
    required = set(params.get("required") or [])
    signature = ", ".join(_param_text(n, s, n in required) for n, s in (params.get("properties") or {}).items())
    head = f"{fn['name']}({signature})"
    description = " ".join(str(fn.get("description") or "").split())
    lines = [f"{head} -- {description}" if description else head]
    return "\n".join(lines + _descriptions(params, "", "  "))
