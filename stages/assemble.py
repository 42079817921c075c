"""DVC stage `assemble@<round>`: the next round's training data, D_{j+1}, and its composition."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from looptool.io import read_jsonl, write_json, write_jsonl
from looptool.loop.assemble import AssembleConfig, assemble, fresh_slice
from looptool.params import AblationConfig, load_params, pipeline_seed, section_config
from looptool.schema import Sample
from looptool.tracking import log_metrics, mlflow_run


def round_number(key: str) -> int:
    if not (key.startswith("r") and key[1:].isdigit()):
        raise SystemExit(f"assemble: round keys look like r1, r2, ...; got {key!r}")
    return int(key[1:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--round", required=True)
    parser.add_argument("--high-ppl", required=True, type=Path)
    parser.add_argument("--error-seeds", required=True, type=Path)
    parser.add_argument("--edde", required=True, type=Path)
    parser.add_argument("--pool", required=True, type=Path, help="unused seed samples (shuffled)")
    parser.add_argument("--out-dir", required=True, type=Path)
    args = parser.parse_args(argv)

    params = load_params(args.params)
    cfg = section_config(params, "assemble", AssembleConfig)
    ablation = section_config(params, "ablation", AblationConfig)
    j = round_number(args.round)
    parts = [read_jsonl(p, Sample.from_dict) for p in (args.high_ppl, args.error_seeds, args.edde)]
    fresh = []
    if ablation.fresh_seed:
        fresh = fresh_slice(read_jsonl(args.pool, Sample.from_dict), j, cfg.fresh_size)
    result = assemble([*parts, fresh], next_round=j + 1, seed=pipeline_seed(params))
    if not result.samples:
        raise SystemExit(f"assemble {args.round}: the next round's data is empty (nothing failed, nothing retained, "
                         "no fresh samples); raise assemble.fresh_size or probe.retention")
    metrics = {"composition": result.composition, "ledger": result.ledger.summary()}
    with mlflow_run("assemble", arm="iterative", round=args.round, params={"assemble": asdict(cfg), "ablation": asdict(ablation)}) as run:
        log_metrics(run, metrics)
    write_jsonl(args.out_dir / "next.jsonl", result.samples)
    result.ledger.write(args.out_dir / "ledger.jsonl")
    write_json(args.out_dir / "metrics.json", metrics)
    print(f"assemble {args.round}: {metrics}")


if __name__ == "__main__":
    main()
