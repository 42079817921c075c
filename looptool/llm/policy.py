"""Policy inference: batched decoding of the model being trained, with per-token log-probabilities.

Used by greedy capability probing (GCP: decode, compare with the label, perplexity of the model's own
output) and by evaluation. Input is a list of prompt strings already rendered by the chat template;
output is one ``PolicyOutput`` per prompt, in input order.

Two backends with the same interface:

* ``HFPolicyEngine`` — a transformers model on CPU (or a single GPU), decoded by its own loop:
  left padding, length-sorted batches, a row leaves its batch as soon as it stops, sampling only
  as configured (greedy, or temperature and top-p: nothing from the checkpoint's generation_config),
  log-probs from the raw logits.
* ``VLLMPolicyEngine`` — vLLM's offline ``LLM.generate`` when the ``gpu`` extra is installed and
  CUDA is present. vLLM returns raw log-probs of the chosen tokens (its default
  ``logprobs_mode="raw_logprobs"``, i.e. before temperature and penalties), matching the HF backend.

Stopping: at an end-of-turn / EOS token (ids from the tokenizer and the generation config, plus
``<|im_end|>`` when the vocabulary has it), at ``max_new_tokens``, or right after the last complete
tool call: once text after a ``</tool_call>`` is neither whitespace nor the start of another
``<tool_call>``, decoding stops and that trailing text is cut off. Token counts and log-probs cover
exactly the tokens kept: through the end-of-turn token, or through the token that completed the
last ``</tool_call>``.

Perplexity = exp(-mean log-prob) of the kept tokens under the model's unscaled distribution
(temperature 1, no processors), whatever the sampling settings were.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
END_OF_TURN_TOKENS = ("<|im_end|>",)


@dataclass
class DecodeConfig:
    """How to decode the policy."""

    max_new_tokens: int = field(default=256, metadata={"help": "Generation limit per prompt."})
    batch_size: int = field(
        default=8, metadata={"help": "Prompts per generate call (HF backend). The pipeline sets its own "
                             "(eval.batch_size, probe.batch_size: 16; SFT model, 96 held-out prompts: 129 s at 16, "
                             "141 s at 32, measured)."}
    )
    do_sample: bool = field(default=False, metadata={"help": "False = greedy (argmax) decoding."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (only with do_sample)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus mass (only with do_sample)."})
    seed: int = field(
        default=0,
        metadata={
            "help": "Sampling seed; the HF backend seeds batch b with seed + b, so the same prompts and "
            "batch_size give the same samples."
        },
    )
    stop_after_tool_call: bool = field(
        default=True, metadata={"help": "Stop once text after the last </tool_call> is not another call."}
    )
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})


@dataclass
class GenerationSettings:
    """params.yaml ``generation``: the one budget and stopping rule of the policy's own outputs.

    GRPO rollouts (TRL's ``max_completion_length``), probing and every evaluation step decode with
    the same limit and stop the same way: at the end of the turn or at the limit. TRL's rollouts
    cannot stop right after the last tool call, so the pipeline's probe and evaluation do not
    either (``DecodeConfig.stop_after_tool_call`` stays a library option): a model is scored on
    exactly what it would write in a rollout.
    """

    max_new_tokens: int = field(default=96, metadata={
        "help": "Tokens per policy output: GRPO completions, probe outputs, each evaluation step."})

    def decode_config(self, batch_size: int, progress: bool = True) -> "DecodeConfig":
        return DecodeConfig(max_new_tokens=self.max_new_tokens, batch_size=batch_size, stop_after_tool_call=False,
                            progress=progress)


@dataclass
class PolicyOutput:
    """One decoded completion."""

    text: str  # special tokens removed; trailing text after the last tool call cut off
    token_ids: list[int]  # the kept generated tokens (end-of-turn token included when it was produced)
    mean_logprob: float  # mean log p(token) over token_ids; nan when nothing was generated
    finish_reason: str  # "eos" | "tool_call" | "length"

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def perplexity(self) -> float:
        return math.exp(-self.mean_logprob) if self.token_ids else math.nan


def tool_call_cut(text: str) -> int | None:
    """End index of the last ``</tool_call>`` if what follows it ends the tool calls, else None.

    "Ends the tool calls" means: after optional whitespace there is text that is not (the beginning
    of) another ``<tool_call>``. Whitespace alone, or a partial ``<tool_c``, may still continue.
    """
    close = text.rfind(TOOL_CALL_CLOSE)
    if close < 0:
        return None
    end = close + len(TOOL_CALL_CLOSE)
    tail = text[end:].lstrip()
    if not tail or TOOL_CALL_OPEN.startswith(tail) or tail.startswith(TOOL_CALL_OPEN):
        return None
    return end


def tokens_through_last_close(tokenizer: Any, token_ids: Sequence[int]) -> int:
    """Smallest k such that ``token_ids[:k]`` already contains every ``</tool_call>`` of the full list."""
    def closes(ids: Sequence[int]) -> int:
        return tokenizer.decode(list(ids), skip_special_tokens=False).count(TOOL_CALL_CLOSE)

    wanted = closes(token_ids)
    k = len(token_ids)
    while k > 1 and closes(token_ids[: k - 1]) == wanted:
        k -= 1
    return k


_CARRY = len(TOOL_CALL_CLOSE) - 1  # a </tool_call> that ends in new text starts at most this far before it
_REPLACEMENT = "\ufffd"  # what decoding shows for the bytes of a character not yet complete


@dataclass(frozen=True)
class _CallTextState:
    """What ``tool_call_cut`` needs to know about a text, kept up to date chunk by chunk in O(chunk)."""

    carry: str = ""  # the text's last _CARRY characters
    closes: int = 0  # how many </tool_call> it holds
    # The text after its last </tool_call>, leading whitespace dropped, cut to len(<tool_call>)
    # characters (all the rule ever looks at); None while there is no </tool_call> yet.
    tail: str | None = None

    def extend(self, chunk: str) -> "_CallTextState":
        if not chunk:
            return self
        # A </tool_call> that ends in ``chunk`` starts within ``joined``; one that lies wholly in
        # ``carry`` is impossible (carry is one character shorter), so every match here is new.
        joined = self.carry + chunk
        found = joined.count(TOOL_CALL_CLOSE)
        if found:
            tail: str | None = joined[joined.rfind(TOOL_CALL_CLOSE) + len(TOOL_CALL_CLOSE) :].lstrip()
        elif self.tail is None:
            tail = None
        else:
            tail = self.tail + chunk if self.tail else chunk.lstrip()
        if tail is not None:
            tail = tail[: len(TOOL_CALL_OPEN)]
        return _CallTextState(joined[-_CARRY:], self.closes + found, tail)

    @property
    def ends_calls(self) -> bool:
        """``tool_call_cut(text) is not None`` for the text this state summarises."""
        tail = self.tail
        return bool(tail) and not TOOL_CALL_OPEN.startswith(tail) and not tail.startswith(TOOL_CALL_OPEN)


class ToolCallEndTracker:
    """``tool_call_cut(tokenizer.decode(ids, skip_special_tokens=False)) is not None`` for a token
    sequence that grows a few tokens at a time, at O(1) amortised decoding work per token.

    Only a short window is decoded per step: the tokens since the last settled point plus the chunk
    before it as context, and the text they add is the window's text past the context's. A point is
    settled once the window's text does not end in U+FFFD, i.e. its last character is complete, so
    later tokens cannot change the text before it (byte-level BPE; sentencepiece with byte fallback,
    whose leading-space strip hits the context token in both decodes). Until then the provisional
    text still counts, as it does in a full decode. Tokenizers that clean up spaces after decoding
    (``clean_up_tokenization_spaces``) change text across any window edge: they, and any sequence
    whose window text stops extending its context text, fall back to one full decode per step. A
    ``True`` is always confirmed by one full decode (falling back if it disagrees), so the tracker
    can never stop a row before the full-decode rule would.
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.exact = not getattr(tokenizer, "clean_up_tokenization_spaces", False)
        self._start = 0  # first token of the decode window (context only)
        self._settled = 0  # tokens before this index are summarised in self._base
        self._base = _CallTextState()
        self.state = _CallTextState()  # the whole text so far, settled or not

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def push(self, new_ids: Sequence[int]) -> bool:
        """Append tokens; True when the text so far ends its tool calls."""
        self.ids.extend(new_ids)
        if self.exact:
            window = self._decode(self.ids[self._start :])
            context = self._decode(self.ids[self._start : self._settled])
            if window.startswith(context):
                self.state = self._base.extend(window[len(context) :])
                if not window.endswith(_REPLACEMENT):
                    self._base = self.state
                    self._start, self._settled = self._settled, len(self.ids)
                if not self.state.ends_calls or tool_call_cut(self._decode(self.ids)) is not None:
                    return self.state.ends_calls
            self.exact = False  # decoding is not local for this sequence: full decodes from here on
        self.state = _CallTextState().extend(self._decode(self.ids))
        return self.state.ends_calls


def first_tool_call_end(tokenizer: Any, token_ids: Sequence[int]) -> tuple[int, int] | None:
    """``(k, kept)``: the shortest prefix ``token_ids[:k]`` whose text ends its tool calls, and
    ``tokens_through_last_close(tokenizer, token_ids[:k])``; None when no prefix ends them.

    One pass of a ``ToolCallEndTracker``; the answer is checked with three full decodes, and the
    prefix-by-prefix search runs instead if the check fails."""
    tracker = ToolCallEndTracker(tokenizer)
    closes: list[int] = []  # closes[i]: </tool_call> count of token_ids[: i + 1]
    found = None
    for i, token in enumerate(token_ids):
        ends = tracker.push([token])
        closes.append(tracker.state.closes)
        if ends:
            k = i + 1
            found = (k, closes.index(closes[-1]) + 1)
            break
    if tracker.exact:
        if found is None:
            if tool_call_cut(tokenizer.decode(list(token_ids), skip_special_tokens=False)) is None:
                return None
        else:
            k, kept = found
            count = lambda n: tokenizer.decode(list(token_ids[:n]), skip_special_tokens=False).count(TOOL_CALL_CLOSE)  # noqa: E731
            if count(kept) == count(k) and (kept == 1 or count(kept - 1) < count(k)):
                return found  # (tracker.push already confirmed that prefix k ends the calls)
    for k in range(1, len(token_ids) + 1):  # the full-decode search
        if tool_call_cut(tokenizer.decode(list(token_ids[:k]), skip_special_tokens=False)) is not None:
            return k, tokens_through_last_close(tokenizer, token_ids[:k])
    return None


def stop_token_ids(tokenizer: Any, generation_config: Any | None = None) -> list[int]:
    """EOS / end-of-turn ids: tokenizer eos, generation-config eos, and ``<|im_end|>`` if in the vocab."""
    ids: set[int] = set()
    candidates = [getattr(tokenizer, "eos_token_id", None), getattr(generation_config, "eos_token_id", None)]
    for value in candidates:
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[token] for token in END_OF_TURN_TOKENS if token in vocab)
    if not ids:
        raise ValueError("the tokenizer has no EOS token and no <|im_end|>; cannot tell where a turn ends")
    return sorted(ids)


