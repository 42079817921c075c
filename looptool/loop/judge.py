"""Judgement-Guided Label Verification (JGLV): who is wrong when the model and the label disagree?

For every probe mismatch the judge sees the tools, the conversation and two candidate answers —
the label and the model's prediction, in a seeded random order so the judge cannot learn that
"A" is always the label — and says which of them are correct. Mapped back:

=============  ==================  =============================================================
judge says     verdict             what happens to the sample
=============  ==================  =============================================================
label only     PRED_WRONG          an error seed for the next round (label kept)
prediction     LABEL_WRONG         the label is replaced by the prediction (origin ``corrected``)
both           BOTH_CORRECT        counted as mastered (dropped like a confidently mastered one)
neither        BOTH_WRONG          dropped
=============  ==================  =============================================================

The rules come first. A prediction that does not parse, names a tool the sample does not offer,
breaks its tool's schema, holds a required value the conversation never states, or is an empty
reply can never become a label: the rules decide the mismatch (PRED_WRONG, or BOTH_WRONG when the
label breaks the seed set's rules too), the judge is not asked, and the ledger records
``decided_by: rule`` with the rule's name. Only rule-clean mismatches go to the judge.

Several judges (``n_judges`` votes) vote, each sampled at ``temperature`` with its own seed (greedy
votes would all be the same reply); a single judge decodes greedily. A tie falls back to
PRED_WRONG, the verdict that changes no label. A reply that does not parse or names no verdict is
asked again (sampled, new seed); a sample with no readable vote after the retries is JUDGE_FAILED:
recorded in the ledger as ``judge_failed`` and left out of the next round's data, since nobody
checked its label.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from looptool.ledger import Ledger
from looptool.schema import Call, Label, Sample, label_from_json, label_to_json
from looptool.toolcall import render_label, split_thinking

VERDICTS = ("PRED_WRONG", "LABEL_WRONG", "BOTH_CORRECT", "BOTH_WRONG")
JUDGE_CHOICES = ("only_A", "only_B", "both", "neither")
JUDGE_SCHEMA = {
    "type": "object",
    "properties": {
        "analysis": {"type": "string"},  # length bounded by max_tokens: length limits in a schema slow llama.cpp grammars to ~1-2 tok/s (measured)
        "correct": {"type": "string", "enum": list(JUDGE_CHOICES)},
    },
    "required": ["analysis", "correct"],
}
JUDGE_SYSTEM = (
    "You check answers of a tool-calling assistant. Given the available tools, the conversation and two "
    "candidate next moves (A and B), decide which candidates are correct. A correct move calls the right "
    "tool(s) with argument values taken from the conversation and allowed by the tool schema, or replies in "
    "text when no call is possible or a required value is missing. First write a short analysis of the "
    "errors you see, then answer with one of: only_A, only_B, both, neither."
)


@dataclass
class JudgeConfig:
    """params.yaml ``judge``: how the JGLV judge is asked."""

    n_judges: int = field(default=1, metadata={
        "help": "Votes per mismatch: 1 = one greedy vote; several = sampled votes and a majority (ties keep the label)."})
    retries: int = field(default=1, metadata={
        "help": "Re-asks of a vote whose reply names no verdict (sampled); then judge_failed."})
    temperature: float = field(default=0.7, metadata={
        "help": "Sampling temperature of the votes (n_judges > 1) and of every retry."})
    max_tokens: int = field(default=200, metadata={"help": "Generation limit of one verdict."})

    def __post_init__(self) -> None:
        if self.n_judges < 1 or self.retries < 0:
            raise ValueError(f"judge.n_judges must be >= 1 and judge.retries >= 0, got {self.n_judges}, {self.retries}")


@dataclass
class Judgement:
    verdict: str
    analysis: str
    votes: dict[str, int]
    label_first: bool
    decided_by: str = "judge"  # judge | rule
    rule: str | None = None  # the rule that decided (decided_by == "rule")


def predicted_label(sample: Sample) -> Label:
    """The model's answer recorded by the probe, as a label (calls, or the text when it made none)."""
    probe = sample.meta.get("probe") or {}
    calls = probe.get("calls") or []
    if calls:
        return [Call.from_dict(c) for c in calls]
    return split_thinking(str(probe.get("prediction", ""))).answer  # a thought is never part of a label


def prediction_problem(sample: Sample) -> str | None:
    """Why the probe's prediction could never be a label (a rule's name), or None when it could.

    The same checks every seed sample passed (``check_sample``), after the parser's own verdict.
    """
    from looptool.synth.samples import check_sample

    probe = sample.meta.get("probe") or {}
    if probe.get("parse_error"):
        return "unparsable"
    prediction = predicted_label(sample)
    if isinstance(prediction, str) and not prediction.strip():
        return "empty_reply"
    problems = check_sample(Sample(sample.tools, sample.messages, prediction, sample.origin, sample.round,
                                   sample.parent, {}, sample.id))
    return problems[0].code if problems else None


