"""Structured capabilities: typed parameter concepts, the capability library, value generators.

A *concept* (``data/trees/concepts.yaml`` and the ``concepts:`` of each capability file) is what a
parameter means: its JSON type, how values are drawn, how a user says them and what the schema tells
the model. A *capability* (``data/trees/capabilities/*.yaml``) is a context-tree leaf made concrete:
a name, a description, the phrases a user asks for it with, its parameters as concepts (required or
optional, with defaults) and the fields it returns. Program-backed API synthesis turns a capability
into a tool; program-backed agents draw values from the concepts and say them the way users do.

A drawn value is a :class:`Realized`: the JSON value the call carries, the words the user writes
(``surface``), the strings that must survive any rewording verbatim (``keep``) and the value
phenomena it exercises (``iso_date``, ``relative_date``, ``enum_paraphrase``, ``unit_split``, ...),
which the stage metrics count and EDDE keeps.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from looptool.io import DataError

GENERATORS = ("choice", "code", "text", "enum", "boolean", "integer", "number", "quantity", "money", "date",
              "datetime", "time", "identifier", "phone", "email", "formula", "expression", "list", "object")
JSON_TYPE = {"choice": "string", "code": "string", "text": "string", "enum": "string", "boolean": "boolean",
             "integer": "integer", "number": "number", "quantity": "string", "money": "string", "date": "string",
             "datetime": "string", "time": "string", "identifier": "string", "phone": "string", "email": "string",
             "formula": "string", "expression": "string", "list": "array", "object": "object"}
# Every phenomenon the seed data must practise (issue #13, item 1); the stage metrics count each.
PHENOMENA = ("iso_date", "relative_date", "date_time", "currency_amount", "length_with_unit", "weight_with_unit",
             "temperature_with_unit", "unit_split", "identifier", "chemical_formula", "math_expression",
             "phone_number", "email", "enum_paraphrase", "boolean_phrase", "list", "nested_object", "free_text")

# Units per quantity dimension: (unit as written in values, low, high, decimals). A temperature in
# kelvin is written without a space ("298K"), as in BFCL's chemistry questions.
UNITS: dict[str, list[tuple[str, float, float, int]]] = {
    "length": [("cm", 2, 250, 0), ("mm", 5, 900, 0), ("inch", 1, 60, 0), ("m", 1, 120, 1), ("km", 1, 40, 1),
               ("ft", 2, 90, 0), ("mi", 1, 30, 1)],
    "weight": [("kg", 0.5, 40, 1), ("g", 50, 900, 0), ("lb", 1, 80, 0), ("oz", 2, 30, 0), ("t", 1, 20, 1)],
    "temperature": [("K", 250, 400, 0), ("C", -10, 45, 0), ("F", 20, 110, 0)],
    "volume": [("ml", 50, 900, 0), ("l", 1, 60, 1), ("gal", 1, 20, 0), ("cup", 1, 6, 0)],
    "duration": [("min", 5, 120, 0), ("h", 1, 12, 0), ("s", 10, 300, 0), ("days", 1, 14, 0)],
    "speed": [("km/h", 20, 130, 0), ("mph", 15, 80, 0), ("m/s", 1, 30, 1)],
    "area": [("m2", 12, 400, 0), ("sq ft", 100, 3000, 0), ("ha", 1, 50, 1)],
    "energy": [("kWh", 1, 60, 1), ("J", 100, 5000, 0), ("kcal", 80, 900, 0)],
    "data": [("GB", 1, 500, 0), ("MB", 10, 900, 0), ("TB", 1, 8, 0)],
}
QUANTITY_PHENOMENON = {"length": "length_with_unit", "weight": "weight_with_unit", "temperature": "temperature_with_unit"}
CURRENCY_WORDS = {"EUR": ["euros"], "USD": ["US dollars", "dollars"], "GBP": ["pounds sterling", "pounds"],
                  "JPY": ["yen"], "BRL": ["reais"], "CAD": ["Canadian dollars"], "CHF": ["Swiss francs"],
                  "INR": ["rupees"], "AUD": ["Australian dollars"], "NOK": ["Norwegian kroner"]}
FORMULAS = ("H2O", "CO2", "NaCl", "C6H12O6", "CH4", "NH3", "H2SO4", "C2H5OH", "CaCO3", "KMnO4", "Fe2O3", "NaHCO3",
            "C8H10N4O2", "MgSO4", "HNO3", "C3H8", "SiO2", "Al2O3", "CuSO4", "C12H22O11")
EMAIL_USERS = ("amara.o", "t.ribeiro", "yuki.t", "priya.r", "lena.f", "mateo", "ingrid.holm", "kwame.m", "sofia.m",
               "d.volkov", "aisha.b", "noah.w", "ops-team", "billing", "front.desk")
EMAIL_HOSTS = ("example.com", "mailbox.org", "fjordmail.no", "studio-nine.io", "lakeside.edu", "acme-labs.net")
PHONE_PREFIXES = (("+1", 10), ("+44", 10), ("+351", 9), ("+81", 10), ("+254", 9), ("+49", 11), ("+61", 9))
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
PARAM_SPEC = re.compile(r"^(?:(?P<alias>[a-z][a-z0-9_]*):)?(?P<concept>[a-z][a-z0-9_]*)(?P<opt>\?)?(?:=(?P<default>.+))?$")


# ------------------------------------------------------------------------------------ the library
@dataclass(frozen=True)
class Concept:
    key: str
    gen: str
    name: str
    describe: str
    say: tuple[str, ...]
    ask: str | None
    phenomenon: str | None
    spec: dict[str, Any]

    @property
    def json_type(self) -> str:
        return JSON_TYPE[self.gen]

    @property
    def words(self) -> str:
        return self.name.replace("_", " ")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a capability: its name, concept, whether required, and an optional default."""

    name: str
    concept: str
    required: bool
    default: Any = None

    @classmethod
    def parse(cls, text: str, concepts: dict[str, Concept], where: str) -> "ParamSpec":
        m = PARAM_SPEC.match(str(text).strip())
        if not m:
            raise DataError(where, f"param spec {text!r} is not [alias:]concept[?][=default]")
        key = m["concept"]
        if key not in concepts:
            raise DataError(where, f"param spec {text!r}: unknown concept {key!r}")
        concept = concepts[key]
        default = None
        if m["default"] is not None:
            if not m["opt"]:
                raise DataError(where, f"param spec {text!r}: only optional parameters take a default")
            default = _parse_default(concept, m["default"].strip(), where)
        return cls(name=m["alias"] or concept.name, concept=key, required=not m["opt"], default=default)


