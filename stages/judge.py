"""DVC stage `judge@<round>` (JGLV): a verdict for every probe mismatch; labels corrected where wrong."""

from __future__ import annotations

import argparse
from pathlib import Path

from looptool.io import read_jsonl, write_json, write_jsonl
from looptool.loop.judge import apply_judgements, judge_mismatches, noise_audit
from looptool.params import load_params, section
from looptool.schema import Sample
from looptool.synth.pipeline import llm_client
from looptool.tracking import log_metrics, mlflow_run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--round", required=True)
    parser.add_argument("--failed", required=True, type=Path)
    parser.add_argument("--out-dir", required=True, type=Path)
    args = parser.parse_args(argv)

    params = load_params(args.params)
    cfg, ablation = section(params, "judge"), params.get("ablation") or {}
    failed = read_jsonl(args.failed, Sample.from_dict)
    with mlflow_run("judge", arm="iterative", round=args.round, params={"judge": cfg, "ablation": ablation}) as run:
        judgements = None
        if ablation.get("jglv", True) and failed:
            with llm_client(section(params, "llm")) as client:
                judgements = judge_mismatches(client, failed, n_judges=int(cfg.get("n_judges", 1)),
                                              seed=int(params.get("seed", 0)), max_tokens=int(cfg.get("max_tokens", 200)),
                                              retries=int(cfg.get("retries", 1)),
                                              temperature=float(cfg.get("temperature", 0.7)))
        split = apply_judgements(failed, judgements)
        metrics = {"mismatches": len(failed), "verdicts": split.verdicts, "judge_ran": judgements is not None,
                   "noise_audit": noise_audit(failed, judgements), "ledger": split.ledger.summary()}
        log_metrics(run, metrics)
    write_jsonl(args.out_dir / "error_seeds.jsonl", split.error_seeds)
    split.ledger.write(args.out_dir / "ledger.jsonl")
    write_json(args.out_dir / "metrics.json", metrics)
    print(f"judge {args.round}: {metrics}")


if __name__ == "__main__":
    main()
