"""Evaluation: BFCL v3 and ACEBench scoring, predictions files, summaries (DESIGN.md §8).

Entry points for a later ``eval run`` / DVC ``eval`` stage:

* :func:`looptool.eval.bfcl.build_prompt` / :func:`looptool.eval.acebench.build_prompt` -
  (tools, messages) for one benchmark entry;
* :func:`looptool.eval.multi_turn.make_instances` + :func:`~looptool.eval.multi_turn.execute_calls` -
  drive a BFCL multi-turn entry turn by turn;
* :func:`select_subset` - the stratified, seeded subset for CPU runs;
* :func:`read_predictions` + :func:`score_predictions` - the scores and the summary.
"""

from looptool.eval.predictions import Prediction, PredictionSet, read_predictions
from looptool.eval.registry import (
    Benchmark,
    Category,
    CategoryScore,
    ScoreReport,
    available_benchmarks,
    get_benchmark,
    register_benchmark,
    score_predictions,
    select_subset,
)

__all__ = [
    "Benchmark", "Category", "CategoryScore", "Prediction", "PredictionSet", "ScoreReport",
    "available_benchmarks", "get_benchmark", "read_predictions", "register_benchmark",
    "score_predictions", "select_subset",
]
