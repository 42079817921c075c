"""The report stage on a literal two-round tree with one evaluation missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looptool import report
from looptool.loop.probe import need_kind_of, phenomena_of
from stages import report as report_stage

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _eval_metrics(bfcl_overall: float, simple: float, ace_overall: float) -> dict:
    return {
        "bfcl-v3": {
            "summary": {"overall": bfcl_overall, "non_live": 0.3, "live": 0.2, "multi_turn": 0.0, "simple_ast": simple,
                        "categories_run": ["simple", "irrelevance"],
                        "categories_not_run": ["java", "multi_turn_base"]},
            "categories": {"simple": {"correct": 3, "total": 10, "accuracy": simple},
                           "irrelevance": {"correct": 5, "total": 5, "accuracy": 1.0}},
            "problems": 0,
        },
        "acebench": {
            "summary": {"overall": ace_overall, "normal": 0.5, "special": 0.25, "agent": 0.0,
                        "agent_source": "not run (counts 0)", "categories_run": ["normal_atom_bool"],
                        "categories_not_run": ["agent_multi_step"]},
            "categories": {"normal_atom_bool": {"correct": 1, "total": 2, "accuracy": 0.5}},
            "problems": 0,
        },
    }


def _write(root: Path, relative: str, obj) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def _write_jsonl(root: Path, relative: str, rows: list) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


# Held-out items (id -> meta; s2 has none) and per-item outcomes of three runs. "gone" is an id the
# sample file no longer holds.
HELDOUT_META = {
    "heldout_unseen": {"u1": {"need_kind": "single_call", "phenomena": ["identifier", "iso_date"]},
                       "u2": {"need_kind": "single_call", "phenomena": ["identifier"]},
                       "u3": {"need_kind": "no_tool", "phenomena": []}},
    "heldout_seen": {"s1": {"need_kind": "parallel", "phenomena": ["relative_date"]}, "s2": {}},
}
HELDOUT_OUTCOMES = {
    ("sft", "r0"): {"heldout_unseen": {"single_call": {"u1": 0, "u2": 1}, "no_tool": {"u3": 1}},
                    "heldout_seen": {"parallel": {"s1": 0}, "reply": {"s2": 1}}},
    ("iterative", "r1"): {"heldout_unseen": {"single_call": {"u1": 1, "u2": 1}, "no_tool": {"u3": 1}},
                          "heldout_seen": {"parallel": {"s1": 1}, "reply": {"s2": 0}}},
    ("iterative", "r2"): {"heldout_unseen": {"single_call": {"u1": 1, "u2": 0}, "no_tool": {"u3": 0}},
                          "heldout_seen": {"parallel": {"s1": 1}, "reply": {"s2": 0, "gone": 1}},
                          "bfcl-v3": {"simple": {"0": 1}}},  # not a held-out set: never pooled
}


@pytest.fixture(autouse=True)
def no_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report stage logs arm runs to MLflow (tested in tests/test_tracking.py); not from here."""
    monkeypatch.setenv("LOOPTOOL_MLFLOW", "0")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    _write(root, "eval/base/r0/metrics.json", _eval_metrics(0.1234, 0.2, 0.05))
    _write(root, "eval/sft/r0/metrics.json", _eval_metrics(0.2, 0.25, 0.05))
    _write(root, "eval/iterative/r1/metrics.json", _eval_metrics(0.4567, 0.3, 0.1))
    _write(root, "eval/iterative/r2/metrics.json", _eval_metrics(0.5, 0.4, 0.2))
    _write(root, "eval/static/r1/metrics.json", _eval_metrics(0.3, 0.25, 0.1))
    # eval/static/r2/metrics.json is left out on purpose: the report must say so and go on.
    for arm in ("iterative", "static"):
        for r, rewards in (("r1", [0.1, 0.3]), ("r2", [0.4, 0.6])):
            _write(root, f"eval/{arm}/{r}/train_curve.json",
                   [{"step": i + 1, "reward": v, "reward_std": 0.1, "frac_reward_zero_std": 0.5, "kl": None,
                     "entropy": None, "completion_length": 40.0} for i, v in enumerate(rewards)])
            _write(root, f"eval/{arm}/{r}/train.json", {"steps": 2, "seconds": 9.5, "reward_mean": sum(rewards) / 2})
    _write(root, "eval/sft/train.json", {"steps": 4, "train_loss": 1.25})
    seed = root / "data/seed/round1.jsonl"
    seed.parent.mkdir(parents=True, exist_ok=True)
    seed.write_text("".join(json.dumps({"id": str(i), "origin": "seed"}) + "\n" for i in range(7)), encoding="utf-8")
    for r, total in (("r1", 12), ("r2", 15)):
        _write(root, f"data/rounds/{r}/metrics.json",
               {"composition": {"corrected": 1, "error_seed": 2, "edde": 3, "hppl": 4, "fresh": total - 10,
                                "total": total}, "ledger": {}})
        _write(root, f"data/rounds/{r}/probe/metrics.json",
               {"samples": 7, "mastered": 4, "failed": 3, "unparsable": 1, "high_ppl_kept": 2,
                "mastered_ppl": {"min": 1.01, "median": 1.2, "max": 2.5}})
        _write(root, f"data/rounds/{r}/judge/metrics.json",
               {"mismatches": 3, "verdicts": {"PRED_WRONG": 2, "LABEL_WRONG": 1, "BOTH_CORRECT": 0, "BOTH_WRONG": 0,
                                              "JUDGE_FAILED": 0}, "judge_ran": True})
        _write(root, f"data/rounds/{r}/expand/metrics.json", {"error_seeds": 2, "new_samples": 3})
    # r1's loop files are as stages wrote them before the breakdowns existed; r2's have them all.
    _write(root, "data/rounds/r2/probe/metrics.json",
           {"samples": 7, "mastered": 4, "failed": 3, "unparsable": 1, "high_ppl_kept": 2,
            "mastered_ppl": {"min": 1.01, "median": 1.2, "max": 2.5},
            "by_need_kind": {"no_tool": {"mastered": 1, "failed": 2}, "single_call": {"mastered": 3, "failed": 1}},
            "by_phenomenon": {"identifier": {"mastered": 2, "failed": 1}, "none": {"mastered": 2, "failed": 2}}})
    _write(root, "data/rounds/r2/judge/metrics.json",
           {"mismatches": 3, "verdicts": {"PRED_WRONG": 2, "LABEL_WRONG": 1, "BOTH_CORRECT": 0, "BOTH_WRONG": 0,
                                          "JUDGE_FAILED": 0}, "judge_ran": True,
            "noise_audit": {"corrupted_seen": 3, "corrupted_judged_label_wrong": 1, "corrected_equal_clean": 0,
                            "clean_labels_seen": 0, "clean_labels_rewritten": 0,
                            "corrupted_by_type": {"swap_args": 2, "wrong_enum": 1},
                            "corrupted_verdicts": {"LABEL_WRONG": 1, "PRED_WRONG": 2}}})
    _write_jsonl(root, "data/rounds/r2/judge/ledger.jsonl", [
        {"stage": "judge", "id": "a", "fate": "kept", "reason": None, "info": {"decided_by": "rule"}},
        {"stage": "judge", "id": "b", "fate": "kept", "reason": None, "info": {"decided_by": "judge"}},
        {"stage": "judge", "id": "c", "fate": "rejected", "reason": "both_wrong", "info": {"decided_by": "rule"}},
        {"stage": "judge", "id": "judge#note0", "fate": "note", "reason": "a remark", "info": {}}])
    _write(root, "data/rounds/r2/expand/metrics.json",
           {"backend": "program", "error_seeds": 4, "asked": 8, "new_samples": 3, "kept_share": 0.375,
            "ledger": {"in": 8, "kept": 3, "rejected": 5, "rejected_by_reason": {"changed_shape": 1, "judge_fail": 4}}})
    for name, metas in HELDOUT_META.items():
        _write_jsonl(root, f"data/seed/{name}.jsonl", [{"id": i, "meta": meta} for i, meta in metas.items()])
    for (arm, r), outcomes in HELDOUT_OUTCOMES.items():
        _write(root, f"eval/{arm}/{r}/outcomes.json", outcomes)
    params = root / "params.yaml"
    params.write_text("rounds:\n  r1: {prev: r0}\n  r2: {prev: r1}\n", encoding="utf-8")
    return root


