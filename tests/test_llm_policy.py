"""Policy inference engine (transformers backend) on the tiny random Llama from conftest."""

from __future__ import annotations

import copy
import math
import random

import pytest
import torch

from looptool.llm.policy import (
    DecodeConfig,
    HFPolicyEngine,
    finish_output,
    load_policy_engine,
    tokens_through_last_close,
    tool_call_cut,
    vllm_usable,
)
from looptool.models import load_model_and_tokenizer

CALL_PARIS = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
CALL_ROME = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>'


@pytest.fixture(scope="module", autouse=True)
def single_torch_thread():
    # The tiny model's matmuls are too small to gain from threads, and on a busy 2-core machine two
    # threads oversubscribe the CPU and run several times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def chat_prompt(tokenizer, text: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                         add_generation_prompt=True)


@pytest.fixture(scope="module")
def engine(tiny_model_dir) -> HFPolicyEngine:
    return HFPolicyEngine.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def prompts(engine) -> list[str]:
    # Deliberately different lengths, so batches need real left padding.
    texts = ["hi", "what is the weather in Paris today, in Celsius please?", "3 + 4 = ?",
             "list " * 30 + "done", "ok", "tell me about tool calls", "x y z", "a much longer question " * 6]
    return [chat_prompt(engine.tokenizer, t) for t in texts]


def forward_pass_mean_logprob(model, prompt_ids: list[int], completion_ids: list[int]) -> tuple[float, bool]:
    """Mean log p(completion | prompt) from one unpadded forward pass, and whether every token was the argmax."""
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0].float()
    positions = range(len(prompt_ids) - 1, len(prompt_ids) + len(completion_ids) - 1)
    logprobs = torch.log_softmax(logits, dim=-1)
    picked = [logprobs[p, t].item() for p, t in zip(positions, completion_ids)]
    greedy = all(int(logits[p].argmax()) == t for p, t in zip(positions, completion_ids))
    return sum(picked) / len(picked), greedy


def test_batched_greedy_equals_unbatched_token_for_token(engine, prompts):
    one_by_one = engine.generate(prompts, DecodeConfig(max_new_tokens=16, batch_size=1, progress=False))
    for batch_size in (8, 3):
        batched = engine.generate(prompts, DecodeConfig(max_new_tokens=16, batch_size=batch_size, progress=False))
        for single, together in zip(one_by_one, batched):
            assert together.token_ids == single.token_ids
            assert together.finish_reason == single.finish_reason
            assert together.mean_logprob == pytest.approx(single.mean_logprob, abs=1e-5)


def test_mean_logprob_matches_a_separate_forward_pass(engine, prompts):
    outputs = engine.generate(prompts, DecodeConfig(max_new_tokens=16, batch_size=4, progress=False))
    for prompt_ids, output in zip(engine.encode(prompts), outputs):
        assert output.num_tokens > 0
        expected, was_greedy = forward_pass_mean_logprob(engine.model, prompt_ids, output.token_ids)
        assert output.mean_logprob == pytest.approx(expected, abs=1e-4)
        assert was_greedy, "greedy decoding picked a token that is not the argmax of the raw logits"
        assert output.perplexity == pytest.approx(math.exp(-expected), rel=1e-3)


def test_results_come_back_in_input_order(engine, prompts):
    config = DecodeConfig(max_new_tokens=12, batch_size=3, progress=False)
    forward = engine.generate(prompts, config)
    backward = engine.generate(prompts[::-1], config)
    assert [o.token_ids for o in forward] == [o.token_ids for o in backward[::-1]]
    # Each output really belongs to its prompt: decoding prompt i alone gives output i.
    assert engine.generate([prompts[3]], config)[0].token_ids == forward[3].token_ids


def test_seeded_sampling_is_reproducible_and_seed_dependent(engine, prompts):
    def sample(seed: int):
        config = DecodeConfig(max_new_tokens=8, batch_size=4, do_sample=True, temperature=1.0, seed=seed,
                              progress=False)
        return [o.token_ids for o in engine.generate(prompts, config)]

    first = sample(1)
    assert sample(1) == first
    assert sample(2) != first


@pytest.mark.parametrize(
    ("text", "cut"),
    [
        (CALL_PARIS, None),  # may still be followed by another call
        (CALL_PARIS + "\n\n", None),
        (CALL_PARIS + "\n<tool_c", None),
        (CALL_PARIS + "\n" + CALL_ROME[:20], None),
        (CALL_PARIS + "\nSure, the weather", len(CALL_PARIS)),
        (CALL_PARIS + "\n" + CALL_ROME + " done", len(CALL_PARIS) + 1 + len(CALL_ROME)),
        ("no call at all", None),
    ],
)
def test_tool_call_cut(text, cut):
    assert tool_call_cut(text) == cut


