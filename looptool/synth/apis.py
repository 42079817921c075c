"""API synthesis: an :class:`ApiSpec` -> a schema-constrained generator request -> a tool definition.

The spec already fixes the parameter kinds, which are required and the value formats; the JSON
Schema sent with the request fixes the shape (one entry per parameter, in order, each with exactly
the fields its kind needs, names matching the sampled naming style). The generator only writes the
words: tool name, descriptions, parameter names, enum values, nested field names. Even a 135M model
then yields a structurally sound tool most of the time; what it gets wrong (empty or repeated
names, duplicate parameters, copying a benchmark function) is caught by :mod:`looptool.synth.validate`.
"""

from __future__ import annotations

import re
from typing import Any

from looptool.llm.client import ChatRequest, ChatResult
from looptool.synth.trees import ApiSpec, ParamSlot

# An example name per naming style, shown to the generator (the pattern is enforced while decoding).
NAME_EXAMPLES = {
    "snake_case": "get_hourly_forecast",
    "camelCase": "getHourlyForecast",
    "dotted_namespace": "forecast.get_hourly",
    "PascalCase": "GetHourlyForecast",
}
# Parameter names follow the tool's style family: snake for snake/dotted, camel for camel/Pascal.
PARAM_NAME_PATTERNS = {
    "snake": "^[a-z][a-z0-9]*(_[a-z0-9]+){0,3}$",
    "camel": "^[a-z][a-z0-9]*([A-Z][a-z0-9]+){0,3}$",
}
SCALAR_TYPES = ("string", "integer", "number", "boolean")
ENUM_VALUE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9 ._-]*$"
KIND_WORDS = {
    "string": "a text", "integer": "a whole number", "number": "a decimal number", "boolean": "a true/false flag",
    "enum": "one of a few fixed text values", "array": "a list of values", "object": "an object with named fields",
}

SYSTEM_PROMPT = (
    "You design APIs for a tool-using assistant. Given a capability and constraints, write one tool "
    "definition as JSON: a specific name, a one-sentence description, and each requested parameter with "
    "a clear name and description. Name each parameter after what it means for this capability, never after "
    "its type. Parameter descriptions state the value format with an example."
    # No example names here: SmolLM2 copied them verbatim into unrelated tools (measured).
)


def _param_style(spec: ApiSpec) -> str:
    return "camel" if spec.naming_style in ("camelCase", "PascalCase") else "snake"


def _text(min_len: int, max_len: int) -> dict[str, Any]:
    # Lengths are NOT put in the decoding schema: llama.cpp unrolls minLength/maxLength into one
    # nested grammar rule per character, which slowed SmolLM2 from ~28 to ~1 tok/s (measured here).
    # max_tokens bounds the length instead; validation checks what comes back.
    del min_len, max_len
    return {"type": "string"}


def slot_schema(slot: ParamSlot, name_pattern: str, describe: bool = True) -> dict[str, Any]:
    """What the generator writes for one parameter position (``describe=False``: no description)."""
    props: dict[str, Any] = {"name": {"type": "string", "pattern": name_pattern}}
    if describe:
        props["description"] = _text(8, 110)
    if slot.kind == "enum":
        # Words only: SmolLM2 filled free enum strings with JSON debris ("{", "},", "required:").
        props["values"] = {"type": "array", "items": {"type": "string", "pattern": ENUM_VALUE_PATTERN},
                           "minItems": 2, "maxItems": 4}
    elif slot.kind == "array":
        props["item_type"] = {"type": "string", "enum": ["string", "integer", "number"]}
    elif slot.kind == "object":
        field = {
            "type": "object",
            "properties": {"name": {"type": "string", "pattern": name_pattern},
                           "type": {"type": "string", "enum": list(SCALAR_TYPES)}},
            "required": ["name", "type"],
            "additionalProperties": False,
        }
        props["fields"] = {"type": "array", "items": field, "minItems": 1, "maxItems": 3}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def generator_schema(spec: ApiSpec, describe_parameters: bool = True) -> dict[str, Any]:
    """The JSON Schema the generator's reply must satisfy for this spec.

    ``describe_parameters=False`` leaves parameter descriptions to :func:`template_description`:
    it roughly halves the tokens the generator writes, which matters where grammar-constrained
    decoding is slow (llama.cpp checks the grammar against the whole vocabulary every token).
    """
    name_pattern = PARAM_NAME_PATTERNS[_param_style(spec)]
    slots = [slot_schema(s, name_pattern, describe_parameters) for s in spec.slots]
    return {
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": spec.name_pattern},
            "description": _text(12, 160),
            "parameters": {"type": "array", "prefixItems": slots, "items": False,
                           "minItems": len(slots), "maxItems": len(slots)},
        },
        "required": ["name", "description", "parameters"],
        "additionalProperties": False,
    }


