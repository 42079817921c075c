"""EDDE on literal generator replies: shape-constrained schema, rule checks, lineage, ledger."""

import jsonschema
import pytest

from looptool.loop.expand import AXES, RejectedVariant, plan_variants, variant_messages, variant_sample, variant_schema
from looptool.schema import Call, Sample, Tool

TOOL = Tool("convert_length", "Convert a length.", {
    "type": "object",
    "properties": {"value": {"type": "number"}, "unit": {"type": "string", "enum": ["inch", "cm"]}},
    "required": ["value", "unit"],
})
SEED = Sample([TOOL], [{"role": "user", "content": "How many cm is 4 inch?"}], [Call("convert_length", {"value": 4, "unit": "inch"})],
              origin="error_seed", meta={"probe": {"prediction": "<tool_call>{\"name\": \"convert_length\", \"arguments\": {\"value\": \"4 inch\"}}</tool_call>"},
                                          "judge": {"analysis": "value given with its unit as one string"}})


def test_schema_fixes_the_number_of_calls_and_the_tools():
    schema = variant_schema(SEED)
    good = {"user_message": "Please turn 12 inch into centimetres.", "calls": [{"name": "convert_length", "arguments": {"value": 12, "unit": "inch"}}]}
    jsonschema.validate(good, schema)
    for bad in ({**good, "calls": []}, {**good, "calls": good["calls"] * 2},
                {**good, "calls": [{"name": "other", "arguments": {}}]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_prompt_holds_the_error_and_the_axis():
    text = variant_messages(SEED, "data_values")[1]["content"]
    assert "value given with its unit" in text and '"4 inch"' in text and AXES["data_values"] in text


def test_variant_becomes_a_sample_with_lineage():
    reply = {"user_message": "My board is 30 inch long, what is that in cm?", "calls": [{"name": "convert_length", "arguments": {"value": 30, "unit": "inch"}}]}
    sample = variant_sample(SEED, reply, "persona", 300)
    assert sample.origin == "edde" and sample.parent == SEED.id and sample.meta["axis"] == "persona"
    assert sample.messages == [{"role": "user", "content": reply["user_message"]}]


@pytest.mark.parametrize("reply, code", [
    ({"user_message": "Convert 30 inch please", "calls": [{"name": "convert_length", "arguments": {"value": 31, "unit": "inch"}}]}, "ungrounded_value"),
    ({"user_message": "Convert 30 inch please", "calls": [{"name": "convert_length", "arguments": {"value": 30, "unit": "mile"}}]}, "invalid_arguments"),
    ({"user_message": "hi", "calls": []}, "bad_message_length"),
    ({"calls": []}, "malformed_variant"),
    ({"user_message": "How many cm is 4 inch?", "calls": [{"name": "convert_length", "arguments": {"value": 4, "unit": "inch"}}]}, "same_as_seed"),
])
def test_rule_failures_are_named(reply, code):
    with pytest.raises(RejectedVariant) as err:
        variant_sample(SEED, reply, "persona", 300)
    assert err.value.code == code


def test_text_label_seeds_expand_into_text_replies():
    seed = Sample([TOOL], [{"role": "user", "content": "Convert my length"}], "Which length and unit?", origin="error_seed")
    assert "reply" in variant_schema(seed)["properties"]
    sample = variant_sample(seed, {"user_message": "Can you convert something for me?", "reply": "Sure, what value and unit?"}, "persona", 300)
    assert sample.label == "Sure, what value and unit?"


def test_plan_is_seeded_and_varies_axes():
    plan = plan_variants([SEED], 3, seed=0)
    assert plan == plan_variants([SEED], 3, seed=0) and len({axis for _, _, axis in plan}) == 3


def test_max_seeds_draws_a_seeded_subset_independent_of_order():
    seeds = [Sample([TOOL], [{"role": "user", "content": f"How many cm is {n} inch?"}],
                    [Call("convert_length", {"value": n, "unit": "inch"})], origin="error_seed") for n in range(1, 7)]
    plan = plan_variants(seeds, 2, seed=0, max_seeds=3)
    chosen = {seeds[i].id for i, _, _ in plan}
    assert len(plan) == 6 and len(chosen) == 3
    reversed_seeds = list(reversed(seeds))
    assert {reversed_seeds[i].id for i, _, _ in plan_variants(reversed_seeds, 2, seed=0, max_seeds=3)} == chosen
    assert len(plan_variants(seeds, 2, seed=0, max_seeds=None)) == 12
    assert len(plan_variants(seeds, 2, seed=0, max_seeds=10)) == 12


# Issue 14 item 2: a corrected seed (LABEL_WRONG) shows its old label as the wrong answer, and a
# multi-step seed keeps its tool-result history.
LOOKUP = Tool("find_order", "Find an order id by customer e-mail.", {
    "type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]})
STATUS = Tool("order_status", "Status of an order.", {
    "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]})


def test_a_corrected_seed_shows_its_old_label_as_the_wrong_answer():
    prediction = '<tool_call>{"name": "convert_length", "arguments": {"value": 4, "unit": "cm"}}</tool_call>'
    corrected = Sample([TOOL], [{"role": "user", "content": "How many inch is 4 cm?"}],
                       [Call("convert_length", {"value": 4, "unit": "cm"})], origin="corrected",
                       meta={"probe": {"prediction": prediction},
                             "old_label": [{"name": "convert_length", "arguments": {"value": 4, "unit": "inch"}}]})
    text = variant_messages(corrected, "persona")[1]["content"]
    correct_part, wrong_part = text.split("The assistant's wrong answer:")
    assert '"cm"' in correct_part.split("Correct answer:")[1]
    assert '"inch"' in wrong_part.split("Error analysis")[0] and '"cm"' not in wrong_part.split("Error analysis")[0]


def test_a_multi_step_seed_keeps_its_tool_results():
    first = [{"name": "find_order", "arguments": {"email": "ann@example.org"}}]
    history = [{"role": "user", "content": "Where is the order of ann@example.org?"},
               {"role": "assistant", "content": "", "tool_calls": first},
               {"role": "tool", "name": "find_order", "content": '{"order_id": "ORD-7781"}'}]
    seed = Sample([LOOKUP, STATUS], history, [Call("order_status", {"order_id": "ORD-7781"})], origin="error_seed")
    text = variant_messages(seed, "persona")[1]["content"]
    assert "ORD-7781" in text
    reply = {"user_message": "Hi, could you check what happened to the order of ann@example.org?",
             "calls": [{"name": "order_status", "arguments": {"order_id": "ORD-7781"}}]}
    sample = variant_sample(seed, reply, "persona", 300)
    assert [m["role"] for m in sample.messages] == ["user", "assistant", "tool"]
    assert sample.messages[0]["content"] == reply["user_message"] and sample.messages[2] == history[2]
    assert sample.label == [Call("order_status", {"order_id": "ORD-7781"})]
