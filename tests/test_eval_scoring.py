"""ACEBench rules and ground truth, summaries, the tolerant predictions reader, subsets, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looptool.cli import main
from looptool.eval import acebench, get_benchmark, read_predictions, score_predictions, select_subset
from looptool.eval.aggregate import acebench_overall, bfcl_summary
from looptool.eval.predictions import Prediction, PredictionSet

FIXTURES = Path(__file__).parent / "data" / "eval"
ACE_DIR = acebench.default_data_dir()
needs_acebench = pytest.mark.skipif(not (ACE_DIR / "data_normal_atom_bool.json").exists(),
                                    reason=f"ACEBench data not found at {ACE_DIR}")


# ---------------------------------------------------------------- summaries

def test_acebench_overall_weights():
    assert round(acebench_overall(78.0, 80.7, 43.3), 1) == 73.4
    assert acebench_overall(1.0, 1.0, 1.0) == pytest.approx(1.0001)  # ACEBench's weights sum to 1.0001


def test_bfcl_summary_means_and_live_weights():
    live_sizes = {"live_simple": 258, "live_multiple": 1053, "live_parallel": 16,
                  "live_parallel_multiple": 24, "live_irrelevance": 882, "live_relevance": 18}
    acc = {"simple": 0.9, "java": 0.6, "javascript": 0.3, "multiple": 1.0, "parallel": 0.5,
           "parallel_multiple": 0.5, "irrelevance": 1.0, "live_simple": 1.0, "live_irrelevance": 0.0,
           "multi_turn_base": 0.4}
    summary = bfcl_summary(acc, live_sizes)
    assert summary["simple_ast"] == pytest.approx(0.6)
    assert summary["non_live"] == pytest.approx((0.6 + 1.0 + 0.5 + 0.5 + 1.0) / 5)
    assert summary["live"] == pytest.approx(258 / sum(live_sizes.values()))
    assert summary["multi_turn"] == pytest.approx(0.1)
    assert summary["overall"] == pytest.approx((summary["non_live"] + summary["live"] + 0.1) / 3)
    assert "live_multiple" in summary["categories_not_run"] and "simple" in summary["categories_run"]


def test_bfcl_summary_adds_strict_parts_from_strict_irrelevance_accuracies():
    live_sizes = {"live_simple": 258, "live_multiple": 1053, "live_parallel": 16,
                  "live_parallel_multiple": 24, "live_irrelevance": 882, "live_relevance": 18}
    total = sum(live_sizes.values())
    acc = {"irrelevance": 1.0, "live_irrelevance": 1.0, "live_simple": 1.0}
    summary = bfcl_summary(acc, live_sizes, {"irrelevance": 0.5, "live_irrelevance": 0.0})
    assert summary["non_live"] == pytest.approx(0.2) and summary["non_live_strict"] == pytest.approx(0.1)
    assert summary["live"] == pytest.approx((258 + 882) / total) and summary["live_strict"] == pytest.approx(258 / total)
    assert summary["overall_strict"] == pytest.approx((0.1 + 258 / total) / 3)
    assert "overall_strict" not in bfcl_summary(acc, live_sizes)  # no strict numbers given: official keys only


def test_a_call_attempt_is_an_opened_tool_call_or_an_output_the_parser_rejects():
    from looptool.eval.ast_checker import is_call_attempt

    assert is_call_attempt("<tool_call>{bad")
    assert is_call_attempt("<tool_call>[]</tool_call>")  # a call block was opened, even if it holds no call
    assert is_call_attempt('{"name": "f", "arguments": {')  # a bare JSON call that does not parse
    assert not is_call_attempt("I cannot help with that.")
    assert not is_call_attempt('The answer is {"a": 1}.')
    assert not is_call_attempt("")  # e.g. a predictions file written without raw text


# ---------------------------------------------------------------- ACEBench

DOC = {"name": "book", "parameters": {"type": "object", "required": ["city"], "properties": {
    "city": {"type": "string"}, "nights": {"type": "integer"}, "pets": {"type": "boolean"},
    "dates": {"type": "array", "items": {"type": "string"}},
    "room": {"type": "object", "properties": {"kind": {"type": "string"}, "beds": {"type": "integer"}}}}}}


def ace(arguments, truth, strict=False):
    return acebench.check_normal([DOC], [{"name": "book", "arguments": arguments}], {"book": truth}, strict)


def test_acebench_normal_rules():
    truth = {"city": "New York", "nights": 2, "dates": ["2024-05-01"], "room": {"kind": "double", "beds": 2}}
    assert ace(truth, truth)
    assert ace({**truth, "city": "new york city"}, truth)  # expected text occurs in the given text
    assert not ace({**truth, "city": "Boston"}, truth)
    assert not ace({**truth, "dates": ["2024-05-02"]}, truth)
    assert not ace({**truth, "room": {"kind": "double"}}, truth)  # objects need the same keys
    assert not ace({"nights": 2}, truth)  # required city missing
    assert not ace({**truth, "pets": True}, truth)  # not in the expected call
    assert not ace({**truth, "nights": "two"}, truth)  # type
    # ACEBench compares no top-level number, and lets expected parameters be left out ...
    assert ace({**truth, "nights": 3}, truth) and ace({"city": "New York"}, truth)
    # ... strict mode does both.
    assert not ace({**truth, "nights": 3}, truth, strict=True)
    assert not ace({"city": "New York"}, truth, strict=True)


def test_acebench_special_rules():
    check = acebench.check_special
    assert check("special_incomplete", "Missing necessary parameters (a, b) for the api (f)", {"f": ["a", "b "]})
    assert not check("special_incomplete", "Missing necessary parameters (a) for the api (f)", {"f": ["a", "b"]})
    assert not check("special_incomplete", "I need a and b for f", {"f": ["a", "b"]})
    assert check("special_error_param", "There is incorrect value (12-Feb) for the parameters (d)", {"d": ["12-Feb"]})
    assert not check("special_error_param", "There is incorrect value for the parameters (d)", {"d": ["12-Feb"]})
    assert check("special_irrelevant", "Due to the limitations of the function, I cannot solve this problem.", "x")
    assert not check("special_irrelevant", "Sure! Here you go.", "x")


@needs_acebench
def test_acebench_ground_truth_scores_100_percent():
    benchmark = get_benchmark("acebench", data_dir=ACE_DIR, rules="clean")
    preds = PredictionSet()
    for category in acebench.RUNNABLE_CATEGORIES:
        answers = acebench.load_possible_answers(ACE_DIR, category)
        for entry in acebench.load_entries(ACE_DIR, category):
            truth = answers[entry["id"]]
            if category in acebench.SPECIAL_CATEGORIES:
                preds.by_id[entry["id"]] = Prediction(entry["id"], raw=acebench.gold_reply(category, truth))
            else:
                preds.by_id[entry["id"]] = Prediction(entry["id"], calls=acebench.gold_calls(entry["function"], truth))
    report = score_predictions(benchmark, preds)
    for name, score in report.categories.items():
        assert score.correct == score.total, (name, list(score.failures.items())[:2])
    assert report.categories["normal_multi_turn_user_adjust"].unit == "conversation"
    assert report.summary["normal"] == report.summary["special"] == 1.0
    assert report.summary["overall"] == pytest.approx(0.578 + 0.2676)  # Agent not run counts 0
    assert report.summary["categories_not_run"] == list(acebench.AGENT_CATEGORIES)

    # Empty output: nothing right in normal categories, and no special reply either.
    empty = PredictionSet(by_id={i: Prediction(i) for i in preds.by_id})
    assert all(s.correct == 0 for s in score_predictions(benchmark, empty).categories.values())


@needs_acebench
def test_acebench_conversation_is_wrong_if_any_step_is():
    benchmark = get_benchmark("acebench", data_dir=ACE_DIR, rules="clean")
    category = "normal_multi_turn_user_adjust"
    entries = acebench.load_entries(ACE_DIR, category)
    answers = acebench.load_possible_answers(ACE_DIR, category)
    preds = {e["id"]: Prediction(e["id"], calls=acebench.gold_calls(e["function"], answers[e["id"]])) for e in entries}
    first = entries[0]["id"]
    preds[first] = Prediction(first)  # break one step of the first conversation
    score = benchmark.score_category(category, preds)
    conversations = {acebench.conversation_of(e["id"]) for e in entries}
    assert score.total == len(conversations) and score.correct == len(conversations) - 1
    assert acebench.conversation_of(first) in score.failures


@needs_acebench
def test_acebench_prompt_tools_are_valid():
    from looptool.schema import Tool

    for category in acebench.RUNNABLE_CATEGORIES:
        for entry in acebench.load_entries(ACE_DIR, category)[:10]:
            tools, messages = acebench.build_prompt(entry, category)
            for tool in tools:
                Tool.from_dict(tool)
            assert entry["question"] in messages[-1]["content"]
    _, messages = acebench.build_prompt(acebench.load_entries(ACE_DIR, "special_incomplete")[0], "special_incomplete")
    assert acebench.INCOMPLETE_PHRASE in messages[0]["content"]


# ---------------------------------------------------------------- predictions reader and scoring

def test_reader_reports_every_bad_line_and_keeps_the_good_ones():
    benchmark = get_benchmark("bfcl-v3")
    path = FIXTURES / "bad_predictions.jsonl"
    preds = read_predictions(path, is_known_id=lambda i: benchmark.category_of(i) is not None)
    assert sorted(preds.by_id) == ["irrelevance_0", "simple_0"]
    problems = "\n".join(preds.problems)
    assert f"{path}:2: invalid JSON" in problems
    assert f"{path}:3: unknown id 'no_such_entry_7'" in problems
    assert f"{path}:4:" in problems and "'arguments' must be an object" in problems
    assert f"{path}:5: missing or non-string 'id'" in problems
    assert f"{path}:7: repeated id 'simple_0'" in problems
    assert f"{path}:8: expected a JSON object" in problems
    assert f"{path}:10:" in problems and "must be a list of calls" in problems
    assert len(preds.problems) == 7

    report = score_predictions(benchmark, preds)
    assert list(report.categories) == ["simple", "irrelevance"]
    assert report.categories["simple"].correct == 1 and report.categories["simple"].total == 400
    assert any("simple: 399 of 400 entries have no prediction" in p for p in report.problems)


def test_reader_survives_a_missing_file(tmp_path):
    preds = read_predictions(tmp_path / "absent.jsonl")
    assert not preds.by_id and "cannot read" in preds.problems[0]


def test_subset_is_seeded_stratified_and_scored_against_its_own_size():
    benchmark = get_benchmark("bfcl-v3")
    first = select_subset(benchmark, ["simple", "live_parallel"], per_category=5, seed=3)
    assert first == select_subset("bfcl-v3", ["simple", "live_parallel"], per_category=5, seed=3)
    assert first != select_subset(benchmark, ["simple", "live_parallel"], per_category=5, seed=4)
    assert sum(i.startswith("simple_") for i in first) == 5 and len(first) == 10
    # A category's draw does not depend on which other categories are drawn with it.
    assert select_subset(benchmark, ["simple"], per_category=5, seed=3) == first[:5]

    report = score_predictions(benchmark, PredictionSet(), ids=first)
    assert {n: s.total for n, s in report.categories.items()} == {"simple": 5, "live_parallel": 5}


@needs_acebench
def test_acebench_subset_keeps_whole_conversations():
    ids = select_subset(get_benchmark("acebench", data_dir=ACE_DIR), ["normal_multi_turn_user_switch"], per_category=3)
    conversations = {acebench.conversation_of(i) for i in ids}
    assert len(conversations) == 3
    all_ids = [e["id"] for e in acebench.load_entries(ACE_DIR, "normal_multi_turn_user_switch")]
    assert ids == [i for i in all_ids if acebench.conversation_of(i) in conversations]


def test_cli_scores_a_file_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "scores.json"
    code = main(["eval", "score", "--benchmark", "bfcl-v3", "--predictions", str(FIXTURES / "bad_predictions.jsonl"),
                 "--json", str(out), "--categories", "simple", "irrelevance", "--only-predicted"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "simple" in printed and "overall" in printed and "unknown id 'no_such_entry_7'" in printed
    data = json.loads(out.read_text())
    assert data["categories"]["simple"] == {"correct": 1, "total": 1, "accuracy": 1.0}
    assert data["categories"]["irrelevance"] == {"correct": 1, "total": 1, "accuracy": 1.0,
                                                 "strict_correct": 1, "strict_accuracy": 1.0}
    assert set(data["summary"]) >= {"overall", "non_live", "live", "multi_turn", "categories_run"}
    assert len(data["problems"]) == 7


def test_cli_reports_bad_arguments_without_a_traceback(tmp_path, capsys):
    code = main(["eval", "score", "--benchmark", "bfcl-v3", "--predictions", str(FIXTURES / "bad_predictions.jsonl"),
                 "--categories", "no_such_category"])
    assert code == 3 and "no_such_category" in capsys.readouterr().err


def test_heldout_benchmark_scores_exact_match_against_labels(tmp_path):
    from looptool.schema import Sample

    tool = {"name": "track_parcel", "description": "Where a parcel is.",
            "parameters": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}
    call = Sample.from_dict(
        {"tools": [tool], "messages": [{"role": "user", "content": "Where is AB12?"}],
         "label": [{"name": "track_parcel", "arguments": {"code": "AB12"}}]})
    text = Sample.from_dict({"tools": [tool], "messages": [{"role": "user", "content": "Book me a taxi."}],
                             "label": "I can only track parcels."})
    path = tmp_path / "heldout.jsonl"
    path.write_text(json.dumps(call.to_dict()) + "\n" + json.dumps(text.to_dict()) + "\n")
    benchmark = get_benchmark("heldout", path=path)
    assert benchmark.entry_ids("call") == [call.id] and benchmark.entry_ids("no_call") == [text.id]
    tools, messages = benchmark.prompt(call.id)
    assert tools[0]["name"] == "track_parcel" and messages[-1]["content"] == "Where is AB12?"

    right = [{"name": "track_parcel", "arguments": {"code": "AB12"}}]
    predictions = PredictionSet(by_id={call.id: Prediction(call.id, calls=right), text.id: Prediction(text.id, calls=right)})
    report = score_predictions(benchmark, predictions)
    assert report.categories["call"].correct == 1 and report.categories["no_call"].correct == 0
    assert report.summary == {"overall": 0.5}
    wrong = [{"name": "track_parcel", "arguments": {"code": "AB13"}}]
    report = score_predictions(benchmark, PredictionSet(by_id={call.id: Prediction(call.id, calls=wrong)}), categories=["call"])
    assert report.categories["call"].correct == 0 and report.summary == {"overall": 0.0}

    with pytest.raises(FileNotFoundError, match="build_samples writes it"):
        get_benchmark("heldout", path=tmp_path / "missing.jsonl")


def test_need_kind_heldout_scores_replies_apart_and_averages_categories(tmp_path):
    from looptool.eval.registry import get_benchmark, score_predictions
    from looptool.eval.predictions import PredictionSet, parse_prediction

    tool = {"name": "f", "description": "F.", "parameters": {"type": "object", "properties": {"a": {"type": "string"}},
                                                              "required": ["a"]}}
    call = [{"name": "f", "arguments": {"a": "x"}}]
    ask = [{"role": "user", "content": "f x"}]
    after = ask + [{"role": "assistant", "content": "", "tool_calls": call}, {"role": "tool", "name": "f", "content": "{}"}]
    rows = [("c1", ask, call, "single_call"), ("c2", ask, call, "single_call"),
            ("r1", after, "Done: x.", "single_call"), ("n1", ask, "No tool can do that.", "no_tool")]
    path = tmp_path / "held.jsonl"
    path.write_text("".join(json.dumps({"id": i, "tools": [tool], "messages": m, "label": label,
                                        "meta": {"need_kind": kind}}) + "\n" for i, m, label, kind in rows))
    benchmark = get_benchmark("heldout_seen", path=path)
    assert benchmark.entry_ids("single_call") == ["c1", "c2"] and benchmark.entry_ids("reply") == ["r1"]
    # A model that never calls: right on the reply and the decline, wrong on both calls.
    predictions = PredictionSet()
    for i in ("c1", "c2", "r1", "n1"):
        predictions.by_id[i] = parse_prediction({"id": i, "calls": [], "raw": "I will not call."})
    report = score_predictions(benchmark, predictions)
    assert {k: v.correct for k, v in report.categories.items()} == {"single_call": 0, "no_tool": 1, "reply": 1}
    assert report.summary["overall"] == pytest.approx(2 / 3)  # mean of 0, 1, 1 over the categories scored


def test_heldout_scores_the_calls_field_not_the_raw_text(tmp_path):
    # Issue 14 item 5: a predictions file without `raw` (e.g. from another harness) is scored on `calls`.
    from looptool.eval.predictions import parse_prediction

    tool = {"name": "f", "description": "F.", "parameters": {"type": "object", "properties": {"a": {"type": "string"}},
                                                              "required": ["a"]}}
    ask = [{"role": "user", "content": "f x"}]
    rows = [("c1", [{"name": "f", "arguments": {"a": "x"}}], "single_call"), ("n1", "No tool can do that.", "no_tool")]
    path = tmp_path / "held.jsonl"
    path.write_text("".join(json.dumps({"id": i, "tools": [tool], "messages": ask, "label": label,
                                        "meta": {"need_kind": kind}}) + "\n" for i, label, kind in rows))
    benchmark = get_benchmark("heldout_unseen", path=path)
    calls_only = PredictionSet(by_id={
        "c1": parse_prediction({"id": "c1", "calls": [{"name": "f", "arguments": {"a": "x"}}]}),
        "n1": parse_prediction({"id": "n1", "calls": [{"name": "f", "arguments": {"a": "x"}}]}),
    })
    report = score_predictions(benchmark, calls_only)
    assert report.categories["single_call"].correct == 1 and report.categories["no_tool"].correct == 0
    # The raw text does not override the calls: a line whose raw shows a call but whose calls are empty
    # made no call.
    raw_only = PredictionSet(by_id={"c1": parse_prediction({"id": "c1", "calls": [], "raw":
                                    '<tool_call>{"name": "f", "arguments": {"a": "x"}}</tool_call>'})})
    assert score_predictions(benchmark, raw_only, categories=["single_call"]).categories["single_call"].correct == 0


def test_heldout_text_labels_do_not_count_a_broken_call_attempt_as_a_reply(tmp_path):
    # Consistent with the training reward: an output that tries to call and does not parse is wrong on
    # a text label (BFCL's official irrelevance would count it as an abstention).
    from looptool.eval.predictions import parse_prediction

    tool = {"name": "f", "description": "F.", "parameters": {"type": "object", "properties": {}}}
    path = tmp_path / "held.jsonl"
    path.write_text(json.dumps({"id": "n1", "tools": [tool], "messages": [{"role": "user", "content": "hi"}],
                                "label": "Hello!", "meta": {"need_kind": "no_tool"}}) + "\n")
    benchmark = get_benchmark("heldout_seen", path=path)
    broken = parse_prediction({"id": "n1", "calls": [], "raw": '<tool_call>{"name": "f", "argu'})
    reply = parse_prediction({"id": "n1", "calls": [], "raw": "Hello! How can I help?"})
    assert score_predictions(benchmark, PredictionSet(by_id={"n1": broken})).categories["no_tool"].correct == 0
    assert score_predictions(benchmark, PredictionSet(by_id={"n1": reply})).categories["no_tool"].correct == 1


def test_reports_give_per_item_outcomes_for_paired_tests(tmp_path):
    from looptool.eval.predictions import parse_prediction

    tool = {"name": "f", "description": "F.", "parameters": {"type": "object", "properties": {"a": {"type": "string"}},
                                                              "required": ["a"]}}
    ask = [{"role": "user", "content": "f x"}]
    rows = [("c1", [{"name": "f", "arguments": {"a": "x"}}], "single_call"),
            ("c2", [{"name": "f", "arguments": {"a": "x"}}], "single_call"), ("n1", "No tool can do that.", "no_tool")]
    path = tmp_path / "held.jsonl"
    path.write_text("".join(json.dumps({"id": i, "tools": [tool], "messages": ask, "label": label,
                                        "meta": {"need_kind": kind}}) + "\n" for i, label, kind in rows))
    benchmark = get_benchmark("heldout_unseen", path=path)
    predictions = PredictionSet(by_id={
        "c1": parse_prediction({"id": "c1", "calls": [{"name": "f", "arguments": {"a": "x"}}]}),
        "n1": parse_prediction({"id": "n1", "calls": [], "raw": "Sorry, I cannot."})})  # c2 has no prediction
    outcomes = score_predictions(benchmark, predictions).outcomes()
    assert outcomes == {"single_call": {"c1": True, "c2": False}, "no_tool": {"n1": True}}
