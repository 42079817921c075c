"""Seed data throughput, program agents vs LLM agents, in one run (issue #13).

* program path: capability -> tool synthesis, program planner / template user / oracle / tool,
  rule verification and per-step samples; reported as verified samples per second;
* LLM path: the same tool pool, every agent played by the embedded SmolLM2 on llama.cpp (the
  paper's setting with a weak generator), then the same rules; reported as dialogues per minute and
  verified samples per minute.

Usage (from the repository root; the LLM path needs llama-cpp-python[server]):

    python benchmarks/bench_seed.py --program-dialogues 300 --llm-dialogues 3 --out bench_seed.json

No response cache is used on the LLM path, so every request reaches the server.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from looptool.io import write_json
from looptool.ledger import Ledger
from looptool.params import load_params, section_config
from looptool.synth.concepts import CapabilitiesConfig
from looptool.synth.dialogue import LLM_AGENTS, SimulationConfig, simulate_dialogues
from looptool.synth.pipeline import library_from_config, simulate_program
from looptool.synth.program_apis import synthesize_program
from looptool.synth.samples import build_samples
from looptool.synth.trees import ConstraintTree
from looptool.synth.verify import verify_dialogues

ROOT = Path(__file__).resolve().parents[1]


def verified_samples(dialogues: list[dict]) -> int:
    verified = verify_dialogues(dialogues, client=None, seed=0, judge_max_tokens=0, ledger=Ledger("bench"), use_judge=False)
    return len(build_samples(verified, Ledger("bench")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--program-dialogues", type=int, default=300)
    parser.add_argument("--llm-dialogues", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp n_threads (1 is robust on 2 cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    params = load_params(ROOT / "params.yaml")
    capabilities = section_config(params, "capabilities", CapabilitiesConfig)
    library = library_from_config(CapabilitiesConfig(str(ROOT / capabilities.concepts), str(ROOT / capabilities.dir)))
    started = time.monotonic()
    pool = synthesize_program(library, ConstraintTree.load(ROOT / params["synth_apis"]["constraint_tree"]), args.seed,
                              Ledger("bench"))
    synth_s = time.monotonic() - started
    cfg = SimulationConfig.from_mapping({**params["simulate"], "dialogues": args.program_dialogues, "unseen_dialogues": 0,
                                         "paraphrase": {"rate": 0.0}})
    started = time.monotonic()
    dialogues, _ = simulate_program(library, pool, cfg, args.seed, Ledger("bench"))
    n_samples = verified_samples(dialogues)
    program_s = time.monotonic() - started
    program = {"tools": len(pool), "synthesis_s": round(synth_s, 2), "dialogues": len(dialogues),
               "verified_samples": n_samples, "wall_s": round(program_s, 2),
               "samples_per_s": round(n_samples / program_s, 1),
               "dialogues_per_minute": round(len(dialogues) / program_s * 60, 1)}
    print("program:", json.dumps(program), flush=True)

    from looptool.llm.server import open_llm

    llm_cfg = SimulationConfig.from_mapping({k: v for k, v in params["simulate"].items()
                                             if k not in ("agents", "noise", "paraphrase", "unseen_dialogues",
                                                          "unseen_share", "relative_date_rate", "enum_paraphrase_rate")}
                                            | {"dialogues": args.llm_dialogues, "agents": LLM_AGENTS})
    with tempfile.TemporaryDirectory() as tmp, open_llm({"backend": "embedded", "max_retries": 1,
                                                         "cache_path": str(Path(tmp) / "cache.sqlite"),
                                                         "server": {"n_threads": args.threads}}) as client:
        started = time.monotonic()
        llm_dialogues = simulate_dialogues(client, pool, llm_cfg, args.seed, Ledger("bench"))
        llm_s = time.monotonic() - started
        llm_samples = verified_samples(llm_dialogues)
    llm = {"dialogues_requested": args.llm_dialogues, "dialogues_kept": len(llm_dialogues),
           "verified_samples": llm_samples, "wall_s": round(llm_s, 1),
           "dialogues_per_minute": round(args.llm_dialogues / llm_s * 60, 2),
           "verified_samples_per_minute": round(llm_samples / llm_s * 60, 2)}
    print("llm:    ", json.dumps(llm), flush=True)
    ratio = (n_samples / program_s) / (llm_samples / llm_s) if llm_samples else None
    print(f"program / llm verified samples per second: {ratio:.0f}x" if ratio else
          "program / llm: the LLM path verified no sample in this run")
    if args.out:
        write_json(args.out, {"benchmark": "seed", "program": program, "llm": llm,
                              "samples_per_s_ratio": round(ratio, 1) if ratio else None})


if __name__ == "__main__":
    main()
