"""Prompt rendering and the base-model builders, on the tiny random Llama."""

import json
import shutil

import pytest

from looptool.chat import ChatTemplateError, check_chat_template, render_completion, render_prompt, sample_completion, sample_prompt
from looptool.models import ModelError, load_model_and_tokenizer, prepare_base_model
from looptool.schema import Call, Sample, Tool
from looptool.toolcall import parse_tool_calls, render_calls

TOOLS = [
    Tool("get_weather", "Current weather for a city.", {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    }),
    Tool("get_time", "Local time in a time zone.", {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}),
]


def make_sample(label, messages=None):
    return Sample(tools=TOOLS, messages=messages or [{"role": "user", "content": "Weather and time in Paris?"}], label=label)


def test_prompt_lists_every_tool_name_and_schema(smollm2_tokenizer):
    prompt = sample_prompt(smollm2_tokenizer, make_sample("ok"))
    for tool in TOOLS:
        assert tool.name in prompt
        assert json.dumps(tool.to_dict(), ensure_ascii=False) in prompt  # the full schema, verbatim
    assert prompt.endswith("<|im_start|>assistant\n")
    assert "Weather and time in Paris?" in prompt


def test_completion_is_the_rendered_label_plus_end_of_turn(smollm2_tokenizer):
    label = [Call("get_weather", {"city": "Paris"}), Call("get_time", {"tz": "Europe/Paris"})]
    completion = sample_completion(smollm2_tokenizer, make_sample(label))
    assert completion == render_calls(label) + "<|im_end|>"
    assert parse_tool_calls(completion.removesuffix("<|im_end|>")).calls == label
    assert sample_completion(smollm2_tokenizer, make_sample("Which city?")) == "Which city?<|im_end|>"


def test_history_with_calls_and_tool_results_renders_in_order(smollm2_tokenizer):
    messages = [
        {"role": "system", "content": "You are a travel assistant."},
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {"tz": "Europe/Paris"}}]},
        {"role": "tool", "name": "get_weather", "content": '{"temp": 21}'},
        {"role": "tool", "name": "get_time", "content": '{"time": "14:02"}'},
    ]
    prompt = render_prompt(smollm2_tokenizer, messages, TOOLS)
    assert prompt.startswith("<|im_start|>system\nYou are a travel assistant.")
    order = ["Weather and time", '"name": "get_weather"', '"name": "get_time", "arguments"', '{"temp": 21}', '{"time": "14:02"}', "<|im_start|>assistant\n"]
    positions = [prompt.rindex(s) for s in order]
    assert positions == sorted(positions)
    assert prompt.count("<tool_response>") == 2 and prompt.count("<|im_start|>user") == 2  # results share one turn
    completion = render_completion(smollm2_tokenizer, messages, TOOLS, "It is 21 degrees and 14:02.")
    assert completion == "It is 21 degrees and 14:02.<|im_end|>"


def test_every_tool_and_every_tool_result_starts_its_own_line(smollm2_tokenizer):
    # transformers renders templates with trim_blocks: a literal newline after a block tag vanished,
    # which glued "# Tools" to the next sentence, all schemas into one line, and "user<tool_response>".
    messages = [{"role": "user", "content": "Time in Paris?"},
                {"role": "assistant", "content": "", "tool_calls": [{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}]},
                {"role": "tool", "name": "get_time", "content": '{"time": "14:02"}'}]
    prompt = render_prompt(smollm2_tokenizer, messages, TOOLS)
    lines = prompt.split("\n")
    start = lines.index("<tools>")
    assert lines[start - 2] == "# Tools" and lines[start - 1].startswith("The following tools are available.")
    assert [json.loads(line)["name"] for line in lines[start + 1:start + 3]] == ["get_weather", "get_time"]
    assert lines[start + 3] == "</tools>"
    assert prompt.endswith('<|im_start|>user\n<tool_response>\n{"time": "14:02"}\n</tool_response><|im_end|>\n'
                           "<|im_start|>assistant\n")


def test_template_without_tools_has_no_tool_section(smollm2_tokenizer):
    prompt = render_prompt(smollm2_tokenizer, [{"role": "user", "content": "hi"}])
    assert "<tools>" not in prompt


def test_tokenizer_without_template_or_dropping_tools_is_refused(smollm2_tokenizer):
    import copy

    tok = copy.deepcopy(smollm2_tokenizer)
    tok.chat_template = None
    with pytest.raises(ChatTemplateError, match="no chat template"):
        check_chat_template(tok)
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(ChatTemplateError, match="ignores `tools`"):
        check_chat_template(tok)
    check_chat_template(smollm2_tokenizer)


def test_pad_differs_from_end_of_turn(smollm2_tokenizer):
    assert smollm2_tokenizer.eos_token == "<|im_end|>"
    assert smollm2_tokenizer.pad_token_id != smollm2_tokenizer.eos_token_id


def test_tiny_model_reloads_and_generates(tiny_model_dir):
    import torch

    model, tok = load_model_and_tokenizer(tiny_model_dir)
    prompt = sample_prompt(tok, make_sample("ok"))
    inputs = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 5 or out[0, -1].item() == tok.eos_token_id
    assert json.loads((tiny_model_dir / "looptool_model.json").read_text())["source"] == "tiny-random"


def test_local_model_directory_is_validated_and_linked(tiny_model_dir, tmp_path):
    out = tmp_path / "base"
    info = prepare_base_model(str(tiny_model_dir), out)
    assert info["chat_template"] == "model"
    weights = next(out.glob("*.safetensors"))
    assert weights.stat().st_ino == (tiny_model_dir / weights.name).stat().st_ino  # hard link, no copy
    load_model_and_tokenizer(out)
    assert not list(tmp_path.glob(".*partial"))


def test_local_model_problems_are_clear_errors(tiny_model_dir, tmp_path):
    with pytest.raises(ModelError, match="neither 'embedded'"):
        prepare_base_model(str(tmp_path / "missing"), tmp_path / "out")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    for weights in broken.glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(ModelError, match="no weights"):
        prepare_base_model(str(broken), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    notemplate = tmp_path / "notemplate"
    shutil.copytree(tiny_model_dir, notemplate)
    (notemplate / "chat_template.jinja").unlink()
    cfg = json.loads((notemplate / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (notemplate / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ChatTemplateError, match="no chat template"):
        prepare_base_model(str(notemplate), tmp_path / "out")
    prepare_base_model(str(notemplate), tmp_path / "out", chat_template="looptool")  # the documented fix
