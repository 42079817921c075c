"""BFCL v3 against the benchmark's own data: ground truth scores 100%, empty output does not,
multi-turn execution, and the prompt conversion."""

from __future__ import annotations

import copy

import pytest

from looptool.eval import bfcl, get_benchmark, score_predictions
from looptool.eval.gold import gold_calls
from looptool.eval.multi_turn import (
    check_multi_turn,
    execute_calls,
    gold_turns,
    make_instances,
    parse_call_source,
)
from looptool.eval.predictions import Prediction, PredictionSet
from looptool.schema import Tool

# Entries whose own first possible answer cannot pass BFCL's rules, and why.
GROUND_TRUTH_CANNOT_PASS = {
    "java_36": "ArrayList of type 'any': BFCL keeps every element as a string, the answer holds 42 and true",
    "java_65": "ArrayList of type 'any': BFCL keeps every element as a string, the answer holds true",
    "java_64": "nested HashMap answer value is the bare string 'epoch_millis', not a list of acceptable "
               "values, so BFCL's dict rule compares against its characters",
    "live_simple_106-63-0": "the answer omits parameters the function marks required (auto_loan_payment_start, ...)",
    "live_simple_112-68-0": "the answer omits required parameters (acc_routing_start, ...)",
    "live_multiple_507-149-4": "the answer omits the required parameter origin_airport",
    "live_multiple_862-181-3": "the answer uses journey_start_time, which Trains_1_FindTrains does not have",
    "live_multiple_964-207-0": "the answer omits the required parameter statement",
}


@pytest.fixture(scope="module")
def benchmark():
    return get_benchmark("bfcl-v3")


def _gold_predictions() -> PredictionSet:
    preds = PredictionSet()
    for category in bfcl.SINGLE_TURN_CATEGORIES:
        answers = bfcl.load_possible_answers(category)
        for entry in bfcl.iter_entries(category):
            if category in bfcl.AST_CATEGORIES:
                calls = gold_calls(entry, answers[entry["id"]], bfcl.category_language(category))
            elif category in bfcl.IRRELEVANCE_CATEGORIES:
                calls = []
            else:
                calls = [{"name": entry["function"][0]["name"], "arguments": {}}]
            preds.by_id[entry["id"]] = Prediction(id=entry["id"], calls=calls)
    return preds


def test_category_sizes_match_the_data_files():
    sizes = {c: len(bfcl.entry_ids(c)) for c in bfcl.ALL_CATEGORIES}
    assert sum(sizes[c] for c in bfcl.SINGLE_TURN_CATEGORIES) == 3641
    assert sizes["simple"] == 400 and sizes["live_multiple"] == 1053 and sizes["multi_turn_base"] == 200


def test_ground_truth_scores_100_percent_except_listed_entries(benchmark):
    report = score_predictions(benchmark, _gold_predictions(), categories=list(bfcl.SINGLE_TURN_CATEGORIES))
    failed = {i for score in report.categories.values() for i in score.failures}
    assert failed == set(GROUND_TRUTH_CANNOT_PASS)
    for name, score in report.categories.items():
        expected_failures = sum(1 for i in GROUND_TRUTH_CANNOT_PASS if bfcl.category_of_id(i) == name)
        assert score.correct == score.total - expected_failures, name


def test_empty_predictions_score_zero_on_ast_and_full_on_irrelevance(benchmark):
    empty = PredictionSet(by_id={
        i: Prediction(id=i, calls=[]) for c in bfcl.SINGLE_TURN_CATEGORIES for i in bfcl.entry_ids(c)})
    report = score_predictions(benchmark, empty)
    for name in bfcl.AST_CATEGORIES:
        assert report.categories[name].correct == 0, name
    assert report.categories["irrelevance"].accuracy == 1.0
    assert report.categories["live_irrelevance"].accuracy == 1.0
    assert report.categories["live_relevance"].accuracy == 0.0
    assert report.summary["categories_not_run"] == list(bfcl.MULTI_TURN_CATEGORIES)