def finish_output(
    tokenizer: Any, generated: Sequence[int], logprobs: Sequence[float], stop_ids: Sequence[int],
    stop_after_tool_call: bool,
) -> PolicyOutput:
    """Cut a raw generated sequence at the first stop and package it (shared by both backends)."""
    generated = list(generated)
    stop_set = set(stop_ids)
    reason = "length"
    kept = len(generated)
    for i, token in enumerate(generated):
        if token in stop_set:
            kept, reason = i + 1, "eos"
            break
    if stop_after_tool_call:
        # Did the text end its tool calls before the stop token? (The stop token itself right after
        # a </tool_call> is the normal, clean ending and keeps reason "eos".)
        body = kept - 1 if reason == "eos" else kept
        if tool_call_cut(tokenizer.decode(generated[:body], skip_special_tokens=False)) is not None:
            # The first prefix whose text already ends the calls (usually the end), and the token
            # that completed its last </tool_call>.
            kept, reason = first_tool_call_end(tokenizer, generated[:body])[1], "tool_call"
    token_ids = generated[:kept]
    text = tokenizer.decode(token_ids, skip_special_tokens=True)
    if reason == "tool_call":
        text = text[: text.rfind(TOOL_CALL_CLOSE) + len(TOOL_CALL_CLOSE)]
    kept_logprobs = list(logprobs[:kept])
    mean = sum(kept_logprobs) / len(kept_logprobs) if kept_logprobs else math.nan
    return PolicyOutput(text=text, token_ids=token_ids, mean_logprob=mean, finish_reason=reason)


