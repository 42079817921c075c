"""Greedy Capability Probing (GCP): what the round's model can already do, and how surely.

The model decodes every training sample greedily. A sample is *mastered* when the output earns
the binary reward against the label, *failed* otherwise. Among mastered samples, those the model
produced with high perplexity (of its own generated tokens) are still informative — it got them
right, but barely — and are retained for the next round; confidently mastered ones are dropped.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from looptool.chat import sample_prompt
from looptool.ledger import Ledger
from looptool.schema import Sample
from looptool.toolcall import THINK_NOT_CLOSED, parse_tool_calls, prompt_opens_thinking, tool_call_reward

RETENTION_RULES = ("median", "top_fraction", "threshold")


@dataclass
class RetentionRule:
    """Which mastered samples count as high-perplexity (kept for the next round)."""

    rule: str = field(default="median", metadata={"help": "median: PPL >= the median of mastered samples; "
                                                          "top_fraction: the `fraction` with the highest PPL; "
                                                          "threshold: PPL >= `threshold`."})
    fraction: float = field(default=0.5, metadata={"help": "Share kept by the top_fraction rule."})
    threshold: float | None = field(default=None, metadata={"help": "PPL cut-off of the threshold rule."})

    def __post_init__(self) -> None:
        if self.rule not in RETENTION_RULES:
            raise ValueError(f"probe.retention.rule must be one of {RETENTION_RULES}, got {self.rule!r}")
        if self.rule == "top_fraction" and not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"probe.retention.fraction must be in (0, 1], got {self.fraction}")
        if self.rule == "threshold" and self.threshold is None:
            raise ValueError("probe.retention.rule 'threshold' needs probe.retention.threshold")


@dataclass
class ProbeConfig:
    """params.yaml ``probe``: greedy decoding of the round's model on its own training data."""

    backend: str = field(default="auto", metadata={"help": "Policy engine: auto (vLLM when installed + CUDA) | hf | vllm."})
    batch_size: int = field(default=16, metadata={"help": "Prompts per generate call."})
    retention: RetentionRule = field(default_factory=RetentionRule, metadata={
        "help": "Which mastered samples count as high-perplexity (kept for the next round)."})


@dataclass
class ProbeResult:
    """One sample's probe: the greedy output, its calls, whether it matches, and its perplexity."""

    id: str
    prediction: str
    calls: list[dict[str, Any]]
    parse_error: str | None
    mastered: bool
    perplexity: float
    tokens: int
    thinking: bool = False  # the output had a think block (stripped before parsing; unclosed = parse_error)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def judge_outputs(samples: Sequence[Sample], outputs: Sequence[Any],
                  in_thought: Sequence[bool] | None = None) -> list[ProbeResult]:
    """Pair each sample with its decoded output (``text``, ``perplexity``, ``num_tokens``).

    ``in_thought[i]``: sample i's prompt left a think block open (``prompt_opens_thinking``).
    """
    results = []
    in_thought = in_thought if in_thought is not None else [False] * len(samples)
    for sample, out, thought in zip(samples, outputs, in_thought, strict=True):
        parsed = parse_tool_calls(out.text, thought)
        results.append(ProbeResult(
            id=sample.id, prediction=out.text, calls=[c.to_dict() for c in parsed.calls], parse_error=parsed.error,
            mastered=tool_call_reward(out.text, sample.label, ended=out.finish_reason != "length",
                                      in_thought=thought) == 1.0,
            perplexity=float(out.perplexity), tokens=int(out.num_tokens), thinking=parsed.thinking,
        ))
    return results


def probe(engine: Any, samples: Sequence[Sample], generation: Any = None, batch_size: int = 8) -> list[ProbeResult]:
    """Greedy-decode every sample with the policy engine (the pipeline's one budget and stopping
    rule, ``looptool.llm.policy.GenerationSettings``) and score it."""
    from looptool.llm.policy import GenerationSettings

    generation = generation or GenerationSettings()
    prompts = [sample_prompt(engine.tokenizer, s) for s in samples]
    outputs = engine.generate(prompts, generation.decode_config(batch_size))
    return judge_outputs(samples, outputs, [prompt_opens_thinking(p) for p in prompts])


def high_ppl_ids(results: Sequence[ProbeResult], rule: RetentionRule) -> set[str]:
    """Ids of mastered samples retained by the rule (ties at the cut-off are kept)."""
    mastered = [r for r in results if r.mastered and not math.isnan(r.perplexity)]
    if not mastered:
        return set()
    if rule.rule == "median":
        cut = statistics.median(r.perplexity for r in mastered)
    elif rule.rule == "threshold":
        cut = float(rule.threshold)
    else:
        ranked = sorted((r.perplexity for r in mastered), reverse=True)
        cut = ranked[max(1, math.ceil(rule.fraction * len(ranked))) - 1]
    return {r.id for r in mastered if r.perplexity >= cut}