def test_stage_writes_table_plots_and_summary(tree: Path, capsys) -> None:
    report_stage.main(["--root", str(tree), "--params", str(tree / "params.yaml")])
    printed = capsys.readouterr().out

    # Plain-text table: one column per run, in order, with rounded percentages.
    header = next(line for line in printed.splitlines() if line.startswith("score (%)"))
    assert header.split()[2:] == ["base", "sft", "iterative", "r1", "iterative", "r2", "static", "r1", "static", "r2"]
    overall = next(line for line in printed.splitlines() if line.startswith("BFCL Overall"))
    assert overall.split()[2:] == ["12.3", "20.0", "45.7", "50.0", "30.0", report.MISSING]

    markdown = (tree / "eval/report.md").read_text(encoding="utf-8")
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "|---" not in line]
    table_rows = rows[:7]
    assert [r.split("|")[1].strip() for r in table_rows] == ["run", "base", "sft", "iterative r1", "iterative r2",
                                                              "static r1", "static r2"]
    header_cells = [c.strip() for c in table_rows[0].split("|")[1:-1]]
    assert header_cells[1:6] == ["BFCL Overall", "BFCL Non-Live", "BFCL Live", "BFCL Multi-Turn", "BFCL simple"]
    assert "ACE Special" in header_cells and "ACE normal_atom_bool" in header_cells
    iterative_r1 = [c.strip() for c in table_rows[3].split("|")[1:-1]]
    assert iterative_r1[1] == "45.7" and iterative_r1[header_cells.index("BFCL simple")] == "30.0"
    assert iterative_r1[header_cells.index("ACE Overall")] == "10.0"
    assert set(c.strip() for c in table_rows[6].split("|")[2:-1]) == {report.MISSING}

    # The missing evaluation is named; categories not run are listed; plots are linked.
    assert "eval/static/r2/metrics.json (not found)" in markdown
    assert "java, multi_turn_base" in markdown and "agent_multi_step" in markdown
    for name in ("scores", "composition", "rewards"):
        assert f"(plots/{name}.png)" in markdown
        png = (tree / f"eval/plots/{name}.png").read_bytes()
        assert png.startswith(PNG_SIGNATURE) and len(png) > 5000
    # Loop numbers per round are in the report.
    # verdicts, judge ran, then decided by rule / judge / ablation (r2's ledger: 2 rule, 1 judge, a note)
    assert "| r2 | 3 | 2 | 1 | 0 | 0 | 0 | True | 2 | 1 | 0 |" in markdown
    assert "| r2 | 7 | 4 | 3 | 1 | 2 | 1.01 / 1.2 / 2.5 |" in markdown

    summary = json.loads((tree / "eval/summary.json").read_text())
    assert [(r["arm"], r["round"]) for r in summary] == [("base", "r0"), ("sft", "r0"), ("iterative", "r1"),
                                                        ("iterative", "r2"), ("static", "r1"), ("static", "r2")]
    assert summary[2]["bfcl_overall"] == pytest.approx(0.4567)
    assert summary[2]["acebench_normal_atom_bool"] == pytest.approx(0.5)
    assert summary[5]["evaluated"] is False and summary[5]["bfcl_overall"] is None

    scores = json.loads((tree / "eval/scores.json").read_text())
    assert scores["iterative"]["r2"]["acebench_overall"] == pytest.approx(0.2)
    assert "r2" not in scores["static"]

    by_round = json.loads((tree / "eval/plots/scores_by_round.json").read_text())
    assert [r["round_index"] for r in by_round] == [0, 1, 2]
    assert by_round[0]["iterative_bfcl_overall"] == pytest.approx(0.2)  # both arms start at the SFT model
    assert by_round[0]["base_bfcl_overall"] == pytest.approx(0.1234)
    assert by_round[2]["static_bfcl_overall"] is None and by_round[1]["iterative_acebench_overall"] == pytest.approx(0.1)

    composition = json.loads((tree / "eval/plots/composition.json").read_text())
    assert [(r["round"], r["total"]) for r in composition] == [("r1", 7), ("r2", 12), ("after r2", 15)]
    assert composition[0]["seed"] == 7 and composition[1]["hppl"] == 4


