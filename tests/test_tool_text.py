"""The compact tool rendering on literal schemas, and LoopTool's template in both formats (issue 15 item 1)."""

import pytest

from looptool.chat import render_completion, render_prompt
from looptool.models import prepare_tokenizer
from looptool.schema import Call, Tool
from looptool.tool_text import tool_text, type_text

WEATHER = Tool("get_weather", "Weather for a city.", {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name, e.g. Paris."},
                   "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
                   "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["city"]})


def test_signature_keeps_names_types_required_enums_defaults_bounds_and_descriptions():
    assert tool_text(WEATHER.to_dict()) == (
        'get_weather(city: string, unit?: "c"|"f" = "c", days?: integer (>=1, <=7)) -- Weather for a city.\n'
        "  city: City name, e.g. Paris.")
    assert tool_text(WEATHER.to_openai()) == tool_text(WEATHER.to_dict())


@pytest.mark.parametrize("schema, text", [
    ({"type": "array", "items": {"type": "number"}}, "list[number]"),
    ({"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "string"}}, "required": ["x"]},
     "{x: number, y?: string}"),
    ({"type": "string", "format": "date"}, "string<date>"),
    ({"type": ["string", "null"]}, "string or null"),
    ({"type": "string", "pattern": "^[A-Z]{3}$", "maxLength": 3}, "string matching ^[A-Z]{3}$ (len<=3)"),
    ({}, "any"),
])
def test_type_text(schema, text):
    assert type_text(schema) == text


def test_nested_fields_are_described_by_path():
    tool = {"name": "book", "description": "Book stops.", "parameters": {"type": "object", "properties": {
        "stops": {"type": "array", "description": "Where to stop.",
                  "items": {"type": "object", "properties": {"name": {"type": "string", "description": "Stop name."}},
                            "required": ["name"]}}}, "required": ["stops"]}}
    assert tool_text(tool) == ("book(stops: list[{name: string}]) -- Book stops.\n"
                               "  stops: Where to stop.\n  stops.name: Stop name.")


def test_the_template_renders_either_format_and_calls_stay_json(smollm2_tokenizer):
    import copy

    messages = [{"role": "user", "content": "Weather in Paris?"}]
    json_prompt = render_prompt(smollm2_tokenizer, messages, [WEATHER])
    compact = prepare_tokenizer(copy.deepcopy(smollm2_tokenizer), "looptool", "compact")
    compact_prompt = render_prompt(compact, messages, [WEATHER])
    assert '"properties"' in json_prompt and '"properties"' not in compact_prompt
    assert tool_text(WEATHER.to_dict()) in compact_prompt
    assert len(compact(compact_prompt)["input_ids"]) < len(smollm2_tokenizer(json_prompt)["input_ids"])
    # The answer the model learns is the same JSON call in both formats.
    label = [Call("get_weather", {"city": "Paris"})]
    assert render_completion(compact, messages, [WEATHER], label) == render_completion(smollm2_tokenizer, messages,
                                                                                       [WEATHER], label)
    with pytest.raises(Exception, match="render_prompt"):
        compact.apply_chat_template(messages, tools=[WEATHER.to_openai()], tokenize=False)
