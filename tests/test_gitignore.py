"""After a run, git sees only what a user commits: dvc.lock and the metrics files (issue 17 item 5).

Every output DVC caches must already be ignored by the committed .gitignore (DVC then writes no
.gitignore files of its own), and no metrics file may be ignored (it would never be committed).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _outputs() -> list[tuple[str, bool]]:
    """(path, cached) of every output of every stage of dvc.yaml, for-each stages expanded."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return sorted((out.def_path, bool(out.use_cache)) for out in repo.index.outs)


def _ignored(paths: list[str]) -> set[str]:
    """The paths git ignores; --no-index judges tracked and missing files by the patterns alone."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=ROOT, input="\n".join(paths),
                         capture_output=True, text=True)
    assert out.returncode in (0, 1), out.stderr  # 1: nothing ignored
    return set(out.stdout.split())


def test_cached_outputs_are_ignored_and_metrics_are_not() -> None:
    outputs = _outputs()
    assert any(cached for _, cached in outputs) and any(not cached for _, cached in outputs)
    ignored = _ignored([path for path, _ in outputs])
    assert [p for p, cached in outputs if cached and p not in ignored] == []
    assert [p for p, cached in outputs if not cached and p in ignored] == []


def test_inputs_next_to_outputs_stay_visible() -> None:
    # Committed inputs that sit beside outputs: a pattern too wide would hide a new one from git.
    inputs = ["data/starter/samples.jsonl", "data/trees/context_tree.yaml", "params.yaml", "dvc.lock",
              "eval/scores.json", "data/rounds/r1/metrics.json"]
    assert _ignored(inputs) == set()
