"""Stage verify_seed: rule checks, then the LLM judge, on every simulated dialogue.

Outputs under data/seed/verified/: dialogues.jsonl (verified), ledger.jsonl, metrics.json.
"""

from pathlib import Path

from looptool.params import load_params, section
from looptool.synth.pipeline import run_verify
from looptool.tracking import log_metrics, mlflow_run

DIALOGUES = Path("data/seed/dialogues/dialogues.jsonl")
OUT = Path("data/seed/verified")


def main() -> None:
    params = load_params()
    cfg, llm = section(params, "verify_seed"), section(params, "llm")
    with mlflow_run("verify_seed", params={"seed": params["seed"], "verify_seed": cfg, "llm": llm}) as run:
        metrics = run_verify(cfg, llm, int(params["seed"]), DIALOGUES, OUT)
        log_metrics(run, metrics)
    print(f"verify_seed: {metrics['in']} dialogues -> {metrics['verified']} verified; rejected {metrics['rejected_by_reason']}")


if __name__ == "__main__":
    main()
