"""ACEBench (English): data, scoring rules, prompt (DESIGN.md §8).

ACEBench's data is not on PyPI; the evaluator reads a directory laid out like the benchmark's
``data_all/data_en``: ``data_<category>.json`` and ``possible_answer/data_<category>.json``, JSON
lines. Categories are the file stems without ``data_``. ``agent_multi_step`` and
``agent_multi_turn`` need ACEBench's simulated environment and are not run here; they count 0 in
Overall unless a score is supplied from elsewhere.

Two rule sets (``RULES``; :func:`check_entry` picks one):

* ``official`` (the default; :mod:`looptool.eval.acebench_official`): ACEBench's own pipeline
  (eval_main.py, model_eval/checker.py of github.com/ACEBench/ACEBench), quirks included: calls
  rendered as ``[Api(k='v')]`` text, all whitespace deleted, decoded back, then its checker. This
  is what published ACEBench numbers mean; on the ground truth itself it gives normal 0.907.
* ``clean`` (this module's :func:`check_normal` / :func:`check_special`): the same checker's
  intent without the pipeline's accidents, described below; the ground truth scores 100%.

Clean rules. Normal categories: the ground truth is ``{function: {param: value}}`` (or a list of
such alternatives); a repeated function carries a ``_1``, ``_2`` ... suffix. The output must call
the same functions the same number of times, and every expected call must be matched by an output
call of that function whose arguments pass:

* every parameter the doc marks required is present, and no parameter outside the doc or the
  expected call is given (expected parameters the call leaves out are *not* an error);
* the type fits the declared one (ACEBench reads ``number`` as int and ``"true"``/``"false"``
  strings as booleans; a value of the expected value's type is accepted too);
* strings: the normalised expected text must occur *inside* the normalised given text
  (normalisation as in BFCL: drop `` ,./-_*^``, lower-case); lists: equal element by element after
  normalising strings; objects: the same number of keys, each expected key present, nested
  objects checked the same way, other values by "expected text occurs in given text"; lists of
  objects: same length, object by object.
* Numbers and booleans at the top level are **not compared** by ACEBench's checker (only their
  type is). ``strict=True`` adds exact comparison of those and requires every expected parameter.

Where the clean rules depart from the official ones: calls are taken as parsed JSON, so values
keep their whitespace (officially a list with spaces inside an object cannot match); an ``array``
without ``items`` is a plain list (officially a list of objects); an empty expected list is
accepted (officially a type error); a repeated function's suffix is stripped only when the name is
not a function's own, and its doc is found by exact name (officially: the first doc whose name
occurs in the answer key); expected parameter names in ``special_incomplete`` lose their stray spaces
(``"propertyDetails "``; officially they are looked for with the space).

Multi-turn normal categories (``normal_multi_turn_user_adjust/_switch``): ids end in
``_<conversation>_<step>``; a conversation counts as correct only if all its steps are, and the
category's accuracy is over conversations (ACEBench's end-to-end accuracy).

Special categories check the text reply (``raw``, or a line's ``text``):
``special_incomplete`` must say "Missing necessary parameters" and name the function and each
missing parameter; ``special_error_param`` must say "There is incorrect value" and quote each wrong
value; ``special_irrelevant`` must say "the limitations of the function". The system prompt tells
the model these phrases, as ACEBench's does.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from looptool.eval import acebench_official
from looptool.eval.ast_checker import PASS, Verdict, fail, normalise_string
from looptool.io import DataError

NORMAL_CATEGORIES = (
    "normal_single_turn_single_function",
    "normal_single_turn_parallel_function",
    "normal_multi_turn_user_adjust",
    "normal_multi_turn_user_switch",
    "normal_similar_api",
    "normal_preference",
    "normal_atom_bool",
    "normal_atom_enum",
    "normal_atom_number",
    "normal_atom_list",
    "normal_atom_object_deep",
    "normal_atom_object_short",
)
CONVERSATION_CATEGORIES = ("normal_multi_turn_user_adjust", "normal_multi_turn_user_switch")
SPECIAL_CATEGORIES = ("special_incomplete", "special_error_param", "special_irrelevant")
AGENT_CATEGORIES = ("agent_multi_step", "agent_multi_turn")
RUNNABLE_CATEGORIES = NORMAL_CATEGORIES + SPECIAL_CATEGORIES

RULES = ("official", "clean")
DEFAULT_RULES = "official"

INCOMPLETE_PHRASE = acebench_official.INCOMPLETE_PHRASE  # "Missing necessary parameters"
ERROR_PARAM_PHRASE = acebench_official.ERROR_PARAM_PHRASE  # "There is incorrect value"
IRRELEVANT_PHRASE = acebench_official.IRRELEVANT_PHRASE  # "the limitations of the function"

# Declared type -> Python type, from ACEBench's checker (note "number" -> int there).
DECLARED_TYPES: dict[str, type] = {
    "string": str, "integer": int, "float": float, "boolean": bool, "array": list, "tuple": list,
    "dict": dict, "any": str, "list": list, "object": dict, "objectArray": list,
    "list(string)": list, "list(enum)": list, "int": int, "number": int,
}
_LIST_TYPES = ("array", "tuple", "list(string)", "list(enum)", "objectArray")

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "acebench_data"


def default_data_dir() -> Path:
    """``../shared/acebench_data`` relative to the repository root."""
    return DEFAULT_DATA_DIR.resolve()


def conversation_of(entry_id: str) -> str:
    """``normal_multi_turn_user_adjust_3_1`` -> ``normal_multi_turn_user_adjust_3``."""
    return entry_id.rsplit("_", 1)[0]


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise DataError(path, "file not found (is --data-dir an ACEBench data_en directory?)")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise DataError(path, f"invalid JSON ({err.msg})", lineno) from None
    return rows


@functools.lru_cache(maxsize=64)
def _load(data_dir: str, category: str) -> tuple[tuple[dict, ...], dict[str, Any]]:
    if category not in RUNNABLE_CATEGORIES:
        raise ValueError(f"ACEBench category {category!r} cannot be run here; runnable: {', '.join(RUNNABLE_CATEGORIES)}")
    root = Path(data_dir)
    entries = _read_jsonl(root / f"data_{category}.json")
    answers = {row["id"]: row["ground_truth"] for row in _read_jsonl(root / "possible_answer" / f"data_{category}.json")}
    return tuple(entries), answers


def load_entries(data_dir: str | Path, category: str) -> list[dict]:
    return list(_load(str(Path(data_dir).resolve()), category)[0])


def load_possible_answers(data_dir: str | Path, category: str) -> dict[str, Any]:
    return _load(str(Path(data_dir).resolve()), category)[1]


# ---------------------------------------------------------------------------------------------
# Normal categories
# ---------------------------------------------------------------------------------------------

def _bool_from_text(value: Any) -> Any:
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


def _contains(expected: Any, given: Any) -> bool:
    """ACEBench's loose comparison for values inside objects: expected text occurs in given text."""
    expected = normalise_string(expected) if isinstance(expected, str) else expected
    if isinstance(expected, dict):  # one-element lists inside an expected object are unwrapped
        expected = {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in expected.items()}
    given = normalise_string(given) if isinstance(given, str) else given
    return str(expected) in str(given)


