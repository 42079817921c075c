"""Java and JavaScript argument values written as source text, turned into Python values.

In BFCL's ``java`` and ``javascript`` categories every argument is a string holding a literal in
that language (``"42L"``, ``"new int[]{1, 2}"``, ``"{key: 'v'}"``). The checker converts the
string by the parameter's declared type and then compares it with the possible answers. The
rules here are BFCL's, rule for rule (bfcl_eval/eval_checker/ast_eval/type_convertor/
java_type_converter.py and js_type_converter.py, bfcl-eval 2025.8.6.2): a string that does not
have the declared type's shape is *kept as the string* (it may be a variable name, which the
possible answers list as a string).

Scores must stay comparable with the leaderboard, so BFCL's quirks are kept too:

* shapes are tested with ``re.match`` and a pattern ending in ``$``, which also lets one trailing
  newline through (``"7\\n"`` is the integer 7); collection literals are matched as a *prefix* or
  searched for, so text after them is ignored (``'{"a": 1} extra'`` is ``{"a": 1}``);
* a collection body ends at the first closing bracket (``}``, ``]``, ``)`` or ``))``) and its
  elements are split on *every* comma, quotes or not (``["a, b"]`` has two elements);
* Java ``String``/``char``/``any`` values and elements of a Java ``Array`` of those types are kept
  verbatim, quotes included, while ``ArrayList`` elements of type String/char lose their first and
  last character; elements of a Java ``ArrayList`` declared ``any`` stay strings;
* empty elements are dropped from a Java ``Array`` but kept (as ``""``) in an ``ArrayList`` and in
  JavaScript arrays; a JavaScript array of arrays reads its inner elements without the item type;
* JavaScript ``array``/``dict`` values that do not match come back stripped of outer whitespace,
  and a JavaScript object's values lose their quotes before being read (``'5'`` is 5).

Where BFCL raises instead of converting (Java ``Set``/``Hashtable``/``Queue``/``Stack`` or an
unknown type, a ``Bigint`` followed by a newline) its own run stops with an exception; we keep
the text, so such a value fails unless the answers list it as a string. No BFCL entry declares
any of those types.
"""

from __future__ import annotations

import re
from typing import Any

# Declared Java/JS type -> Python type the converted value must have (bfcl_eval/constants/type_mappings.py).
JAVA_TYPES: dict[str, type] = {
    "byte": int, "short": int, "integer": int, "float": float, "double": float, "long": int,
    "boolean": bool, "char": str, "Array": list, "ArrayList": list, "Set": set, "HashMap": dict,
    "Hashtable": dict, "Queue": list, "Stack": list, "String": str, "any": str,
}
JS_TYPES: dict[str, type] = {
    "String": str, "integer": int, "float": float, "Bigint": int, "Boolean": bool, "dict": dict,
    "array": list, "any": str,
}

# Scalar shapes, used with .match (see _fits).
_INT = re.compile(r"-?\d+$")
_JAVA_LONG = re.compile(r"-?\d+[lL]$")
_JAVA_FLOAT = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?[fF]$")
_JAVA_DOUBLE = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?$")
_JS_FLOAT = re.compile(r"-?\d+(\.\d+)?$")
_JS_BIGINT = re.compile(r"-?\d+n")  # used with .fullmatch: BFCL raises on the newline its "$" lets in

# Java collections (java_type_converter.py: parse_array, parse_arraylist, parse_hashmap).
_JAVA_ARRAY = re.compile(r"new\s+\w+\[\]\s*\{(.*?)\}")
_JAVA_AS_LIST = re.compile(r"new\s+ArrayList<\w*>\(Arrays\.asList\((.+?)\)\)")
_JAVA_ADD_BLOCK = re.compile(r"new\s+ArrayList<\w*>\(\)\s*\{\{\s*(.+?)\s*\}\}", re.S)
_JAVA_ADD = re.compile(r"add\((.+?)\)")
_JAVA_EMPTY_LIST = re.compile(r"new\s+ArrayList<\w*>\(\)")
_JAVA_MAP_BLOCK = re.compile(r"new\s+HashMap<.*?>\s*\(\)\s*\{\s*\{?\s*(.*?)\s*\}?\s*\}", re.S)
_JAVA_PUT = re.compile(r'put\("(.*?)",\s*(.*?)\)')
_JAVA_EMPTY_MAP = re.compile(r"new\s+HashMap<.*?>\s*\(\)")

# JavaScript collections (js_type_converter.py: parse_js_collection), used with .match on stripped text.
_JS_ARRAY_OF_ARRAYS = re.compile(
    r"\[\s*\[.*?\]\s*(?:,\s*\[.*?\]\s*)*\]|\bnew\s+Array\(\s*\[.*?\]\s*(?:,\s*\[.*?\]\s*)*\)")
_JS_INNER_ARRAY = re.compile(r"\[(.*?)\]")
_JS_ARRAY = re.compile(r"\[(.*?)\]|\bnew\s+Array\((.*?)\)")
_JS_OBJECT = re.compile(r"\{(.*?)\}")
# A key up to a colon, then a value up to a comma whose next chunk holds a colon, or the end.
_JS_PAIR = re.compile(r"([^:]+):\s*(.*?)(?:,\s*(?=[^,]+:)|$)")


def _fits(shape: re.Pattern[str], text: str) -> bool:
    """BFCL's shape test: ``re.match`` with a pattern ending in ``$``, which also matches before a
    final newline; int() and float() then ignore that newline."""
    return shape.match(text) is not None


def _without_suffix(text: str) -> str:
    """A number without its type letter (``42L`` -> ``42``), which may sit before a final newline."""
    return text.rstrip("\n")[:-1]


