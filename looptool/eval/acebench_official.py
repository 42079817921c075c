"""ACEBench scored the way its own evaluator scores (DESIGN.md §8): the ``official`` rules.

Re-implemented, rule for rule and quirks included, from github.com/ACEBench/ACEBench at commit
e6db74b (2025-08-24): ``eval_main.py`` (the pipeline: normal_single_turn_eval,
normal_multi_turn_eval, special_eval), ``model_inference/utils.py`` (decode_ast / ast_parse /
resolve_ast_by_type: the model text -> calls), ``model_eval/checker.py`` (normal_checker,
simple_function_checker, type_checker, string/list/dict/list_dict checkers) and
``model_eval/utils.py`` (standardize_string, find_description, sum_key_list). Published ACEBench
numbers come from that pipeline, so this is the default; :mod:`looptool.eval.acebench` keeps the
clean rules (``rules="clean"``).

Normal categories, in the pipeline's order:

1. The model's output is text ``[Api(k='v'), ...]``. Our predictions hold parsed calls, so they are
   rendered into that text first (:func:`render_calls`, values written as Python literals), as a
   model following ACEBench's prompt would have written them.
2. eval_main.py deletes *every* whitespace character from the text (``"".join(text.split())``),
   inside string values too, then decodes it with Python's ``ast`` (:func:`decode_calls`): the
   text must be a list (or tuple/set) of calls; only keyword arguments are read; ``-x`` of any
   unary operator is negation of a constant; a bare name reads as its own text; a nested call as
   ``{name: {kwargs}}``; a subscript as its source text. Anything else fails decoding.
3. normal_checker: the same number of calls as the answer; answer keys lose a ``_<digits>`` suffix
   (always, even when the function's own name ends so); the multiset of names must be the same;
   each expected call needs *some* output call of its name passing simple_function_checker, the
   function doc being the first one whose name is a *substring* of the answer key.
4. simple_function_checker: empty argument lists; required parameters present; no parameter
   outside the doc or the answer; the declared type via type_checker (a value of the answer's
   type also passes, and then nothing more is compared; ``"true"``/``"false"`` read as booleans;
   an empty expected list fails; an ``array`` without ``items`` is a list of *objects*); then by
   declared type: objects by dict_checker (same number of keys; nested objects recursively; any
   other value passes when ``str()`` of the expected value -- normalised if a string -- occurs in
   ``str()`` of the given one), lists of objects one by one, strings by containment after
   normalisation (drop `` ,./-_*^``, lower-case, ``'`` -> ``"``), lists element-wise after
   normalising strings. Numbers and booleans are not compared. (An answer equal to the doc's
   ``properties`` passes outright, as there.)
5. Alternatives: the entry is right when any ground-truth alternative passes. Multi-turn
   categories count a conversation right when all its steps are (normal_multi_turn_eval,
   evaluation_helper.multiplt_turn_accuracy); the benchmark class does that grouping.

Where ACEBench's code would raise (a doc without ``required``, a type it does not know, an
``objectArray`` value) its run stops; here the entry counts as wrong. Where it would ``eval`` an
arithmetic expression in an argument, only constant arithmetic is evaluated (a name or call inside
it fails decoding).

Special categories (eval_main.special_eval) read the model's text as is, case-sensitively, and
compare the answers *with* their stray spaces: incomplete -- "Missing necessary parameters", each
function name and each missing parameter; error_param -- "There is incorrect value" and each wrong
value (the parameter name is not needed); irrelevant -- "the limitations of the function".

benchmarks/acebench_official_diff.py runs ACEBench's own code beside these rules on the ground
truth and on damaged predictions, entry by entry.
"""

from __future__ import annotations

import ast
import operator
import re
import warnings
from collections import Counter
from typing import Any

from looptool.eval.ast_checker import PASS, Verdict, fail

INCOMPLETE_PHRASE = "Missing necessary parameters"
ERROR_PARAM_PHRASE = "There is incorrect value"
IRRELEVANT_PHRASE = "the limitations of the function"

