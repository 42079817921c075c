"""DVC stage `probe@<round>` (GCP): greedy-decode the round's model on its training data."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from looptool.io import read_jsonl, write_json, write_jsonl
from looptool.llm.policy import GenerationSettings, load_policy_engine
from looptool.models import ComputeConfig
from looptool.loop.probe import ProbeConfig, probe, probe_metrics, split_by_probe
from looptool.params import AblationConfig, load_params, section_config
from looptool.schema import Sample
from looptool.tracking import log_metrics, mlflow_run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--round", required=True)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out-dir", required=True, type=Path)
    args = parser.parse_args(argv)

    params = load_params(args.params)
    cfg = section_config(params, "probe", ProbeConfig)
    ablation = section_config(params, "ablation", AblationConfig)
    samples = read_jsonl(args.data, Sample.from_dict)
    with mlflow_run("probe", arm="iterative", round=args.round,
                    params={"probe": asdict(cfg), "ablation": asdict(ablation)}) as run:
        engine = load_policy_engine(args.model, backend=cfg.backend, compute=section_config(params, "compute", ComputeConfig))
        results = probe(engine, samples, section_config(params, "generation", GenerationSettings), cfg.batch_size)
        split = split_by_probe(samples, results, cfg.retention, keep_all_mastered=not ablation.high_ppl)
        metrics = {**probe_metrics(samples, results, split), "ledger": split.ledger.summary()}
        log_metrics(run, metrics)
    out = args.out_dir
    write_jsonl(out / "results.jsonl", (r.to_dict() for r in results))
    write_jsonl(out / "high_ppl.jsonl", split.high_ppl)
    write_jsonl(out / "failed.jsonl", split.failed)
    split.ledger.write(out / "ledger.jsonl")
    write_json(out / "metrics.json", metrics)
    print(f"probe {args.round}: {metrics}")


if __name__ == "__main__":
    main()