def _length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    # Longest first: similar lengths share a batch (little padding) and memory peaks show up early.
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


# A prompt joins the group being read when it is at least this share of the group's longest prompt.
# Measured on the BFCL subset's length-sorted batches of 16 (SmolLM2, bf16, 2-core CPU): the longest
# batch (641-1,806 tokens) took 31-35 s to read as one padded batch, 11-18 s row by row or in groups
# (0.8: 17.6 s, 0.9: 14.5-15.2 s, 0.95: 14.2 s); batches of similar lengths (244-622 tokens) read
# as fast in groups as in one batch, and 1.5-2x slower row by row.
PREFILL_MIN_FILL = 0.9


def prefill_groups(lengths: Sequence[int], min_fill: float = PREFILL_MIN_FILL) -> list[list[int]]:
    """Rows read together (as one padded forward pass): runs of the rows sorted longest first, each
    row at least ``min_fill`` of its group's first (longest) row. Rows of length 0 are left out."""
    groups: list[list[int]] = []
    for row in sorted((r for r in range(len(lengths)) if lengths[r] > 0), key=lambda r: (-lengths[r], r)):
        if groups and lengths[row] >= min_fill * lengths[groups[-1][0]]:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


class HFPolicyEngine:
    """Batched decoding of a transformers model (its own loop, not ``generate``); see the module docstring."""

    backend = "hf"

    def __init__(self, model: Any, tokenizer: Any):
        self.model = model
        self.tokenizer = tokenizer
        self.stop_ids = stop_token_ids(tokenizer, getattr(model, "generation_config", None))
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.stop_ids[0]
        self.full_attention_only = _full_attention_only(model.config)

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, precision: str = "float32") -> HFPolicyEngine:
        """``precision`` (resolved, see looptool.models.ComputeConfig): float32, or bfloat16 = the
        whole model in bf16, on CUDA and on an AMX CPU alike. Measured on the 2-core AMX CPU (SmolLM2
        SFT model, 64 held-out prompts, batch 16, prompts read in bf16 either way): decoding took 44 s
        in bf16 against 63 s in float32, and 51 of the 64 greedy outputs were identical
        (benchmarks/bench_precision.py compares the two end to end)."""
        import torch

        from looptool.models import load_model_and_tokenizer

        model, tokenizer = load_model_and_tokenizer(model_dir, dtype="bfloat16" if precision == "bfloat16" else "float32")
        if torch.cuda.is_available():
            model.to("cuda")
        return cls(model, tokenizer)

    def encode(self, prompts: Sequence[str]) -> list[list[int]]:
        # Prompts come fully rendered by the chat template (special tokens included), so the
        # tokenizer must not add a BOS or anything else of its own.
        return [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]

    def generate(self, prompts: Sequence[str], config: DecodeConfig | None = None) -> list[PolicyOutput]:
        import torch

        config = config or DecodeConfig()
        encoded = self.encode(prompts)
        outputs: list[PolicyOutput | None] = [None] * len(prompts)
        batches = _length_sorted_batches([len(ids) for ids in encoded], config.batch_size)
        was_training = self.model.training
        self.model.eval()
        bar = tqdm(total=len(prompts), desc="decode", unit="prompt", disable=not config.progress, dynamic_ncols=True)
        try:
            for batch_number, indices in enumerate(batches):
                if config.do_sample:
                    torch.manual_seed(config.seed + batch_number)
                results = self._generate_batch([encoded[i] for i in indices], config)
                for index, result in zip(indices, results):
                    outputs[index] = result
                bar.update(len(indices))
        finally:
            bar.close()
            self.model.train(was_training)
        return outputs  # type: ignore[return-value]

    def _generate_batch(self, batch: list[list[int]], config: DecodeConfig) -> list[PolicyOutput]:
        import torch

        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):  # left padding: every prompt ends at the last column
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids) :] = 1
        with torch.inference_mode():
            device = self.model.device
            generated, logprobs = self._decode(input_ids.to(device), attention_mask.to(device), config)
        return [
            finish_output(self.tokenizer, generated[row], logprobs[row], self.stop_ids, config.stop_after_tool_call)
            for row in range(len(batch))
        ]

    def _decode(self, input_ids: Any, attention_mask: Any, config: DecodeConfig) -> tuple[list[list[int]], list[list[float]]]:
        """Token ids and their log-probs per row, one token per step for the rows still going.

        A row leaves the batch (with its cache) at its stop: an end-of-turn token, or the end of its
        tool calls when ``stop_after_tool_call``; transformers' ``generate`` keeps computing a finished
        row until the whole batch is done. With the preallocated cache (looptool.llm.kv_cache) this loop
        decoded the SFT model's first 64 held-out prompts in 57 s where ``generate`` took 93 s (float32,
        batch 16, 2-core CPU; benchmarks/bench_inference.py compares the two). The log-probs are those
        of the raw logits.
        """
        import torch

        device = input_ids.device
        cache = self._read_prompt(input_ids, attention_mask, config.max_new_tokens)
        positions = attention_mask.sum(-1, keepdim=True) - 1  # the last prompt token's position per row
        step_input = input_ids[:, -1:]
        rows = list(range(input_ids.shape[0]))  # the original row of each batch row still decoding
        tokens: list[list[int]] = [[] for _ in rows]
        logprobs: list[list[float]] = [[] for _ in rows]
        trackers = [ToolCallEndTracker(self.tokenizer) for _ in rows] if config.stop_after_tool_call else None
        stops = set(self.stop_ids)
        for _ in range(config.max_new_tokens):
            out = self.model(input_ids=step_input, attention_mask=attention_mask, position_ids=positions,
                             past_key_values=cache, use_cache=True)
            cache, logits = out.past_key_values, out.logits[:, -1].float()
            chosen = _choose_tokens(logits, config)
            picked = torch.log_softmax(logits, dim=-1).gather(1, chosen[:, None])[:, 0]
            going = []
            for index, (row, token, logprob) in enumerate(zip(rows, chosen.tolist(), picked.tolist())):
                tokens[row].append(token)
                logprobs[row].append(logprob)
                if token not in stops and not (trackers and trackers[row].push([token])):
                    going.append(index)
            if not going:
                break
            if len(going) < len(rows):
                keep = torch.tensor(going, device=device)
                cache.batch_select_indices(keep)
                rows = [rows[i] for i in going]
                chosen, attention_mask, positions = chosen[keep], attention_mask[keep], positions[keep]
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(rows), 1))], dim=1)
            positions = positions + 1
            step_input = chosen[:, None]
        return tokens, logprobs

    def _read_prompt(self, input_ids: Any, attention_mask: Any, max_new_tokens: int) -> Any:
        """The key/value cache of every prompt token but the last (the first decode step feeds that
        one), left padded like ``input_ids``, with room for ``max_new_tokens`` more.

        Prompts are read in groups of similar length (``prefill_groups``), each group padded only to
        its own longest prompt: in one padded batch every row costs attention over the longest
        prompt's square, and under a padding mask the causal upper half is computed too (measured
        above ``PREFILL_MIN_FILL``).
        """
        import torch

        from looptool.llm.kv_cache import PreallocatedLayer

        width = input_ids.shape[1] - 1
        capacity = width + max_new_tokens
        lengths = attention_mask[:, :-1].sum(-1).tolist()
        groups = prefill_groups(lengths)
        # Layers of other kinds (a sliding window) keep their own cache type: one padded batch for them.
        # With one-token prompts only there is nothing to read before the first decode step.
        if not self.full_attention_only or not groups:
            return self._read_padded_batch(input_ids, attention_mask, capacity)
        row_keys: list[list[Any] | None] = [None] * len(lengths)  # per row, per layer; None: nothing read
        row_values: list[list[Any] | None] = [None] * len(lengths)
        cache = None
        for group in groups:
            span = lengths[group[0]]  # the group's longest prompt: its own padded width
            index = torch.tensor(group, device=input_ids.device)
            ids, mask = input_ids[index, width - span : width], attention_mask[index, width - span : width]
            if mask.all():  # no padding: the plain causal path
                out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
            else:
                out = self.model(input_ids=ids, attention_mask=mask, position_ids=_mask_positions(mask), use_cache=True,
                                 logits_to_keep=1)
            cache = out.past_key_values
            for position, row in enumerate(group):
                keep = slice(span - lengths[row], span)
                row_keys[row] = [layer.keys[position : position + 1, :, keep] for layer in cache.layers]
                row_values[row] = [layer.values[position : position + 1, :, keep] for layer in cache.layers]
        cache.layers = [  # the last group's cache object becomes the batch's
            PreallocatedLayer.left_padded([keys[layer] if keys else None for keys in row_keys],
                                          [values[layer] if values else None for values in row_values],
                                          width, capacity)
            for layer in range(len(cache.layers))
        ]
        return cache

    def _read_padded_batch(self, input_ids: Any, attention_mask: Any, capacity: int) -> Any:
        """The padded-batch reading, for caches with layers other than full attention (a sliding
        window keeps its own layer type). Positions follow the attention mask, so left-padded rows
        count from 0."""
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        from looptool.llm.kv_cache import PreallocatedLayer

        if input_ids.shape[1] < 2:
            return DynamicCache()
        out = self.model(input_ids=input_ids[:, :-1], attention_mask=attention_mask[:, :-1],
                         position_ids=_mask_positions(attention_mask[:, :-1]), use_cache=True, logits_to_keep=1)
        cache = out.past_key_values
        for index, layer in enumerate(cache.layers):
            if type(layer) is DynamicLayer:
                cache.layers[index] = PreallocatedLayer(layer.keys, layer.values, capacity)
        return cache


