"""Program agents end to end without a server: need kinds, label noise, splits, EDDE, JGLV audit."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from looptool.io import read_jsonl
from looptool.ledger import Ledger
from looptool.loop.expand import ExpandConfig, expand_program
from looptool.loop.judge import Judgement, noise_audit
from looptool.params import load_params
from looptool.schema import Call, Sample, Tool
from looptool.synth.concepts import PHENOMENA, CapabilityLibrary
from looptool.synth.dialogue import SimulationConfig
from looptool.synth.noise import NOISE_TYPES
from looptool.synth.concepts import CapabilitiesConfig
from looptool.synth.pipeline import (library_from_config, run_build_samples, run_simulate, run_synth_apis,
                                     run_verify)
from looptool.synth.program_agents import ProgramAgents
from looptool.synth.program_apis import synthesize_program
from looptool.synth.rules import check_calls
from looptool.synth.samples import build_samples, check_sample
from looptool.synth.trees import ConstraintTree
from looptool.synth.validate import normalise_name
from looptool.synth.verify import check_dialogue

ROOT = Path(__file__).resolve().parents[1]
CONCEPTS = ROOT / "data" / "trees" / "concepts.yaml"
MINI = ROOT / "tests" / "data" / "synth" / "capabilities"
CONSTRAINTS = ROOT / "data" / "trees" / "constraint_tree.yaml"
PROGRAM = {"planner": "program", "user": "template", "assistant": "oracle", "tool": "program"}


@pytest.fixture(scope="module")
def mini():
    return CapabilityLibrary.load(CONCEPTS, MINI)


@pytest.fixture(scope="module")
def mini_pool(mini):
    return synthesize_program(mini, ConstraintTree.load(CONSTRAINTS), 0, Ledger("t"))


def simulate(mini, pool, n, seed=0, **overrides):
    cfg = SimulationConfig.from_mapping({"dialogues": n, "agents": PROGRAM, "tools_per_dialogue": [3, 4],
                                         "tool_error_rate": 0.0, "noise": {"rate": 0.0}, **overrides})
    agents = ProgramAgents(mini, cfg, seed)
    tools = agents.bind_pool(pool)
    return [agents.simulate(i, tools) for i in range(n)]


def calls_of(message):
    return [Call.from_dict(c) for c in message.get("tool_calls") or []]


@pytest.mark.parametrize("kind", ["single_call", "parallel", "multi_step", "needs_clarification", "no_tool"])
def test_each_need_kind_has_its_shape_and_passes_the_rules(mini, mini_pool, kind):
    dialogues = simulate(mini, mini_pool, 12, need_kind_weights={kind: 1}, needs_per_dialogue=[1, 1])
    for d in dialogues:
        assert check_dialogue(d) == [], d["messages"]
        messages = d["messages"][1:]  # after the system turn with today's date
        steps = [m for m in messages if m["role"] == "assistant"]
        call_steps = [m for m in steps if m.get("tool_calls")]
        if kind == "no_tool":
            assert call_steps == [] and len(steps) == 1
        elif kind == "single_call":
            assert len(call_steps) == 1 and len(call_steps[0]["tool_calls"]) == 1
        elif kind == "parallel":
            assert len(call_steps) == 1 and len(call_steps[0]["tool_calls"]) == 2
        elif kind == "multi_step":
            assert len(call_steps) == 2
            first_result = next(m for m in messages if m["role"] == "tool")["content"]
            second = calls_of(call_steps[1])[0]
            # A value of the second call was never said by the user: it comes from the first result.
            from_result = [v for v in second.arguments.values() if isinstance(v, str) and v in first_result]
            assert any(v not in messages[0]["content"] for v in from_result), (from_result, messages[0]["content"])
        else:  # needs_clarification: ask, answer, then the call with the answered value
            assert [m["role"] for m in messages[:4]] == ["user", "assistant", "user", "assistant"]
            assert not steps[0].get("tool_calls") and steps[0]["content"].strip()
            call = calls_of(messages[3])[0]
            omitted = d["turns"]["4"]["meta"]["recipe"]["omit"]
            tools = {t["name"]: Tool.from_dict(t) for t in d["tools"]}
            schema = tools[call.name].parameters["properties"][omitted]
            before = check_calls([call], tools, d["messages"][:2])  # system + the first request only
            if "enum" not in schema:  # an enum value is the model's pick, said or not
                assert any(p.code == "ungrounded_value" and f".{omitted}=" in p.detail for p in before), before
            assert check_calls([call], tools, d["messages"][:4]) == []  # grounded once the user answered


def test_program_dialogues_are_deterministic(mini, mini_pool):
    a = simulate(mini, mini_pool, 5, seed=3)
    b = simulate(mini, mini_pool, 5, seed=3)
    c = simulate(mini, mini_pool, 5, seed=4)
    assert a == b and a != c


@pytest.mark.parametrize("noise_type", NOISE_TYPES)
def test_noisy_labels_pass_the_rules_and_keep_the_clean_label(mini, mini_pool, noise_type):
    weights = {"single_call": 1, "parallel": 1, "no_tool": 2}
    dialogues = simulate(mini, mini_pool, 40, need_kind_weights=weights,
                         noise={"rate": 1.0, "types": {noise_type: 1}})
    samples = build_samples(dialogues, Ledger("t"))
    noisy = [s for s in samples if s.meta.get("noise")]
    assert noisy, f"{noise_type} never applied"
    for s in noisy:
        assert s.meta["noise"] == noise_type and check_sample(s) == []
        clean = s.meta["clean_label"]
        noisy_json = s.label if isinstance(s.label, str) else [c.to_dict() for c in s.label]
        assert noisy_json != clean
        if noise_type in ("text_for_call",):
            assert isinstance(s.label, str) and isinstance(clean, list)
        if noise_type == "call_for_text":
            assert isinstance(s.label, list) and isinstance(clean, str)


def test_no_noise_at_rate_zero(mini, mini_pool):
    samples = build_samples(simulate(mini, mini_pool, 20), Ledger("t"))
    assert samples and not any("noise" in s.meta or "clean_label" in s.meta for s in samples)


def test_program_edde_variants_keep_tools_and_call_shape(mini, mini_pool):
    samples = build_samples(simulate(mini, mini_pool, 30), Ledger("t"))
    seeds = [Sample(s.tools, s.messages, s.label, "error_seed", 1, s.id, s.meta) for s in samples if s.expects_call][:8]
    seeds += [Sample(s.tools, s.messages, s.label, "error_seed", 1, s.id, s.meta)
              for s in samples if s.meta.get("need_kind") == "no_tool"][:2]
    cfg = SimulationConfig.from_mapping({"agents": PROGRAM, "tool_error_rate": 0.0, "noise": {"rate": 0.0}})
    kept, ledger = expand_program(ProgramAgents(mini, cfg, 0), None, seeds, ExpandConfig(per_seed=2, max_seeds=None, judge=False))
    assert ledger.n_in == 2 * len(seeds) and len(kept) >= ledger.n_in / 2, ledger.rejection_reasons()
    by_id = {s.id: s for s in seeds}
    for variant in kept:
        seed = by_id[variant.parent]
        assert variant.origin == "edde" and [t.name for t in variant.tools] == [t.name for t in seed.tools]
        assert isinstance(variant.label, str) == isinstance(seed.label, str)
        if not isinstance(seed.label, str):
            assert sorted(c.name for c in variant.label) == sorted(c.name for c in seed.label)
        assert variant.meta["need_kind"] == seed.meta["need_kind"] and check_sample(variant) == []
        # The way each value was said (relative date, enum paraphrase, ...) is the seed's.
        assert variant.meta["recipe"]["modes"] == seed.meta["recipe"]["modes"] or seed.meta["recipe"]["kind"] == "no_tool"
        assert variant.content_id() != seed.content_id()


def test_noise_audit_counts_against_the_clean_labels():
    tools = [{"name": "f", "description": "F.", "parameters": {"type": "object", "properties": {
        "a": {"type": "string"}}, "required": ["a"]}}]
    def sample(label, clean=None, prediction=None):
        meta = {"probe": {"calls": prediction or [], "prediction": ""}}
        if clean is not None:
            meta.update(noise="wrong_enum", clean_label=clean)
        return Sample.from_dict({"tools": tools, "messages": [{"role": "user", "content": "x and y"}],
                                 "label": label, "meta": meta})
    x, y = [{"name": "f", "arguments": {"a": "x"}}], [{"name": "f", "arguments": {"a": "y"}}]
    samples = [sample(y, clean=x, prediction=x),   # corrupted, judge fixes it to the clean label
               sample(y, clean=x, prediction=y[:0] or [{"name": "f", "arguments": {"a": "z"}}]),  # corrupted, wrong fix
               sample(y, clean=x, prediction=x),   # corrupted, judge keeps the label
               sample(x, prediction=y)]            # clean label, judge rewrites it
    verdicts = ["LABEL_WRONG", "LABEL_WRONG", "PRED_WRONG", "LABEL_WRONG"]
    audit = noise_audit(samples, [Judgement(v, "", {}, True) for v in verdicts])
    assert (audit["corrupted_seen"], audit["corrupted_judged_label_wrong"], audit["corrected_equal_clean"],
            audit["clean_labels_rewritten"]) == (3, 2, 1, 1)
    assert noise_audit(samples[3:], None)["corrupted_seen"] == 0


def default_seed_run(tmp_path: Path) -> dict[str, Path]:
    """The default params' seed stages (program backends), without the LLM paraphrase and judge."""
    params = load_params(ROOT / "params.yaml")
    library = CapabilityLibrary.load(ROOT / params["capabilities"]["concepts"], ROOT / params["capabilities"]["dir"])
    synth = {**params["synth_apis"], "constraint_tree": str(ROOT / params["synth_apis"]["constraint_tree"]),
             "contamination": {"bfcl": True, "acebench_dir": "default"}}
    run_synth_apis(synth, {}, 0, tmp_path / "apis", library=library)
    (tmp_path / "imported.jsonl").write_text("")
    sim = {**params["simulate"], "paraphrase": {"rate": 0.0}}
    run_simulate(sim, {}, 0, [tmp_path / "apis" / "apis.jsonl", tmp_path / "imported.jsonl"], tmp_path / "dlg", library=library)
    run_verify({**params["verify_seed"], "judge": False}, {}, 0, tmp_path / "dlg" / "dialogues.jsonl", tmp_path / "ver")
    paths = {k: tmp_path / f"{k}.jsonl" for k in ("round1", "pool", "heldout_seen", "heldout_unseen")}
    run_build_samples(params["build_samples"], 0, tmp_path / "ver" / "dialogues.jsonl", paths["round1"], paths["pool"],
                      tmp_path / "samples", paths["heldout_seen"], paths["heldout_unseen"])
    return paths