# ----------------------------------------------------------------------------------------------
# Java
# ----------------------------------------------------------------------------------------------

def java_literal(text: str) -> Any:
    """A Java literal whose type is not declared (parse_java_value): true/false, "string", 5L,
    1.5f, then whatever int() or float() accepts, else the text."""
    if text == "true":
        return True
    if text == "false":
        return False
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1]  # a lone '"' both starts and ends with one: it becomes ""
    if _fits(_JAVA_LONG, text):
        return int(_without_suffix(text))
    if _fits(_JAVA_FLOAT, text):
        return float(_without_suffix(text))
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _java_element(text: str, item_type: str | None) -> Any:
    return java_value(text, item_type) if item_type else java_literal(text)


def _java_array(text: str, item_type: str | None) -> Any:
    match = _JAVA_ARRAY.search(text)
    if not match:
        return text
    parts = (part.strip() for part in match.group(1).split(","))
    return [_java_element(part, item_type) for part in parts if part]


def _java_arraylist(text: str, item_type: str | None) -> Any:
    match = _JAVA_AS_LIST.search(text)
    if match:
        items = [part.strip() for part in match.group(1).split(",")]  # empty parts are kept
    elif match := _JAVA_ADD_BLOCK.search(text):
        items = [added.strip() for added in _JAVA_ADD.findall(match.group(1))]
    else:
        return [] if _JAVA_EMPTY_LIST.search(text) else text
    if item_type in ("String", "char"):
        return [item[1:-1] for item in items]  # BFCL drops the first and last character (the quotes)
    return [_java_element(item, item_type) for item in items]


def _java_hashmap(text: str) -> Any:
    match = _JAVA_MAP_BLOCK.search(text)
    if match:
        return {key: java_literal(value.strip()) for key, value in _JAVA_PUT.findall(match.group(1))}
    return {} if _JAVA_EMPTY_MAP.search(text) else text


def java_value(text: str, declared: str, item_type: str | None = None) -> Any:
    """Convert a Java source string by its declared type; a mismatching shape stays a string."""
    if declared in ("byte", "short", "integer"):
        return int(text) if _fits(_INT, text) else text
    if declared == "long":
        return int(_without_suffix(text)) if _fits(_JAVA_LONG, text) else text
    if declared == "float":
        return float(_without_suffix(text)) if _fits(_JAVA_FLOAT, text) else text
    if declared == "double":
        return float(text) if _fits(_JAVA_DOUBLE, text) else text
    if declared == "boolean":
        return text == "true" if text in ("true", "false") else text
    if declared == "Array":
        return _java_array(text, item_type)
    if declared == "ArrayList":
        return _java_arraylist(text, item_type)
    if declared == "HashMap":
        return _java_hashmap(text)
    # String, any, char (BFCL's char pattern ^'.$' can never match) and the types BFCL raises on.
    return text


# ----------------------------------------------------------------------------------------------
# JavaScript
# ----------------------------------------------------------------------------------------------

def _quoted(text: str) -> bool:
    """Starts and ends with the same quote character (a lone quote does too)."""
    return text[:1] in ("'", '"') and text.endswith(text[:1])


def js_literal(text: str) -> Any:
    """A JS literal whose type is not declared (parse_js_value): true/false, a quoted string,
    then whatever int() or float() accepts, else the stripped text."""
    text = text.strip()
    if text == "true":
        return True
    if text == "false":
        return False
    if _quoted(text):
        return text[1:-1]
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _js_array(text: str, item_type: str | None) -> Any:
    code = text.strip()
    nested = _JS_ARRAY_OF_ARRAYS.match(code)
    if nested:
        # An array of arrays: BFCL reads the inner elements without the declared item type.
        rows = []
        for index, inner in enumerate(_JS_INNER_ARRAY.findall(nested.group(0))):
            inner = inner.strip()
            if index == 0 and inner.startswith("["):
                inner = inner[1:]  # the first inner match starts at the outer bracket
            rows.append([js_literal(element) for element in inner.split(",")])
        return rows
    match = _JS_ARRAY.match(code)
    if not match:
        return code
    body = (match.group(1) if match.group(1) is not None else match.group(2)).strip()
    elements = [element.strip() for element in body.split(",")] if body else []
    if not item_type:
        return [js_literal(element) for element in elements]
    if item_type not in JS_TYPES:
        return code  # BFCL's converter raises on each element and parse_js_collection keeps the text
    return [js_value(element, item_type) for element in elements]


def _js_object(text: str) -> Any:
    code = text.strip()
    match = _JS_OBJECT.match(code)
    if not match:
        return code
    result: dict[str, Any] = {}
    for key, value in _JS_PAIR.findall(match.group(1)):
        key = key.strip().strip("'\"")
        value = value.strip()
        if value.startswith("[") and value.endswith("]"):
            result[key] = _js_array(value, None)
        else:
            # The body ends at the first "}", so no value is a whole nested object. BFCL strips
            # quotes before reading the literal, so '5' and 5 both become 5.
            result[key] = js_literal(value.strip("'\""))
    return result


def js_value(text: str, declared: str, item_type: str | None = None) -> Any:
    """Convert a JavaScript source string by its declared type; a mismatching shape stays a string."""
    if declared == "String":
        return text[1:-1] if _quoted(text) else text
    if declared == "integer":
        return int(text) if _fits(_INT, text) else text
    if declared == "float":
        return float(text) if _fits(_JS_FLOAT, text) else text
    if declared == "Bigint":
        return int(text[:-1]) if _JS_BIGINT.fullmatch(text) else text
    if declared == "Boolean":
        return text == "true" if text in ("true", "false") else text
    if declared == "array":
        return _js_array(text, item_type)
    if declared == "dict":
        return _js_object(text)
    return text  # any
