"""The seed stages as library functions: params and paths in, files and a metrics dict out.

``stages/*.py`` only read ``params.yaml`` and call these; tests call them with temporary paths.
Each function writes its outputs atomically, writes a balanced ledger (every item in = kept +
rejected, checked before writing) and returns the metrics it also writes as JSON.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from looptool.io import read_jsonl, write_json, write_jsonl
from looptool.ledger import Ledger
from looptool.schema import Sample
from looptool.synth.apis import synthesize
from looptool.synth.dialogue import SimulationConfig, simulate_dialogues
from looptool.synth.importer import import_tools
from looptool.synth.samples import build_samples, check_sample, split_seed
from looptool.synth.trees import ConstraintTree, ContextTree, sample_api_spec
from looptool.synth.validate import ContaminationIndex, PoolEntry, admit
from looptool.synth.verify import verify_dialogues

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def llm_client(llm_section: dict[str, Any]) -> Iterator[Any]:
    """The generator/judge client for a params ``llm`` section (starts the embedded server if asked)."""
    from looptool.llm.server import open_llm  # imported late: rule-only paths need no server code

    with open_llm(llm_section) as client:
        yield client


def contamination_index(cfg: dict[str, Any]) -> ContaminationIndex:
    """``{bfcl: bool, acebench_dir: path | "default" | null}`` -> index of benchmark functions."""
    ace = cfg.get("acebench_dir")
    if ace == "default":
        from looptool.eval.acebench import default_data_dir

        ace = default_data_dir()
    if ace is not None and not Path(ace).is_dir():
        logger.warning("ACEBench data not found at %s: the contamination filter covers BFCL only", ace)
        ace = None
    return ContaminationIndex.from_benchmarks(bfcl=bool(cfg.get("bfcl", True)), acebench_dir=ace)


def _finish(ledger: Ledger, ledger_path: Path, metrics_path: Path, extra: dict[str, Any]) -> dict[str, Any]:
    ledger.write(ledger_path)
    metrics = {**ledger.summary(), **extra}
    write_json(metrics_path, metrics)
    return metrics


def _usage(client: Any) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in client.usage.as_dict().items()}


# ------------------------------------------------------------------------------------ synth_apis
def run_synth_apis(cfg: dict[str, Any], llm_section: dict[str, Any], seed: int, out_dir: Path,
                   client: Any | None = None) -> dict[str, Any]:
    """Sample ``cfg.requested`` specs from the trees, generate, validate; writes apis.jsonl + ledger + metrics."""
    started = time.monotonic()
    context = ContextTree.load(cfg["context_tree"])
    constraints = ConstraintTree.load(cfg["constraint_tree"])
    specs = [sample_api_spec(context, constraints, seed, i) for i in range(int(cfg["requested"]))]
    contamination = contamination_index(cfg.get("contamination") or {})
    ledger = Ledger("synth_apis")
    with contextlib.ExitStack() as stack:
        client = client or stack.enter_context(llm_client(llm_section))
        pool = synthesize(client, specs, seed=seed, max_tokens=int(cfg["max_tokens"]),
                          temperature=float(cfg["temperature"]), contamination=contamination, ledger=ledger,
                          describe_parameters=cfg.get("parameter_descriptions", "generated") == "generated")
        usage = _usage(client)
    write_jsonl(out_dir / "apis.jsonl", pool)
    return _finish(ledger, out_dir / "ledger.jsonl", out_dir / "metrics.json", {
        "requested": len(specs), "valid_apis": len(pool), "context_leaves": len(context.leaves()),
        "domains": len(context.domains), "llm": usage, "wall_s": round(time.monotonic() - started, 1)})


# ---------------------------------------------------------------------------------- import_tools
def run_import_tools(cfg: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Validate the configured import files; with none configured, an empty pool and a ledger saying so."""
    files = [Path(f) for f in cfg.get("files") or []]
    ledger = Ledger("import_tools")
    contamination = contamination_index(cfg.get("contamination") or {}) if files else None
    pool = import_tools(files, contamination=contamination, ledger=ledger)
    if not files:
        ledger.expect(0)
        ledger.note("no import files configured (import_tools.files is empty): the imported pool is empty")
    write_jsonl(out_dir / "tools.jsonl", pool)
    return _finish(ledger, out_dir / "ledger.jsonl", out_dir / "metrics.json",
                   {"files": len(files), "imported_tools": len(pool),
                    "note": "no import files configured (import_tools.files is empty)" if not files else ""})


# -------------------------------------------------------------------------------------- simulate
def merge_pools(sources: list[list[PoolEntry]], ledger: Ledger) -> list[PoolEntry]:
    """One API pool from several already-validated sources; cross-source name or near-duplicates dropped."""
    seen: dict[tuple, str] = {}
    seen_names: dict[str, str] = {}
    merged = []
    for entries in sources:
        ledger.expect(len(entries))
        for entry in entries:
            tool, problem = admit(entry.id, entry.tool.to_dict(), constraint=None, contamination=None,
                                  seen=seen, seen_names=seen_names)
            if problem is not None:
                ledger.reject(entry.id, problem.code, detail=problem.detail, source=entry.source)
            else:
                ledger.keep(entry.id, name=entry.tool.name, source=entry.source)
                merged.append(entry)
    return merged