@pytest.fixture(scope="module")
def default_seed(tmp_path_factory):
    paths = default_seed_run(tmp_path_factory.mktemp("seed"))
    return {k: read_jsonl(p, Sample.from_dict) for k, p in paths.items()}


def capability_of(sample: Sample, tool_name: str) -> str:
    return sample.meta["program_tools"][tool_name]["capability"]


def test_heldout_unseen_shares_no_tool_or_capability_with_training(default_seed):
    unseen = default_seed["heldout_unseen"]
    training = default_seed["round1"] + default_seed["pool"]
    assert len(unseen) >= 150
    names = lambda samples: {t.name for s in samples for t in s.tools}  # noqa: E731
    caps = lambda samples: {capability_of(s, t.name) for s in samples for t in s.tools}  # noqa: E731
    assert not names(unseen) & names(training)
    assert not caps(unseen) & caps(training)
    assert not {normalise_name(n) for n in names(unseen)} & {normalise_name(n) for n in names(training)}
    # Split by dialogue: no held-out-seen dialogue has a step in training.
    assert not {s.parent for s in default_seed["heldout_seen"]} & {s.parent for s in training}
    kinds = Counter(s.meta["need_kind"] for s in unseen)
    assert set(kinds) == {"single_call", "parallel", "multi_step", "needs_clarification", "no_tool"}


