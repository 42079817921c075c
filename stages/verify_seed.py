"""Stage verify_seed: rule checks, then the LLM judge, on every simulated dialogue.

Outputs under data/seed/verified/: dialogues.jsonl (verified), ledger.jsonl, metrics.json.
"""

from pathlib import Path

from dataclasses import asdict

from looptool.llm.server import LLMConfig
from looptool.params import load_params, pipeline_seed, section_config
from looptool.synth.pipeline import VerifySeedConfig, run_verify
from looptool.tracking import log_metrics, mlflow_run

DIALOGUES = Path("data/seed/dialogues/dialogues.jsonl")
OUT = Path("data/seed/verified")


def main() -> None:
    params = load_params()
    cfg, llm = section_config(params, "verify_seed", VerifySeedConfig), section_config(params, "llm", LLMConfig)
    seed = pipeline_seed(params)
    with mlflow_run("verify_seed", params={"seed": seed, "verify_seed": asdict(cfg), "llm": llm.to_params_mapping()}) as run:
        metrics = run_verify(cfg, llm, seed, DIALOGUES, OUT)
        log_metrics(run, metrics)
    print(f"verify_seed: {metrics['in']} dialogues -> {metrics['verified']} verified; rejected {metrics['rejected_by_reason']}")


if __name__ == "__main__":
    main()
