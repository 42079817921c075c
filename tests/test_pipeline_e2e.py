"""The whole pipeline, end to end: the real `dvc repro` on the smoke params in a temp git repo.

Seed stages talk to the real embedded llama.cpp server (a few requests); the policy is the tiny
random Llama; the smoke seed file guarantees training data whatever the generator yields.
"""

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from looptool.io import read_jsonl
from looptool.ledger import Ledger
from looptool.llm.server import llama_cpp_server_available
from looptool.models import load_model_and_tokenizer
from looptool.eval.acebench import default_data_dir
from pipeline import PipelineRepo

pytestmark = [pytest.mark.server,
              pytest.mark.skipif(not llama_cpp_server_available(), reason="llama-cpp-python[server] is not installed")]

SMOKE = Path(__file__).parent / "data" / "smoke" / "params.yaml"


def test_full_pipeline_on_smoke_params(tmp_path):
    params = YAML(typ="safe").load(SMOKE.read_text())
    # The copy lives elsewhere, so name this checkout's ACEBench data (../shared/acebench_data) outright.
    params["eval"]["benchmarks"]["acebench"]["data_dir"] = str(default_data_dir())
    repo = PipelineRepo.create(tmp_path / "repo", params=params)
    repo.dvc("repro", timeout=1200)
    root = repo.root

    for arm in ("iterative", "static"):
        model, tokenizer = load_model_and_tokenizer(root / "models" / arm / "r2")
        inputs = tokenizer("hello", return_tensors="pt")
        assert model.generate(**inputs, max_new_tokens=2, do_sample=False).shape[1] > inputs["input_ids"].shape[1]
        for rnd in ("r1", "r2"):
            metrics = json.loads((root / "eval" / arm / rnd / "metrics.json").read_text())
            assert set(metrics) == {"bfcl-v3", "acebench"}
            assert metrics["bfcl-v3"]["categories"]["simple"]["total"] == 1
            curve = json.loads((root / "eval" / arm / rnd / "train_curve.json").read_text())
            assert curve and "reward" in curve[0]
    assert (root / "eval" / "base" / "r0" / "metrics.json").is_file()

    next_round = read_jsonl(root / "data" / "rounds" / "r1" / "next.jsonl")
    assert next_round and all(s["round"] == 2 for s in next_round)
    composition = json.loads((root / "data" / "rounds" / "r1" / "metrics.json").read_text())["composition"]
    assert composition["total"] == len(next_round)
    for ledger in list(root.glob("data/**/ledger.jsonl")):
        Ledger.read(ledger)  # every written ledger parses; balance was checked before writing

    report = (root / "eval" / "report.md").read_text()
    assert "iterative" in report and (root / "eval" / "plots" / "scores.png").stat().st_size > 1000

    again = repo.dvc("repro")
    assert "Data and pipelines are up to date" in again.stdout
