"""ACEBench scored by its own pipeline's rules (the default) and by the clean rules (``rules="clean"``).

Each quirk test builds a one-entry ACEBench data directory from literal data and scores a prediction
through the benchmark object, once with the default rules (ACEBench's eval_main.py: calls rendered
as ``[Api(k='v')]`` text, whitespace deleted, decoded, model_eval/checker.py) and once clean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from looptool.eval import acebench, get_benchmark, read_predictions, score_predictions
from looptool.eval.predictions import Prediction, PredictionSet, parse_prediction

ACE_DIR = acebench.default_data_dir()
needs_acebench = pytest.mark.skipif(not (ACE_DIR / "data_normal_atom_bool.json").exists(),
                                    reason=f"ACEBench data not found at {ACE_DIR}")


def one_entry(tmp_path, category, functions, answer, **options):
    """A fresh data directory (data are cached by directory) holding one entry of ``category``;
    returns (benchmark, entry id)."""
    tmp_path = Path(tempfile.mkdtemp(dir=tmp_path))
    entry_id = f"{category}_0"
    (tmp_path / "possible_answer").mkdir(exist_ok=True)
    entry = {"id": entry_id, "question": "user: please help", "function": functions}
    (tmp_path / f"data_{category}.json").write_text(json.dumps(entry) + "\n")
    (tmp_path / "possible_answer" / f"data_{category}.json").write_text(
        json.dumps({"id": entry_id, "ground_truth": answer}) + "\n")
    return get_benchmark("acebench", data_dir=tmp_path, **options), entry_id


SINGLE = "normal_single_turn_single_function"


def _doc(properties, required=()):
    return {"name": "identify", "description": "d",
            "parameters": {"type": "object", "properties": properties, "required": list(required)}}


# ---------------------------------------------------------------- one test per quirk

def test_whitespace_deletion_makes_a_list_inside_an_object_fail(tmp_path):
    doc = _doc({"species": {"type": "object", "properties": {
        "name": {"type": "string"}, "features": {"type": "array", "items": {"type": "string"}}}}})
    answer = {"identify": {"species": {"name": "bird", "features": ["blue and white feathers"]}}}
    calls = [{"name": "identify", "arguments": answer["identify"]}]
    benchmark, entry_id = one_entry(tmp_path, SINGLE, [doc], answer)
    # eval_main.py deletes all whitespace from the model text, so the call's list holds
    # 'blueandwhitefeathers', and checker.dict_checker looks for the answer's str() inside it.
    assert not benchmark.check(SINGLE, entry_id, Prediction(entry_id, calls=calls))
    clean, _ = one_entry(tmp_path, SINGLE, [doc], answer, rules="clean")
    assert clean.check(SINGLE, entry_id, Prediction(entry_id, calls=calls))
    # Without spaces inside the list the official rules pass it too; a top-level string with
    # spaces is fine (both sides are normalised).
    no_space = {"identify": {"species": {"name": "big bird", "features": ["feathers"]}}}
    benchmark, _ = one_entry(tmp_path, SINGLE, [doc], no_space)
    assert benchmark.check(SINGLE, entry_id, Prediction(entry_id, calls=[{"name": "identify",
                                                                          "arguments": no_space["identify"]}]))


def test_array_without_items_is_read_as_a_list_of_objects(tmp_path):
    doc = _doc({"diet": {"type": "array", "description": "no items given"}})
    answer = {"identify": {"diet": ["None"]}}
    calls = [{"name": "identify", "arguments": {"diet": ["None"]}}]
    benchmark, entry_id = one_entry(tmp_path, SINGLE, [doc], answer)
    # checker.simple_function_checker: no items -> nested type 'dict' -> list_dict_checker,
    # and the string 'None' is not a dict.
    assert not benchmark.check(SINGLE, entry_id, Prediction(entry_id, calls=calls))
    clean, _ = one_entry(tmp_path, SINGLE, [doc], answer, rules="clean")
    assert clean.check(SINGLE, entry_id, Prediction(entry_id, calls=calls))
    objects = {"identify": {"diet": [{"kind": "vegan"}]}}
    benchmark, _ = one_entry(tmp_path, SINGLE, [doc], objects)
    assert benchmark.check(SINGLE, entry_id, Prediction(entry_id, calls=[{"name": "identify",
                                                                          "arguments": objects["identify"]}]))


def test_trailing_spaces_of_answers_are_kept(tmp_path):
    category = "special_incomplete"
    answer = {"book": ["city", "nights "]}
    reply = "Missing necessary parameters (city, nights) for the api (book)"
    benchmark, entry_id = one_entry(tmp_path, category, [_doc({})], answer)
    # eval_main.special_eval looks for "nights " (with its space) in the reply.
    assert not benchmark.check(category, entry_id, Prediction(entry_id, raw=reply))
    clean, _ = one_entry(tmp_path, category, [_doc({})], answer, rules="clean")
    assert clean.check(category, entry_id, Prediction(entry_id, raw=reply))
    assert benchmark.check(category, entry_id,
                           Prediction(entry_id, raw="Missing necessary parameters (nights , city) for the api (book)"))


def test_text_field_is_read_like_raw(tmp_path):
    reply = "Due to the limitations of the function, I cannot solve this problem."
    assert parse_prediction({"id": "x", "calls": [], "text": reply}).raw == reply
    assert parse_prediction({"id": "x", "calls": [], "raw": "r", "text": reply}).raw == "r"  # raw wins
    category = "special_irrelevant"
    benchmark, entry_id = one_entry(tmp_path, category, [_doc({})], "the limitations of the function")
    path = tmp_path / "predictions.jsonl"
    path.write_text(json.dumps({"id": entry_id, "calls": [], "text": reply}) + "\n")
    predictions = read_predictions(path)
    assert not predictions.problems
    report = score_predictions(benchmark, predictions, categories=[category])
    assert report.categories[category].correct == 1


# ---------------------------------------------------------------- further official rules

def test_official_number_and_containment_rules(tmp_path):
    doc = _doc({"city": {"type": "string"}, "nights": {"type": "integer"},
                "room": {"type": "object", "properties": {"beds": {"type": "integer"}}}}, required=["city"])
    answer = {"identify": {"city": "York", "nights": 2, "room": {"beds": 5}}}
    benchmark, entry_id = one_entry(tmp_path, SINGLE, [doc], answer)

    def check(arguments):
        return benchmark.check(SINGLE, entry_id, Prediction(entry_id, calls=[{"name": "identify", "arguments": arguments}]))

    assert check({"city": "New York", "nights": 9, "room": {"beds": 15}})  # containment; top-level numbers unchecked
    assert not check({"city": "Boston", "nights": 2, "room": {"beds": 5}})
    assert not check({"city": "York", "nights": 2, "room": {"beds": 4}})
    assert not check({"nights": 2})  # required parameter missing
    assert not check({"city": "York", "nights": "2"})  # type


def test_official_empty_expected_list_fails_the_type_check(tmp_path):
    doc = _doc({"events": {"type": "array", "items": {"type": "string"}}})
    answer = {"identify": {"events": []}}
    calls = [{"name": "identify", "arguments": {"events": []}}]
    benchmark, entry_id = one_entry(tmp_path, SINGLE, [doc], answer)
    assert not benchmark.check(SINGLE, entry_id, Prediction(entry_id, calls=calls))  # checker.type_checker
    clean, _ = one_entry(tmp_path, SINGLE, [doc], answer, rules="clean")
    assert clean.check(SINGLE, entry_id, Prediction(entry_id, calls=calls))


def test_official_error_param_needs_values_not_names(tmp_path):
    category = "special_error_param"
    benchmark, entry_id = one_entry(tmp_path, category, [_doc({})], {"date": ["12-Feb"]})
    assert benchmark.check(category, entry_id, Prediction(entry_id, raw="There is incorrect value (12-Feb)."))
    assert not benchmark.check(category, entry_id, Prediction(entry_id, raw="There is incorrect value (12 Feb)."))
    assert not benchmark.check(category, entry_id, Prediction(entry_id, raw="there is incorrect value (12-Feb)."))


def test_report_carries_both_accuracies(tmp_path):
    doc = _doc({"diet": {"type": "array"}})
    answer = {"identify": {"diet": ["None"]}}
    benchmark, entry_id = one_entry(tmp_path, SINGLE, [doc], answer)
    calls = [{"name": "identify", "arguments": {"diet": ["None"]}}]
    preds = PredictionSet(by_id={entry_id: Prediction(entry_id, calls=calls)})
    report = score_predictions(benchmark, preds, categories=[SINGLE]).to_dict()
    scores = report["categories"][SINGLE]
    assert scores["accuracy"] == 0.0 and scores["accuracy_clean"] == 1.0 and scores["correct_clean"] == 1
    assert report["summary"]["rules"] == "official"
    assert report["summary"]["normal"] == 0.0 and report["summary"]["normal_clean"] == pytest.approx(1 / 12)
    clean = get_benchmark("acebench", data_dir=benchmark.data_dir, rules="clean")
    report = score_predictions(clean, preds, categories=[SINGLE]).to_dict()
    assert report["categories"][SINGLE]["accuracy"] == 1.0 and report["categories"][SINGLE]["accuracy_official"] == 0.0
    assert report["summary"]["rules"] == "clean" and report["summary"]["normal_official"] == 0.0
    with pytest.raises(ValueError):
        get_benchmark("acebench", data_dir=tmp_path, rules="loose")


def test_official_decoding_of_model_text():
    from looptool.eval import acebench_official as official

    calls = [{"name": "f", "arguments": {"a": "x y", "b": [1, {"c": True}], "d": None}}]
    assert official.render_calls(calls) == "[f(a='x y', b=[1, {'c': True}], d=None)]"
    assert official.decode_calls(official.render_calls(calls)) == [{"f": {"a": "xy", "b": [1, {"c": True}], "d": None}}]
    # model_inference/utils.py: bare names read as text, +x as -x, nested calls as dicts,
    # subscripts as source text, constant arithmetic evaluated, positional arguments dropped.
    assert official.decode_calls("[f(a=true, b=+5, c=g(h=1), d=x[0], e=1+2, k=h())]") == [
        {"f": {"a": "true", "b": -5, "c": {"g": {"h": 1}}, "d": "x[0]", "e": 3, "k": {"h": {}}}}]
    assert official.decode_calls("[f('positional')]") == [{"f": {}}]
    for text in ["f(a=1)", "Sure: [f(a=1)]", "[f(a=1), 2]", "[f(a=x.y)]", "[f(a=lambda: 1)]", "[f(a=1+x)]",
                 '[{"f": {"a": 1}}]', "[f(a='x' if y else 'z')]"]:
        with pytest.raises(official.DecodeError):
            official.decode_calls(text)
    doc = _doc({"flag": {"type": "boolean"}})
    assert official.check_text([doc], "[identify(flag=true)]", {"identify": {"flag": True}})  # "true" -> True


def test_official_function_names_and_docs(tmp_path):
    # checker.normal_checker strips _<digits> from every answer key, even from a function's own
    # name, and utils.find_description takes the first doc whose name occurs in the key.
    versioned = {"name": "get_2", "description": "d", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}, "required": []}}
    answer = {"get_2": {"q": "x"}}
    benchmark, entry_id = one_entry(tmp_path, SINGLE, [versioned], answer)
    assert not benchmark.check(SINGLE, entry_id, Prediction(entry_id, calls=[{"name": "get_2", "arguments": {"q": "x"}}]))
    clean, _ = one_entry(tmp_path, SINGLE, [versioned], answer, rules="clean")
    assert clean.check(SINGLE, entry_id, Prediction(entry_id, calls=[{"name": "get_2", "arguments": {"q": "x"}}]))
    short = {"name": "get", "description": "d", "parameters": {
        "type": "object", "properties": {"id": {"type": "integer"}}, "required": []}}
    long = {"name": "get_user", "description": "d", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}, "required": []}}
    answer = {"get_user": {"q": "x"}}
    calls = [{"name": "get_user", "arguments": {"q": "x"}}]
    benchmark, _ = one_entry(tmp_path, SINGLE, [short, long], answer)
    assert not benchmark.check(SINGLE, entry_id, Prediction(entry_id, calls=calls))  # judged against "get"'s doc
    benchmark, _ = one_entry(tmp_path, SINGLE, [long, short], answer)
    assert benchmark.check(SINGLE, entry_id, Prediction(entry_id, calls=calls))


# ---------------------------------------------------------------- ground truth, whole benchmark

# eval_main.py of github.com/ACEBench/ACEBench (e6db74b) on the ground truth rendered as model text.
OFFICIAL_ON_GROUND_TRUTH = {
    "normal_single_turn_single_function": 0.92,
    "normal_single_turn_parallel_function": 0.86,
    "normal_multi_turn_user_adjust": 0.76,
    "normal_multi_turn_user_switch": 0.74,
    "normal_similar_api": 0.96,
    "normal_preference": 0.98,
    "normal_atom_bool": 1.0,
    "normal_atom_enum": 1.0,
    "normal_atom_number": 1.0,
    "normal_atom_list": 1.0,
    "normal_atom_object_deep": 0.66,
    "normal_atom_object_short": 1.0,
}


@needs_acebench
def test_official_rules_on_ground_truth_match_acebench():
    benchmark = get_benchmark("acebench", data_dir=ACE_DIR)
    preds = PredictionSet()
    for category in acebench.NORMAL_CATEGORIES:
        answers = acebench.load_possible_answers(ACE_DIR, category)
        for entry in acebench.load_entries(ACE_DIR, category):
            calls = acebench.gold_calls(entry["function"], answers[entry["id"]])
            preds.by_id[entry["id"]] = Prediction(entry["id"], calls=calls)
    report = score_predictions(benchmark, preds, categories=list(acebench.NORMAL_CATEGORIES))
    got = {name: round(score.accuracy, 3) for name, score in report.categories.items()}
    assert got == OFFICIAL_ON_GROUND_TRUTH
    assert all(score.to_dict()["accuracy_clean"] == 1.0 for score in report.categories.values())
    assert round(report.summary["normal"], 3) == 0.907
    assert report.summary["normal_clean"] == 1.0


# ---------------------------------------------------------------- against ACEBench's own code

OFFICIAL_SNAPSHOT = Path(os.environ.get("ACEBENCH_OFFICIAL", "/work/.mirror/ACEBench+ACEBench/repo"))


@pytest.mark.slow
@needs_acebench
@pytest.mark.skipif(not OFFICIAL_SNAPSHOT.exists(), reason=f"no ACEBench snapshot at {OFFICIAL_SNAPSHOT}")
def test_official_rules_agree_with_acebench_code_on_damaged_predictions(tmp_path):
    """benchmarks/acebench_official_diff.py runs ACEBench's eval_main.py (from a snapshot, in a
    separate process) on the ground truth and damaged copies; every entry's verdict must agree."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "acebench_official_diff.py"
    out = tmp_path / "diff.json"
    run = subprocess.run([sys.executable, str(script), "--official", str(OFFICIAL_SNAPSHOT), "--trials", "3",
                          "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert len(report) == 15
    for category, rows in report.items():
        for row in rows:
            assert row["differ_official"] == [] and row["raises"] == 0, category
            assert round(row["acebench_run"], 3) == round(row["acebench"], 3), category
    assert round(report["normal_atom_object_deep"][0]["acebench"], 3) == 0.66
