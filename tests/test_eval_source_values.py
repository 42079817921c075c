"""Java / JavaScript argument strings -> Python values, one test per rule of BFCL's converters.

The rules are those of bfcl_eval/eval_checker/ast_eval/type_convertor/java_type_converter.py and
js_type_converter.py (bfcl-eval 2025.8.6.2); every expected value below was worked out by hand
from those rules, quirks included. The last test compares with the official functions themselves
when the bfcl_eval package is installed.
"""

from __future__ import annotations

import math

import pytest

from looptool.eval.source_values import java_value, js_value

# ---------------------------------------------------------------------------------------------
# Java scalars
# ---------------------------------------------------------------------------------------------


def test_java_integer_types_take_optional_minus_and_digits_and_one_trailing_newline():
    for declared in ("byte", "short", "integer"):
        assert java_value("-42", declared) == -42
        assert java_value("7\n", declared) == 7  # re.match with "$" lets one final newline through
        assert java_value("+7", declared) == "+7"
        assert java_value("7 ", declared) == "7 "
        assert java_value("7L", declared) == "7L"


def test_java_long_needs_the_l_suffix():
    assert java_value("42L", "long") == 42 and java_value("-3l", "long") == -3
    assert java_value("7L\n", "long") == 7
    assert java_value("42", "long") == "42"


def test_java_float_needs_the_f_suffix():
    assert java_value("2.5f", "float") == 2.5 and java_value("1e3F", "float") == 1000.0
    assert java_value("2.5f\n", "float") == 2.5
    assert java_value("2.5", "float") == "2.5" and java_value(".5f", "float") == ".5f"


def test_java_double_takes_no_suffix():
    assert java_value("2.5", "double") == 2.5 and java_value("-1e-2", "double") == -0.01
    assert java_value("3", "double") == 3.0 and type(java_value("3", "double")) is float
    assert java_value("2.5\n", "double") == 2.5
    assert java_value("2.5f", "double") == "2.5f" and java_value(".5", "double") == ".5"


def test_java_boolean_is_exactly_true_or_false():
    assert java_value("true", "boolean") is True and java_value("false", "boolean") is False
    assert java_value("True", "boolean") == "True" and java_value("true\n", "boolean") == "true\n"


def test_java_char_string_and_any_stay_verbatim():
    # BFCL's char pattern ^'.$' can never match, so a char keeps its quotes like a String does.
    assert java_value("'a'", "char") == "'a'"
    assert java_value('"hi"', "String") == '"hi"'
    assert java_value("42", "any") == "42"


def test_java_types_bfcl_cannot_convert_stay_verbatim():
    # BFCL raises NotImplementedError for these (no BFCL entry declares them); we keep the text.
    for declared in ("Set", "Hashtable", "Queue", "Stack"):
        assert java_value("new HashSet<>()", declared) == "new HashSet<>()"


# ---------------------------------------------------------------------------------------------
# Java arrays
# ---------------------------------------------------------------------------------------------


def test_java_array_shape_is_searched_on_one_line_up_to_the_first_closing_brace():
    assert java_value("x = new int[]{1, 2}; y", "Array", "integer") == [1, 2]
    assert java_value("new int []{1}", "Array", "integer") == "new int []{1}"  # no space before []
    assert java_value("new int[]{1,\n2}", "Array", "integer") == "new int[]{1,\n2}"  # no newline inside
    assert java_value('new String[]{"a}", "b"}', "Array", "String") == ['"a']
    assert java_value("new int[][]{{1, 2}, {3, 4}}", "Array", "Array") == "new int[][]{{1, 2}, {3, 4}}"
    assert java_value("myVariable", "Array", "integer") == "myVariable"


def test_java_array_elements_split_on_every_comma_and_empty_ones_dropped():
    assert java_value('new String[]{"a, b", "c"}', "Array", "String") == ['"a', 'b"', '"c"']
    assert java_value("new int[]{1, , 2,}", "Array", "integer") == [1, 2]
    assert java_value("new int[] { }", "Array", "integer") == []


def test_java_array_elements_convert_by_item_type_else_as_literals():
    assert java_value("new long[]{1L, 2}", "Array", "long") == [1, "2"]
    assert java_value('new String[]{"a", "b"}', "Array", "String") == ['"a"', '"b"']  # quotes kept
    assert java_value('new Object[]{1, "abc", true, 2L, 1.5f, 2.5, x}', "Array") == [1, "abc", True, 2, 1.5, 2.5, "x"]


