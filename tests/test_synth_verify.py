"""Rule verification of dialogues and sample building, on literal dialogues (no server)."""

from __future__ import annotations

import copy
import json

import pytest

from looptool.io import read_jsonl
from looptool.ledger import Ledger
from looptool.schema import Sample
from looptool.synth.pipeline import run_build_samples, run_verify
from looptool.synth.samples import build_samples, check_sample, restore_clean_label, split_by_dialogue
from looptool.synth.verify import check_dialogue

PIPE = {"name": "convert_pipe_size", "description": "Convert a pipe diameter to another unit.",
        "parameters": {"type": "object", "properties": {
            "diameter": {"type": "string", "description": "diameter with unit, e.g. 4 inch"},
            "target_unit": {"type": "string", "enum": ["mm", "cm"], "description": "unit to convert to"}},
            "required": ["diameter", "target_unit"]}}
TEMP = {"name": "set_thermostat", "description": "Set the thermostat target.",
        "parameters": {"type": "object", "properties": {
            "target": {"type": "string", "description": "temperature with unit, e.g. 298K"},
            "room_id": {"type": "string", "description": "room id, e.g. RM-12"}},
            "required": ["target"]}}


def ok(result: dict) -> str:
    return json.dumps({"status": "ok", "result": result})


def good_dialogue(index: int = 0) -> dict:
    return {
        "id": f"dlg-{index:05d}", "index": index, "tools": [PIPE, TEMP],
        "plan": [{"kind": "single_call", "tools": ["convert_pipe_size"]}, {"kind": "parallel", "tools": ["set_thermostat"] * 2},
                 {"kind": "no_tool", "tools": []}],
        "messages": [
            {"role": "user", "content": "What is a 4 inch pipe in mm?"},
            {"role": "assistant", "content": "", "tool_calls": [{"name": "convert_pipe_size", "arguments": {"diameter": "4 inch", "target_unit": "mm"}}]},
            {"role": "tool", "name": "convert_pipe_size", "content": ok({"value": 101.6, "unit": "mm"})},
            {"role": "assistant", "content": "A 4 inch pipe is 101.6 mm across."},
            {"role": "user", "content": "Set room RM-12 to 298K and the hall to 293K."},
            {"role": "assistant", "content": "", "tool_calls": [
                {"name": "set_thermostat", "arguments": {"target": "298K", "room_id": "RM-12"}},
                {"name": "set_thermostat", "arguments": {"target": "293K"}}]},
            {"role": "tool", "name": "set_thermostat", "content": ok({"room": "RM-12"})},
            {"role": "tool", "name": "set_thermostat", "content": json.dumps({"status": "error", "error": "hall has no thermostat"})},
            {"role": "assistant", "content": "RM-12 is set; the hall has no thermostat."},
            {"role": "user", "content": "Thanks, that is all."},
            {"role": "assistant", "content": "You are welcome!"},
        ],
        "turns": {"1": {"need": 0, "expected": "call", "planned_tools": ["convert_pipe_size"], "votes": 2, "agreement": 1.0},
                  "3": {"need": 0, "expected": "text"},
                  "5": {"need": 1, "expected": "call", "planned_tools": ["set_thermostat", "set_thermostat"], "votes": 2, "agreement": 0.5},
                  "8": {"need": 1, "expected": "text"}, "10": {"need": 2, "expected": "text"}},
    }


def broken(mutate) -> dict:
    d = copy.deepcopy(good_dialogue())
    mutate(d)
    return d


def test_good_dialogue_passes_every_rule():
    assert check_dialogue(good_dialogue()) == []


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda d: d["messages"].pop(0), "turn_order"),
        (lambda d: d["messages"].pop(), "turn_order"),
        (lambda d: d["messages"][1]["tool_calls"][0].update(name="convert_pipe"), "unknown_tool"),
        (lambda d: d["messages"][1]["tool_calls"][0]["arguments"].update(target_unit="inches"), "invalid_arguments"),
        (lambda d: d["messages"][1]["tool_calls"][0]["arguments"].pop("diameter"), "invalid_arguments"),
        (lambda d: d["messages"][1]["tool_calls"][0]["arguments"].update(diameter="6 inch"), "ungrounded_value"),
        (lambda d: d["messages"].pop(2), "result_mismatch"),
        (lambda d: d["messages"][7].update(name="convert_pipe_size"), "result_mismatch"),
        (lambda d: d["messages"][2].update(content="not json"), "result_mismatch"),
        (lambda d: d["turns"]["1"].update(planned_tools=["set_thermostat"]), "off_plan_call"),
        (lambda d: d["messages"].insert(1, {"role": "user", "content": "hello?"}), "turn_order"),
        (lambda d: d["messages"][10].update(content="Thanks, that is  ALL."), "echoed_message"),
        (lambda d: d["messages"][3].update(content="<tool_call>"), "call_markup_in_text"),
    ],
)
def test_each_broken_rule_is_named(mutate, code):
    assert code in [p.code for p in check_dialogue(broken(mutate))]


