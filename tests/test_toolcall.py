"""Parser, matcher and binary reward on literal inputs (DESIGN.md §4)."""

import pytest

from looptool.schema import Call
from looptool.toolcall import (
    calls_match,
    parse_tool_calls,
    render_call,
    render_calls,
    tool_call_reward,
)


def block(body: str) -> str:
    return f"<tool_call>\n{body}\n</tool_call>"


WEATHER = Call("get_weather", {"city": "Paris", "unit": "celsius"})
TIME = Call("get_time", {"tz": "Europe/Paris"})


def test_render_then_parse_round_trips():
    text = render_calls([WEATHER, TIME])
    assert text == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}\n</tool_call>'
    )
    assert parse_tool_calls(text).calls == [WEATHER, TIME]


def test_parallel_calls_in_another_order_match():
    out = render_calls([TIME, WEATHER])
    assert tool_call_reward(out, [WEATHER, TIME]) == 1.0


def test_duplicated_calls_are_counted():
    twice = render_calls([WEATHER, WEATHER])
    assert tool_call_reward(twice, [WEATHER]) == 0.0
    assert tool_call_reward(render_call(WEATHER), [WEATHER, WEATHER]) == 0.0
    assert tool_call_reward(twice, [WEATHER, WEATHER]) == 1.0


def test_argument_key_order_is_free():
    out = block('{"name": "get_weather", "arguments": {"unit": "celsius", "city": "Paris"}}')
    assert tool_call_reward(out, [WEATHER]) == 1.0


def test_int_and_string_differ():
    label = [Call("set_volume", {"level": 5})]
    assert tool_call_reward(block('{"name": "set_volume", "arguments": {"level": "5"}}'), label) == 0.0
    assert tool_call_reward(block('{"name": "set_volume", "arguments": {"level": 5}}'), label) == 1.0


def test_float_and_int_of_equal_value_match_but_bool_is_not_a_number():
    label = [Call("set_volume", {"level": 5})]
    assert tool_call_reward(block('{"name": "set_volume", "arguments": {"level": 5.0}}'), label) == 1.0
    assert tool_call_reward(block('{"name": "set_volume", "arguments": {"level": 5.5}}'), label) == 0.0
    assert tool_call_reward(block('{"name": "f", "arguments": {"x": true}}'), [Call("f", {"x": 1})]) == 0.0


def test_nested_objects_and_arrays():
    label = [Call("book", {"guests": [{"name": "Ann", "age": 30}, {"name": "Bo", "age": 4}], "opts": {"a": [1, 2]}})]
    same = block('{"name": "book", "arguments": {"opts": {"a": [1, 2.0]}, "guests": [{"age": 30, "name": "Ann"}, {"name": "Bo", "age": 4}]}}')
    reordered_list = block('{"name": "book", "arguments": {"opts": {"a": [2, 1]}, "guests": [{"age": 30, "name": "Ann"}, {"name": "Bo", "age": 4}]}}')
    assert tool_call_reward(same, label) == 1.0
    assert tool_call_reward(reordered_list, label) == 0.0  # list order is data


def test_text_label_with_and_without_a_call():
    assert tool_call_reward("Which city do you mean?", "Which city?") == 1.0
    assert tool_call_reward(render_call(WEATHER), "Which city?") == 0.0
    assert tool_call_reward("Sure, let me check.", [WEATHER]) == 0.0


def test_text_label_needs_a_reply_that_ended():
    # Issue 14 item 6: an empty completion, or a reply cut off by the length limit, is not an answer.
    assert tool_call_reward("", "any text") == 0.0
    assert tool_call_reward("  \n", "any text") == 0.0
    assert tool_call_reward("Which city do you mean", "Which city?", ended=False) == 0.0
    assert tool_call_reward("Which city do you mean?", "Which city?", ended=True) == 1.0
    # A complete call is judged on its calls; stopping right after the last call is normal.
    assert tool_call_reward(render_call(WEATHER), [WEATHER], ended=False) == 1.0


