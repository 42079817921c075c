"""Tool import: tool docs a user already has, turned into pool candidates for the same validation.

Accepted inputs (one file each, JSON or YAML):

* a list of tools, each in one of the common shapes: plain ``{"name", "description", "parameters"}``;
  OpenAI ``{"type": "function", "function": {...}}``; ToolBench API entries
  (``{"api_name" | "name", "api_description" | "description", "required_parameters": [...],
  "optional_parameters": [...]}`` with ``{"name", "type", "description", "default"}`` items), or a
  ToolBench tool holding such entries under ``api_list``;
* an OpenAPI 3 document (``openapi: 3.x`` with ``paths``): one tool per operation, named by its
  ``operationId`` (or method + path), parameters from path/query/header parameters plus the JSON
  request body's properties, local ``$ref``s resolved.

Reading never raises on a broken entry: each entry becomes a :class:`Candidate` with either a tool
dict or the reason it could not be read, so the stage can record it and go on.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# ToolBench writes types in upper case and sometimes as Python names.
TOOLBENCH_TYPES = {"STRING": "string", "NUMBER": "number", "INTEGER": "integer", "BOOLEAN": "boolean",
                   "ARRAY": "array", "OBJECT": "object", "ENUM": "string", "DATE (YYYY-MM-DD)": "string",
                   "TIME (24-HOUR HH:MM)": "string", "STR": "string", "INT": "integer", "FLOAT": "number",
                   "BOOL": "boolean", "LIST": "array", "DICT": "object"}


@dataclass
class Candidate:
    """One entry of an import file: a tool dict to validate, or why it could not be read."""

    id: str
    source: str
    tool: dict[str, Any] | None = None
    problem: str | None = None
    detail: str | None = None


def _load_document(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        return YAML(typ="safe").load(text)
    return json.loads(text)


def _toolbench_parameters(entry: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for group, is_required in (("required_parameters", True), ("optional_parameters", False)):
        items = entry.get(group) or []
        if not isinstance(items, list):
            raise ValueError(f"'{group}' must be a list")
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ValueError(f"an item of '{group}' has no name")
            raw_type = str(item.get("type", "string"))
            schema: dict[str, Any] = {"type": TOOLBENCH_TYPES.get(raw_type.upper(), raw_type.lower()),
                                      "description": str(item.get("description") or "")}
            if item.get("default") not in (None, ""):
                schema["default"] = item["default"]
            properties[item["name"]] = schema
            if is_required:
                required.append(item["name"])
    return {"type": "object", "properties": properties, "required": required}


def _toolbench_name(entry: dict[str, Any], tool_name: str | None) -> str:
    name = str(entry.get("api_name") or entry.get("name") or "")
    # ToolBench names often hold spaces and punctuation; make them callable identifiers.
    name = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")
    if tool_name:
        prefix = re.sub(r"[^A-Za-z0-9_]+", "_", tool_name).strip("_")
        name = f"{prefix}_{name}" if prefix else name
    return name


def tool_from_list_entry(entry: Any, tool_name: str | None = None) -> dict[str, Any]:
    """One entry of a tool list -> plain tool dict (raises ValueError on an unreadable entry)."""
    if not isinstance(entry, dict):
        raise ValueError(f"entry is a {type(entry).__name__}, not an object")
    if entry.get("type") == "function" and isinstance(entry.get("function"), dict):
        entry = entry["function"]
    if "required_parameters" in entry or "optional_parameters" in entry or "api_name" in entry:
        return {"name": _toolbench_name(entry, tool_name),
                "description": str(entry.get("api_description") or entry.get("description") or ""),
                "parameters": _toolbench_parameters(entry)}
    if "name" not in entry:
        raise ValueError("entry has no 'name'")
    return {"name": entry["name"], "description": entry.get("description", ""),
            "parameters": entry.get("parameters", {"type": "object", "properties": {}})}


def _resolve_refs(node: Any, document: dict[str, Any], depth: int = 0) -> Any:
    """Inline local ``#/...`` references (depth-capped: recursive schemas stop at 8 levels)."""
    if depth > 8:
        raise ValueError("$ref nesting deeper than 8 levels (recursive schema?)")
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/"):
                raise ValueError(f"only local references are supported, got {ref!r}")
            target: Any = document
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, dict) or part not in target:
                    raise ValueError(f"unresolvable reference {ref!r}")
                target = target[part]
            return _resolve_refs(copy.deepcopy(target), document, depth + 1)
        return {k: _resolve_refs(v, document, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_refs(v, document, depth) for v in node]
    return node


def _operation_name(method: str, path: str, operation: dict[str, Any]) -> str:
    if isinstance(operation.get("operationId"), str) and operation["operationId"].strip():
        return re.sub(r"[^A-Za-z0-9_]+", "_", operation["operationId"]).strip("_")
    words = [w for w in re.split(r"[^A-Za-z0-9]+", path) if w]
    return "_".join([method, *words]).lower()


def tool_from_operation(method: str, path: str, operation: dict[str, Any], path_item: dict[str, Any],
                        document: dict[str, Any]) -> dict[str, Any]:
    """One OpenAPI operation -> tool dict (raises ValueError when the operation cannot be read)."""
    if not isinstance(operation, dict):
        raise ValueError("operation is not an object")
    properties: dict[str, Any] = {}
    required: list[str] = []
    parameters = list(path_item.get("parameters") or []) + list(operation.get("parameters") or [])
    for raw in parameters:
        param = _resolve_refs(raw, document)
        if not isinstance(param, dict) or not isinstance(param.get("name"), str):
            raise ValueError("a parameter has no name")
        if param.get("in") == "cookie":
            continue  # cookies are session state, not something a caller chooses
        schema = dict(param.get("schema") or {"type": "string"})
        if param.get("description") and "description" not in schema:
            schema["description"] = param["description"]
        properties[param["name"]] = schema
        if param.get("required") or param.get("in") == "path":
            required.append(param["name"])
    body = operation.get("requestBody")
    if body is not None:
        body = _resolve_refs(body, document)
        content = (body.get("content") or {}) if isinstance(body, dict) else {}
        media = content.get("application/json") or next(iter(content.values()), None) if content else None
        schema = (media or {}).get("schema") if isinstance(media, dict) else None
        if isinstance(schema, dict) and schema.get("type", "object") == "object":
            for name, sub in (schema.get("properties") or {}).items():
                properties[name] = sub
            required += [r for r in schema.get("required") or [] if r not in required]
        elif isinstance(schema, dict):
            properties["body"] = schema
            if body.get("required"):
                required.append("body")
    description = operation.get("summary") or operation.get("description") or ""
    return {"name": _operation_name(method, path, operation), "description": str(description).strip(),
            "parameters": {"type": "object", "properties": properties, "required": required}}


def read_import_file(path: str | Path) -> list[Candidate]:
    """Every entry of one import file as a candidate; a file that cannot be read is one bad candidate."""
    path = Path(path)
    source = path.name
    try:
        document = _load_document(path)
    except (OSError, ValueError, Exception) as err:  # YAML errors do not derive from ValueError
        return [Candidate(id=f"{source}#file", source=source, problem="unreadable_file", detail=str(err)[:300])]
    candidates: list[Candidate] = []
    if isinstance(document, dict) and "openapi" in document:
        if not str(document["openapi"]).startswith("3"):
            return [Candidate(id=f"{source}#file", source=source, problem="unsupported_openapi_version",
                              detail=f"openapi {document['openapi']!r}; only 3.x is read")]
        paths = document.get("paths")
        if not isinstance(paths, dict):
            return [Candidate(id=f"{source}#file", source=source, problem="malformed_tool", detail="no 'paths' mapping")]
        for api_path, item in paths.items():
            if not isinstance(item, dict):
                candidates.append(Candidate(id=f"{source}#{api_path}", source=source, problem="malformed_tool",
                                            detail="path item is not an object"))
                continue
            for method in HTTP_METHODS:
                if method not in item:
                    continue
                cid = f"{source}#{method.upper()} {api_path}"
                try:
                    tool = tool_from_operation(method, api_path, item[method], item, document)
                    candidates.append(Candidate(id=cid, source=source, tool=tool))
                except (ValueError, TypeError, AttributeError) as err:
                    candidates.append(Candidate(id=cid, source=source, problem="malformed_tool", detail=str(err)))
        return candidates
    entries: list[tuple[Any, str | None]] = []
    if isinstance(document, dict) and isinstance(document.get("api_list"), list):  # one ToolBench tool
        entries = [(e, document.get("tool_name")) for e in document["api_list"]]
    elif isinstance(document, dict) and isinstance(document.get("tools"), list):
        entries = [(e, None) for e in document["tools"]]
    elif isinstance(document, list):
        for item in document:
            if isinstance(item, dict) and isinstance(item.get("api_list"), list):
                entries += [(e, item.get("tool_name")) for e in item["api_list"]]
            else:
                entries.append((item, None))
    else:
        return [Candidate(id=f"{source}#file", source=source, problem="unsupported_format",
                          detail="expected a list of tools, a ToolBench tool, or an OpenAPI 3 document")]
    for index, (entry, tool_name) in enumerate(entries):
        cid = f"{source}#{index}"
        try:
            candidates.append(Candidate(id=cid, source=source, tool=tool_from_list_entry(entry, tool_name)))
        except (ValueError, TypeError) as err:
            candidates.append(Candidate(id=cid, source=source, problem="malformed_tool", detail=str(err)))
    return candidates


def import_tools(paths: list[str | Path], *, contamination: Any, ledger: Any) -> list[Any]:
    """Read every file, validate every entry, return the admitted pool entries (ledger: one record each)."""
    from looptool.synth.validate import PoolEntry, admit

    seen: dict[tuple, str] = {}
    seen_names: dict[str, str] = {}
    pool: list[PoolEntry] = []
    for path in paths:
        candidates = read_import_file(path)
        ledger.expect(len(candidates))
        for cand in candidates:
            if cand.problem is not None:
                ledger.reject(cand.id, cand.problem, detail=cand.detail, source=cand.source)
                continue
            tool, problem = admit(cand.id, cand.tool, constraint=None, contamination=contamination,
                                  seen=seen, seen_names=seen_names)
            if problem is not None:
                ledger.reject(cand.id, problem.code, detail=problem.detail, source=cand.source)
                continue
            ledger.keep(cand.id, name=tool.name, source=cand.source)
            pool.append(PoolEntry(id=f"import:{cand.id}", tool=tool, source=f"import:{cand.source}"))
    return pool
