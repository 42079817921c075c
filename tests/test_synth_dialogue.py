"""Pure parts of the dialogue simulator: plan skeletons, planner schema, transcript conversion."""

from __future__ import annotations

import random

import jsonschema
import pytest

from looptool.schema import Tool
from looptool.synth.dialogue import (
    NeedSkeleton,
    SimulationConfig,
    clean_text,
    for_server,
    plan_skeleton,
    planner_schema,
)
from looptool.synth.values import missing_mentions, value_texts

PIPE = Tool("convert_pipe_size", "Convert a pipe diameter.", {"type": "object", "properties": {
    "diameter": {"type": "string", "description": "e.g. 4 inch"},
    "target_unit": {"type": "string", "enum": ["mm", "cm"]}}, "required": ["diameter", "target_unit"]})
PARCEL = Tool("track_parcel", "Track a parcel.", {"type": "object", "properties": {
    "tracking_id": {"type": "string"}}, "required": ["tracking_id"]})


def test_plan_skeleton_is_seeded_and_follows_weights():
    cfg = SimulationConfig(needs_per_dialogue=[3, 3], need_kind_weights={"parallel": 1, "needs_clarification": 1})
    a = plan_skeleton(random.Random(5), [PIPE, PARCEL], cfg)
    b = plan_skeleton(random.Random(5), [PIPE, PARCEL], cfg)
    assert a == b and len(a) == 3
    for need in a:
        assert need.kind in ("parallel", "needs_clarification")
        if need.kind == "parallel":
            assert len(need.tools) == 2 and need.tools[0] == need.tools[1]
        else:
            assert need.omit in {"diameter", "target_unit", "tracking_id"}


def test_config_rejects_unknown_kinds_and_keys():
    with pytest.raises(ValueError, match="unknown need kinds"):
        SimulationConfig(need_kind_weights={"chitchat": 1})
    with pytest.raises(ValueError, match=r"simulate: unknown key\(s\) \['dialogs'\]"):
        SimulationConfig.from_mapping({"dialogs": 3})
    merged = SimulationConfig.from_mapping({"max_tokens": {"planner": 99}})
    assert merged.max_tokens["planner"] == 99 and merged.max_tokens["user"] > 0


def test_planner_schema_pins_kinds_tools_and_argument_types():
    skeleton = [NeedSkeleton("single_call", ["convert_pipe_size"]), NeedSkeleton("no_tool", [])]
    schema = planner_schema(skeleton, {"convert_pipe_size": PIPE}, 48)
    good = {"needs": [
        {"kind": "single_call", "calls": [
            {"tool": "convert_pipe_size", "arguments": {"diameter": "4 inch", "target_unit": "mm"}}]},
        {"kind": "no_tool", "topic": "say thanks"}]}
    jsonschema.validate(good, schema)
    for bad in (
        {"needs": [good["needs"][1], good["needs"][0]]},
        {"needs": [{**good["needs"][0], "calls": [{"tool": "track_parcel", "arguments": {}}]}, good["needs"][1]]},
        {"needs": [{**good["needs"][0], "calls": [{"tool": "convert_pipe_size", "arguments": {"diameter": "4 inch"}}]}, good["needs"][1]]},
        {"needs": [good["needs"][0]]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_transcript_for_server_has_no_tool_roles_or_call_objects():
    transcript = [
        {"role": "user", "content": "4 inch in mm?"},
        {"role": "assistant", "content": "", "tool_calls": [{"name": "convert_pipe_size", "arguments": {"diameter": "4 inch"}}]},
        {"role": "tool", "name": "convert_pipe_size", "content": "{\"status\": \"ok\"}"},
    ]
    out = for_server(transcript)
    assert [m["role"] for m in out] == ["user", "assistant", "user"]
    assert out[1]["content"].startswith("<tool_call>") and "4 inch" in out[1]["content"]
    assert "tool_calls" not in out[1] and out[2]["content"].startswith("[result of convert_pipe_size]")


def test_text_helpers():
    assert clean_text('User: "Can you track ORD-1?"\n\nMore rambling') == "Can you track ORD-1?"
    assert clean_text("Please set it to true. Mention these values exactly as written: true") == "Please set it to true."
    assert value_texts({"a": [1.0, "4 inch"], "b": True, "c": {"d": 2.5}}) == ["1", "4 inch", "2.5"]
    assert missing_mentions(["4 inch", "298K", "12"], "set 4 INCH at 298k for 12.0 units") == []
    assert missing_mentions(["ORD-1"], "track ORD 1") == ["ORD-1"]