def _object_ok(given: Any, expected: dict) -> bool:
    if not isinstance(given, dict) or len(given) != len(expected):
        return False
    for key, value in given.items():
        if key not in expected:
            return False
        value = _bool_from_text(value)
        if isinstance(expected[key], dict):
            if not _object_ok(value, expected[key]):
                return False
        elif not _contains(expected[key], value):
            return False
    return True


def _list_ok(given: list, expected: Any) -> bool:
    if not isinstance(expected, list):
        return False
    return [_norm(v) for v in given] == [_norm(v) for v in expected]


def _norm(value: Any) -> Any:
    return normalise_string(value) if isinstance(value, str) else value


def _type_ok(value: Any, declared: str, expected_value: Any) -> tuple[bool, bool]:
    """(ok, compare_values): ACEBench's type rule. When the expected value's type differs from
    the declared type, ACEBench treats it like a variable and compares nothing further."""
    expected_type = DECLARED_TYPES.get(declared)
    if expected_type is None:  # a type ACEBench does not know: accept the expected value's type
        return type(value) is type(expected_value), False
    if declared == "float" and type(value) is int:
        value = float(value)
    value = _bool_from_text(value)
    differs = expected_value != "" and type(expected_value) is not expected_type
    if type(value) is expected_type:
        return True, not differs
    if type(value) is type(expected_value) or value == expected_value:
        return True, False
    return False, False


