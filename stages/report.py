"""DVC stage `report`: score table, loop numbers and plots of every configured round -> eval/.

Reads whatever evaluation, training and loop-stage JSON exists (a missing file is reported, not
fatal), writes eval/report.md, eval/summary.json, eval/scores.json, the plot data under
eval/plots/ and the PNGs, logs one MLflow run per arm with its numbers over rounds, then prints the
final summary table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from looptool import report
from looptool.io import atomic_open, write_json
from looptool.params import load_params, round_specs
from looptool.tracking import log_round_series

PLOTS = {"scores": "Benchmark score per round", "composition": "Training data per round",
         "rewards": "GRPO reward curves"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--root", default=".", type=Path, help="repository root holding eval/ and data/")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    round_spec = round_specs(params, "rounds")
    rounds = list(round_spec)
    # An absent static_rounds / evolve means "every round" (see report.collect_inputs), not "none".
    static, evolve = (round_specs(params, k) if k in params else None for k in ("static_rounds", "evolve"))
    inputs = report.collect_inputs(args.root, rounds, round_spec, static, evolve)
    table = report.build_summary_table(inputs.evals, report.eval_runs(rounds))

    out, plots = args.root / "eval", args.root / "eval" / "plots"
    intervals = report.score_intervals(inputs.evals)
    report.plot_scores(table, rounds, plots / "scores.png", intervals)
    report.plot_composition(inputs, plots / "composition.png")
    report.plot_rewards(inputs, plots / "rewards.png")
    write_json(out / "summary.json", report.summary_rows(table, rounds))
    write_json(out / "scores.json", report.scores_metrics(table, intervals))
    paired = report.paired_tests(inputs)
    write_json(out / "paired.json", paired)
    write_json(plots / "scores_by_round.json", report.scores_by_round(table, rounds))
    write_json(plots / "composition.json", report.composition_rows(inputs))
    links = {caption: f"plots/{name}.png" for name, caption in PLOTS.items()}
    with atomic_open(out / "report.md") as handle:
        handle.write(report.render_report(inputs, table, links, intervals, paired))
    arm_runs = log_round_series(report.round_series(table, intervals, inputs, rounds))

    print("\n== Final summary table (accuracy %, " + report.MISSING + " = missing) ==")
    print(report.table_text(table))
    if paired:
        print("\n== Iterative vs static, item by item (exact McNemar) ==")
        for r, benches in paired.items():
            for bench, p in benches.items():
                shared = "  (same model: shared round)" if p["same_model"] else ""
                print(f"{r} {bench}: n={p['n']}  iterative {p['a_correct']}  static {p['b_correct']}  "
                      f"difference {100 * p['difference']:+.1f} pp  p={p['p_value']:.3g}{shared}")
    if arm_runs:
        print(f"\nMLflow: one run per arm ({', '.join(arm_runs)}) with step = round; `make ui`, chart view")
    if inputs.missing:
        print(f"\n{len(inputs.missing)} input file(s) missing or unreadable; see eval/report.md")


if __name__ == "__main__":
    main()
