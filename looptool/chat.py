"""Prompt rendering, in one place: messages + tools -> prompt text via the tokenizer's template.

SFT, GRPO, probing and evaluation all build their prompts here, so a model sees the same text at
training and at test time. The completion for a label is derived from the same template (the
text the template adds when the label is appended as the assistant's next message), which keeps
this correct for any model whose template renders tools — ours or, say, a Qwen3 checkpoint's.

Template variables such as Qwen3's ``enable_thinking`` are not passed here: ``base_model.chat_template_kwargs``
bakes them into the template of the prepared model (``looptool.models.with_template_kwargs``), so
every stage that renders with that model's tokenizer gets the same prompt without reading params.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from looptool.schema import Label, Sample, Tool
from looptool.tool_text import tool_text


class ChatTemplateError(ValueError):
    """The tokenizer cannot render tool-calling conversations."""


def _template_tools(tools: Sequence[Tool | dict]) -> list[dict[str, Any]]:
    return [t.to_openai() if isinstance(t, Tool) else Tool.from_dict(t).to_openai() for t in tools]


def _template_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our messages carry calls as {"name", "arguments"}; templates expect the OpenAI nesting."""
    out = []
    for msg in messages:
        msg = dict(msg)
        if msg.get("tool_calls"):
            msg["tool_calls"] = [
                c if "function" in c else {"type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in msg["tool_calls"]
            ]
        out.append(msg)
    return out


def label_message(label: Label) -> dict[str, Any]:
    """The assistant message that says exactly what the label says."""
    if isinstance(label, str):
        return {"role": "assistant", "content": label}
    return {"role": "assistant", "content": "", "tool_calls": [c.to_dict() for c in label]}


def check_chat_template(tokenizer: Any) -> None:
    """Fail early, with advice, when the tokenizer has no template or drops tools silently."""
    if not getattr(tokenizer, "chat_template", None):
        raise ChatTemplateError(
            "the tokenizer has no chat template; set base_model.chat_template: looptool in params.yaml "
            "to install LoopTool's tool-aware template"
        )
    probe_tool = Tool(
        name="looptool_probe_tool",
        description="probe",
        parameters={"type": "object", "properties": {"probe_arg": {"type": "string"}}, "required": []},
    )
    text = render_prompt(tokenizer, [{"role": "user", "content": "hi"}], [probe_tool])
    if "looptool_probe_tool" not in text or "probe_arg" not in text:
        raise ChatTemplateError(
            "the tokenizer's chat template ignores `tools` (the tool list does not appear in the prompt); "
            "set base_model.chat_template: looptool in params.yaml to install LoopTool's tool-aware template"
        )


def render_prompt(
    tokenizer: Any,
    messages: Sequence[dict[str, Any]],
    tools: Sequence[Tool | dict] = (),
    add_generation_prompt: bool = True,
) -> str:
    """The prompt string the model continues from.

    ``tool_texts`` (the compact tool lines of ``looptool.tool_text``) go along for LoopTool's
    template in its compact format; other templates ignore them.
    """
    template_tools = _template_tools(tools)
    return tokenizer.apply_chat_template(
        _template_messages(messages),
        tools=template_tools or None,
        tool_texts=[tool_text(t) for t in template_tools],
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
    )


def render_completion(tokenizer: Any, messages: Sequence[dict[str, Any]], tools: Sequence[Tool | dict], label: Label) -> str:
    """The text a perfect model writes after :func:`render_prompt`, end-of-turn marker included."""
    prompt = render_prompt(tokenizer, messages, tools)
    full = render_prompt(tokenizer, [*messages, label_message(label)], tools, add_generation_prompt=False)
    if not full.startswith(prompt):
        hint = ""
        if prompt.rstrip().endswith("<think>"):  # looptool.toolcall.prompt_opens_thinking, not imported
            # here: the stages that render prompts need not depend on the parser
            hint = ("; the generation prompt opens a <think> block that the rendered answer does not have: "
                    "switch thinking off (base_model.chat_template_kwargs: {enable_thinking: false})")
        raise ChatTemplateError(
            "the chat template does not render the conversation so far as a prefix of the conversation "
            f"with the answer appended; prompts and completions cannot be split for training{hint}"
        )
    # Templates end a turn with a newline after the end-of-turn token; generation stops before it.
    return full[len(prompt):].rstrip("\n")


def sample_prompt(tokenizer: Any, sample: Sample) -> str:
    return render_prompt(tokenizer, sample.messages, sample.tools)


def sample_completion(tokenizer: Any, sample: Sample) -> str:
    return render_completion(tokenizer, sample.messages, sample.tools, sample.label)

