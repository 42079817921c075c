"""Each ablation switch of the data-evolution stages, end to end on real components.

One round of probe -> judge -> expand -> assemble runs through the stage scripts themselves with
the tiny random policy model and the real embedded judge/generator (SmolLM2 on llama.cpp): once
with every module on, then once per switch turned off. The LLM response cache is shared between
the runs, so a request that is the same in two runs is answered once.

The policy is the tiny model rewired to answer "OK" and end its turn (``replying_tiny_model_dir``).
The round's data mixes text-label samples (which it masters: a finished reply, no call) with call
samples (which it always fails), so the probe has mastered samples to filter and the judge has
mismatches to judge.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from looptool.io import read_jsonl, write_jsonl
from looptool.llm.server import llama_cpp_server_available
from looptool.loop.judge import JUDGE_FAILED, VERDICTS
from looptool.schema import Sample
from pipeline import REPO_ROOT, deep_update
from stages import assemble as assemble_stage
from stages import expand as expand_stage
from stages import judge as judge_stage
from stages import probe as probe_stage

pytestmark = [pytest.mark.server,
              pytest.mark.skipif(not llama_cpp_server_available(), reason="llama-cpp-python[server] is not installed")]

SWITCHES = ("high_ppl", "jglv", "edde", "fresh_seed")
FRESH_SIZE = 3
OVERRIDES = {
    "probe": {"backend": "hf", "batch_size": 8},
    "generation": {"max_new_tokens": 8},
    "judge": {"max_tokens": 120, "retries": 1},
    "expand": {"per_seed": 1, "max_seeds": 2, "max_tokens": 160},
    "assemble": {"fresh_size": FRESH_SIZE},
    "llm": {"server": {"n_threads": 1}, "max_retries": 1},
}


def _round_data(tmp: Path) -> tuple[Path, Path]:
    starter = read_jsonl(REPO_ROOT / "data" / "starter" / "samples.jsonl", Sample.from_dict)
    text = [s for s in starter if not s.expects_call][:4]
    calls = [s for s in starter if s.expects_call]
    data, pool = tmp / "round.jsonl", tmp / "pool.jsonl"
    write_jsonl(data, text + calls[:3])
    write_jsonl(pool, calls[3:9])
    return data, pool


def _run_round(root: Path, model: Path, data: Path, pool: Path, cache: Path, ablation: dict[str, bool]) -> dict:
    """One round of the four stages under ``root``; returns every stage's metrics and outputs."""
    params = YAML(typ="safe").load((REPO_ROOT / "params.yaml").read_text())
    deep_update(params, json.loads(json.dumps(OVERRIDES)))
    params["llm"]["cache_path"] = str(cache)
    params["ablation"] = {**params["ablation"], **ablation}
    root.mkdir(parents=True)
    params_path = root / "params.yaml"
    with params_path.open("w") as handle:
        YAML().dump(params, handle)
    common = ["--params", str(params_path), "--round", "r1"]
    probe_stage.main([*common, "--model", str(model), "--data", str(data), "--out-dir", str(root / "probe")])
    judge_stage.main([*common, "--failed", str(root / "probe" / "failed.jsonl"), "--out-dir", str(root / "judge")])
    expand_stage.main([*common, "--seeds", str(root / "judge" / "error_seeds.jsonl"), "--out-dir", str(root / "expand")])
    assemble_stage.main([*common, "--high-ppl", str(root / "probe" / "high_ppl.jsonl"),
                         "--error-seeds", str(root / "judge" / "error_seeds.jsonl"),
                         "--edde", str(root / "expand" / "samples.jsonl"), "--pool", str(pool), "--out-dir", str(root)])
    metrics = {stage: json.loads((root / stage / "metrics.json").read_text()) for stage in ("probe", "judge", "expand")}
    metrics["assemble"] = json.loads((root / "metrics.json").read_text())
    return {"metrics": metrics, "root": root, "data": data, "pool": pool,
            "next": read_jsonl(root / "next.jsonl", Sample.from_dict),
            "error_seeds": read_jsonl(root / "judge" / "error_seeds.jsonl", Sample.from_dict),
            "failed": read_jsonl(root / "probe" / "failed.jsonl", Sample.from_dict)}


@pytest.fixture(scope="module")
def rounds(tmp_path_factory, replying_tiny_model_dir) -> dict[str, dict]:
    """{"all_on": ..., "<switch>_off": ...}: the same round with each switch turned off in turn."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LOOPTOOL_MLFLOW", "0")
    tmp = tmp_path_factory.mktemp("ablation")
    data, pool = _round_data(tmp)
    cache = tmp / "llm.sqlite"
    try:
        out = {"all_on": _run_round(tmp / "all_on", replying_tiny_model_dir, data, pool, cache, {s: True for s in SWITCHES})}
        for switch in SWITCHES:
            out[f"{switch}_off"] = _run_round(tmp / f"{switch}_off", replying_tiny_model_dir, data, pool, cache,
                                              {s: s != switch for s in SWITCHES})
    finally:
        mp.undo()
    return out


def _origins(run: dict) -> dict[str, int]:
    return run["metrics"]["assemble"]["composition"]


def _lines(path: Path) -> list[dict]:
    """A JSONL file read as plain dicts (not through the Ledger / Sample readers under test)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _items(path: Path) -> list[dict]:
    return [r for r in _lines(path) if r["fate"] in ("kept", "rejected")]


