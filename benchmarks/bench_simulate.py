"""Dialogues per minute of the `simulate` stage against the embedded llama.cpp server, at
concurrency 1 vs 4 (dialogue threads sharing one client).

Usage (from the repository root; needs llama-cpp-python[server]):

    python benchmarks/bench_simulate.py --dialogues 4 --out bench_simulate.json

No response cache is used, so every request reaches the server; each setting simulates the same
dialogue indices with the same seed, so both settings do the same work. DESIGN.md §5 measured the
llama.cpp server answering one request at a time, so little speed-up is expected from 4.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from looptool.io import read_jsonl, write_json
from looptool.ledger import Ledger
from looptool.llm.server import open_llm
from looptool.synth.dialogue import LLM_AGENTS, SimulationConfig, simulate_dialogues
from looptool.synth.validate import PoolEntry

DEFAULT_POOL = Path(__file__).resolve().parents[1] / "tests" / "data" / "synth" / "pool_small.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogues", type=int, default=4, help="dialogues per setting")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="settings to compare")
    parser.add_argument("--pool", type=Path, default=DEFAULT_POOL, help="API pool JSONL (PoolEntry rows)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp n_threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the results here as JSON")
    args = parser.parse_args()

    pool = read_jsonl(args.pool, PoolEntry.from_dict)
    results = []
    with open_llm({"backend": "embedded", "server": {"n_threads": args.threads}, "max_retries": 1, "cache_path": None}) as client:
        for concurrency in args.concurrency:
            cfg = SimulationConfig(dialogues=args.dialogues, tools_per_dialogue=[2, 3], needs_per_dialogue=[1, 1],
                                   assistant_samples=2, concurrency=concurrency, agents=dict(LLM_AGENTS))
            ledger = Ledger("bench_simulate")
            calls_before = client.usage.calls
            tokens_before = client.usage.completion_tokens
            started = time.monotonic()
            dialogues = simulate_dialogues(client, pool, cfg, args.seed, ledger)
            wall = time.monotonic() - started
            row = {
                "concurrency": concurrency, "dialogues_requested": args.dialogues, "dialogues_kept": len(dialogues),
                "wall_s": round(wall, 1), "dialogues_per_minute": round(args.dialogues / wall * 60, 3),
                "kept_dialogues_per_minute": round(len(dialogues) / wall * 60, 3),
                "http_calls": client.usage.calls - calls_before,
                "completion_tokens_per_s": round((client.usage.completion_tokens - tokens_before) / wall, 2),
                "rejected_by_reason": ledger.rejection_reasons(),
            }
            print(json.dumps(row), flush=True)
            results.append(row)
    if args.out:
        write_json(args.out, {"benchmark": "simulate", "pool": str(args.pool), "results": results})


if __name__ == "__main__":
    main()