def _parse_default(concept: Concept, raw: str, where: str) -> Any:
    if concept.gen == "boolean":
        if raw.lower() not in ("true", "false"):
            raise DataError(where, f"default {raw!r} of boolean concept {concept.key!r} must be true or false")
        return raw.lower() == "true"
    if concept.gen == "integer":
        try:
            return int(raw)
        except ValueError:
            raise DataError(where, f"default {raw!r} of integer concept {concept.key!r} is not an integer") from None
    if concept.gen == "number":
        try:
            return float(raw)
        except ValueError:
            raise DataError(where, f"default {raw!r} of number concept {concept.key!r} is not a number") from None
    if concept.gen == "enum" and raw not in concept.spec["options"]:
        raise DataError(where, f"default {raw!r} is not an option of enum concept {concept.key!r}")
    return raw


@dataclass(frozen=True)
class Capability:
    """A context-tree leaf with typed parameters: what a tool does, how users ask, what it returns."""

    id: str  # "<domain>.<local id>", unique over the library
    domain: str
    subdomain: str
    name: str  # lower-case words, verb first: the tool name stem
    does: str
    asks: tuple[str, ...]
    params: tuple[ParamSpec, ...]
    returns: tuple[tuple[str, str], ...]  # (result field, concept key)
    source: str = ""

    @property
    def required(self) -> list[ParamSpec]:
        return [p for p in self.params if p.required]


