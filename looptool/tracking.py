"""MLflow conventions (DESIGN.md §7): one experiment; per pipeline invocation a parent run with the
stage runs nested under it, and per arm a run whose metrics are logged with ``step`` = round.

Layout of the experiment (``looptool`` unless ``LOOPTOOL_MLFLOW_EXPERIMENT`` says otherwise):

- a **pipeline** run (tag ``looptool.kind=pipeline``) per invocation of ``dvc repro`` / ``dvc exp run``,
  tagged with the DVC experiment name, the git revision and a hash of ``params.yaml``, holding the
  full params; stages of the same invocation find it by those tags (see :func:`invocation_key`);
- a **stage** run per (stage, arm, round) nested under it (``train/iterative/r2``, ...);
- an **arm** run per arm (``iterative``, ``static``, ``base``; tag ``looptool.kind=arm``) written by
  the report stage: scores, GRPO reward and data composition with ``step`` = round index (0 = the
  model both arms start from), so MLflow's chart view draws the arms over rounds. Arm runs point at
  their pipeline run with the tag ``looptool.pipeline_run`` rather than being nested: MLflow 3.17's
  runs table shows a parent collapsed, and its chart view draws no child until it is expanded.

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
import time
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
    """Nested mappings to dotted keys (``train.lr``), as MLflow params and `dvc exp show` columns
    name them; an empty mapping stays a value of its own."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
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


# Tag names; ``looptool.kind`` tells the three kinds of run apart (see the module docstring).
KIND_TAG = "looptool.kind"
PIPELINE_RUN_TAG = "looptool.pipeline_run"  # on arm runs: the id of their pipeline run
PIPELINE, STAGE, ARM = "pipeline", "stage", "arm"
# Experiment tag MLflow 3's UI reads to choose the experiment's first page: with this value it opens
# on the runs table instead of the GenAI overview (traces), which this project never writes.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def params_hash(text: str) -> str:
    """Short content hash of ``params.yaml``: two runs with the same hash ran the same params."""
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _is_dvc_command(argv: list[str]) -> bool:
    """``dvc ...``, ``python .../bin/dvc ...`` or ``python -m dvc ...``."""
    return any(Path(arg).name == "dvc" for arg in argv[:3])


def dvc_invocation(pid: int | None = None, proc: Path = Path("/proc")) -> str | None:
    """``<pid>-<start time>`` of the nearest ancestor process running DVC, read from ``/proc``.

    It tells one ``dvc repro`` / ``dvc exp run`` apart from the next even when git revision and
    params are the same (a re-run after editing code). None where there is no ``/proc`` or no DVC
    ancestor (a stage script run by hand).
    """
    pid = os.getppid() if pid is None else pid
    for _ in range(32):  # a guard against a cycle in a malformed tree
        if pid <= 1:
            return None
        try:
            argv = (proc / str(pid) / "cmdline").read_bytes().decode("utf-8", "replace").split("\0")
            stat = (proc / str(pid) / "stat").read_text()
        except OSError:
            return None
        # stat: "pid (comm) state ppid ... starttime(22nd field)"; comm may hold spaces, so split after ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if _is_dvc_command([a for a in argv if a]):
            return f"{pid}-{fields[19]}"
        pid = int(fields[1])
    return None


def invocation_tags(root: Path, params_file: Path = Path("params.yaml")) -> dict[str, str]:
    """The tags that identify this pipeline invocation; every stage of it computes the same ones."""
    tags = {
        KIND_TAG: PIPELINE,
        "dvc_experiment": os.environ.get("DVC_EXP_NAME") or "workspace",
        "git_revision": _git_revision(root) or "unknown",
        "params_hash": params_hash(params_file.read_text(encoding="utf-8")) if params_file.is_file() else "none",
    }
    invocation = dvc_invocation()
    if invocation:
        tags["dvc_invocation"] = invocation
    return tags


def pipeline_run_name(tags: Mapping[str, str]) -> str:
    """``<experiment> @ <revision>``: what the runs table shows for a parent run."""
    return f"{tags['dvc_experiment']} @ {tags['git_revision'][:7]}"


def _setup_experiment(mlflow: Any, root: Path) -> str:
    """Point MLflow at the repository's store and return the experiment id (created on first use)."""
    mlflow.set_tracking_uri(tracking_uri(root))
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        with contextlib.suppress(Exception):  # a concurrent stage may have created it meanwhile
            mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_location(root))
        experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment.tags.get(EXPERIMENT_KIND[0]) != EXPERIMENT_KIND[1]:
        mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, *EXPERIMENT_KIND)
    mlflow.set_experiment(experiment_id=experiment.experiment_id)
    return experiment.experiment_id


def _filter(tags: Mapping[str, str]) -> str:
    return " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())


