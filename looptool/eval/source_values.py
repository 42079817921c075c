"""Java and JavaScript argument values written as source text, turned into Python values.

In BFCL's ``java`` and ``javascript`` categories every argument is a string holding a literal in
that language (``"42L"``, ``"new int[]{1, 2}"``, ``"{key: 'v'}"``). The checker converts the
string by the parameter's declared type and then compares it with the possible answers. The
conversion rules below follow BFCL's type converters (bfcl_eval/eval_checker/ast_eval/
type_convertor/): a string that does not have the declared type's shape is *kept as the string*
(it may be a variable name, which the possible answers list as a string).

Where BFCL's converters are quirky we keep the quirk, because scores must stay comparable with
the leaderboard, and say so next to it:

* Java ``String``/``char``/``any`` values and elements of a Java ``Array`` of those types are kept
  verbatim, quotes included (only ``ArrayList`` elements of type String/char lose their quotes).
* Elements of a Java ``ArrayList`` declared ``any`` stay strings.

Where BFCL splits lists naively on every comma, we split on commas outside quotes and brackets,
so a string element containing a comma survives; on everything else the two agree.
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

_INT = re.compile(r"-?\d+")
_JAVA_FLOAT = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?[fF]")
_JAVA_DOUBLE = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_JAVA_LONG = re.compile(r"-?\d+[lL]")
_JS_FLOAT = re.compile(r"-?\d+(\.\d+)?")
_JS_BIGINT = re.compile(r"-?\d+n")

_JAVA_ARRAY = re.compile(r"new\s+\w+\s*\[\]\s*\{(.*)\}", re.S)
_JAVA_AS_LIST = re.compile(r"new\s+ArrayList\s*<[^>]*>\s*\(\s*Arrays\.asList\((.*)\)\s*\)", re.S)
_JAVA_ADD_BLOCK = re.compile(r"new\s+ArrayList\s*<[^>]*>\s*\(\s*\)\s*\{\s*\{(.*)\}\s*\}", re.S)
_JAVA_EMPTY_LIST = re.compile(r"new\s+ArrayList\s*<[^>]*>\s*\(\s*\)")
_JAVA_MAP_BLOCK = re.compile(r"new\s+HashMap\s*<.*?>\s*\(\s*\)\s*\{\s*\{?(.*?)\}?\s*\}", re.S)
_JAVA_EMPTY_MAP = re.compile(r"new\s+HashMap\s*<.*?>\s*\(\s*\)")
_JAVA_PUT = re.compile(r'put\(\s*"(.*?)"\s*,\s*(.*?)\)\s*;', re.S)


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split on ``separator`` where it is outside quotes and (), [], {} nesting."""
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _is_quoted(text: str, quotes: str = "\"'") -> bool:
    return len(text) >= 2 and text[0] == text[-1] and text[0] in quotes


# ----------------------------------------------------------------------------------------------
# Java
# ----------------------------------------------------------------------------------------------

def java_literal(text: str) -> Any:
    """A Java literal whose type is not declared: boolean, "string", 5L, 1.5f, int, double, else text."""
    if text == "true":
        return True
    if text == "false":
        return False
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    if _JAVA_LONG.fullmatch(text):
        return int(text[:-1])
    if _JAVA_FLOAT.fullmatch(text):
        return float(text[:-1])
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _java_elements(body: str) -> list[str]:
    return [part for part in split_top_level(body) if part]


def _java_list_element(text: str, item_type: str | None, unquote_text: bool) -> Any:
    if item_type in ("String", "char") and unquote_text:
        return text[1:-1]  # ArrayList elements: BFCL drops the first and last character (the quotes)
    if item_type:
        return java_value(text, item_type)
    return java_literal(text)