def test_collect_survives_empty_tree(tmp_path: Path) -> None:
    inputs = report.collect_inputs(tmp_path, ["r1"])
    table = report.build_summary_table(inputs.evals, report.eval_runs(["r1"]))
    assert table.columns == [] and all(v is None for v in table.rows.values())
    assert "eval/base/r0/metrics.json (not found)" in inputs.missing
    assert "data/seed/round1.jsonl (not found)" in inputs.missing
    text = report.render_report(inputs, table, {"scores": "plots/scores.png"})
    assert "eval/iterative/r1/metrics.json (not found)" in text
    for plot in (lambda p: report.plot_scores(table, ["r1"], p), lambda p: report.plot_composition(inputs, p),
                 lambda p: report.plot_rewards(inputs, p)):
        path = tmp_path / "plot.png"
        plot(path)
        assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_unreadable_file_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "eval/base/r0").mkdir(parents=True)
    (tmp_path / "eval/base/r0/metrics.json").write_text("{not json", encoding="utf-8")
    _write(tmp_path, "eval/iterative/r1/train_curve.json", {"not": "a list"})
    inputs = report.collect_inputs(tmp_path, ["r1"])
    assert inputs.evals[("base", "r0")] is None
    assert "eval/base/r0/metrics.json (unreadable: JSONDecodeError)" in inputs.missing
    assert "eval/iterative/r1/train_curve.json (expected a JSON list)" in inputs.missing


