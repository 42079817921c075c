"""Held-out accuracy of the two tool-list renderings (issue 15 item 1): same SFT, same items.

    python benchmarks/compare_tool_formats.py [--seen-per-category 10] [--out FILE]

For each of ``base_model.tool_format`` json and compact: the embedded base model with LoopTool's
template in that format, SFT on the round-1 seed slice with the params.yaml settings, then greedy
exact match on all of ``heldout_unseen`` and a seeded, stratified part of ``heldout_seen`` (the same
items for both).
Prints each accuracy with n and its 95% Wilson interval, and the paired difference (exact McNemar).
Needs the seed data (``dvc repro build_samples``). A measurement script, not a test (~25 min here).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seen-per-category", type=int, default=10, help="heldout_seen items per category")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seed-dir", type=Path, default=REPO_ROOT / "data" / "seed",
                        help="where build_samples wrote round1.jsonl and the held-out sets")
    args = parser.parse_args()

    from looptool.eval.runner import BenchmarkSpec, EvalRunConfig, evaluate_model
    from looptool.eval.stats import paired_comparison, wilson_interval
    from looptool.llm.policy import GenerationSettings
    from looptool.models import prepare_base_model
    from looptool.params import load_params, section_config
    from looptool.train.sft import run_sft

    params = load_params(REPO_ROOT / "params.yaml")
    generation = section_config(params, "generation", GenerationSettings)
    seed_dir = args.seed_dir
    specs = [BenchmarkSpec(name, per_category=size, options={"path": str(seed_dir / f"{name}.jsonl")})
             for name, size in (("heldout_unseen", None), ("heldout_seen", args.seen_per_category))]
    run = EvalRunConfig(max_new_tokens=generation.max_new_tokens, batch_size=16, max_steps_per_turn=4)
    outcomes: dict[str, dict[str, dict[str, bool]]] = {}
    report: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("json", "compact"):
            started = time.monotonic()
            base, sft = Path(tmp) / f"base-{fmt}", Path(tmp) / f"sft-{fmt}"
            prepare_base_model("embedded", base, chat_template="looptool", tool_format=fmt)
            summary = run_sft(base, seed_dir / "round1.jsonl", sft, params["sft"], params["lora"],
                              checkpoint_name=f"compare_tool_formats/{fmt}")
            results = evaluate_model(sft, specs, run, seed=0, backend="hf")
            report[fmt] = {"sft_seconds": summary["seconds"], "wall_s": round(time.monotonic() - started, 1)}
            for name, (_, scores) in results.items():
                items = {f"{c}/{i}": ok for c, block in scores.outcomes().items() for i, ok in block.items()}
                outcomes.setdefault(name, {})[fmt] = items
                correct = sum(items.values())
                low, high = wilson_interval(correct, len(items))
                report[fmt][name] = {"correct": correct, "n": len(items), "accuracy": correct / len(items),
                                     "ci95": [round(low, 3), round(high, 3)], "overall": scores.summary["overall"]}
                print(f"{fmt:8s} {name}: {correct}/{len(items)} = {100 * correct / len(items):.1f}% "
                      f"[{100 * low:.1f}, {100 * high:.1f}] (mean over need kinds {100 * scores.summary['overall']:.1f}%)",
                      flush=True)
    for name, by_format in outcomes.items():
        paired = paired_comparison(by_format["compact"], by_format["json"]).to_dict()
        report.setdefault("paired_compact_vs_json", {})[name] = paired
        print(f"{name}: compact - json = {100 * paired['difference']:+.1f} pp on n={paired['n']} "
              f"(compact only {paired['a_only']}, json only {paired['b_only']}, exact McNemar p={paired['p_value']:.3g})")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