def test_grounding_accepts_case_spacing_and_number_forms():
    d = good_dialogue()
    d["messages"][0]["content"] = "What is a 4   INCH pipe in MM?"
    assert check_dialogue(d) == []
    tool = {"name": "pay", "description": "Pay.", "parameters": {"type": "object", "properties": {
        "amount": {"type": "number", "description": "amount"}}, "required": ["amount"]}}
    dialogue = {"id": "dlg-9", "tools": [tool], "messages": [
        {"role": "user", "content": "pay 12.50 please"},
        {"role": "assistant", "content": "", "tool_calls": [{"name": "pay", "arguments": {"amount": 12.5}}]},
        {"role": "tool", "name": "pay", "content": ok({})},
        {"role": "assistant", "content": "Paid."}], "turns": {}}
    assert check_dialogue(dialogue) == []


def test_samples_every_step_drops_errored_calls_and_all_pass_the_rules():
    ledger = Ledger("build_samples")
    samples = build_samples([good_dialogue(0)], ledger)
    ledger.check_balanced()
    # 5 assistant steps; the parallel call step is followed by a tool error and is dropped.
    assert ledger.summary()["in"] == 5 and ledger.rejection_reasons() == {"followed_by_tool_error": 1}
    assert [s.meta["message_index"] for s in samples] == [1, 3, 8, 10]
    first = samples[0]
    assert first.label[0].to_dict() == {"name": "convert_pipe_size", "arguments": {"diameter": "4 inch", "target_unit": "mm"}}
    assert first.messages == [{"role": "user", "content": "What is a 4 inch pipe in mm?"}]
    assert first.origin == "seed" and first.parent == "dlg-00000" and first.meta["need_kind"] == "single_call"
    assert samples[3].label == "You are welcome!" and samples[3].meta["need_kind"] == "no_tool"
    for s in samples:
        assert check_sample(Sample.from_dict(s.to_dict())) == []


def test_duplicate_dialogues_give_duplicate_sample_rejections():
    ledger = Ledger("build_samples")
    samples = build_samples([good_dialogue(0), good_dialogue(0) | {"id": "dlg-copy"}], ledger)
    ledger.check_balanced()
    assert len(samples) == 4
    assert ledger.rejection_reasons() == {"duplicate_sample": 4, "followed_by_tool_error": 2}


def test_split_by_dialogue_keeps_dialogues_whole_and_is_seeded():
    dialogues = [good_dialogue(i) | {"id": f"dlg-{i:05d}"} for i in range(5)]
    # Distinct content per dialogue: a different first request value.
    for i, d in enumerate(dialogues):
        d["messages"][0]["content"] = f"What is a {4 + i} inch pipe in mm?"
        d["messages"][1]["tool_calls"][0]["arguments"]["diameter"] = f"{4 + i} inch"
    samples = build_samples(dialogues, Ledger("x"))
    assert len(samples) == 20  # 4 steps per dialogue
    unseen, heldout, r1, pool = split_by_dialogue(samples, seed=3, heldout_seen_size=4, round1_size=0.5)
    assert unseen == [] and (len(heldout), len(r1), len(pool)) == (4, 8, 8)
    parts = [{s.parent for s in part} for part in (heldout, r1, pool)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])  # no dialogue in two parts
    assert all(s.round == 1 for s in r1) and all(s.round == 0 for s in heldout + pool)
    again = split_by_dialogue(list(reversed(samples)), seed=3, heldout_seen_size=4, round1_size=0.5)
    assert [s.id for s in again[1]] == [s.id for s in heldout]
    other = split_by_dialogue(samples, seed=4, heldout_seen_size=4, round1_size=0.5)
    assert {s.parent for s in other[1]} != parts[0] or {s.parent for s in other[2]} != parts[1]
    with pytest.raises(ValueError, match="heldout_size"):
        split_by_dialogue(samples, seed=3, heldout_seen_size=-1, round1_size=1)