def java_value(text: str, declared: str, item_type: str | None = None) -> Any:
    """Convert a Java source string by its declared type; a mismatching shape stays a string."""
    if declared in ("byte", "short", "integer"):
        return int(text) if _INT.fullmatch(text) else text
    if declared == "long":
        return int(text[:-1]) if _JAVA_LONG.fullmatch(text) else text
    if declared == "float":
        return float(text[:-1]) if _JAVA_FLOAT.fullmatch(text) else text
    if declared == "double":
        return float(text) if _JAVA_DOUBLE.fullmatch(text) else text
    if declared == "boolean":
        return text == "true" if text in ("true", "false") else text
    if declared == "Array":
        match = _JAVA_ARRAY.search(text)
        if not match:
            return text
        return [_java_list_element(e, item_type, unquote_text=False) for e in _java_elements(match.group(1))]
    if declared == "ArrayList":
        match = _JAVA_AS_LIST.search(text)
        if match:
            return [_java_list_element(e, item_type, True) for e in _java_elements(match.group(1))]
        match = _JAVA_ADD_BLOCK.search(text)
        if match:
            adds = re.findall(r"add\((.+?)\)\s*;", match.group(1), re.S)
            return [_java_list_element(a.strip(), item_type, True) for a in adds]
        if _JAVA_EMPTY_LIST.search(text):
            return []
        return text
    if declared == "HashMap":
        match = _JAVA_MAP_BLOCK.search(text)
        if match:
            return {key: java_literal(value.strip()) for key, value in _JAVA_PUT.findall(match.group(1))}
        if _JAVA_EMPTY_MAP.search(text):
            return {}
        return text
    # String, char, any, and the collection types BFCL never converts (Set, Queue, ...): verbatim.
    return text


# ----------------------------------------------------------------------------------------------
# JavaScript
# ----------------------------------------------------------------------------------------------

def js_literal(text: str) -> Any:
    """A JS literal whose type is not declared: boolean, quoted string, int, float, else text."""
    text = text.strip()
    if text == "true":
        return True
    if text == "false":
        return False
    if _is_quoted(text):
        return text[1:-1]
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _js_array_body(text: str) -> str | None:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        return text[1:-1]
    match = re.fullmatch(r"new\s+Array\((.*)\)", text, re.S)
    return match.group(1) if match else None


def _js_array(text: str, item_type: str | None) -> Any:
    body = _js_array_body(text)
    if body is None:
        return text
    elements = [e for e in split_top_level(body) if e] if body.strip() else []
    if elements and all(_js_array_body(e) is not None and e.startswith("[") for e in elements):
        # An array of arrays: BFCL reads the inner elements without the declared item type.
        return [[js_literal(x) for x in split_top_level(_js_array_body(e)) if x] for e in elements]
    if item_type:
        return [js_value(e, item_type) for e in elements]
    return [js_literal(e) for e in elements]


def _js_object(text: str) -> Any:
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return text
    body = text[1:-1].strip()
    result: dict[str, Any] = {}
    if not body:
        return result
    for pair in split_top_level(body):
        if not pair:
            continue
        key, sep, value = pair.partition(":")
        if not sep:
            return text  # not an object literal we can read; keep the source
        key = key.strip().strip("'\"")
        value = value.strip()
        if value.startswith("[") and value.endswith("]"):
            result[key] = _js_array(value, None)
        elif value.startswith("{") and value.endswith("}"):
            result[key] = _js_object(value)
        else:
            # BFCL strips quotes before reading the literal, so '5' and 5 both become 5.
            result[key] = js_literal(value.strip("'\""))
    return result


def js_value(text: str, declared: str, item_type: str | None = None) -> Any:
    """Convert a JavaScript source string by its declared type; a mismatching shape stays a string."""
    if declared == "String":
        return text[1:-1] if _is_quoted(text) else text
    if declared == "integer":
        return int(text) if _INT.fullmatch(text) else text
    if declared == "float":
        return float(text) if _JS_FLOAT.fullmatch(text) else text
    if declared == "Bigint":
        return int(text[:-1]) if _JS_BIGINT.fullmatch(text) else text
    if declared == "Boolean":
        return text == "true" if text in ("true", "false") else text
    if declared == "array":
        return _js_array(text, item_type)
    if declared == "dict":
        return _js_object(text)
    return text  # any