def pipeline_run_id(mlflow: Any, experiment_id: str, root: Path) -> str:
    """The parent run of this invocation: found by its tags, created (with the full params) if new.

    ``LOOPTOOL_PARENT_RUN_ID`` names one explicitly instead.
    """
    explicit = os.environ.get("LOOPTOOL_PARENT_RUN_ID")
    if explicit:
        return explicit
    client = mlflow.MlflowClient()
    tags = invocation_tags(root)
    found = client.search_runs([experiment_id], filter_string=_filter(tags), max_results=1)
    if found:
        return found[0].info.run_id
    parent = client.create_run(experiment_id, run_name=pipeline_run_name(tags), tags=tags)
    params_file = Path("params.yaml")
    if params_file.is_file():
        import yaml

        _log_params(client, parent.info.run_id, yaml.safe_load(params_file.read_text(encoding="utf-8")) or {})
        client.log_artifact(parent.info.run_id, str(params_file))
    # Finished at once: a parent only groups its children, and a killed invocation leaves no run
    # marked as running forever.
    client.set_terminated(parent.info.run_id)
    return parent.info.run_id


def _log_params(client: Any, run_id: str, params: Mapping[str, Any]) -> None:
    """Params logged flat, values truncated to what MLflow accepts, in batches of its maximum size."""
    from mlflow.entities import Param

    items = [Param(k, str(v)[:_PARAM_VALUE_LIMIT]) for k, v in flatten(params).items()]
    for start in range(0, len(items), 100):  # MLflow caps a batch at 100 params
        client.log_batch(run_id, params=items[start : start + 100])


@contextlib.contextmanager
def mlflow_run(
    stage: str,
    *,
    arm: str | None = None,
    round: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Iterator[Any]:
    """Start a stage run nested under this invocation's pipeline run (yields the ``mlflow`` module),
    or yield ``None`` when tracking is off.

    Params are logged flat and truncated; the full nested params go in as ``params.json``.
    Under a multi-process launch only the main process logs (the others yield ``None``).
    """
    if not tracking_enabled() or not is_main_process():
        yield None
        return
    import mlflow

    root = repo_root()
    experiment_id = _setup_experiment(mlflow, root)
    parent = pipeline_run_id(mlflow, experiment_id, root)
    tags = {KIND_TAG: STAGE, "stage": stage, "arm": arm, "round": round, "git_revision": _git_revision(root),
            "dvc_experiment": os.environ.get("DVC_EXP_NAME"), "mlflow.parentRunId": parent}
    name = "/".join(x for x in (stage, arm, round) if x)
    with mlflow.start_run(run_name=name, tags={k: v for k, v in tags.items() if v}) as active:
        if params:
            _log_params(mlflow.MlflowClient(), active.info.run_id, params)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "params.json"
                path.write_text(json.dumps(params, indent=2, default=str))
                mlflow.log_artifact(str(path))
        yield mlflow


def log_round_series(series: Mapping[str, Mapping[int, Mapping[str, float]]]) -> dict[str, str]:
    """One run per arm for this invocation's pipeline run, each metric logged with step = round
    index; returns {arm: run id}. Arm runs an earlier run of the report left for the same pipeline
    run are deleted first, so a re-run replaces them rather than doubling every point.

    ``series``: {arm: {round index: {metric: value}}} (looptool.report.round_series).
    """
    if not tracking_enabled() or not is_main_process():
        return {}
    import mlflow
    from mlflow.entities import Metric

    root = repo_root()
    experiment_id = _setup_experiment(mlflow, root)
    parent = pipeline_run_id(mlflow, experiment_id, root)
    client = mlflow.MlflowClient()
    old = client.search_runs([experiment_id], filter_string=_filter({KIND_TAG: ARM, PIPELINE_RUN_TAG: parent}))
    for run in old:
        client.delete_run(run.info.run_id)
    experiment_name = os.environ.get("DVC_EXP_NAME") or "workspace"
    ids: dict[str, str] = {}
    for arm, steps in series.items():
        # The experiment's name in the run name: a chart's legend then tells sweep points apart.
        run = client.create_run(experiment_id, run_name=f"{arm} · {experiment_name}",
                                tags={KIND_TAG: ARM, "arm": arm, "dvc_experiment": experiment_name,
                                      PIPELINE_RUN_TAG: parent})
        now = int(time.time() * 1000)
        points = [Metric(key, float(value), now, int(step)) for step, metrics in sorted(steps.items())
                  for key, value in metrics.items() if value is not None]
        for start in range(0, len(points), 1000):  # MLflow caps a batch at 1000 metrics
            client.log_batch(run.info.run_id, metrics=points[start : start + 1000])
        client.set_terminated(run.info.run_id)
        ids[arm] = run.info.run_id
    return ids


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


# The runs table filtered to the arm runs: the chart view then draws only arms over rounds.
ARM_FILTER = f"tags.`{KIND_TAG}` = '{ARM}'"


def chart_view_url(base_url: str, root: Path | None = None) -> str:
    """The experiment's arm runs in MLflow's chart view (each a line over rounds), or the UI's
    home page when the store holds no experiment yet."""
    uri = tracking_uri(root)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return base_url  # nothing logged yet (and opening the store would create it)
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return base_url
    from urllib.parse import quote

    return (f"{base_url.rstrip('/')}/#/experiments/{experiment.experiment_id}/runs?compareRunsMode=CHART"
            f"&searchFilter={quote(ARM_FILTER, safe='')}")


if __name__ == "__main__":  # `python -m looptool.tracking http://127.0.0.1:5000`: where `make ui` opens
    import sys

    print(chart_view_url(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000"))