def test_restore_clean_label_undoes_the_annotator_noise_only():
    call = [{"name": "convert_pipe_size", "arguments": {"diameter": "4 inch", "target_unit": "mm"}}]
    noisy = Sample.from_dict({"tools": [PIPE], "messages": [{"role": "user", "content": "What is a 4 inch pipe in mm?"}],
                              "label": "Sorry, I cannot convert that.", "meta": {"noise": "text_for_call",
                              "noise_detail": "refused", "clean_label": call, "need_kind": "single_call"}})
    fixed = restore_clean_label(noisy)
    assert fixed.label[0].to_dict() == call[0] and fixed.id == noisy.id
    assert fixed.meta == {"need_kind": "single_call", "label_restored": "text_for_call"}
    clean = Sample.from_dict({**noisy.to_dict(), "label": call, "meta": {"need_kind": "single_call"}})
    assert restore_clean_label(clean) is clean


def test_unseen_dialogues_all_go_to_heldout_unseen():
    seen, unseen_dialogue = good_dialogue(0), good_dialogue(1) | {"id": "unseen-00001", "split": "unseen"}
    unseen_dialogue["messages"][0]["content"] = "What is a 9 inch pipe in mm?"
    unseen_dialogue["messages"][1]["tool_calls"][0]["arguments"]["diameter"] = "9 inch"
    samples = build_samples([seen, unseen_dialogue], Ledger("x"))
    unseen, heldout, r1, pool = split_by_dialogue(samples, seed=0, heldout_seen_size=0, round1_size=1.0)
    assert {s.parent for s in unseen} == {"unseen-00001"} and len(unseen) == 4
    assert {s.parent for s in r1} == {"dlg-00000"} and heldout == [] and pool == []


def test_rule_only_verify_and_build_stages_balance(tmp_path):
    second = good_dialogue(1)
    second["messages"][0]["content"] = "What is a 7 inch pipe in mm?"
    second["messages"][1]["tool_calls"][0]["arguments"]["diameter"] = "7 inch"
    dialogues = [good_dialogue(0), second,
                 broken(lambda d: d["messages"][1]["tool_calls"][0]["arguments"].update(diameter="6 inch")) | {"id": "dlg-bad"}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(d) + "\n" for d in dialogues))
    verify_metrics = run_verify({"judge": False, "judge_max_tokens": 50}, {}, 0, tmp_path / "in.jsonl", tmp_path / "v")
    assert verify_metrics["in"] == 3 and verify_metrics["kept"] == 2
    assert verify_metrics["rejected_by_reason"] == {"ungrounded_value": 1}
    sample_metrics = run_build_samples({"round1_size": 1, "heldout_size": 1}, 0, tmp_path / "v" / "dialogues.jsonl",
                                       tmp_path / "r1.jsonl", tmp_path / "pool.jsonl", tmp_path / "s", tmp_path / "held.jsonl")
    # 5 assistant steps per dialogue, one dropped (followed by a tool error): 4 samples each.
    assert sample_metrics["in"] == 10 and sample_metrics["samples"] == 8
    # Whole dialogues: one held out, one in round 1, none left for the pool.
    assert (sample_metrics["heldout"], sample_metrics["round1"], sample_metrics["pool"]) == (4, 4, 0)
    for path in (tmp_path / "held.jsonl", tmp_path / "r1.jsonl", tmp_path / "pool.jsonl"):
        for sample in read_jsonl(path, Sample.from_dict):
            assert check_sample(sample) == []


def test_judge_verdict_counts_yes_checks():
    from looptool.synth.verify import JUDGE_SCHEMA, judge_verdict

    answer = {"request_served": "yes", "values_from_user": "no", "replies_consistent": "yes", "reason": "ok"}
    assert judge_verdict(answer, 2) == "pass" and judge_verdict(answer, 3) == "fail"
    assert set(JUDGE_SCHEMA["required"]) == {"request_served", "values_from_user", "replies_consistent", "reason"}
