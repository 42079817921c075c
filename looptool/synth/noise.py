"""Label noise with ground truth: the oracle assistant as a noisy annotator (issue #13, item 4).

A strong generator still writes wrong labels that pass every rule check, and those are the ones
that reach training and that JGLV exists to find. The program oracle knows the right answer, so it
can make such mistakes on purpose, at a known rate, and keep the clean label beside the noisy one
(``meta.clean_label``) for the per-round JGLV audit. Every corruption below still passes the seed
set's rules (schema-valid arguments, required values said by the user):

=================  ===========================================================================
``drop_optional``  leave out an optional argument the user stated
``wrong_enum``     a different, schema-valid enum value
``swap_args``      two arguments of the same type swapped (from/to, start/end, sender/recipient)
``near_miss_tool`` the same arguments sent to a similar tool of the offered set
``text_for_call``  a text reply where a call is right
``call_for_text``  a call where a text reply is right (a request no offered tool serves)
=================  ===========================================================================
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema.validators import Draft202012Validator

from looptool.schema import Call, Tool

NOISE_TYPES = ("drop_optional", "wrong_enum", "swap_args", "near_miss_tool", "text_for_call", "call_for_text")
CALL_NOISE = NOISE_TYPES[:5]
REFUSALS = (
    "Sorry, I can't help with that request.",
    "I'm not able to do that with the tools I have.",
    "Unfortunately that is not something I can do here.",
)


@dataclass
class Corruption:
    kind: str
    label: list[Call] | str
    detail: str


def _valid(tool: Tool, arguments: dict[str, Any]) -> bool:
    return not any(True for _ in Draft202012Validator(tool.parameters).iter_errors(arguments))


def _drop_optional(calls: list[Call], tools: dict[str, Tool], rng: random.Random) -> Corruption | None:
    options = [(i, k) for i, c in enumerate(calls) for k in c.arguments
               if k not in tools[c.name].parameters.get("required", [])]
    if not options:
        return None
    i, key = rng.choice(options)
    out = list(calls)
    out[i] = Call(calls[i].name, {k: v for k, v in calls[i].arguments.items() if k != key})
    return Corruption("drop_optional", out, f"{calls[i].name}: dropped {key}")


def _wrong_enum(calls: list[Call], tools: dict[str, Tool], rng: random.Random) -> Corruption | None:
    options = []
    for i, c in enumerate(calls):
        props = tools[c.name].parameters.get("properties", {})
        for k, v in c.arguments.items():
            enum = (props.get(k) or {}).get("enum")
            if isinstance(enum, list) and len(enum) >= 2 and v in enum:
                options.append((i, k, [e for e in enum if e != v]))
    if not options:
        return None
    i, key, others = rng.choice(options)
    new = rng.choice(others)
    out = list(calls)
    out[i] = Call(calls[i].name, {**calls[i].arguments, key: new})
    return Corruption("wrong_enum", out, f"{calls[i].name}.{key}: {calls[i].arguments[key]!r} -> {new!r}")


def _swap_args(calls: list[Call], tools: dict[str, Tool], rng: random.Random) -> Corruption | None:
    options = []
    for i, c in enumerate(calls):
        props = tools[c.name].parameters.get("properties", {})
        keys = [k for k, v in c.arguments.items()
                if isinstance(v, (str, int, float)) and not isinstance(v, bool) and "enum" not in (props.get(k) or {})]
        for a in range(len(keys)):
            for b in range(a + 1, len(keys)):
                x, y = c.arguments[keys[a]], c.arguments[keys[b]]
                if type(x) is type(y) and x != y and (props.get(keys[a]) or {}).get("format") == (props.get(keys[b]) or {}).get("format"):
                    options.append((i, keys[a], keys[b]))
    if not options:
        return None
    i, a, b = rng.choice(options)
    args = dict(calls[i].arguments)
    args[a], args[b] = args[b], args[a]
    out = list(calls)
    out[i] = Call(calls[i].name, args)
    return Corruption("swap_args", out, f"{calls[i].name}: swapped {a} and {b}")


def _near_miss_tool(calls: list[Call], tools: dict[str, Tool], rng: random.Random) -> Corruption | None:
    options = [(i, other) for i, c in enumerate(calls) for other in sorted(tools)
               if other != c.name and other not in {x.name for x in calls} and c.arguments
               and _valid(tools[other], c.arguments)]
    if not options:
        return None
    i, other = rng.choice(options)
    out = list(calls)
    out[i] = Call(other, calls[i].arguments)
    return Corruption("near_miss_tool", out, f"{calls[i].name} -> {other}")


def corrupt_calls(calls: Sequence[Call], tools: dict[str, Tool], rng: random.Random,
                  weights: dict[str, float]) -> Corruption | None:
    """A rule-passing wrong version of a call label (None when no allowed corruption applies)."""
    makers = {"drop_optional": _drop_optional, "wrong_enum": _wrong_enum, "swap_args": _swap_args,
              "near_miss_tool": _near_miss_tool}
    kinds = [k for k in CALL_NOISE if weights.get(k, 0) > 0]
    while kinds:
        kind = rng.choices(kinds, [weights[k] for k in kinds])[0]
        kinds.remove(kind)
        if kind == "text_for_call":
            return Corruption(kind, rng.choice(REFUSALS), "refused a request a tool serves")
        made = makers[kind](list(calls), tools, rng)
        if made is not None:
            return made
    return None


def call_for_text(tools: dict[str, Tool], said: Sequence[str], rng: random.Random) -> Corruption | None:
    """A call to an offered tool whose required parameters can all be filled with words the user
    said (strings without enum or format): the "call on every request" mistake, still grounded."""
    said = [s for s in said if isinstance(s, str) and s.strip()]
    options = []
    for name in sorted(tools):
        params = tools[name].parameters
        required = params.get("required", [])
        props = params.get("properties", {})
        if not required or not said:
            continue
        if all((props.get(k) or {}).get("type") == "string" and "enum" not in props[k] and "format" not in props[k]
               for k in required):
            options.append(name)
    if not options:
        return None
    name = rng.choice(options)
    arguments = {k: rng.choice(said) for k in tools[name].parameters["required"]}
    if not _valid(tools[name], arguments):
        return None
    return Corruption("call_for_text", [Call(name, arguments)], f"called {name} for a request no tool serves")
