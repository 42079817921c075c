"""DVC stage `expand@<round>` (EDDE): new verified samples grown from the round's error seeds."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from looptool.io import read_jsonl, write_json, write_jsonl
from looptool.ledger import Ledger
from looptool.loop.expand import ExpandConfig, expand, expand_program
from looptool.params import load_params, section
from looptool.schema import Sample
from looptool.synth.dialogue import SimulationConfig
from looptool.synth.pipeline import library_from_params, llm_client
from looptool.synth.program_agents import ProgramAgents
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
        expand_cfg = ExpandConfig(**cfg)
        if ablation.get("edde", True) and seeds and expand_cfg.backend == "program":
            # The program agents replay each seed's recipe; the judge is the only LLM call.
            sim_cfg = SimulationConfig.from_mapping({**section(params, "simulate"), "noise": {"rate": 0.0, "types": {}},
                                                     "paraphrase": {"rate": 0.0}})
            agents = ProgramAgents(library_from_params(params), sim_cfg, int(params.get("seed", 0)))
            with contextlib.ExitStack() as stack:
                client = stack.enter_context(llm_client(section(params, "llm"))) if expand_cfg.judge else None
                samples, ledger = expand_program(agents, client, seeds, expand_cfg, seed=int(params.get("seed", 0)))
        elif ablation.get("edde", True) and seeds:
            with llm_client(section(params, "llm")) as client:
                samples, ledger = expand(client, seeds, expand_cfg, seed=int(params.get("seed", 0)))
        else:
            samples, ledger = [], Ledger("expand")
            ledger.expect(0)
            ledger.note("EDDE switched off (ablation.edde=false)" if seeds else "no error seeds this round")
        asked = ledger.n_in
        metrics = {"backend": expand_cfg.backend, "error_seeds": len(seeds), "asked": asked, "new_samples": len(samples),
                   "kept_share": round(len(samples) / asked, 3) if asked else 0.0, "ledger": ledger.summary()}
        log_metrics(run, metrics)
    write_jsonl(args.out_dir / "samples.jsonl", samples)
    ledger.write(args.out_dir / "ledger.jsonl")
    write_json(args.out_dir / "metrics.json", metrics)
    print(f"expand {args.round}: {metrics}")


if __name__ == "__main__":
    main()
