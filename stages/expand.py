"""DVC stage `expand@<round>` (EDDE): new verified samples grown from the round's error seeds."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from dataclasses import asdict
from pathlib import Path

from looptool.io import read_jsonl, write_json, write_jsonl
from looptool.ledger import Ledger
from looptool.loop.expand import ExpandConfig, expand, expand_program
from looptool.llm.server import LLMConfig
from looptool.params import AblationConfig, load_params, pipeline_seed, section_config
from looptool.schema import Sample
from looptool.synth.dialogue import SimulationConfig
from looptool.synth.concepts import CapabilitiesConfig
from looptool.synth.pipeline import library_from_config, llm_client
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
    expand_cfg = section_config(params, "expand", ExpandConfig)
    ablation = section_config(params, "ablation", AblationConfig)
    seed = pipeline_seed(params)
    seeds = read_jsonl(args.seeds, Sample.from_dict)
    with mlflow_run("expand", arm="iterative", round=args.round,
                    params={"expand": asdict(expand_cfg), "ablation": asdict(ablation)}) as run:
        if ablation.edde and seeds and expand_cfg.backend == "program":
            # The program agents replay each seed's recipe (no label noise, no rewording); the judge is the
            # only LLM call.
            sim_cfg = dataclasses.replace(section_config(params, "simulate", SimulationConfig),
                                          noise={"rate": 0.0, "types": {}},
                                          paraphrase={**SimulationConfig().paraphrase, "rate": 0.0})
            library = library_from_config(section_config(params, "capabilities", CapabilitiesConfig))
            agents = ProgramAgents(library, sim_cfg, seed)
            with contextlib.ExitStack() as stack:
                llm = section_config(params, "llm", LLMConfig)
                client = stack.enter_context(llm_client(llm)) if expand_cfg.judge else None
                samples, ledger = expand_program(agents, client, seeds, expand_cfg, seed=seed)
        elif ablation.edde and seeds:
            with llm_client(section_config(params, "llm", LLMConfig)) as client:
                samples, ledger = expand(client, seeds, expand_cfg, seed=seed)
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
