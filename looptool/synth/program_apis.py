"""Program-backed API synthesis: a capability x a constraint-tree path -> a tool (issue #13).

The LLM backend (:mod:`looptool.synth.apis`) asks a generator to write a tool from a tree path;
this backend builds it: the capability fixes what the tool does and its parameter concepts, the
sampled constraints fix how it looks —

* ``naming_style``   tool and parameter names (snake_case, camelCase, dotted namespace, PascalCase);
* ``parameter_count`` how many optional parameters join the required ones;
* ``type_mix``       whether unit-bearing values are one string ("4 inch", "120.50 EUR") or a number
                     plus a unit enum (the ``unit_split`` phenomenon);
* ``required_ratio`` the share of optional parameters promoted to required;
* ``return_shape``   the shape of the results the program tool returns.

The result goes through the same validation, near-duplicate removal and contamination filter as
generated tools (:func:`looptool.synth.validate.admit`). Each pool entry keeps the *bindings*
(parameter -> concept, unit parameter, default) in ``meta["program"]``: the program agents draw
and say values from them, and EDDE uses them to grow variants that keep a seed's phenomenon.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from looptool.ledger import Ledger
from looptool.synth.concepts import UNITS, Capability, CapabilityLibrary, Concept
from looptool.synth.trees import ConstraintTree
from looptool.synth.validate import ContaminationIndex, PoolEntry, ToolConstraint, admit, normalise_name

# Share of a tool's optional parameters promoted to required, per required_ratio branch.
PROMOTE_SHARE = {"all": 0.5, "most": 0.25, "half": 0.0}
# type_mix branches whose tools take numbers plus a unit enum rather than one "4 inch" string.
SPLIT_MIXES = {"scalars": 0.8, "with_enum": 0.6}
SPLIT_DEFAULT = 0.15
SPLITTABLE = ("quantity", "money")


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]


def styled_name(words: Sequence[str], style: str, namespace: str = "") -> str:
    words = list(words)[:5]
    if style == "camelCase":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    if style == "PascalCase":
        return "".join(w.capitalize() for w in words)
    if style == "dotted_namespace":
        ns = (_words(namespace) or ["api"])[0]
        return f"{ns}." + "_".join(words[:4])
    return "_".join(words)


def styled_param(name: str, style: str) -> str:
    words = name.split("_")
    if style in ("camelCase", "PascalCase"):
        return words[0] + "".join(w.capitalize() for w in words[1:])
    return name


def concept_schema(library: CapabilityLibrary, concept: Concept, style: str) -> dict[str, Any]:
    """JSON Schema of one (unsplit) value of a concept."""
    gen = concept.gen
    schema: dict[str, Any] = {"type": concept.json_type, "description": concept.describe}
    if gen == "enum":
        schema["enum"] = sorted(concept.spec["options"])
    elif gen == "date":
        schema["format"] = "date"
    elif gen == "datetime":
        schema["format"] = "date-time"
    elif gen == "email":
        schema["format"] = "email"
    elif gen == "list":
        inner = library.concepts[concept.spec["of"]]
        schema["items"] = {k: v for k, v in concept_schema(library, inner, style).items() if k != "description"}
    elif gen == "object":
        from looptool.synth.concepts import ParamSpec

        specs = [ParamSpec.parse(f, library.concepts, concept.key) for f in concept.spec["fields"]]
        # Nested field names stay snake_case: the value generator fills them by their concept names.
        schema["properties"] = {s.name: concept_schema(library, library.concepts[s.concept], style) for s in specs}
        schema["required"] = [s.name for s in specs if s.required]
    return schema


def build_tool(library: CapabilityLibrary, capability: Capability, constraints: ConstraintTree,
               rng: random.Random) -> tuple[dict[str, Any], dict[str, Any], ToolConstraint]:
    """(tool dict, program meta, the constraint to validate against) for one capability."""
    b = constraints.branches
    style = rng.choice(sorted(b["naming_style"]))
    count_name = rng.choice(sorted(b["parameter_count"]))
    low, high = b["parameter_count"][count_name]
    mix = rng.choice(sorted(b["type_mix"]))
    ratio = rng.choice(sorted(b["required_ratio"]))
    shape = rng.choice(sorted(b["return_shape"]))
    required = [p for p in capability.params if p.required]
    optional = [p for p in capability.params if not p.required]
    # parameter_count bounds the optional parameters added to the required ones (never drops a required one).
    n_optional = max(0, min(len(optional), rng.randint(low, high) - len(required)))
    if optional and n_optional == 0 and rng.random() < 0.5:
        n_optional = 1  # keep optional parameters common: the drop-an-optional-argument noise needs them
    chosen_optional = sorted(rng.sample(optional, n_optional), key=capability.params.index)
    promote = set(rng.sample(range(len(chosen_optional)), round(PROMOTE_SHARE.get(ratio, 0) * len(chosen_optional))))
    split_p = SPLIT_MIXES.get(mix, SPLIT_DEFAULT)
    properties: dict[str, Any] = {}
    required_names: list[str] = []
    bindings: list[dict[str, Any]] = []
    for spec in (p for p in capability.params if p.required or p in chosen_optional):
        concept = library.concepts[spec.concept]
        is_required = spec.required or chosen_optional.index(spec) in promote
        name = styled_param(spec.name, style)
        split = concept.gen in SPLITTABLE and rng.random() < split_p
        unit_param = None
        if split:
            schema = {"type": "number", "description": f"{concept.describe.split(',')[0]}, the number only"}
            unit_param = styled_param(f"{spec.name}_{'currency' if concept.gen == 'money' else 'unit'}", style)
            units = (sorted(concept.spec.get("currencies") or ["EUR", "USD"]) if concept.gen == "money"
                     else [u[0] for u in UNITS[concept.spec["dimension"]]])
            unit_schema = {"type": "string", "enum": units,
                           "description": f"{'currency code' if concept.gen == 'money' else 'unit'} of {name}"}
        else:
            schema = concept_schema(library, concept, style)
        if not is_required and spec.default is not None:
            schema["default"] = spec.default
        properties[name] = schema
        if is_required:
            required_names.append(name)
        if unit_param:
            properties[unit_param] = unit_schema
            if is_required:
                required_names.append(unit_param)
        bindings.append({"param": name, "name": spec.name, "concept": spec.concept, "required": is_required,
                         "default": None if is_required else spec.default, "unit_param": unit_param})
    tool = {"name": styled_name(_words(capability.name), style, capability.subdomain),
            "description": capability.does,
            "parameters": {"type": "object", "properties": properties, "required": required_names}}
    meta = {"capability": capability.id, "domain": capability.domain, "subdomain": capability.subdomain,
            "asks": list(capability.asks), "bindings": bindings, "returns": [list(r) for r in capability.returns],
            "return_shape": shape,
            "constraint": {"naming_style": style, "parameter_count": count_name, "type_mix": mix,
                           "required_ratio": ratio}}
    return tool, meta, ToolConstraint(name_pattern=b["naming_style"][style], naming_style=style)


def synthesize_program(library: CapabilityLibrary, constraints: ConstraintTree, seed: int, ledger: Ledger,
                       contamination: ContaminationIndex | None = None,
                       capabilities: Sequence[Capability] | None = None) -> list[PoolEntry]:
    """One tool per capability, validated and filtered; every capability gets a ledger record."""
    capabilities = list(capabilities if capabilities is not None else library.capabilities)
    ledger.expect(len(capabilities))
    seen: dict[tuple, str] = {}
    seen_names: dict[str, str] = {}
    seen_words: dict[str, str] = {}  # normalised names: getPlan and get_plan are one name to a model
    pool: list[PoolEntry] = []
    for capability in capabilities:
        rng = random.Random(f"program-api:{seed}:{capability.id}")
        tool_dict, meta, constraint = build_tool(library, capability, constraints, rng)
        entry_id = f"prog-{capability.id}"
        words = normalise_name(tool_dict["name"].rsplit(".", 1)[-1])
        if words in seen_words:
            ledger.reject(entry_id, "duplicate_name", detail=f"{tool_dict['name']!r} reads as {seen_words[words]}",
                          capability=capability.id, name=tool_dict["name"])
            continue
        seen_words[words] = entry_id
        tool, problem = admit(entry_id, tool_dict, constraint=constraint, contamination=contamination,
                              seen=seen, seen_names=seen_names)
        if problem is not None:
            ledger.reject(entry_id, problem.code, detail=problem.detail, capability=capability.id, name=tool_dict["name"])
            continue
        assert tool is not None
        returns = ", ".join(f for f, _ in capability.returns) or "a status"
        pool.append(PoolEntry(id=entry_id, tool=tool, source="program", returns=f"an object with {returns}",
                              meta={"program": meta}))
        ledger.keep(entry_id, name=tool.name, capability=capability.id)
    return pool