def test_rounds_that_build_no_data_are_not_reported_missing(tree: Path) -> None:
    inputs = report.collect_inputs(tree, ["r1", "r2", "r3"], evolve_rounds=["r1", "r2"])
    assert not any("data/rounds/r3" in m for m in inputs.missing)
    assert inputs.loop_stages["r3"] == {"probe": None, "judge": None, "expand": None}
    assert "eval/iterative/r3/metrics.json (not found)" in inputs.missing  # evaluations still expected


def test_shared_static_round_reads_the_iterative_files(tree: Path) -> None:
    inputs = report.collect_inputs(tree, ["r1", "r2"], static_rounds=["r2"])
    assert inputs.shared_static == ["r1"]
    assert inputs.evals[("static", "r1")] == inputs.evals[("iterative", "r1")] is not None
    assert inputs.train_curves[("static", "r1")] == inputs.train_curves[("iterative", "r1")]
    table = report.build_summary_table(inputs.evals, report.eval_runs(["r1", "r2"]))
    assert "Static r1 is the iterative arm's r1" in report.render_report(inputs, table, {})


def test_percent_and_previous_round() -> None:
    assert report.percent(0.4567) == "45.7"
    assert report.percent(1.0) == "100.0"
    assert report.percent(None) == report.MISSING
    rounds = ["r1", "r2", "r3"]
    assert report.previous_round(rounds, "r1") is None
    assert report.previous_round(rounds, "r3") == "r2"
    # params may name the previous round explicitly; an unknown name (r0) means the seed slice.
    assert report.previous_round(rounds, "r3", {"r3": {"prev": "r1"}}) == "r1"
    assert report.previous_round(rounds, "r1", {"r1": {"prev": "r0"}}) is None


def test_plot_data_names_known_fields_even_when_not_evaluated() -> None:
    evals = {("base", "r0"): {"bfcl-v3": {"summary": {"overall": 0.25}, "categories": {}}}}
    table = report.build_summary_table(evals, report.eval_runs(["r1"]))
    rows = report.scores_by_round(table, ["r1"])
    assert rows[0]["base_bfcl_overall"] == 0.25 and rows[1]["iterative_bfcl_overall"] is None
    assert rows[0]["iterative_bfcl_overall"] == 0.25  # no SFT evaluation: the arms start at the base model
    assert rows[0]["base_acebench_overall"] is None  # ACEBench not run: field present, value null