def test_heldout_sets_carry_clean_labels_and_training_keeps_the_noise(default_seed):
    held = default_seed["heldout_unseen"] + default_seed["heldout_seen"]
    training = default_seed["round1"] + default_seed["pool"]
    assert not [s.id for s in held if s.meta.get("noise")]
    restored = [s for s in held if "label_restored" in s.meta]
    assert restored, "simulate.noise.rate 0.1 should have corrupted some held-out steps"
    assert sum(bool(s.meta.get("noise")) for s in training) >= 20  # 58 of 1,522 at the default params


def test_default_seed_data_volume_kinds_and_phenomena(default_seed):
    samples = [s for part in default_seed.values() for s in part]
    assert len(samples) >= 800
    assert len({t.name for s in samples for t in s.tools}) >= 200
    kinds = Counter(s.meta["need_kind"] for s in samples)
    for kind in ("single_call", "parallel", "multi_step", "needs_clarification"):
        assert kinds[kind] >= 0.08 * len(samples), kinds
    assert kinds["no_tool"] >= 0.10 * len(samples), kinds
    phenomena = Counter(p for s in samples for p in set(s.meta.get("phenomena") or []))
    thin = {p: phenomena[p] for p in PHENOMENA if phenomena[p] < 20}
    assert not thin, thin
    assert all(check_sample(s) == [] for s in samples)


