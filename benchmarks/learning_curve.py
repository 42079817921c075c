"""Learning curve of one training round: greedy exact match on held-out and training samples during SFT or GRPO.

    python benchmarks/learning_curve.py --stage grpo --model models/sft --data data/seed/round1.jsonl \
        --heldout data/seed/heldout.jsonl --every 2 [--set max_steps=14 --set learning_rate=1e-4] \
        [--out curve.json]

Trains exactly as the `sft` / `train` stage does (the `sft` or `train` section of params.yaml and
`lora`, with --set overrides, through ``run_sft`` / ``run_grpo``) and, every ``--every`` optimizer
steps, greedy-decodes the held-out and the training samples with the model being trained (LoRA
adapter attached, no merge) and scores them with GCP's own ``probe``: the binary tool-call reward,
i.e. the `heldout` benchmark's metric. Decoding uses generation.max_new_tokens.

Answers "does this round's training move the greedy answers, on the prompts it trained on and on
unseen ones?" without a DVC run per setting. A measurement script, not a test: on the CPU machine
each GRPO step costs about a minute and each scoring pass about 2.5 s per sample.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs, values read as YAML (``1e-4`` -> float, ``true`` -> bool)."""
    import yaml

    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        overrides[key] = yaml.safe_load(value)
    return overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=["sft", "grpo"], default="grpo")
    parser.add_argument("--model", required=True, help="model the round starts from (base for sft, sft for grpo)")
    parser.add_argument("--data", required=True, help="training samples (JSONL)")
    parser.add_argument("--heldout", default="data/seed/heldout.jsonl")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the sft/train section (repeatable)")
    parser.add_argument("--every", type=int, default=2, help="score every N optimizer steps (and at step 0)")
    parser.add_argument("--out", help="write the curve as JSON here")
    args = parser.parse_args()

    from transformers import TrainerCallback

    from looptool.io import read_jsonl, write_json
    from looptool.llm.policy import HFPolicyEngine
    from looptool.loop.probe import probe
    from looptool.llm.policy import GenerationSettings
    from looptool.params import load_params, section_config
    from looptool.schema import Sample

    params = load_params(args.params)
    heldout = read_jsonl(args.heldout, Sample.from_dict)
    train = read_jsonl(args.data, Sample.from_dict)
    generation = section_config(params, "generation", GenerationSettings)
    curve: list[dict[str, Any]] = []

    def score(model: Any, tokenizer: Any, step: int) -> None:
        started = time.perf_counter()
        engine = HFPolicyEngine(model, tokenizer)
        point = {"step": step}
        for name, samples in (("heldout", heldout), ("train", train)):
            results = probe(engine, samples, generation)
            point[name] = sum(r.mastered for r in results) / len(results)
        point["seconds"] = round(time.perf_counter() - started, 1)
        curve.append(point)
        print(f"step {step}: held-out {point['heldout']:.3f} ({len(heldout)}), train {point['train']:.3f} "
              f"({len(train)})", flush=True)

    class ScoreEvery(TrainerCallback):
        def on_train_begin(self, args_, state, control, model=None, processing_class=None, **_):
            score(model, processing_class, state.global_step)
            model.train()

        def on_step_end(self, args_, state, control, model=None, processing_class=None, **_):
            if state.global_step % args.every == 0 or state.global_step == state.max_steps:
                score(model, processing_class, state.global_step)
                model.train()

    overrides = parse_overrides(args.set)
    lora = params["lora"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model"
        if args.stage == "sft":
            from looptool.train.sft import run_sft

            cfg = {k: v for k, v in {**params["sft"], **overrides}.items() if k != "enabled"}
            result = run_sft(Path(args.model), Path(args.data), out, cfg, lora,
                             checkpoint_name="learning_curve/sft", callbacks=[ScoreEvery()])
        else:
            from looptool.train.grpo import run_grpo

            cfg = {**params["train"], **overrides}
            result = run_grpo(Path(args.model), Path(args.data), out, cfg, lora, generation=generation,
                              checkpoint_name="learning_curve/grpo", callbacks=[ScoreEvery()])
    summary = {k: v for k, v in result.items() if k not in ("history", "completions")}
    report = {"stage": args.stage, "model": args.model, "data": args.data, "heldout": args.heldout,
              "overrides": overrides, "summary": summary, "curve": curve}
    print(json.dumps(report, indent=2))
    if args.out:
        write_json(Path(args.out), report)


if __name__ == "__main__":
    main()