def test_table_shows_strict_irrelevance_beside_the_official_numbers() -> None:
    metrics = {"bfcl-v3": {
        "summary": {"overall": 0.5, "non_live": 0.6, "live": 0.4, "multi_turn": 0.0,
                    "overall_strict": 0.45, "non_live_strict": 0.5, "live_strict": 0.35},
        "categories": {"simple": {"correct": 1, "total": 2, "accuracy": 0.5},
                       "irrelevance": {"correct": 4, "total": 4, "accuracy": 1.0, "strict_correct": 3,
                                       "strict_accuracy": 0.75}}}}
    table = report.build_summary_table({report.BASE_RUN: metrics}, [report.BASE_RUN])
    lines = report.table_markdown(table).splitlines()
    header = [c.strip() for c in lines[0].split("|")[1:-1]]
    cells = dict(zip(header, (c.strip() for c in lines[2].split("|")[1:-1])))
    assert cells["BFCL irrelevance"] == "100.0" and cells["BFCL irrelevance (strict)"] == "75.0"
    assert header.index("BFCL irrelevance (strict)") == header.index("BFCL irrelevance") + 1
    assert cells["BFCL Overall"] == "50.0" and cells["BFCL Overall (strict irrelevance)"] == "45.0"
    assert cells["BFCL Non-Live (strict irrelevance)"] == "50.0" and cells["BFCL Live (strict irrelevance)"] == "35.0"
    assert "BFCL simple (strict)" not in header
    row = report.summary_rows(table, [])[0]
    assert row["bfcl_irrelevance"] == 1.0 and row["bfcl_irrelevance_strict"] == 0.75
    assert row["bfcl_overall_strict"] == 0.45
    markdown = report.render_report(report.ReportInputs(rounds=[]), table, {})
    assert "the columns marked strict count it wrong" in markdown


def test_scores_carry_n_and_wilson_intervals_and_arms_are_compared_item_by_item(tmp_path: Path) -> None:
    # Issue 15 item 4: every score with n and its 95% Wilson interval; iterative vs static paired.
    root = tmp_path / "repo"
    held = {"heldout_unseen": {"summary": {"overall": 0.8}, "categories": {
        "single_call": {"correct": 8, "total": 10, "accuracy": 0.8}}}}
    for arm in ("iterative", "static"):
        for r in ("r1", "r2"):
            _write(root, f"eval/{arm}/{r}/metrics.json", held)
    # r2: iterative right on 9 items of 10, static on 1; every static win is an iterative win too.
    _write(root, "eval/iterative/r2/outcomes.json",
           {"heldout_unseen": {"single_call": {f"s{i}": int(i < 9) for i in range(10)}}})
    _write(root, "eval/static/r2/outcomes.json",
           {"heldout_unseen": {"single_call": {f"s{i}": int(i < 1) for i in range(10)}}})
    _write(root, "eval/iterative/r1/outcomes.json", {"heldout_unseen": {"single_call": {"s0": 1, "s1": 0}}})
    (root / "params.yaml").write_text("rounds:\n  r1: {}\n  r2: {}\nstatic_rounds:\n  r2: {}\n", encoding="utf-8")
    report_stage.main(["--root", str(root), "--params", str(root / "params.yaml")])

    scores = json.loads((root / "eval/scores.json").read_text())["iterative"]["r2"]
    # 8/10 -> Wilson [0.4902, 0.9433] (worked out in tests/test_eval_stats.py).
    assert scores["heldout_unseen_single_call"] == 0.8 and scores["heldout_unseen_single_call_n"] == 10
    assert (scores["heldout_unseen_single_call_ci_low"], scores["heldout_unseen_single_call_ci_high"]) == (0.4902, 0.9433)
    assert scores["heldout_unseen_overall_n"] == 10

    paired = json.loads((root / "eval/paired.json").read_text())
    # r1 is shared (static r1 = iterative r1): the same model on the same items.
    assert paired["r1"]["heldout_unseen"]["same_model"] is True and paired["r1"]["heldout_unseen"]["p_value"] == 1.0
    r2 = paired["r2"]["heldout_unseen"]
    # b = 8 iterative-only items, c = 0: p = 2 / 2^8 = 0.0078125.
    assert (r2["n"], r2["a_only"], r2["b_only"], r2["same_model"]) == (10, 8, 0, False)
    assert r2["difference"] == pytest.approx(0.8) and r2["p_value"] == pytest.approx(2 / 256)
    markdown = (root / "eval/report.md").read_text()
    assert "80.0 [49.0, 94.3] (n=10)" in markdown and "0.00781" in markdown


