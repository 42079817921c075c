"""BFCL AST rules, one literal example per rule (looptool.eval.ast_checker / source_values)."""

from __future__ import annotations

import pytest

from looptool.eval.ast_checker import check_entry, check_relevance, normalise_string
from looptool.eval.source_values import java_value, js_value

AREA = {
    "name": "geometry.area",
    "parameters": {
        "type": "dict",
        "properties": {
            "base": {"type": "integer"},
            "height": {"type": "float"},
            "unit": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "options": {"type": "dict"},
        },
        "required": ["base", "height"],
    },
}
ANSWER = [{"geometry.area": {
    "base": [10], "height": [5.0], "unit": ["cm", ""], "tags": [["a", "b"], ""],
    "options": [{"precision": [2], "mode": ["fast", ""]}, ""],
}}]


def call(**arguments):
    return [{"name": "geometry.area", "arguments": arguments}]


def simple(calls, answer=ANSWER, functions=(AREA,)):
    return check_entry("simple", list(functions), calls, answer)


def test_exact_answer_passes():
    assert simple(call(base=10, height=5.0, unit="cm"))


def test_int_is_accepted_where_python_float_is_declared():
    assert simple(call(base=10, height=5))


def test_float_where_integer_declared_and_bool_are_type_errors():
    assert not simple(call(base=10.0, height=5.0))
    verdict = simple(call(base=True, height=5.0))
    assert not verdict and "type" in verdict.reason


def test_string_for_number_is_a_type_mismatch():
    assert not simple(call(base="10", height=5.0))


def test_missing_required_parameter():
    verdict = simple(call(base=10))
    assert not verdict and "required" in verdict.reason


def test_optional_parameters_may_be_omitted_but_not_non_optional_ones():
    assert simple(call(base=10, height=5.0))  # unit, tags, options carry the "" marker
    answer = [{"geometry.area": {"base": [10], "height": [5.0], "unit": ["cm"]}}]
    verdict = simple(call(base=10, height=5.0), answer)
    assert not verdict and "optional" in verdict.reason


def test_unexpected_parameter():
    assert not simple(call(base=10, height=5.0, colour="red"))
    # in the doc but not in the possible answer: also unexpected
    answer = [{"geometry.area": {"base": [10], "height": [5.0]}}]
    assert not simple(call(base=10, height=5.0, unit="cm"), answer)


def test_wrong_value_and_list_of_acceptable_values():
    assert not simple(call(base=11, height=5.0))
    answer = [{"geometry.area": {"base": [10, 20], "height": [5.0]}}]
    assert simple(call(base=20, height=5.0), answer)


def test_string_normalisation_rule():
    assert normalise_string("April 1, 2024") == normalise_string("april 1 2024") == "april12024"
    assert normalise_string("New-York_City.") == "newyorkcity"
    assert normalise_string("it's") == 'it"s'
    assert simple(call(base=10, height=5.0, unit=" C.M "))
    assert not simple(call(base=10, height=5.0, unit="mm"))


def test_list_values_compare_in_order_with_normalised_strings():
    assert simple(call(base=10, height=5.0, tags=["A", "b "]))
    assert not simple(call(base=10, height=5.0, tags=["b", "a"]))
    assert not simple(call(base=10, height=5.0, tags=["a", 3]))  # element type


def test_nested_dict_rules():
    assert simple(call(base=10, height=5.0, options={"precision": 2}))  # "mode" is optional inside
    assert simple(call(base=10, height=5.0, options={"precision": 2, "mode": "FAST"}))
    assert not simple(call(base=10, height=5.0, options={"precision": 3}))
    assert not simple(call(base=10, height=5.0, options={"mode": "fast"}))  # precision not optional
    assert not simple(call(base=10, height=5.0, options={"precision": 2, "extra": 1}))


def test_wrong_function_name_and_wrong_call_count():
    assert not check_entry("simple", [AREA], [{"name": "area", "arguments": {"base": 10, "height": 5.0}}], ANSWER)
    assert not simple(call(base=10, height=5.0) * 2)
    assert not simple([])


def test_underscored_names_are_expected_when_the_model_saw_them():
    calls = [{"name": "geometry_area", "arguments": {"base": 10, "height": 5.0}}]
    assert check_entry("simple", [AREA], calls, ANSWER, underscore_names=True)
    assert not check_entry("simple", [AREA], calls, ANSWER)


SPEED = {"name": "speed", "parameters": {"type": "dict", "properties": {
    "distance": {"type": "integer"}, "time": {"type": "integer"}}, "required": ["distance", "time"]}}


def test_parallel_calls_match_in_any_order_one_to_one():
    answer = [{"speed": {"distance": [100], "time": [2]}}, {"speed": {"distance": [50], "time": [1]}}]
    first = {"name": "speed", "arguments": {"distance": 100, "time": 2}}
    second = {"name": "speed", "arguments": {"distance": 50, "time": 1}}
    assert check_entry("parallel", [SPEED], [second, first], answer)
    assert check_entry("parallel", [SPEED], [first, second], answer)
    assert not check_entry("parallel", [SPEED], [first, first], answer)  # each call used once
    assert not check_entry("parallel", [SPEED], [first], answer)


