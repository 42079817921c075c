"""The data model every stage speaks: Tool, Call, Sample (DESIGN.md §3).

Objects are plain dataclasses that convert to and from JSON dicts. ``from_dict`` validates and
raises ``ValueError`` with a message a person can act on; :func:`looptool.io.iter_jsonl` adds
file and line number to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Union

from looptool.io import content_hash

ORIGINS = ("seed", "hppl", "error_seed", "corrected", "edde", "fresh")
# What the dialogue step of a seed sample served (``meta.need_kind``); held-out sets score per kind.
NEED_KINDS = ("single_call", "parallel", "multi_step", "needs_clarification", "no_tool")
ROLES = ("system", "user", "assistant", "tool")


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


@dataclass(frozen=True)
class Call:
    """One function call: a tool name and a JSON object of arguments."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: Any) -> "Call":
        _require(isinstance(obj, dict), f"a call must be an object, got {type(obj).__name__}")
        name = obj.get("name")
        _require(isinstance(name, str) and name.strip() != "", "a call needs a non-empty string 'name'")
        args = obj.get("arguments", {})
        if isinstance(args, str):
            # OpenAI-style payloads carry arguments as a JSON string.
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError:
                raise ValueError(f"call {name!r}: 'arguments' is a string but not valid JSON") from None
        _require(isinstance(args, dict), f"call {name!r}: 'arguments' must be an object, got {type(args).__name__}")
        return cls(name=name, arguments=args)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class Tool:
    """A callable tool: name, description and a JSON Schema object for its parameters."""

    name: str
    description: str
    parameters: dict[str, Any]

    @classmethod
    def from_dict(cls, obj: Any) -> "Tool":
        _require(isinstance(obj, dict), f"a tool must be an object, got {type(obj).__name__}")
        if obj.get("type") == "function" and isinstance(obj.get("function"), dict):
            obj = obj["function"]  # accept the OpenAI {"type": "function", "function": {...}} wrapper
        name = obj.get("name")
        _require(isinstance(name, str) and name.strip() != "", "a tool needs a non-empty string 'name'")
        description = obj.get("description", "")
        _require(isinstance(description, str), f"tool {name!r}: 'description' must be a string")
        params = obj.get("parameters", {"type": "object", "properties": {}})
        _require(isinstance(params, dict), f"tool {name!r}: 'parameters' must be an object")
        _require(params.get("type", "object") == "object", f"tool {name!r}: parameters 'type' must be 'object'")
        props = params.get("properties", {})
        _require(isinstance(props, dict), f"tool {name!r}: 'properties' must be an object")
        required = params.get("required", [])
        _require(
            isinstance(required, list) and all(isinstance(r, str) for r in required),
            f"tool {name!r}: 'required' must be a list of strings",
        )
        missing = [r for r in required if r not in props]
        _require(not missing, f"tool {name!r}: required {missing} not among properties {sorted(props)}")
        params = {"type": "object", **params, "properties": props, "required": required}
        return cls(name=name, description=description, parameters=params)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def to_openai(self) -> dict[str, Any]:
        """The ``{"type": "function", "function": ...}`` form chat templates expect."""
        return {"type": "function", "function": self.to_dict()}


Label = Union[list[Call], str]


def validate_message(msg: Any, index: int) -> dict[str, Any]:
    """Check one chat message; assistant tool calls are normalised to ``{"name", "arguments"}``."""
    _require(isinstance(msg, dict), f"message {index}: must be an object")
    role = msg.get("role")
    _require(role in ROLES, f"message {index}: role must be one of {ROLES}, got {role!r}")
    content = msg.get("content", "")
    _require(content is None or isinstance(content, str), f"message {index}: 'content' must be a string")
    out = {"role": role, "content": content or ""}
    if role == "assistant" and msg.get("tool_calls"):
        calls = msg["tool_calls"]
        _require(isinstance(calls, list), f"message {index}: 'tool_calls' must be a list")
        out["tool_calls"] = [
            Call.from_dict(c.get("function", c) if isinstance(c, dict) else c).to_dict() for c in calls
        ]
    if role == "tool" and msg.get("name") is not None:
        out["name"] = str(msg["name"])
    return out


def label_from_json(value: Any) -> Label:
    if isinstance(value, str):
        return value
    _require(isinstance(value, list), "'label' must be a list of calls or a text reply")
    return [Call.from_dict(c) for c in value]


def label_to_json(label: Label) -> Any:
    return label if isinstance(label, str) else [c.to_dict() for c in label]


@dataclass
class Sample:
    """One training step: the conversation so far, the tools on offer, and the right next move.

    ``label`` is a list of calls (several = parallel calls) or a text reply when no call is right.
    """

    tools: list[Tool]
    messages: list[dict[str, Any]]
    label: Label
    origin: str = "seed"
    round: int = 0
    parent: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = self.content_id()

    def content_id(self) -> str:
        """Hash of what the model sees and must produce; lineage and bookkeeping excluded."""
        return content_hash(
            {
                "tools": [t.to_dict() for t in self.tools],
                "messages": self.messages,
                "label": label_to_json(self.label),
            }
        )

    @property
    def expects_call(self) -> bool:
        return isinstance(self.label, list) and len(self.label) > 0

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> "Sample":
        for key in ("tools", "messages", "label"):
            _require(key in obj, f"sample is missing '{key}'")
        _require(isinstance(obj["tools"], list), "'tools' must be a list")
        tools = [Tool.from_dict(t) for t in obj["tools"]]
        names = [t.name for t in tools]
        _require(len(set(names)) == len(names), f"tool names must be unique, got {names}")
        _require(isinstance(obj["messages"], list) and obj["messages"], "'messages' must be a non-empty list")
        messages = [validate_message(m, i) for i, m in enumerate(obj["messages"])]
        label = label_from_json(obj["label"])
        if isinstance(label, list):
            unknown = sorted({c.name for c in label} - set(names))
            _require(not unknown, f"label calls unknown tools {unknown}")
        origin = obj.get("origin", "seed")
        _require(origin in ORIGINS, f"'origin' must be one of {ORIGINS}, got {origin!r}")
        meta = obj.get("meta") or {}
        _require(isinstance(meta, dict), "'meta' must be an object")
        return cls(
            tools=tools,
            messages=messages,
            label=label,
            origin=origin,
            round=int(obj.get("round", 0)),
            parent=obj.get("parent"),
            meta=meta,
            id=str(obj.get("id") or ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tools": [t.to_dict() for t in self.tools],
            "messages": self.messages,
            "label": label_to_json(self.label),
            "origin": self.origin,
            "round": self.round,
            "parent": self.parent,
            "meta": self.meta,
        }
