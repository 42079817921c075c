"""Context and constraint trees (versioned data under ``data/trees/``) and seeded path sampling.

The context tree says what a tool does (domain -> sub-domain -> capability); the constraint tree
says how it must look (naming style, parameter count, type mix, required ratio, value format,
return shape). One draw from each, merged, is an :class:`ApiSpec`: the request the generator turns
into a tool definition. The spec is fully decided here, by a seeded RNG, so the generator's job
shrinks to writing names, descriptions and enum values inside a schema built from the spec.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from looptool.io import DataError

PARAM_KINDS = ("string", "integer", "number", "boolean", "enum", "array", "object")
CONSTRAINT_BRANCHES = ("naming_style", "parameter_count", "type_mix", "required_ratio", "value_format", "return_shape")


def _load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "tree file not found")
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise DataError(path, "a tree file must hold a mapping")
    return data


@dataclass(frozen=True)
class ContextPath:
    domain: str
    subdomain: str
    capability: str


@dataclass
class ContextTree:
    version: int
    domains: dict[str, dict[str, list[str]]]

    @classmethod
    def load(cls, path: str | Path) -> "ContextTree":
        data = _load_yaml(path)
        domains = data.get("domains")
        if not isinstance(domains, dict) or not domains:
            raise DataError(path, "context tree needs a non-empty 'domains' mapping")
        for domain, subs in domains.items():
            if not isinstance(subs, dict) or not subs:
                raise DataError(path, f"domain {domain!r} needs a mapping of sub-domains")
            for sub, leaves in subs.items():
                if not isinstance(leaves, list) or not leaves or not all(isinstance(x, str) and x.strip() for x in leaves):
                    raise DataError(path, f"{domain}/{sub}: capabilities must be a non-empty list of strings")
        return cls(version=int(data.get("version", 1)), domains=domains)

    def leaves(self) -> list[ContextPath]:
        return [ContextPath(d, s, c) for d, subs in self.domains.items() for s, caps in subs.items() for c in caps]

    def sample(self, rng: random.Random) -> ContextPath:
        """Uniform over domains first, then sub-domains, then capabilities: small domains are not starved."""
        domain = rng.choice(sorted(self.domains))
        sub = rng.choice(sorted(self.domains[domain]))
        return ContextPath(domain, sub, rng.choice(self.domains[domain][sub]))


@dataclass
class ConstraintTree:
    version: int
    branches: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, path: str | Path) -> "ConstraintTree":
        data = _load_yaml(path)
        branches = {}
        for name in CONSTRAINT_BRANCHES:
            options = data.get(name)
            if not isinstance(options, dict) or not options:
                raise DataError(path, f"constraint tree needs a non-empty '{name}' mapping")
            branches[name] = options
        for style, pattern in branches["naming_style"].items():
            try:
                re.compile(pattern)
            except re.error as err:
                raise DataError(path, f"naming style {style!r}: bad regular expression ({err})") from None
        for name, bounds in branches["parameter_count"].items():
            if not (isinstance(bounds, list) and len(bounds) == 2 and 1 <= bounds[0] <= bounds[1]):
                raise DataError(path, f"parameter_count {name!r} must be [min, max] with 1 <= min <= max")
        for name, fmt in branches["value_format"].items():
            if not isinstance(fmt, dict) or not isinstance(fmt.get("hint"), str):
                raise DataError(path, f"value_format {name!r} needs a 'hint' string (and optional 'keywords')")
        for name, kinds in branches["type_mix"].items():
            bad = [k for k in kinds if k not in PARAM_KINDS]
            if bad:
                raise DataError(path, f"type_mix {name!r}: unknown kinds {bad}; known {PARAM_KINDS}")
        return cls(version=int(data.get("version", 1)), branches=branches)

    def leaf_count(self) -> int:
        return sum(len(options) for options in self.branches.values())


@dataclass
class ParamSlot:
    """One parameter position the generator must fill: its kind, whether required, a format hint."""

    kind: str
    required: bool
    format_hint: str | None = None


@dataclass
class ApiSpec:
    """A merged draw from both trees: everything about a tool except its words."""

    index: int
    domain: str
    subdomain: str
    capability: str
    naming_style: str
    name_pattern: str
    parameter_count: tuple[int, int]
    type_mix: str
    required_ratio: str
    value_format: str
    format_hint: str
    return_shape: str
    return_hint: str
    slots: list[ParamSlot]

    @property
    def id(self) -> str:
        return f"api-{self.index:05d}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["parameter_count"] = list(self.parameter_count)
        data["id"] = self.id
        return data


def _pick_value_format(formats: dict[str, Any], capability: str, rng: random.Random, prefer: float = 0.8) -> str:
    """A format whose keywords occur in the capability (with probability ``prefer``), else any format.

    Matching keeps a unit or id format where the capability talks about one (a 'temperature'
    leaf gets '298K'-style values); the random remainder keeps every format in the data.
    """
    words = capability.lower()
    matching = sorted(name for name, f in formats.items() if any(k in words for k in f.get("keywords") or []))
    if matching and rng.random() < prefer:
        return rng.choice(matching)
    # No fitting format: plain words half the time (a unit format on an unrelated capability reads
    # as noise), any format otherwise so every format keeps appearing.
    if "free_text" in formats and rng.random() < 0.5:
        return "free_text"
    return rng.choice(sorted(formats))


def sample_api_spec(context: ContextTree, constraints: ConstraintTree, seed: int, index: int) -> ApiSpec:
    """The ``index``-th spec of a run with this seed; independent of every other index."""
    rng = random.Random(f"api-spec:{seed}:{index}")
    path = context.sample(rng)
    b = constraints.branches
    style = rng.choice(sorted(b["naming_style"]))
    count_name = rng.choice(sorted(b["parameter_count"]))
    low, high = b["parameter_count"][count_name]
    n_params = rng.randint(low, high)
    mix = rng.choice(sorted(b["type_mix"]))
    kinds = list(b["type_mix"][mix])
    rng.shuffle(kinds)
    ratio_name = rng.choice(sorted(b["required_ratio"]))
    n_required = max(1, round(float(b["required_ratio"][ratio_name]) * n_params))
    fmt = _pick_value_format(b["value_format"], path.capability, rng)
    shape = rng.choice(sorted(b["return_shape"]))
    slots: list[ParamSlot] = []
    for position in range(n_params):
        kind = kinds[position % len(kinds)]
        # The first string parameter carries the sampled value format, so every format shows up
        # in the data in proportion to how often it is drawn.
        hint = b["value_format"][fmt]["hint"] if kind == "string" and not any(s.format_hint for s in slots) else None
        slots.append(ParamSlot(kind=kind, required=position < n_required, format_hint=hint))
    return ApiSpec(
        index=index, domain=path.domain, subdomain=path.subdomain, capability=path.capability,
        naming_style=style, name_pattern=b["naming_style"][style], parameter_count=(low, high),
        type_mix=mix, required_ratio=ratio_name, value_format=fmt, format_hint=b["value_format"][fmt]["hint"],
        return_shape=shape, return_hint=b["return_shape"][shape], slots=slots,
    )
