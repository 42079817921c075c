"""BFCL v3 multi-turn: execute calls against the benchmark's own API classes and check the result.

The API classes (file system, messaging, trading, travel, ...) are imported from the installed
``bfcl-eval`` package and instantiated per entry from the entry's ``initial_config``; that is the
only part of the package executed here. Calls are dispatched as method calls with keyword
arguments; nothing is ``eval``-ed. Ground-truth calls are Python source
(``"mv(source='a', destination='b')"``), read with :mod:`ast` and only literal arguments accepted.

A prediction for an entry holds, per user turn, the model's steps, each a list of calls::

    {"id": "multi_turn_base_0", "turns": [[[call, ...], [call, ...]], [[call]], ...]}

Scoring rules (after BFCL's multi_turn_checker, re-implemented):

* the prediction must have as many turns as the entry (fewer means the run was cut short);
* both the model's calls and the ground truth's calls are executed turn after turn on two
  separate sets of instances, whose state carries over between turns;
* steps with no call are ignored. In a turn whose ground truth is empty (the model is expected to
  be unable to act, e.g. a function is missing) nothing is checked, but any calls the model makes
  are still executed so the next turn's state is right;
* in every other turn the model must have made at least one call, every public attribute of every
  ground-truth instance must equal the model instance's, and each result string the ground truth
  produced in this turn must appear among the results the model has produced so far, in any turn
  and in any order (each result used once) - a model may have fetched something earlier.
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import json
from collections.abc import Callable, Iterable
from typing import Any

from looptool.eval.ast_checker import PASS, Verdict, fail
from looptool.eval.bfcl import category_of_id

_SOURCE_PACKAGE = "bfcl_eval.eval_checker.multi_turn_eval.func_source_code"
API_CLASS_MODULES: dict[str, str] = {
    "GorillaFileSystem": "gorilla_file_system",
    "MathAPI": "math_api",
    "MessageAPI": "message_api",
    "TwitterAPI": "posting_api",
    "TicketAPI": "ticket_api",
    "TradingBot": "trading_bot",
    "TravelAPI": "travel_booking",
    "VehicleControlAPI": "vehicle_control",
}
# Classes without state take no scenario (bfcl_eval multi_turn_utils STATELESS_CLASSES).
STATELESS_CLASSES = frozenset({"MathAPI"})
# Method names BFCL refuses to run whatever the class, as a guard against harmful calls.
REFUSED_METHODS = frozenset({"kill", "exit", "quit", "remove", "unlink", "popen", "Popen", "run"})
ERROR_PREFIX = "Error during execution: "

Instances = dict[str, Any]


def make_instances(entry: dict) -> Instances:
    """Fresh API objects for an entry: class name -> instance loaded with the entry's initial state."""
    long_context = "long_context" in category_of_id(entry["id"])
    config = entry.get("initial_config") or {}
    instances: Instances = {}
    for class_name in entry["involved_classes"]:
        module = importlib.import_module(f"{_SOURCE_PACKAGE}.{API_CLASS_MODULES[class_name]}")
        instance = getattr(module, class_name)()
        if class_name not in STATELESS_CLASSES:
            instance._load_scenario(copy.deepcopy(config.get(class_name, {})), long_context=long_context)
        instances[class_name] = instance
    return instances


def method_table(instances: Instances) -> dict[str, Callable]:
    """Public method name -> bound method. A name two classes share goes to the later class,
    as in BFCL."""
    table: dict[str, Callable] = {}
    for instance in instances.values():
        for name, method in inspect.getmembers(instance, predicate=inspect.ismethod):
            if not name.startswith("_"):
                table[name] = method
    return table