def check_arguments(doc: dict, arguments: dict, expected: dict, strict: bool = False) -> Verdict:
    """One output call's arguments against one expected call's ``{param: value}``."""
    params = doc.get("parameters")
    if not isinstance(params, dict) or not params:
        return PASS if not arguments and not expected else fail("the function takes no parameters")
    if not arguments:
        return fail("no arguments given")
    if not expected:
        return fail("the expected call has no arguments")
    properties = params.get("properties") or {}
    for required in params.get("required") or []:
        if required not in arguments:
            return fail(f"missing required parameter {required!r}")
    for param, value in arguments.items():
        if param not in properties or param not in expected:
            return fail(f"unexpected parameter {param!r}")
        spec = properties[param] if isinstance(properties[param], dict) else {}
        declared = spec.get("type", "any")
        want = expected[param]
        ok, compare = _type_ok(value, declared, want)
        if not ok:
            return fail(f"parameter {param!r}: expected type {declared}, got {type(value).__name__}")
        if declared == "float" and type(value) is int:
            value = float(value)
        value = _bool_from_text(value)
        expected_type = DECLARED_TYPES.get(declared)
        if compare:
            item_type = (spec.get("items") or {}).get("type") if isinstance(spec.get("items"), dict) else None
            if expected_type is dict:
                ok = _object_ok(value, want)
            elif expected_type is list and (item_type in ("object", "dict") or declared == "objectArray"):
                ok = isinstance(want, list) and len(value) == len(want) and all(
                    isinstance(w, dict) and _object_ok(v, w) for v, w in zip(value, want)
                )
            elif expected_type is str:
                ok = normalise_string(want) in normalise_string(value)
            elif expected_type is list:
                ok = _list_ok(value, want)
            else:
                ok = (not strict) or value == want
        elif strict:
            ok = value == want or (isinstance(want, str) and isinstance(value, str)
                                   and normalise_string(want) in normalise_string(value))
        if not ok:
            return fail(f"parameter {param!r}: value {value!r} does not match {want!r}")
    if strict:
        left_out = [p for p in expected if p not in arguments]
        if left_out:
            return fail(f"expected parameters left out: {left_out}")
    return PASS


def _function_name(key: str, docs: dict[str, dict]) -> str:
    """Expected-call key -> function name: a repeated function is keyed ``name_1``, ``name_2``."""
    return key if key in docs else re.sub(r"_\d+$", "", key)


def _find_doc(name: str, functions: list[dict]) -> dict | None:
    for doc in functions:
        if doc.get("name") == name:
            return doc
    return None


def _check_alternative(functions: list[dict], calls: list[dict], expected: dict, strict: bool) -> Verdict:
    docs = {f.get("name"): f for f in functions}
    wanted = [(_function_name(key, docs), args) for key, args in expected.items()]
    if len(calls) != len(wanted):
        return fail(f"expected {len(wanted)} calls, got {len(calls)}")
    given_names = Counter(c.get("name") for c in calls)
    wanted_names = Counter(name for name, _ in wanted)
    if given_names != wanted_names:
        return fail(f"called {dict(given_names)}, expected {dict(wanted_names)}")
    for name, args in wanted:
        doc = _find_doc(name, functions)
        if doc is None:
            return fail(f"the answer names {name!r}, which the entry's functions lack")
        # ACEBench accepts any output call of that name that fits (not necessarily a distinct one).
        reasons = []
        for call in calls:
            if call.get("name") != name:
                continue
            arguments = call.get("arguments") if isinstance(call.get("arguments"), dict) else {}
            verdict = check_arguments(doc, arguments, args if isinstance(args, dict) else {}, strict)
            if verdict:
                break
            reasons.append(verdict.reason)
        else:
            return fail(f"{name}: " + "; ".join(reasons))
    return PASS


def check_normal(functions: list[dict], calls: list[dict], ground_truth: Any, strict: bool = False) -> Verdict:
    """Score one normal-category step: pass if the calls fit any ground-truth alternative."""
    alternatives = ground_truth if isinstance(ground_truth, list) else [ground_truth]
    reasons = []
    for alternative in alternatives:
        verdict = _check_alternative(functions, calls, alternative, strict)
        if verdict:
            return PASS
        reasons.append(verdict.reason)
    return fail(" | ".join(reasons))


# ---------------------------------------------------------------------------------------------
# Special categories
# ---------------------------------------------------------------------------------------------

def check_special(category: str, text: str, ground_truth: Any) -> Verdict:
    """Score a text reply in a special category (the phrases are case-sensitive, as in ACEBench)."""
    text = text if isinstance(text, str) else ""
    if category == "special_incomplete":
        if INCOMPLETE_PHRASE not in text:
            return fail(f"the reply does not say {INCOMPLETE_PHRASE!r}")
        for function, params in ground_truth.items():
            if function not in text:
                return fail(f"the reply does not name the function {function!r}")
            missing = [p.strip() for p in params if p.strip() not in text]
            if missing:
                return fail(f"the reply does not name the missing parameters {missing}")
        return PASS
    if category == "special_error_param":
        if ERROR_PARAM_PHRASE not in text:
            return fail(f"the reply does not say {ERROR_PARAM_PHRASE!r}")
        for param, values in ground_truth.items():
            absent = [str(v) for v in values if str(v) not in text]
            if absent:
                return fail(f"the reply does not quote the wrong values {absent} of {param!r}")
        return PASS
    if category == "special_irrelevant":
        return PASS if IRRELEVANT_PHRASE in text else fail(f"the reply does not say {IRRELEVANT_PHRASE!r}")
    raise ValueError(f"not a special category: {category!r}")


