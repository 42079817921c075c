"""Rule validation of tool definitions, near-duplicate removal and the benchmark contamination filter.

Every check returns named reasons (stable codes such as ``invalid_json_schema``) so the ledger can
count rejections per rule. The same checks serve synthesized tools (where the sampled constraint is
known) and imported tools (where only the generic rules apply).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.validators import Draft202012Validator

from looptool.schema import Tool

# Words that say what type a parameter has, not what it means. A name made only of these
# ("a_number_value", "text_keyword", "fixed_text_values": seen from SmolLM2, which echoes the
# prompt's type words) tells a caller nothing.
GENERIC_NAME_WORDS = frozenset(
    "a an the of one text number numbers value values string strings integer decimal float flag bool boolean "
    "fixed keyword item items data param params parameter field fields list array object input arg argument".split())

JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list,
              "object": dict, "null": type(None)}


@dataclass(frozen=True)
class Problem:
    """One failed rule: a stable code for counting and a detail for people."""

    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


@dataclass
class ToolConstraint:
    """What a synthesized tool was asked to be (None fields are not checked)."""

    name_pattern: str | None = None
    naming_style: str | None = None
    min_params: int | None = None
    max_params: int | None = None


def _type_ok(value: Any, type_name: Any) -> bool:
    names = type_name if isinstance(type_name, list) else [type_name]
    for name in names:
        expected = JSON_TYPES.get(name)
        if expected is None:
            continue
        if name in ("integer", "number") and isinstance(value, bool):
            continue  # JSON Schema: true is not a number
        if name == "integer" and isinstance(value, float) and value.is_integer():
            return True
        if isinstance(value, expected):
            return True
    return False


def _reads_as_words(text: str) -> bool:
    """At least two alphabetic words and mostly letters: catches descriptions such as
    "[<example-key>] [<value_1>] [{<type_2>, ..." that a weak generator writes."""
    words = re.findall(r"[A-Za-z]{2,}", text)
    letters = sum(c.isalpha() or c.isspace() for c in text)
    return len(words) >= 2 and letters >= 0.7 * len(text)


def _name_problems(name: str, where: str) -> list[Problem]:
    # Weak generators write JSON literals, one-letter names, digit runs ("committer1234567890")
    # or names made of type words ("a_number_value"); none tells a caller what to pass.
    if (name.lower() in ("true", "false", "null", "none") or not 2 <= len(name) <= 40
            or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name) or re.search(r"\d{4,}", name)):
        return [Problem("bad_parameter_name", f"{where}: {name!r} is not a usable parameter name")]
    if set(normalise_name(name).split("_")) <= GENERIC_NAME_WORDS:
        return [Problem("generic_parameter_name", f"{where}: {name!r} names a type, not a meaning")]
    return []


def _walk_schemas(schema: Any, path: str = "parameters") -> Iterable[tuple[str, dict]]:
    """Every (sub)schema reachable through properties / items, with a readable path."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items() if isinstance(schema.get("properties"), dict) else []:
        yield from _walk_schemas(sub, f"{path}.{name}")
    items = schema.get("items")
    if isinstance(items, dict):
        yield from _walk_schemas(items, f"{path}[]")