# Declared type -> Python type (checker.py PYTHON_TYPE_MAPPING; "number" is int and "enum" is
# enumerate there, so no value ever has the type "enum").
TYPE_MAP: dict[str, type] = {
    "string": str, "integer": int, "float": float, "boolean": bool, "array": list, "tuple": list,
    "dict": dict, "any": str, "list": list, "object": dict, "objectArray": list, "list(string)": list,
    "list(enum)": list, "int": int, "enum": enumerate, "number": int,
}
# Declared types whose items type is looked up (checker.py PYTHON_NESTED_TYPE_CHECK_LIST).
NESTED_TYPES = ("array", "tuple", "list(string)", "list(enum)", "object", "objectArray")

_STANDARDIZE = re.compile(r"[ ,./\-_*^]")
_SUFFIX = re.compile(r"_\d+$")


class DecodeError(ValueError):
    """The text is not what ACEBench's decoder reads as a list of calls."""


class _Raised(Exception):
    """Where ACEBench's checker would raise (and its run stop)."""


def standardize(text: str) -> str:
    """utils.py standardize_string: drop `` ,./-_*^``, lower-case, ``'`` -> ``"``."""
    return _STANDARDIZE.sub("", text).lower().replace("'", '"')


# ---------------------------------------------------------------------------------------------
# Calls -> text -> decoded calls (eval_main.py + model_inference/utils.py)
# ---------------------------------------------------------------------------------------------

def render_calls(calls: list[dict]) -> str:
    """Parsed calls -> ``[Api(k='v', n=2), Other()]``, values as Python literals (repr)."""
    parts = []
    for call in calls:
        arguments = call.get("arguments") if isinstance(call.get("arguments"), dict) else {}
        parts.append(f"{call.get('name', '')}(" + ", ".join(f"{k}={v!r}" for k, v in arguments.items()) + ")")
    return "[" + ", ".join(parts) + "]"


def delete_whitespace(text: str) -> str:
    """eval_main.py: ``"".join(text.split())`` -- every whitespace character goes, in values too."""
    return "".join(text.split())


def _dotted_name(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow, ast.LShift: operator.lshift,
    ast.RShift: operator.rshift, ast.BitOr: operator.or_, ast.BitXor: operator.xor, ast.BitAnd: operator.and_,
    ast.MatMult: operator.matmul,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_, ast.Invert: operator.invert}
_MAX_SIZE = 100_000


