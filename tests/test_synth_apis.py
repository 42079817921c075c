"""Trees, API specs, generator schemas, rule validation, contamination and tool import (no server)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import jsonschema
import pytest

from looptool.ledger import Ledger
from looptool.synth.apis import MalformedGeneration, assemble_tool, generator_schema
from looptool.synth.importer import read_import_file
from looptool.synth.pipeline import run_import_tools
from looptool.synth.schemas import arguments_schema, call_schema, mention_pattern
from looptool.synth.trees import ConstraintTree, ContextTree, sample_api_spec
from looptool.synth.validate import ContaminationIndex, ToolConstraint, admit, normalise_name, validate_tool_dict
from looptool.schema import Tool

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "synth"
CONTEXT = ROOT / "data" / "trees" / "context_tree.yaml"
CONSTRAINTS = ROOT / "data" / "trees" / "constraint_tree.yaml"


@pytest.fixture(scope="module")
def trees():
    return ContextTree.load(CONTEXT), ConstraintTree.load(CONSTRAINTS)


def test_trees_are_big_enough_and_well_formed(trees):
    context, constraints = trees
    assert len(context.domains) >= 30
    leaves = context.leaves()
    assert len(leaves) >= 300
    assert len({(p.domain, p.subdomain, p.capability) for p in leaves}) == len(leaves)
    for branch in ("naming_style", "parameter_count", "type_mix", "required_ratio", "value_format", "return_shape"):
        assert constraints.branches[branch]
    kinds = {k for mix in constraints.branches["type_mix"].values() for k in mix}
    assert {"enum", "array", "object"} <= kinds
    hints = " ".join(f["hint"] for f in constraints.branches["value_format"].values())
    assert "4 inch" in hints and "298K" in hints


def test_spec_sampling_is_seeded_and_follows_the_constraints(trees):
    context, constraints = trees
    a = [sample_api_spec(context, constraints, 7, i).to_dict() for i in range(40)]
    b = [sample_api_spec(context, constraints, 7, i).to_dict() for i in range(40)]
    c = [sample_api_spec(context, constraints, 8, i).to_dict() for i in range(40)]
    assert a == b and a != c
    assert len({s["domain"] for s in a}) > 10
    for spec in a:
        low, high = spec["parameter_count"]
        assert low <= len(spec["slots"]) <= high
        assert any(s["required"] for s in spec["slots"])


def test_generator_schema_accepts_a_good_reply_and_rejects_a_bad_name(trees):
    context, constraints = trees
    spec = next(s for s in (sample_api_spec(context, constraints, 0, i) for i in range(200))
                if s.naming_style == "snake_case" and {x.kind for x in s.slots} == {"string", "enum", "number"})
    schema = generator_schema(spec)
    entries = []
    for i, slot in enumerate(spec.slots):
        entry = {"name": f"param_{i}", "description": "what it is, e.g. 4 inch"}
        if slot.kind == "enum":
            entry["values"] = ["metric", "imperial"]
        entries.append(entry)
    reply = {"name": "convert_recipe_units", "description": "Convert a recipe quantity.", "parameters": entries}
    jsonschema.validate(reply, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**reply, "name": "ConvertRecipe"}, schema)
    tool = assemble_tool(spec, reply)
    assert set(tool["parameters"]["required"]) == {f"param_{i}" for i, s in enumerate(spec.slots) if s.required}
    n = len(spec.slots)
    _, problems = validate_tool_dict(tool, ToolConstraint(spec.name_pattern, spec.naming_style, n, n))
    assert problems == []


def test_malformed_generation_is_refused(trees):
    context, constraints = trees
    spec = sample_api_spec(context, constraints, 0, 1)
    with pytest.raises(MalformedGeneration):
        assemble_tool(spec, {"name": "x", "parameters": "none"})
    with pytest.raises(MalformedGeneration):
        assemble_tool(spec, {"name": "x", "description": "Does a thing.", "parameters": []})


@pytest.mark.parametrize(
    ("tool", "code"),
    [
        ({"name": "f", "description": "Does a thing.", "parameters": {"type": "object", "properties": {"a": {"type": "strnig", "description": "a"}}}},
         "invalid_json_schema"),
        ({"name": "f", "description": "Does a thing.", "parameters": {"type": "object", "properties": {}, "required": ["a"]}},
         "required_not_in_properties"),
        ({"name": "f", "description": "Does a thing.", "parameters": {"type": "object", "properties": {"a": {"type": "integer", "enum": ["x"], "description": "a"}}}},
         "enum_type_mismatch"),
        ({"name": "f", "description": " ", "parameters": {"type": "object", "properties": {}}}, "empty_description"),
        ({"name": "f", "description": "Does a thing.", "parameters": {"type": "object", "properties": {"a_b": {"type": "string", "enum": ["{", "},"], "description": "a"}}}},
         "bad_enum_value"),
        ({"name": "f", "description": "Does a thing.", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}, "empty_description"),
        ({"name": "f", "description": "Does a thing.", "parameters": {"type": "object", "properties": {"true": {"type": "string", "description": "x"}}}},
         "bad_parameter_name"),
        ({"name": "f", "description": "Does a thing.", "parameters": {"type": "object", "properties": {"a_number_value": {"type": "number", "description": "x"}}}},
         "generic_parameter_name"),
        ({"name": "f", "description": "[<example-key>] [<value_1>] [{<type_2>, <number_3, 9}]", "parameters": {"type": "object", "properties": {}}},
         "weak_description"),
        ({"name": "f", "description": "Does a thing.", "parameters": {"type": "object", "properties": {"committer1234567890": {"type": "string", "description": "x"}}}},
         "bad_parameter_name"),
        ({"name": "f", "description": "Does a thing.", "parameters": {"type": "object", "properties": {"owner": {"type": "object", "description": "x",
          "properties": {"true": {"type": "boolean"}}}}}}, "bad_parameter_name"),
        ({"name": "", "description": "Does a thing."}, "malformed_tool"),
        ("not a tool", "malformed_tool"),
    ],
)
def test_each_rule_has_a_named_reason(tool, code):
    _, problems = validate_tool_dict(tool)
    assert code in [p.code for p in problems]


def test_style_and_parameter_count_constraints():
    tool = {"name": "getWeather", "description": "Does a thing.", "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "c"}}}}
    snake = ToolConstraint(name_pattern=r"^[a-z][a-z0-9]*(_[a-z0-9]+){1,4}$", naming_style="snake_case", min_params=2, max_params=3)
    codes = [p.code for p in validate_tool_dict(tool, snake)[1]]
    assert codes == ["bad_name_style", "param_count_out_of_range"]


def test_near_duplicates_and_contamination():
    index = ContaminationIndex()
    index.add({"name": "math.factorial", "parameters": {"properties": {"number": {"type": "integer"}}}}, "bfcl_v3")
    index.add({"name": "get_stock_price", "parameters": {"properties": {"ticker": {"type": "string"}, "date": {"type": "string"}}}}, "bfcl_v3")
    seen, names = {}, {}
    mk = lambda name, props: {"name": name, "description": "Does a thing.", "parameters": {"type": "object", "properties": {
        k: {"type": t, "description": "x"} for k, t in props.items()}}}
    assert admit("1", mk("get_forecast", {"city": "string"}), constraint=None, contamination=index, seen=seen, seen_names=names)[1] is None
    assert admit("2", mk("getForecast", {"City": "string"}), constraint=None, contamination=index, seen=seen, seen_names=names)[1].code == "near_duplicate"
    assert admit("3", mk("get_forecast", {"place": "string"}), constraint=None, contamination=index, seen=seen, seen_names=names)[1].code == "duplicate_name"
    assert admit("4", mk("Factorial", {"operand": "integer"}), constraint=None, contamination=index, seen=seen, seen_names=names)[1].code == "benchmark_contamination"
    assert admit("5", mk("quote_share", {"ticker": "string", "date": "string"}), constraint=None, contamination=index,
                 seen=seen, seen_names=names)[1].code == "benchmark_contamination"
    assert normalise_name("weather.getHourly-Forecast") == "weather_get_hourly_forecast"


def test_real_benchmark_index_blocks_known_functions():
    index = ContaminationIndex.from_benchmarks(bfcl=True, acebench_dir=ROOT.parent / "shared" / "acebench_data")
    assert index.sources.get("bfcl_v3", 0) > 1000
    assert index.match(Tool("calculate_triangle_area", "Does a thing.", {"type": "object", "properties": {}})) is not None
    assert index.match(Tool("summarise_sourdough_starter_log", "Does a thing.", {"type": "object", "properties": {}})) is None


def test_import_file_with_broken_entries(tmp_path):
    ledger = Ledger("import_tools")
    metrics = run_import_tools({"files": [str(DATA / "broken_tools.json"), str(DATA / "petstore_openapi.yaml"),
                                          str(tmp_path / "missing.json")],
                                "contamination": {"bfcl": True, "acebench_dir": None}}, tmp_path / "out")
    del ledger
    records = [json.loads(line) for line in (tmp_path / "out" / "ledger.jsonl").read_text().splitlines()]
    fates = {r["id"]: (r["fate"], r["reason"]) for r in records}
    assert fates["broken_tools.json#0"] == ("kept", None)
    assert fates["broken_tools.json#1"] == ("rejected", "required_not_in_properties")
    assert fates["broken_tools.json#2"] == ("rejected", "enum_type_mismatch")
    assert fates["broken_tools.json#3"] == ("rejected", "invalid_json_schema")
    assert fates["broken_tools.json#4"] == ("rejected", "empty_description")
    assert fates["broken_tools.json#5"] == ("rejected", "malformed_tool")
    assert fates["broken_tools.json#6"] == ("rejected", "malformed_tool")
    assert fates["broken_tools.json#7"] == ("rejected", "near_duplicate")
    assert fates["broken_tools.json#8"] == ("rejected", "benchmark_contamination")
    assert fates["broken_tools.json#9"] == ("kept", None)
    assert fates["petstore_openapi.yaml#GET /pets/{pet_id}"] == ("kept", None)
    assert fates["petstore_openapi.yaml#DELETE /pets/{pet_id}"] == ("rejected", "empty_description")
    assert fates["petstore_openapi.yaml#POST /visits"] == ("kept", None)
    assert fates["petstore_openapi.yaml#GET /broken"] == ("rejected", "malformed_tool")
    assert fates["missing.json#file"] == ("rejected", "unreadable_file")
    assert metrics["in"] == len(records) == metrics["kept"] + metrics["rejected"]
    tools = {json.loads(line)["tool"]["name"]: json.loads(line)["tool"] for line in (tmp_path / "out" / "tools.jsonl").read_text().splitlines()}
    assert set(tools) == {"convert_pipe_size", "Get_Vet_Clinics", "getPet", "createVisit"}
    assert tools["createVisit"]["parameters"]["required"] == ["pet_id", "date"]
    assert tools["Get_Vet_Clinics"]["parameters"]["properties"]["radius_km"]["type"] == "number"


def test_no_import_files_gives_an_empty_pool_and_a_ledger_saying_so(tmp_path):
    metrics = run_import_tools({"files": []}, tmp_path)
    assert (tmp_path / "tools.jsonl").read_text() == ""
    assert metrics["in"] == 0 and "no import files" in metrics["note"]
    [record] = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert record["fate"] == "note" and "no import files" in record["reason"]


def test_openapi_2_is_refused_with_a_reason(tmp_path):
    path = tmp_path / "swagger.json"
    path.write_text(json.dumps({"swagger": "2.0", "openapi": "2.0", "paths": {}}))
    [candidate] = read_import_file(path)
    assert candidate.problem == "unsupported_openapi_version"


def test_decoding_schemas_make_calls_valid_by_construction():
    weather = Tool("get_forecast", "d", {"type": "object", "properties": {
        "city": {"type": "string", "description": "c", "format": "city"},
        "unit": {"type": "string", "enum": ["C", "F"]},
        "days": {"type": ["integer", "null"]}}, "required": ["city"]})
    schema = call_schema([weather, Tool("ping", "p", {"type": "object", "properties": {}})])
    jsonschema.validate({"name": "get_forecast", "arguments": {"city": "Oslo", "unit": "C"}}, schema)
    for bad in ({"name": "get_forecast", "arguments": {"unit": "C"}},
                {"name": "get_forecast", "arguments": {"city": "Oslo", "unit": "kelvin"}},
                {"name": "get_forecast", "arguments": {"city": "Oslo", "extra": 1}},
                {"name": "other", "arguments": {}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    assert "format" not in json.dumps(arguments_schema(weather))


def test_mention_pattern_demands_values_verbatim():
    pattern = mention_pattern(["4 inch", "ORD-48213", "298K"])
    assert re.match(pattern, "Please convert 4 inch for order ORD-48213 at 298K, thanks!")
    assert not re.match(pattern, "Please convert 4 inches for order ORD 48213 at 298K")
    assert "\\" not in pattern  # llama.cpp grammars reject most backslash escapes
    rng = random.Random(0)
    assert re.match(mention_pattern([]), "anything at all " + str(rng.random()))
