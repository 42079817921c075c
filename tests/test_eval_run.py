"""`eval run` end to end on the tiny model: decode, execute multi-turn calls, score, write files."""

import json

from looptool.cli import main as cli_main
from looptool.eval import get_benchmark
from looptool.eval.runner import BenchmarkSpec, EvalRunConfig, evaluate_model, plan_ids, score_lines


def test_plan_ids_is_the_seeded_subset_or_everything():
    bfcl = get_benchmark("bfcl-v3")
    subset = plan_ids(bfcl, BenchmarkSpec("bfcl-v3", categories=["simple", "irrelevance"], per_category=3), seed=1)
    assert len(subset) == 6 and subset == plan_ids(bfcl, BenchmarkSpec("bfcl-v3", ["simple", "irrelevance"], 3), seed=1)
    assert subset != plan_ids(bfcl, BenchmarkSpec("bfcl-v3", ["simple", "irrelevance"], 3), seed=2)
    full = plan_ids(bfcl, BenchmarkSpec("bfcl-v3", categories=["java"]), seed=0)
    assert full == bfcl.entry_ids("java")


def test_score_lines_counts_gold_and_bad_lines():
    bfcl = get_benchmark("bfcl-v3")
    ids = ["irrelevance_0", "irrelevance_1"]
    report = score_lines(bfcl, [{"id": "irrelevance_0", "calls": []}, {"id": "irrelevance_1", "calls": "oops"}], ids)
    assert report.categories["irrelevance"].correct == 1 and report.categories["irrelevance"].total == 2
    assert any("irrelevance_1" in p for p in report.problems)


def test_evaluate_tiny_model_on_single_and_multi_turn(tiny_model_dir):
    specs = [BenchmarkSpec("bfcl-v3", categories=["simple", "irrelevance", "multi_turn_base"], per_category=1),
             BenchmarkSpec("acebench", categories=["special_incomplete", "normal_atom_bool"], per_category=1)]
    results = evaluate_model(tiny_model_dir, specs, EvalRunConfig(max_new_tokens=8, batch_size=2, max_steps_per_turn=1),
                             backend="hf")
    lines, report = results["bfcl-v3"]
    assert [line["id"].rsplit("_", 1)[0] for line in lines] == ["simple", "irrelevance", "multi_turn_base"]
    multi = lines[2]
    entry = get_benchmark("bfcl-v3").entry(multi["id"])
    assert len(multi["turns"]) == len(entry["question"])  # every user turn was played
    assert {c: s.total for c, s in report.categories.items()} == {"simple": 1, "irrelevance": 1, "multi_turn_base": 1}
    assert "overall" in {k.lower() for k in report.summary}
    ace_lines, ace_report = results["acebench"]
    assert set(ace_report.categories) == {"special_incomplete", "normal_atom_bool"} and all("raw" in l for l in ace_lines)


def test_cli_eval_run_writes_predictions_and_json(tiny_model_dir, tmp_path, capsys):
    out, preds = tmp_path / "report.json", tmp_path / "preds.jsonl"
    code = cli_main(["eval", "run", "--model", str(tiny_model_dir), "--benchmark", "bfcl-v3", "--categories", "irrelevance",
                     "--limit", "2", "--max-new-tokens", "4", "--backend", "hf", "--json", str(out),
                     "--predictions-out", str(preds)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["categories"]["irrelevance"]["total"] == 2
    assert len(preds.read_text().splitlines()) == 2
    assert "irrelevance" in capsys.readouterr().out
