"""DVC stage `train@<arm>-<round>`: one GRPO round from the previous round's model -> models/<arm>/<round>."""

from __future__ import annotations

import argparse
from dataclasses import asdict
import tempfile
from pathlib import Path

from looptool.distributed import is_main_process
from looptool.io import write_json, write_jsonl
from looptool.params import config_from_mapping, load_params, round_train_values, section_config
from looptool.tracking import log_metrics, mlflow_run
from looptool.llm.policy import GenerationSettings
from looptool.models import ComputeConfig
from looptool.train.common import LoraParams, remove_checkpoints
from looptool.train.grpo import GrpoStageConfig, run_grpo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--arm", required=True, choices=["iterative", "static"])
    parser.add_argument("--round", required=True, help="round key, e.g. r1")
    parser.add_argument("--model-in", required=True, type=Path, help="previous round's merged model")
    parser.add_argument("--data", required=True, type=Path, help="this round's training samples (JSONL)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--metrics", required=True, type=Path, help="summary JSON (DVC metrics)")
    parser.add_argument("--curve", required=True, type=Path, help="per-step reward log (DVC plots)")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    cfg = config_from_mapping(GrpoStageConfig, round_train_values(params, args.round), f"train (round {args.round})")
    lora = section_config(params, "lora", LoraParams)
    generation = section_config(params, "generation", GenerationSettings)
    compute = section_config(params, "compute", ComputeConfig)
    checkpoints = f"train/{args.arm}/{args.round}"
    with mlflow_run("train", arm=args.arm, round=args.round, params={"train": asdict(cfg), "lora": asdict(lora), "generation": asdict(generation),
                                                                   "compute": asdict(compute)}) as run:
        result = run_grpo(args.model_in, args.data, args.out, cfg, lora, run=run, checkpoint_name=checkpoints,
                          keep_checkpoints=True, generation=generation, compute=compute)
        summary = {k: v for k, v in result.items() if k not in ("history", "completions")}
        log_metrics(run, summary, prefix="summary/")
        if run is not None and result["completions"]:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "completions.jsonl"
                write_jsonl(path, result["completions"])
                run.log_artifact(str(path))
    curve = [
        {"step": h["step"], "reward": h["reward"], "reward_std": h.get("reward_std"),
         "frac_reward_zero_std": h.get("frac_reward_zero_std"), "kl": h.get("kl"), "entropy": h.get("entropy"),
         "completion_length": h.get("completions/mean_length")}
        for h in result["history"] if "reward" in h
    ]
    if is_main_process():  # under a multi-process launch the others wait in remove_checkpoints
        write_json(args.curve, curve)
        write_json(args.metrics, summary)
    remove_checkpoints(checkpoints)  # last: a failure above resumes from the final checkpoint
    if is_main_process():
        print(f"train {args.arm}/{args.round}: {summary}")


if __name__ == "__main__":
    main()