@dataclass
class ProbeSplit:
    high_ppl: list[Sample]  # mastered, retained (origin hppl)
    failed: list[Sample]  # mismatches, handed to the judge with the prediction in meta
    ledger: Ledger


def split_by_probe(samples: Sequence[Sample], results: Sequence[ProbeResult], rule: RetentionRule,
                   keep_all_mastered: bool = False, round_key: str = "") -> ProbeSplit:
    """Mastered-and-retained / failed, with one ledger record per sample.

    ``keep_all_mastered`` is the ``ablation.high_ppl=false`` switch: every mastered sample is kept.
    """
    by_id = {r.id: r for r in results}
    keep = {r.id for r in results if r.mastered} if keep_all_mastered else high_ppl_ids(results, rule)
    ledger = Ledger("probe")
    ledger.expect(len(samples))
    high, failed = [], []
    for sample in samples:
        result = by_id[sample.id]
        info = {"perplexity": result.perplexity, "mastered": result.mastered}
        if not result.mastered:
            meta = {**sample.meta, "probe": {"prediction": result.prediction, "calls": result.calls,
                                             "parse_error": result.parse_error, "perplexity": result.perplexity}}
            failed.append(Sample(sample.tools, sample.messages, sample.label, sample.origin, sample.round,
                                 sample.parent, meta, sample.id))
            ledger.keep(sample.id, to="failed", **info)
        elif sample.id in keep:
            high.append(Sample(sample.tools, sample.messages, sample.label, "hppl", sample.round, sample.id,
                               {**sample.meta, "probe": {"perplexity": result.perplexity}}, sample.id))
            ledger.keep(sample.id, to="high_ppl", **info)
        else:
            ledger.reject(sample.id, "mastered_low_ppl", **info)
    ledger.check_balanced()
    return ProbeSplit(high, failed, ledger)


# Buckets of a sample whose meta does not say (samples from outside the program agents), and of one
# whose meta says it has no value phenomenon (a text reply, a call without arguments).
UNKNOWN_BUCKET = "unknown"
NO_PHENOMENON = "none"


def need_kind_of(meta: dict[str, Any]) -> str:
    """The need kind a sample's dialogue step served (``meta.need_kind``), or ``unknown``."""
    kind = meta.get("need_kind")
    return str(kind) if isinstance(kind, str) and kind else UNKNOWN_BUCKET


def phenomena_of(meta: dict[str, Any]) -> list[str]:
    """The value phenomena a sample exercises, each once (a sample counts under every one it has);
    ``["none"]`` for an empty list, ``["unknown"]`` when the meta has no list."""
    found = meta.get("phenomena")
    if not isinstance(found, list):
        return [UNKNOWN_BUCKET]
    return list(dict.fromkeys(str(p) for p in found)) or [NO_PHENOMENON]


def mastery_by(samples: Sequence[Sample], results: Sequence[ProbeResult],
               buckets_of: Callable[[dict[str, Any]], Sequence[str]]) -> dict[str, dict[str, int]]:
    """``{bucket: {"mastered": n, "failed": n}}`` over the probed samples, buckets in sorted order."""
    mastered = {r.id: r.mastered for r in results}
    counts: dict[str, dict[str, int]] = {}
    for sample in samples:
        if sample.id not in mastered:
            continue
        for bucket in buckets_of(sample.meta):
            tally = counts.setdefault(bucket, {"mastered": 0, "failed": 0})
            tally["mastered" if mastered[sample.id] else "failed"] += 1
    return dict(sorted(counts.items()))


def probe_metrics(samples: Sequence[Sample], results: Sequence[ProbeResult], split: ProbeSplit) -> dict[str, Any]:
    """Counts for metrics.json; ``by_need_kind`` / ``by_phenomenon`` say which kinds of step and
    which value phenomena the round's model already masters (the report shows them per round)."""
    ppl = [r.perplexity for r in results if r.mastered and not math.isnan(r.perplexity)]
    return {
        "samples": len(results),
        "mastered": sum(r.mastered for r in results),
        "failed": sum(not r.mastered for r in results),
        "unparsable": sum(r.parse_error is not None for r in results),
        "with_think": sum(r.thinking for r in results),  # outputs that opened a think block (closed or not)
        "think_unclosed": sum(r.parse_error == THINK_NOT_CLOSED for r in results),  # no answer: failed, unparsable
        "high_ppl_kept": len(split.high_ppl),
        "mastered_ppl": {
            "min": min(ppl) if ppl else None, "median": statistics.median(ppl) if ppl else None,
            "max": max(ppl) if ppl else None,
        },
        "by_need_kind": mastery_by(samples, results, lambda meta: [need_kind_of(meta)]),
        "by_phenomenon": mastery_by(samples, results, phenomena_of),
    }
