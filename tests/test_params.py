"""params.yaml: one typed config per section, unknown keys and wrong types refused by name, and the
committed file stating the configs' defaults (issue 14 item 13)."""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import pytest

from looptool.loop.judge import JudgeConfig
from looptool.loop.probe import ProbeConfig
from looptool.params import (
    SECTIONS, ParamsError, config_from_mapping, load_params, round_specs, round_train_values, section_config,
)
from looptool.synth.dialogue import SimulationConfig

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {
    "train": {"max_steps": 5, "learning_rate": 2e-5},
    "rounds": {"r1": {"data": "a.jsonl"}, "r2": {"data": "b.jsonl", "train": {"max_steps": 20}}},
}


def config_class(name: str) -> type:
    module, cls = SECTIONS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def test_round_overrides_apply_to_their_round_only():
    assert round_train_values(PARAMS, "r1") == {"max_steps": 5, "learning_rate": 2e-5}
    assert round_train_values(PARAMS, "r2") == {"max_steps": 20, "learning_rate": 2e-5}
    assert PARAMS["train"]["max_steps"] == 5  # the shared section is not modified


def test_round_errors_name_the_problem():
    with pytest.raises(ParamsError, match="no round 'r3'"):
        round_train_values(PARAMS, "r3")
    with pytest.raises(ParamsError, match="rounds.r1.train must be a mapping"):
        round_train_values({**PARAMS, "rounds": {"r1": {"train": 3}}}, "r1")
    with pytest.raises(ParamsError, match="round key 1 must be a string"):
        round_specs({"rounds": {1: {"data": "a"}}}, "rounds")
    with pytest.raises(ParamsError, match=r"rounds.r1: unknown key\(s\) \['dataa'\]"):
        round_specs({"rounds": {"r1": {"dataa": "a"}}}, "rounds")
    assert round_specs({"rounds": {"r2": {"from": "models/x", "prev": "r1"}}}, "rounds")["r2"].start == "models/x"


def test_a_missing_section_is_named():
    with pytest.raises(ParamsError, match="no 'lora' section"):
        section_config(PARAMS, "lora", config_class("lora"))


def test_unknown_keys_are_refused_naming_the_section_and_the_key():
    with pytest.raises(ParamsError, match=r"probe: unknown key\(s\) \['max_new_token'\]"):
        section_config({"probe": {"max_new_token": 64}}, "probe", ProbeConfig)
    with pytest.raises(ParamsError, match=r"probe.retention: unknown key\(s\) \['rul'\]"):
        section_config({"probe": {"retention": {"rul": "median"}}}, "probe", ProbeConfig)
    with pytest.raises(ParamsError, match=r"llm.server: unknown key\(s\) \['threads'\]"):
        section_config({"llm": {"server": {"threads": 2}}}, "llm", config_class("llm"))
    with pytest.raises(ParamsError, match="unknown section"):
        path = ROOT / "tests" / "data" / "no_such_section.yaml"
        try:
            path.write_text("seed: 0\nprobes: {}\n")
            load_params(path)
        finally:
            path.unlink()


def test_training_sections_check_trl_keys_by_name():
    with pytest.raises(ParamsError, match=r"train: GRPOConfig has no field\(s\) \['num_generation'\]"):
        section_config({"train": {"num_generation": 4}}, "train", config_class("train"))
    cfg = section_config({"train": {"reward": "partial", "num_generations": 4}}, "train", config_class("train"))
    assert cfg.reward == "partial" and cfg.trl == {"num_generations": 4}


@pytest.mark.parametrize("values, message", [
    ({"n_judges": "three"}, r"judge.n_judges: expected int, got 'three'"),
    ({"n_judges": True}, r"judge.n_judges: expected int, got True"),
    ({"temperature": "hot"}, r"judge.temperature: expected float"),
    ({"max_tokens": None}, r"judge.max_tokens must not be null"),
])
def test_values_of_the_wrong_type_are_refused_by_name(values, message):
    with pytest.raises(ParamsError, match=message):
        section_config({"judge": values}, "judge", JudgeConfig)


def test_nested_mappings_merge_over_their_defaults():
    cfg = config_from_mapping(SimulationConfig, {"max_tokens": {"user": 90}, "agents": {"user": "llm"}}, "simulate")
    assert cfg.max_tokens == {**SimulationConfig().max_tokens, "user": 90}
    assert cfg.agents == {"planner": "program", "user": "llm", "assistant": "oracle", "tool": "program"}
    assert section_config({"probe": {"retention": {"rule": "top_fraction", "fraction": 0.25}}}, "probe",
                          ProbeConfig).retention.fraction == 0.25
    assert isinstance(config_from_mapping(JudgeConfig, {"temperature": 1}, "judge").temperature, float)


def test_every_committed_section_parses():
    params = load_params(ROOT / "params.yaml")
    for name in SECTIONS:
        section_config(params, name, config_class(name))
    from pipeline import deep_update  # the smoke file holds overrides of params.yaml

    smoke = deep_update(load_params(ROOT / "params.yaml"), load_params(ROOT / "tests" / "data" / "smoke" / "params.yaml"))
    for name in SECTIONS:
        section_config(smoke, name, config_class(name))


def _defaults(cls: type) -> dict:
    instance = cls()
    if hasattr(instance, "to_params_mapping"):
        return instance.to_params_mapping()
    return dataclasses.asdict(instance)