def _mask_positions(attention_mask: Any) -> Any:
    """Position ids that follow a left-padded attention mask: each row's first real token is 0
    (padding gets 0 too; it is masked out)."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)


def _full_attention_only(config: Any) -> bool:
    """Whether every decoder layer keeps a plain full-attention cache (transformers builds the
    cache's layer kinds from the config), the layout grouped prompt reading assumes."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer for layer in DynamicCache(config=config).layers)


def _choose_tokens(logits: Any, config: DecodeConfig) -> Any:
    """The next token of each row from its raw logits: the argmax (greedy), or a sample at
    ``config.temperature`` from the smallest set of top tokens whose probability reaches ``top_p``."""
    import torch

    if not config.do_sample:
        return logits.argmax(dim=-1)
    scores = logits / config.temperature
    if config.top_p < 1.0:
        ordered, order = scores.sort(dim=-1, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        # Drop a token once the tokens ranked above it already hold top_p (the first always stays).
        drop = (probs.cumsum(dim=-1) - probs) >= config.top_p
        scores = scores.scatter(1, order, ordered.masked_fill(drop, float("-inf")))
    return torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1)[:, 0]


class VLLMPolicyEngine:
    """vLLM offline engine with the same interface (``gpu`` extra + CUDA only).

    Prompts are passed as token ids (``{"prompt_token_ids": ...}``) encoded without special tokens,
    so vLLM cannot add a second BOS to an already rendered chat prompt. ``logprobs=0`` asks for the
    log-prob of the chosen token only. Batching and ordering are vLLM's own (continuous batching;
    results come back in input order), so ``DecodeConfig.batch_size`` is not used. Tool-call
    stopping is applied after generation (vLLM stop strings cannot express "after the last call");
    it costs only the few extra tokens the model writes before its end-of-turn token.
    """

    backend = "vllm"

    def __init__(self, model_dir: str | Path, *, dtype: str = "auto", gpu_memory_utilization: float = 0.85,
                 max_model_len: int | None = None, seed: int = 0, **engine_kwargs: Any):
        from transformers import AutoTokenizer
        from vllm import LLM

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.stop_ids = stop_token_ids(self.tokenizer)
        self.llm = LLM(model=str(model_dir), dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
                       max_model_len=max_model_len, seed=seed, **engine_kwargs)

    def generate(self, prompts: Sequence[str], config: DecodeConfig | None = None) -> list[PolicyOutput]:
        from vllm import SamplingParams

        config = config or DecodeConfig()
        params = SamplingParams(
            n=1,
            temperature=config.temperature if config.do_sample else 0.0,  # 0 = greedy in vLLM
            top_p=config.top_p if config.do_sample else 1.0,
            max_tokens=config.max_new_tokens,
            seed=config.seed if config.do_sample else None,
            stop_token_ids=self.stop_ids,
            logprobs=0,
            skip_special_tokens=False,  # decoding is ours (finish_output), from the token ids
        )
        requests = [{"prompt_token_ids": self.tokenizer(p, add_special_tokens=False)["input_ids"]} for p in prompts]
        results = self.llm.generate(requests, params, use_tqdm=config.progress)
        outputs = []
        for result in results:
            completion = result.outputs[0]
            token_ids = list(completion.token_ids)
            # One {token_id: Logprob} dict per generated position; the chosen token is always in it.
            logprobs = [position[token].logprob for position, token in zip(completion.logprobs, token_ids)]
            output = finish_output(self.tokenizer, token_ids, logprobs, self.stop_ids, config.stop_after_tool_call)
            if output.finish_reason == "length" and completion.finish_reason == "stop":
                output.finish_reason = "eos"  # stopped on a stop token that vLLM left out of token_ids
            outputs.append(output)
        return outputs


def vllm_usable() -> bool:
    """vLLM installed and a CUDA device present (checked without importing vLLM)."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def load_policy_engine(model_dir: str | Path, backend: str = "auto", compute: Any = None,
                       **vllm_kwargs: Any) -> HFPolicyEngine | VLLMPolicyEngine:
    """``backend``: "hf", "vllm", or "auto" (vLLM when usable, else transformers).
    ``compute``: a looptool.models.ComputeConfig (its default when None) for the HF backend."""
    if backend == "auto":
        backend = "vllm" if vllm_usable() else "hf"
    if backend == "hf":
        from looptool.models import ComputeConfig, resolve_device

        precision = (compute or ComputeConfig()).resolve(resolve_device("auto"))
        return HFPolicyEngine.from_pretrained(model_dir, precision=precision)
    if backend == "vllm":
        if not vllm_usable():
            raise RuntimeError("policy backend 'vllm' needs the `gpu` extra (pip install '.[gpu]') and a CUDA device")
        return VLLMPolicyEngine(model_dir, **vllm_kwargs)
    raise ValueError(f"unknown policy backend {backend!r}; expected 'auto', 'hf' or 'vllm'")
