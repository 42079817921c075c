"""DVC stage `eval`: any model directory -> eval/<arm>/<round>/{predictions.jsonl, metrics.json}."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from looptool.eval.runner import EvalConfig, evaluate_model
from looptool.llm.policy import GenerationSettings
from looptool.io import write_json, write_jsonl
from looptool.models import ComputeConfig
from looptool.params import is_final_model, load_params, section_config
from looptool.tracking import log_metrics, mlflow_run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--arm", required=True, help="base | iterative | static")
    parser.add_argument("--round", required=True, help="r0 for the base model, else the round key")
    parser.add_argument("--out-dir", required=True, type=Path)
    args = parser.parse_args(argv)

    params = load_params(args.params)
    cfg = section_config(params, "eval", EvalConfig)
    generation = section_config(params, "generation", GenerationSettings)
    compute = section_config(params, "compute", ComputeConfig)
    specs = cfg.specs(final=is_final_model(params, args.arm, args.round))
    if not specs:
        raise SystemExit("eval: params.yaml eval.benchmarks names no benchmark")
    logged = {"eval": dataclasses.asdict(cfg), "generation": dataclasses.asdict(generation),
              "compute": dataclasses.asdict(compute)}
    with mlflow_run("eval", arm=args.arm, round=args.round, params=logged) as run:
        results = evaluate_model(args.model, specs, cfg.run_config(generation), seed=cfg.seed, backend=cfg.backend,
                                 compute=compute)
        metrics, lines = {}, []
        for name, (predictions, report) in results.items():
            lines += [{"benchmark": name, **line} for line in predictions]
            report_dict = report.to_dict()
            metrics[name] = {"summary": report_dict["summary"], "categories": report_dict["categories"],
                             "problems": len(report.problems),
                             "with_think": sum(bool(line.get("thinking")) for line in predictions)}
            log_metrics(run, {"summary": {k: v for k, v in report_dict["summary"].items() if isinstance(v, (int, float))},
                              "accuracy": {c: s["accuracy"] for c, s in report_dict["categories"].items()}},
                        prefix=f"{name}/")
    write_jsonl(args.out_dir / "predictions.jsonl", lines)
    # Per item right/wrong, for paired comparisons of two models on the same items (report stage).
    write_json(args.out_dir / "outcomes.json", {name: {c: {i: int(ok) for i, ok in items.items()}
                                                      for c, items in report.outcomes().items()}
                                               for name, (_, report) in results.items()})
    write_json(args.out_dir / "metrics.json", metrics)
    for name, (_, report) in results.items():
        from looptool.cli import format_report

        print(f"\n== {name}: {args.arm}/{args.round} ({args.model}) ==\n{format_report(report)}")


if __name__ == "__main__":
    main()
