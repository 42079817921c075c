"""looptool.compare on a hand-written `dvc exp show --json` (DVC 3 layout): one commit, two
experiments that differ from it in one param each, one of which failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looptool import compare


def _scores(unseen_iter_r2: float) -> dict:
    # eval/scores.json as looptool.report.scores_metrics writes it: fractions, n and Wilson bounds.
    return {
        "base": {"r0": {"heldout_unseen_overall": 0.25, "heldout_unseen_overall_n": 40,
                        "heldout_unseen_overall_ci_low": 0.1419, "heldout_unseen_overall_ci_high": 0.4019,
                        "bfcl_overall": 0.1, "bfcl_overall_n": 100, "bfcl_overall_ci_low": 0.0552,
                        "bfcl_overall_ci_high": 0.1744}},
        "iterative": {"r1": {"heldout_unseen_overall": 0.3, "heldout_unseen_overall_n": 40,
                             "heldout_unseen_overall_ci_low": 0.1806, "heldout_unseen_overall_ci_high": 0.4551},
                      "r2": {"heldout_unseen_overall": unseen_iter_r2, "heldout_unseen_overall_n": 40,
                             "heldout_unseen_overall_ci_low": 0.2, "heldout_unseen_overall_ci_high": 0.5,
                             "acebench_overall": 0.125}},
    }


def _state(rev: str, name: str | None, edde: bool, lr: float, scores: dict | None) -> dict:
    metrics = {"data/seed/apis/metrics.json": {"data": {"requested": 12}}}
    metrics["eval/scores.json"] = {"data": scores} if scores is not None else {
        "error": {"type": "FileNotFoundError", "msg": "no such file"}}
    params = {"seed": 0, "ablation": {"edde": edde, "jglv": True}, "train": {"lr": lr}}
    return {"rev": rev, "name": name, "error": None, "experiments": None,
            "data": {"rev": rev, "timestamp": "2026-12-01T10:00:00", "params": {"params.yaml": {"data": params}},
                     "metrics": metrics, "deps": {}, "outs": {}, "meta": {"has_checkpoints": False}}}


def _exp_show() -> list:
    commit = _state("a" * 40, "main", edde=True, lr=1e-5, scores=_scores(0.35))
    commit["experiments"] = [
        {"name": "edde-off", "executor": None, "revs": [_state("b" * 40, "edde-off", False, 1e-5, _scores(0.32))]},
        # A failed run: DVC lists its params, and the metrics files it was queued with (the commit's),
        # which are not its scores.
        {"name": "lr-up", "executor": {"state": "failed", "name": None, "local": None},
         "revs": [_state("c" * 40, "lr-up", True, 3e-5, _scores(0.35))]},
        # Queued before any report existed: no scores.json at all.
        {"name": "queued-1", "executor": {"state": "queued", "name": None, "local": None},
         "revs": [_state("d" * 40, None, True, 1e-5, None)]},
    ]
    workspace = {"rev": "workspace", "name": None, "data": None, "experiments": None,
                 "error": {"type": "YAMLSyntaxError", "msg": "dvc.yaml is corrupted"}}
    return [workspace, commit]


def test_changed_params_per_row() -> None:
    rows = compare.rows_from_exp_show(_exp_show())
    assert [r.name for r in rows] == ["workspace", "main", "edde-off", "lr-up", "queued-1"]
    assert [r.state for r in rows] == ["error", None, None, "failed", "queued"]
    workspace, main, edde_off, lr_up, queued = rows
    assert queued.changed == {}
    assert workspace.changed == {}
    assert edde_off.changed == {"ablation.edde": False}
    assert lr_up.changed == {"train.lr": 3e-5}
    # The commit shows its own value of each key a sweep point changes.
    assert main.changed == {"ablation.edde": True, "train.lr": 1e-5}
    assert compare.format_params(main.changed) == "ablation.edde=true train.lr=1e-05"
    assert compare.format_params(workspace.changed) == "-"


def test_changed_params_counts_keys_on_one_side() -> None:
    assert compare.changed_params({"a": 1, "b.c": "x"}, {"a": 1, "d": None}) == {"b.c": "x", "d": "<absent>"}
    assert compare.changed_params({"a": 1}, None) == {}


def test_score_columns_and_cells() -> None:
    rows = compare.rows_from_exp_show(_exp_show())
    assert compare.default_metrics(rows) == ["heldout_unseen_overall", "bfcl_overall"]
    # Only runs some row has a score for: BFCL is on base alone here.
    assert compare.score_columns(rows, ["heldout_unseen_overall", "bfcl_overall"]) == [
        ("heldout_unseen_overall", "base", "r0"), ("heldout_unseen_overall", "iterative", "r1"),
        ("heldout_unseen_overall", "iterative", "r2"), ("bfcl_overall", "base", "r0")]
    _, main, edde_off, lr_up, _ = rows
    assert compare.score_cell(main, "heldout_unseen_overall", "base", "r0") == "25.0 [14.2,40.2] n=40"
    assert compare.score_cell(edde_off, "heldout_unseen_overall", "iterative", "r2") == "32.0 [20.0,50.0] n=40"
    assert compare.score_cell(lr_up, "heldout_unseen_overall", "iterative", "r2") == "-"
    assert compare.score_cell(main, "bfcl_overall", "iterative", "r2") == "-"
    assert compare.format_score({"acebench_overall": 0.125}, "acebench_overall") == "12.5"
    assert compare.run_label("base", "r0") == "base" and compare.run_label("static", "r3") == "static r3"


def test_rounds_sort_numerically() -> None:
    row = compare.Row("x", {}, {"static": {"r10": {"m": 0.1}, "r2": {"m": 0.2}}, "sft": {"r0": {"m": 0.3}}})
    assert compare.score_columns([row], ["m"]) == [("m", "sft", "r0"), ("m", "static", "r2"), ("m", "static", "r10")]


def test_wide_table_is_one_block() -> None:
    text = compare.compare_table(_exp_show(), width=250)
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("experiment"))
    assert lines[header - 1].split() == ["heldout_unseen_overall", "bfcl_overall"]
    assert lines[header].split() == ["experiment", "changed", "params", "base", "iterative", "r1", "iterative", "r2",
                                     "base"]
    edde = lines[header + 3]
    assert edde.split("  ")[0] == "edde-off"
    assert "ablation.edde=false" in edde and "32.0 [20.0,50.0] n=40" in edde
    failed = lines[header + 4]
    assert failed.startswith("lr-up [failed]") and failed.split()[-4:] == ["-", "-", "-", "-"]
    assert lines[header + 5].split() == ["queued-1", "[queued]", "-", "-", "-", "-", "-"]


@pytest.mark.parametrize("width", [40, 60, 90])
def test_narrow_width_wraps_into_blocks(width: int) -> None:
    text = compare.compare_table(_exp_show(), width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    blocks = [b for b in text.split("\n\n")[1:] if b.strip()]
    assert len(blocks) > 1
    # Every block leads with the experiment names, so each row can still be read alone.
    for block in blocks:
        names = [line.split("  ")[0] for line in block.splitlines()[-5:]]
        assert names == ["workspace [error]", "main", "edde-off", "lr-up [failed]", "queued-1 [queued]"]
    # Nothing lost: every score cell appears in full somewhere at 60+ columns.
    if width >= 60:
        assert "32.0 [20.0,50.0] n=40" in text and "10.0 [5.5,17.4] n=100" in text


def test_main_reads_saved_json(tmp_path: Path, capsys) -> None:
    saved = tmp_path / "exp.json"
    saved.write_text(json.dumps(_exp_show()), encoding="utf-8")
    assert compare.main(["--json", str(saved), "--width", "200", "--metric", "acebench_overall"]) == 0
    out = capsys.readouterr().out
    assert "acebench_overall" in out and "12.5" in out and "heldout_unseen_overall" not in out
    assert compare.main(["--json", str(saved), "--list-metrics"]) == 0
    assert capsys.readouterr().out.split() == ["acebench_overall", "bfcl_overall", "heldout_unseen_overall"]


def test_no_scores_yet_says_so() -> None:
    commit = _state("a" * 40, "main", edde=True, lr=1e-5, scores=None)
    text = compare.compare_table([commit], width=80)
    assert text.startswith("No scores yet") and text.splitlines()[-1].split() == ["main", "-"]
