"""BFCL's AST rules for single-turn calls, re-implemented (DESIGN.md §8).

A possible answer is ``{function name: {param: [acceptable values]}}``; an acceptable list holding
``""`` means the parameter may be left out. A model call passes when:

* its function name is the expected one (exactly; with ``underscore_names`` the expected name has
  its dots replaced by underscores, as BFCL does for models whose API forbids dots in names);
* every parameter the function doc marks required is present, and every given parameter exists
  in the doc *and* in the possible answer (a parameter the answer does not list is unexpected);
* each value has the declared type. Python: ``float`` accepts an int; a bool is never an int;
  list elements are checked against the declared item type. Java/JavaScript: the value must be a
  string in that language's syntax, converted by :mod:`looptool.eval.source_values`. When the
  possible answers are of another type than the doc declares (BFCL lists variable names as
  strings), a value of the answers' type is accepted and compared as is;
* each value is acceptable. Strings compare after normalisation: the characters
  space , . / - _ * ^ are removed, letters lower-cased, ``'`` read as ``"`` (bfcl_eval
  ast_checker.standardize_string: "April 1, 2024" == "april 1 2024"). Lists compare element-wise in
  order, string elements normalised. Dicts: every given key must be listed in one alternative and
  its (normalised) value acceptable there; keys left out must be optional in that alternative.
  A list of dicts matches an alternative of the same length dict by dict, in order. Other values
  compare with Python equality (so 2 == 2.0);
* every parameter of the possible answer that the call leaves out is optional.

Categories: ``simple``/``java``/``javascript``/``live_simple`` need exactly one call;
``multiple``/``live_multiple`` exactly one, checked against the one expected function;
``parallel*`` need as many calls as expected, each matched to a *distinct* expected call in any
order. BFCL assigns greedily (first fitting call wins); we search for a full matching, which
differs only when one model call could satisfy two expected calls, and then we do not fail an
output BFCL's greedy order would have failed needlessly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from looptool.eval.source_values import JAVA_TYPES, JS_TYPES, java_value, js_value
from looptool.toolcall import CALL_OPEN, parse_tool_calls

# Declared Python-category type -> Python type (bfcl_eval ast_checker PYTHON_TYPE_MAPPING).
PYTHON_TYPES: dict[str, type] = {
    "string": str, "integer": int, "float": float, "boolean": bool, "array": list, "tuple": list,
    "dict": dict, "any": str,
}
_LIST_TYPES_WITH_ITEMS = {"python": ("array", "tuple"), "java": ("Array", "ArrayList"), "javascript": ("array",)}

_NORMALISE = re.compile(r"[ ,./\-_*^]")
OPTIONAL = ""  # the marker for "may be omitted" inside an acceptable-values list


def normalise_string(text: str) -> str:
    """BFCL's string comparison key: drop `` ,./-_*^``, lower-case, single quote -> double quote."""
    return _NORMALISE.sub("", text).lower().replace("'", '"')