@pytest.mark.parametrize("variant", ["all_on", *(f"{s}_off" for s in SWITCHES)])
def test_every_item_is_accounted_for_by_the_files(rounds, variant):
    # Issue 14 item 14: counts come from the stages' input and output files, counted here, not from
    # the balance Ledger.write already enforces.
    run, root = rounds[variant], rounds[variant]["root"]
    data = _lines(run["data"])
    probe_items = _items(root / "probe" / "ledger.jsonl")
    results = _lines(root / "probe" / "results.jsonl")
    high, failed = _lines(root / "probe" / "high_ppl.jsonl"), _lines(root / "probe" / "failed.jsonl")
    assert sorted(r["id"] for r in probe_items) == sorted(r["id"] for r in results) == sorted(s["id"] for s in data)
    assert len(failed) == sum(not r["mastered"] for r in results)
    assert len(high) + len(failed) + sum(r["reason"] == "mastered_low_ppl" for r in probe_items) == len(data)

    judge_items = _items(root / "judge" / "ledger.jsonl")
    seeds = _lines(root / "judge" / "error_seeds.jsonl")
    assert sorted(r["id"] for r in judge_items) == sorted(s["id"] for s in failed)
    assert len(seeds) == sum(r["fate"] == "kept" for r in judge_items)
    assert sum(s["origin"] == "corrected" for s in seeds) == sum(r["info"]["verdict"] == "LABEL_WRONG" for r in judge_items)

    expand_items = _items(root / "expand" / "ledger.jsonl")
    new = _lines(root / "expand" / "samples.jsonl")
    n_seeds = min(len(seeds), OVERRIDES["expand"]["max_seeds"])
    assert len(expand_items) == (0 if variant == "edde_off" else n_seeds * OVERRIDES["expand"]["per_seed"])
    assert len(new) == sum(r["fate"] == "kept" for r in expand_items)

    assemble_items = _items(root / "ledger.jsonl")
    fresh = 0 if variant == "fresh_seed_off" else min(FRESH_SIZE, len(_lines(run["pool"])))
    assert len(assemble_items) == len(high) + len(seeds) + len(new) + fresh
    duplicates = sum(r["reason"] == "duplicate_content" for r in assemble_items)
    assert len(_lines(root / "next.jsonl")) == len(assemble_items) - duplicates


def test_all_on_uses_every_module(rounds):
    run, m = rounds["all_on"], rounds["all_on"]["metrics"]
    # Preconditions of the comparisons below: the random model masters the text samples (no call)
    # and fails the call samples, so there is something to retain and something to judge.
    assert m["probe"]["mastered"] >= 2 and m["probe"]["failed"] >= 3
    assert m["judge"]["judge_ran"] is True
    judged = {v: n for v, n in m["judge"]["verdicts"].items() if n}
    assert set(judged) <= {*VERDICTS, JUDGE_FAILED}
    corrected = [s for s in run["error_seeds"] if s.origin == "corrected"]
    assert len(corrected) == m["judge"]["verdicts"]["LABEL_WRONG"]
    assert m["expand"]["ledger"]["in"] > 0  # EDDE asked the generator (what survives is the generator's doing)
    assert _origins(run).get("fresh", 0) == FRESH_SIZE
    assert 0 < _origins(run).get("hppl", 0) < m["probe"]["mastered"]  # the median rule drops the low-PPL half


def test_high_ppl_off_keeps_every_mastered_sample(rounds):
    on, off = rounds["all_on"]["metrics"]["probe"], rounds["high_ppl_off"]["metrics"]["probe"]
    assert off["high_ppl_kept"] == off["mastered"] == on["mastered"]
    assert _origins(rounds["high_ppl_off"])["hppl"] == off["mastered"] > _origins(rounds["all_on"])["hppl"]


def test_jglv_off_corrects_no_label_and_seeds_every_mismatch(rounds):
    run, m = rounds["jglv_off"], rounds["jglv_off"]["metrics"]
    assert m["judge"]["judge_ran"] is False
    assert m["judge"]["verdicts"]["PRED_WRONG"] == m["judge"]["mismatches"] == len(run["error_seeds"])
    assert _origins(run)["corrected"] == 0
    failed_labels = {s.id: s.label for s in run["failed"]}
    assert all(s.origin == "error_seed" and s.label == failed_labels[s.parent] for s in run["error_seeds"])


def test_edde_off_adds_no_generated_sample(rounds):
    run, m = rounds["edde_off"], rounds["edde_off"]["metrics"]
    assert m["expand"]["new_samples"] == 0 and _origins(run)["edde"] == 0
    assert not any(s.origin == "edde" for s in run["next"])
    # Everything else is the all-on round's data.
    on = _origins(rounds["all_on"])
    assert {k: v for k, v in _origins(run).items() if k not in ("edde", "total")} == \
        {k: v for k, v in on.items() if k not in ("edde", "total")}


def test_fresh_seed_off_adds_no_unused_seed_sample(rounds):
    run = rounds["fresh_seed_off"]
    assert _origins(run)["fresh"] == 0
    on = _origins(rounds["all_on"])
    assert _origins(run)["total"] == on["total"] - FRESH_SIZE