def _differences(stated, default, where):
    if isinstance(stated, dict) and isinstance(default, dict):
        return [d for key, value in stated.items() for d in _differences(value, default.get(key, "<absent>"), f"{where}.{key}")]
    same = stated == default or (isinstance(stated, list) and isinstance(default, tuple) and tuple(stated) == default)
    return [] if same else [f"{where}: params.yaml says {stated!r}, the config's default is {default!r}"]


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_params_yaml_states_the_config_defaults(name):
    # The default lives in the config class; params.yaml states the same value (one default, not two).
    # TRL's own keys of sft/train are settings of TRL's config, not ours.
    stated = dict(load_params(ROOT / "params.yaml")[name])
    defaults = _defaults(config_class(name))
    if "trl" in defaults:
        own = set(defaults) - {"trl"}
        stated = {k: v for k, v in stated.items() if k in own}
    assert _differences(stated, defaults, name) == []


def _reads_of_raw_params(path: Path) -> list[str]:
    """Uses of the loaded params mapping other than handing it to a typed reader."""
    readers = {"section_config", "pipeline_seed", "round_specs", "round_train_values", "is_final_model"}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
             and getattr(node.value.func, "id", None) == "load_params" for t in node.targets if isinstance(t, ast.Name)}
    allowed = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call)
               and getattr(node.func, "id", None) in readers for arg in node.args[:1]}
    allowed |= {id(node.comparators[0]) for node in ast.walk(tree) if isinstance(node, ast.Compare)
                and isinstance(node.ops[0], ast.In)}
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in names and isinstance(node.ctx, ast.Load) and id(node) not in allowed:
            # `k in params` (does the file have the section?) is not a read of a value
            bad.append(f"{path.name}:{node.lineno}")
    return bad


def test_stages_read_params_only_through_typed_configs():
    offenders = []
    for path in sorted((ROOT / "stages").glob("*.py")):
        offenders += _reads_of_raw_params(path)
    assert offenders == []


def test_one_generation_budget_for_rollouts_probing_and_evaluation():
    # Issue 15 item 2: the limit lives in `generation` only; the sections that had their own refuse it.
    with pytest.raises(ParamsError, match=r"probe: unknown key\(s\) \['max_new_tokens'\]"):
        section_config({"probe": {"max_new_tokens": 192}}, "probe", ProbeConfig)
    with pytest.raises(ParamsError, match=r"eval: unknown key\(s\) \['max_new_tokens'\]"):
        section_config({"eval": {"max_new_tokens": 80}}, "eval", config_class("eval"))
    with pytest.raises(ParamsError, match="train.max_completion_length: the rollout budget is generation.max_new_tokens"):
        section_config({"train": {"max_completion_length": 96}}, "train", config_class("train"))
    generation = section_config({"generation": {"max_new_tokens": 64}}, "generation", config_class("generation"))
    decode = generation.decode_config(batch_size=4)
    # The same stopping rule as TRL's rollouts: end of turn or the limit, not "right after the last call".
    assert (decode.max_new_tokens, decode.stop_after_tool_call) == (64, False)
    run = section_config({"eval": {}}, "eval", config_class("eval")).run_config(generation)
    assert (run.max_new_tokens, run.stop_after_tool_call) == (64, False)


def test_probe_decodes_with_the_generation_settings():
    from looptool.llm.policy import GenerationSettings
    from looptool.loop.probe import probe

    class RecordingEngine:
        tokenizer = None

        def generate(self, prompts, config):
            self.config = config
            return []

    engine = RecordingEngine()
    probe(engine, [], GenerationSettings(max_new_tokens=33), batch_size=2)
    assert (engine.config.max_new_tokens, engine.config.stop_after_tool_call, engine.config.batch_size) == (33, False, 2)


def test_public_benchmarks_run_on_the_base_sft_and_last_round_models_only():
    from looptool.eval.runner import EvalConfig
    from looptool.params import is_final_model

    params = {"rounds": {"r1": {"data": "d1", "from": "models/sft"}, "r2": {"data": "d2", "from": "models/iterative/r1"}}}
    assert [is_final_model(params, arm, r) for arm, r in
            [("base", "r0"), ("sft", "r0"), ("iterative", "r1"), ("iterative", "r2"), ("static", "r2")]] == \
        [True, True, False, True, True]
    # With `evolve` (the rounds that build next-round data), a round not in it is final, whatever
    # `rounds` holds after it: the eval stages depend on `evolve`, not on every round's settings.
    evolving = {**params, "evolve": {"r1": {"data": "d1"}}, "rounds": {**params["rounds"], "r3": {}}}
    assert [is_final_model(evolving, "iterative", r) for r in ("r1", "r2", "r3")] == [False, True, True]
    cfg = EvalConfig(benchmarks={"bfcl-v3": {"per_category": 20, "models": "final"}, "heldout_unseen": {"path": "h.jsonl"}})
    assert [s.name for s in cfg.specs(final=False)] == ["heldout_unseen"]
    assert [s.name for s in cfg.specs(final=True)] == ["bfcl-v3", "heldout_unseen"]
    assert cfg.specs()[0].options == {}  # `models` is not handed to the benchmark as an option
    with pytest.raises(ParamsError, match="models"):
        EvalConfig(benchmarks={"bfcl-v3": {"models": "last"}}).specs()
