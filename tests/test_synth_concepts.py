"""Concepts, value generators, grounding of said values, program API synthesis (literal inputs)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from looptool.io import DataError
from looptool.ledger import Ledger
from looptool.schema import Call, Tool
from looptool.synth.concepts import (CapabilityLibrary, ParamSpec, ValueGenerator, relative_phrase,
                                     resolve_relative_dates, value_phrase)
from looptool.synth.program_apis import build_tool, styled_name, synthesize_program
from looptool.synth.rules import check_calls
from looptool.synth.trees import ConstraintTree

ROOT = Path(__file__).resolve().parents[1]
CONCEPTS = ROOT / "data" / "trees" / "concepts.yaml"
MINI = ROOT / "tests" / "data" / "synth" / "capabilities"
CONSTRAINTS = ROOT / "data" / "trees" / "constraint_tree.yaml"
TUESDAY = dt.date(2025, 3, 18)


@pytest.fixture(scope="module")
def mini():
    return CapabilityLibrary.load(CONCEPTS, MINI)


def test_relative_dates_resolve_against_the_given_day():
    assert resolve_relative_dates("book it for tomorrow", TUESDAY) == {"2025-03-19"}
    assert resolve_relative_dates("the day after tomorrow works", TUESDAY) == {"2025-03-20"}
    assert resolve_relative_dates("next Friday please", TUESDAY) == {"2025-03-21"}
    assert resolve_relative_dates("next tuesday", TUESDAY) == {"2025-03-25"}  # the first Tuesday after today
    assert resolve_relative_dates("in 10 days and today", TUESDAY) == {"2025-03-28", "2025-03-18"}
    assert resolve_relative_dates("on 2025-03-19", TUESDAY) == set()


def test_every_relative_phrase_the_user_says_resolves_to_its_date():
    for delta in range(0, 15):
        target = TUESDAY + dt.timedelta(days=delta)
        phrase = relative_phrase(TUESDAY, target)
        assert phrase is not None and target.isoformat() in resolve_relative_dates(phrase, TUESDAY), phrase


def test_param_spec_grammar():
    lib = CapabilityLibrary.load(CONCEPTS, MINI)
    spec = ParamSpec.parse("from_city:city?=Lisbon", lib.concepts, "t")
    assert (spec.name, spec.concept, spec.required, spec.default) == ("from_city", "city", False, "Lisbon")
    assert ParamSpec.parse("priority?=high", lib.concepts, "t").default == "high"
    assert ParamSpec.parse("notify?=true", lib.concepts, "t").default is True
    assert ParamSpec.parse("max_results", lib.concepts, "t").name == "limit"  # the concept's name stem
    for bad, why in [("city=Lisbon", "only optional"), ("nosuch", "unknown concept"), ("priority?=urgent", "not an option"),
                     ("Bad Spec", "is not")]:
        with pytest.raises(DataError, match=why):
            ParamSpec.parse(bad, lib.concepts, "t")


def test_library_rejects_a_concept_defined_twice(tmp_path):
    (tmp_path / "a.yaml").write_text("concepts:\n  city: {gen: choice, values: [X]}\ndomains: {}\n")
    with pytest.raises(DataError, match="defined twice"):
        CapabilityLibrary.load(CONCEPTS, tmp_path)


def test_value_generators_say_values_as_users_do(mini):
    gen = ValueGenerator(mini, random.Random(1), TUESDAY)
    for _ in range(30):
        split = gen.draw("weight", split=True)
        assert isinstance(split.value, (int, float)) and split.unit in ("kg", "g", "lb", "oz", "t")
        assert split.surface.endswith(split.unit) and "unit_split" in split.phenomena
        kelvin = gen.draw("temperature")
        if kelvin.value.endswith("K"):
            assert " " not in kelvin.value  # "298K", as BFCL writes it
        money = gen.draw("amount", split=True)
        assert money.unit in ("EUR", "USD", "GBP", "JPY", "BRL", "CAD") and str(money.value) in money.surface
    relative = gen.draw("date", mode="relative")
    assert relative.phenomena == ["relative_date"] and relative.value in resolve_relative_dates(relative.surface, TUESDAY)
    said = gen.draw("parcel_speed", mode="paraphrase")
    assert said.value in ("express", "standard", "economy") and said.value not in said.surface
    stamp = gen.draw("start_time")
    assert stamp.value.startswith(stamp.keep[0]) and stamp.keep[1] in stamp.value
    compounds = gen.draw("lab_compounds")
    assert 2 <= len(compounds.value) <= 3 and len(set(compounds.value)) == len(compounds.value)
    assert "list" in compounds.phenomena and "chemical_formula" in compounds.phenomena


def test_renamed_parameters_are_said_by_their_own_names(mini):
    city = mini.concepts["city"]
    rng = random.Random(0)
    assert value_phrase(city, "Lisbon", rng, "from_city") == "from Lisbon"
    assert value_phrase(city, "Osaka", rng, "to_city") == "to Osaka"
    assert value_phrase(city, "Cork", rng, "home_city") == "with home city Cork"


def test_grounding_reads_enums_and_relative_dates_with_the_schema():
    tool = Tool("book_slot", "Book a slot.", {"type": "object", "properties": {
        "day": {"type": "string", "format": "date"}, "at": {"type": "string", "format": "date-time"},
        "level": {"type": "string", "enum": ["low", "high"]}}, "required": ["day", "level", "at"]})
    system = {"role": "system", "content": "Today is 2025-03-18 (Tuesday)."}
    user = {"role": "user", "content": "Book it next Friday, urgently, starting 2025-03-22 at 09:30."}
    call = Call("book_slot", {"day": "2025-03-21", "level": "high", "at": "2025-03-22T09:30:00"})
    assert check_calls([call], {"book_slot": tool}, [system, user]) == []
    # Without the system turn's date "next Friday" names no day.
    assert [p.code for p in check_calls([call], {"book_slot": tool}, [user])] == ["ungrounded_value"]
    wrong_time = Call("book_slot", {"day": "2025-03-21", "level": "low", "at": "2025-03-22T10:30:00"})
    problems = check_calls([wrong_time], {"book_slot": tool}, [system, user])
    assert [p.code for p in problems] == ["ungrounded_value"] and "at=" in problems[0].detail


def test_tool_names_follow_the_sampled_style():
    words = ["search", "flight", "routes"]
    assert styled_name(words, "snake_case") == "search_flight_routes"
    assert styled_name(words, "camelCase") == "searchFlightRoutes"
    assert styled_name(words, "PascalCase") == "SearchFlightRoutes"
    assert styled_name(words, "dotted_namespace", "flights") == "flights.search_flight_routes"


def test_split_quantities_become_a_number_and_a_unit_enum(mini):
    constraints = ConstraintTree.load(CONSTRAINTS)
    capability = mini.by_id()["shipping.create_parcel_label"]
    seen_split = seen_joined = False
    for i in range(40):
        tool, meta, _ = build_tool(mini, capability, constraints, random.Random(i))
        weight = next(b for b in meta["bindings"] if b["concept"] == "weight")
        props = tool["parameters"]["properties"]
        if weight["unit_param"]:
            seen_split = True
            assert props[weight["param"]]["type"] == "number" and "kg" in props[weight["unit_param"]]["enum"]
            assert weight["unit_param"] in tool["parameters"]["required"]
        else:
            seen_joined = True
            assert props[weight["param"]]["type"] == "string"
    assert seen_split and seen_joined


def test_every_capability_of_the_small_library_becomes_a_valid_tool(mini):
    ledger = Ledger("t")
    pool = synthesize_program(mini, ConstraintTree.load(CONSTRAINTS), 0, ledger)
    assert len(pool) == len(mini.capabilities) and ledger.rejection_reasons() == {}
    assert {e.meta["program"]["capability"] for e in pool} == set(mini.by_id())
