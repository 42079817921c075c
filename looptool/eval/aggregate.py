"""Summary scores (DESIGN.md §8). Accuracies are fractions in [0, 1].

BFCL v3 Overall = mean(Non-Live, Live, Multi-Turn), where
  Non-Live   = unweighted mean of: simple AST (= mean of simple [python], java, javascript),
               multiple, parallel, parallel_multiple, irrelevance;
  Live       = mean of live_simple, live_multiple, live_parallel, live_parallel_multiple,
               live_irrelevance, live_relevance weighted by each category's number of entries in
               the benchmark (the full count, so a stratified subset does not reweight it);
  Multi-Turn = mean of multi_turn_base, _miss_func, _miss_param, _long_context.
A category that was not run counts 0; the summary lists which categories were run.

ACEBench Overall = 0.578 Normal + 0.2676 Special + 0.1545 Agent (weights from ACEBench's
model_eval/evaluation_helper.py, generate_result_csv), where each part is the unweighted mean of
its categories (calculate_unweighted_accuracy there): Normal over the 12 normal categories,
Special over incomplete/error_param/irrelevant, Agent over multi_step/multi_turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from statistics import fmean

from looptool.eval import acebench, bfcl

BFCL_SIMPLE_AST = ("simple", "java", "javascript")
BFCL_NON_LIVE_REST = ("multiple", "parallel", "parallel_multiple", "irrelevance")
BFCL_LIVE = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance", "live_relevance")
BFCL_MULTI_TURN = bfcl.MULTI_TURN_CATEGORIES

ACEBENCH_WEIGHTS = {"normal": 0.578, "special": 0.2676, "agent": 0.1545}


def _acc(accuracies: Mapping[str, float], name: str) -> float:
    return float(accuracies.get(name, 0.0))


def _bfcl_parts(accuracies: Mapping[str, float], live_sizes: Mapping[str, int]) -> dict[str, float]:
    simple_ast = fmean(_acc(accuracies, c) for c in BFCL_SIMPLE_AST)
    non_live = fmean([simple_ast] + [_acc(accuracies, c) for c in BFCL_NON_LIVE_REST])
    weight = sum(live_sizes[c] for c in BFCL_LIVE)
    live = sum(_acc(accuracies, c) * live_sizes[c] for c in BFCL_LIVE) / weight
    multi_turn = fmean(_acc(accuracies, c) for c in BFCL_MULTI_TURN)
    return {"overall": fmean([non_live, live, multi_turn]), "non_live": non_live, "simple_ast": simple_ast,
            "live": live, "multi_turn": multi_turn}


def bfcl_summary(accuracies: Mapping[str, float], live_sizes: Mapping[str, int],
                 strict_accuracies: Mapping[str, float] | None = None) -> dict:
    """``accuracies``: category -> accuracy for the categories run; ``live_sizes``: category ->
    number of entries in the full benchmark (the Live weights).

    ``strict_accuracies``: the strict accuracy of the irrelevance categories run (a failed call
    attempt is no abstention, see ast_checker.is_call_attempt). When given, ``overall_strict``,
    ``non_live_strict`` and ``live_strict`` are the same parts with those in place of the official
    accuracies; the official keys are unchanged.
    """
    summary: dict = _bfcl_parts(accuracies, live_sizes)
    if strict_accuracies is not None:
        strict = _bfcl_parts({**accuracies, **strict_accuracies}, live_sizes)
        summary.update({f"{part}_strict": strict[part] for part in ("overall", "non_live", "live")})
    summary["categories_run"] = [c for c in bfcl.ALL_CATEGORIES if c in accuracies]
    summary["categories_not_run"] = [c for c in bfcl.ALL_CATEGORIES if c not in accuracies]
    return summary


def acebench_overall(normal: float, special: float, agent: float) -> float:
    """The weighted ACEBench Overall; works on fractions or percentages alike."""
    return ACEBENCH_WEIGHTS["normal"] * normal + ACEBENCH_WEIGHTS["special"] * special + ACEBENCH_WEIGHTS["agent"] * agent


def acebench_summary(accuracies: Mapping[str, float], agent: float | None = None) -> dict:
    """``agent``: an Agent score obtained elsewhere (ACEBench's simulator); None counts it 0.

    The same for either rule set of the ACEBench benchmark (``official`` or ``clean`` category
    accuracies). ACEBench's generate_result_csv rounds each category and part to 3 decimals before
    combining them; these are the unrounded means (they differ from its table by under 0.001)."""
    normal = fmean(_acc(accuracies, c) for c in acebench.NORMAL_CATEGORIES)
    special = fmean(_acc(accuracies, c) for c in acebench.SPECIAL_CATEGORIES)
    agent_value = float(agent) if agent is not None else 0.0
    all_categories = acebench.RUNNABLE_CATEGORIES + acebench.AGENT_CATEGORIES
    run = [c for c in all_categories if c in accuracies]
    return {
        "overall": acebench_overall(normal, special, agent_value),
        "normal": normal,
        "special": special,
        "agent": agent_value,
        "agent_source": "given" if agent is not None else "not run (counts 0)",
        "categories_run": run,
        "categories_not_run": [c for c in all_categories if c not in accuracies],
    }