def validate_tool_dict(obj: Any, constraint: ToolConstraint | None = None) -> tuple[Tool | None, list[Problem]]:
    """Check one tool definition; returns the parsed Tool (None if unreadable) and its problems."""
    try:
        tool = Tool.from_dict(obj)
    except (ValueError, TypeError) as err:
        code = "required_not_in_properties" if "not among properties" in str(err) else "malformed_tool"
        return None, [Problem(code, str(err))]
    problems: list[Problem] = []
    params = tool.parameters
    try:
        Draft202012Validator.check_schema(params)
    except jsonschema.SchemaError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "<root>"
        problems.append(Problem("invalid_json_schema", f"at {where}: {err.message}"))
    if not tool.description.strip():
        problems.append(Problem("empty_description", f"tool {tool.name!r} has no description"))
    props = params.get("properties", {})
    if tool.description.strip() and not _reads_as_words(tool.description):
        problems.append(Problem("weak_description", f"tool description {tool.description[:60]!r} is not a sentence"))
    for path, sub in _walk_schemas(params):
        for name in (sub.get("properties") or {}) if isinstance(sub.get("properties"), dict) else []:
            problems += _name_problems(name, f"{path}.{name}")
    for path, sub in _walk_schemas(params):
        if path == "parameters":
            continue
        if not isinstance(sub.get("description", ""), str) or (
            path.count(".") == 1 and "[]" not in path and not str(sub.get("description", "")).strip()
        ):
            problems.append(Problem("empty_description", f"{path} has no description"))
        if "enum" in sub:
            values = sub["enum"]
            if not isinstance(values, list) or not values:
                problems.append(Problem("enum_type_mismatch", f"{path}: enum must be a non-empty list"))
            elif "type" in sub and not all(_type_ok(v, sub["type"]) for v in values):
                problems.append(Problem("enum_type_mismatch", f"{path}: enum {values!r} does not fit type {sub['type']!r}"))
            elif len({repr(v) for v in values}) != len(values):
                problems.append(Problem("enum_type_mismatch", f"{path}: enum has repeated values"))
            elif any(isinstance(v, str) and not re.search(r"[A-Za-z0-9]", v) for v in values):
                # Seen from SmolLM2: enum values such as "{" and "}," (JSON debris, not options).
                problems.append(Problem("bad_enum_value", f"{path}: enum values {values!r} include non-words"))
        nested_required = sub.get("required")
        if path != "parameters" and isinstance(nested_required, list) and isinstance(sub.get("properties"), dict):
            missing = [r for r in nested_required if r not in sub["properties"]]
            if missing:
                problems.append(Problem("required_not_in_properties", f"{path}: required {missing} not among its properties"))
    if constraint is not None:
        if constraint.name_pattern and not re.fullmatch(constraint.name_pattern.strip("^$"), tool.name):
            problems.append(Problem("bad_name_style", f"{tool.name!r} is not {constraint.naming_style or constraint.name_pattern}"))
        n = len(props)
        if constraint.min_params is not None and n < constraint.min_params or (
            constraint.max_params is not None and n > constraint.max_params
        ):
            problems.append(Problem("param_count_out_of_range",
                                    f"{n} parameters, asked for {constraint.min_params}..{constraint.max_params}"))
    return tool, problems


# ------------------------------------------------------------------------------- near-duplicates
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def normalise_name(name: str) -> str:
    """``getWeather``, ``get_weather``, ``weather.get-weather`` style names -> lower-case word list."""
    words = re.split(r"[^A-Za-z0-9]+", _CAMEL.sub("_", name))
    return "_".join(w.lower() for w in words if w)


def parameter_signature(tool: Tool) -> tuple[tuple[str, str], ...]:
    """Sorted (normalised parameter name, JSON type) pairs: what a call to the tool looks like."""
    props = tool.parameters.get("properties", {})
    return tuple(sorted((normalise_name(k), str(v.get("type", "any")) if isinstance(v, dict) else "any")
                        for k, v in props.items()))


def duplicate_key(tool: Tool) -> tuple[str, tuple]:
    return normalise_name(tool.name), parameter_signature(tool)