def _section(markdown: str, title: str) -> str:
    """The text under one heading, up to the next heading of the same or a higher level."""
    level = title.split(" ", 1)[0]
    start = markdown.index(title + "\n")
    ends = [i for i in (markdown.find("\n" + "#" * n + " ", start + 1) for n in range(1, len(level) + 1)) if i != -1]
    return markdown[start:min(ends, default=len(markdown))]


def test_loop_section_breaks_the_probe_down_audits_the_judge_and_gives_the_edde_yield(tree: Path) -> None:
    # Issue 15 item 5: which need kinds / phenomena the model masters, how JGLV did on the corrupted
    # labels and who decided, and how many EDDE variants survived. r1 has the older metrics (dashes).
    report_stage.main(["--root", str(tree), "--params", str(tree / "params.yaml")])
    markdown = (tree / "eval/report.md").read_text(encoding="utf-8")
    probe = _section(markdown, "### Probe (GCP)")
    # mastered/probed: single_call 3 of 3 + 1, no_tool 1 of 1 + 2; need kinds in schema order.
    assert "| need kind | r1 | r2 |" in probe
    assert probe.index("| single_call | – | 3/4 |") < probe.index("| no_tool | – | 1/3 |")
    assert "| identifier | – | 2/3 |" in probe and "| none | – | 2/4 |" in probe

    judge = _section(markdown, "### Judge (JGLV)")
    assert "| r1 | 3 | 2 | 1 | 0 | 0 | 0 | True | – | – | – |" in judge  # r1 has no ledger
    # The counts ranked largest first (PRED_WRONG 2 before LABEL_WRONG 1, not by name).
    assert "| r2 | 3 | 1 | 0 | 0 | 0 | swap_args 2, wrong_enum 1 | PRED_WRONG 2, LABEL_WRONG 1 |" in judge
    assert "| r1 | – | – | – | – | – | – | – |" in judge
    assert "corrected to clean = replacements equal to the clean label" in judge

    expand = _section(markdown, "### Expand (EDDE)")
    # 3 kept of 8 attempted = 37.5 %.
    assert "| r2 | 4 | 8 | 3 | 37.5 | judge_fail 4, changed_shape 1 |" in expand
    assert "| r1 | 2 | – | 3 | – | – |" in expand
    assert "data/rounds/r1/judge/ledger.jsonl (not found)" in markdown