def test_full_matching_where_a_greedy_assignment_would_fail():
    # The first model call fits both expected calls; only the second fits the first expected one.
    answer = [{"speed": {"distance": [100, 50], "time": [2]}}, {"speed": {"distance": [100], "time": [2]}}]
    calls = [{"name": "speed", "arguments": {"distance": 100, "time": 2}},
             {"name": "speed", "arguments": {"distance": 50, "time": 2}}]
    assert check_entry("parallel", [SPEED], calls, answer)


def test_variable_names_listed_as_strings_are_compared_as_given():
    answer = [{"speed": {"distance": ["dist"], "time": [1]}}]
    assert check_entry("simple", [SPEED], [{"name": "speed", "arguments": {"distance": "dist", "time": 1}}], answer)
    assert not check_entry("simple", [SPEED], [{"name": "speed", "arguments": {"distance": "Dist", "time": 1}}], answer)


def test_java_values_are_strings_in_java_syntax():
    assert java_value("42", "integer") == 42
    assert java_value("42L", "long") == 42 and java_value("42", "long") == "42"
    assert java_value("1.5f", "float") == 1.5 and java_value("1.5", "float") == "1.5"
    assert java_value("2.5", "double") == 2.5
    assert java_value("true", "boolean") is True
    assert java_value("new int[]{1, 2, 3}", "Array", "integer") == [1, 2, 3]
    assert java_value('new ArrayList<>(Arrays.asList("a", "c"))', "ArrayList", "String") == ["a", "c"]
    # BFCL splits on every comma, quotes or not (tests/test_eval_source_values.py has every rule).
    assert java_value('new ArrayList<>(Arrays.asList("a, b", "c"))', "ArrayList", "String") == ["", "", "c"]
    assert java_value('new HashMap<String, Object>() {{ put("k", 5); put("s", "v"); }}', "HashMap") == {"k": 5, "s": "v"}
    assert java_value("myVariable", "Array", "integer") == "myVariable"

    doc = {"name": "Util.run", "parameters": {"type": "dict", "properties": {
        "count": {"type": "long"}, "flags": {"type": "Array", "items": {"type": "integer"}}},
        "required": ["count"]}}
    answer = [{"Util.run": {"count": [5], "flags": [[1, 2], ""]}}]
    ok = [{"name": "Util.run", "arguments": {"count": "5L", "flags": "new int[]{1, 2}"}}]
    assert check_entry("java", [doc], ok, answer, language="java")
    as_json_number = [{"name": "Util.run", "arguments": {"count": 5}}]
    assert not check_entry("java", [doc], as_json_number, answer, language="java")
    int_without_suffix = [{"name": "Util.run", "arguments": {"count": "5"}}]
    assert not check_entry("java", [doc], int_without_suffix, answer, language="java")


def test_javascript_values_are_strings_in_javascript_syntax():
    assert js_value("'hello'", "String") == "hello" and js_value("hello", "String") == "hello"
    assert js_value("3.5", "float") == 3.5 and js_value("12n", "Bigint") == 12
    assert js_value("[1, 2, 3]", "array", "integer") == [1, 2, 3]
    assert js_value("[[1, 2], [3, 4]]", "array", "float") == [[1, 2], [3, 4]]
    assert js_value("{method: 'GET', retries: 3}", "dict") == {"method": "GET", "retries": 3}
    # BFCL's object body ends at the first "}": a nested object stays (part of) a string.
    assert js_value("{method: 'GET', nested: {a: true}}", "dict") == {"method": "GET", "nested": "{a: true"}

    doc = {"name": "fetch", "parameters": {"type": "dict", "properties": {
        "url": {"type": "String"}, "config": {"type": "dict"}}, "required": ["url"]}}
    answer = [{"fetch": {"url": ["https://x.io"], "config": [{"method": ["GET"]}, ""]}}]
    ok = [{"name": "fetch", "arguments": {"url": "'https://x.io'", "config": "{method: 'get'}"}}]
    assert check_entry("javascript", [doc], ok, answer, language="javascript")
    wrong = [{"name": "fetch", "arguments": {"url": "'https://x.io'", "config": "{method: 'POST'}"}}]
    assert not check_entry("javascript", [doc], wrong, answer, language="javascript")


@pytest.mark.parametrize("category,calls,expected", [
    ("irrelevance", [], True),
    ("irrelevance", [{"name": "f", "arguments": {}}], False),
    ("live_irrelevance", [], True),
    ("live_relevance", [{"name": "f", "arguments": {}}], True),
    ("live_relevance", [], False),
])
def test_relevance_rules(category, calls, expected):
    assert bool(check_relevance(category, calls)) is expected