def test_java_untyped_literals_follow_parse_java_value():
    value = java_value('new Object[]{"}', "Array")
    assert value == [""]  # a lone double quote both starts and ends with one
    value = java_value("new Object[]{1_000, 1e5, inf, 'a'}", "Array")
    assert value[:2] == [1000, 100000.0] and math.isinf(value[2]) and value[3] == "'a'"


# ---------------------------------------------------------------------------------------------
# Java ArrayList
# ---------------------------------------------------------------------------------------------


def test_java_arraylist_as_list_form():
    text = 'new ArrayList<>(Arrays.asList("a", "b")) and Arrays.asList("c"))'
    assert java_value(text, "ArrayList", "String") == ["a", "b"]  # up to the first "))"
    assert java_value("new ArrayList<>(Arrays.asList())", "ArrayList", "integer") == "new ArrayList<>(Arrays.asList())"
    assert java_value("new ArrayList <Integer>(Arrays.asList(1))", "ArrayList", "integer") == \
        "new ArrayList <Integer>(Arrays.asList(1))"
    assert java_value("new ArrayList<List<Integer>>(Arrays.asList(1))", "ArrayList", "integer") == \
        "new ArrayList<List<Integer>>(Arrays.asList(1))"


def test_java_arraylist_elements_split_on_every_comma_and_empty_ones_kept():
    assert java_value('new ArrayList<String>(Arrays.asList("a, b", "c"))', "ArrayList", "String") == ["", "", "c"]
    assert java_value("new ArrayList<Integer>(Arrays.asList(1, ))", "ArrayList", "integer") == [1, ""]


def test_java_arraylist_elements_lose_first_and_last_character_for_string_and_char():
    assert java_value("new ArrayList<Character>(Arrays.asList('a', 'b'))", "ArrayList", "char") == ["a", "b"]
    assert java_value("new ArrayList<String>(Arrays.asList(name))", "ArrayList", "String") == ["am"]
    assert java_value("new ArrayList<Object>(Arrays.asList(42, true))", "ArrayList", "any") == ["42", "true"]
    assert java_value("new ArrayList<Long>(Arrays.asList(4L, 5))", "ArrayList", "long") == [4, "5"]
    assert java_value('new ArrayList<>(Arrays.asList(1, "abc", true))', "ArrayList") == [1, "abc", True]


def test_java_arraylist_double_brace_add_form():
    assert java_value('new ArrayList<String>() {{ add("x"); add("y"); }}', "ArrayList", "String") == ["x", "y"]
    assert java_value("new ArrayList<Integer>() {{ add(1) add(2) }}", "ArrayList", "integer") == [1, 2]
    assert java_value("new ArrayList<Integer>() {{\n add(1);\n add(2);\n}}", "ArrayList", "integer") == [1, 2]
    # "{ {" is not "{{": only the empty-list form is left, which matches the prefix.
    assert java_value("new ArrayList<Integer>() { { add(1); } }", "ArrayList", "integer") == []


def test_java_arraylist_empty_form_and_no_match():
    assert java_value("new ArrayList<>()", "ArrayList", "integer") == []
    assert java_value("foo(new ArrayList<String>())", "ArrayList", "String") == []
    assert java_value("new ArrayList<>( )", "ArrayList", "integer") == "new ArrayList<>( )"
    assert java_value("myList", "ArrayList", "integer") == "myList"


# ---------------------------------------------------------------------------------------------
# Java HashMap
# ---------------------------------------------------------------------------------------------


def test_java_hashmap_double_brace_put_form():
    assert java_value('new HashMap<String, Object>() {{ put("k", 5); put("s", "v"); }}', "HashMap") == {"k": 5, "s": "v"}
    assert java_value('new HashMap<String, Integer>() {{ put("a", 1) }}', "HashMap") == {"a": 1}  # no ";" needed
    assert java_value('new HashMap<String, Integer>() {{ put("a" , 1); }}', "HashMap") == {}  # '",' must touch
    assert java_value('new HashMap<String, Object>() {{ put("d", foo(1)); }}', "HashMap") == {"d": "foo(1"}
    assert java_value('new HashMap<String, Integer>() {{\n put("a", 1);\n put("b", 2L);\n}}', "HashMap") == {"a": 1, "b": 2}
    assert java_value('new HashMap<String, String>() {{ put("k", "a}b"); }}', "HashMap") == {}  # body ends at "}"