def _load_yaml(path: Path) -> dict[str, Any]:
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise DataError(path, "expected a mapping")
    return data


def _concept(key: str, raw: Any, where: str) -> Concept:
    if not isinstance(raw, dict) or raw.get("gen") not in GENERATORS:
        raise DataError(where, f"concept {key!r} needs a 'gen' from {GENERATORS}")
    gen = raw["gen"]
    need = {"choice": ["values"], "code": ["values"], "text": ["values"], "enum": ["options"], "boolean": ["yes", "no"],
            "quantity": ["dimension"], "list": ["of"], "object": ["fields"]}.get(gen, [])
    # YAML 1.1 readers turn a bare yes/no key into a boolean: accept both spellings.
    spec = {("yes" if k is True else "no" if k is False else str(k)): v for k, v in raw.items()}
    missing = [f for f in need if not spec.get(f)]
    if missing:
        raise DataError(where, f"concept {key!r} ({gen}) needs {missing}")
    if gen == "quantity" and spec["dimension"] not in UNITS:
        raise DataError(where, f"concept {key!r}: dimension {spec['dimension']!r} not in {sorted(UNITS)}")
    if gen == "enum":
        options = spec["options"]
        if not isinstance(options, dict) or len(options) < 2:
            raise DataError(where, f"enum concept {key!r} needs at least two options")
        spec["options"] = {str(k): [str(p) for p in (v or [])] for k, v in options.items()}
    say = raw.get("say") or ["{words} {v}"]
    if isinstance(say, str):
        say = [say]
    if gen != "boolean" and not all("{v}" in s for s in say):
        raise DataError(where, f"concept {key!r}: every 'say' template needs {{v}}")
    name = str(raw.get("name") or key)
    return Concept(key=key, gen=gen, name=name, describe=str(raw.get("describe") or name.replace("_", " ")),
                   say=tuple(str(s) for s in say), ask=raw.get("ask"), phenomenon=raw.get("phenomenon"), spec=spec)


@dataclass
class CapabilitiesConfig:
    """params.yaml ``capabilities``: the concept library and the capability files (program backends)."""

    concepts: str = field(default="data/trees/concepts.yaml", metadata={"help": "Core concept library (YAML)."})
    dir: str = field(default="data/trees/capabilities", metadata={"help": "Folder of capability files (*.yaml)."})


@dataclass
class CapabilityLibrary:
    concepts: dict[str, Concept]
    capabilities: list[Capability]
    version: str = ""

    @classmethod
    def load(cls, concepts_path: str | Path, capability_dir: str | Path) -> "CapabilityLibrary":
        concepts_path, capability_dir = Path(concepts_path), Path(capability_dir)
        if not concepts_path.is_file():
            raise DataError(concepts_path, "concept library not found")
        files = sorted(capability_dir.glob("*.yaml")) if capability_dir.is_dir() else []
        if not files:
            raise DataError(capability_dir, "no capability files (*.yaml) found")
        raw_files = [(concepts_path, _load_yaml(concepts_path))] + [(f, _load_yaml(f)) for f in files]
        concepts: dict[str, Concept] = {}
        for path, data in raw_files:
            for key, raw in (data.get("concepts") or {}).items():
                if key in concepts:
                    raise DataError(path, f"concept {key!r} is defined twice")
                concepts[key] = _concept(str(key), raw, f"{path}: concepts.{key}")
        for key, concept in concepts.items():  # nested references resolve only once all are known
            if concept.gen == "list" and concept.spec["of"] not in concepts:
                raise DataError(concepts_path, f"list concept {key!r}: unknown item concept {concept.spec['of']!r}")
            if concept.gen == "object":
                for f in concept.spec["fields"]:
                    ParamSpec.parse(f, concepts, f"object concept {key!r}")
        capabilities: list[Capability] = []
        seen: set[str] = set()
        for path, data in raw_files[1:]:
            for domain, subs in (data.get("domains") or {}).items():
                for sub, leaves in (subs or {}).items():
                    for leaf in leaves or []:
                        where = f"{path.name}: {domain}/{sub}/{leaf.get('id') if isinstance(leaf, dict) else leaf}"
                        capabilities.append(_capability(domain, sub, leaf, concepts, where, path.name))
                        if capabilities[-1].id in seen:
                            raise DataError(path, f"capability {capabilities[-1].id!r} is defined twice")
                        seen.add(capabilities[-1].id)
        version = ":".join(str(d.get("version", 1)) for _, d in raw_files)
        return cls(concepts=concepts, capabilities=capabilities, version=version)

    def by_id(self) -> dict[str, Capability]:
        return {c.id: c for c in self.capabilities}

    @property
    def domains(self) -> list[str]:
        return sorted({c.domain for c in self.capabilities})


