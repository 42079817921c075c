"""SFT warm-up (TRL SFTTrainer + LoRA, loss on completion tokens only), merged into a checkpoint.

Measured: untrained SmolLM2-135M almost never writes a correct call, so a binary reward gives
GRPO no signal; a short SFT on seed samples fixes that. Models that already call tools (the
paper's Qwen3 setting) skip it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from looptool.models import MANIFEST, ComputeConfig, resolve_device
from looptool.params import as_config
from looptool.train.common import (
    LoraParams,
    MlflowStepLogger,
    ResumableRun,
    build_trl_config,
    checkpoint_dir,
    device_settings,
    load_for_training,
    merge_and_save,
    model_fingerprint,
    train_or_restore,
    trl_stage_config,
)
from looptool.train.data import TrainingInputError, load_samples, sft_rows


@dataclass
class SftStageConfig:
    """params.yaml ``sft``: LoopTool's own keys; every other key of the section goes to TRL's
    ``SFTConfig`` unchanged (``trl``; TRL's own defaults apply to the keys not given)."""

    enabled: bool | str = field(default="auto", metadata={
        "help": "auto: on for the embedded/tiny base models (weak at tool calls), off for your own; or true/false."})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda."})
    trl: dict[str, Any] = field(default_factory=dict, metadata={"help": "SFTConfig fields (the section's other keys)."})

    @classmethod
    def from_params_mapping(cls, values: Any, where: str = "sft") -> "SftStageConfig":
        return trl_stage_config(cls, values, where, "SFTConfig")


def sft_enabled(setting: Any, base_source: str) -> bool:
    """'auto' warms up the models we build (weak at tool calls) and leaves a user's model alone."""
    if setting == "auto":
        return base_source in ("embedded", "tiny-random")
    if isinstance(setting, bool):
        return setting
    raise ValueError(f"sft.enabled must be true, false or 'auto', got {setting!r}")


def run_sft(
    base_dir: Path,
    data_path: Path,
    out_dir: Path,
    section: SftStageConfig | dict[str, Any],
    lora: LoraParams | dict[str, Any],
    run: Any = None,
    checkpoint_name: str = "sft",
    callbacks: list[Any] | None = None,
    keep_checkpoints: bool = False,
    compute: ComputeConfig | None = None,
) -> dict[str, Any]:
    """Train a LoRA adapter on ``data_path`` from ``base_dir`` and write the merged model to ``out_dir``."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    cfg = as_config(SftStageConfig, section, "sft")
    trl_params = cfg.trl
    lora_params = as_config(LoraParams, lora, "lora")
    samples = load_samples(data_path)
    device = resolve_device(cfg.device)
    compute = compute or ComputeConfig()
    precision, weights = compute.resolve(device), compute.resolve_weights(device)
    model, tokenizer = load_for_training(Path(base_dir), "base model", dtype=weights)
    rows = sft_rows(samples, tokenizer)
    max_length = trl_params.get("max_length", SFTConfig.__dataclass_fields__["max_length"].default)  # TRL's default
    lengths = [len(tokenizer(r["prompt"] + r["completion"], add_special_tokens=False)["input_ids"]) for r in rows]
    kept = [r for r, n in zip(rows, lengths) if n <= max_length]
    if not kept:
        raise TrainingInputError(f"every sample is longer than sft.max_length={max_length} tokens")

    # The TRL config first: building it starts the process group of a multi-process launch, which
    # ResumableRun's barrier (the main process clears stale checkpoints, the others wait) uses.
    config = build_trl_config(
        SFTConfig, trl_params,
        output_dir=str(checkpoint_dir(checkpoint_name)), report_to="none", save_strategy="steps", save_total_limit=2,
        completion_only_loss=True, dataset_num_proc=None, **device_settings(device, precision),
    )
    resumable = ResumableRun(checkpoint_name, {
        "model": model_fingerprint(Path(base_dir)), "data": [s.id for s in samples],
        "sft": dataclasses.asdict(cfg), "lora": dataclasses.asdict(lora_params), "precision": precision,
        "weights": weights,
    })
    logger = MlflowStepLogger(run)
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=Dataset.from_list(kept), processing_class=tokenizer,
        peft_config=lora_params.to_peft(), callbacks=[logger, *(callbacks or [])],
    )
    started = time.perf_counter()
    result = train_or_restore(trainer, resumable, logger)
    seconds = time.perf_counter() - started
    losses = [h["loss"] for h in logger.history if "loss" in h]
    summary = {
        "samples": len(samples), "trained_on": len(kept), "dropped_too_long": len(rows) - len(kept),
        "steps": trainer.state.global_step, "train_loss": result.training_loss if result is not None else (sum(losses) / len(losses) if losses else None),
        "seconds": round(seconds, 1), "precision": precision, "weights": weights,
        # SFT's cost per sample on this machine: seconds per sample and epoch (issue 15 item 3).
        "seconds_per_sample_epoch": round(seconds / (len(kept) * trainer.state.epoch), 2) if trainer.state.epoch else None,
        # Tokens per epoch: SFT cost on the CPU grows with it (issue 15 asks for the cost per sample).
        "tokens_per_epoch": sum(n for n in lengths if n <= max_length),
    }
    merge_and_save(trainer.model, tokenizer, Path(out_dir), {"source": "sft", "base": str(base_dir), **summary},
                   dtype=weights)
    if not keep_checkpoints:  # a stage keeps them until it has written everything (remove_checkpoints)
        resumable.finish()
    return summary


def skip_sft(base_dir: Path, out_dir: Path) -> dict[str, Any]:
    """SFT off: the output is the base model itself (hard-linked), so later stages need no branch."""
    from looptool.models import prepare_base_model

    prepare_base_model(str(base_dir), Path(out_dir), chat_template="model")
    summary = {"skipped": True, "base": str(base_dir)}
    from looptool.io import write_json

    write_json(Path(out_dir) / MANIFEST, {"source": "sft", **summary})
    return summary
