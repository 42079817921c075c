"""DVC stage `sft`: LoRA SFT warm-up of the base model on the round-1 seed slice -> models/sft."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from looptool.distributed import is_main_process, wait_for_everyone
from looptool.io import write_json
from looptool.models import BaseModelConfig, ComputeConfig
from looptool.params import load_params, section_config
from looptool.tracking import log_metrics, mlflow_run
from looptool.train.common import LoraParams, remove_checkpoints
from looptool.train.sft import SftStageConfig, run_sft, sft_enabled, skip_sft


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--base", default="models/base", type=Path)
    parser.add_argument("--data", default="data/seed/round1.jsonl", type=Path)
    parser.add_argument("--out", default="models/sft", type=Path)
    parser.add_argument("--metrics", default="eval/sft/train.json", type=Path)
    args = parser.parse_args(argv)

    params = load_params(args.params)
    cfg = section_config(params, "sft", SftStageConfig)
    lora = section_config(params, "lora", LoraParams)
    source = section_config(params, "base_model", BaseModelConfig).source
    compute = section_config(params, "compute", ComputeConfig)
    if not sft_enabled(cfg.enabled, source):
        if is_main_process():
            summary = skip_sft(args.base, args.out)
        wait_for_everyone()
    else:
        with mlflow_run("sft", params={"sft": asdict(cfg), "lora": asdict(lora), "compute": asdict(compute)}) as run:
            summary = run_sft(args.base, args.data, args.out, cfg, lora, run=run, keep_checkpoints=True, compute=compute)
            log_metrics(run, summary, prefix="summary/")
    if is_main_process():  # under a multi-process launch the others wait in remove_checkpoints
        write_json(args.metrics, summary)
    remove_checkpoints("sft")  # last: a failure above resumes from the final checkpoint
    if is_main_process():
        print(f"sft: {summary}")


if __name__ == "__main__":
    main()