def _capability(domain: str, sub: str, leaf: Any, concepts: dict[str, Concept], where: str, source: str) -> Capability:
    if not isinstance(leaf, dict):
        raise DataError(where, "a capability must be a mapping with id, name, does, asks, params")
    for key in ("id", "name", "does", "params"):
        if not leaf.get(key):
            raise DataError(where, f"capability needs {key!r}")
    params = tuple(ParamSpec.parse(p, concepts, where) for p in leaf["params"])
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise DataError(where, f"parameter names repeat: {names}")
    if not any(p.required for p in params):
        raise DataError(where, "a capability needs at least one required parameter")
    returns = tuple((str(k), str(v)) for k, v in (leaf.get("returns") or {}).items())
    for field_name, key in returns:
        if key not in concepts:
            raise DataError(where, f"returns.{field_name}: unknown concept {key!r}")
    asks = tuple(str(a) for a in (leaf.get("asks") or [leaf["name"]]))
    return Capability(id=f"{domain}.{leaf['id']}", domain=str(domain), subdomain=str(sub), name=str(leaf["name"]).lower(),
                      does=str(leaf["does"]).strip(), asks=asks, params=params, returns=returns, source=source)


# ------------------------------------------------------------------------------------ the values
@dataclass
class Realized:
    """One drawn value: the JSON value of the call, the user's words, what must stay verbatim."""

    value: Any
    surface: str
    keep: list[str] = field(default_factory=list)
    phenomena: list[str] = field(default_factory=list)
    unit: str | None = None  # for split quantity / money parameters: the unit part


def _num_text(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}" if decimals else str(int(round(x)))