def rule_judgement(sample: Sample, label_first: bool) -> Judgement | None:
    """The verdict the rules reach without the judge, or None when the prediction is rule-clean."""
    from looptool.synth.samples import check_sample

    rule = prediction_problem(sample)
    if rule is None:
        return None
    verdict = "BOTH_WRONG" if check_sample(sample) else "PRED_WRONG"
    return Judgement(verdict, f"rule {rule}: the prediction cannot be a label", {}, label_first, "rule", rule)


def _render_candidate(label: Label) -> str:
    return render_label(label) if not isinstance(label, str) else f"(text reply) {label}"


def judge_order(sample_id: str, seed: int) -> bool:
    """True when the label is shown as candidate A; seeded per sample, independent of batch order."""
    return random.Random(f"{seed}:{sample_id}").random() < 0.5


def judge_messages(sample: Sample, label_first: bool) -> list[dict[str, str]]:
    tools = "\n".join(json.dumps(t.to_dict(), ensure_ascii=False) for t in sample.tools)
    history = "\n".join(
        f"[{m['role']}] {m.get('content') or ''}"
        + ("".join(f"\n<tool_call> {json.dumps(c, ensure_ascii=False)}" for c in m.get("tool_calls", [])))
        for m in sample.messages
    )
    label, prediction = _render_candidate(sample.label), _render_candidate(predicted_label(sample))
    first, second = (label, prediction) if label_first else (prediction, label)
    user = (f"Tools:\n{tools}\n\nConversation:\n{history}\n\nCandidate A:\n{first}\n\nCandidate B:\n{second}\n\n"
            "Which candidates are correct?")
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def verdict_from_choice(choice: str, label_first: bool) -> str:
    """Translate the judge's A/B answer back into label/prediction terms."""
    if choice == "both":
        return "BOTH_CORRECT"
    if choice == "neither":
        return "BOTH_WRONG"
    label_is_a = label_first
    chose_a = choice == "only_A"
    return "PRED_WRONG" if chose_a == label_is_a else "LABEL_WRONG"


def majority(verdicts: Sequence[str]) -> str:
    """The most common verdict; a tie (or no readable vote) keeps the label: PRED_WRONG."""
    counts = Counter(verdicts).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return "PRED_WRONG"
    return counts[0][0]


JUDGE_FAILED = "JUDGE_FAILED"  # no readable verdict after every retry (ledger reason judge_failed)


def _vote(result: Any, label_first: bool) -> tuple[str, str] | None:
    """(verdict, analysis) from one judge reply, or None when it names no verdict."""
    if result.ok and isinstance(result.parsed, dict) and result.parsed.get("correct") in JUDGE_CHOICES:
        return verdict_from_choice(result.parsed["correct"], label_first), str(result.parsed.get("analysis", ""))
    return None


def judge_mismatches(client: Any, samples: Sequence[Sample], n_judges: int = 1, seed: int = 0,
                     max_tokens: int = 200, retries: int = 1, temperature: float = 0.7) -> list[Judgement]:
    """A verdict for every sample: by the rules where they decide it, else by the judge.

    The judge gives ``n_judges`` votes per sample through the cached chat client: one greedy vote,
    or several sampled at ``temperature``, each with its own seed. A vote whose reply does not parse
    or names no verdict is asked again, up to ``retries`` times, sampled at ``temperature`` with a new
    seed (a greedy retry would repeat the same reply). A sample left without any readable vote gets
    the verdict ``JUDGE_FAILED``.
    """
    from looptool.llm.client import ChatRequest

    orders = [judge_order(s.id, seed) for s in samples]
    decided = {i: j for i, s in enumerate(samples) if (j := rule_judgement(s, orders[i])) is not None}
    votes: dict[tuple[int, int], tuple[str, str]] = {}
    pending = [(i, k) for i in range(len(samples)) if i not in decided for k in range(n_judges)]
    for attempt in range(retries + 1):
        if not pending:
            break
        sampled = attempt > 0 or n_judges > 1
        requests = [
            ChatRequest(messages=judge_messages(samples[i], orders[i]), schema=JUDGE_SCHEMA, schema_name="judgement",
                        max_tokens=max_tokens, seed=seed, sample_index=k + attempt * n_judges,
                        temperature=temperature if sampled else None)
            for i, k in pending
        ]
        results = client.chat_many(requests, desc="judge" if attempt == 0 else f"judge retry {attempt}")
        still = []
        for (i, k), result in zip(pending, results):
            vote = _vote(result, orders[i])
            if vote is None:
                still.append((i, k))
            else:
                votes[(i, k)] = vote
        pending = still
    judgements = []
    for i, first in enumerate(orders):
        if i in decided:
            judgements.append(decided[i])
            continue
        cast = [votes[(i, k)] for k in range(n_judges) if (i, k) in votes]
        if not cast:
            judgements.append(Judgement(JUDGE_FAILED, "", {}, first))
            continue
        verdict = majority([v for v, _ in cast])
        judgements.append(Judgement(verdict, next((a for v, a in cast if v == verdict), ""),
                                    dict(Counter(v for v, _ in cast)), first))
    return judgements