def run_simulate(cfg: dict[str, Any], llm_section: dict[str, Any], seed: int, pool_paths: list[Path],
                 out_dir: Path, client: Any | None = None) -> dict[str, Any]:
    started = time.monotonic()
    sim_cfg = SimulationConfig.from_mapping(cfg)
    pool_ledger = Ledger("api_pool")
    pool = merge_pools([read_jsonl(p, PoolEntry.from_dict) for p in pool_paths], pool_ledger)
    pool_ledger.write(out_dir / "pool_ledger.jsonl")
    ledger = Ledger("simulate")
    with contextlib.ExitStack() as stack:
        client = client or stack.enter_context(llm_client(llm_section))
        dialogues = simulate_dialogues(client, pool, sim_cfg, seed, ledger)
        usage = _usage(client)
    write_jsonl(out_dir / "dialogues.jsonl", dialogues)
    wall = time.monotonic() - started
    return _finish(ledger, out_dir / "ledger.jsonl", out_dir / "metrics.json", {
        "pool_tools": len(pool), "pool": pool_ledger.summary(), "dialogues": len(dialogues),
        "messages": sum(len(d["messages"]) for d in dialogues),
        "needs_done": sum(len(d["needs_done"]) for d in dialogues),
        "llm": usage, "wall_s": round(wall, 1),
        "dialogues_per_minute": round(len(dialogues) / wall * 60, 3) if wall else 0.0})


# ----------------------------------------------------------------------------------- verify_seed
def run_verify(cfg: dict[str, Any], llm_section: dict[str, Any], seed: int, dialogues_path: Path,
               out_dir: Path, client: Any | None = None) -> dict[str, Any]:
    started = time.monotonic()
    dialogues = read_jsonl(dialogues_path)
    ledger = Ledger("verify_seed")
    use_judge = bool(cfg.get("judge", True))
    with contextlib.ExitStack() as stack:
        if use_judge and client is None and dialogues:
            client = stack.enter_context(llm_client(llm_section))
        verified = verify_dialogues(dialogues, client=client, seed=seed, judge_max_tokens=int(cfg["judge_max_tokens"]),
                                    ledger=ledger, use_judge=use_judge,
                                    judge_min_yes=int(cfg.get("judge_min_yes", 3)))
        usage = _usage(client) if client is not None else {}
    write_jsonl(out_dir / "dialogues.jsonl", verified)
    by_part: dict[str, int] = {}
    for r in ledger.records:
        if r.fate == "rejected":
            by_part[r.info.get("stage_part", "rules")] = by_part.get(r.info.get("stage_part", "rules"), 0) + 1
    return _finish(ledger, out_dir / "ledger.jsonl", out_dir / "metrics.json", {
        "verified": len(verified), "rejected_by_rules": by_part.get("rules", 0),
        "rejected_by_judge": by_part.get("judge", 0), "llm": usage,
        "wall_s": round(time.monotonic() - started, 1)})


# --------------------------------------------------------------------------------- build_samples
def add_extra_samples(paths: list[str], ledger: Ledger) -> list[Sample]:
    """Seed samples a researcher already has (JSONL of Samples), held to the same rules as ours."""
    accepted: list[Sample] = []
    for path in paths:
        extra = read_jsonl(path, Sample.from_dict)
        ledger.expect(len(extra))
        for sample in extra:
            problems = check_sample(sample)
            if problems:
                ledger.reject(sample.id, problems[0].code, detail=problems[0].detail, source=str(path))
            else:
                ledger.keep(sample.id, source=str(path))
                accepted.append(Sample(sample.tools, sample.messages, sample.label, "seed", sample.round,
                                       sample.parent, {**sample.meta, "source": str(path)}, sample.id))
    return accepted


def run_build_samples(cfg: dict[str, Any], seed: int, dialogues_path: Path, round1_path: Path, pool_path: Path,
                      out_dir: Path, heldout_path: Path | None = None) -> dict[str, Any]:
    dialogues = read_jsonl(dialogues_path)
    ledger = Ledger("build_samples")
    samples = build_samples(dialogues, ledger)
    samples += add_extra_samples(cfg.get("extra_samples") or [], ledger)
    heldout_size = cfg.get("heldout_size", 0) if heldout_path is not None else 0
    heldout, round1, rest = split_seed(samples, cfg["round1_size"], seed, heldout_size)
    bad = [s.id for s in heldout + round1 + rest if check_sample(Sample.from_dict(s.to_dict()))]
    if bad:  # build_samples already filtered: this would be a bug, not bad data
        raise AssertionError(f"{len(bad)} emitted samples fail the rule checks: {bad[:5]}")
    if heldout_path is not None:
        write_jsonl(heldout_path, heldout)
    write_jsonl(round1_path, round1)
    write_jsonl(pool_path, rest)
    kinds: dict[str, int] = {}
    for s in samples:
        key = f"{s.meta.get('need_kind')}/{s.meta.get('step')}"
        kinds[key] = kinds.get(key, 0) + 1
    return _finish(ledger, out_dir / "ledger.jsonl", out_dir / "metrics.json", {
        "dialogues": len(dialogues), "samples": len(samples), "heldout": len(heldout), "round1": len(round1),
        "pool": len(rest),
        "call_samples": sum(1 for s in samples if s.expects_call), "text_samples": sum(1 for s in samples if not s.expects_call),
        "by_kind": dict(sorted(kinds.items()))})
