"""Time scoring of every single-turn BFCL v3 entry (3,641 predictions) on this machine.

Writes the benchmark's own first possible answers (empty call lists for the relevance categories)
as a predictions file, then times reading it and scoring it, data loading included (the data is
read from the installed bfcl-eval package on first use). Run:

    python benchmarks/bench_eval.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from looptool.eval import bfcl, get_benchmark, read_predictions, score_predictions  # noqa: E402
from looptool.eval.gold import gold_calls  # noqa: E402


def write_gold_predictions(path: Path) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for category in bfcl.SINGLE_TURN_CATEGORIES:
            answers = bfcl.load_possible_answers(category)
            for entry in bfcl.iter_entries(category):
                if category in bfcl.AST_CATEGORIES:
                    calls = gold_calls(entry, answers[entry["id"]], bfcl.category_language(category))
                else:
                    calls = [] if "irrelevance" in category else [{"name": entry["function"][0]["name"], "arguments": {}}]
                handle.write(json.dumps({"id": entry["id"], "calls": calls, "raw": ""}) + "\n")
                count += 1
    bfcl._entries.cache_clear()  # time the data loading as part of scoring
    bfcl._answers.cache_clear()
    return count


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "predictions.jsonl"
        count = write_gold_predictions(path)
        start = time.perf_counter()
        benchmark = get_benchmark("bfcl-v3")
        predictions = read_predictions(path, is_known_id=lambda i: benchmark.category_of(i) is not None)
        report = score_predictions(benchmark, predictions, categories=list(bfcl.SINGLE_TURN_CATEGORIES))
        elapsed = time.perf_counter() - start
    correct = sum(s.correct for s in report.categories.values())
    total = sum(s.total for s in report.categories.values())
    print(f"scored {count} single-turn predictions in {elapsed:.2f} s ({correct}/{total} correct)")


if __name__ == "__main__":
    main()
