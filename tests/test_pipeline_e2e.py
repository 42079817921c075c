"""The whole pipeline, end to end: the real `dvc repro` on the smoke params in a temp git repo.

Seed stages run the program agents and talk to the real embedded llama.cpp server for a few
paraphrases and judge verdicts; the policy is the tiny random Llama.
"""

import hashlib
import json
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from looptool.io import read_jsonl
from looptool.llm.server import llama_cpp_server_available
from looptool.models import load_model_and_tokenizer
from looptool.eval.acebench import default_data_dir
from pipeline import PipelineRepo
from s3_server import s3_bucket, s3_endpoint  # noqa: F401  (pytest fixtures)

pytestmark = [pytest.mark.server,
              pytest.mark.skipif(not llama_cpp_server_available(), reason="llama-cpp-python[server] is not installed")]

SMOKE = Path(__file__).parent / "data" / "smoke" / "params.yaml"


BENCHMARKS = {"bfcl-v3", "acebench", "heldout_unseen", "heldout_seen"}
NEED_KINDS = ("single_call", "parallel", "multi_step", "needs_clarification", "no_tool")
ROUND2_STAGES = {"train_iterative@r2", "train_static@r2", "eval_iterative@r2", "eval_static@r2", "report"}


def _would_run(repo: PipelineRepo) -> set[str]:
    """Stages `dvc repro --dry` would run now."""
    out = repo.dvc("repro", "--dry").stdout
    return set(re.findall(r"Running stage '([^']+)'", out))


def test_full_pipeline_on_smoke_params(tmp_path, s3_bucket):  # noqa: F811
    params = YAML(typ="safe").load(SMOKE.read_text())
    # The copy lives elsewhere, so name this checkout's ACEBench data (../shared/acebench_data) outright.
    params["eval"]["benchmarks"]["acebench"]["data_dir"] = str(default_data_dir())
    repo = PipelineRepo.create(tmp_path / "repo", params=params)
    repo.dvc("repro", timeout=1200)
    root = repo.root
    # What git sees after a run is what a user commits: dvc.lock and the metrics files, nothing else.
    changed = {line[3:] for line in repo.git("status", "--porcelain", "--untracked-files=all").splitlines()}
    assert changed and changed <= {"dvc.lock", *_metrics_files(root)}, sorted(changed - {"dvc.lock", *_metrics_files(root)})
    # MLflow: one run per arm with the held-out score at step = round 0 (the SFT start), 1 and 2.
    assert _arm_steps(root, "heldout_unseen_overall") == {"base": [0, 1, 2], "iterative": [0, 1, 2], "static": [0, 1, 2]}

    for arm, rounds in (("iterative", ("r1", "r2")), ("static", ("r2",))):
        model, tokenizer = load_model_and_tokenizer(root / "models" / arm / "r2")
        inputs = tokenizer("hello", return_tensors="pt")
        assert model.generate(**inputs, max_new_tokens=2, do_sample=False).shape[1] > inputs["input_ids"].shape[1]
        for rnd in rounds:
            metrics = json.loads((root / "eval" / arm / rnd / "metrics.json").read_text())
            if rnd == "r2":  # the last round: every benchmark
                assert set(metrics) == BENCHMARKS
                assert metrics["bfcl-v3"]["categories"]["simple"]["total"] == 1
            else:  # intermediate rounds skip the public benchmarks (eval.benchmarks.<name>.models: final)
                assert set(metrics) == {"heldout_unseen", "heldout_seen"}
            # One entry per need kind and one answer after tool results (per_category: 1); the 10 unseen
            # dialogues cycle through all five kinds.
            assert {k: c["total"] for k, c in metrics["heldout_unseen"]["categories"].items()} == \
                dict.fromkeys((*NEED_KINDS, "reply"), 1)
            curve = json.loads((root / "eval" / arm / rnd / "train_curve.json").read_text())
            assert curve and "reward" in curve[0]
    # Static round 1 is the iterative arm's (same start, same data): no second run of it.
    assert not (root / "models" / "static" / "r1").exists()
    for run in ("base", "sft"):
        assert set(json.loads((root / "eval" / run / "r0" / "metrics.json").read_text())) == BENCHMARKS
    seed_dir = root / "data" / "seed"
    trained = read_jsonl(seed_dir / "round1.jsonl") + read_jsonl(seed_dir / "pool.jsonl")
    for name in ("heldout_unseen", "heldout_seen"):
        heldout = read_jsonl(seed_dir / f"{name}.jsonl")
        assert heldout and not {s["parent"] for s in heldout} & {s["parent"] for s in trained}
    unseen_tools = {t["name"] for s in read_jsonl(seed_dir / "heldout_unseen.jsonl") for t in s["tools"]}
    assert not unseen_tools & {t["name"] for s in trained for t in s["tools"]}

    next_round = read_jsonl(root / "data" / "rounds" / "r1" / "next.jsonl")
    assert next_round and all(s["round"] == 2 for s in next_round)
    composition = json.loads((root / "data" / "rounds" / "r1" / "metrics.json").read_text())["composition"]
    assert composition["total"] == len(next_round)
    # Every sample of round 1 has one probe record, and D_2 holds what the round's files add up to.
    rounds_dir = root / "data" / "rounds" / "r1"
    lines = {p: read_jsonl(p) for p in rounds_dir.glob("**/*.jsonl")}
    probe_ids = [r["id"] for r in lines[rounds_dir / "probe" / "ledger.jsonl"] if r["fate"] in ("kept", "rejected")]
    assert sorted(probe_ids) == sorted(s["id"] for s in read_jsonl(seed_dir / "round1.jsonl"))
    parts = sum(len(lines[rounds_dir / part]) for part in
                ("probe/high_ppl.jsonl", "judge/error_seeds.jsonl", "expand/samples.jsonl"))
    assembled = [r for r in lines[rounds_dir / "ledger.jsonl"] if r["fate"] in ("kept", "rejected")]
    assert len(assembled) == parts + composition["fresh"]
    assert len(next_round) == sum(r["fate"] == "kept" for r in assembled)

    report = (root / "eval" / "report.md").read_text()
    assert "iterative" in report and (root / "eval" / "plots" / "scores.png").stat().st_size > 1000
    scores = json.loads((root / "eval" / "scores.json").read_text())
    assert set(scores) == {"base", "sft", "iterative", "static"} and set(scores["static"]) == {"r1", "r2"}

    # A finished pipeline is a fast no-op.
    started = time.monotonic()
    again = repo.dvc("repro")
    assert "Data and pipelines are up to date" in again.stdout
    print(f"second dvc repro: {time.monotonic() - started:.2f} s")

    # A round-2-only param (this round's training overrides) touches round 2 only.
    # (`--dry` lists the stages whose own inputs changed; the round-2 evaluations follow them.)
    repo.update_params({"rounds": {"r2": {"train": {"max_steps": 2}}}})
    assert {"train_iterative@r2", "train_static@r2"} <= _would_run(repo) <= ROUND2_STAGES
    repo.git("checkout", "params.yaml")
    assert _would_run(repo) == set()

    # Everything DVC tracks goes to an S3 remote (dvc-s3, to the test's S3 server on 127.0.0.1);
    # a fresh clone pulls it and finds nothing to do.
    s3_bucket.add_remote(repo, "e2e", "looptool")
    repo.dvc("push")
    assert "in sync" in repo.dvc("status", "--cloud").stdout
    pushed = set(s3_bucket.keys("looptool/files/md5/"))
    for out in (root / "models" / "iterative" / "r2" / "model.safetensors",
                root / "data" / "rounds" / "r1" / "next.jsonl"):
        md5 = hashlib.md5(out.read_bytes()).hexdigest()
        assert f"looptool/files/md5/{md5[:2]}/{md5[2:]}" in pushed, out
    repo.git("add", "-A")
    repo.git("-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-qm", "pipeline outputs")
    clone = PipelineRepo(tmp_path / "clone")
    subprocess.run(["git", "clone", "-q", str(root), str(clone.root)], check=True)
    s3_bucket.add_credentials(clone, "e2e")  # .dvc/config.local (the keys) is not in git
    clone.dvc("pull")
    assert (clone.root / "models" / "iterative" / "r2" / "model.safetensors").is_file()
    assert read_jsonl(clone.root / "data" / "rounds" / "r1" / "next.jsonl") == next_round
    status = clone.dvc("status")
    assert "up to date" in status.stdout, status.stdout

    # An ablation as a queued experiment: run by DVC's queue worker in a copy of the repository,
    # listed by `dvc exp show`, and tracked in this repository's MLflow store.
    runs_before = _mlflow_runs(root)
    repo.dvc("exp", "run", "--queue", "-S", "ablation.edde=false")
    try:
        repo.dvc("queue", "start")
        _wait_for_queue(repo, timeout=600)
    finally:
        repo.dvc("queue", "stop", check=False)
    shown = json.loads(repo.dvc("exp", "show", "--json").stdout)
    experiments = [node for node in _walk(shown) if _param(node, "ablation", "edde") is False]
    assert experiments, "the queued experiment is not in `dvc exp show`"
    scores = experiments[0]["data"]["metrics"]["eval/scores.json"]["data"]
    assert "heldout_unseen_overall" in scores["iterative"]["r2"] and "bfcl_overall" in scores["static"]["r2"]
    assert _mlflow_runs(root) > runs_before  # the worker's stages logged to the repository's mlflow.db