@dataclass(frozen=True)
class Verdict:
    """Outcome of checking model calls against a possible answer; ``reason`` explains a failure."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


PASS = Verdict(True)


def fail(reason: str) -> Verdict:
    return Verdict(False, reason)


def _first_answer_type(acceptable: list) -> type | None:
    for value in acceptable:
        if value != OPTIONAL:
            return type(value)
    return None


def _item_type_ok(value: Any, expected: type, alternative: list) -> bool:
    if type(value) is expected:
        return True
    answer_type = _first_answer_type(alternative)
    return answer_type is not None and type(value) is answer_type


def _check_type(param: str, value: Any, acceptable: list, expected: type,
                item_expected: type | None, declared: str) -> tuple[Verdict, bool]:
    """(verdict, is_variable). ``is_variable``: the answers use another type than the doc declares,
    so the value is compared as given without type-specific normalisation."""
    answer_type = _first_answer_type(acceptable)
    variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if item_expected is None:
            return PASS, variable
        # Elements must have the item type for at least one alternative; an alternative that is
        # not a list (e.g. the optional marker) does not constrain them.
        for alternative in acceptable:
            if not isinstance(alternative, list) or all(
                _item_type_ok(item, item_expected, alternative) for item in value
            ):
                return PASS, variable
        return fail(f"parameter {param!r}: elements of {value!r} are not all {item_expected.__name__}"), variable
    if answer_type is not None and type(value) is answer_type:
        return PASS, True
    return fail(f"parameter {param!r}: expected type {declared}, got {type(value).__name__} ({value!r})"), variable


def _norm(value: Any) -> Any:
    return normalise_string(value) if isinstance(value, str) else value


def _dict_ok(value: dict, acceptable: list) -> bool:
    for alternative in acceptable:
        if alternative == OPTIONAL or not isinstance(alternative, dict):
            continue
        if all(
            key in alternative and _norm(v) in [_norm(a) for a in alternative[key]]
            for key, v in value.items()
        ) and all(key in value or OPTIONAL in options for key, options in alternative.items()):
            return True
    return False


def _list_of_dicts_ok(value: list, acceptable: list) -> bool:
    for alternative in acceptable:
        if alternative == OPTIONAL:
            alternative = []  # as in BFCL, the optional marker lets an empty list through
        if not isinstance(alternative, list) or len(alternative) != len(value):
            continue
        if all(isinstance(v, dict) and _dict_ok(v, [alt]) for v, alt in zip(value, alternative)):
            return True
    return False


def _list_ok(value: list, acceptable: list) -> bool:
    wanted = [_norm(v) for v in value]
    for alternative in acceptable:
        # BFCL iterates over each alternative, so the optional marker "" acts as an empty list.
        if isinstance(alternative, (list, str)) and [_norm(a) for a in alternative] == wanted:
            return True
    return False


def check_arguments(doc: dict, arguments: dict, answer: dict[str, list], language: str = "python") -> Verdict:
    """Check one call's arguments against one expected call (``answer``: param -> acceptable list)."""
    params = doc.get("parameters") or {}
    properties = params.get("properties") or {}
    for required in params.get("required") or []:
        if required not in arguments:
            return fail(f"missing required parameter {required!r}")
    for param, value in arguments.items():
        if param not in properties or param not in answer:
            return fail(f"unexpected parameter {param!r}")
        spec = properties[param]
        declared = spec.get("type", "any")
        acceptable = answer[param]
        item_declared = (spec.get("items") or {}).get("type") if declared in _LIST_TYPES_WITH_ITEMS[language] else None
        if language == "python":
            expected = PYTHON_TYPES.get(declared, str)
            item_expected = PYTHON_TYPES.get(item_declared, str) if item_declared else None
            if declared == "float" and type(value) is int:
                value = float(value)  # Python would accept an int where a float is declared
        else:
            table = JAVA_TYPES if language == "java" else JS_TYPES
            expected = table.get(declared, str)
            if not isinstance(value, str):
                return fail(f"parameter {param!r}: {language} values must be strings in source syntax, got {type(value).__name__}")
            convert = java_value if language == "java" else js_value
            value = convert(value, declared, item_declared)
            item_expected = table.get(item_declared) if item_declared else None
        verdict, variable = _check_type(param, value, acceptable, expected, item_expected, declared)
        if not verdict:
            return verdict
        if not variable:
            if expected is dict:
                ok = isinstance(value, dict) and _dict_ok(value, acceptable)
            elif expected is list and item_expected is dict:
                ok = _list_of_dicts_ok(value, acceptable)
            elif expected is str:
                ok = normalise_string(value) in [normalise_string(a) for a in acceptable if isinstance(a, str)]
            elif expected is list:
                ok = _list_ok(value, acceptable)
            else:
                ok = value in acceptable
        else:
            ok = value in acceptable
        if not ok:
            return fail(f"parameter {param!r}: value {value!r} not among {acceptable!r}")
    for param, acceptable in answer.items():
        if param not in arguments and OPTIONAL not in acceptable:
            return fail(f"parameter {param!r} left out but it is not optional")
    return PASS


def expected_name(name: str, underscore_names: bool) -> str:
    return name.replace(".", "_") if underscore_names else name


