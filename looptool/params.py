"""Reading ``params.yaml``: every knob of the pipeline, one section per stage (DVC convention).

Each section is parsed once into a typed config: a dataclass whose fields carry the section's keys,
their defaults and help text (``looptool.params.SECTIONS`` says which class reads which section).
A key the class does not know, or a value of the wrong type, is an error that names the section
and the key, before any work starts. Stages read their settings only from these objects.

The dataclass field default is the one place a default lives. ``params.yaml`` states every key
with that same value (tests/test_params.py checks it), so a sweep (``dvc exp run -S``) has a key to
set and DVC sees each value.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ruamel.yaml import YAML

DEFAULT_PARAMS = Path("params.yaml")
T = TypeVar("T")

# Section -> the typed config that reads it ("module:Class"). Imported lazily: a stage imports only
# the configs it uses (and dvc.yaml lists only those modules as its deps).
SECTIONS: dict[str, str] = {
    "base_model": "looptool.models:BaseModelConfig",
    "compute": "looptool.models:ComputeConfig",
    "llm": "looptool.llm.server:LLMConfig",
    "capabilities": "looptool.synth.concepts:CapabilitiesConfig",
    "synth_apis": "looptool.synth.pipeline:SynthApisConfig",
    "import_tools": "looptool.synth.pipeline:ImportToolsConfig",
    "simulate": "looptool.synth.dialogue:SimulationConfig",
    "verify_seed": "looptool.synth.pipeline:VerifySeedConfig",
    "build_samples": "looptool.synth.pipeline:BuildSamplesConfig",
    "lora": "looptool.train.common:LoraParams",
    "sft": "looptool.train.sft:SftStageConfig",
    "train": "looptool.train.grpo:GrpoStageConfig",
    "eval": "looptool.eval.runner:EvalConfig",
    "generation": "looptool.llm.policy:GenerationSettings",
    "ablation": "looptool.params:AblationConfig",
    "probe": "looptool.loop.probe:ProbeConfig",
    "judge": "looptool.loop.judge:JudgeConfig",
    "expand": "looptool.loop.expand:ExpandConfig",
    "assemble": "looptool.loop.assemble:AssembleConfig",
}
# Top-level keys that are not sections of a stage's settings.
PIPELINE_KEYS = ("seed", "launcher", "rounds", "static_rounds", "evolve")


class ParamsError(ValueError):
    """A params section or key is missing, unknown or has the wrong type."""


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found; run stages from the repository root (as `dvc repro` does)")
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: the top level must be a mapping of sections")
    unknown = sorted(set(data) - set(SECTIONS) - set(PIPELINE_KEYS))
    if unknown:
        raise ParamsError(f"{path}: unknown section(s) {unknown}; known: {sorted({*SECTIONS, *PIPELINE_KEYS})}")
    return data


def section_config(params: Mapping[str, Any], name: str, cls: type[T]) -> T:
    """Section ``name`` of the loaded params as a ``cls`` instance (see the module docstring)."""
    value = params.get(name)
    if not isinstance(value, Mapping):
        raise ParamsError(f"params.yaml has no '{name}' section (a mapping); see the README for the defaults")
    return config_from_mapping(cls, value, name)


def config_from_mapping(cls: type[T], values: Mapping[str, Any] | None, where: str, base: T | None = None) -> T:
    """Build the dataclass ``cls`` from a mapping, over ``base`` (default: the class defaults).

    Unknown keys and values of the wrong type raise :class:`ParamsError` naming ``where.key``. A
    field holding a dataclass is read from a nested mapping the same way, over the field's default;
    a mapping-valued field whose metadata says ``merge`` takes the given keys over its default (so
    ``max_tokens: {user: 90}`` changes one entry and keeps the others); other mappings are replaced.
    """
    if hasattr(cls, "from_params_mapping") and base is None:
        return cls.from_params_mapping(values or {}, where)  # a class with its own layout (e.g. flattened)
    return fields_from_mapping(cls, values, where, base)


def fields_from_mapping(cls: type[T], values: Mapping[str, Any] | None, where: str, base: T | None = None) -> T:
    """:func:`config_from_mapping` on the class's own fields (what a ``from_params_mapping`` layout calls)."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ParamsError(f"params.yaml {where} must be a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ParamsError(f"params.yaml {where}: unknown key(s) {unknown}; known: {sorted(known)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        default = getattr(base, name) if base is not None else _field_default(known[name])
        merge = bool(known[name].metadata.get("merge"))
        kwargs[name] = _read_value(value, hints[name], default if merge or dataclasses.is_dataclass(default) else None,
                                   f"{where}.{name}")
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ParamsError(f"params.yaml {where}: {err}") from None


def as_config(cls: type[T], value: T | Mapping[str, Any] | None, where: str) -> T:
    """``value`` if it already is a ``cls``, else parsed from its mapping (library callers' convenience)."""
    return value if isinstance(value, cls) else config_from_mapping(cls, value, where)


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _read_value(value: Any, annotation: Any, default: Any, where: str) -> Any:
    members = _members(annotation)
    if value is None:
        if type(None) in members or annotation is Any:
            return None
        raise ParamsError(f"params.yaml {where} must not be null (expected {_type_name(annotation)})")
    for member in members:
        if dataclasses.is_dataclass(member) and isinstance(value, Mapping):
            base = default if dataclasses.is_dataclass(default) else None
            return config_from_mapping(member, value, where, base=base)
    for member in members:
        ok, converted = _matches(value, member, default)
        if ok:
            return converted
    raise ParamsError(f"params.yaml {where}: expected {_type_name(annotation)}, got {value!r}")


