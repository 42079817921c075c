"""What compute.precision and merged GRPO rollouts buy on this machine, as ratios measured in one run.

    python benchmarks/bench_precision.py --model models/sft --data data/seed/heldout_unseen.jsonl [--prompts 32]

1. Policy engine (probing, evaluation): seconds per prompt with float32 against the bf16 engine of
   ``compute.precision: bfloat16``, and how many greedy outputs are identical.
2. Training forward+backward of the LoRA model on 4 real prompts: float32 against bf16 autocast.
3. GRPO rollouts: seconds per decode step of 8 sampled completions with the LoRA adapter unmerged
   (TRL's path) against merged (``looptool.train.grpo.merged_rollout_trainer``).

Each pair runs back to back on the same inputs; a busy machine slows both sides. Prints a table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "seed" / "heldout_unseen.jsonl")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=96)
    args = parser.parse_args()

    import torch
    from peft import get_peft_model

    from looptool.chat import render_prompt
    from looptool.io import read_jsonl
    from looptool.llm.policy import DecodeConfig, HFPolicyEngine
    from looptool.schema import Sample
    from looptool.train.common import LoraParams

    samples = read_jsonl(args.data, Sample.from_dict)[: args.prompts]
    rows = []

    # 1. The policy engine.
    fp32 = HFPolicyEngine.from_pretrained(args.model, precision="float32")
    bf16 = HFPolicyEngine.from_pretrained(args.model, precision="bfloat16")
    prompts = [render_prompt(fp32.tokenizer, s.messages, s.tools) for s in samples]
    decode = DecodeConfig(max_new_tokens=args.new_tokens, batch_size=16, progress=False)
    fp32.generate(prompts[:2], decode)  # warm-up
    t32, out32 = timed(lambda: fp32.generate(prompts, decode))
    t16, out16 = timed(lambda: bf16.generate(prompts, decode))
    same = sum(a.text == b.text for a, b in zip(out32, out16))
    rows.append(("engine s/prompt", t32 / len(prompts), t16 / len(prompts), f"{same}/{len(prompts)} identical outputs"))

    # 2. Training forward+backward (LoRA as in params.yaml's default).
    model = get_peft_model(fp32.model, LoraParams().to_peft())
    model.train()
    batch = fp32.tokenizer(prompts[:4], return_tensors="pt", padding=True, add_special_tokens=False)

    def step(autocast: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(**batch, labels=batch["input_ids"]).loss
        loss.backward()
        model.zero_grad()

    step(False)  # warm-up
    f32, _ = timed(lambda: step(False))
    f16, _ = timed(lambda: step(True))
    rows.append((f"fwd+bwd s, 4 x {batch['input_ids'].shape[1]} tokens", f32, f16, "float32 vs bf16 autocast"))

    # 3. Rollout decoding, adapter unmerged vs merged.
    group = fp32.tokenizer([prompts[0]] * 8, return_tensors="pt", add_special_tokens=False)
    steps = 32

    def rollout() -> float:
        with torch.no_grad():
            prefill, _ = timed(lambda: model(**group))
            total, _ = timed(lambda: model.generate(**group, max_new_tokens=steps, min_new_tokens=steps, do_sample=True,
                                                    pad_token_id=fp32.pad_id))
        return (total - prefill) / steps

    unmerged = rollout()
    model.merge_adapter()
    merged = rollout()
    model.unmerge_adapter()
    rows.append(("rollout s per decode step (8 completions)", unmerged, merged, "adapter unmerged vs merged"))

    print(f"\n{'measure':<44}{'baseline':>10}{'ours':>10}{'ratio':>8}  note")
    for name, base, ours, note in rows:
        print(f"{name:<44}{base:>10.3f}{ours:>10.3f}{base / ours:>7.2f}x  {note}")


if __name__ == "__main__":
    main()