def template_description(slot: ParamSlot, name: str) -> str:
    """A parameter description written from the spec: the parameter's words, kind and value format."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace(".", " ").strip().lower()
    text = f"The {words}"
    if slot.format_hint:
        text += f": {slot.format_hint}"
    elif slot.kind == "enum":
        text += ": one of the listed values, written exactly as listed"
    elif slot.kind in ("integer", "number"):
        text += f" as a {'whole' if slot.kind == 'integer' else 'decimal'} number"
    elif slot.kind == "boolean":
        text += " (true or false)"
    return text + "."


def generator_messages(spec: ApiSpec) -> list[dict[str, str]]:
    lines = [
        f"Domain: {spec.domain.replace('_', ' ')} / {spec.subdomain.replace('_', ' ')}",
        f"Capability: {spec.capability}",
        f"Tool name style: {spec.naming_style} (like {NAME_EXAMPLES.get(spec.naming_style, 'do_something')})",
        f"The tool returns {spec.return_hint}.",
        "Parameters, in this order:",
    ]
    for i, slot in enumerate(spec.slots, start=1):
        need = "required" if slot.required else "optional"
        line = f"{i}. {KIND_WORDS[slot.kind]} ({need})"
        if slot.format_hint:
            line += f"; its value is {slot.format_hint}"
        lines.append(line)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines)}]


def generator_request(spec: ApiSpec, seed: int, max_tokens: int, temperature: float,
                      describe_parameters: bool = True) -> ChatRequest:
    # The per-spec seed keeps request keys distinct and stable: re-runs hit the cache.
    return ChatRequest(messages=generator_messages(spec), schema=generator_schema(spec, describe_parameters),
                       schema_name="tool",
                       temperature=temperature, max_tokens=max_tokens, seed=seed * 100_003 + spec.index)


def _parameter_schema(slot: ParamSlot, entry: dict[str, Any]) -> dict[str, Any]:
    description = str(entry["description"]).strip() if "description" in entry else template_description(slot, entry["name"])
    if slot.kind == "enum":
        return {"type": "string", "enum": list(entry.get("values") or []), "description": description}
    if slot.kind == "array":
        return {"type": "array", "items": {"type": entry.get("item_type", "string")}, "description": description}
    if slot.kind == "object":
        fields = entry.get("fields") or []
        return {
            "type": "object",
            "description": description,
            "properties": {f["name"]: {"type": f["type"]} for f in fields if isinstance(f, dict) and "name" in f},
            "required": [f["name"] for f in fields if isinstance(f, dict) and "name" in f],
        }
    return {"type": slot.kind, "description": description}


class MalformedGeneration(ValueError):
    """The generator's reply cannot be turned into a tool at all."""


def assemble_tool(spec: ApiSpec, reply: Any) -> dict[str, Any]:
    """Generator reply -> ``{"name", "description", "parameters"}``.

    Raises :class:`MalformedGeneration` when the reply lacks the parts (possible with servers that
    ignore the schema); duplicate parameter names are kept visible: the later one overwrites the
    earlier, so the count check in validation rejects the tool instead of it silently shrinking.
    """
    if not isinstance(reply, dict) or not isinstance(reply.get("parameters"), list):
        raise MalformedGeneration("reply is not an object with a 'parameters' list")
    entries = reply["parameters"]
    if len(entries) != len(spec.slots):
        raise MalformedGeneration(f"reply has {len(entries)} parameters, the spec asked for {len(spec.slots)}")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for slot, entry in zip(spec.slots, entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise MalformedGeneration("a parameter entry has no name")
        name = entry["name"]
        properties[name] = _parameter_schema(slot, entry)
        if slot.required and name not in required:
            required.append(name)
    return {
        "name": str(reply.get("name", "")),
        "description": str(reply.get("description", "")).strip(),
        "parameters": {"type": "object", "properties": properties, "required": required},
    }


def describe_failure(result: ChatResult) -> str:
    return f"generator_{result.error_kind or 'failed'}"


def synthesize(
    client: Any,
    specs: list[ApiSpec],
    *,
    seed: int,
    max_tokens: int,
    temperature: float,
    contamination: Any,
    ledger: Any,
    concurrency: int | None = None,
    describe_parameters: bool = True,
) -> list[Any]:
    """Ask the generator for one tool per spec and admit the valid ones; every spec gets a ledger record.

    Returns the admitted :class:`~looptool.synth.validate.PoolEntry` list in spec order.
    """
    from looptool.synth.validate import PoolEntry, ToolConstraint, admit

    ledger.expect(len(specs))
    requests = [generator_request(s, seed, max_tokens, temperature, describe_parameters) for s in specs]
    results = client.chat_many(requests, concurrency=concurrency, desc="synth_apis")
    seen: dict[tuple, str] = {}
    seen_names: dict[str, str] = {}
    pool: list[PoolEntry] = []
    for spec, result in zip(specs, results):
        info = {"domain": spec.domain, "capability": spec.capability, "naming_style": spec.naming_style}
        if not result.ok:
            ledger.reject(spec.id, describe_failure(result), detail=result.error, raw=(result.text or "")[:500], **info)
            continue
        try:
            tool_dict = assemble_tool(spec, result.parsed)
        except MalformedGeneration as err:
            ledger.reject(spec.id, "malformed_generation", detail=str(err), raw=(result.text or "")[:500], **info)
            continue
        n = len(spec.slots)
        constraint = ToolConstraint(name_pattern=spec.name_pattern, naming_style=spec.naming_style,
                                    min_params=n, max_params=n)
        tool, problem = admit(spec.id, tool_dict, constraint=constraint, contamination=contamination,
                              seen=seen, seen_names=seen_names)
        if problem is not None:
            ledger.reject(spec.id, problem.code, detail=problem.detail, tool=tool_dict, **info)
            continue
        ledger.keep(spec.id, name=tool.name, **info)
        pool.append(PoolEntry(id=spec.id, tool=tool, source="synth", returns=spec.return_hint,
                              meta={"spec": spec.to_dict()}))
    return pool