def test_finish_output_trims_after_the_last_call_and_keeps_eos(engine):
    tokenizer = engine.tokenizer
    stop_ids = engine.stop_ids
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    two_calls = CALL_PARIS + "\n" + CALL_ROME

    chatty = encode(two_calls + "\nAnything else?")
    fake_logprobs = [-0.1 * (i + 1) for i in range(len(chatty))]
    out = finish_output(tokenizer, chatty, fake_logprobs, stop_ids, stop_after_tool_call=True)
    assert out.finish_reason == "tool_call" and out.text == two_calls
    assert tokenizer.decode(out.token_ids).rstrip() == two_calls
    assert out.mean_logprob == pytest.approx(sum(fake_logprobs[: out.num_tokens]) / out.num_tokens)

    clean = encode(CALL_ROME + "<|im_end|>") + [tokenizer.pad_token_id] * 3  # padding after a finished row
    out = finish_output(tokenizer, clean, [-1.0] * len(clean), stop_ids, stop_after_tool_call=True)
    assert out.finish_reason == "eos" and out.text == CALL_ROME and out.token_ids[-1] in stop_ids

    unfinished = encode(CALL_PARIS + "\n<tool_call>\n{\"name\"")
    out = finish_output(tokenizer, unfinished, [-1.0] * len(unfinished), stop_ids, stop_after_tool_call=True)
    assert out.finish_reason == "length" and out.num_tokens == len(unfinished)

    out = finish_output(tokenizer, chatty, fake_logprobs, stop_ids, stop_after_tool_call=False)
    assert out.finish_reason == "length" and out.text.endswith("Anything else?")


@pytest.fixture(scope="module")
def tool_calling_engine(tiny_model_dir, single_torch_thread) -> HFPolicyEngine:
    """A private copy of the tiny model trained to answer one prompt with two calls and then chatter."""
    model, tokenizer = load_model_and_tokenizer(tiny_model_dir)
    prompt_ids = tokenizer(chat_prompt(tokenizer, "weather in Paris and Rome?"), add_special_tokens=False)["input_ids"]
    completion = CALL_PARIS + "\n" + CALL_ROME + "\nBoth calls are done now"
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + completion_ids])
    labels = ids.clone()
    labels[0, : len(prompt_ids)] = -100
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(200):
        optimizer.zero_grad()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        if loss.item() < 0.02:
            break
    model.eval()
    assert loss.item() < 0.05, f"the tiny model did not memorise its completion (loss {loss.item():.3f})"
    return HFPolicyEngine(model, tokenizer)


def test_engine_stops_after_the_last_complete_tool_call(tool_calling_engine):
    engine = tool_calling_engine
    prompt = chat_prompt(engine.tokenizer, "weather in Paris and Rome?")
    stopped = engine.generate([prompt], DecodeConfig(max_new_tokens=100, progress=False))[0]
    # Not after the first call: the second one follows; but nothing of the chatter after it.
    assert stopped.finish_reason == "tool_call" and stopped.text == CALL_PARIS + "\n" + CALL_ROME
    expected, _ = forward_pass_mean_logprob(engine.model, engine.encode([prompt])[0], stopped.token_ids)
    assert stopped.mean_logprob == pytest.approx(expected, abs=1e-4)

    unstopped = engine.generate([prompt], DecodeConfig(max_new_tokens=100, stop_after_tool_call=False,
                                                       progress=False))[0]
    assert "Both calls are done" in unstopped.text and unstopped.num_tokens > stopped.num_tokens


def test_greedy_decoding_equals_transformers_generate(engine, prompts):
    # The engine's own loop against the library's reference decoder, on left-padded batches.
    config = DecodeConfig(max_new_tokens=12, batch_size=4, progress=False)
    outputs = engine.generate(prompts, config)
    for prompt_ids, output in zip(engine.encode(prompts), outputs):
        with torch.inference_mode():
            reference = engine.model.generate(input_ids=torch.tensor([prompt_ids]), max_new_tokens=12, do_sample=False,
                                              eos_token_id=engine.stop_ids, pad_token_id=engine.pad_id)
        assert output.token_ids == reference[0, len(prompt_ids) :].tolist()


