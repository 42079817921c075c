"""Stage synth_apis: context x constraint trees -> generated tools -> rule validation -> API pool.

Outputs under data/seed/apis/: apis.jsonl (the valid tools), ledger.jsonl (one record per requested
API), metrics.json. Params: seed, synth_apis, llm, capabilities (program backend).
"""

from pathlib import Path

from looptool.params import load_params, section
from looptool.synth.pipeline import library_from_params, run_synth_apis
from looptool.tracking import log_metrics, mlflow_run

OUT = Path("data/seed/apis")


def main() -> None:
    params = load_params()
    cfg, llm = section(params, "synth_apis"), section(params, "llm")
    library = library_from_params(params) if cfg.get("backend", "llm") == "program" else None
    with mlflow_run("synth_apis", params={"seed": params["seed"], "synth_apis": cfg, "llm": llm}) as run:
        metrics = run_synth_apis(cfg, llm, int(params["seed"]), OUT, library=library)
        log_metrics(run, metrics)
    print(f"synth_apis: {metrics['requested']} requested -> {metrics['valid_apis']} valid; rejected {metrics['rejected_by_reason']}")


if __name__ == "__main__":
    main()
