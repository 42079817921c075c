"""Greedy Capability Probing: matching, perplexity retention rules, ledger balance."""

import math
from types import SimpleNamespace

import pytest

from looptool.llm.policy import GenerationSettings
from looptool.loop.probe import RetentionRule, high_ppl_ids, judge_outputs, probe, probe_metrics, split_by_probe
from looptool.schema import Call, Sample, Tool
from looptool.toolcall import render_calls

TOOL = Tool("get_weather", "Weather.", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


def sample(city):
    return Sample([TOOL], [{"role": "user", "content": f"Weather in {city}?"}], [Call("get_weather", {"city": city})])


SAMPLES = [sample(c) for c in ("Paris", "Rome", "Oslo", "Lima", "Kyiv")]


def out(text, ppl, n=5, finish_reason="eos"):
    return SimpleNamespace(text=text, perplexity=ppl, num_tokens=n, finish_reason=finish_reason)


def right(s):
    return render_calls(s.label)


OUTPUTS = [out(right(SAMPLES[0]), 1.1), out(right(SAMPLES[1]), 2.0), out(right(SAMPLES[2]), 3.5),
           out('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Berlin"}}\n</tool_call>', 1.5),
           out("<tool_call>{broken", 9.0)]


def test_mastered_and_failed():
    results = judge_outputs(SAMPLES, OUTPUTS)
    assert [r.mastered for r in results] == [True, True, True, False, False]
    assert results[3].calls == [{"name": "get_weather", "arguments": {"city": "Berlin"}}]
    assert results[4].parse_error and results[4].calls == []


def test_a_text_reply_cut_off_by_the_limit_is_not_mastered():
    chat = Sample([TOOL], [{"role": "user", "content": "Hello"}], "Hi! How can I help?")
    done, cut = judge_outputs([chat, chat], [out("Hi there!", 1.2), out("Hi there, I can", 1.2, finish_reason="length")])
    assert done.mastered and not cut.mastered


@pytest.mark.parametrize("rule, expected", [
    (RetentionRule("median"), {1, 2}),
    (RetentionRule("top_fraction", fraction=1 / 3), {2}),
    (RetentionRule("top_fraction", fraction=1.0), {0, 1, 2}),
    (RetentionRule("threshold", threshold=1.5), {1, 2}),
])
def test_retention_rules(rule, expected):
    results = judge_outputs(SAMPLES, OUTPUTS)
    assert high_ppl_ids(results, rule) == {SAMPLES[i].id for i in expected}


def test_rule_validation():
    with pytest.raises(ValueError, match="one of"):
        RetentionRule("mean")
    with pytest.raises(ValueError, match="threshold"):
        RetentionRule("threshold")


def test_split_keeps_high_ppl_and_failed_and_balances():
    results = judge_outputs(SAMPLES, OUTPUTS)
    split = split_by_probe(SAMPLES, results, RetentionRule("median"))
    assert [s.id for s in split.high_ppl] == [SAMPLES[1].id, SAMPLES[2].id]
    assert all(s.origin == "hppl" and s.parent == s.id for s in split.high_ppl)
    assert [s.id for s in split.failed] == [SAMPLES[3].id, SAMPLES[4].id]
    assert split.failed[0].meta["probe"]["calls"][0]["arguments"] == {"city": "Berlin"}
    summary = split.ledger.summary()
    assert summary["in"] == 5 and summary["kept"] == 4 and summary["rejected_by_reason"] == {"mastered_low_ppl": 1}
    keep_all = split_by_probe(SAMPLES, results, RetentionRule("median"), keep_all_mastered=True)
    assert len(keep_all.high_ppl) == 3 and keep_all.ledger.count("rejected") == 0  # ablation.high_ppl=false


def test_metrics_count_mastered_and_failed_per_need_kind_and_phenomenon():
    metas = [{"need_kind": "single_call", "phenomena": ["identifier", "iso_date"]},  # mastered
             {"need_kind": "single_call", "phenomena": ["identifier", "identifier"]},  # failed; counted once
             {"need_kind": "no_tool", "phenomena": []},  # mastered; no value: "none"
             {}]  # failed; a sample from elsewhere: "unknown"
    samples = [Sample(s.tools, s.messages, s.label, meta=m) for s, m in zip(SAMPLES, metas)]
    outputs = [out(right(samples[0]), 1.1), OUTPUTS[3], out(right(samples[2]), 2.0), OUTPUTS[4]]
    results = judge_outputs(samples, outputs)
    metrics = probe_metrics(samples, results, split_by_probe(samples, results, RetentionRule("median")))
    assert (metrics["mastered"], metrics["failed"]) == (2, 2)
    assert metrics["by_need_kind"] == {"single_call": {"mastered": 1, "failed": 1}, "no_tool": {"mastered": 1, "failed": 0},
                                       "unknown": {"mastered": 0, "failed": 1}}
    assert metrics["by_phenomenon"] == {"identifier": {"mastered": 1, "failed": 1}, "iso_date": {"mastered": 1, "failed": 0},
                                        "none": {"mastered": 1, "failed": 0}, "unknown": {"mastered": 0, "failed": 1}}


def test_probe_with_the_policy_engine_on_the_tiny_model(tiny_model_dir):
    from looptool.llm.policy import load_policy_engine

    engine = load_policy_engine(tiny_model_dir, backend="hf")
    results = probe(engine, SAMPLES[:3], GenerationSettings(max_new_tokens=6), batch_size=2)
    assert [r.id for r in results] == [s.id for s in SAMPLES[:3]]
    assert all(r.tokens >= 1 and (r.perplexity > 1.0 or math.isnan(r.perplexity)) for r in results)
    assert not any(r.mastered for r in results)  # a random model does not call tools
