"""simulate with the real embedded llama.cpp server: killed half-way, re-run, no cached call repeated.

Runs the real stage (``python -m stages.simulate``) in a scratch workspace, sends it SIGTERM once
a few replies are cached, runs it again to the end, then a third time. The response cache stores
each reply with the time it was written and replaces the row if a request is ever answered again,
so unchanged timestamps prove the re-run answered those requests from the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from looptool.io import read_jsonl
from looptool.llm.server import llama_cpp_server_available

ROOT = Path(__file__).resolve().parents[1]
POOL = Path(__file__).parent / "data" / "synth" / "pool_small.jsonl"

pytestmark = [
    pytest.mark.server,
    pytest.mark.slow,
    pytest.mark.skipif(not llama_cpp_server_available(), reason="llama-cpp-python[server] is not installed"),
]


def cache_rows(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    with sqlite3.connect(path) as conn:
        try:
            return dict(conn.execute("SELECT key, created_at FROM responses").fetchall())
        except sqlite3.OperationalError:  # table not created yet
            return {}


def make_workspace(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    (work / "data" / "seed" / "apis").mkdir(parents=True)
    (work / "data" / "seed" / "imported").mkdir(parents=True)
    shutil.copy(POOL, work / "data" / "seed" / "apis" / "apis.jsonl")
    (work / "data" / "seed" / "imported" / "tools.jsonl").write_text("")
    params = {
        "seed": 0,
        "llm": {"backend": "embedded", "cache_path": "cache.sqlite", "max_retries": 1, "server": {"n_threads": 1}},
        "simulate": {"dialogues": 2, "tools_per_dialogue": [2, 2], "needs_per_dialogue": [1, 1],
                     "need_kind_weights": {"single_call": 1}, "assistant_samples": 1, "turn_retries": 1,
                     "tool_error_rate": 0.0, "concurrency": 1,
                     "max_tokens": {"planner": 120, "user": 50, "assistant": 80, "tool": 60, "reply": 40}},
    }
    with (work / "params.yaml").open("w") as handle:
        YAML().dump(params, handle)
    return work


def run_stage(work: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOOPTOOL_MLFLOW": "0"}
    return subprocess.Popen([sys.executable, "-m", "stages.simulate"], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def test_killed_simulate_resumes_without_repeating_cached_calls(tmp_path):
    work = make_workspace(tmp_path)
    cache = work / "cache.sqlite"
    first = run_stage(work)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and first.poll() is None and len(cache_rows(cache)) < 3:
        time.sleep(1)
    assert first.poll() is None, "the first run finished before it could be killed:\n" + first.stdout.read()
    first.send_signal(signal.SIGTERM)
    first.wait(60)
    assert first.returncode != 0
    assert not (work / "data" / "seed" / "dialogues" / "dialogues.jsonl").exists()
    before = cache_rows(cache)
    assert len(before) >= 3

    second = run_stage(work)
    output, _ = second.communicate(timeout=1500)
    assert second.returncode == 0, output
    after = cache_rows(cache)
    repeated = [key for key, stamp in before.items() if after.get(key) != stamp]
    assert repeated == [], f"{len(repeated)} cached requests were sent again"
    metrics = json.loads((work / "data" / "seed" / "dialogues" / "metrics.json").read_text())
    assert metrics["llm"]["cache_hits"] >= len(before)
    assert metrics["in"] == metrics["kept"] + metrics["rejected"] == 2
    ledger = read_jsonl(work / "data" / "seed" / "dialogues" / "ledger.jsonl")
    assert len(ledger) == 2
    dialogues_second = (work / "data" / "seed" / "dialogues" / "dialogues.jsonl").read_text()

    third = run_stage(work)
    output, _ = third.communicate(timeout=600)
    assert third.returncode == 0, output
    metrics = json.loads((work / "data" / "seed" / "dialogues" / "metrics.json").read_text())
    # Everything that succeeded before is answered from the cache; only requests that failed
    # (never cached) may be sent again.
    assert metrics["llm"]["calls"] <= metrics["llm"]["failures"] + metrics["llm"]["retries"]
    assert (work / "data" / "seed" / "dialogues" / "dialogues.jsonl").read_text() == dialogues_second
