"""JSONL IO, atomic writes and the Sample/Tool/Call data model."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from looptool.io import DataError, atomic_open, content_hash, read_jsonl, write_jsonl
from looptool.schema import Call, Sample, Tool

TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    },
}
SAMPLE = {
    "tools": [TOOL],
    "messages": [{"role": "user", "content": "Weather in Paris?"}],
    "label": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
}


def test_sample_round_trip_and_stable_id(tmp_path):
    sample = Sample.from_dict(SAMPLE)
    assert sample.id and sample.id == Sample.from_dict(SAMPLE).id
    path = tmp_path / "s.jsonl"
    write_jsonl(path, [sample])
    (again,) = read_jsonl(path, Sample.from_dict)
    assert again.to_dict() == sample.to_dict()
    assert again.label == [Call("get_weather", {"city": "Paris"})]


def test_id_ignores_key_order_and_bookkeeping():
    reordered = json.loads(json.dumps(SAMPLE))
    reordered["tools"][0]["parameters"]["properties"] = dict(reversed(list(TOOL["parameters"]["properties"].items())))
    a = Sample.from_dict(SAMPLE)
    b = Sample.from_dict({**reordered, "origin": "edde", "round": 3, "parent": "x"})
    assert a.id == b.id
    changed = Sample.from_dict({**SAMPLE, "label": "Which city?"})
    assert changed.id != a.id


def test_broken_line_names_file_and_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(SAMPLE) + "\n\n" + '{"tools": [], "messages": [' + "\n")
    with pytest.raises(DataError) as err:
        read_jsonl(path)
    assert str(path) in str(err.value) and ":3:" in str(err.value) and "invalid JSON" in str(err.value)


def test_schema_error_names_file_line_and_problem(tmp_path):
    bad = {**SAMPLE, "label": [{"name": "unknown_tool", "arguments": {}}]}
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(SAMPLE) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=r"data\.jsonl:2: label calls unknown tools \['unknown_tool'\]"):
        read_jsonl(path, Sample.from_dict)


@pytest.mark.parametrize(
    "tool, message",
    [
        ({"name": "", "parameters": {}}, "non-empty"),
        ({"name": "f", "parameters": {"type": "array"}}, "'object'"),
        ({"name": "f", "parameters": {"type": "object", "properties": {}, "required": ["x"]}}, "required"),
        ({"name": "f", "parameters": {"type": "object", "properties": [], "required": []}}, "properties"),
    ],
)
def test_invalid_tools_are_rejected_with_a_reason(tool, message):
    with pytest.raises(ValueError, match=message):
        Tool.from_dict(tool)


def test_openai_wrapped_tool_and_string_arguments():
    tool = Tool.from_dict({"type": "function", "function": TOOL})
    assert tool.name == "get_weather"
    assert Call.from_dict({"name": "f", "arguments": '{"a": 1}'}).arguments == {"a": 1}
    with pytest.raises(ValueError, match="not valid JSON"):
        Call.from_dict({"name": "f", "arguments": "{oops"})


def test_duplicate_tool_names_and_bad_roles_are_rejected():
    with pytest.raises(ValueError, match="unique"):
        Sample.from_dict({**SAMPLE, "tools": [TOOL, TOOL]})
    with pytest.raises(ValueError, match="role"):
        Sample.from_dict({**SAMPLE, "messages": [{"role": "robot", "content": "x"}]})
    with pytest.raises(ValueError, match="origin"):
        Sample.from_dict({**SAMPLE, "origin": "made_up"})


def test_atomic_open_keeps_old_file_on_error(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as handle:
            handle.write("half of the new conte")
            raise RuntimeError("killed")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.jsonl"]  # no temp file left behind


def test_killed_writer_never_leaves_a_half_written_file(tmp_path):
    """A process killed (SIGKILL) in the middle of write_jsonl leaves no output file at all."""
    path = tmp_path / "big.jsonl"
    script = textwrap.dedent(
        f"""
        import os, signal
        from looptool.io import write_jsonl
        def rows():
            for i in range(100000):
                if i == 5000:
                    os.kill(os.getpid(), signal.SIGKILL)
                yield {{"i": i, "pad": "x" * 100}}
        write_jsonl({str(path)!r}, rows())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode != 0
    assert not path.exists()
    write_jsonl(path, ({"i": i} for i in range(3)))
    assert [r["i"] for r in read_jsonl(path)] == [0, 1, 2]


def test_content_hash_is_key_order_free():
    assert content_hash({"a": 1, "b": [1, {"c": 2, "d": 3}]}) == content_hash({"b": [1, {"d": 3, "c": 2}], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": "1"})
