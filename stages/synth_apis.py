"""Stage synth_apis: context x constraint trees -> generated tools -> rule validation -> API pool.

Outputs under data/seed/apis/: apis.jsonl (the valid tools), ledger.jsonl (one record per requested
API), metrics.json. Params: seed, synth_apis, llm, capabilities (program backend).
"""

from pathlib import Path

from dataclasses import asdict

from looptool.llm.server import LLMConfig
from looptool.params import load_params, pipeline_seed, section_config
from looptool.synth.concepts import CapabilitiesConfig
from looptool.synth.pipeline import SynthApisConfig, library_from_config, run_synth_apis
from looptool.tracking import log_metrics, mlflow_run

OUT = Path("data/seed/apis")


def main() -> None:
    params = load_params()
    cfg, llm = section_config(params, "synth_apis", SynthApisConfig), section_config(params, "llm", LLMConfig)
    library = None
    if cfg.backend == "program":
        library = library_from_config(section_config(params, "capabilities", CapabilitiesConfig))
    seed = pipeline_seed(params)
    with mlflow_run("synth_apis", params={"seed": seed, "synth_apis": asdict(cfg), "llm": llm.to_params_mapping()}) as run:
        metrics = run_synth_apis(cfg, llm, seed, OUT, library=library)
        log_metrics(run, metrics)
    print(f"synth_apis: {metrics['requested']} requested -> {metrics['valid_apis']} valid; rejected {metrics['rejected_by_reason']}")


if __name__ == "__main__":
    main()