def test_no_synthesized_tool_matches_a_benchmark_function(tmp_path):
    """Against BFCL v3 and ACEBench function docs read here: no shared name, no shared parameter names."""
    from looptool.eval import acebench, bfcl

    functions = []
    for category in bfcl.SINGLE_TURN_CATEGORIES:
        for entry in bfcl.iter_entries(category):
            functions += entry.get("function") or []
    for class_name in bfcl.MULTI_TURN_DOC_FILES:
        functions += bfcl.multi_turn_function_docs(class_name)
    ace = acebench.default_data_dir()
    for category in acebench.RUNNABLE_CATEGORIES:
        if (Path(ace) / f"data_{category}.json").exists():
            for entry in acebench.load_entries(ace, category):
                functions += entry.get("function") or []
    assert len(functions) > 1000
    names = {normalise_name(str(f["name"]).rsplit(".", 1)[-1]) for f in functions}
    shapes = {frozenset(normalise_name(k) for k in ((f.get("parameters") or {}).get("properties") or {}))
              for f in functions}
    shapes = {s for s in shapes if len(s) >= 2}
    params = load_params(ROOT / "params.yaml")
    library = library_from_config(CapabilitiesConfig(**{k: str(ROOT / v) for k, v in params["capabilities"].items()}))
    run_synth_apis({**params["synth_apis"], "constraint_tree": str(CONSTRAINTS)}, {}, 0, tmp_path, library=library)
    pool = [json.loads(line)["tool"] for line in (tmp_path / "apis.jsonl").read_text().splitlines()]
    assert len(pool) >= 300
    for tool in pool:
        assert normalise_name(tool["name"].rsplit(".", 1)[-1]) not in names, tool["name"]
        shape = frozenset(normalise_name(k) for k in tool["parameters"]["properties"])
        assert len(shape) < 2 or shape not in shapes, (tool["name"], sorted(shape))


def test_a_capability_declared_unavailable_serves_no_later_need(mini, mini_pool):
    # Found when the default need mix changed: a no-tool need named a capability as unavailable and a
    # later need of the same dialogue was planned on it, so its tool was missing from the offered set.
    dialogues = simulate(mini, mini_pool, 60, need_kind_weights={"no_tool": 1, "needs_clarification": 1,
                                                                 "single_call": 1}, needs_per_dialogue=[2, 3])
    assert len(dialogues) == 60
    for d in dialogues:
        offered = {t["name"] for t in d["tools"]}
        called = {c["name"] for m in d["messages"] for c in m.get("tool_calls") or []}
        assert called <= offered
