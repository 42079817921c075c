"""Prompt length with each tool rendering of LoopTool's template (issue 15 item 1).

    python benchmarks/bench_prompts.py [--seed-files data/seed/round1.jsonl ...] [--bfcl-per-category 40]

Tokens per prompt (SmolLM2 tokenizer) with ``base_model.tool_format: json`` and ``compact``, on
the seed samples (the prompts SFT, GRPO and probing see) and on BFCL v3 simple / multiple prompts
(what evaluation sees), and the share of each prompt the tool list takes. A measurement script,
not a test; it decodes nothing.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed-files", nargs="*", type=Path,
                        default=[REPO_ROOT / "data" / "seed" / n for n in ("round1.jsonl", "heldout_unseen.jsonl",
                                                                           "heldout_seen.jsonl", "pool.jsonl")])
    parser.add_argument("--bfcl-per-category", type=int, default=40)
    parser.add_argument("--out", type=Path, help="write the numbers as JSON here")
    args = parser.parse_args()

    from looptool.chat import render_prompt
    from looptool.eval import bfcl
    from looptool.io import read_jsonl
    from looptool.models import load_gguf_tokenizer, prepare_tokenizer
    from looptool.schema import Sample

    json_tok = prepare_tokenizer(load_gguf_tokenizer(), "looptool", "json")
    compact_tok = prepare_tokenizer(copy.deepcopy(json_tok), "looptool", "compact")
    sets: dict[str, list[tuple[list, list]]] = {}
    samples = [s for path in args.seed_files if path.is_file() for s in read_jsonl(path, Sample.from_dict)]
    if samples:
        sets["seed samples"] = [(s.tools, s.messages) for s in samples]
    for category in ("simple", "multiple"):
        entries = bfcl.load_entries(category)[: args.bfcl_per_category]
        sets[f"BFCL {category}"] = [bfcl.build_prompt(e) for e in entries]

    results = {}
    for name, prompts in sets.items():
        row = {"prompts": len(prompts)}
        for label, tokenizer in (("json", json_tok), ("compact", compact_tok)):
            full = [len(tokenizer(render_prompt(tokenizer, m, t))["input_ids"]) for t, m in prompts]
            bare = [len(tokenizer(render_prompt(tokenizer, m, []))["input_ids"]) for t, m in prompts]
            row[label] = {"mean_tokens": round(statistics.mean(full), 1), "median_tokens": statistics.median(full),
                          "tool_share": round(1 - sum(bare) / sum(full), 3)}
        row["compact_over_json"] = round(row["compact"]["mean_tokens"] / row["json"]["mean_tokens"], 3)
        results[name] = row
        print(f"{name} ({row['prompts']} prompts): json {row['json']['mean_tokens']} tokens "
              f"(tools {100 * row['json']['tool_share']:.0f}%), compact {row['compact']['mean_tokens']} "
              f"(tools {100 * row['compact']['tool_share']:.0f}%), ratio {row['compact_over_json']}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