def gold_reply(category: str, ground_truth: Any) -> str:
    """A text reply that states exactly what the ground truth of a special entry expects."""
    if category == "special_incomplete":
        return "; ".join(
            f"{INCOMPLETE_PHRASE} ({', '.join(p.strip() for p in params)}) for the api ({function})"
            for function, params in ground_truth.items()
        )
    if category == "special_error_param":
        return " ".join(
            f"{ERROR_PARAM_PHRASE} ({', '.join(map(str, values))}) for the parameters ({param}) in the conversation history."
            for param, values in ground_truth.items()
        )
    return str(ground_truth)


def gold_calls(functions: list[dict], ground_truth: Any) -> list[dict]:
    """The first ground-truth alternative of a normal entry as output calls."""
    alternative = ground_truth[0] if isinstance(ground_truth, list) else ground_truth
    docs = {f.get("name"): f for f in functions}
    return [{"name": _function_name(key, docs), "arguments": args} for key, args in alternative.items()]


def check_entry(category: str, functions: list[dict], calls: list[dict], text: str, ground_truth: Any,
                rules: str = DEFAULT_RULES, strict: bool = False) -> Verdict:
    """Score one entry's prediction (its parsed ``calls`` and its reply ``text``) under ``rules``.
    ``strict`` tightens the clean rules only."""
    special = category in SPECIAL_CATEGORIES
    if rules == "official":
        if special:
            return acebench_official.check_special(category, text, ground_truth)
        return acebench_official.check_normal(functions, calls, ground_truth)
    if rules == "clean":
        if special:
            return check_special(category, text, ground_truth)
        return check_normal(functions, calls, ground_truth, strict)
    raise ValueError(f"unknown ACEBench rules {rules!r}; known: {', '.join(RULES)}")


# ---------------------------------------------------------------------------------------------
# Prompt
# ---------------------------------------------------------------------------------------------

_ACE_TO_JSON_SCHEMA = {"dict": "object", "float": "number", "tuple": "array", "any": "string", "list": "array",
                       "objectArray": "array", "list(string)": "array", "list(enum)": "array", "int": "integer",
                       "enum": "string"}


def _schema(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return spec
    out = dict(spec)
    if "type" in out and out["type"] in _ACE_TO_JSON_SCHEMA:
        out["type"] = _ACE_TO_JSON_SCHEMA[out["type"]]
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _schema(v) for k, v in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = _schema(out["items"])
    return out


def function_to_tool(function: dict) -> dict:
    """An ACEBench function doc -> ``{"name", "description", "parameters"}`` (JSON Schema).
    Some distractor functions keep their schema under ``arguments``; it is read the same way."""
    params = function.get("parameters") or function.get("arguments") or {}
    params = _schema(params) if params else {}
    params = {"type": "object", "properties": {}, "required": [], **params}
    params["type"] = "object"
    params["required"] = [r for r in params.get("required") or [] if r in params["properties"]]
    return {"name": function["name"], "description": function.get("description", ""), "parameters": params}


_SYSTEM_NORMAL = (
    "You are an assistant that calls the tools provided to serve the user. From the conversation so far, "
    "make the tool calls the assistant should make next. Give only parameters the user mentioned or the tool "
    "requires; where a tool gives no format for a value, use the user's own words. Reply with the tool calls only."
)
_SYSTEM_SPECIAL = (
    "You are an assistant that calls the tools provided to serve the user. If the request is clear and a tool "
    "can serve it, reply with the tool calls only. Otherwise reply in text, checking these cases in order:\n"
    f"1. A value the user gave does not fit the tool's definition: reply \"{ERROR_PARAM_PHRASE} (value) for the "
    "parameters (key) in the conversation history.\"\n"
    f"2. Information the tool requires is missing: reply \"{INCOMPLETE_PHRASE} (key1, key2, ...) for the api "
    "(ApiName)\" with the missing parameter names and the tool's name.\n"
    f"3. No tool can serve the request: reply \"Due to {IRRELEVANT_PHRASE}, I cannot solve this problem.\""
)


def build_prompt(entry: dict, category: str) -> tuple[list[dict], list[dict]]:
    """(tools, messages) for an ACEBench entry. The conversation so far is given as one user
    message holding the benchmark's role-labelled history, as ACEBench's prompt does."""
    system = _SYSTEM_SPECIAL if category.startswith("special") else _SYSTEM_NORMAL
    if entry.get("time"):
        system += f"\n\nCurrent time: {entry['time']}"
    if entry.get("profile"):
        system += f"\n\nUser profile:\n{entry['profile']}"
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": f"Conversation history:\n{entry['question']}"},
    ]
    return [function_to_tool(f) for f in entry["function"]], messages
