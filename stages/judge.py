"""DVC stage `judge@<round>` (JGLV): a verdict for every probe mismatch; labels corrected where wrong."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from looptool.io import read_jsonl, write_json, write_jsonl
from looptool.llm.server import LLMConfig
from looptool.loop.judge import JudgeConfig, apply_judgements, judge_mismatches, noise_audit
from looptool.params import AblationConfig, load_params, pipeline_seed, section_config
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
    cfg = section_config(params, "judge", JudgeConfig)
    ablation = section_config(params, "ablation", AblationConfig)
    failed = read_jsonl(args.failed, Sample.from_dict)
    with mlflow_run("judge", arm="iterative", round=args.round,
                    params={"judge": asdict(cfg), "ablation": asdict(ablation)}) as run:
        judgements = None
        if ablation.jglv and failed:
            with llm_client(section_config(params, "llm", LLMConfig)) as client:
                judgements = judge_mismatches(client, failed, n_judges=cfg.n_judges, seed=pipeline_seed(params),
                                              max_tokens=cfg.max_tokens, retries=cfg.retries,
                                              temperature=cfg.temperature)
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