def _matches(value: Any, annotation: Any, default: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(annotation) or annotation
    if annotation is Any:
        return True, value
    if origin is bool:
        return isinstance(value, bool), value
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if origin is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool), float(value) if isinstance(value, (int, float)) else value
    if origin is str:
        return isinstance(value, str), value
    if origin in (list, tuple):
        return isinstance(value, (list, tuple)), origin(value) if isinstance(value, (list, tuple)) else value
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            return False, value
        return True, {**default, **value} if isinstance(default, Mapping) and default else dict(value)
    if isinstance(origin, type):
        return isinstance(value, origin), value
    return True, value


def _type_name(annotation: Any) -> str:
    return " or ".join("null" if m is type(None) else getattr(m, "__name__", str(m)) for m in _members(annotation))


def pipeline_seed(params: Mapping[str, Any]) -> int:
    """The top-level ``seed`` (every seeded draw of the pipeline derives from it)."""
    seed = params.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ParamsError(f"params.yaml seed must be an integer, got {seed!r}")
    return seed


# ------------------------------------------------------------------------------------ sections
@dataclass
class AblationConfig:
    """Switches of the data-evolution modules; each is a sweep point (``-S ablation.edde=false``)."""

    high_ppl: bool = field(default=True, metadata={
        "help": "Keep only high-perplexity mastered samples; false keeps every mastered one."})
    jglv: bool = field(default=True, metadata={
        "help": "Judge every mismatch; false: no judge, every mismatch is an error seed, no label corrected."})
    edde: bool = field(default=True, metadata={"help": "Error-driven expansion of the error seeds."})
    fresh_seed: bool = field(default=True, metadata={"help": "Add a fresh slice of unused seed samples."})


@dataclass
class RoundSpec:
    """One GRPO round of ``rounds`` (or ``static_rounds`` / ``evolve``)."""

    data: str | None = field(default=None, metadata={"help": "The round's training set (JSONL)."})
    start: str | None = field(default=None, metadata={"help": "The model it starts from (the YAML key is `from`)."})
    train: dict[str, Any] = field(default_factory=dict, metadata={"help": "Overrides of the train section."})
    prev: str | None = field(default=None, metadata={
        "help": "The round whose assembled data this one trains on (default: the previous key)."})


def round_specs(params: Mapping[str, Any], name: str) -> dict[str, RoundSpec]:
    """``rounds`` / ``static_rounds`` / ``evolve`` as {round key: RoundSpec}, keys checked."""
    value = params.get(name) or {}
    if not isinstance(value, Mapping):
        raise ParamsError(f"params.yaml {name} must be a mapping of round keys (r1, r2, ...)")
    specs = {}
    for key, spec in value.items():
        if not isinstance(key, str):
            # DVC's foreach silently drops stages whose keys are bare numbers.
            raise ParamsError(f"params.yaml {name}: round key {key!r} must be a string like 'r1'")
        spec = dict(spec or {})
        if "from" in spec:
            spec["start"] = spec.pop("from")
        if "train" in spec and not isinstance(spec["train"], Mapping):
            raise ParamsError(f"{name}.{key}.train must be a mapping of train keys, got {type(spec['train']).__name__}")
        specs[key] = config_from_mapping(RoundSpec, spec, f"{name}.{key}")
    return specs


def is_final_model(params: Mapping[str, Any], arm: str, round_key: str) -> bool:
    """The models the costly public benchmarks run on (``eval.benchmarks.<name>.models: final``):
    the base model, SFT, and each arm's last round.

    The last round is the one that builds no next-round data: not in ``evolve`` (every round but the
    last), so an eval stage depends on ``evolve`` and not on all of ``rounds`` (a change to round 2's
    training must not re-run round 1's evaluation). Without ``evolve``, the last key of ``rounds``."""
    if arm in ("base", "sft"):
        return True
    if "evolve" in params:
        return round_key not in round_specs(params, "evolve")
    rounds = list(round_specs(params, "rounds"))
    return bool(rounds) and round_key == rounds[-1]


def round_train_values(params: Mapping[str, Any], round_key: str) -> dict[str, Any]:
    """The ``train`` section with the round's own overrides applied (``rounds.<key>.train``).

    Example: ``rounds: {r2: {..., train: {max_steps: 20}}}`` trains round 2 longer and leaves
    every other round (and its DVC stages) untouched.
    """
    train = params.get("train")
    if not isinstance(train, Mapping):
        raise ParamsError("params.yaml has no 'train' section (a mapping); see the README for the defaults")
    rounds = round_specs(params, "rounds")
    if round_key not in rounds:
        raise ParamsError(f"params.yaml rounds has no round {round_key!r}; known: {sorted(rounds)}")
    return {**train, **rounds[round_key].train}
