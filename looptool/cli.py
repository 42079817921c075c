"""The ``looptool`` command: ``looptool <group> <action> ...``.

``looptool eval score`` scores a predictions file, ``looptool eval run`` decodes a model on a
benchmark and scores it, ``looptool eval subset`` prints the ids of the stratified subset a CPU run
evaluates. Other groups register themselves in
:func:`build_parser`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from looptool.io import DataError, write_json

EXIT_OK, EXIT_USAGE, EXIT_DATA = 0, 2, 3


def _benchmark_options(args: argparse.Namespace) -> dict:
    if args.benchmark == "acebench":
        return {"data_dir": args.data_dir, "strict": args.strict, "agent_accuracy": args.agent_accuracy}
    return {"underscore_names": args.underscore_names}


def format_report(report) -> str:
    """A readable table: one row per category, then the summary and the problems."""
    rows = [("category", "correct", "total", "accuracy")]
    for name, score in report.categories.items():
        unit = "" if score.unit == "entry" else f" ({score.unit}s)"
        rows.append((name + unit, str(score.correct), str(score.total), f"{100 * score.accuracy:6.2f}%"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    for key, value in report.summary.items():
        if isinstance(value, float):
            lines.append(f"{key:>12}: {100 * value:6.2f}%")
        elif isinstance(value, list):
            lines.append(f"{key:>12}: {', '.join(value) if value else '-'}")
        else:
            lines.append(f"{key:>12}: {value}")
    if report.problems:
        lines.append("")
        lines.append(f"problems ({len(report.problems)}):")
        lines.extend(f"  {p}" for p in report.problems)
    return "\n".join(lines)


def cmd_eval_score(args: argparse.Namespace) -> int:
    from looptool.eval import get_benchmark, read_predictions, score_predictions, select_subset

    benchmark = get_benchmark(args.benchmark, **_benchmark_options(args))
    predictions = read_predictions(args.predictions, is_known_id=lambda i: benchmark.category_of(i) is not None)
    ids = None
    if args.per_category is not None:
        ids = select_subset(benchmark, args.categories, per_category=args.per_category, seed=args.seed)
    report = score_predictions(benchmark, predictions, categories=args.categories, ids=ids,
                               only_predicted=args.only_predicted)
    print(format_report(report))
    if args.json:
        write_json(args.json, report.to_dict(include_failures=args.failures))
    return EXIT_OK


def cmd_eval_subset(args: argparse.Namespace) -> int:
    from looptool.eval import get_benchmark, select_subset

    benchmark = get_benchmark(args.benchmark, **_benchmark_options(args))
    for entry_id in select_subset(benchmark, args.categories, per_category=args.per_category, seed=args.seed):
        print(entry_id)
    return EXIT_OK


def cmd_eval_run(args: argparse.Namespace) -> int:
    from looptool.eval.runner import BenchmarkSpec, EvalRunConfig, evaluate_model

    spec = BenchmarkSpec(args.benchmark, categories=args.categories, per_category=args.limit,
                         options=_benchmark_options(args))
    config = EvalRunConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    results = evaluate_model(args.model, [spec], config, seed=args.seed, backend=args.backend)
    lines, report = results[args.benchmark]
    print(format_report(report))
    if args.predictions_out:
        from looptool.io import write_jsonl

        write_jsonl(args.predictions_out, lines)
    if args.json:
        write_json(args.json, report.to_dict(include_failures=args.failures))
    return EXIT_OK


def _add_benchmark_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--benchmark", required=True, choices=["bfcl-v3", "acebench"])
    parser.add_argument("--categories", nargs="+", metavar="NAME", help="score/select only these categories")
    parser.add_argument("--data-dir", help="ACEBench data_en directory (default: ../shared/acebench_data)")
    parser.add_argument("--strict", action="store_true",
                        help="ACEBench: also compare numbers/booleans and require every expected parameter")
    parser.add_argument("--agent-accuracy", type=float, help="ACEBench: Agent score measured elsewhere (fraction)")
    parser.add_argument("--underscore-names", action="store_true",
                        help="BFCL: the model saw function names with '.' replaced by '_'")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="looptool", description="LoopTool experiment tools")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")

    eval_parser = groups.add_parser("eval", help="benchmarks: score predictions, select subsets")
    actions = eval_parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    score = actions.add_parser("score", help="score a predictions JSONL file")
    _add_benchmark_arguments(score)
    score.add_argument("--predictions", required=True, help="JSONL: {id, calls | turns, raw} per line")
    score.add_argument("--json", metavar="OUT", help="also write the report as JSON")
    score.add_argument("--failures", action="store_true", help="include per-entry failure reasons in --json")
    score.add_argument("--per-category", type=int, metavar="N",
                       help="score only the stratified subset of N per category (as selected by 'eval subset')")
    score.add_argument("--seed", type=int, default=0, help="seed of the subset (with --per-category)")
    score.add_argument("--only-predicted", action="store_true",
                       help="score only entries that have a prediction line")
    score.set_defaults(handler=cmd_eval_score)

    subset = actions.add_parser("subset", help="print the ids of a stratified, seeded subset")
    _add_benchmark_arguments(subset)
    subset.add_argument("--per-category", type=int, default=20, metavar="N")
    subset.add_argument("--seed", type=int, default=0)
    subset.set_defaults(handler=cmd_eval_subset)

    run = actions.add_parser("run", help="generate predictions with a model, then score them")
    _add_benchmark_arguments(run)
    run.add_argument("--model", required=True, help="a Hugging Face model directory (e.g. models/iterative/r2)")
    run.add_argument("--limit", type=int, metavar="N",
                     help="evaluate a seeded stratified subset of N entries per category (default: all)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--backend", default="auto", choices=["auto", "hf", "vllm"])
    run.add_argument("--max-new-tokens", type=int, default=256)
    run.add_argument("--batch-size", type=int, default=8)
    run.add_argument("--predictions-out", metavar="FILE", help="also write the predictions JSONL")
    run.add_argument("--json", metavar="OUT", help="also write the report as JSON")
    run.add_argument("--failures", action="store_true", help="include per-entry failure reasons in --json")
    run.set_defaults(handler=cmd_eval_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (DataError, ValueError) as err:
        print(f"looptool: error: {err}", file=sys.stderr)
        return EXIT_DATA


if __name__ == "__main__":
    sys.exit(main())
