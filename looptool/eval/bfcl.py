"""BFCL v3 data: categories, entries, possible answers, and the prompt a model sees (DESIGN.md §8).

The data ships inside the ``bfcl-eval`` package (version 2025.8.6.2, the last release holding the
``BFCL_v3_*.json`` files). It is read as plain files through :mod:`importlib.resources`, so none of
the package's heavy modules (model handlers, API clients) are imported just to load data.

Category names are the data file stems without the ``BFCL_v3_`` prefix: ``simple``, ``java``,
``live_simple``, ``multi_turn_base`` ...

Prompt conversion mirrors what BFCL's function-calling handlers send to a model:

1. a language hint is appended to every function description, and for Java/JavaScript every
   parameter becomes a ``string`` whose description says which Java/JS type to write in source
   syntax (the checker later parses those strings back);
2. BFCL's Python-style type names become JSON Schema types (``dict`` -> ``object``,
   ``float`` -> ``number`` plus ``format: float`` and a sentence in the description, ``tuple`` ->
   ``array``, ``any`` -> ``string``, unknown -> ``string``);
3. optionally, dots in function names become underscores (OpenAI-style APIs reject dots; the
   checker must then be told the same, see ``underscore_names``).

BFCL converts two levels of nesting and leaves deeper ones untouched; we convert every level, which
gives the same result wherever BFCL converts and valid JSON Schema where it does not.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
from collections.abc import Iterator
from typing import Any

from looptool.io import DataError

PACKAGE = "bfcl_eval"
FILE_PREFIX = "BFCL_v3_"

# Single-turn categories scored by the AST checker, with the language their values are written in.
AST_CATEGORIES: dict[str, str] = {
    "simple": "python",
    "java": "java",
    "javascript": "javascript",
    "multiple": "python",
    "parallel": "python",
    "parallel_multiple": "python",
    "live_simple": "python",
    "live_multiple": "python",
    "live_parallel": "python",
    "live_parallel_multiple": "python",
}
# Correct iff the model makes no call.
IRRELEVANCE_CATEGORIES = ("irrelevance", "live_irrelevance")
# Correct iff the model makes at least one call.
RELEVANCE_CATEGORIES = ("live_relevance",)
MULTI_TURN_CATEGORIES = (
    "multi_turn_base",
    "multi_turn_miss_func",
    "multi_turn_miss_param",
    "multi_turn_long_context",
)
SINGLE_TURN_CATEGORIES = tuple(AST_CATEGORIES) + IRRELEVANCE_CATEGORIES + RELEVANCE_CATEGORIES
ALL_CATEGORIES = SINGLE_TURN_CATEGORIES + MULTI_TURN_CATEGORIES

# BFCL type name -> JSON Schema type, as in bfcl_eval/constants/type_mappings.py (GORILLA_TO_OPENAPI).
JSON_SCHEMA_TYPE: dict[str, str] = {
    "integer": "integer", "number": "number", "float": "number", "string": "string",
    "boolean": "boolean", "bool": "boolean", "array": "array", "list": "array", "dict": "object",
    "object": "object", "tuple": "array", "any": "string", "byte": "integer", "short": "integer",
    "long": "integer", "double": "number", "char": "string", "ArrayList": "array", "Array": "array",
    "HashMap": "object", "Hashtable": "object", "Queue": "array", "Stack": "array", "Any": "string",
    "String": "string", "Bigint": "integer",
}

# The user message BFCL sends at the turn where a miss_func entry's withheld functions come back
# (bfcl_eval/constants/default_prompts.py, DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC; sent by
# BaseHandler.inference_multi_turn_FC in bfcl_eval/model_handler/base_handler.py).
ADDED_FUNCTIONS_PROMPT = "I have updated some more functions you can choose from. What about now?"

# Multi-turn API class -> its function-doc file under data/multi_turn_func_doc/.
MULTI_TURN_DOC_FILES: dict[str, str] = {
    "GorillaFileSystem": "gorilla_file_system.json",
    "MathAPI": "math_api.json",
    "MessageAPI": "message_api.json",
    "TwitterAPI": "posting_api.json",
    "TicketAPI": "ticket_api.json",
    "TradingBot": "trading_bot.json",
    "TravelAPI": "travel_booking.json",
    "VehicleControlAPI": "vehicle_control.json",
}


def category_language(category: str) -> str:
    """``python``, ``java`` or ``javascript``: the syntax argument values are written in."""
    return AST_CATEGORIES.get(category, "python")


def category_of_id(entry_id: str) -> str:
    """``live_simple_3-2-1`` -> ``live_simple``; ``multi_turn_base_7`` -> ``multi_turn_base``."""
    return entry_id.rsplit("_", 1)[0]


def _data_root():
    try:
        return importlib.resources.files(PACKAGE) / "data"
    except ModuleNotFoundError:
        raise DataError(PACKAGE, "bfcl-eval is not installed; install bfcl-eval==2025.8.6.2 with --no-deps") from None


def _read_jsonl_resource(resource) -> list[dict]:
    name = str(resource)
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(name, "file not found") from None
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(name, f"invalid JSON ({err.msg})", lineno) from None
    return rows


def _check_category(category: str) -> None:
    if category not in ALL_CATEGORIES:
        raise ValueError(f"unknown BFCL v3 category {category!r}; known: {', '.join(ALL_CATEGORIES)}")


@functools.lru_cache(maxsize=None)
def _entries(category: str) -> tuple[dict, ...]:
    _check_category(category)
    return tuple(_read_jsonl_resource(_data_root() / f"{FILE_PREFIX}{category}.json"))


@functools.lru_cache(maxsize=None)
def _answers(category: str) -> dict[str, Any]:
    _check_category(category)
    if category in IRRELEVANCE_CATEGORIES or category in RELEVANCE_CATEGORIES:
        return {}  # these categories have no possible-answer file: only the presence of a call counts
    rows = _read_jsonl_resource(_data_root() / "possible_answer" / f"{FILE_PREFIX}{category}.json")
    return {row["id"]: row["ground_truth"] for row in rows}


def load_entries(category: str) -> list[dict]:
    """The benchmark entries of one category, in file order (deep copies: callers may mutate)."""
    return copy.deepcopy(list(_entries(category)))


def iter_entries(category: str) -> Iterator[dict]:
    """Like :func:`load_entries` without copying; do not mutate what it yields."""
    return iter(_entries(category))


def entry_ids(category: str) -> list[str]:
    return [entry["id"] for entry in _entries(category)]


def load_possible_answers(category: str) -> dict[str, Any]:
    """id -> ground truth. Single-turn: ``[{func: {param: [acceptable values]}}]`` (one dict per
    expected call); multi-turn: ``[[python call source, ...] per user turn]``. Do not mutate."""
    return _answers(category)


@functools.lru_cache(maxsize=None)
def multi_turn_function_docs(class_name: str) -> tuple[dict, ...]:
    """Function docs (BFCL format) of one multi-turn API class."""
    try:
        filename = MULTI_TURN_DOC_FILES[class_name]
    except KeyError:
        raise ValueError(f"unknown multi-turn API class {class_name!r}") from None
    return tuple(_read_jsonl_resource(_data_root() / "multi_turn_func_doc" / filename))


# ---------------------------------------------------------------------------------------------
# Prompt building
# ---------------------------------------------------------------------------------------------

def _language_hint(language: str) -> str:
    # Sentences BFCL appends to each description (bfcl_eval/model_handler/utils.py).
    if language == "java":
        return " Note that the provided function is in Java 8 SDK syntax."
    if language == "javascript":
        return " Note that the provided function is in JavaScript syntax."
    return " Note that the provided function is in Python 3 syntax."


def _as_source_string_param(spec: dict, language: str) -> dict:
    """Java/JS parameter -> a string parameter whose description names the source-syntax type."""
    spec = dict(spec)
    lang_name = "Java" if language == "java" else "JavaScript"
    kind = spec.get("type")
    description = spec.get("description", "")
    if kind == "any":
        description += f" This parameter can be of any type of {lang_name} object in string representation."
    else:
        description += f" This is {lang_name} {kind} type parameter in string representation."
    list_types = ("ArrayList", "Array") if language == "java" else ("array",)
    if kind in list_types and isinstance(spec.get("items"), dict):
        description += (
            f" The list elements are of type {spec['items'].get('type')}; they are not in string representation."
        )
        spec.pop("items")
    if language == "javascript" and kind == "dict" and "properties" in spec:
        description += (
            " The dictionary entries have the following schema; they are not in string representation. "
            + json.dumps(spec.pop("properties"))
        )
    spec["description"] = description
    spec["type"] = "string"
    return spec


def to_json_schema(spec: dict) -> dict:
    """One BFCL parameter spec -> JSON Schema, converting type names at every nesting level."""
    out = dict(spec)
    kind = out.get("type")
    if kind is None or kind not in JSON_SCHEMA_TYPE:
        out["type"] = "string"  # BFCL's fallback for a missing or unknown type
    else:
        if kind == "float":
            # BFCL keeps the information that a float is wanted in two places.
            out["format"] = "float"
            out["description"] = out.get("description", "") + " This is a float type value."
        out["type"] = JSON_SCHEMA_TYPE[kind]
    if isinstance(out.get("properties"), dict):
        out["properties"] = {name: to_json_schema(sub) for name, sub in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = to_json_schema(out["items"])
    return out


def function_to_tool(function: dict, language: str = "python", underscore_names: bool = False) -> dict:
    """A BFCL function doc -> ``{"name", "description", "parameters"}`` with JSON Schema parameters."""
    params = copy.deepcopy(function.get("parameters") or {})
    props = params.get("properties") or {}
    if language in ("java", "javascript"):
        props = {name: _as_source_string_param(spec, language) for name, spec in props.items()}
    params["type"] = "object"
    params["properties"] = {name: to_json_schema(spec) for name, spec in props.items()}
    params.setdefault("required", [])
    name = function["name"]
    if underscore_names:
        name = name.replace(".", "_")
    return {
        "name": name,
        "description": function.get("description", "") + _language_hint(language),
        "parameters": params,
    }


def entry_tools(entry: dict, underscore_names: bool = False, turn_index: int | None = None) -> list[dict]:
    """Tools (JSON Schema) for an entry. Multi-turn entries take their docs from the API classes
    they involve; in ``miss_func`` entries the withheld functions appear only from the turn they
    are added back (``turn_index`` picks the turn; None = the first turn)."""
    category = category_of_id(entry["id"])
    language = category_language(category)
    if category in MULTI_TURN_CATEGORIES:
        functions = multi_turn_functions(entry, 0 if turn_index is None else turn_index)
    else:
        functions = entry["function"]
    return [function_to_tool(f, language, underscore_names) for f in functions]


def _missed_functions(entry: dict) -> list[tuple[int, list[str]]]:
    """``miss_func`` entries: (turn the functions come back, their names), earliest turn first."""
    return sorted((int(turn), list(names)) for turn, names in (entry.get("missed_function") or {}).items())


def multi_turn_functions(entry: dict, turn_index: int) -> list[dict]:
    """BFCL function docs visible to the model at a given turn of a multi-turn entry.

    Order matters to a model reading its tool list, so it follows BFCL: the class docs with every
    withheld function removed, then each withheld doc appended at the end once its turn is reached
    (``_llm_response_generation.process_multi_turn_test_case`` removes them,
    ``BaseHandler.inference_multi_turn_FC`` extends the function list with them)."""
    docs = [doc for cls in entry["involved_classes"] for doc in multi_turn_function_docs(cls)]
    missed = _missed_functions(entry)
    withheld = {name for _, names in missed for name in names}
    by_name = {doc["name"]: doc for doc in docs}  # no miss_func entry has two docs of one name
    visible = [doc for doc in docs if doc["name"] not in withheld]
    visible += [by_name[name] for turn, names in missed if turn <= turn_index for name in names if name in by_name]
    return [copy.deepcopy(doc) for doc in visible]


def entry_messages(entry: dict, turn_index: int = 0) -> list[dict]:
    """The chat messages of one turn of an entry, as given (live entries keep their own system and
    assistant messages). A ``miss_func`` turn that adds functions back is empty in the data; BFCL
    sends its fixed notice instead, and so do we."""
    turns = entry["question"]
    if any(turn == turn_index for turn, _ in _missed_functions(entry)):
        if turns[turn_index]:
            raise DataError(entry["id"], f"turn {turn_index} adds functions back but has its own question")
        return [{"role": "user", "content": ADDED_FUNCTIONS_PROMPT}]
    return [{"role": m["role"], "content": m.get("content", "")} for m in turns[turn_index]]


def build_prompt(entry: dict, underscore_names: bool = False) -> tuple[list[dict], list[dict]]:
    """(tools, messages) for a single-turn entry, or for the first turn of a multi-turn entry."""
    return entry_tools(entry, underscore_names), entry_messages(entry, 0)