def test_java_hashmap_empty_forms_and_no_match():
    for text in ("new HashMap<>()", "new HashMap<>() {}", "new HashMap<>() {{}}", "new HashMap<>() {{ }}"):
        assert java_value(text, "HashMap") == {}
    assert java_value('new HashMap<>( ) {{ put("a", 1); }}', "HashMap") == 'new HashMap<>( ) {{ put("a", 1); }}'
    assert java_value("new HashMap <String, Integer>()", "HashMap") == "new HashMap <String, Integer>()"
    assert java_value("config", "HashMap") == "config"


# ---------------------------------------------------------------------------------------------
# JavaScript scalars
# ---------------------------------------------------------------------------------------------


def test_js_string_loses_matching_outer_quotes():
    assert js_value("'hello'", "String") == "hello" and js_value('"hi"', "String") == "hi"
    assert js_value('"', "String") == ""  # starts and ends with the same quote
    assert js_value("\"a'", "String") == "\"a'" and js_value("hello", "String") == "hello"
    assert js_value(" 'a' ", "String") == " 'a' "


def test_js_integer_takes_optional_minus_and_digits_and_one_trailing_newline():
    assert js_value("-5", "integer") == -5 and js_value("5\n", "integer") == 5
    assert js_value("5.0", "integer") == "5.0" and js_value("+5", "integer") == "+5"


def test_js_float_takes_digits_with_an_optional_fraction():
    assert js_value("5", "float") == 5.0 and type(js_value("5", "float")) is float
    assert js_value("-2.5", "float") == -2.5 and js_value("2.5\n", "float") == 2.5
    assert js_value("1e3", "float") == "1e3" and js_value(".5", "float") == ".5"


def test_js_bigint_needs_the_n_suffix():
    assert js_value("12n", "Bigint") == 12 and js_value("-3n", "Bigint") == -3
    assert js_value("12", "Bigint") == "12"
    # BFCL raises ValueError here (int("12n")); no BFCL entry declares Bigint, we keep the text.
    assert js_value("12n\n", "Bigint") == "12n\n"


def test_js_boolean_is_exactly_true_or_false_and_any_stays_verbatim():
    assert js_value("true", "Boolean") is True and js_value("false", "Boolean") is False
    assert js_value("TRUE", "Boolean") == "TRUE"
    assert js_value(" 'x' ", "any") == " 'x' "


# ---------------------------------------------------------------------------------------------
# JavaScript arrays
# ---------------------------------------------------------------------------------------------


def test_js_array_input_is_stripped_and_a_non_match_returned_stripped():
    assert js_value("  [1, 2]  ", "array", "integer") == [1, 2]
    assert js_value("  items ", "array", "String") == "items"


def test_js_array_brackets_match_a_prefix_up_to_the_first_closing_bracket():
    assert js_value("[1, 2] extra", "array", "integer") == [1, 2]
    assert js_value("[1, [2, 3]]", "array") == [1, "[2", 3]


def test_js_array_new_array_form_matches_a_prefix_up_to_the_first_closing_paren():
    assert js_value("new Array(1, 2)", "array", "integer") == [1, 2]
    assert js_value("new Array()", "array", "integer") == []
    assert js_value('new Array("a", "b") tail', "array", "String") == ["a", "b"]


def test_js_array_elements_split_on_every_comma_and_empty_ones_kept():
    assert js_value("[1, , 2]", "array", "integer") == [1, "", 2]
    assert js_value('["a, b"]', "array", "String") == ['"a', 'b"']
    assert js_value("[ ]", "array", "integer") == [] and js_value("[]", "array") == []


def test_js_array_elements_convert_by_item_type():
    assert js_value("[1, 2.5]", "array", "float") == [1.0, 2.5]
    assert js_value("['x', y]", "array", "String") == ["x", "y"]
    assert js_value("[1n, 2]", "array", "Bigint") == [1, "2"]
    assert js_value('[{"a": 1}, {"b": 2}]', "array", "dict") == [{"a": 1}, {"b": 2}]


def test_js_array_elements_without_item_type_are_literals():
    assert js_value("[1, 'two', true, 2.5, x]", "array") == [1, "two", True, 2.5, "x"]
    assert js_value('["]', "array") == [""]  # a lone quote both starts and ends with one


def test_js_array_an_item_type_bfcl_does_not_know_returns_the_stripped_input():
    # js_type_converter raises ValueError on the element; parse_js_collection catches it.
    assert js_value(" [1] ", "array", "object") == "[1]"