def _num_value(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def relative_phrase(today: dt.date, target: dt.date) -> str | None:
    """How a user could say ``target`` relative to ``today``; None when no simple phrase fits."""
    delta = (target - today).days
    if delta == 0:
        return "today"
    if delta == 1:
        return "tomorrow"
    if delta == 2:
        return "the day after tomorrow"
    if 3 <= delta <= 6:
        return f"next {WEEKDAYS[target.weekday()]}" if rng_free_weekday_ok(today, target) else f"in {delta} days"
    if 7 <= delta <= 14:
        return f"in {delta} days"
    return None


def rng_free_weekday_ok(today: dt.date, target: dt.date) -> bool:
    """'next Friday' means the first Friday after today (the reading :func:`resolve_relative_dates` uses)."""
    return 0 < (target - today).days <= 7


def resolve_relative_dates(text: str, today: dt.date) -> set[str]:
    """ISO dates a message refers to relatively: today, tomorrow, the day after tomorrow, in N days,
    next <weekday> (the first such weekday after today)."""
    low = text.lower()
    found: set[str] = set()
    if "day after tomorrow" in low:
        found.add((today + dt.timedelta(days=2)).isoformat())
    if re.search(r"\btomorrow\b", low.replace("day after tomorrow", "")):
        found.add((today + dt.timedelta(days=1)).isoformat())
    if re.search(r"\btoday\b", low):
        found.add(today.isoformat())
    for n in re.findall(r"\bin (\d{1,2}) days\b", low):
        found.add((today + dt.timedelta(days=int(n))).isoformat())
    for day in re.findall(r"\bnext (monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", low):
        offset = (WEEKDAYS.index(day.capitalize()) - today.weekday()) % 7 or 7
        found.add((today + dt.timedelta(days=offset)).isoformat())
    return found


TODAY_PATTERN = re.compile(r"Today is (\d{4}-\d{2}-\d{2})")


def today_from_messages(messages: list[dict[str, Any]]) -> dt.date | None:
    """The reference date a system turn states ("Today is 2025-03-18 ..."), if any."""
    for m in messages:
        if m.get("role") == "system":
            hit = TODAY_PATTERN.search(m.get("content") or "")
            if hit:
                return dt.date.fromisoformat(hit.group(1))
    return None


class ValueGenerator:
    """Draws values of concepts with one seeded RNG and a reference date (the dialogue's "today").

    ``modes`` pins how a parameter is said (``{"date": "relative"}``, ``{"priority": "paraphrase"}``):
    EDDE uses it to keep the phenomenon a seed failed on while drawing new values.
    """

    def __init__(self, library: CapabilityLibrary, rng: random.Random, today: dt.date,
                 relative_date_rate: float = 0.4, paraphrase_rate: float = 0.7):
        self.library = library
        self.rng = rng
        self.today = today
        self.relative_date_rate = relative_date_rate
        self.paraphrase_rate = paraphrase_rate

    def draw(self, concept_key: str, split: bool = False, mode: str | None = None) -> Realized:
        concept = self.library.concepts[concept_key]
        return getattr(self, f"_gen_{concept.gen}")(concept, split, mode)

    # Each _gen_* returns a Realized; ``split`` asks for value and unit as two parts (quantity, money).
    def _gen_choice(self, c: Concept, split: bool, mode: str | None) -> Realized:
        v = str(self.rng.choice(c.spec["values"]))
        return Realized(v, v, [v], [c.phenomenon] if c.phenomenon else [])

    def _gen_code(self, c: Concept, split: bool, mode: str | None) -> Realized:
        v = str(self.rng.choice(c.spec["values"]))
        return Realized(v, v, [v], [c.phenomenon or "identifier"])

    def _gen_text(self, c: Concept, split: bool, mode: str | None) -> Realized:
        v = str(self.rng.choice(c.spec["values"]))
        return Realized(v, v, [v], ["free_text"])

    def _gen_enum(self, c: Concept, split: bool, mode: str | None) -> Realized:
        key = self.rng.choice(sorted(c.spec["options"]))
        paraphrases = c.spec["options"][key]
        say_paraphrase = mode == "paraphrase" or (mode is None and paraphrases and self.rng.random() < self.paraphrase_rate)
        if say_paraphrase and paraphrases:
            return Realized(key, self.rng.choice(paraphrases), [], ["enum_paraphrase"])
        return Realized(key, key.replace("_", " "), [], ["enum_verbatim"])

    def _gen_boolean(self, c: Concept, split: bool, mode: str | None) -> Realized:
        value = self.rng.random() < 0.5 if mode not in ("true", "false") else mode == "true"
        phrase = self.rng.choice(c.spec["yes" if value else "no"])
        return Realized(value, str(phrase), [], ["boolean_phrase"])

    def _gen_integer(self, c: Concept, split: bool, mode: str | None) -> Realized:
        v = self.rng.randint(int(c.spec.get("min", 1)), int(c.spec.get("max", 10)))
        unit = c.spec.get("unit_word")
        return Realized(v, f"{v} {unit}" if unit else str(v), [str(v)], ["number"])

    def _gen_number(self, c: Concept, split: bool, mode: str | None) -> Realized:
        decimals = int(c.spec.get("decimals", 1))
        text = _num_text(self.rng.uniform(float(c.spec.get("min", 0)), float(c.spec.get("max", 100))), decimals)
        return Realized(_num_value(text), text, [text], ["number"])

    def _gen_quantity(self, c: Concept, split: bool, mode: str | None) -> Realized:
        dim = c.spec["dimension"]
        units = [u for u in UNITS[dim] if u[0] in (c.spec.get("units") or [u[0] for u in UNITS[dim]])] or UNITS[dim]
        unit, low, high, decimals = self.rng.choice(units)
        number = _num_text(self.rng.uniform(low, high), decimals)
        surface = f"{number}{unit}" if unit == "K" else f"{number} {unit}"
        phenomena = [QUANTITY_PHENOMENON.get(dim, "quantity_with_unit")] + (["unit_split"] if split else [])
        value = _num_value(number) if split else surface
        return Realized(value, surface, [surface], phenomena, unit=unit if split else None)

    def _gen_money(self, c: Concept, split: bool, mode: str | None) -> Realized:
        currency = self.rng.choice(c.spec.get("currencies") or ["EUR", "USD"])
        number = f"{self.rng.uniform(float(c.spec.get('min', 5)), float(c.spec.get('max', 500))):.2f}"
        if number.endswith(".00") or self.rng.random() < 0.3:
            number = str(int(float(number)))
        if split:
            words = CURRENCY_WORDS.get(currency)
            said = f"{number} {self.rng.choice(words)}" if words and self.rng.random() < 0.5 else f"{number} {currency}"
            return Realized(_num_value(number), said, [number], ["currency_amount", "unit_split"], unit=currency)
        surface = f"{number} {currency}"
        return Realized(surface, surface, [surface], ["currency_amount"])

    def _date(self) -> dt.date:
        return self.today + dt.timedelta(days=self.rng.randint(0, 40))

    def _gen_date(self, c: Concept, split: bool, mode: str | None) -> Realized:
        relative = mode == "relative" or (mode is None and self.rng.random() < self.relative_date_rate)
        if relative:
            target = self.today + dt.timedelta(days=self.rng.randint(0, 12))
            phrase = relative_phrase(self.today, target)
            if phrase:
                return Realized(target.isoformat(), phrase, [phrase], ["relative_date"])
        target = self._date()
        return Realized(target.isoformat(), target.isoformat(), [target.isoformat()], ["iso_date"])

    def _gen_datetime(self, c: Concept, split: bool, mode: str | None) -> Realized:
        day = self._date()
        hh, mm = self.rng.randint(7, 20), self.rng.choice((0, 15, 30, 45))
        value = f"{day.isoformat()}T{hh:02d}:{mm:02d}:00"
        surface = f"{day.isoformat()} at {hh:02d}:{mm:02d}"
        return Realized(value, surface, [day.isoformat(), f"{hh:02d}:{mm:02d}"], ["date_time"])

    def _gen_time(self, c: Concept, split: bool, mode: str | None) -> Realized:
        v = f"{self.rng.randint(6, 22):02d}:{self.rng.choice((0, 10, 15, 30, 45)):02d}"
        return Realized(v, v, [v], ["date_time"])

    def _gen_identifier(self, c: Concept, split: bool, mode: str | None) -> Realized:
        digits = int(c.spec.get("digits", 5))
        v = f"{c.spec.get('prefix', 'ID')}-{self.rng.randint(10 ** (digits - 1), 10 ** digits - 1)}"
        return Realized(v, v, [v], ["identifier"])

    def _gen_phone(self, c: Concept, split: bool, mode: str | None) -> Realized:
        prefix, n = self.rng.choice(PHONE_PREFIXES)
        v = prefix + str(self.rng.randint(2, 9)) + "".join(self.rng.choice(string.digits) for _ in range(n - 1))
        return Realized(v, v, [v], ["phone_number"])

    def _gen_email(self, c: Concept, split: bool, mode: str | None) -> Realized:
        v = f"{self.rng.choice(EMAIL_USERS)}@{self.rng.choice(EMAIL_HOSTS)}"
        return Realized(v, v, [v], ["email"])

    def _gen_formula(self, c: Concept, split: bool, mode: str | None) -> Realized:
        v = self.rng.choice(c.spec.get("values") or FORMULAS)
        return Realized(v, v, [v], ["chemical_formula"])

    def _gen_expression(self, c: Concept, split: bool, mode: str | None) -> Realized:
        a, b, k = self.rng.randint(2, 9), self.rng.randint(1, 9), self.rng.randint(1, 20)
        forms = (f"{a}*x**2 + {b}*x - {k}", f"{a}*x + {k}", f"x**3 - {a}*x + {b}", f"{a}*sin(x) + {b}",
                 f"({a}*x - {b})/{k}", f"{a}*x**2 - {k}")
        v = self.rng.choice(forms)
        return Realized(v, v, [v], ["math_expression"])

    def _gen_list(self, c: Concept, split: bool, mode: str | None) -> Realized:
        n = self.rng.randint(int(c.spec.get("min_items", 2)), int(c.spec.get("max_items", 3)))
        items: list[Realized] = []
        for _ in range(n * 4):  # distinct items; a small value list may run out
            item = self.draw(c.spec["of"])
            if all(item.value != other.value for other in items):
                items.append(item)
            if len(items) == n:
                break
        surfaces = [i.surface for i in items]
        said = surfaces[0] if len(surfaces) == 1 else ", ".join(surfaces[:-1]) + " and " + surfaces[-1]
        phenomena = ["list", *dict.fromkeys(p for i in items for p in i.phenomena)]
        return Realized([i.value for i in items], said, [k for i in items for k in i.keep], phenomena)

    def _gen_object(self, c: Concept, split: bool, mode: str | None) -> Realized:
        specs = [ParamSpec.parse(f, self.library.concepts, c.key) for f in c.spec["fields"]]
        value: dict[str, Any] = {}
        parts: list[str] = []
        keep: list[str] = []
        phenomena = ["nested_object"]
        for spec in specs:
            if not spec.required and self.rng.random() < 0.5:
                continue
            inner = self.draw(spec.concept)
            value[spec.name] = inner.value
            parts.append(f"{spec.name.replace('_', ' ')} {inner.surface}")
            keep += inner.keep
            phenomena += [p for p in inner.phenomena if p not in phenomena]
        return Realized(value, ", ".join(parts), keep, phenomena)


DIRECTION_WORDS = ("from", "to", "via", "into", "until", "since")


def value_phrase(concept: Concept, surface: str, rng: random.Random, param_name: str | None = None,
                 relative: bool = False) -> str:
    """The words that mention a value inside a request, from the concept's ``say`` templates.

    A parameter renamed from its concept (``from_city:city``) is said by its own name, so that two
    parameters of one concept stay apart: "from Lisbon", "to Osaka", "backup email x@y.org".
    """
    if concept.gen == "boolean":
        return surface
    if param_name and param_name != concept.name:
        words = param_name.split("_")
        if words[0] in DIRECTION_WORDS:
            return f"{words[0]} {surface}"
        return f"with {' '.join(words)} {surface}"
    template = rng.choice(concept.say)
    if relative:
        # "on {v}" + "next Friday" reads "on next Friday": relative phrases take no preposition.
        template = re.sub(r"^(on|for|from|at|to|by|until|through) \{v\}", lambda m: RELATIVE_LEADS.get(m.group(1), "{v}"),
                          template)
    return template.replace("{words}", concept.words).replace("{v}", surface)


RELATIVE_LEADS = {"from": "starting {v}", "until": "until {v}", "by": "by {v}"}