def test_heldout_accuracy_pools_both_sets_per_phenomenon_and_need_kind() -> None:
    by_phenomenon = report.heldout_table(HELDOUT_OUTCOMES, HELDOUT_META, report.phenomenon_buckets)
    # sft: identifier = u1 wrong + u2 right; u1 also counts under iso_date; u3's empty list is "none";
    # s2 has no meta and r2's "gone" is in no file: "unknown". bfcl items are not held-out.
    assert by_phenomenon == {
        ("sft", "r0"): {"identifier": (1, 2), "iso_date": (0, 1), "none": (1, 1), "relative_date": (0, 1),
                        "unknown": (1, 1)},
        ("iterative", "r1"): {"identifier": (2, 2), "iso_date": (1, 1), "none": (1, 1), "relative_date": (1, 1),
                              "unknown": (0, 1)},
        ("iterative", "r2"): {"identifier": (1, 2), "iso_date": (1, 1), "none": (0, 1), "relative_date": (1, 1),
                              "unknown": (1, 2)},
    }
    by_kind = report.heldout_table(HELDOUT_OUTCOMES, HELDOUT_META, report.need_kind_buckets)
    assert by_kind[("iterative", "r2")] == {"single_call": (1, 2), "no_tool": (0, 1), "parallel": (1, 1),
                                            "unknown": (1, 2)}
    # Without the seen set's sample file its items cannot be placed, so they are left out, not "unknown".
    unseen_only = {"heldout_unseen": HELDOUT_META["heldout_unseen"]}
    assert report.heldout_accuracy_by(HELDOUT_OUTCOMES[("sft", "r0")], unseen_only, report.need_kind_buckets) == \
        {"single_call": (1, 2), "no_tool": (1, 1)}
    assert report.heldout_table({("base", "r0"): None}, HELDOUT_META, report.need_kind_buckets) == {}


def test_largest_moves_follow_the_iterative_arm_and_rank_by_absolute_change() -> None:
    table = report.heldout_table(HELDOUT_OUTCOMES, HELDOUT_META, report.phenomenon_buckets)
    chain = report.iterative_chain(table, ["r1", "r2"])
    assert chain == [("sft", "r0"), ("iterative", "r1"), ("iterative", "r2")]
    moves = report.largest_moves(table, chain, top=3)
    # sft -> r1: iso_date and relative_date 0/1 -> 1/1 (+100, tie broken by name), identifier 1/2 -> 2/2
    # (+50); none/unknown name no phenomenon. r1 -> r2: only identifier moved (2/2 -> 1/2); unchanged
    # phenomena are no move.
    assert [(m.after_run[1], m.bucket, m.before, m.after) for m in moves] == [
        ("r1", "iso_date", (0, 1), (1, 1)), ("r1", "relative_date", (0, 1), (1, 1)), ("r1", "identifier", (1, 2), (2, 2)),
        ("r2", "identifier", (2, 2), (1, 2))]
    assert moves[-1].change == pytest.approx(-0.5)
    assert [m.bucket for m in report.largest_moves(table, chain, top=1)] == ["iso_date", "identifier"]
    # No SFT evaluation: the arm starts at the base model.
    assert report.iterative_chain([("base", "r0"), ("iterative", "r2")], ["r1", "r2"]) == [("base", "r0"), ("iterative", "r2")]


def test_report_has_the_heldout_phenomenon_section_after_the_paired_tests(tree: Path) -> None:
    report_stage.main(["--root", str(tree), "--params", str(tree / "params.yaml")])
    markdown = (tree / "eval/report.md").read_text(encoding="utf-8")
    assert markdown.index("## Iterative vs static, item by item") < markdown.index("## Held-out accuracy by phenomenon")
    section = _section(markdown, "## Held-out accuracy by phenomenon")
    assert "| phenomenon | sft | iterative r1 | iterative r2 |" in section  # runs without outcomes left out
    rows = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows == ["phenomenon", "identifier", "iso_date", "relative_date", "none", "unknown",
                    "need kind", "single_call", "parallel", "no_tool", "unknown"]
    assert "| identifier | 1/2 | 2/2 | 1/2 |" in section and "| parallel | 0/1 | 1/1 | 1/1 |" in section
    assert "- sft → iterative r1: iso_date 0/1 → 1/1 (+100.0 pp)" in section
    assert "- iterative r1 → iterative r2: identifier 2/2 → 1/2 (-50.0 pp)" in section


