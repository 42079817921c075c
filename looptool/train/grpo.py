"""One GRPO round (TRL GRPOTrainer + LoRA) with the binary tool-call reward, merged into a checkpoint."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from looptool.distributed import sum_over_processes
from looptool.llm.policy import GenerationSettings, stop_token_ids
from looptool.models import ComputeConfig, resolve_device
from looptool.params import as_config
from looptool.toolcall import prompt_opens_thinking, split_thinking
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
from looptool.train.data import grpo_rows, load_samples
from looptool.train.rewards import get_reward


@dataclass
class GrpoStageConfig:
    """params.yaml ``train`` (with a round's ``rounds.<key>.train`` overrides): LoopTool's own keys;
    every other key goes to TRL's ``GRPOConfig`` unchanged (``trl``)."""

    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda."})
    reward: str = field(default="binary", metadata={
        "help": "binary (the paper's) | partial (F1 over calls; an ablation, never the default)."})
    max_prompt_length: int | None = field(default=2048, metadata={
        "help": "Longer prompts are left out (counted): a cut tool list teaches wrong calls."})
    log_completion_groups: int = field(default=2, metadata={
        "help": "Groups of completions kept per logging step (MLflow artifact)."})
    trl: dict[str, Any] = field(default_factory=dict, metadata={"help": "GRPOConfig fields (the section's other keys)."})

    @classmethod
    def from_params_mapping(cls, values: Any, where: str = "train") -> "GrpoStageConfig":
        from looptool.params import ParamsError

        if "max_completion_length" in (values or {}):
            raise ParamsError(f"params.yaml {where}.max_completion_length: the rollout budget is "
                              "generation.max_new_tokens (one budget for rollouts, probing and evaluation)")
        return trl_stage_config(cls, values, where, "GRPOConfig")


class CompletionRecorder:
    """Wraps a reward function to keep a few groups of (prompt, completion, reward) per logging
    interval, so a person can read what the model actually wrote at each stage of a round."""

    def __init__(self, reward_fn: Any, every: int, groups: int, group_size: int, stop_ids: Any = ()):
        self.reward_fn = reward_fn
        self.stop_ids = frozenset(stop_ids)  # a completion not ending on one of them was cut off
        self.__name__ = getattr(reward_fn, "__name__", "reward")  # TRL names metrics after it
        self.every, self.limit = max(1, every), groups * group_size
        self.records: list[dict[str, Any]] = []
        self._last_step = -1
        # Rollouts that wrote a think block, and those whose block the length limit left open.
        self.thinking = {"completions": 0, "with_think": 0, "think_unclosed": 0}

    def __call__(self, prompts, completions, label, trainer_state=None, **kwargs):
        rewards = self.reward_fn(prompts=prompts, completions=completions, label=label, stop_ids=self.stop_ids, **kwargs)
        for prompt, completion in zip(prompts, completions):
            split = split_thinking(completion if isinstance(completion, str) else "",
                                   isinstance(prompt, str) and prompt_opens_thinking(prompt))
            self.thinking["completions"] += 1
            self.thinking["with_think"] += split.thinking
            self.thinking["think_unclosed"] += not split.closed
        step = trainer_state.global_step if trainer_state is not None else 0
        if step % self.every == 0 and step != self._last_step:
            self._last_step = step
            for prompt, completion, lab, reward in list(zip(prompts, completions, label, rewards))[: self.limit]:
                self.records.append({
                    "step": step, "prompt_tail": prompt[-400:], "completion": completion,
                    "label": json.loads(lab), "reward": reward,
                })
        return rewards


def merged_rollout_trainer() -> type:
    """TRL's GRPOTrainer whose transformers rollouts run with the LoRA adapter merged into the weights.

    Unmerged, every decode step runs each adapted linear layer plus its two adapter matmuls and
    dropout: measured here on SmolLM2 (8 completions, ~490-token prompt) 0.25 s per decode step
    unmerged against about 0.1 s for the plain model. Merging before the rollouts and unmerging
    after costs milliseconds and computes the same policy (minus the adapter dropout that TRL's
    rollouts, run in training mode, would otherwise sample). vLLM rollouts and sharded models
    (DeepSpeed, FSDP) keep TRL's own path.
    """
    from trl import GRPOTrainer

    class MergedRolloutGRPOTrainer(GRPOTrainer):
        def _generate_single_turn(self, *args: Any, **kwargs: Any) -> Any:
            model = self.accelerator.unwrap_model(self.model)
            merge = (hasattr(model, "merge_adapter") and not self.use_vllm
                     and not self.is_deepspeed_enabled and not self.is_fsdp_enabled)
            if not merge:
                return super()._generate_single_turn(*args, **kwargs)
            model.merge_adapter()
            try:
                return super()._generate_single_turn(*args, **kwargs)
            finally:
                model.unmerge_adapter()

    return MergedRolloutGRPOTrainer


def run_grpo(
    model_dir: Path,
    data_path: Path,
    out_dir: Path,
    section: GrpoStageConfig | dict[str, Any],
    lora: LoraParams | dict[str, Any],
    run: Any = None,
    checkpoint_name: str = "grpo",
    callbacks: list[Any] | None = None,
    keep_checkpoints: bool = False,
    generation: GenerationSettings | None = None,
    compute: ComputeConfig | None = None,
) -> dict[str, Any]:
    """One round: GRPO from ``model_dir`` on ``data_path``; merged result in ``out_dir``.

    Completions get the pipeline's one budget (``generation.max_new_tokens``, TRL's
    ``max_completion_length``) and stop at the end of the turn, as probing and evaluation do.

    Returns a summary with the per-step log history (reward, reward_std, frac_reward_zero_std...).
    """
    from datasets import Dataset
    from trl import GRPOConfig

    cfg = as_config(GrpoStageConfig, section, "train")
    trl_params = cfg.trl
    lora_params = as_config(LoraParams, lora, "lora")
    reward_fn = get_reward(cfg.reward)
    samples = load_samples(data_path)
    device = resolve_device(cfg.device)
    compute = compute or ComputeConfig()
    precision, weights = compute.resolve(device), compute.resolve_weights(device)
    model, tokenizer = load_for_training(Path(model_dir), "previous round model", dtype=weights)
    rows, prompt_stats = grpo_rows(samples, tokenizer, cfg.max_prompt_length)

    generation = generation or GenerationSettings()
    # The TRL config first: building it starts the process group of a multi-process launch, which
    # ResumableRun's barrier (the main process clears stale checkpoints, the others wait) uses.
    config = build_trl_config(
        GRPOConfig, trl_params,
        output_dir=str(checkpoint_dir(checkpoint_name)), report_to="none", save_strategy="steps", save_total_limit=2,
        max_completion_length=generation.max_new_tokens, **device_settings(device, precision),
    )
    resumable = ResumableRun(checkpoint_name, {
        "model": model_fingerprint(Path(model_dir)), "data": [s.id for s in samples],
        "train": dataclasses.asdict(cfg), "lora": dataclasses.asdict(lora_params),
        "generation": dataclasses.asdict(generation), "precision": precision,
        "weights": weights,
    })
    recorder = CompletionRecorder(
        reward_fn, every=config.logging_steps, groups=cfg.log_completion_groups,
        group_size=config.num_generations, stop_ids=stop_token_ids(tokenizer, getattr(model, "generation_config", None)),
    )
    logger = MlflowStepLogger(run)
    trainer = merged_rollout_trainer()(
        model=model, reward_funcs=[recorder], args=config, train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer, peft_config=lora_params.to_peft(), callbacks=[logger, *(callbacks or [])],
    )
    started = time.perf_counter()
    train_or_restore(trainer, resumable, logger)
    seconds = time.perf_counter() - started
    history = [h for h in logger.history if "reward" in h]
    thinking = sum_over_processes(recorder.thinking)  # each process scored its own share of the rollouts
    summary = {
        "samples": len(samples), "trained_on": prompt_stats.kept, "dropped_too_long": prompt_stats.too_long,
        "steps": trainer.state.global_step, "seconds": round(seconds, 1), "precision": precision, "weights": weights,
        "seconds_per_step": round(seconds / max(1, trainer.state.global_step), 2),
        "reward_mean": _mean(h["reward"] for h in history),
        "frac_reward_zero_std_mean": _mean(h.get("frac_reward_zero_std", 0.0) for h in history),
        "rollouts_with_think": thinking["with_think"],
        "rollouts_think_unclosed": thinking["think_unclosed"],
    }
    merge_and_save(trainer.model, tokenizer, Path(out_dir), {"source": "grpo", "from": str(model_dir), **summary},
                   dtype=weights)
    if not keep_checkpoints:  # a stage keeps them until it has written everything (remove_checkpoints)
        resumable.finish()
    return {**summary, "history": logger.history, "completions": recorder.records}


def _mean(values) -> float:
    values = [float(v) for v in values]
    return round(sum(values) / len(values), 4) if values else 0.0
