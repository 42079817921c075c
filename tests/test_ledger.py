"""Ledger accounting: one record per item, in == kept + rejected, atomic JSONL round trip."""

from __future__ import annotations

import pytest

from looptool.ledger import Ledger, LedgerError


def test_balanced_ledger_round_trips_and_summarises(tmp_path):
    ledger = Ledger("stage_a")
    ledger.expect(4)
    ledger.keep("a", name="x")
    ledger.reject("b", "invalid_json_schema", detail="at properties: not an object")
    ledger.reject("c", "invalid_json_schema")
    ledger.reject("d", "near_duplicate")
    ledger.create("a/sample-1")
    ledger.note("two rules changed since the last run")
    ledger.write(tmp_path / "ledger.jsonl")
    summary = ledger.summary()
    assert summary["in"] == 4 and summary["kept"] == 1 and summary["rejected"] == 3 and summary["created"] == 1
    assert summary["rejected_by_reason"] == {"invalid_json_schema": 2, "near_duplicate": 1}
    assert summary["kept_rate"] == 0.25
    back = Ledger.read(tmp_path / "ledger.jsonl")
    assert back.stage == "stage_a" and back.summary() == summary
    assert back.records[1].info == {"detail": "at properties: not an object"}


def test_missing_item_is_caught_and_nothing_is_written(tmp_path):
    ledger = Ledger("stage_b")
    ledger.expect(3)
    ledger.keep("a")
    ledger.reject("b", "malformed_tool")
    with pytest.raises(LedgerError, match="3 items in but 1 kept \\+ 1 rejected"):
        ledger.write(tmp_path / "ledger.jsonl")
    assert not (tmp_path / "ledger.jsonl").exists()


def test_double_record_and_missing_reason_are_errors():
    ledger = Ledger("stage_c")
    ledger.keep("a")
    with pytest.raises(LedgerError, match="recorded twice"):
        ledger.reject("a", "duplicate_name")
    with pytest.raises(LedgerError, match="needs a reason"):
        ledger.reject("b", "")


def test_undeclared_input_count_does_not_pass_as_balanced():
    ledger = Ledger("stage_d")
    ledger.keep("a")
    with pytest.raises(LedgerError, match="never declared"):
        ledger.check_balanced()
    ledger.expect(1)
    ledger.check_balanced()


def test_empty_stage_balances(tmp_path):
    ledger = Ledger("import_tools")
    ledger.expect(0)
    assert ledger.write(tmp_path / "l.jsonl") == 0
    assert ledger.summary()["in"] == 0 and ledger.summary()["kept_rate"] == 0.0
