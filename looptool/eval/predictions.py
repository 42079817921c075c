"""Predictions files (DESIGN.md §3): read tolerantly, never crash, report every bad line.

One JSON object per line::

    {"id": "simple_0", "calls": [{"name": "f", "arguments": {"x": 1}}], "raw": "<model text>"}
    {"id": "multi_turn_base_0", "turns": [[[call, ...], ...], ...], "raw": "..."}

``"calls": []`` means the model made no call. ``raw`` (the model's text) is kept for debugging and
is what ACEBench's special categories score; a line may carry that text as ``text`` instead (the
name ACEBench-style files use), read the same way (``raw`` wins when both are non-empty). A line
that cannot be read (broken JSON, no id, an id the benchmark does not have, calls of the wrong
shape, a repeated id) is reported as ``file:line: reason`` and skipped, so its entry counts as
wrong, like an entry with no line at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from looptool.schema import Call


@dataclass(frozen=True)
class Prediction:
    id: str
    calls: list[dict] = field(default_factory=list)
    turns: list | None = None  # multi-turn entries: per turn, per step, a list of calls
    raw: str = ""


@dataclass
class PredictionSet:
    """Readable predictions by id, and one message per problem found while reading."""

    by_id: dict[str, Prediction] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    lines_read: int = 0

    @property
    def rejected(self) -> int:
        return len(self.problems)


def _normalise_calls(value: Any, where: str) -> list[dict]:
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list of calls, got {type(value).__name__}")
    calls = []
    for index, item in enumerate(value):
        try:
            calls.append(Call.from_dict(item).to_dict())
        except ValueError as err:
            raise ValueError(f"{where}[{index}]: {err}") from None
    return calls


def _normalise_turns(value: Any) -> list[list[list[dict]]]:
    if not isinstance(value, list):
        raise ValueError(f"'turns' must be a list of turns, got {type(value).__name__}")
    turns = []
    for t, steps in enumerate(value):
        if not isinstance(steps, list):
            raise ValueError(f"turns[{t}] must be a list of steps")
        turns.append([_normalise_calls(step, f"turns[{t}][{s}]") for s, step in enumerate(steps)])
    return turns


def parse_prediction(obj: Any) -> Prediction:
    """One decoded line -> :class:`Prediction`; raises ``ValueError`` saying what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    entry_id = obj.get("id")
    if not isinstance(entry_id, str) or not entry_id:
        raise ValueError("missing or non-string 'id'")
    raw = obj.get("raw", "")
    if isinstance(raw, str) and not raw and "text" in obj:  # ACEBench-style lines name it "text"
        raw = obj["text"]
    raw = raw if isinstance(raw, str) else json.dumps(raw)
    if "turns" in obj:
        return Prediction(id=entry_id, turns=_normalise_turns(obj["turns"]), raw=raw)
    if "calls" not in obj:
        raise ValueError(f"{entry_id}: no 'calls' (use [] for no call)")
    return Prediction(id=entry_id, calls=_normalise_calls(obj["calls"], "'calls'"), raw=raw)


def read_predictions(path: str | os.PathLike, is_known_id: Callable[[str], bool] | None = None) -> PredictionSet:
    """Read a predictions file; never raises on bad content (a missing file is one problem)."""
    path = Path(path)
    result = PredictionSet()
    try:
        handle = path.open("r", encoding="utf-8", errors="replace")
    except OSError as err:
        result.problems.append(f"{path}: cannot read ({err.strerror or err})")
        return result
    with handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            result.lines_read += 1
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                result.problems.append(f"{where}: invalid JSON ({err.msg} at column {err.colno})")
                continue
            except RecursionError:
                result.problems.append(f"{where}: JSON nested too deeply")
                continue
            try:
                prediction = parse_prediction(obj)
            except ValueError as err:
                result.problems.append(f"{where}: {err}")
                continue
            if is_known_id is not None and not is_known_id(prediction.id):
                result.problems.append(f"{where}: unknown id {prediction.id!r}")
                continue
            if prediction.id in result.by_id:
                result.problems.append(f"{where}: repeated id {prediction.id!r}; the first line is kept")
                continue
            result.by_id[prediction.id] = prediction
    return result