def _constant_expression(node: ast.AST) -> Any:
    """What ``eval`` gives for an expression of literals and operators (ACEBench evaluates a binary
    operation with eval); names, calls and the like are refused instead of run."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_constant_expression(e) for e in node.elts]
        return list(items) if isinstance(node, ast.List) else tuple(items) if isinstance(node, ast.Tuple) else set(items)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_constant_expression(k): _constant_expression(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_constant_expression(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _constant_expression(node.left), _constant_expression(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, int) and abs(right) > 1000:
            raise DecodeError("exponent too large to evaluate")
        if isinstance(node.op, ast.Mult) and any(isinstance(x, (str, bytes, list, tuple)) for x in (left, right)):
            count = right if isinstance(right, int) else left
            if isinstance(count, int) and count > _MAX_SIZE:
                raise DecodeError("repetition too large to evaluate")
        if isinstance(node.op, ast.LShift) and isinstance(right, int) and right > 10_000:
            raise DecodeError("shift too large to evaluate")
        return _BINARY[type(node.op)](left, right)
    raise DecodeError(f"cannot evaluate {type(node).__name__} in an expression")


def _value(node: ast.AST) -> Any:
    """model_inference/utils.py resolve_ast_by_type, node by node."""
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp):
        # ACEBench negates the operand's constant whatever the operator is (so +5 reads -5).
        if not isinstance(node.operand, ast.Constant):
            raise DecodeError("a unary operator on a non-constant")
        return -node.operand.value
    if isinstance(node, ast.List):
        return [_value(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        if None in node.keys:
            raise DecodeError("** inside a dict")
        return {_value(k): _value(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.BinOp):
        return _constant_expression(node)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return _call(node)
    if isinstance(node, ast.Tuple):
        return tuple(_value(e) for e in node.elts)
    if isinstance(node, ast.Subscript):
        return ast.unparse(node.value) + "[" + ast.unparse(node.slice) + "]"
    # Lambda fails there too (it subscripts the lambda's body).
    raise DecodeError(f"unsupported expression {type(node).__name__}")


def _call(node: ast.Call) -> dict:
    """resolve_ast_call: ``{dotted name: {keyword: value}}``; positional arguments are dropped."""
    arguments: dict[Any, Any] = {}
    for keyword in node.keywords:
        arguments[keyword.arg] = _value(keyword.value)
    return {_dotted_name(node.func): arguments}


def decode_calls(text: str) -> list[dict]:
    """ACEBench's decoding of a model's normal-category output: whitespace deleted, then
    ``ast_parse``. Returns ``[{name: {param: value}}, ...]``; raises :class:`DecodeError`."""
    source = delete_whitespace(text if isinstance(text, str) else str(text))
    try:
        with warnings.catch_warnings():  # e.g. "invalid decimal literal" once spaces are gone
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise DecodeError(f"invalid syntax ({err.__class__.__name__})") from None
    if not isinstance(tree.body, (ast.List, ast.Tuple, ast.Set)):
        raise DecodeError("the output is not a list of calls")
    calls = []
    for element in tree.body.elts:
        if not isinstance(element, ast.Call):
            raise DecodeError("an element of the list is not a call")
        try:
            calls.append(_call(element))
        except (TypeError, ValueError, ArithmeticError, RecursionError, MemoryError) as err:
            if isinstance(err, DecodeError):
                raise
            raise DecodeError(f"cannot evaluate an argument ({err.__class__.__name__})") from None
    return calls


# ---------------------------------------------------------------------------------------------
# model_eval/checker.py
# ---------------------------------------------------------------------------------------------

def _read_bool(value: Any) -> Any:
    if isinstance(value, str) and value == "true":
        return True
    if isinstance(value, str) and value == "false":
        return False
    return value


def _type_ok(value: Any, expected: Any, python_type: Any, item_type: Any) -> tuple[bool, bool]:
    """type_checker -> (valid, is_variable). ``is_variable``: the answer's type differs from the
    declared one (or the value has the answer's type), and values are then not compared."""
    answer_type = None if expected == "" else type(expected)
    variable = answer_type is not None and answer_type is not python_type
    value = _read_bool(value)
    items_failed = False
    if type(value) is python_type:
        if item_type is None:
            return True, variable
        try:
            alternatives = iter(expected)
        except TypeError:
            raise _Raised("iterating a non-iterable answer in the nested type check") from None
        for alternative in alternatives:
            # Only an answer element that is itself a list constrains the items' types.
            if type(alternative) is list and not all(_type_ok(v, alternative, item_type, None)[0] for v in value):
                continue
            return True, variable
        items_failed = True  # e.g. an empty expected list; the check below may still mark it a variable
    if answer_type is not None and (type(value) is answer_type or expected == value):
        return not items_failed, True
    return False, False


def _dict_ok(given: Any, expected: Any) -> bool:
    """dict_checker."""
    if not isinstance(given, dict):
        return False
    if not hasattr(expected, "keys"):
        raise _Raised("the answer of an object is not an object")
    if len(given) != len(expected.keys()):
        return False
    for key, value in given.items():
        value = _read_bool(value)
        if key not in expected:
            return False
        want = expected[key]
        if isinstance(want, dict):
            if not _dict_ok(value, want):
                return False
            continue
        got = standardize(value) if type(value) is str else value
        want = standardize(want) if type(want) is str else want
        if str(want) not in str(got):  # containment of the printed values
            return False
    return True


def _list_of_dicts_ok(given: list, expected: Any) -> bool:
    """list_dict_checker: same length, then dict_checker element by element."""
    if len(given) != len(expected):
        return False
    return all(_dict_ok(g, expected[i]) for i, g in enumerate(given))


def _list_ok(given: list, expected: Any) -> bool:
    """list_checker: element-wise equality after normalising string elements."""
    ours = [standardize(v) if type(v) is str else v for v in given]
    theirs = [standardize(expected[i]) if type(expected[i]) is str else expected[i] for i in range(len(expected))]
    return ours == theirs


def _check_call(doc: Any, call: dict, expected_call: dict) -> Verdict:
    """simple_function_checker: one output call ``{name: params}`` against one expected call."""
    expected = next(iter(expected_call.values()))
    given = next(iter(call.values()))
    if not isinstance(doc, dict):
        raise _Raised("no function doc matches the answer's function name")
    if "parameters" not in doc:
        raise _Raised(f"the doc of {doc.get('name')!r} has no 'parameters'")
    params_doc = doc["parameters"]
    if given == {} and params_doc == {}:
        return PASS
    if given == {} or params_doc == {}:
        return fail("no arguments given" if given == {} else "the function takes no parameters")
    if not isinstance(params_doc, dict) or "properties" not in params_doc:
        raise _Raised("the doc's parameters have no 'properties'")
    properties = params_doc["properties"]
    if expected == properties:
        return PASS  # ACEBench accepts a call outright when the answer equals the doc's properties
    if expected == {}:
        return fail("the expected call has no arguments")
    name = doc.get("name")
    if name not in call:
        return fail(f"wrong function: expected {name!r}")
    if "required" not in params_doc:
        raise _Raised("the doc's parameters have no 'required'")
    for required in params_doc["required"]:
        if required not in given:
            return fail(f"missing required parameter {required!r}")
    for param, value in given.items():
        if param not in properties or param not in expected:
            return fail(f"unexpected parameter {param!r}")
        spec = properties[param]
        try:
            declared = spec["type"]
            python_type = TYPE_MAP[declared]
        except (KeyError, TypeError):
            raise _Raised(f"parameter {param!r} has no type ACEBench knows") from None
        item_type = None
        if declared in NESTED_TYPES:
            try:
                item_name = spec["items"]["type"]
            except Exception:  # no items: "list(string)" -> string, "list(enum)" -> enum, else dict
                item_name = "string" if "string" in declared else "enum" if "enum" in declared else "dict"
            if item_name not in TYPE_MAP:
                raise _Raised(f"parameter {param!r}: unknown items type {item_name!r}")
            item_type = TYPE_MAP[item_name]
        if declared == "tuple" and type(value) is tuple:
            value = list(value)
        if declared == "float" and type(value) is int:
            value = float(value)
        want = expected[param]
        valid, variable = _type_ok(value, want, python_type, item_type)
        if not valid:
            return fail(f"parameter {param!r}: wrong type for declared {declared}: {type(value).__name__}")
        if variable:
            continue
        if python_type is dict:
            ok = _dict_ok(value, want)
        elif python_type is list and item_type is dict:
            if declared == "objectArray":
                if len(value) != len(want):
                    return fail(f"parameter {param!r}: wrong number of objects")
                if value:
                    raise _Raised("objectArray: ACEBench's dict_checker call lacks an argument")
            ok = _list_of_dicts_ok(value, want)
        elif python_type is str:
            if type(want) is not str:
                raise _Raised("standardising a non-string answer")
            ok = standardize(want) in standardize(value)
        elif python_type is list:
            ok = _list_ok(value, want)
        else:
            ok = True  # numbers and booleans are not compared
        if not ok:
            return fail(f"parameter {param!r}: value {value!r} does not match {want!r}")
    return PASS


def _find_doc(functions: list[dict], key: str) -> Any:
    """utils.py find_description: the first doc whose name occurs *in* the answer key."""
    for doc in functions:
        if doc["name"] in key:
            return doc
    return None


def _check_alternative(functions: list[dict], decoded: list[dict], alternative: dict) -> Verdict:
    """normal_checker for one ground-truth alternative."""
    if len(decoded) != len(alternative):
        return fail(f"expected {len(alternative)} calls, got {len(decoded)}")
    keys = list(alternative)
    expected = [(_SUFFIX.sub("", key), value) for key, value in alternative.items()]
    given_names = Counter(name for call in decoded for name in call)
    wanted_names = Counter(name for name, _ in expected)
    extra = [n for n in given_names if n not in wanted_names]
    if extra:
        return fail(f"function {extra[0]!r} is not in the answer")
    absent = [n for n in wanted_names if n not in given_names]
    if absent:
        return fail(f"function {absent[0]!r} of the answer was not called")
    if given_names != wanted_names:
        return fail(f"called {dict(given_names)}, expected {dict(wanted_names)}")
    for key, (name, params) in zip(keys, expected):
        doc = _find_doc(functions, key)
        reasons = []
        for call in decoded:
            if next(iter(call)) != name:
                continue
            verdict = _check_call(doc, call, {name: params})
            if verdict:
                break
            reasons.append(verdict.reason)
        else:
            return fail(f"{name}: " + "; ".join(reasons))
    return PASS


def check_decoded(functions: list[dict], decoded: list[dict], ground_truth: Any) -> Verdict:
    """Decoded calls ``[{name: params}]`` against a normal entry's ground truth (any alternative)."""
    alternatives = ground_truth if isinstance(ground_truth, list) else [ground_truth]
    reasons = []
    try:
        for alternative in alternatives:
            if not isinstance(alternative, dict):
                raise _Raised("an answer alternative is not an object")
            verdict = _check_alternative(functions, decoded, alternative)
            if verdict:
                return PASS
            reasons.append(verdict.reason)
    except _Raised as err:
        return fail(f"ACEBench's checker raises here ({err}); counted wrong")
    except (KeyError, TypeError, AttributeError, IndexError, RecursionError) as err:
        return fail(f"ACEBench's checker raises here ({err.__class__.__name__}: {err}); counted wrong")
    return fail(" | ".join(reasons))


def check_text(functions: list[dict], text: str, ground_truth: Any) -> Verdict:
    """A model's raw normal-category text, scored as eval_main.py scores it."""
    try:
        decoded = decode_calls(text)
    except DecodeError as err:
        return fail(f"wrong output format: {err}")
    return check_decoded(functions, decoded, ground_truth)


def check_normal(functions: list[dict], calls: list[dict], ground_truth: Any) -> Verdict:
    """Parsed calls, rendered as ACEBench model text, scored as eval_main.py scores that text."""
    return check_text(functions, render_calls(calls), ground_truth)


# ---------------------------------------------------------------------------------------------
# eval_main.py special_eval
# ---------------------------------------------------------------------------------------------

def check_special(category: str, text: str, ground_truth: Any) -> Verdict:
    """A special-category reply: phrases case-sensitive, answers compared with their spaces."""
    text = text if isinstance(text, str) else ""
    if "irrelevant" not in category and not isinstance(ground_truth, dict):
        return fail("ACEBench's special_eval raises on this answer (not an object); counted wrong")
    if "incomplete" in category:
        for function, params in ground_truth.items():
            if INCOMPLETE_PHRASE not in text:
                return fail(f"the reply does not say {INCOMPLETE_PHRASE!r}")
            if function not in text:
                return fail(f"the reply does not name the function {function!r}")
            missing = [p for p in params if str(p) not in text]
            if missing:
                return fail(f"the reply does not name the missing parameters {missing} (verbatim)")
        return PASS
    if "error" in category:
        for param, values in ground_truth.items():
            if ERROR_PARAM_PHRASE not in text:
                return fail(f"the reply does not say {ERROR_PARAM_PHRASE!r}")
            absent = [v for v in values if str(v) not in text]
            if absent:
                return fail(f"the reply does not quote the wrong values {absent} of {param!r} (verbatim)")
        return PASS
    if "irrelevant" in category:
        return PASS if IRRELEVANT_PHRASE in text else fail(f"the reply does not say {IRRELEVANT_PHRASE!r}")
    raise ValueError(f"not a special category: {category!r}")