def test_multi_turn_ground_truth_scores_100_percent_and_empty_turns_fail():
    for category in bfcl.MULTI_TURN_CATEGORIES:
        answers = bfcl.load_possible_answers(category)
        for entry in bfcl.iter_entries(category):
            truth = answers[entry["id"]]
            verdict = check_multi_turn(entry, truth, gold_turns(entry, truth))
            assert verdict, (entry["id"], verdict.reason)
            assert not check_multi_turn(entry, truth, [[] for _ in truth])


def test_multi_turn_wrong_state_wrong_results_and_cut_runs_fail():
    entry = next(bfcl.iter_entries("multi_turn_base"))
    truth = bfcl.load_possible_answers("multi_turn_base")[entry["id"]]
    turns = gold_turns(entry, truth)
    # A different folder name changes the file system state.
    changed = copy.deepcopy(turns)
    changed[0][0][1]["arguments"]["dir_name"] = "tmp"
    verdict = check_multi_turn(entry, truth, changed)
    assert not verdict and "turn 0" in verdict.reason
    assert not check_multi_turn(entry, truth, turns[:-1])
    # The calls split into one step per call is just as right.
    one_per_step = [[[c] for c in turn[0]] if turn else [] for turn in turns]
    assert check_multi_turn(entry, truth, one_per_step)


def test_execute_calls_returns_result_text_and_never_raises():
    entry = next(bfcl.iter_entries("multi_turn_base"))
    instances = make_instances(entry)
    results = execute_calls(instances, [
        {"name": "cd", "arguments": {"folder": "document"}},
        {"name": "ls", "arguments": {}},
        {"name": "no_such_tool", "arguments": {}},
        {"name": "cd", "arguments": {"nonsense": 1}},
        {"name": "run", "arguments": {}},
    ])
    assert '"current_working_directory": "document"' in results[0]
    assert "final_report.pdf" in results[1]
    assert results[2].startswith("Error during execution:") and "not defined" in results[2]
    assert results[3].startswith("Error during execution:")
    assert results[4].startswith("Error during execution:")


def test_parse_call_source_accepts_literals_only():
    assert parse_call_source("sort('a.pdf')") == ("sort", ("a.pdf",), {})
    assert parse_call_source("mv(source='a', destination=\"b\")") == ("mv", (), {"source": "a", "destination": "b"})
    with pytest.raises(ValueError):
        parse_call_source("__import__('os').system('x')")
    with pytest.raises(ValueError):
        parse_call_source("f(x=open('y'))")


def test_prompt_tools_are_valid_json_schema_tools_for_every_single_turn_entry():
    for category in bfcl.SINGLE_TURN_CATEGORIES:
        for entry in bfcl.iter_entries(category):
            tools, messages = bfcl.build_prompt(entry)
            for tool in tools:
                Tool.from_dict(tool)
            assert messages and messages[-1]["role"] in ("user", "assistant", "system")


def test_type_names_become_json_schema_and_java_params_become_strings():
    doc = {"name": "a.b", "description": "D.", "parameters": {"type": "dict", "required": ["x"], "properties": {
        "x": {"type": "float", "description": "X."},
        "y": {"type": "tuple", "items": {"type": "dict", "properties": {"z": {"type": "any"}}}},
        "w": {"type": "weird"}}}}
    tool = bfcl.function_to_tool(doc)
    props = tool["parameters"]["properties"]
    assert tool["parameters"]["type"] == "object"
    assert props["x"] == {"type": "number", "format": "float", "description": "X. This is a float type value."}
    assert props["y"]["type"] == "array" and props["y"]["items"]["type"] == "object"
    assert props["y"]["items"]["properties"]["z"]["type"] == "string"
    assert props["w"]["type"] == "string"
    assert tool["description"].endswith("Python 3 syntax.")
    assert bfcl.function_to_tool(doc, underscore_names=True)["name"] == "a_b"

    java_entry = next(bfcl.iter_entries("java"))
    tools, _ = bfcl.build_prompt(java_entry)
    assert all(p["type"] == "string" for t in tools for p in t["parameters"]["properties"].values())
    assert "Java 8 SDK syntax" in tools[0]["description"]