def test_heldout_files_missing_or_unreadable_are_reported(tmp_path: Path) -> None:
    (tmp_path / "data/seed").mkdir(parents=True)
    (tmp_path / "data/seed/heldout_unseen.jsonl").write_text('{"id": "u1"}\n{broken\n', encoding="utf-8")
    inputs = report.collect_inputs(tmp_path, ["r1"])
    assert "data/seed/heldout_unseen.jsonl (unreadable: JSONDecodeError)" in inputs.missing
    assert "data/seed/heldout_seen.jsonl (not found)" in inputs.missing
    assert inputs.heldout_meta == {}
    (tmp_path / "data/seed/heldout_seen.jsonl").write_text('{"id": "s1"}\n[1, 2]\n', encoding="utf-8")
    assert "data/seed/heldout_seen.jsonl (expected one JSON object a line)" in report.collect_inputs(tmp_path, ["r1"]).missing
    table = report.build_summary_table(inputs.evals, report.eval_runs(["r1"]))
    assert "No held-out outcomes to break down" in report.render_report(inputs, table, {})


def test_decided_by_counts_items_not_notes() -> None:
    records = [{"fate": "kept", "info": {"decided_by": "judge"}}, {"fate": "rejected", "info": {"decided_by": "judge"}},
               {"fate": "kept", "info": {"decided_by": "ablation"}}, {"fate": "note", "info": {"decided_by": "rule"}}]
    assert report.decided_by_counts(records) == {"rule": 0, "judge": 2, "ablation": 1}


@pytest.mark.parametrize("meta", [{"need_kind": "parallel", "phenomena": ["list", "identifier", "list"]},
                                  {"need_kind": "", "phenomena": []}, {}, {"phenomena": "identifier"}])
def test_report_buckets_items_as_the_probe_does(meta: dict) -> None:
    # The report keeps its own copy (importing the probe would make it depend on the policy engine).
    assert report.phenomenon_buckets(meta) == phenomena_of(meta)
    assert report.need_kind_buckets(meta) == [need_kind_of(meta)]


def test_bucket_order_puts_known_first_and_none_unknown_last() -> None:
    assert report.bucket_order(["unknown", "zeta", "none", "no_tool", "alpha", "single_call"],
                               first=("single_call", "parallel", "no_tool")) == \
        ["single_call", "no_tool", "alpha", "zeta", "none", "unknown"]


def test_round_series_steps_each_arm_from_the_sft_start_with_rewards_and_data(tree: Path) -> None:
    inputs = report.collect_inputs(tree, ["r1", "r2"])
    table = report.build_summary_table(inputs.evals, report.eval_runs(["r1", "r2"]))
    series = report.round_series(table, report.score_intervals(inputs.evals), inputs, ["r1", "r2"])

    iterative, static, base = series["iterative"], series["static"], series["base"]
    assert sorted(iterative) == [0, 1, 2]
    assert iterative[0]["bfcl_overall"] == static[0]["bfcl_overall"] == pytest.approx(0.2)  # the SFT model
    assert iterative[1]["bfcl_overall"] == pytest.approx(0.4567)
    # BFCL's two categories hold 15 items; 0.4567 of 15 is 7 correct: Wilson 95% [0.2481, 0.6988] by hand.
    assert iterative[1]["bfcl_overall_n"] == 15
    assert iterative[1]["bfcl_overall_ci_low"] == pytest.approx(0.2481, abs=1e-4)
    assert iterative[1]["bfcl_overall_ci_high"] == pytest.approx(0.6988, abs=1e-4)
    assert iterative[1]["grpo_reward_mean"] == pytest.approx(0.2)  # mean of the r1 rewards 0.1 and 0.3
    # Round 1 trains on the 7-sample seed slice; round 2 on what round 1 assembled.
    assert (iterative[1]["data_seed"], iterative[1]["data_total"]) == (7, 7)
    assert (iterative[2]["data_hppl"], iterative[2]["data_total"]) == (4, 12)
    # Static r2 was never evaluated: no score, but its training numbers are there, on the seed slice.
    assert "bfcl_overall" not in static[2]
    assert static[2]["grpo_reward_mean"] == pytest.approx(0.5) and static[2]["data_total"] == 7
    # The base model is a flat reference line with no training numbers.
    assert [base[i]["bfcl_overall"] for i in (0, 1, 2)] == [pytest.approx(0.1234)] * 3
    assert not any(key.startswith(("grpo_", "data_")) for point in base.values() for key in point)