def result_text(value: Any) -> str:
    """How BFCL turns a return value into the text the model sees: str as is, dict as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def _invoke(table: dict[str, Callable], name: Any, args: tuple, kwargs: Any) -> str:
    if not isinstance(name, str) or name not in table:
        return f"{ERROR_PREFIX}name {name!r} is not defined"
    if name in REFUSED_METHODS:
        return f"{ERROR_PREFIX}Function call {name} is not allowed."
    if not isinstance(kwargs, dict):
        return f"{ERROR_PREFIX}arguments of {name} are not an object"
    try:
        return result_text(table[name](*args, **kwargs))
    except Exception as err:  # the API classes signal bad input by raising; the model sees the text
        return f"{ERROR_PREFIX}{err}"


def execute_calls(instances: Instances, calls: Iterable[dict]) -> list[str]:
    """Run model calls (``{"name", "arguments"}``) in order against the instances (mutating them);
    one result string per call. Never raises for a bad call: the error becomes its result text."""
    table = method_table(instances)
    results = []
    for call in calls:
        if not isinstance(call, dict):
            results.append(f"{ERROR_PREFIX}a call must be an object")
            continue
        results.append(_invoke(table, call.get("name"), (), call.get("arguments", {})))
    return results


def parse_call_source(source: str) -> tuple[str, tuple, dict]:
    """``"f(1, b='x')"`` -> ``("f", (1,), {"b": "x"})``; only literal arguments are accepted."""
    node = ast.parse(source.strip(), mode="eval").body
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"not a plain function call: {source!r}")
    args = tuple(ast.literal_eval(a) for a in node.args)
    kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg is not None}
    return node.func.id, args, kwargs


def execute_sources(instances: Instances, sources: Iterable[str]) -> list[str]:
    """Run ground-truth calls written as Python source; one result string per call."""
    table = method_table(instances)
    results = []
    for source in sources:
        try:
            name, args, kwargs = parse_call_source(source)
        except (ValueError, SyntaxError) as err:
            results.append(f"{ERROR_PREFIX}{err}")
            continue
        results.append(_invoke(table, name, args, kwargs))
    return results


def source_to_call(source: str, instances: Instances) -> dict:
    """A ground-truth call in Python source -> ``{"name", "arguments"}``, naming positional
    arguments from the method's signature (the form a model emits)."""
    name, args, kwargs = parse_call_source(source)
    method = method_table(instances).get(name)
    if args:
        if method is None:
            raise ValueError(f"cannot name positional arguments of unknown function {name!r}")
        bound = inspect.signature(method).bind_partial(*args)
        kwargs = {**bound.arguments, **kwargs}
    return {"name": name, "arguments": kwargs}


def gold_turns(entry: dict, ground_truth: list[list[str]]) -> list[list[list[dict]]]:
    """The ground truth as a prediction's ``turns``: one step per turn holding all its calls."""
    instances = make_instances(entry)
    return [[[source_to_call(s, instances) for s in turn]] if turn else [] for turn in ground_truth]


def public_state(instance: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(instance).items() if not k.startswith("_")}


def _state_difference(model: Instances, truth: Instances) -> str | None:
    for class_name, truth_instance in truth.items():
        model_instance = model[class_name]
        for attribute, expected in public_state(truth_instance).items():
            if getattr(model_instance, attribute, None) != expected:
                return f"{class_name}.{attribute} differs from the ground truth's"
    return None


def _missing_results(expected: list[str], produced: list[str]) -> list[str]:
    pool = list(produced)
    missing = []
    for item in expected:
        try:
            pool.remove(item)
        except ValueError:
            missing.append(item)
    return missing


def check_multi_turn(entry: dict, ground_truth: list[list[str]], turns: Any) -> Verdict:
    """Score one multi-turn entry. ``turns``: per user turn, a list of steps, each a list of calls."""
    if not isinstance(turns, list) or len(turns) != len(ground_truth):
        got = len(turns) if isinstance(turns, list) else type(turns).__name__
        return fail(f"expected {len(ground_truth)} turns, got {got}")
    model = make_instances(entry)
    truth = make_instances(entry)
    model_results: list[str] = []
    for index, (expected_sources, steps) in enumerate(zip(ground_truth, turns)):
        if not isinstance(steps, list):
            return fail(f"turn {index}: steps must be a list")
        steps = [step for step in steps if isinstance(step, list) and step]
        for step in steps:
            model_results.extend(execute_calls(model, step))
        truth_results = execute_sources(truth, expected_sources)
        if not expected_sources:
            continue
        if not steps:
            return fail(f"turn {index}: the model made no call")
        difference = _state_difference(model, truth)
        if difference:
            return fail(f"turn {index}: {difference}")
        missing = _missing_results(truth_results, model_results)
        if missing:
            return fail(f"turn {index}: ground-truth results not produced by the model: {missing[:3]!r}")
    return PASS
