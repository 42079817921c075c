"""Sample accounting: every item a stage sees gets exactly one record saying what became of it.

DESIGN.md §3: "every stage that drops, keeps, rewrites or creates samples writes one record per
sample with its fate and reason; counts in must equal counts out." A :class:`Ledger` enforces that:

* a stage declares how many items came in (:meth:`Ledger.expect`), then records one fate per item;
* :meth:`Ledger.check_balanced` fails when an item was recorded twice, or when
  ``in != kept + rejected`` (something vanished silently, or was counted twice);
* the file is written atomically as JSONL, one record per line, and :meth:`Ledger.summary` gives
  the counts (overall and per rejection reason) for DVC metrics and MLflow.

Fates: ``kept`` (passed on to the stage's output), ``rejected`` (dropped, with a reason) and
``created`` (a new item the stage made from kept inputs, e.g. samples cut from a dialogue; created
items are reported but are not part of the in = kept + rejected balance) and ``note`` (a remark
about the stage as a whole, e.g. "no import files configured"; not an item).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from looptool.io import read_jsonl, write_jsonl

FATES = ("kept", "rejected", "created", "note")


class LedgerError(RuntimeError):
    """The ledger does not balance: an item is missing, duplicated or has an unknown fate."""


@dataclass
class LedgerRecord:
    stage: str
    id: str
    fate: str
    reason: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "id": self.id, "fate": self.fate, "reason": self.reason, "info": self.info}

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> "LedgerRecord":
        fate = obj.get("fate")
        if fate not in FATES:
            raise ValueError(f"ledger record fate must be one of {FATES}, got {fate!r}")
        return cls(stage=str(obj["stage"]), id=str(obj["id"]), fate=fate, reason=obj.get("reason"),
                   info=dict(obj.get("info") or {}))


class Ledger:
    """One stage's accounting of its items (see the module docstring)."""

    def __init__(self, stage: str):
        self.stage = stage
        self.records: list[LedgerRecord] = []
        self.expected_in: int | None = None
        self._seen: set[str] = set()

    # ---------------------------------------------------------------------------------- recording
    def expect(self, count: int) -> None:
        """Declare how many items entered the stage (may be called several times: it adds up)."""
        self.expected_in = (self.expected_in or 0) + int(count)

    def _add(self, item_id: str, fate: str, reason: str | None, info: dict[str, Any]) -> None:
        if fate in ("kept", "rejected") and item_id in self._seen:
            raise LedgerError(f"{self.stage}: item {item_id!r} recorded twice")
        if fate in ("kept", "rejected"):
            self._seen.add(item_id)
        self.records.append(LedgerRecord(self.stage, str(item_id), fate, reason, info))

    def keep(self, item_id: str, **info: Any) -> None:
        self._add(item_id, "kept", None, info)

    def reject(self, item_id: str, reason: str, **info: Any) -> None:
        """Drop an item. ``reason`` is a short stable code (``invalid_json_schema``); put details in info."""
        if not reason:
            raise LedgerError(f"{self.stage}: rejecting {item_id!r} needs a reason")
        self._add(item_id, "rejected", reason, info)

    def create(self, item_id: str, **info: Any) -> None:
        self._add(item_id, "created", None, info)

    def note(self, text: str, **info: Any) -> None:
        """A remark about the whole stage (kept in the file, outside the item balance)."""
        self._add(f"{self.stage}#note{self.count('note')}", "note", text, info)

    # ----------------------------------------------------------------------------------- counting
    def count(self, fate: str) -> int:
        return sum(1 for r in self.records if r.fate == fate)

    @property
    def n_in(self) -> int:
        return self.expected_in if self.expected_in is not None else self.count("kept") + self.count("rejected")

    def rejection_reasons(self) -> dict[str, int]:
        return dict(sorted(Counter(r.reason for r in self.records if r.fate == "rejected").items()))

    def check_balanced(self) -> None:
        """Raise :class:`LedgerError` unless in == kept + rejected."""
        kept, rejected = self.count("kept"), self.count("rejected")
        if self.expected_in is None:
            raise LedgerError(f"{self.stage}: the number of items in was never declared (call expect())")
        if self.expected_in != kept + rejected:
            raise LedgerError(
                f"{self.stage}: {self.expected_in} items in but {kept} kept + {rejected} rejected = {kept + rejected}"
            )

    def summary(self) -> dict[str, Any]:
        """Counts for metrics: in, kept, rejected, created, keep rate, and rejections per reason."""
        kept, rejected = self.count("kept"), self.count("rejected")
        total = self.n_in
        return {
            "in": total,
            "kept": kept,
            "rejected": rejected,
            "created": self.count("created"),
            "kept_rate": round(kept / total, 4) if total else 0.0,
            "rejected_by_reason": self.rejection_reasons(),
        }

    # -------------------------------------------------------------------------------------- files
    def write(self, path: str | os.PathLike, check: bool = True) -> int:
        """Atomically write the records as JSONL (after checking the balance, unless told not to)."""
        if check:
            self.check_balanced()
        return write_jsonl(path, (r.to_dict() for r in self.records))

    @classmethod
    def read(cls, path: str | os.PathLike, stage: str | None = None) -> "Ledger":
        """Load a written ledger; ``expected_in`` becomes kept + rejected (what the file accounts for)."""
        records = read_jsonl(path, LedgerRecord.from_dict)
        ledger = cls(stage or (records[0].stage if records else "unknown"))
        for record in records:
            ledger._add(record.id, record.fate, record.reason, record.info)
        ledger.expected_in = ledger.count("kept") + ledger.count("rejected")
        return ledger
