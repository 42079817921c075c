"""Seconds per GRPO step: LoopTool's `train` stage code vs a bare TRL script, same settings, one run.

The bare side is what a researcher would write by hand: GRPOTrainer + LoRA + a reward function,
no checkpoint bookkeeping, no MLflow, no completion recording. Both sides train on the same
prompts from the same starting weights. The sides alternate (A B A B ...) so a slow patch of the
machine hits both, and each side reports its median step time over all repeats, leaving out each
run's first step (model warm-up).

    python benchmarks/bench_train.py                 # tiny random Llama (seconds per step)
    python benchmarks/bench_train.py --model models/sft --data data/seed/round1.jsonl --steps 4 \
        --num-generations 8 --batch 4 --precision bfloat16 --completion-length 96

``--data`` takes seed samples (the round-1 slice: real prompts, ~600 tokens with the compact tool
list); without it, eight one-tool weather prompts. ``--precision`` float32 | bfloat16 (bf16 autocast,
``compute.precision``). Besides seconds per step, both sides report tokens per step (prompt +
completion, from TRL's logged ``num_tokens``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LOOPTOOL_MLFLOW", "1")

from transformers import TrainerCallback  # noqa: E402

from looptool.io import write_jsonl  # noqa: E402

CITIES = ["Paris", "Rome", "Oslo", "Lima", "Kyoto", "Accra", "Quito", "Perth"]
TOOL = {"name": "get_weather", "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
                       "required": ["city"]}}


class StepTimer(TrainerCallback):
    """Seconds per optimizer step, and tokens per step from TRL's cumulative ``num_tokens`` log."""

    def __init__(self):
        self.times, self.tokens, self._start, self._seen = [], [], None, 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._start)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "num_tokens" in logs:
            self.tokens.append(float(logs["num_tokens"]) - self._seen)
            self._seen = float(logs["num_tokens"])


def samples() -> list[dict]:
    return [{"tools": [TOOL], "messages": [{"role": "user", "content": f"How warm is it in {c} right now?"}],
             "label": [{"name": "get_weather", "arguments": {"city": c}}]} for c in CITIES]


def settings(args) -> dict:
    return {"device": "cpu", "max_steps": args.steps, "num_generations": args.num_generations,
            "per_device_train_batch_size": args.batch,
            "gradient_accumulation_steps": max(1, args.num_generations // args.batch),
            "max_completion_length": args.completion_length, "learning_rate": 1e-5, "logging_steps": 1,
            "save_steps": 1000, "seed": 0, "temperature": 1.0}


LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear"}


def run_looptool(model_dir: Path, data: Path, out: Path, args) -> StepTimer:
    from looptool.llm.policy import GenerationSettings
    from looptool.models import ComputeConfig
    from looptool.tracking import mlflow_run
    from looptool.train.grpo import run_grpo

    timer = StepTimer()
    ours = {k: v for k, v in settings(args).items() if k != "max_completion_length"}  # ours: generation.max_new_tokens
    with mlflow_run("bench_train", params={"train": settings(args)}) as run:
        run_grpo(model_dir, data, out, {**ours, "reward": "binary", "max_prompt_length": 2048}, LORA,
                 run=run, checkpoint_name="bench", callbacks=[timer],
                 generation=GenerationSettings(max_new_tokens=args.completion_length),
                 compute=ComputeConfig(precision=args.precision))
    return timer


def run_bare(model_dir: Path, data_rows: list[dict], out: Path, args) -> StepTimer:
    """A plain TRL script with identical settings (the comparison baseline)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from looptool.toolcall import tool_call_reward
    from looptool.schema import label_from_json

    def reward(completions, label, **_):
        return [tool_call_reward(c, label_from_json(json.loads(lab))) for c, lab in zip(completions, label)]

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    cfg = settings(args)
    cfg.pop("device")
    config = GRPOConfig(output_dir=str(out), report_to="none", use_cpu=True, bf16=args.precision == "bfloat16",
                        fp16=False, **cfg)
    peft = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    timer = StepTimer()
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=Dataset.from_list(data_rows),
                          processing_class=tokenizer, peft_config=peft, callbacks=[timer])
    trainer.train()
    return timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model directory (default: build the tiny random Llama)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--completion-length", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data", type=Path, help="seed samples JSONL (default: eight one-tool prompts)")
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4, help="per-device micro-batch (completions per forward)")
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--sides", default="bare,looptool", help="comma-separated: bare, looptool")
    args = parser.parse_args()
    # Both paths are resolved before the chdir below, so relative ones name what the caller meant.
    data_source = args.data.resolve() if args.data else None
    model_dir = args.model.resolve() if args.model else None

    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    os.chdir(work)
    if model_dir is None:
        from looptool.models import build_tiny_llama

        model_dir = work / "tiny"
        build_tiny_llama(model_dir)
    from looptool.io import read_jsonl
    from looptool.models import load_model_and_tokenizer
    from looptool.schema import Sample
    from looptool.train.data import grpo_rows

    rows_in = read_jsonl(data_source) if data_source else samples()
    data = work / "data.jsonl"
    write_jsonl(data, rows_in)
    _, tokenizer = load_model_and_tokenizer(model_dir)
    rows, _ = grpo_rows([Sample.from_dict(s) for s in rows_in], tokenizer, None)

    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    times: dict[str, list[float]] = {s: [] for s in sides}
    tokens: dict[str, list[float]] = {s: [] for s in sides}
    for i in range(args.repeats):
        for side in sides:
            runner = run_bare if side == "bare" else run_looptool
            timer = runner(model_dir, rows if side == "bare" else data, work / f"{side}{i}", args)
            times[side] += timer.times[1:]
            tokens[side] += timer.tokens[1:]
    print(f"\nprecision {args.precision}, {args.num_generations} completions per step in micro-batches of {args.batch}")
    print(f"{'side':<12}{'median s/step':>15}{'tokens/step':>13}{'steps timed':>13}")
    medians = {}
    for side in sides:
        medians[side] = statistics.median(times[side])
        tok = statistics.median(tokens[side]) if tokens[side] else float("nan")
        print(f"{side:<12}{medians[side]:>15.3f}{tok:>13.0f}{len(times[side]):>13}")
    if len(medians) == 2:
        print(f"ratio looptool / bare = {medians['looptool'] / medians['bare']:.3f}")


if __name__ == "__main__":
    main()
