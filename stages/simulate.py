"""Stage simulate: API pool (generated + imported) -> multi-agent dialogues.

Resumable: every LLM reply is cached (``llm.cache_path``), so a killed run repeats no finished call.
Outputs under data/seed/dialogues/: dialogues.jsonl, ledger.jsonl, pool_ledger.jsonl,
paraphrase_ledger.jsonl (program user turns reworded by the LLM), metrics.json.
"""

from pathlib import Path

from dataclasses import asdict

from looptool.llm.server import LLMConfig
from looptool.params import load_params, pipeline_seed, section_config
from looptool.synth.concepts import CapabilitiesConfig
from looptool.synth.dialogue import SimulationConfig
from looptool.synth.pipeline import library_from_config, run_simulate
from looptool.tracking import log_metrics, mlflow_run

POOLS = [Path("data/seed/apis/apis.jsonl"), Path("data/seed/imported/tools.jsonl")]
OUT = Path("data/seed/dialogues")


def main() -> None:
    params = load_params()
    cfg, llm = section_config(params, "simulate", SimulationConfig), section_config(params, "llm", LLMConfig)
    library = None
    if cfg.agents["planner"] == "program":
        library = library_from_config(section_config(params, "capabilities", CapabilitiesConfig))
    seed = pipeline_seed(params)
    with mlflow_run("simulate", params={"seed": seed, "simulate": asdict(cfg), "llm": llm.to_params_mapping()}) as run:
        metrics = run_simulate(cfg, llm, seed, POOLS, OUT, library=library)
        log_metrics(run, metrics)
    print(f"simulate: {metrics['pool_tools']} tools, {metrics['in']} dialogues requested -> {metrics['dialogues']} "
          f"kept; rejected {metrics['rejected_by_reason']}; {metrics['dialogues_per_minute']} dialogues/min"
          + (f"; paraphrases {metrics['paraphrase']}" if "paraphrase" in metrics else ""))


if __name__ == "__main__":
    main()
