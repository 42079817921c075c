"""Probe (GCP) throughput: the probe stage's function vs the bare policy engine on the same samples.

    python benchmarks/bench_probe.py [--model DIR] [--data FILE] [--samples 16] [--repeats 2]

Both sides decode the same prompts greedily with the same engine, batch size and token limit. The
bare side only calls ``engine.generate``; the probe side is :func:`looptool.loop.probe.probe`
(prompt rendering, decoding, parsing, the reward against the label, perplexity) followed by the
high-PPL split. Reported: samples per second of each and their ratio (target >= 0.9x). The sides
alternate over the repeats so that background load hits both alike.

Without --model a tiny random Llama is built (fast, shows the overhead of our bookkeeping); with
``--model models/sft`` it measures the real thing. Without --data the hand-written starter samples
are used. A measurement script, not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory (default: a tiny random Llama built here)")
    parser.add_argument("--data", default=str(REPO_ROOT / "data" / "starter" / "samples.jsonl"))
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from looptool.chat import sample_prompt
    from looptool.io import read_jsonl
    from looptool.llm.policy import GenerationSettings, load_policy_engine
    from looptool.loop.probe import RetentionRule, probe, split_by_probe
    from looptool.schema import Sample

    samples = read_jsonl(args.data, Sample.from_dict)[: args.samples]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            from looptool.models import build_tiny_llama, load_gguf_tokenizer, prepare_tokenizer

            model_dir = str(Path(tmp) / "tiny")
            build_tiny_llama(Path(model_dir), tokenizer=prepare_tokenizer(load_gguf_tokenizer(), "looptool"))
        engine = load_policy_engine(model_dir, backend="hf")
        generation = GenerationSettings(max_new_tokens=args.max_new_tokens)
        decode = generation.decode_config(args.batch_size)  # the same settings probe() uses

        def bare() -> None:
            engine.generate([sample_prompt(engine.tokenizer, s) for s in samples], decode)

        def ours() -> None:
            results = probe(engine, samples, generation, batch_size=args.batch_size)
            split_by_probe(samples, results, RetentionRule())

        bare()  # warm-up: first-call allocations and kernel selection
        times = {"bare": 0.0, "probe": 0.0}
        for repeat in range(args.repeats):
            order = [("bare", bare), ("probe", ours)]
            for name, fn in order if repeat % 2 == 0 else reversed(order):
                started = time.perf_counter()
                fn()
                times[name] += time.perf_counter() - started
    n = len(samples) * args.repeats
    rate = {name: n / seconds for name, seconds in times.items()}
    print(f"model: {args.model or 'tiny random Llama'}; {len(samples)} samples x {args.repeats} repeats, "
          f"batch {args.batch_size}, max_new_tokens {args.max_new_tokens}")
    print(f"bare policy engine: {rate['bare']:.2f} samples/s")
    print(f"probe stage:        {rate['probe']:.2f} samples/s")
    print(f"ratio probe / bare: {rate['probe'] / rate['bare']:.3f} (target >= 0.9)")


if __name__ == "__main__":
    main()