def test_several_blocks_with_prose_between_and_after():
    out = "I'll check both.\n" + render_call(WEATHER) + "\nand\n" + render_call(TIME) + "\nDone, waiting for results."
    result = parse_tool_calls(out)
    assert result.ok and result.calls == [WEATHER, TIME]


def test_code_fences_inside_and_around():
    fenced_inside = "<tool_call>\n```json\n" + '{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}' + "\n```\n</tool_call>"
    assert parse_tool_calls(fenced_inside).calls == [TIME]
    fenced_bare = '```json\n{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}\n```'
    assert parse_tool_calls(fenced_bare).calls == [TIME]


def test_truncated_json_is_an_error_not_an_exception():
    out = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par'
    result = parse_tool_calls(out)
    assert not result.ok and "not closed" in result.error
    assert tool_call_reward(out, [WEATHER]) == 0.0
    assert tool_call_reward(out, "text") == 0.0  # a broken call attempt is not a text reply


def test_invalid_json_in_a_closed_block_reports_the_block():
    out = render_call(WEATHER) + "\n" + block('{"name": "get_time", arguments: {}}')
    result = parse_tool_calls(out)
    assert not result.ok and "block 2" in result.error and "invalid JSON" in result.error


def test_a_block_holding_a_json_list():
    out = block('[{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}, {"name": "get_time", "arguments": {"tz": "Europe/Paris"}}]')
    assert parse_tool_calls(out).calls == [WEATHER, TIME]
    assert tool_call_reward(out, [TIME, WEATHER]) == 1.0


def test_unknown_extra_keys_in_a_call_are_ignored():
    out = block('{"name": "get_time", "arguments": {"tz": "Europe/Paris"}, "id": "call_1", "type": "function"}')
    assert tool_call_reward(out, [TIME]) == 1.0


def test_extra_argument_is_a_mismatch():
    out = block('{"name": "get_time", "arguments": {"tz": "Europe/Paris", "fmt": "24h"}}')
    assert tool_call_reward(out, [TIME]) == 0.0


def test_arguments_as_json_string_and_parameters_alias():
    as_string = block('{"name": "get_time", "arguments": "{\\"tz\\": \\"Europe/Paris\\"}"}')
    alias = block('{"name": "get_time", "parameters": {"tz": "Europe/Paris"}}')
    assert parse_tool_calls(as_string).calls == [TIME]
    assert parse_tool_calls(alias).calls == [TIME]


@pytest.mark.parametrize(
    "body, reason",
    [
        ('{"arguments": {}}', "name"),
        ('{"name": "f", "arguments": [1, 2]}', "arguments"),
        ('"just a string"', "call object"),
        ("", "empty"),
    ],
)
def test_malformed_call_objects_give_reasons(body, reason):
    result = parse_tool_calls(block(body))
    assert not result.ok and reason in result.error
    assert tool_call_reward(block(body), [TIME]) == 0.0


def test_several_objects_in_one_block():
    out = block('{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}')
    assert parse_tool_calls(out).calls == [TIME, WEATHER]


@pytest.mark.parametrize("junk", [None, 42, "<tool_call>", "<tool_call></tool_call>", "{" * 5000, "[" * 100000, "<tool_call>" + "[" * 100000 + "</tool_call>", "\x00\xff"])
def test_reward_never_raises(junk):
    assert tool_call_reward(junk, [TIME]) == 0.0


def test_plain_prose_with_braces_is_a_text_reply():
    result = parse_tool_calls("Use {curly} braces like {this}.")
    assert result.ok and result.calls == []


def test_calls_match_is_a_multiset_comparison():
    assert calls_match([WEATHER, TIME], [TIME, WEATHER])
    assert not calls_match([WEATHER], [WEATHER, WEATHER])
    assert not calls_match([], [WEATHER])
    assert calls_match([], [])


def test_empty_call_label_means_no_call_expected():
    assert tool_call_reward("No tool needed.", []) == 1.0
    assert tool_call_reward(render_call(TIME), []) == 0.0