def test_js_array_of_arrays_reads_inner_elements_as_literals():
    assert js_value("[[1, 2], [3, 4]]", "array", "float") == [[1, 2], [3, 4]]  # item type ignored: ints
    assert js_value(" [ [ 1, 2 ], [ 3,   4], [5, 6]]", "array", "array") == [[1, 2], [3, 4], [5, 6]]
    assert js_value("new Array([1, 2], ['a'])", "array", "array") == [[1, 2], ["a"]]
    assert js_value("[[], [1]]", "array", "array") == [[""], [1]]
    assert js_value("[[1, 2], [3, 4]] tail", "array", "array") == [[1, 2], [3, 4]]


# ---------------------------------------------------------------------------------------------
# JavaScript objects
# ---------------------------------------------------------------------------------------------


def test_js_dict_matches_a_prefix_up_to_the_first_closing_brace():
    assert js_value('{"issuer": "a"} extra', "dict") == {"issuer": "a"}
    assert js_value("{method: 'GET', nested: {a: true}}", "dict") == {"method": "GET", "nested": "{a: true"}
    assert js_value("{}", "dict") == {} and js_value("  { }  ", "dict") == {}


def test_js_dict_body_is_one_line():
    assert js_value("{\n a: 1\n}", "dict") == "{\n a: 1\n}"


def test_js_dict_pairs_split_at_a_comma_whose_next_chunk_has_a_colon():
    assert js_value('{a: "x, y", b: 2}', "dict") == {"a": "x, y", "b": 2}
    assert js_value('{a: "x, y: z", b: 2}', "dict") == {"a": "x", "y": "z", "b": 2}
    assert js_value("{abc}", "dict") == {}  # no colon, no pair


def test_js_dict_keys_and_values_lose_quotes_and_values_read_as_literals_or_arrays():
    assert js_value("{'k': '5', \"b\": \"true\", c: x, d: 1.5}", "dict") == {"k": 5, "b": True, "c": "x", "d": 1.5}
    assert js_value("{xs: [1, 'a'], ys: []}", "dict") == {"xs": [1, "a"], "ys": []}


def test_js_dict_no_match_returns_the_stripped_input():
    assert js_value("  cfg ", "dict") == "cfg"
    assert js_value("[1]", "dict") == "[1]"


# ---------------------------------------------------------------------------------------------
# Against the official converters, where the package is installed
# ---------------------------------------------------------------------------------------------

JAVA_CASES = [
    ("-42", "integer", None), ("7\n", "short", None), ("+7", "byte", None), ("42L", "long", None),
    ("7L\n", "long", None), ("42", "long", None), ("2.5f", "float", None), ("2.5f\n", "float", None),
    ("2.5", "float", None), ("1e3F", "float", None), ("2.5", "double", None), ("3", "double", None),
    ("2.5f", "double", None), ("true", "boolean", None), ("True", "boolean", None), ("'a'", "char", None),
    ('"hi"', "String", None), ("42", "any", None),
    ("x = new int[]{1, 2}; y", "Array", "integer"), ("new int []{1}", "Array", "integer"),
    ("new int[]{1,\n2}", "Array", "integer"), ('new String[]{"a}", "b"}', "Array", "String"),
    ("new int[][]{{1, 2}, {3, 4}}", "Array", "Array"), ('new String[]{"a, b", "c"}', "Array", "String"),
    ("new int[]{1, , 2,}", "Array", "integer"), ("new int[] { }", "Array", "integer"),
    ("new long[]{1L, 2}", "Array", "long"), ('new Object[]{1, "abc", true, 2L, 1.5f, 2.5, x}', "Array", None),
    ('new Object[]{"}', "Array", None), ("new char[]{'a', 'b'}", "Array", "char"),
    ('new ArrayList<>(Arrays.asList("a", "b")) and Arrays.asList("c"))', "ArrayList", "String"),
    ("new ArrayList<>(Arrays.asList())", "ArrayList", "integer"),
    ("new ArrayList <Integer>(Arrays.asList(1))", "ArrayList", "integer"),
    ('new ArrayList<String>(Arrays.asList("a, b", "c"))', "ArrayList", "String"),
    ("new ArrayList<Integer>(Arrays.asList(1, ))", "ArrayList", "integer"),
    ("new ArrayList<Character>(Arrays.asList('a', 'b'))", "ArrayList", "char"),
    ("new ArrayList<Object>(Arrays.asList(42, true))", "ArrayList", "any"),
    ('new ArrayList<>(Arrays.asList(1, "abc", true))', "ArrayList", None),
    ('new ArrayList<String>() {{ add("x"); add("y"); }}', "ArrayList", "String"),
    ("new ArrayList<Integer>() {{ add(1) add(2) }}", "ArrayList", "integer"),
    ("new ArrayList<Integer>() {{\n add(1);\n add(2);\n}}", "ArrayList", "integer"),
    ("new ArrayList<Integer>() { { add(1); } }", "ArrayList", "integer"),
    ("new ArrayList<>()", "ArrayList", "integer"), ("new ArrayList<>( )", "ArrayList", "integer"),
    ("myList", "ArrayList", "integer"),
    ('new HashMap<String, Object>() {{ put("k", 5); put("s", "v"); }}', "HashMap", None),
    ('new HashMap<String, Integer>() {{ put("a", 1) }}', "HashMap", None),
    ('new HashMap<String, Integer>() {{ put("a" , 1); }}', "HashMap", None),
    ('new HashMap<String, Object>() {{ put("d", foo(1)); }}', "HashMap", None),
    ('new HashMap<String, Integer>() {{\n put("a", 1);\n put("b", 2L);\n}}', "HashMap", None),
    ('new HashMap<String, String>() {{ put("k", "a}b"); }}', "HashMap", None),
    ("new HashMap<>() {}", "HashMap", None), ("new HashMap<>() {{ }}", "HashMap", None),
    ('new HashMap<>( ) {{ put("a", 1); }}', "HashMap", None), ("new HashMap <String, Integer>()", "HashMap", None),
]

