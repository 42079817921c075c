"""Thinking models (issue 16 item 2): a template switch baked into the prepared model, and think
blocks stripped before parsing, scored and counted the same way by the parser, the reward, GRPO,
the probe, the judge's reading of a prediction and the evaluation's call-attempt check.

The model is the tiny random Llama with a chat template written here: LoopTool's own, plus a
Qwen3-style switch that opens ``<think>`` in the generation prompt unless ``enable_thinking`` is false.
"""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from looptool.chat import ChatTemplateError, sample_completion, sample_prompt
from looptool.models import (
    MANIFEST, ModelError, load_model_and_tokenizer, prepare_base_model, tool_chat_template, with_template_kwargs,
    without_template_kwargs,
)
from looptool.schema import Call, Sample, Tool
from looptool.toolcall import (
    THINK_NOT_CLOSED, parse_tool_calls, prompt_opens_thinking, render_calls, split_thinking, tool_call_reward,
)

TOOL = Tool("get_weather", "Weather for a city.",
            {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
LABEL = [Call("get_weather", {"city": "Paris"})]
SAMPLE = Sample([TOOL], [{"role": "user", "content": "Weather in Paris?"}], LABEL)
SAMPLE_B = Sample([TOOL], [{"role": "user", "content": "Is it raining in Paris?"}], LABEL)
CHAT = Sample([TOOL], [{"role": "user", "content": "Hello"}], "Hi! How can I help?")
PLAIN = render_calls(LABEL)
OFF = {"enable_thinking": False}

GENERATION_PROMPT = "{%- if add_generation_prompt -%}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif -%}"
THINKING_GENERATION_PROMPT = (
    "{%- if add_generation_prompt -%}\n    {{- '<|im_start|>assistant\\n' }}\n"
    "    {%- if enable_thinking is not defined or enable_thinking is not false -%}{{- '<think>\\n' }}{%- endif -%}\n"
    "{%- endif -%}"
)


def thinking_template() -> str:
    template = tool_chat_template("json")
    assert template.count(GENERATION_PROMPT) == 1  # the test template is LoopTool's plus the switch
    return template.replace(GENERATION_PROMPT, THINKING_GENERATION_PROMPT)


@pytest.fixture(scope="module")
def thinking_dirs(tmp_path_factory, tiny_model_dir):
    """(the tiny model with the thinking template as shipped, the base model prepared from it with
    ``chat_template_kwargs: {enable_thinking: false}``)."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("thinking")
    source = root / "source"
    shutil.copytree(tiny_model_dir, source)
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.chat_template = thinking_template()
    tokenizer.save_pretrained(source)
    base = root / "base"
    prepare_base_model(str(source), base, chat_template="model", template_kwargs=OFF)
    return source, base


def tokenizer_of(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


# ------------------------------------------------------------------------ the template switch
def test_switch_off_is_baked_into_the_prepared_model(thinking_dirs):
    source, base = thinking_dirs
    shipped, prepared = sample_prompt(tokenizer_of(source), SAMPLE), sample_prompt(tokenizer_of(base), SAMPLE)
    assert shipped.endswith("<|im_start|>assistant\n<think>\n") and prompt_opens_thinking(shipped)
    assert "<think>" not in prepared and prepared.endswith("<|im_start|>assistant\n")
    assert not prompt_opens_thinking(prepared)
    assert json.loads((base / MANIFEST).read_text())["chat_template_kwargs"] == OFF
    # A caller passing the opposite value changes nothing: the model's setting is the one every stage uses.
    assert tokenizer_of(base).apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                                  add_generation_prompt=True, enable_thinking=True).count("<think>") == 0


def test_checkpoints_made_from_the_base_keep_the_switch(thinking_dirs, tmp_path):
    from looptool.train.common import merge_and_save
    from looptool.train.sft import skip_sft

    _, base = thinking_dirs
    skip_sft(base, tmp_path / "sft")  # SFT switched off: the base model under models/sft
    model, tokenizer = load_model_and_tokenizer(base)
    merge_and_save(model, tokenizer, tmp_path / "merged", {"source": "test"})  # what SFT and GRPO write
    for out in (tmp_path / "sft", tmp_path / "merged"):
        _, reloaded = load_model_and_tokenizer(out)
        assert "<think>" not in sample_prompt(reloaded, SAMPLE)


def test_kwargs_block_is_replaced_removed_and_checked():
    template = "{{ enable_thinking }}|{{ budget }}|{{ name }}|{{ tags | join(',') }}|{{ opts.a }}|{{ nothing is none }}"
    baked = with_template_kwargs(template, {"enable_thinking": False, "budget": 1.5, "name": 'say "hi"\\é',
                                            "tags": ["a", "b"], "opts": {"a": 1}, "nothing": None})
    rendered = ImmutableSandboxedEnvironment().from_string(baked).render(enable_thinking=True)
    assert rendered == 'False|1.5|say "hi"\\é|a,b|1|True'
    rebaked = with_template_kwargs(baked, {"enable_thinking": True})
    assert rebaked.count("set enable_thinking") == 1 and "budget" not in rebaked.split("{{")[0]
    assert with_template_kwargs(baked, {}) == template == without_template_kwargs(baked)
    for bad in ("messages", "not-a-name", "true"):
        with pytest.raises(ModelError, match="chat_template_kwargs"):
            with_template_kwargs(template, {bad: 1})


def test_base_model_section_reads_the_kwargs():
    from looptool.models import BaseModelConfig
    from looptool.params import ParamsError, section_config

    cfg = section_config({"base_model": {"chat_template_kwargs": {"enable_thinking": False}}}, "base_model", BaseModelConfig)
    assert cfg.chat_template_kwargs == OFF and BaseModelConfig().chat_template_kwargs == {}
    with pytest.raises(ParamsError, match="base_model.chat_template_kwargs"):
        section_config({"base_model": {"chat_template_kwargs": "enable_thinking=false"}}, "base_model", BaseModelConfig)


# ------------------------------------------------------- the acceptance test: the same parsed calls
def test_same_calls_with_thinking_switched_off_and_with_a_think_block_stripped(thinking_dirs):
    source, base = thinking_dirs
    completion = sample_completion(tokenizer_of(base), SAMPLE).removesuffix("<|im_end|>")
    assert "<think>" not in completion
    switched_off = parse_tool_calls(completion)
    stripped = parse_tool_calls("<think>\nThe user wants Paris; get_weather fits.\n</think>\n" + PLAIN)
    # The shipped template opened the block in the prompt: the output starts inside the thought.
    in_thought = parse_tool_calls("The user wants Paris.\n</think>\n\n" + PLAIN, in_thought=True)
    assert switched_off.calls == stripped.calls == in_thought.calls == LABEL
    assert (switched_off.thinking, stripped.thinking, in_thought.thinking) == (False, True, True)
    assert stripped.thought == "The user wants Paris; get_weather fits." and stripped.answer == PLAIN
    assert tool_call_reward(completion, LABEL) == tool_call_reward("<think>x</think>" + PLAIN, LABEL) == 1.0
    assert tool_call_reward("Paris.</think>" + PLAIN, LABEL, in_thought=prompt_opens_thinking(
        sample_prompt(tokenizer_of(source), SAMPLE))) == 1.0


def test_a_call_written_inside_the_thought_is_not_the_answer():
    thought = "<think>Maybe <tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n</tool_call>? No.</think>\n"
    assert parse_tool_calls(thought + PLAIN).calls == LABEL
    assert parse_tool_calls(thought + "Which city do you mean?").calls == []
    assert tool_call_reward(thought + "Hi! What can I do?", "a text reply") == 1.0


@pytest.mark.parametrize("output, in_thought", [
    ("<think>I should call get_weather with Paris. " + PLAIN, False),  # the limit cut the thought
    ("I should call get_weather. " + PLAIN, True),  # the prompt opened it; never closed
    ("<think>", False),
])
def test_an_unclosed_think_block_is_no_answer(output, in_thought):
    parsed = parse_tool_calls(output, in_thought=in_thought)
    assert parsed.error == THINK_NOT_CLOSED and parsed.calls == [] and parsed.thinking
    assert tool_call_reward(output, LABEL, in_thought=in_thought) == 0.0
    assert tool_call_reward(output, "a text reply", in_thought=in_thought) == 0.0


def test_text_labels_score_the_answer_after_the_block():
    assert tool_call_reward("<think>greet back</think>\nHi! How can I help?", "Hi!") == 1.0
    assert tool_call_reward("<think>greet back</think>\n", "Hi!") == 0.0  # nothing after the thought
    assert tool_call_reward("<think>\n\n</think>\n\nHello!", "Hi!") == 1.0  # Qwen3's empty block
    assert parse_tool_calls("<think>\n\n</think>\n\nHello!").thought == ""


def test_split_thinking_leaves_other_text_alone():
    assert split_thinking(PLAIN) == split_thinking(PLAIN, in_thought=False)
    assert split_thinking(PLAIN).thought is None and split_thinking(PLAIN).answer == PLAIN
    quoted = "Use <think>...</think> tags to reason."
    assert split_thinking(quoted).answer == quoted  # not at the start: just text
    assert split_thinking("  <think>a</think>  b").answer == "b"
    assert not prompt_opens_thinking("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # Qwen3, thinking off


# ------------------------------------------------------------------ the stages that read outputs
def test_training_rows_and_the_grpo_reward_use_the_switch(thinking_dirs):
    from looptool.train.data import grpo_rows, sft_rows
    from looptool.train.grpo import CompletionRecorder
    from looptool.train.rewards import binary_tool_call_reward, partial_tool_call_reward

    source, base = thinking_dirs
    sft = sft_rows([SAMPLE, CHAT], tokenizer_of(base))
    rows, _ = grpo_rows([SAMPLE], tokenizer_of(base), 2048)
    assert all("<think>" not in r["prompt"] + r["completion"] for r in sft) and "<think>" not in rows[0]["prompt"]
    assert parse_tool_calls(sft[0]["completion"].removesuffix("<|im_end|>")).calls == LABEL
    with pytest.raises(ChatTemplateError, match="enable_thinking: false"):
        sft_rows([SAMPLE], tokenizer_of(source))  # thinking on: the answer does not follow the prompt

    thinking_prompt = grpo_rows([SAMPLE], tokenizer_of(source), 2048)[0][0]["prompt"]
    label = json.dumps([c.to_dict() for c in LABEL])
    completions = ["Paris.</think>\n" + PLAIN, "Paris, so " + PLAIN, "<think>ok</think>" + PLAIN]
    prompts = [thinking_prompt, thinking_prompt, rows[0]["prompt"]]
    assert binary_tool_call_reward(completions=completions, label=[label] * 3, prompts=prompts) == [1.0, 0.0, 1.0]
    assert partial_tool_call_reward(completions=completions, label=[label] * 3, prompts=prompts) == [1.0, 0.0, 1.0]
    # Without the prompts the second one would be read as if its thought were the answer.
    assert binary_tool_call_reward(completions=completions[1:2], label=[label]) == [1.0]

    recorder = CompletionRecorder(binary_tool_call_reward, every=1, groups=1, group_size=3)
    assert recorder(prompts, completions, [label] * 3) == [1.0, 0.0, 1.0]
    assert recorder.thinking == {"completions": 3, "with_think": 3, "think_unclosed": 1}


def test_sft_and_grpo_train_on_prompts_without_the_opener(thinking_dirs, tmp_path, monkeypatch):
    from looptool.io import write_jsonl
    from looptool.llm.policy import GenerationSettings
    from looptool.train.grpo import run_grpo
    from looptool.train.sft import run_sft

    monkeypatch.chdir(tmp_path)  # rolling checkpoints go to ./checkpoints
    _, base = thinking_dirs
    data = tmp_path / "train.jsonl"
    write_jsonl(data, [SAMPLE.to_dict(), CHAT.to_dict()])
    lora = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
    run_sft(base, data, tmp_path / "sft", {"device": "cpu", "max_steps": 1, "per_device_train_batch_size": 2,
                                           "logging_steps": 1, "save_steps": 1}, lora)
    result = run_grpo(tmp_path / "sft", data, tmp_path / "r1",
                      {"device": "cpu", "max_steps": 1, "num_generations": 2, "per_device_train_batch_size": 2,
                       "logging_steps": 1, "save_steps": 1, "max_prompt_length": 1024}, lora,
                      generation=GenerationSettings(max_new_tokens=4))
    assert result["completions"] and all("<think>" not in r["prompt_tail"] for r in result["completions"])
    assert result["rollouts_think_unclosed"] == 0
    for out in (tmp_path / "sft", tmp_path / "r1"):
        assert "<think>" not in sample_prompt(load_model_and_tokenizer(out)[1], SAMPLE)


class CannedEngine:
    """A policy engine that answers every prompt with the next canned text (records the prompts)."""

    def __init__(self, tokenizer, texts):
        self.tokenizer, self.texts, self.prompts = tokenizer, list(texts), []

    def generate(self, prompts, config):
        self.prompts += prompts
        return [SimpleNamespace(text=t, perplexity=1.5, num_tokens=4, finish_reason="eos") for t in self.texts]


def test_probe_strips_scores_and_counts_think_blocks(thinking_dirs):
    from looptool.loop.probe import RetentionRule, probe, probe_metrics, split_by_probe

    source, base = thinking_dirs
    samples = [SAMPLE, SAMPLE_B, CHAT]
    off = CannedEngine(tokenizer_of(base), [PLAIN, "<think>Paris</think>\n" + PLAIN, "<think>greet"])
    results = probe(off, samples, batch_size=2)
    assert [r.mastered for r in results] == [True, True, False]
    assert [r.thinking for r in results] == [False, True, True]
    assert all("<think>" not in p for p in off.prompts)
    metrics = probe_metrics(samples, results, split_by_probe(samples, results, RetentionRule("median")))
    assert (metrics["with_think"], metrics["think_unclosed"], metrics["unparsable"]) == (2, 1, 1)
    # The shipped template opens the block in the prompt: output without </think> is an unfinished thought.
    on = CannedEngine(tokenizer_of(source), ["Paris.</think>\n" + PLAIN, PLAIN, "Hi! How can I help?"])
    assert [r.mastered for r in probe(on, samples, batch_size=2)] == [True, False, False]


def test_judge_and_evaluation_read_the_answer_only():
    from looptool.eval.ast_checker import is_call_attempt
    from looptool.loop.judge import predicted_label

    probed = Sample([TOOL], SAMPLE.messages, LABEL, meta={"probe": {"prediction": "<think>hm</think>\nWhich city?", "calls": []}})
    assert predicted_label(probed) == "Which city?"
    assert not is_call_attempt("<think>Maybe <tool_call>?</think>\nNo tool fits this request.")
    assert is_call_attempt("<think>I will call <tool_call>")  # no answer at all: a failed attempt
    assert is_call_attempt("<think>x</think>" + PLAIN)