# ------------------------------------------------------------------------------- contamination
@dataclass
class ContaminationIndex:
    """Names and signatures of evaluation functions that seed tools must not copy.

    A tool matches when its normalised name equals a benchmark function's normalised name (any
    namespace prefix dropped, so ``math.factorial`` blocks ``factorial``), or when its parameter
    signature equals one of theirs and has at least ``min_signature_params`` parameters (a single
    ``city: string`` parameter is too common to count as copying).
    """

    names: set[str] = field(default_factory=set)
    signatures: set[tuple] = field(default_factory=set)
    sources: dict[str, int] = field(default_factory=dict)
    min_signature_params: int = 2

    def add(self, function: dict[str, Any], source: str) -> None:
        name = str(function.get("name", ""))
        if not name:
            return
        self.names.add(normalise_name(name))
        self.names.add(normalise_name(name.rsplit(".", 1)[-1]))
        params = function.get("parameters") or function.get("arguments") or {}
        props = params.get("properties") if isinstance(params, dict) else None
        if isinstance(props, dict) and len(props) >= self.min_signature_params:
            tool = Tool(name=name, description="", parameters={"type": "object", "properties": props})
            self.signatures.add(parameter_signature(tool))
        self.sources[source] = self.sources.get(source, 0) + 1

    def match(self, tool: Tool) -> str | None:
        """Why the tool counts as contaminated, or None."""
        for candidate in {normalise_name(tool.name), normalise_name(tool.name.rsplit(".", 1)[-1])}:
            if candidate in self.names:
                return f"name {tool.name!r} matches a benchmark function"
        signature = parameter_signature(tool)
        if len(signature) >= self.min_signature_params and signature in self.signatures:
            return f"parameter signature {signature} matches a benchmark function"
        return None

    @classmethod
    def from_benchmarks(cls, bfcl: bool = True, acebench_dir: str | Path | None = None) -> "ContaminationIndex":
        """Functions of every BFCL v3 category (multi-turn API classes included) and of ACEBench."""
        index = cls()
        if bfcl:
            from looptool.eval import bfcl as bfcl_data

            for category in bfcl_data.SINGLE_TURN_CATEGORIES:
                for entry in bfcl_data.iter_entries(category):
                    for function in entry.get("function") or []:
                        index.add(function, "bfcl_v3")
            for class_name in bfcl_data.MULTI_TURN_DOC_FILES:
                for function in bfcl_data.multi_turn_function_docs(class_name):
                    index.add(function, "bfcl_v3")
        if acebench_dir is not None and Path(acebench_dir).is_dir():
            from looptool.eval import acebench

            for category in acebench.RUNNABLE_CATEGORIES:
                if not (Path(acebench_dir) / f"data_{category}.json").exists():
                    continue
                for entry in acebench.load_entries(acebench_dir, category):
                    for function in entry.get("function") or []:
                        index.add(function, "acebench")
        return index


# ------------------------------------------------------------------------------- pool filtering
@dataclass
class PoolEntry:
    """A tool in the API pool with where it came from and what it returns (for the tool agent)."""

    id: str
    tool: Tool
    source: str
    returns: str = "an object describing the result"
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "tool": self.tool.to_dict(), "source": self.source, "returns": self.returns,
                "meta": self.meta}

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> "PoolEntry":
        return cls(id=str(obj["id"]), tool=Tool.from_dict(obj["tool"]), source=str(obj.get("source", "")),
                   returns=str(obj.get("returns") or "an object describing the result"), meta=dict(obj.get("meta") or {}))


def admit(
    candidate_id: str,
    obj: Any,
    *,
    constraint: ToolConstraint | None,
    contamination: ContaminationIndex | None,
    seen: dict[tuple, str],
    seen_names: dict[str, str],
) -> tuple[Tool | None, Problem | None]:
    """Run every rule on one candidate against the pool admitted so far.

    Returns (tool, None) when admitted (and records it in ``seen``/``seen_names``), else
    (tool or None, first problem). Order: readable -> rules -> unique name -> near-duplicate ->
    contamination, so a broken tool is reported as broken, not as a duplicate.
    """
    tool, problems = validate_tool_dict(obj, constraint)
    if problems:
        return tool, problems[0]
    assert tool is not None
    if tool.name in seen_names:
        return tool, Problem("duplicate_name", f"{tool.name!r} already in the pool as {seen_names[tool.name]}")
    key = duplicate_key(tool)
    if key in seen:
        return tool, Problem("near_duplicate", f"same normalised name and signature as {seen[key]}")
    if contamination is not None:
        why = contamination.match(tool)
        if why:
            return tool, Problem("benchmark_contamination", why)
    seen[key] = candidate_id
    seen_names[tool.name] = candidate_id
    return tool, None
