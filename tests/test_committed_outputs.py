"""Outputs in git come from a full run of the committed params, or are not committed (issue 14 item 15).

DVC records, per stage, the params it ran with and the hash of every output (``dvc.lock``). A
committed metrics file that no committed ``dvc.lock`` accounts for, or a lock whose params differ
from ``params.yaml``, would show numbers that the committed configuration does not produce.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUTPUT_ROOTS = ("eval/", "data/seed/", "data/rounds/", "models/")


def tracked_files(root: Path) -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return out.splitlines()


def _lookup(params: dict, dotted: str):
    value = params
    for part in dotted.split("."):
        value = value[part]
    return value


def stale_outputs(root: Path) -> list[str]:
    """What the committed files say that the committed params would not reproduce."""
    files = tracked_files(root)
    outputs = [f for f in files if f.startswith(OUTPUT_ROOTS) and not f.endswith((".gitignore", ".md"))]
    if "dvc.lock" not in files:
        return [f"{f} is committed without the dvc.lock of the run that wrote it" for f in outputs]
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    params = yaml.safe_load((root / "params.yaml").read_text())
    problems = []
    recorded: dict[str, str] = {}
    for name, stage in lock.items():
        for key, value in ((stage.get("params") or {}).get("params.yaml") or {}).items():
            try:
                current = _lookup(params, key)
            except (KeyError, TypeError):
                current = "<absent>"
            if current != value:
                problems.append(f"dvc.lock {name} ran with {key}={value!r}; params.yaml says {current!r}")
        for out in stage.get("outs") or []:
            recorded[out["path"]] = out.get("md5")
    for f in outputs:
        if f not in recorded:
            problems.append(f"{f} is committed but no stage in dvc.lock wrote it")
        elif hashlib.md5((root / f).read_bytes()).hexdigest() != recorded[f]:
            problems.append(f"{f} differs from the output dvc.lock records")
    return problems


def test_the_check_finds_a_lock_that_ran_other_params(tmp_path):
    repo = tmp_path / "repo"
    (repo / "eval" / "base").mkdir(parents=True)
    (repo / "params.yaml").write_text("eval: {max_new_tokens: 80}\n")
    metrics = repo / "eval" / "base" / "metrics.json"
    metrics.write_text("{}\n")
    lock = {"schema": "2.0", "stages": {"eval_base": {
        "params": {"params.yaml": {"eval.max_new_tokens": 96}},
        "outs": [{"path": "eval/base/metrics.json", "md5": hashlib.md5(b"{}\n").hexdigest()}]}}}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    assert stale_outputs(repo) == ["dvc.lock eval_base ran with eval.max_new_tokens=96; params.yaml says 80"]
    subprocess.run(["git", "rm", "-q", "--cached", "dvc.lock"], cwd=repo, check=True)
    assert stale_outputs(repo) == ["eval/base/metrics.json is committed without the dvc.lock of the run that wrote it"]


def test_committed_outputs_match_the_committed_params():
    assert stale_outputs(ROOT) == []