def test_a_row_that_stops_leaves_its_batch_without_changing_the_others(tool_calling_engine, prompts):
    # The trained prompt ends its calls after a few dozen tokens while the other rows go on: the
    # batch shrinks under them, and each row must still decode as it does alone.
    engine = tool_calling_engine
    batch = [chat_prompt(engine.tokenizer, "weather in Paris and Rome?")] + prompts[:3]
    config = DecodeConfig(max_new_tokens=100, batch_size=4, progress=False)
    together = engine.generate(batch, config)
    alone = [engine.generate([p], config)[0] for p in batch]
    assert together[0].finish_reason == "tool_call" and together[0].num_tokens < 100
    assert any(o.num_tokens > together[0].num_tokens for o in together[1:])
    for joint, single in zip(together, alone):
        assert joint.token_ids == single.token_ids and joint.finish_reason == single.finish_reason
        assert joint.mean_logprob == pytest.approx(single.mean_logprob, abs=1e-5)


@pytest.mark.parametrize(("top_p", "allowed"), [(0.5, {0}), (0.8, {0, 1}), (0.95, {0, 1, 2}), (1.0, {0, 1, 2})])
def test_top_p_samples_only_from_the_smallest_set_reaching_the_mass(top_p, allowed):
    from looptool.llm.policy import _choose_tokens

    # Probabilities 0.6, 0.3, 0.1 (token 0 alone holds 0.6; tokens 0 and 1 hold 0.9).
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.1]])).repeat(400, 1)
    torch.manual_seed(0)
    drawn = set(_choose_tokens(logits, DecodeConfig(do_sample=True, top_p=top_p)).tolist())
    assert drawn == allowed
    assert _choose_tokens(logits[:1], DecodeConfig(do_sample=False)).tolist() == [0]


def test_factory_picks_transformers_without_cuda(tiny_model_dir):
    if vllm_usable():
        pytest.skip("vLLM and CUDA present: 'auto' picks vLLM here")
    assert isinstance(load_policy_engine(tiny_model_dir, backend="auto"), HFPolicyEngine)
    with pytest.raises(RuntimeError, match="gpu"):
        load_policy_engine(tiny_model_dir, backend="vllm")
    with pytest.raises(ValueError, match="backend"):
        load_policy_engine(tiny_model_dir, backend="onnx")


def test_bf16_precision_runs_the_whole_engine_in_bf16(tiny_model_dir, prompts):
    engine = HFPolicyEngine.from_pretrained(tiny_model_dir, precision="bfloat16")
    assert engine.model.dtype == torch.bfloat16
    outputs = engine.generate(prompts[:3], DecodeConfig(max_new_tokens=6, batch_size=3))
    assert all(0 < o.num_tokens <= 6 and math.isfinite(o.mean_logprob) for o in outputs)


# --- Tool-call stop detection: the incremental tracker against the full-decode rule -------------


class _FullDecodeStopping:
    """The stop rule as it was before the tracker: every unfinished row's whole generated text is
    decoded again at every step."""

    def __init__(self, tokenizer, prompt_length: int, batch_size: int):
        self.tokenizer, self.prompt_length, self.done = tokenizer, prompt_length, [False] * batch_size

    def __call__(self, input_ids, scores=None):
        for row in range(input_ids.shape[0]):
            if not self.done[row]:
                text = self.tokenizer.decode(input_ids[row, self.prompt_length :].tolist(), skip_special_tokens=False)
                self.done[row] = tool_call_cut(text) is not None
        return list(self.done)


def _reference_first_end(tokenizer, ids):
    """finish_output's search as it was: full decodes of every prefix, shortest first."""
    for k in range(1, len(ids) + 1):
        if tool_call_cut(tokenizer.decode(ids[:k], skip_special_tokens=False)) is not None:
            return k, tokens_through_last_close(tokenizer, ids[:k])
    return None


# Texts after a call: prose, whitespace, a second call, a half-open tag that turns into text,
# characters of several bytes (split over tokens), the end-of-turn token, no call at all.
STOP_TEXTS = [
    CALL_PARIS + "\nSure, the weather",
    CALL_PARIS + "\n\n  \n\t" + CALL_ROME + " done",
    CALL_PARIS + "\n<tool_c" + "x and more",
    CALL_PARIS + "<tool_call>" + '{"name": "a"}' + "</tool_call>\n\nok",
    CALL_PARIS + " 日本語 🎉 rest",
    CALL_PARIS + "🎉",
    CALL_PARIS + "\n" + CALL_ROME[:25],
    CALL_PARIS + "<|im_end|>",
    "  \n" + CALL_PARIS + "   \n  ",
    "</tool_call></tool_call> x",
    "no call at all, just text </tool_ca",
    "é</tool_call>ü",
]
STOP_PIECES = ["<tool_call>", "</tool_call>", "</", "tool", "_call", ">", "<", "\n", " ", "  ", "\t", "{", '"name"',
               ": ", "x", "Sure", "日", "🎉", "é", "<tool_c", "ool_call>", "}"]


