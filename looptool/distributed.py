"""Which process of a multi-process launch this is.

``accelerate launch`` and ``torchrun`` set ``RANK`` (global) and ``WORLD_SIZE`` in every process's
environment before Python starts, so these answers hold before any process group exists. Only the
main process (rank 0) writes shared files: merged checkpoints, metrics, MLflow runs.
"""

from __future__ import annotations

import os


def process_rank() -> int:
    """This process's global rank: 0 in a single-process run."""
    return int(os.environ.get("RANK", "0") or 0)


def world_size() -> int:
    """How many processes take part: 1 in a single-process run."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    return process_rank() == 0
