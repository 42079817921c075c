"""MLflow conventions (DESIGN.md §7): one experiment, one run per (stage, arm, round), tagged.

The store defaults to ``sqlite:///<repo root>/mlflow.db`` with artifacts in ``<repo root>/mlartifacts``,
resolved to absolute paths, so runs executed by ``dvc exp run --queue`` (which work in temporary
copies under ``.dvc/tmp/exps``) land in the same store as runs made in the work tree.
``MLFLOW_TRACKING_URI`` overrides it; ``LOOPTOOL_MLFLOW=0`` turns tracking off.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from looptool.distributed import is_main_process

EXPERIMENT = os.environ.get("LOOPTOOL_MLFLOW_EXPERIMENT", "looptool")
_PARAM_VALUE_LIMIT = 500  # MLflow rejects longer param values; full params go in as an artifact


def repo_root(start: Path | None = None) -> Path:
    """The repository the run belongs to; a DVC experiment's temp copy maps back to its origin."""
    path = (start or Path.cwd()).resolve()
    parts = path.parts
    for i in range(len(parts) - 3):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    for candidate in (path, *path.parents):
        if (candidate / "dvc.yaml").is_file() or (candidate / ".git").exists():
            return candidate
    return path


def tracking_enabled() -> bool:
    return os.environ.get("LOOPTOOL_MLFLOW", "1").lower() not in ("0", "false", "no", "off")


def tracking_uri(root: Path | None = None) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root(root) / 'mlflow.db'}"


def artifact_location(root: Path | None = None) -> str:
    return (repo_root(root) / "mlartifacts").as_uri()


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _git_revision(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


@contextlib.contextmanager
def mlflow_run(
    stage: str,
    *,
    arm: str | None = None,
    round: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Iterator[Any]:
    """Start a tagged run (yields the ``mlflow`` module), or yield ``None`` when tracking is off.

    Params are logged flat and truncated; the full nested params go in as ``params.json``.
    Under a multi-process launch only the main process logs (the others yield ``None``).
    """
    if not tracking_enabled() or not is_main_process():
        yield None
        return
    import mlflow

    root = repo_root()
    mlflow.set_tracking_uri(tracking_uri(root))
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        with contextlib.suppress(Exception):  # a concurrent stage may have created it meanwhile
            mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_location(root))
    mlflow.set_experiment(EXPERIMENT)
    tags = {"stage": stage, "arm": arm, "round": round, "git_revision": _git_revision(root),
            "dvc_experiment": os.environ.get("DVC_EXP_NAME")}
    parent = os.environ.get("LOOPTOOL_PARENT_RUN_ID")
    if parent:
        tags["mlflow.parentRunId"] = parent
    name = "/".join(x for x in (stage, arm, round) if x)
    with mlflow.start_run(run_name=name, tags={k: v for k, v in tags.items() if v}):
        if params:
            flat = {k: str(v)[:_PARAM_VALUE_LIMIT] for k, v in flatten(params).items()}
            items = list(flat.items())
            for start in range(0, len(items), 100):  # MLflow caps a batch at 100 params
                mlflow.log_params(dict(items[start : start + 100]))
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "params.json"
                path.write_text(json.dumps(params, indent=2, default=str))
                mlflow.log_artifact(str(path))
        yield mlflow


def log_metrics(run: Any, metrics: Mapping[str, Any], step: int | None = None, prefix: str = "") -> None:
    """Log the numeric entries of ``metrics`` (flattened) to an active run; no-op when ``run`` is None."""
    if run is None:
        return
    numeric = {
        f"{prefix}{k}".replace("@", "_at_"): float(v)
        for k, v in flatten(metrics).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    if numeric:
        run.log_metrics(numeric, step=step)
