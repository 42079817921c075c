"""Reading ``params.yaml``: every knob of the pipeline, one section per stage (DVC convention)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

DEFAULT_PARAMS = Path("params.yaml")


class ParamsError(ValueError):
    """A params section or key is missing or has the wrong type."""


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found; run stages from the repository root (as `dvc repro` does)")
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: the top level must be a mapping of sections")
    return data


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    """One stage's section, with an error that names it when it is missing."""
    value = params.get(name)
    if not isinstance(value, dict):
        raise ParamsError(f"params.yaml has no '{name}' section (a mapping); see the README for the defaults")
    return value


def round_train_config(params: dict[str, Any], round_key: str) -> dict[str, Any]:
    """The ``train`` section with the round's own overrides applied (``rounds.<key>.train``).

    Example: ``rounds: {r2: {..., train: {max_steps: 20}}}`` trains round 2 longer and leaves
    every other round (and its DVC stages) untouched.
    """
    cfg = dict(section(params, "train"))
    spec = (params.get("rounds") or {}).get(round_key)
    if spec is None:
        raise ParamsError(f"params.yaml rounds has no round {round_key!r}; known: {sorted(params.get('rounds') or {})}")
    overrides = spec.get("train") if isinstance(spec, dict) else None
    if overrides is not None and not isinstance(overrides, dict):
        raise ParamsError(f"rounds.{round_key}.train must be a mapping of train keys, got {type(overrides).__name__}")
    cfg.update(overrides or {})
    return cfg
