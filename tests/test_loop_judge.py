"""JGLV on literal inputs: order randomisation, verdict mapping, voting, label correction, ledger."""

import pytest

from looptool.llm.client import ChatResult
from looptool.loop.judge import (
    Judgement, apply_judgements, judge_messages, judge_mismatches, judge_order, majority, verdict_from_choice,
)
from looptool.schema import Call, Sample, Tool

TOOL = Tool("get_weather", "Weather.", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


def failed(city, predicted, said=None):
    # The user names both spellings by default, so either answer passes the grounding rule.
    said = said if said is not None else f"{city} (or {predicted})"
    meta = {"probe": {"prediction": "...", "calls": [{"name": "get_weather", "arguments": {"city": predicted}}]}}
    return Sample([TOOL], [{"role": "user", "content": f"Weather in {said}?"}], [Call("get_weather", {"city": city})],
                  meta=meta)


def probed(label, prediction, calls, parse_error=None, content="Weather in Paris?"):
    meta = {"probe": {"prediction": prediction, "calls": calls, "parse_error": parse_error}}
    return Sample([TOOL], [{"role": "user", "content": content}], label, meta=meta)


def test_order_is_seeded_and_mixed():
    orders = [judge_order(f"id{i}", seed=0) for i in range(200)]
    assert orders == [judge_order(f"id{i}", seed=0) for i in range(200)]
    assert 60 < sum(orders) < 140


@pytest.mark.parametrize("choice, label_first, verdict", [
    ("only_A", True, "PRED_WRONG"), ("only_A", False, "LABEL_WRONG"),
    ("only_B", True, "LABEL_WRONG"), ("only_B", False, "PRED_WRONG"),
    ("both", True, "BOTH_CORRECT"), ("neither", False, "BOTH_WRONG"),
])
def test_verdict_mapping(choice, label_first, verdict):
    assert verdict_from_choice(choice, label_first) == verdict


def test_majority_and_ties():
    assert majority(["LABEL_WRONG", "LABEL_WRONG", "PRED_WRONG"]) == "LABEL_WRONG"
    assert majority(["LABEL_WRONG", "BOTH_WRONG"]) == "PRED_WRONG"
    assert majority([]) == "PRED_WRONG"


def test_candidates_are_shown_in_the_drawn_order():
    s = failed("Paris", "Pariss")
    a_first = judge_messages(s, label_first=True)[1]["content"]
    b_first = judge_messages(s, label_first=False)[1]["content"]
    assert a_first.index('"Paris"') < a_first.index('"Pariss"')
    assert b_first.index('"Pariss"') < b_first.index('"Paris"}')


def test_apply_judgements_rewrites_and_balances():
    samples = [failed("Paris", "Pariss"), failed("Rome", "Roma"), failed("Oslo", "Oslo "), failed("Lima", "x")]
    verdicts = ["PRED_WRONG", "LABEL_WRONG", "BOTH_CORRECT", "BOTH_WRONG"]
    split = apply_judgements(samples, [Judgement(v, "why", {v: 1}, True) for v in verdicts])
    assert [s.origin for s in split.error_seeds] == ["error_seed", "corrected"]
    corrected = split.error_seeds[1]
    assert corrected.label == [Call("get_weather", {"city": "Roma"})]
    assert corrected.meta["old_label"] == [{"name": "get_weather", "arguments": {"city": "Rome"}}]
    assert corrected.parent == samples[1].id and corrected.id != samples[1].id
    assert split.verdicts == {"PRED_WRONG": 1, "LABEL_WRONG": 1, "BOTH_CORRECT": 1, "BOTH_WRONG": 1, "JUDGE_FAILED": 0}
    assert split.ledger.summary()["in"] == 4 and split.ledger.count("rejected") == 2


def test_jglv_off_keeps_every_label():
    samples = [failed("Paris", "Pariss"), failed("Rome", "Roma")]
    split = apply_judgements(samples, None)
    assert [s.origin for s in split.error_seeds] == ["error_seed", "error_seed"]
    assert [s.label for s in split.error_seeds] == [s.label for s in samples]


class RecordingClient:
    """A transport double: answers with fixed judge outputs (the real client is tested in test_llm_*)."""

    def __init__(self, answers):
        self.answers, self.requests = answers, []

    def chat_many(self, requests, desc=""):
        self.requests += requests
        answers, self.answers = self.answers[: len(requests)], self.answers[len(requests):]
        return [ChatResult(ok=a is not None and "correct" in a, parsed=a, error=None if a else "bad") for a in answers]


def test_judge_mismatches_votes_and_retries_unreadable_answers():
    samples = [failed("Paris", "Pariss")]
    first = judge_order(samples[0].id, seed=3)
    pick_pred = "only_B" if first else "only_A"
    vote = {"analysis": "typo in label", "correct": pick_pred}
    client = RecordingClient([vote, None, vote, vote])  # the second judge's reply is unreadable, its retry is not
    (judgement,) = judge_mismatches(client, samples, n_judges=3, seed=3)
    assert judgement.verdict == "LABEL_WRONG" and judgement.votes == {"LABEL_WRONG": 3}
    # Retries use a new sample index (new seed, own cache entry) and sample instead of decoding greedily.
    assert [r.sample_index for r in client.requests] == [0, 1, 2, 4]
    # Several judges: every vote is sampled, each with its own seed (greedy votes would be identical).
    assert [r.temperature for r in client.requests] == [0.7, 0.7, 0.7, 0.7]
    assert len({r.seed + r.sample_index for r in client.requests}) == 4
    assert client.requests[0].schema["properties"]["correct"]["enum"] == ["only_A", "only_B", "both", "neither"]


def test_a_judge_that_never_answers_is_recorded_as_judge_failed():
    samples = [failed("Paris", "Pariss"), failed("Rome", "Roma")]
    first = judge_order(samples[1].id, seed=0)
    keep_label = {"analysis": "", "correct": "only_A" if first else "only_B"}
    # Sample 0: no verdict in the reply, then unreadable JSON; sample 1: a verdict at once.
    client = RecordingClient([{"analysis": "no verdict here"}, keep_label, None])
    judgements = judge_mismatches(client, samples, n_judges=1, seed=0, retries=1)
    assert [j.verdict for j in judgements] == ["JUDGE_FAILED", "PRED_WRONG"]
    assert len(client.requests) == 3  # two first asks, one retry
    split = apply_judgements(samples, judgements)
    assert [s.origin for s in split.error_seeds] == ["error_seed"]
    assert split.ledger.rejection_reasons() == {"judge_failed": 1}
    assert split.verdicts["JUDGE_FAILED"] == 1 and split.ledger.summary()["in"] == 2


def test_a_single_judge_decodes_greedily_and_its_retry_samples():
    client = RecordingClient([None, {"analysis": "", "correct": "both"}])
    judge_mismatches(client, [failed("Paris", "Pariss")], n_judges=1, seed=0, temperature=0.5)
    assert [r.temperature for r in client.requests] == [None, 0.5]


# Issue 14 item 1: a prediction that does not parse, names an unknown tool or breaks the schema or
# grounding rules can never become a label; the rules decide and the judge is not asked.
RULE_BROKEN = [
    ("unparsable", probed([Call("get_weather", {"city": "Paris"})], '<tool_call>{"name": "get_weather", "argu', [],
                          parse_error="tool_call block 1 is not closed")),
    ("unknown_tool", probed([Call("get_weather", {"city": "Paris"})], "",
                            [{"name": "book_flight", "arguments": {"to": "Paris"}}])),
    ("invalid_arguments", probed([Call("get_weather", {"city": "Paris"})], "",
                                 [{"name": "get_weather", "arguments": {"city": 75}}])),
    ("ungrounded_value", probed([Call("get_weather", {"city": "Paris"})], "",
                                [{"name": "get_weather", "arguments": {"city": "Lyon"}}])),
    ("empty_reply", probed([Call("get_weather", {"city": "Paris"})], "   ", [])),
]


@pytest.mark.parametrize("reason, sample", RULE_BROKEN, ids=[r for r, _ in RULE_BROKEN])
def test_a_rule_breaking_prediction_is_decided_by_the_rules(reason, sample):
    client = RecordingClient([])
    (judgement,) = judge_mismatches(client, [sample], n_judges=1, seed=0)
    assert client.requests == []  # the judge is not asked
    assert judgement.verdict == "PRED_WRONG" and judgement.decided_by == "rule" and judgement.rule == reason
    # Even a judge that (wrongly) said LABEL_WRONG cannot turn it into a label.
    split = apply_judgements([sample], [Judgement("LABEL_WRONG", "looks fine", {"LABEL_WRONG": 1}, True)])
    (seed,) = split.error_seeds
    assert seed.origin == "error_seed" and seed.label == sample.label
    (record,) = split.ledger.records
    assert record.info["decided_by"] == "rule" and record.info["rule"] == reason


def test_both_sides_breaking_the_rules_is_both_wrong():
    # The label names a city the user never said, and so does the prediction.
    sample = probed([Call("get_weather", {"city": "Nice"})], "", [{"name": "get_weather", "arguments": {"city": "Lyon"}}])
    (judgement,) = judge_mismatches(RecordingClient([]), [sample], n_judges=1, seed=0)
    assert judgement.verdict == "BOTH_WRONG" and judgement.decided_by == "rule"
    split = apply_judgements([sample], [judgement])
    assert split.error_seeds == [] and split.ledger.rejection_reasons() == {"both_wrong": 1}


def test_judge_decided_verdicts_say_so_in_the_ledger_and_corrections_are_rereadable(tmp_path):
    from looptool.io import read_jsonl, write_jsonl

    sample = failed("Rome", "Roma")
    first = judge_order(sample.id, seed=0)
    client = RecordingClient([{"analysis": "label misspelt", "correct": "only_B" if first else "only_A"}])
    split = apply_judgements([sample], judge_mismatches(client, [sample], n_judges=1, seed=0))
    (corrected,) = split.error_seeds
    assert corrected.origin == "corrected" and split.ledger.records[0].info["decided_by"] == "judge"
    write_jsonl(tmp_path / "seeds.jsonl", split.error_seeds)
    assert read_jsonl(tmp_path / "seeds.jsonl", Sample.from_dict)[0].label == [Call("get_weather", {"city": "Roma"})]
