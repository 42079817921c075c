"""What SFT and GRPO share: LoRA config, device settings, input checks, resumable checkpoints,
MLflow logging of every logged step, and merging the adapter into a full checkpoint.

Under a multi-process launch (``accelerate launch``) every process trains, but only the main one
writes shared files (the checkpoint stamp, the merged model, deletions); the others wait for it at
a barrier (looptool.distributed), so they read a finished directory and exit after the outputs are
complete."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from looptool.chat import ChatTemplateError, check_chat_template
from looptool.distributed import is_main_process, wait_for_everyone
from looptool.io import content_hash, write_json
from looptool.models import MANIFEST
from looptool.tracking import log_metrics
from looptool.train.data import TrainingInputError

# Rolling trainer checkpoints live here, outside every DVC output: DVC deletes a stage's outs
# before running it, and checkpoints must survive a killed run to be resumed from.
CHECKPOINT_ROOT = Path("checkpoints")


def checkpoint_dir(name: str, root: Path = CHECKPOINT_ROOT) -> Path:
    """Where the rolling checkpoints of run ``name`` live (TRL's output_dir, ResumableRun's dir)."""
    return Path(root) / name
FINGERPRINT = "looptool_fingerprint.json"


@dataclass
class LoraParams:
    """LoRA adapter settings (PEFT's names)."""

    r: int = field(default=16, metadata={"help": "Adapter rank."})
    lora_alpha: int = field(default=32, metadata={"help": "Scaling numerator: the update is scaled by lora_alpha / r."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the adapter input."})
    target_modules: Any = field(default="all-linear", metadata={"help": "Module names to adapt, or 'all-linear'."})

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "LoraParams":
        from looptool.params import config_from_mapping

        return config_from_mapping(cls, params, "lora")

    def to_peft(self) -> Any:
        from peft import LoraConfig

        return LoraConfig(
            r=self.r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
            target_modules=self.target_modules, task_type="CAUSAL_LM",
        )


def device_settings(device: str, precision: str) -> dict[str, Any]:
    """TRL/transformers arguments for a device ('cpu' | 'cuda', see looptool.models.resolve_device)
    and a resolved precision ('float32' | 'bfloat16', looptool.models.ComputeConfig.resolve).

    bfloat16 means bf16 autocast over float32 master weights (``bf16=True``), on the CPU as on CUDA.
    On the CPU, gradient checkpointing stays off: at this scale it only costs time.
    """
    bf16 = precision == "bfloat16"
    if device == "cpu":
        return {"use_cpu": True, "bf16": bf16, "fp16": False, "activation_checkpointing": False}
    if device == "cuda":
        return {"use_cpu": False, "bf16": bf16}
    raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")


# TRL/transformers precision switches: LoopTool sets them from compute.precision (device_settings).
PRECISION_KEYS = frozenset({"bf16", "fp16"})


def trl_stage_config(cls: type, values: Any, where: str, trl_config: str) -> Any:
    """A training section: LoopTool's own keys (the fields of ``cls`` but ``trl``) parsed and
    type-checked, every other key kept in ``trl`` for TRL's ``trl_config`` class (names checked)."""
    import trl

    from looptool.params import ParamsError, fields_from_mapping

    values = dict(values or {})
    for key in PRECISION_KEYS & set(values):
        # device_settings sets them from compute.precision; a value here would be overridden silently.
        raise ParamsError(f"params.yaml {where}.{key}: set the precision with compute.precision "
                          "(auto | float32 | bfloat16) instead")
    own_names = {f.name for f in fields(cls)} - {"trl"}
    own = {k: v for k, v in values.items() if k in own_names}
    rest = {k: v for k, v in values.items() if k not in own_names}
    config = fields_from_mapping(cls, own, where)
    try:
        check_trl_keys(getattr(trl, trl_config), rest)
    except ValueError as err:
        raise ParamsError(f"params.yaml {where}: {err}") from None
    config.trl = rest
    return config


def check_trl_keys(config_cls: type, trl_params: dict[str, Any]) -> None:
    """Name the offending key when params hold one TRL's config does not know."""
    known = {f.name for f in fields(config_cls)}
    unknown = sorted(set(trl_params) - known)
    if unknown:
        raise ValueError(f"{config_cls.__name__} has no field(s) {unknown}; check the spelling in params.yaml")


def build_trl_config(config_cls: type, trl_params: dict[str, Any], **fixed: Any) -> Any:
    check_trl_keys(config_cls, trl_params)
    return config_cls(**{**trl_params, **fixed})


def check_model_dir(model_dir: Path, role: str) -> None:
    if not (model_dir / "config.json").is_file():
        raise TrainingInputError(
            f"{role} {model_dir} is missing (no config.json): the stage that produces it has not run or failed"
        )


def load_for_training(model_dir: Path, role: str, dtype: str = "float32") -> tuple[Any, Any]:
    """Model (weights in ``dtype``, see ComputeConfig.resolve_weights) + tokenizer, after checking
    the directory and the chat template (before any training)."""
    from looptool.models import load_model_and_tokenizer

    check_model_dir(model_dir, role)
    model, tokenizer = load_model_and_tokenizer(model_dir, dtype=dtype)
    try:
        check_chat_template(tokenizer)
    except ChatTemplateError as err:
        raise TrainingInputError(f"{role} {model_dir}: {err}") from None
    model.train()
    return model, tokenizer


def model_fingerprint(model_dir: Path) -> str:
    """Identity of a checkpoint: its manifest/config and the size + head of each weight file."""
    digest = hashlib.sha256()
    for path in sorted(model_dir.iterdir()):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(str(path.stat().st_size).encode())
            with path.open("rb") as handle:
                digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:16]


class ResumableRun:
    """A rolling checkpoint directory that is reused only by a run with identical inputs.

    The main process checks the stamp and clears stale checkpoints; the others wait for it, so every
    process then resumes from the same checkpoint (or none)."""

    def __init__(self, name: str, fingerprint: dict[str, Any], root: Path = CHECKPOINT_ROOT):
        self.dir = checkpoint_dir(name, root)
        self.fingerprint = content_hash(fingerprint)
        stamp = self.dir / FINGERPRINT
        if is_main_process():
            if self.dir.exists():
                previous = json.loads(stamp.read_text()).get("fingerprint") if stamp.is_file() else None
                if previous != self.fingerprint:
                    shutil.rmtree(self.dir)  # inputs changed: old checkpoints belong to another run
            self.dir.mkdir(parents=True, exist_ok=True)
            write_json(stamp, {"fingerprint": self.fingerprint, "inputs": fingerprint})
        wait_for_everyone()

    def last_checkpoint(self) -> str | None:
        from transformers.trainer_utils import get_last_checkpoint

        return get_last_checkpoint(str(self.dir))

    def finish(self) -> None:
        if is_main_process():
            shutil.rmtree(self.dir, ignore_errors=True)
        wait_for_everyone()


def train_or_restore(trainer: Any, resumable: ResumableRun, logger: "MlflowStepLogger") -> Any:
    """``trainer.train()`` resumed from the last rolling checkpoint; the train output, or None when
    that checkpoint is the run's final step and is restored instead (a stage that failed after
    training). Resuming there would make transformers run one step past ``max_steps`` (measured with
    GRPO on the tiny model: 3 steps for max_steps 2)."""
    last = resumable.last_checkpoint()
    if last is not None:
        from transformers import TrainerState

        state = TrainerState.load_from_json(str(Path(last) / "trainer_state.json"))
        if state.max_steps and state.global_step >= state.max_steps:
            trainer._load_from_checkpoint(last)  # the adapter weights of the final step
            trainer.state = state
            logger.history = [dict(h) for h in state.log_history]
            return None
    return trainer.train(resume_from_checkpoint=last)


def remove_checkpoints(name: str, root: Path = CHECKPOINT_ROOT) -> None:
    """Delete a finished run's rolling checkpoints (``ResumableRun(name).dir``). Stages call it last,
    after every output and the MLflow record are written: a failure before that resumes from the
    final checkpoint instead of retraining. Only the main process deletes; the others wait for it."""
    if is_main_process():
        shutil.rmtree(checkpoint_dir(name, root), ignore_errors=True)
    wait_for_everyone()


class MlflowStepLogger(TrainerCallback):
    """Sends every dict the trainer logs (reward, reward std, KL, entropy, lengths, lr, loss...)
    to the active MLflow run, at the trainer's global step."""

    def __init__(self, run: Any):
        self.run = run
        self.history: list[dict[str, Any]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102 (TrainerCallback API)
        if not logs:
            return
        self.history.append({"step": state.global_step, **logs})
        log_metrics(self.run, logs, step=state.global_step)


def merge_and_save(model: Any, tokenizer: Any, out_dir: Path, info: dict[str, Any], dtype: str | None = None) -> None:
    """Fold the LoRA adapter into the weights and write a plain checkpoint, atomically; ``dtype``
    ('float32' | 'bfloat16') casts the merged weights first (the adapter is merged at its own,
    usually higher, precision).

    Only the main process merges and writes (data-parallel steps leave every process with the same
    weights); the others wait until ``out_dir`` is complete."""
    if not is_main_process():
        wait_for_everyone()
        return
    out_dir = Path(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    merged = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    if dtype is not None:
        import torch

        merged = merged.to(getattr(torch, dtype))
        info = {**info, "dtype": dtype}
    merged.eval()
    merged.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    write_json(staging / MANIFEST, info)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(staging, out_dir)
    wait_for_everyone()
