"""Tool calls as text: rendering, tolerant parsing, matching and the binary reward (DESIGN.md §4).

The assistant writes one block per call::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

Several blocks are parallel calls. The parser accepts the untidy output small models produce
(extra whitespace, code fences, prose after the calls, one block holding a JSON list, a bare JSON
call with no tags) and, when it gives up, says why. The matcher compares calls as a *multiset*:
order is free, duplicates count. The official LoopTool reward collapses duplicated calls into a
set; we keep them, because calling ``transfer(100)`` twice is not the same as calling it once.

Thinking models (Qwen3 and the like) may write a ``<think> ... </think>`` block before the answer.
It is never part of the answer: :func:`split_thinking` separates it, and the parser, the reward,
the probe, evaluation and the generator/judge client all read only what follows it. A block that
is opened and never closed (the token limit cut the thought) leaves no answer at all: the output is
an error and earns nothing, whatever the thought says. When the prompt itself opens the block (a
template whose generation prompt ends with ``<think>``, see :func:`prompt_opens_thinking`), the
output starts inside the thought; callers say so with ``in_thought=True``.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from looptool.io import dumps_canonical
from looptool.schema import Call, Label

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

_BLOCK = re.compile(re.escape(CALL_OPEN) + r"(.*?)(" + re.escape(CALL_CLOSE) + r"|\Z)", re.S)
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)(?:```|\Z)", re.S)
_DECODER = json.JSONDecoder()


def render_call(call: Call) -> str:
    body = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
    return f"{CALL_OPEN}\n{body}\n{CALL_CLOSE}"


def render_calls(calls: Iterable[Call]) -> str:
    return "\n".join(render_call(c) for c in calls)


def render_label(label: Label) -> str:
    """The assistant text a perfect model would write for this label."""
    return label if isinstance(label, str) else render_calls(label)


@dataclass(frozen=True)
class Thinking:
    """A model output split at its think block (:func:`split_thinking`).

    ``thought`` is None when the output has no think block, else the text inside it (stripped;
    possibly empty). ``answer`` is what follows the block, leading whitespace removed; it is empty
    when the block is not closed (``closed`` False): a cut-off thought gives no answer.
    """

    answer: str
    thought: str | None = None
    closed: bool = True

    @property
    def thinking(self) -> bool:
        return self.thought is not None


def split_thinking(text: str, in_thought: bool = False) -> Thinking:
    """Separate a leading ``<think> ... </think>`` block from the answer.

    The block counts when the output opens with ``<think>`` (after whitespace), or when it holds a
    ``</think>`` with no opener before it: the generation prompt opened the block (Qwen3 thinking
    templates do), and so does ``in_thought=True``, which also makes an output with no
    ``</think>`` at all an unclosed thought. A ``<think>`` further inside the answer is just text.
    """
    body = text.lstrip()
    if body.startswith(THINK_OPEN):
        body = body[len(THINK_OPEN):]
    else:
        close = text.find(THINK_CLOSE)
        if not in_thought and (close < 0 or THINK_OPEN in text[:close]):
            return Thinking(answer=text)
        body = text
    close = body.find(THINK_CLOSE)
    if close < 0:
        return Thinking(answer="", thought=body.strip(), closed=False)
    return Thinking(answer=body[close + len(THINK_CLOSE):].lstrip(), thought=body[:close].strip())


def prompt_opens_thinking(prompt: str) -> bool:
    """True iff the prompt ends inside an open think block (the model continues a thought).

    Qwen3's template with thinking switched off ends its generation prompt with an empty, closed
    block (``<think>\n\n</think>\n\n``): that is no open block.
    """
    return prompt.rstrip().endswith(THINK_OPEN)


@dataclass(frozen=True)
class ParseResult:
    """Outcome of parsing one model output.

    ``calls`` is empty for a plain text reply. ``error`` is set when the output tried to call a
    tool but could not be read, or when its think block was never closed; ``calls`` is then empty
    too and the output earns no reward. ``thought`` is the text of the output's think block (None
    without one, see :class:`Thinking`); ``answer`` is the text the calls were read from.
    """

    calls: list[Call] = field(default_factory=list)
    error: str | None = None
    thought: str | None = None
    answer: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def has_calls(self) -> bool:
        return bool(self.calls)

    @property
    def thinking(self) -> bool:
        """The output had a think block (closed or not)."""
        return self.thought is not None

    @property
    def thought_chars(self) -> int:
        return len(self.thought or "")


def _strip_fences(text: str) -> str:
    text = text.strip()
    if text.startswith("```"):
        match = _FENCE.match(text)
        if match:
            return match.group(1).strip()
    return text


def _call_from_json(obj: Any, where: str) -> Call:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a call object, got {type(obj).__name__}")
    if "arguments" not in obj and "parameters" in obj:
        obj = {**obj, "arguments": obj["parameters"]}  # xLAM / Llama style key
    try:
        return Call.from_dict(obj)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def _decode_json_values(body: str, where: str) -> list[Any]:
    """Decode one or more JSON values written one after the other (whitespace between)."""
    values: list[Any] = []
    pos = 0
    body = body.strip()
    while pos < len(body):
        try:
            value, end = _DECODER.raw_decode(body, pos)
        except json.JSONDecodeError as err:
            if pos == 0:
                raise ValueError(f"{where}: invalid JSON ({err.msg} at char {err.pos})") from None
            raise ValueError(f"{where}: unexpected text after the JSON value: {body[pos:pos + 40]!r}") from None
        values.append(value)
        pos = end
        while pos < len(body) and body[pos] in " \t\r\n,":
            pos += 1
    if not values:
        raise ValueError(f"{where}: empty")
    return values


def _calls_from_values(values: list[Any], where: str) -> list[Call]:
    calls: list[Call] = []
    for value in values:
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            calls.append(_call_from_json(item, f"{where}, item {i + 1}" if isinstance(value, list) else where))
    return calls


def _looks_like_bare_call(text: str) -> bool:
    return text[:1] in "{[" and '"name"' in text


THINK_NOT_CLOSED = "think block is not closed (the output ended inside the thought, no answer)"


def parse_tool_calls(text: str, in_thought: bool = False) -> ParseResult:
    """Parse a model output into calls, a text reply (no calls), or an error with a reason.

    A leading think block is stripped first (:func:`split_thinking`; ``in_thought``: the prompt
    opened it); an unclosed one is an error. Never raises on any string input.
    """
    if not isinstance(text, str):
        return ParseResult(error=f"output is {type(text).__name__}, not text")
    split = split_thinking(text, in_thought)
    if not split.closed:
        return ParseResult(error=THINK_NOT_CLOSED, thought=split.thought)
    result = _parse_answer(split.answer)
    return ParseResult(calls=result.calls, error=result.error, thought=split.thought, answer=split.answer)


def _parse_answer(text: str) -> ParseResult:
    blocks = _BLOCK.findall(text)
    try:
        if blocks:
            calls: list[Call] = []
            for index, (body, closer) in enumerate(blocks, start=1):
                where = f"tool_call block {index}"
                body = _strip_fences(body)
                try:
                    values = _decode_json_values(body, where)
                except ValueError as err:
                    if not closer:
                        raise ValueError(f"{where} is not closed and its JSON is incomplete (truncated output?)") from None
                    raise err
                calls.extend(_calls_from_values(values, where))
            return ParseResult(calls=calls)
        # No tags: accept a bare JSON call, alone or inside a code fence.
        candidate = _strip_fences(text)
        if _looks_like_bare_call(candidate):
            return ParseResult(calls=_calls_from_values(_decode_json_values(candidate, "bare JSON call"), "bare JSON call"))
        return ParseResult()
    except ValueError as err:
        return ParseResult(error=str(err))
    except RecursionError:
        return ParseResult(error="JSON nested too deeply")


def canonical_value(value: Any) -> Any:
    """JSON normalisation for comparison: key order dropped, 5 == 5.0, but "5" != 5 and True != 1."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else value
    if isinstance(value, (list, tuple)):
        return [canonical_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): canonical_value(v) for k, v in value.items()}
    return value


