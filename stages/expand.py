"""DVC stage `expand@<round>` (EDDE): new verified samples grown from the round's error seeds."""

from __future__ import annotations

import argparse
from pathlib import Path

from looptool.io import read_jsonl, write_json, write_jsonl
from looptool.ledger import Ledger
from looptool.loop.expand import ExpandConfig, expand
from looptool.params import load_params, section
from looptool.schema import Sample
from looptool.synth.pipeline import llm_client
from looptool.tracking import log_metrics, mlflow_run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--round", required=True)
    parser.add_argument("--seeds", required=True, type=Path, help="error seeds from the judge stage")
    parser.add_argument("--out-dir", required=True, type=Path)
    args = parser.parse_args(argv)

    params = load_params(args.params)
    cfg, ablation = section(params, "expand"), params.get("ablation") or {}
    seeds = read_jsonl(args.seeds, Sample.from_dict)
    with mlflow_run("expand", arm="iterative", round=args.round, params={"expand": cfg, "ablation": ablation}) as run:
        if ablation.get("edde", True) and seeds:
            with llm_client(section(params, "llm")) as client:
                samples, ledger = expand(client, seeds, ExpandConfig(**cfg), seed=int(params.get("seed", 0)))
        else:
            samples, ledger = [], Ledger("expand")
            ledger.expect(0)
            ledger.note("EDDE switched off (ablation.edde=false)" if seeds else "no error seeds this round")
        metrics = {"error_seeds": len(seeds), "new_samples": len(samples), "ledger": ledger.summary()}
        log_metrics(run, metrics)
    write_jsonl(args.out_dir / "samples.jsonl", samples)
    ledger.write(args.out_dir / "ledger.jsonl")
    write_json(args.out_dir / "metrics.json", metrics)
    print(f"expand {args.round}: {metrics}")


if __name__ == "__main__":
    main()
