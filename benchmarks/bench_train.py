"""Seconds per GRPO step: LoopTool's `train` stage code vs a bare TRL script, same settings, one run.

The bare side is what a researcher would write by hand: GRPOTrainer + LoRA + a reward function,
no checkpoint bookkeeping, no MLflow, no completion recording. Both sides train on the same
prompts from the same starting weights. The sides alternate (A B A B ...) so a slow patch of the
machine hits both, and each side reports its median step time over all repeats, leaving out each
run's first step (model warm-up).

    python benchmarks/bench_train.py                 # tiny random Llama (seconds per step)
    python benchmarks/bench_train.py --model models/sft --steps 4 --completion-length 64
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
    def __init__(self):
        self.times, self._start = [], None

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._start)


def samples() -> list[dict]:
    return [{"tools": [TOOL], "messages": [{"role": "user", "content": f"How warm is it in {c} right now?"}],
             "label": [{"name": "get_weather", "arguments": {"city": c}}]} for c in CITIES]


def settings(args) -> dict:
    return {"device": "cpu", "max_steps": args.steps, "num_generations": 4, "per_device_train_batch_size": 4,
            "max_completion_length": args.completion_length, "learning_rate": 1e-5, "logging_steps": 1,
            "save_steps": 1000, "seed": 0, "temperature": 1.0}


LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear"}


def run_looptool(model_dir: Path, data: Path, out: Path, args) -> list[float]:
    from looptool.llm.policy import GenerationSettings
    from looptool.tracking import mlflow_run
    from looptool.train.grpo import run_grpo

    timer = StepTimer()
    ours = {k: v for k, v in settings(args).items() if k != "max_completion_length"}  # ours: generation.max_new_tokens
    with mlflow_run("bench_train", params={"train": settings(args)}) as run:
        run_grpo(model_dir, data, out, {**ours, "reward": "binary", "max_prompt_length": 2048}, LORA,
                 run=run, checkpoint_name="bench", callbacks=[timer],
                 generation=GenerationSettings(max_new_tokens=args.completion_length))
    return timer.times[1:]


def run_bare(model_dir: Path, data_rows: list[dict], out: Path, args) -> list[float]:
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
    config = GRPOConfig(output_dir=str(out), report_to="none", use_cpu=True, bf16=False, fp16=False, **cfg)
    peft = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    timer = StepTimer()
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=Dataset.from_list(data_rows),
                          processing_class=tokenizer, peft_config=peft, callbacks=[timer])
    trainer.train()
    return timer.times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model directory (default: build the tiny random Llama)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--completion-length", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    os.chdir(work)
    model_dir = args.model.resolve() if args.model else None
    if model_dir is None:
        from looptool.models import build_tiny_llama

        model_dir = work / "tiny"
        build_tiny_llama(model_dir)
    data = work / "data.jsonl"
    write_jsonl(data, samples())

    from looptool.models import load_model_and_tokenizer
    from looptool.schema import Sample
    from looptool.train.data import grpo_rows

    _, tokenizer = load_model_and_tokenizer(model_dir)
    rows, _ = grpo_rows([Sample.from_dict(s) for s in samples()], tokenizer, None)

    ours, bare = [], []
    for i in range(args.repeats):
        bare += run_bare(model_dir, rows, work / f"bare{i}", args)
        ours += run_looptool(model_dir, data, work / f"ours{i}", args)
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"\n{'side':<12}{'median s/step':>15}{'steps timed':>13}")
    print(f"{'bare TRL':<12}{b:>15.3f}{len(bare):>13}")
    print(f"{'looptool':<12}{o:>15.3f}{len(ours):>13}")
    print(f"ratio looptool / bare = {o / b:.3f}")


if __name__ == "__main__":
    main()
