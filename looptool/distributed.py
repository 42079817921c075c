"""Which process of a multi-process launch this is.

``accelerate launch`` and ``torchrun`` set ``RANK`` (global) and ``WORLD_SIZE`` in every process's
environment before Python starts, so these answers hold before any process group exists. Only the
main process (rank 0) writes shared files: merged checkpoints, metrics, MLflow runs.
"""

from __future__ import annotations

import os
from typing import Any


def process_rank() -> int:
    """This process's global rank: 0 in a single-process run."""
    return int(os.environ.get("RANK", "0") or 0)


def world_size() -> int:
    """How many processes take part: 1 in a single-process run."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    return process_rank() == 0


def _process_group() -> Any:
    """torch.distributed, with the process group up: the one the trainer's ``TrainingArguments``
    created (accelerate's ``PartialState``), or one started here the same way when no trainer has run
    yet (gloo under ``accelerate launch --cpu``). None in a single-process run."""
    if world_size() <= 1:
        return None
    import torch.distributed as dist

    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world_size()} but this torch build has no torch.distributed")
    if not dist.is_initialized():
        from accelerate import PartialState

        PartialState(cpu=os.environ.get("ACCELERATE_USE_CPU", "false").lower() in ("1", "true", "yes"))
    if not dist.is_initialized():
        raise RuntimeError(f"WORLD_SIZE={world_size()} but no torch.distributed process group could be "
                           "started: run multi-process stages with `accelerate launch` (or torchrun)")
    return dist


def wait_for_everyone() -> None:
    """Barrier: every process waits here until all have arrived (a no-op in a single-process run).
    The main process writes shared files before it; the others read them after it."""
    dist = _process_group()
    if dist is not None:
        dist.barrier()


def sum_over_processes(counts: dict[str, int]) -> dict[str, int]:
    """Integer counters added up over all processes (unchanged in a single-process run): each rank
    sees only its own share of the rollouts."""
    dist = _process_group()
    if dist is None or not counts:
        return dict(counts)
    import torch

    keys = sorted(counts)
    tensor = torch.tensor([int(counts[k]) for k in keys], dtype=torch.int64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return {**counts, **dict(zip(keys, (int(v) for v in tensor.tolist())))}