def find_doc(functions: list[dict], name: str) -> dict | None:
    for doc in functions:
        if doc.get("name") == name:
            return doc
    return None


def check_call(functions: list[dict], call: dict, expected: dict, language: str = "python",
               underscore_names: bool = False, single_function: bool = False) -> Verdict:
    """One model call (``{"name", "arguments"}``) against one expected call ``{name: {param: [...]}}``.

    ``single_function``: the entry offers one function and BFCL checks against that function's doc
    and name, whatever name the possible answer uses (two answers name a function differently
    from the doc: simple_363, javascript_41).
    """
    (name, answer), = expected.items()
    doc = functions[0] if single_function and functions else find_doc(functions, name)
    if doc is None:
        return fail(f"the possible answer names {name!r}, which the entry's functions lack")
    name = doc["name"]
    if call.get("name") != expected_name(name, underscore_names):
        return fail(f"expected function {expected_name(name, underscore_names)!r}, got {call.get('name')!r}")
    arguments = call.get("arguments")
    if not isinstance(arguments, dict):
        return fail("arguments are not an object")
    return check_arguments(doc, arguments, answer, language)


def _full_matching(fits: list[list[bool]]) -> bool:
    """True iff every expected call (row) gets its own model call (column) among those that fit."""
    owner: dict[int, int] = {}  # model call -> expected call

    def place(row: int, seen: set[int]) -> bool:
        for col, fit in enumerate(fits[row]):
            if fit and col not in seen:
                seen.add(col)
                if col not in owner or place(owner[col], seen):
                    owner[col] = row
                    return True
        return False

    return all(place(row, set()) for row in range(len(fits)))


def check_entry(category: str, functions: list[dict], calls: list[dict], possible_answer: list[dict],
                language: str = "python", underscore_names: bool = False) -> Verdict:
    """Score one AST-category entry: the model's calls against the entry's possible answer."""
    if "parallel" in category:
        if len(calls) != len(possible_answer):
            return fail(f"expected {len(possible_answer)} calls, got {len(calls)}")
        fits = []
        reasons = []
        for expected in possible_answer:
            row = []
            for call in calls:
                verdict = check_call(functions, call, expected, language, underscore_names)
                row.append(verdict.ok)
                if not verdict.ok:
                    reasons.append(verdict.reason)
            fits.append(row)
        if _full_matching(fits):
            return PASS
        return fail("no one-to-one match between calls and expected calls; " + "; ".join(dict.fromkeys(reasons)))
    if len(calls) != 1 or len(possible_answer) != 1:
        return fail(f"expected exactly 1 call, got {len(calls)}")
    single = "multiple" not in category
    return check_call(functions, calls[0], possible_answer[0], language, underscore_names, single)


def check_relevance(category: str, calls: list[dict]) -> Verdict:
    """irrelevance/live_irrelevance: right iff no call; live_relevance: right iff at least one.

    As in BFCL (eval_runner.relevance_file_runner), an output that tried to call but could not be
    read has no call, so it counts as a correct abstention; see :func:`is_call_attempt` for the
    strict reading."""
    if "irrelevance" in category:
        return PASS if not calls else fail(f"expected no call, got {len(calls)}")
    return PASS if calls else fail("expected at least one call, got none")


def is_call_attempt(raw: str) -> bool:
    """True iff the model's text tried to call a tool, whether or not a call could be read from it.

    That is: the text holds the call opening marker ``<tool_call>`` (anywhere, even around an empty
    or broken body), or :func:`looptool.toolcall.parse_tool_calls` reports an error for it. The
    parser gives one only for output shaped like a call that it cannot read: a tool_call block, or
    text (bare or in a code fence) that starts with ``{`` or ``[`` and holds ``"name"``. Other
    text, such as prose quoting a JSON object, is no attempt. Strict irrelevance counts an
    abstention right only if it is no attempt; an empty ``raw`` (a predictions file written
    without the model's text) is none, so there the strict number equals the official one. A think
    block is not the answer: a marker inside it does not count, and one left open is an attempt
    that failed (the parser's error).
    """
    parsed = parse_tool_calls(raw)
    return not parsed.ok or CALL_OPEN in parsed.answer