@dataclass
class JudgedSplit:
    error_seeds: list[Sample]  # PRED_WRONG (origin error_seed) and LABEL_WRONG (origin corrected)
    ledger: Ledger
    verdicts: dict[str, int]


def apply_judgements(samples: Sequence[Sample], judgements: Sequence[Judgement] | None) -> JudgedSplit:
    """Carry out the verdicts; ``judgements=None`` is ``ablation.jglv=false`` (all PRED_WRONG)."""
    ledger = Ledger("judge")
    ledger.expect(len(samples))
    seeds: list[Sample] = []
    tally: Counter[str] = Counter()
    for i, sample in enumerate(samples):
        judgement = judgements[i] if judgements is not None else Judgement("PRED_WRONG", "", {}, True, "ablation")
        if judgement.verdict == "LABEL_WRONG":
            # A correction is written only if it passes the seed set's rules (whoever judged).
            judgement = rule_judgement(sample, judgement.label_first) or judgement
        tally[judgement.verdict] += 1
        info = {"verdict": judgement.verdict, "votes": judgement.votes, "decided_by": judgement.decided_by,
                "rule": judgement.rule,
                "label_noise": sample.meta.get("noise") if label_is_corrupted(sample) else None}
        meta = {**sample.meta, "judge": {"verdict": judgement.verdict, "analysis": judgement.analysis}}
        if judgement.verdict == "PRED_WRONG":
            seeds.append(Sample(sample.tools, sample.messages, sample.label, "error_seed", sample.round,
                                sample.id, meta))
            ledger.keep(sample.id, to="error_seed", **info)
        elif judgement.verdict == "LABEL_WRONG":
            meta["old_label"] = label_to_json(sample.label)
            seeds.append(Sample(sample.tools, sample.messages, predicted_label(sample), "corrected", sample.round,
                                sample.id, meta))
            ledger.keep(sample.id, to="corrected", **info)
        elif judgement.verdict == "BOTH_CORRECT":
            ledger.reject(sample.id, "both_correct_mastered", **info)
        elif judgement.verdict == JUDGE_FAILED:
            # Unjudged: neither kept as an error seed nor corrected (its label was never checked).
            ledger.reject(sample.id, "judge_failed", **info)
        else:
            ledger.reject(sample.id, "both_wrong", **info)
    ledger.check_balanced()
    return JudgedSplit(seeds, ledger, {v: tally.get(v, 0) for v in (*VERDICTS, JUDGE_FAILED)})


# ------------------------------------------------------------------------------ noise audit
def labels_equal(a: Label, b: Label) -> bool:
    """Same answer: both text replies, or the same multiset of calls."""
    from looptool.toolcall import calls_match

    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str)
    return calls_match(a, b)


def label_is_corrupted(sample: Sample) -> bool:
    """The sample carries an injected label mistake that no earlier round has corrected."""
    return bool(sample.meta.get("noise")) and "clean_label" in sample.meta and \
        not labels_equal(sample.label, label_from_json(sample.meta["clean_label"]))


def noise_audit(samples: Sequence[Sample], judgements: Sequence[Judgement] | None) -> dict[str, Any]:
    """How JGLV did on the labels the oracle corrupted on purpose (issue #13, item 4).

    Of the corrupted labels among the judged mismatches: how many were judged LABEL_WRONG, and how
    many of those corrections equal the clean label; of the clean labels, how many it rewrote.
    With ``judgements=None`` (JGLV off) nothing is rewritten.
    """
    corrupted = judged_wrong = corrected_clean = clean_rewritten = 0
    by_type: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    for i, sample in enumerate(samples):
        verdict = judgements[i].verdict if judgements is not None else "PRED_WRONG"
        if label_is_corrupted(sample):
            corrupted += 1
            by_type[str(sample.meta["noise"])] += 1
            verdicts[verdict] += 1
            if verdict == "LABEL_WRONG":
                judged_wrong += 1
                corrected_clean += labels_equal(predicted_label(sample), label_from_json(sample.meta["clean_label"]))
        elif verdict == "LABEL_WRONG":
            clean_rewritten += 1
    return {"corrupted_seen": corrupted, "corrupted_judged_label_wrong": judged_wrong,
            "corrected_equal_clean": corrected_clean, "clean_labels_seen": len(samples) - corrupted,
            "clean_labels_rewritten": clean_rewritten, "corrupted_by_type": dict(sorted(by_type.items())),
            "corrupted_verdicts": dict(sorted(verdicts.items()))}
