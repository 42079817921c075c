"""Stage build_samples: verified dialogues (+ extra samples) -> per-step samples -> held-out
evaluation set + round-1 slice + unused pool.

Outputs: data/seed/heldout_unseen.jsonl, data/seed/heldout_seen.jsonl, data/seed/round1.jsonl, data/seed/pool.jsonl, and under
data/seed/samples/: ledger.jsonl, metrics.json.
"""

from pathlib import Path

from dataclasses import asdict

from looptool.params import load_params, pipeline_seed, section_config
from looptool.synth.pipeline import BuildSamplesConfig, run_build_samples
from looptool.tracking import log_metrics, mlflow_run

DIALOGUES = Path("data/seed/verified/dialogues.jsonl")
HELDOUT = Path("data/seed/heldout_seen.jsonl")
HELDOUT_UNSEEN = Path("data/seed/heldout_unseen.jsonl")
ROUND1 = Path("data/seed/round1.jsonl")
POOL = Path("data/seed/pool.jsonl")
OUT = Path("data/seed/samples")


def main() -> None:
    params = load_params()
    cfg = section_config(params, "build_samples", BuildSamplesConfig)
    seed = pipeline_seed(params)
    with mlflow_run("build_samples", params={"seed": seed, "build_samples": asdict(cfg)}) as run:
        metrics = run_build_samples(cfg, seed, DIALOGUES, ROUND1, POOL, OUT, HELDOUT, HELDOUT_UNSEEN)
        log_metrics(run, metrics)
    print(f"build_samples: {metrics['in']} assistant steps -> {metrics['samples']} samples "
          f"({metrics['heldout_unseen']} held out unseen, {metrics['heldout']} held out seen, {metrics['round1']} round 1, "
          f"{metrics['pool']} pool) over {metrics['distinct_tools']} tools; need kinds {metrics['need_kind_share']}; "
          f"rejected {metrics['rejected_by_reason']}")


if __name__ == "__main__":
    main()