def call_key(call: Call) -> str:
    """A hashable, order-free identity of a call: equal keys <=> equal calls."""
    return dumps_canonical([call.name, canonical_value(call.arguments)])


def calls_match(predicted: Sequence[Call], expected: Sequence[Call]) -> bool:
    """True iff both are the same multiset of calls (order free, duplicates counted)."""
    return Counter(map(call_key, predicted)) == Counter(map(call_key, expected))


def tool_call_reward(completion: str, label: Label, ended: bool = True, in_thought: bool = False) -> float:
    """The binary reward: 1.0 iff the output does exactly what the label says, else 0.0.

    * text label (or empty call list): 1 iff the output is a non-empty reply with no call that
      *ended* (stop token / end of turn; ``ended=False`` means the length limit cut it off);
    * call label: 1 iff the output parses into the same multiset of calls (the calls are complete
      whether or not decoding went on after them).
    Only the answer counts: a think block is stripped first, and one left open scores 0 (see
    :func:`parse_tool_calls`; ``in_thought``: the prompt opened it). A malformed output scores 0;
    this function does not raise on any completion text.
    """
    parsed = parse_tool_calls(completion, in_thought)
    if not parsed.ok:
        return 0.0
    if isinstance(label, str) or not label:
        # An empty or cut-off reply would otherwise be "a correct abstention" for free.
        return 0.0 if parsed.has_calls or not ended or not parsed.answer.strip() else 1.0
    return 1.0 if calls_match(parsed.calls, label) else 0.0
