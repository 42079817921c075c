"""JGLV and EDDE against the real embedded judge/generator (SmolLM2 on llama.cpp)."""

import pytest

from looptool.llm.server import llama_cpp_server_available, open_llm
from looptool.loop.expand import ExpandConfig, expand
from looptool.loop.judge import VERDICTS, apply_judgements, judge_mismatches
from looptool.schema import Call, Sample, Tool
from looptool.synth.rules import check_calls

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not llama_cpp_server_available(), reason="llama-cpp-python[server] is not installed"),
]

TOOL = Tool("convert_length", "Convert a length between inch and cm.", {
    "type": "object",
    "properties": {"value": {"type": "number"}, "unit": {"type": "string", "enum": ["inch", "cm"]}},
    "required": ["value", "unit"],
})


def failed(value, wrong):
    meta = {"probe": {"prediction": "", "calls": [{"name": "convert_length", "arguments": wrong}]}}
    return Sample([TOOL], [{"role": "user", "content": f"How many cm is {value} inch?"}],
                  [Call("convert_length", {"value": value, "unit": "inch"})], meta=meta)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    cache = tmp_path_factory.mktemp("llm") / "cache.sqlite"
    with open_llm({"backend": "embedded", "cache_path": str(cache), "max_retries": 1, "server": {"n_threads": 1}}) as c:
        yield c


def test_judge_and_expand_with_the_embedded_model(client):
    mismatches = [failed(4, {"value": 4, "unit": "cm"}), failed(12, {"value": 21, "unit": "inch"})]
    judgements = judge_mismatches(client, mismatches, n_judges=1, seed=0, max_tokens=120)
    assert all(j.verdict in VERDICTS for j in judgements)
    split = apply_judgements(mismatches, judgements)
    assert split.ledger.summary()["in"] == 2 and sum(split.verdicts.values()) == 2

    seeds = [s for s in split.error_seeds if s.origin == "error_seed"] or [
        Sample(m.tools, m.messages, m.label, "error_seed", meta=m.meta) for m in mismatches[:1]]
    new, ledger = expand(client, seeds[:1], ExpandConfig(per_seed=2, max_tokens=160, judge=True), seed=0)
    print("expand ledger:", ledger.summary(), [s.messages[-1]["content"] for s in new])
    summary = ledger.summary()
    assert summary["in"] == 2 and summary["kept"] + summary["rejected"] == 2  # every variant accounted for
    for sample in new:  # whatever survives passes the seed set's rules
        assert sample.origin == "edde" and sample.parent == seeds[0].id
        assert check_calls(sample.label, {TOOL.name: TOOL}, sample.messages) == []
    calls_before = client.usage.calls
    again, _ = expand(client, seeds[:1], ExpandConfig(per_seed=2, max_tokens=160, judge=True), seed=0)
    # Answered requests come from the cache; only failed ones (never cached) are sent again.
    resent = summary["rejected_by_reason"].get("generator_failed", 0) + summary["rejected_by_reason"].get("judge_failed", 0)
    assert client.usage.calls - calls_before == resent


def test_sampled_judge_votes_can_differ(client):
    # Issue 14 item 3: with several judges every vote is sampled with its own seed, so the replies of
    # the real judge differ (greedy votes were byte-identical copies of one reply).
    sample = failed(4, {"value": 4, "unit": "cm"})
    replies = []
    real_chat_many = client.chat_many

    def recording(requests, desc=""):
        results = real_chat_many(requests, desc=desc)
        replies.extend(r.text for r in results)
        return results

    client.chat_many = recording
    try:
        judge_mismatches(client, [sample], n_judges=4, seed=0, max_tokens=60, temperature=1.0)
    finally:
        client.chat_many = real_chat_many
    assert len(replies) >= 4 and len(set(replies)) > 1