def _byte_level_streams(tokenizer) -> list[list[int]]:
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    streams = [encode(t) for t in STOP_TEXTS]
    streams += [[i for ch in t for i in encode(ch)] for t in STOP_TEXTS]  # one character at a time
    rng = random.Random(0)
    streams += [[i for _ in range(30) for i in encode(rng.choice(STOP_PIECES))] for _ in range(40)]
    return streams


def _sentencepiece_like():
    """A sentencepiece-style tokenizer built here: '▁' for spaces, byte fallback for what the
    vocabulary lacks, and the first space of a decode stripped."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    pieces = ["▁", "<", "</", "tool", "_", "call", ">", "▁<", "▁</", "_call>", "tool_call", "▁Sure", ",", "▁the",
              "{", '"name"', ":", "}", "▁done", "é"]
    vocab = {f"<0x{b:02X}>": b for b in range(256)} | {p: 256 + i for i, p in enumerate(pieces)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], byte_fallback=True))
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, clean_up_tokenization_spaces=False)

    def ids(*parts: str) -> list[int]:
        out: list[int] = []
        for part in parts:  # a vocabulary piece, or text the vocabulary lacks, spelled in byte tokens
            out += [vocab[part]] if part in vocab else list(part.encode())
        return out

    close, open_ = ["</", "tool_call", ">"], ["<", "tool", "_", "call", ">"]
    streams = [
        ids(*open_, "{", "}", "\n", *close, "\n", "▁Sure", ",", "▁the"),
        ids(*open_, "}", *close, "\n", "\n", "▁", *open_, "}", "▁</", "tool", "_call>", "▁done"),
        ids(*close, "\n", "日", "▁done"),  # a newline byte token, then the bytes of one character
        ids(*close, "é", "🎉"),
        ids("▁</", "tool", "_call>", "▁<", "tool", "_", "c"),  # a partial <tool_c that never goes on
        ids("▁</", "tool", "_call>", "▁<", "tool", "_", "x"),
    ]
    rng = random.Random(1)
    pool = [close, open_, ["▁</", "tool", "_call>"], ["▁<", "tool_call", ">"], ["\n"], ["日"], ["🎉"], ["\t"], [" "]]
    pool += [[piece] for piece in pieces]
    streams += [ids(*(part for _ in range(25) for part in rng.choice(pool))) for _ in range(40)]
    return tokenizer, streams


@pytest.fixture(scope="module", params=["byte-level", "byte-level, spaces cleaned up", "sentencepiece-like"])
def tokenizer_and_streams(request, engine):
    """(tokenizer, streams, incremental): incremental = whether every row must stay on the
    incremental path (None: some may fall back to full decodes)."""
    if request.param == "sentencepiece-like":
        return (*_sentencepiece_like(), None)
    tokenizer = engine.tokenizer
    if request.param == "byte-level, spaces cleaned up":
        tokenizer = copy.copy(tokenizer)  # a decode that rewrites " ," etc.: the tracker must fall back
        tokenizer.clean_up_tokenization_spaces = True
        return tokenizer, _byte_level_streams(tokenizer), False
    return tokenizer, _byte_level_streams(tokenizer), True


def test_incremental_stop_rule_matches_full_decodes_at_every_step(tokenizer_and_streams):
    from looptool.llm.policy import ToolCallEndTracker

    tokenizer, streams, incremental = tokenizer_and_streams
    prompt = [5, 6, 7]
    fired = 0
    width = max(len(s) for s in streams)
    filler = streams[0][-1]
    # All streams side by side in one batch (rows that are shorter go on with a filler token), and
    # each alone: the decoder's per-row trackers, fed one token per step until they fire, must agree
    # with the full-decode rule on every row after every token.
    batches = [[s + [filler] * (width - len(s)) for s in streams]] + [[s] for s in streams]
    for rows in batches:
        ids = torch.tensor([prompt + row for row in rows])
        trackers, done = [ToolCallEndTracker(tokenizer) for _ in rows], [False] * len(rows)
        old = _FullDecodeStopping(tokenizer, len(prompt), len(rows))
        for step in range(1, len(rows[0]) + 1):
            for r, row in enumerate(rows):
                done[r] = done[r] or trackers[r].push(row[step - 1 : step])
            assert done == old(ids[:, : len(prompt) + step]), (rows, step)
        fired += sum(old.done)
        if incremental is not None:
            assert all(t.exact == incremental for t in trackers)
    assert fired >= len(streams) // 3  # the streams really exercise stopping, not only running on


def test_first_tool_call_end_matches_the_prefix_search(tokenizer_and_streams):
    from looptool.llm.policy import first_tool_call_end

    tokenizer, streams, _ = tokenizer_and_streams
    for stream in streams:
        for end in (len(stream), len(stream) // 2):
            assert first_tool_call_end(tokenizer, stream[:end]) == _reference_first_end(tokenizer, stream[:end])


# --- Reading prompts in groups of similar length into one left-padded cache ---------------------


def test_left_padded_layer_puts_each_row_at_the_right_end_over_zeros():
    from looptool.llm.kv_cache import PreallocatedLayer

    # Rows of 2, 0 (nothing read: None) and 3 cached tokens (1 head, dim 1), and an empty tensor,
    # laid into width 3 with room for 2 more.
    rows = [torch.tensor([[[[1.0], [2.0]]]]), None, torch.tensor([[[[3.0], [4.0], [5.0]]]]), torch.zeros((1, 1, 0, 1))]
    layer = PreallocatedLayer.left_padded(rows, [None if r is None else -r for r in rows], width=3, capacity=5)
    assert layer.keys[:, 0, :, 0].tolist() == [[0.0, 1.0, 2.0], [0.0, 0.0, 0.0], [3.0, 4.0, 5.0], [0.0, 0.0, 0.0]]
    assert layer.values[:, 0, :, 0].tolist() == [[0.0, -1.0, -2.0], [0.0, 0.0, 0.0], [-3.0, -4.0, -5.0], [0.0] * 3]
    keys, _ = layer.update(torch.full((4, 1, 1, 1), 9.0), torch.full((4, 1, 1, 1), 9.0))
    assert keys[:, 0, :, 0].tolist() == [[0.0, 1.0, 2.0, 9.0], [0.0, 0.0, 0.0, 9.0], [3.0, 4.0, 5.0, 9.0], [0.0] * 3 + [9.0]]


def test_grouped_reading_is_only_for_full_attention_configs():
    # A sliding-window model keeps its own cache layer kind, so it must take the padded-batch reading.
    from transformers import LlamaConfig, MistralConfig

    from looptool.llm.policy import _full_attention_only

    assert _full_attention_only(LlamaConfig(num_hidden_layers=2))
    assert not _full_attention_only(MistralConfig(num_hidden_layers=2, sliding_window=8))


@pytest.mark.parametrize(("lengths", "groups"), [
    ([100, 95, 91, 89, 50], [[0, 1, 2], [3], [4]]),  # 89 < 0.9 x 100 starts a group; 50 is alone
    ([44, 0, 100, 45], [[2], [3, 0]]),                # sorted longest first; length 0 is never read
    ([7, 7, 7], [[0, 1, 2]]),
    ([0], []),
])
def test_prefill_groups_join_rows_within_the_fill_share_of_the_longest(lengths, groups):
    from looptool.llm.policy import prefill_groups

    assert prefill_groups(lengths, min_fill=0.9) == groups


def test_grouped_prompt_reading_equals_the_padded_batch(engine, prompts):
    # The default reading (groups of similar length, padded within the group) and the one padded
    # batch (kept for caches with other layer kinds) must give the same keys and values wherever the
    # attention mask is 1, and zeros elsewhere.
    from looptool.llm.policy import prefill_groups

    encoded = engine.encode(prompts)
    width = max(len(ids) for ids in encoded)
    input_ids = torch.full((len(encoded), width), engine.pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, ids in enumerate(encoded):
        input_ids[row, width - len(ids):], mask[row, width - len(ids):] = torch.tensor(ids), 1
    sizes = sorted(len(g) for g in prefill_groups(mask[:, :-1].sum(-1).tolist()))
    assert sizes[0] == 1 and sizes[-1] > 1, f"want a lone row and a padded group, got group sizes {sizes}"
    with torch.inference_mode():
        grouped = engine._read_prompt(input_ids, mask, max_new_tokens=4)
        batch = engine._read_padded_batch(input_ids, mask, capacity=width - 1 + 4)
    real = mask[:, :-1].bool()
    for by_group, together in zip(grouped.layers, batch.layers, strict=True):
        for a, b in ((by_group.keys, together.keys), (by_group.values, together.values)):
            assert a.shape == b.shape
            assert torch.allclose(a.transpose(1, 2)[real], b.transpose(1, 2)[real], atol=1e-5)
            assert (a.transpose(1, 2)[~real] == 0).all()