def _metrics_files(root: Path) -> set[str]:
    from dvc.repo import Repo

    with Repo(str(root)) as dvc_repo:
        return {out.def_path for out in dvc_repo.index.outs if out.metric}


def _arm_steps(root: Path, metric: str) -> dict[str, list[int]]:
    query = ("select arm.value, m.step from tags kind join tags arm on arm.run_uuid = kind.run_uuid "
             "join metrics m on m.run_uuid = kind.run_uuid join runs r on r.run_uuid = kind.run_uuid "
             "where kind.key = 'looptool.kind' and kind.value = 'arm' and arm.key = 'arm' and m.key = ? "
             "and r.lifecycle_stage = 'active'")
    steps: dict[str, list[int]] = {}
    with sqlite3.connect(root / "mlflow.db") as db:
        for arm, step in db.execute(query, (metric,)):
            steps.setdefault(arm, []).append(step)
    return {arm: sorted(s) for arm, s in steps.items()}


def _mlflow_runs(root: Path) -> int:
    with sqlite3.connect(root / "mlflow.db") as db:
        return db.execute("select count(*) from runs").fetchone()[0]


def _wait_for_queue(repo: PipelineRepo, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = repo.dvc("queue", "status").stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            assert "Success" in status, status
            return
        time.sleep(5)
    raise AssertionError(f"queued experiment still running after {timeout} s:\n{status}")


def _walk(node):
    """Every dict in `dvc exp show --json` output that describes one commit or experiment."""
    if isinstance(node, dict):
        if "data" in node and isinstance(node["data"], dict) and "params" in node["data"]:
            yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _param(node: dict, *keys: str):
    value = ((node["data"].get("params") or {}).get("params.yaml") or {}).get("data") or {}
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value
