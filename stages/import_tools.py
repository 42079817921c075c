"""Stage import_tools: user tool docs (tool lists, ToolBench, OpenAPI 3) -> validated pool entries.

Optional input: with ``import_tools.files`` empty it writes an empty pool and a ledger saying so.
Outputs under data/seed/imported/: tools.jsonl, ledger.jsonl, metrics.json.
"""

from pathlib import Path

from dataclasses import asdict

from looptool.params import load_params, section_config
from looptool.synth.pipeline import ImportToolsConfig, run_import_tools
from looptool.tracking import log_metrics, mlflow_run

OUT = Path("data/seed/imported")


def main() -> None:
    params = load_params()
    cfg = section_config(params, "import_tools", ImportToolsConfig)
    with mlflow_run("import_tools", params={"import_tools": asdict(cfg)}) as run:
        metrics = run_import_tools(cfg, OUT)
        log_metrics(run, metrics)
    print(f"import_tools: {metrics['files']} files, {metrics['in']} entries -> {metrics['imported_tools']} tools; "
          f"rejected {metrics['rejected_by_reason']}")


if __name__ == "__main__":
    main()