JS_CASES = [
    ("'hello'", "String", None), ('"', "String", None), ("\"a'", "String", None), (" 'a' ", "String", None),
    ("-5", "integer", None), ("5\n", "integer", None), ("5.0", "integer", None), ("5", "float", None),
    ("2.5\n", "float", None), ("1e3", "float", None), ("12n", "Bigint", None), ("12", "Bigint", None),
    ("true", "Boolean", None), ("TRUE", "Boolean", None), (" 'x' ", "any", None),
    ("  [1, 2]  ", "array", "integer"), ("  items ", "array", "String"), ("[1, 2] extra", "array", "integer"),
    ("[1, [2, 3]]", "array", None), ("new Array(1, 2)", "array", "integer"), ("new Array()", "array", "integer"),
    ('new Array("a", "b") tail', "array", "String"), ("[1, , 2]", "array", "integer"), ('["a, b"]', "array", "String"),
    ("[ ]", "array", "integer"), ("[1, 2.5]", "array", "float"), ("['x', y]", "array", "String"),
    ("[1n, 2]", "array", "Bigint"), ('[{"a": 1}, {"b": 2}]', "array", "dict"),
    ("[1, 'two', true, 2.5, x]", "array", None), ('["]', "array", None), ("[[1, 2], [3, 4]]", "array", "float"),
    (" [ [ 1, 2 ], [ 3,   4], [5, 6]]", "array", "array"), ("new Array([1, 2], ['a'])", "array", "array"),
    ("[[], [1]]", "array", "array"), ("[[1, 2], [3, 4]] tail", "array", "array"),
    ('{"issuer": "a"} extra', "dict", None), ("{method: 'GET', nested: {a: true}}", "dict", None),
    ("{}", "dict", None), ("  { }  ", "dict", None), ("{\n a: 1\n}", "dict", None), ('{a: "x, y", b: 2}', "dict", None),
    ('{a: "x, y: z", b: 2}', "dict", None), ("{abc}", "dict", None),
    ("{'k': '5', \"b\": \"true\", c: x, d: 1.5}", "dict", None), ("{xs: [1, 'a'], ys: []}", "dict", None),
    ("  cfg ", "dict", None), ("[1]", "dict", None), (" [1] ", "array", "object"),
]


def _typed(value):
    """A value with every type spelled out, so 1, 1.0 and True compare different."""
    if isinstance(value, dict):
        return ("dict", sorted((k, _typed(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    return (type(value).__name__, value)


def test_matches_the_official_converters_on_every_listed_input():
    java = pytest.importorskip("bfcl_eval.eval_checker.ast_eval.type_convertor.java_type_converter")
    js = pytest.importorskip("bfcl_eval.eval_checker.ast_eval.type_convertor.js_type_converter")
    for text, declared, item in JAVA_CASES:
        official = java.java_type_converter(text, declared, item) if item else java.java_type_converter(text, declared)
        assert _typed(java_value(text, declared, item)) == _typed(official), (text, declared, item)
    for text, declared, item in JS_CASES:
        official = js.js_type_converter(text, declared, item) if item else js.js_type_converter(text, declared)
        assert _typed(js_value(text, declared, item)) == _typed(official), (text, declared, item)