def test_live_entries_keep_their_own_system_messages():
    with_system = [e for e in bfcl.iter_entries("live_irrelevance") if e["question"][0][0]["role"] == "system"]
    assert with_system
    _, messages = bfcl.build_prompt(with_system[0])
    assert messages[0] == {"role": "system", "content": with_system[0]["question"][0][0]["content"]}


def test_miss_func_tools_hold_back_the_missing_function_until_its_turn():
    entry = next(e for e in bfcl.iter_entries("multi_turn_miss_func") if e.get("missed_function"))
    (turn, names), = entry["missed_function"].items()
    before = {t["name"] for t in bfcl.entry_tools(entry, turn_index=int(turn) - 1)}
    after = {t["name"] for t in bfcl.entry_tools(entry, turn_index=int(turn))}
    assert not set(names) & before and set(names) <= after


def test_miss_func_added_turn_gets_bfcl_prompt_and_appended_tools():
    # multi_turn_miss_func_2 withholds `cp` and `cat` until turn 4 (empty in the data).
    entry = next(e for e in bfcl.iter_entries("multi_turn_miss_func") if e["id"] == "multi_turn_miss_func_2")
    assert entry["question"][4] == []
    assert bfcl.entry_messages(entry, 4) == [
        {"role": "user", "content": "I have updated some more functions you can choose from. What about now?"}]
    assert bfcl.entry_messages(entry, 3) == [{"role": "user", "content": entry["question"][3][0]["content"]}]
    before = [t["name"] for t in bfcl.entry_tools(entry, turn_index=3)]
    after = [t["name"] for t in bfcl.entry_tools(entry, turn_index=4)]
    assert "cp" not in before and "cat" not in before
    assert after == before + ["cp", "cat"]  # BFCL extends its list with the docs, in the listed order
    assert [t["name"] for t in bfcl.entry_tools(entry, turn_index=5)] == after


def test_irrelevance_keeps_the_official_score_and_reports_a_strict_one_beside_it(benchmark):
    # BFCL counts an output that tries to call but does not parse as a correct abstention; the
    # strict number does not. Lines as the runner writes them (raw text, parsed calls, parse error).
    from looptool.eval.predictions import parse_prediction

    lines = [
        {"id": "irrelevance_0", "calls": [], "raw": "<tool_call>{bad",
         "parse_error": "tool_call block 1 is not closed and its JSON is incomplete (truncated output?)"},
        {"id": "irrelevance_1", "calls": [], "raw": "I cannot help with that."},
        {"id": "live_irrelevance_0-0-0", "calls": [], "raw": '{"name": "f", "arguments": {',
         "parse_error": "bare JSON call: invalid JSON"},
        {"id": "live_irrelevance_1-0-1", "calls": [], "raw": "No function fits this request."},
        {"id": "live_relevance_0-0-0", "calls": [], "raw": "<tool_call>{bad"},
    ]
    predictions = PredictionSet(by_id={line["id"]: parse_prediction(line) for line in lines})
    report = score_predictions(benchmark, predictions, ids=list(predictions.by_id))
    out = report.to_dict()["categories"]
    assert out["irrelevance"] == {"correct": 2, "total": 2, "accuracy": 1.0, "strict_correct": 1, "strict_accuracy": 0.5}
    assert out["live_irrelevance"]["accuracy"] == 1.0 and out["live_irrelevance"]["strict_accuracy"] == 0.5
    assert out["live_relevance"] == {"correct": 0, "total": 1, "accuracy": 0.0}  # a failed call is wrong either way

    summary = report.summary
    assert summary["non_live"] == pytest.approx(1.0 / 5) and summary["non_live_strict"] == pytest.approx(0.5 / 5)
    assert summary["live_strict"] == pytest.approx(summary["live"] / 2)
    assert summary["overall_strict"] == pytest.approx((summary["non_live_strict"] + summary["live_strict"]) / 3)
