"""The seed stages as library functions: params and paths in, files and a metrics dict out.

``stages/*.py`` only read ``params.yaml`` and call these; tests call them with temporary paths.
Each function writes its outputs atomically, writes a balanced ledger (every item in = kept +
rejected, checked before writing) and returns the metrics it also writes as JSON.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from looptool.io import read_jsonl, write_json, write_jsonl
from looptool.ledger import Ledger
from looptool.schema import NEED_KINDS, Sample
from looptool.synth.apis import synthesize
from looptool.params import as_config
from looptool.synth.concepts import PHENOMENA, CapabilitiesConfig, CapabilityLibrary
from looptool.synth.dialogue import DialogueFailed, DialogueSimulator, SimulationConfig, simulate_dialogues
from looptool.synth.paraphrase import paraphrase_dialogues
from looptool.synth.program_agents import BoundTool, ProgramAgents
from looptool.synth.program_apis import synthesize_program
from looptool.synth.importer import import_tools
from looptool.synth.samples import build_samples, check_sample, restore_clean_label, split_by_dialogue
from looptool.synth.trees import ConstraintTree, ContextTree, sample_api_spec
from looptool.synth.validate import ContaminationIndex, PoolEntry, admit
from looptool.synth.verify import verify_dialogues

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------ the seed stages' params
@dataclass
class ContaminationConfig:
    """Which benchmarks' functions a generated or imported tool must not resemble."""

    bfcl: bool = field(default=True, metadata={"help": "Drop tools named or shaped like BFCL v3 functions."})
    acebench_dir: str | None = field(default="default", metadata={
        "help": "ACEBench data_en directory; default = ../shared/acebench_data; null = skip ACEBench."})


@dataclass
class SynthApisConfig:
    """params.yaml ``synth_apis``: the API pool from the context x constraint trees."""

    backend: str = field(default="program", metadata={
        "help": "program: one tool per capability, shaped by a constraint-tree path (fast, exact); llm: the generator "
                "writes a tool from a context-tree path (the paper; use with a strong generator)."})
    context_tree: str = field(default="data/trees/context_tree.yaml", metadata={"help": "Context tree (llm backend)."})
    constraint_tree: str = field(default="data/trees/constraint_tree.yaml", metadata={"help": "Constraint tree."})
    requested: int = field(default=8, metadata={
        "help": "llm backend: API specs sampled from the trees (one generator request each)."})
    temperature: float = field(default=0.7, metadata={"help": "Generator temperature (llm backend)."})
    max_tokens: int = field(default=320, metadata={"help": "A reply that hits it is rejected as generator_truncated."})
    parameter_descriptions: str = field(default="templated", metadata={
        "help": "generated: the generator writes every parameter description (best with a strong generator); "
                "templated: written from the spec (e.g. 'e.g. 4 inch'), about half the generated tokens."})
    contamination: ContaminationConfig = field(default_factory=ContaminationConfig, metadata={
        "help": "Benchmark contamination filter."})

    def __post_init__(self) -> None:
        if self.backend not in ("program", "llm"):
            raise ValueError(f"synth_apis.backend must be program or llm, got {self.backend!r}")
        if self.parameter_descriptions not in ("generated", "templated"):
            raise ValueError(f"synth_apis.parameter_descriptions must be generated or templated, "
                             f"got {self.parameter_descriptions!r}")


@dataclass
class ImportToolsConfig:
    """params.yaml ``import_tools``: user tool documents added to the API pool."""

    files: list[str] = field(default_factory=list, metadata={
        "help": "JSON/YAML tool lists (OpenAI / ToolBench style) or OpenAPI 3 documents; empty = nothing to import."})
    contamination: ContaminationConfig = field(default_factory=ContaminationConfig, metadata={
        "help": "Benchmark contamination filter."})


@dataclass
class VerifySeedConfig:
    """params.yaml ``verify_seed``: rules, then the LLM judge, on every simulated dialogue."""

    judge: bool = field(default=True, metadata={"help": "false = rules only."})
    judge_sample: int | None = field(default=8, metadata={
        "help": "Dialogues sent to the judge (a seeded sample; the others pass on the rules, recorded as "
                "judge=not_sampled); null = all. The embedded judge takes ~5 s per dialogue here."})
    judge_max_tokens: int = field(default=120, metadata={"help": "Generation limit of one verdict."})
    judge_min_yes: int = field(default=1, metadata={
        "help": "Of the judge's 3 yes/no checks, how many must be yes. Use 3 with a real judge; the embedded SmolLM2 "
                "answered 'yes, no, no' to every rule-clean dialogue whatever its content (measured)."})


@dataclass
class BuildSamplesConfig:
    """params.yaml ``build_samples``: per-step samples, split by dialogue."""

    heldout_size: int | float = field(default=120, metadata={
        "help": "heldout_seen: a count (int) or share (float) of the training-capability samples, whole dialogues."})
    round1_size: int | float = field(default=24, metadata={
        "help": "The round-1 slice (SFT and GRPO round 1): count or share of the rest; the remainder is the pool."})
    extra_samples: list[str] = field(default_factory=list, metadata={
        "help": "JSONL files of Samples you already have, added after the same rule checks."})


@contextlib.contextmanager
def llm_client(llm_section: Any) -> Iterator[Any]:
    """The generator/judge client for a params ``llm`` section (starts the embedded server if asked)."""
    from looptool.llm.server import open_llm  # imported late: rule-only paths need no server code

    with open_llm(llm_section) as client:
        yield client


def library_from_config(cfg: CapabilitiesConfig) -> CapabilityLibrary:
    """The capability library named by the params section ``capabilities``."""
    return CapabilityLibrary.load(cfg.concepts, cfg.dir)


def contamination_index(cfg: ContaminationConfig) -> ContaminationIndex:
    """The index of benchmark functions a tool must not resemble."""
    ace = cfg.acebench_dir
    if ace == "default":
        from looptool.eval.acebench import default_data_dir

        ace = default_data_dir()
    if ace is not None and not Path(ace).is_dir():
        logger.warning("ACEBench data not found at %s: the contamination filter covers BFCL only", ace)
        ace = None
    return ContaminationIndex.from_benchmarks(bfcl=cfg.bfcl, acebench_dir=ace)


def _finish(ledger: Ledger, ledger_path: Path, metrics_path: Path, extra: dict[str, Any]) -> dict[str, Any]:
    ledger.write(ledger_path)
    metrics = {**ledger.summary(), **extra}
    write_json(metrics_path, metrics)
    return metrics


def _usage(client: Any) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in client.usage.as_dict().items()}


# ------------------------------------------------------------------------------------ synth_apis
def run_synth_apis(cfg: SynthApisConfig | dict[str, Any], llm_section: Any, seed: int, out_dir: Path,
                   client: Any | None = None, library: CapabilityLibrary | None = None) -> dict[str, Any]:
    """Sample ``cfg.requested`` specs from the trees, generate, validate; writes apis.jsonl + ledger + metrics."""
    cfg = as_config(SynthApisConfig, cfg, "synth_apis")
    started = time.monotonic()
    constraints = ConstraintTree.load(cfg.constraint_tree)
    contamination = contamination_index(cfg.contamination)
    ledger = Ledger("synth_apis")
    if cfg.backend == "program":
        if library is None:
            raise ValueError("synth_apis.backend: program needs the capability library (params section capabilities)")
        pool = synthesize_program(library, constraints, seed, ledger, contamination)
        write_jsonl(out_dir / "apis.jsonl", pool)
        return _finish(ledger, out_dir / "ledger.jsonl", out_dir / "metrics.json", {
            "backend": "program", "requested": len(library.capabilities), "valid_apis": len(pool),
            "capabilities": len(library.capabilities), "domains": len(library.domains),
            "concepts": len(library.concepts), "wall_s": round(time.monotonic() - started, 1)})
    context = ContextTree.load(cfg.context_tree)
    specs = [sample_api_spec(context, constraints, seed, i) for i in range(cfg.requested)]
    with contextlib.ExitStack() as stack:
        client = client or stack.enter_context(llm_client(llm_section))
        pool = synthesize(client, specs, seed=seed, max_tokens=cfg.max_tokens, temperature=cfg.temperature,
                          contamination=contamination, ledger=ledger,
                          describe_parameters=cfg.parameter_descriptions == "generated")
        usage = _usage(client)
    write_jsonl(out_dir / "apis.jsonl", pool)
    return _finish(ledger, out_dir / "ledger.jsonl", out_dir / "metrics.json", {
        "backend": "llm", "requested": len(specs), "valid_apis": len(pool), "context_leaves": len(context.leaves()),
        "domains": len(context.domains), "llm": usage, "wall_s": round(time.monotonic() - started, 1)})


# ---------------------------------------------------------------------------------- import_tools
def run_import_tools(cfg: ImportToolsConfig | dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Validate the configured import files; with none configured, an empty pool and a ledger saying so."""
    cfg = as_config(ImportToolsConfig, cfg, "import_tools")
    files = [Path(f) for f in cfg.files]
    ledger = Ledger("import_tools")
    contamination = contamination_index(cfg.contamination) if files else None
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


def run_simulate(cfg: SimulationConfig | dict[str, Any], llm_section: Any, seed: int, pool_paths: list[Path],
                 out_dir: Path, client: Any | None = None, library: CapabilityLibrary | None = None) -> dict[str, Any]:
    started = time.monotonic()
    sim_cfg = as_config(SimulationConfig, cfg, "simulate")
    pool_ledger = Ledger("api_pool")
    pool = merge_pools([read_jsonl(p, PoolEntry.from_dict) for p in pool_paths], pool_ledger)
    pool_ledger.write(out_dir / "pool_ledger.jsonl")
    ledger = Ledger("simulate")
    para_ledger = Ledger("paraphrase")  # one record per reworded user turn (none without rewording)
    para_ledger.expect(0)
    extra: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if sim_cfg.agents["planner"] == "program":
            if library is None:
                raise ValueError("simulate.agents.planner: program needs the capability library (params section capabilities)")
            needs_llm = any(sim_cfg.agents[k] == "llm" for k in ("user", "assistant", "tool")) or \
                float(sim_cfg.paraphrase.get("rate", 0)) > 0
            if needs_llm and client is None:
                client = stack.enter_context(llm_client(llm_section))
            dialogues, extra = simulate_program(library, pool, sim_cfg, seed, ledger, client, para_ledger)
        else:
            client = client or stack.enter_context(llm_client(llm_section))
            dialogues = simulate_dialogues(client, pool, sim_cfg, seed, ledger)
        usage = _usage(client) if client is not None else {}
    write_jsonl(out_dir / "dialogues.jsonl", dialogues)
    para_ledger.write(out_dir / "paraphrase_ledger.jsonl")
    wall = time.monotonic() - started
    return _finish(ledger, out_dir / "ledger.jsonl", out_dir / "metrics.json", {
        **extra, "agents": sim_cfg.agents,
        "pool_tools": len(pool), "pool": pool_ledger.summary(), "dialogues": len(dialogues),
        "messages": sum(len(d["messages"]) for d in dialogues),
        "needs_done": sum(len(d["needs_done"]) for d in dialogues),
        "llm": usage, "wall_s": round(wall, 1),
        "dialogues_per_minute": round(len(dialogues) / wall * 60, 3) if wall else 0.0})


def split_capabilities(tools: list[BoundTool], share: float, seed: int) -> tuple[list[BoundTool], list[BoundTool]]:
    """(seen, unseen) tools: a seeded ``share`` of each domain's capabilities is held out entirely."""
    by_domain: dict[str, list[BoundTool]] = {}
    for t in sorted(tools, key=lambda t: t.capability):
        by_domain.setdefault(t.meta.get("domain", ""), []).append(t)
    unseen: set[str] = set()
    for domain, members in sorted(by_domain.items()):
        rng = random.Random(f"unseen-capabilities:{seed}:{domain}")
        n = round(share * len(members)) if share > 0 else 0
        unseen |= {t.capability for t in rng.sample(members, min(len(members), max(n, 1 if share > 0 else 0)))}
    return [t for t in tools if t.capability not in unseen], [t for t in tools if t.capability in unseen]


def simulate_program(library: CapabilityLibrary, pool: list[PoolEntry], cfg: SimulationConfig, seed: int,
                     ledger: Ledger, client: Any | None = None, para_ledger: Ledger | None = None,
                     ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Program planner (and whichever agents are programs): seen dialogues, then unseen-capability ones."""
    from tqdm.auto import tqdm

    llm = DialogueSimulator(client, pool, cfg, seed) if client is not None else None
    agents = ProgramAgents(library, cfg, seed, llm)
    bound = agents.bind_pool(pool)
    seen, unseen = split_capabilities(bound, cfg.unseen_share, seed)
    kinds = [k for k in NEED_KINDS if cfg.need_kind_weights.get(k, 0) > 0]
    jobs = [(i, seen, "seen", None) for i in range(cfg.dialogues)]
    if cfg.unseen_dialogues and not unseen:
        raise ValueError("simulate.unseen_dialogues > 0 but no capability is held out (simulate.unseen_share)")
    jobs += [(i, unseen, "unseen", kinds[i % len(kinds)]) for i in range(cfg.unseen_dialogues)]
    ledger.expect(len(jobs))
    dialogues = []
    for i, tools, split, kind in tqdm(jobs, desc="simulate (program agents)", unit="dlg", dynamic_ncols=True):
        dialogue_id = f"{'unseen' if split == 'unseen' else 'dlg'}-{i:05d}"
        if len(tools) < cfg.tools_per_dialogue[0]:
            ledger.reject(dialogue_id, "pool_too_small", detail=f"{len(tools)} {split} tools")
            continue
        try:
            dialogue = agents.simulate(i, tools, split, kind)
        except DialogueFailed as err:
            ledger.reject(dialogue_id, err.reason, detail=err.detail)
            continue
        ledger.keep(dialogue["id"], split=split, messages=len(dialogue["messages"]))
        dialogues.append(dialogue)
    extra: dict[str, Any] = {"seen_capabilities": len(seen), "unseen_capabilities": len(unseen),
                             "unbound_tools": len(pool) - len(bound),
                             "unseen_capability_ids": sorted(t.capability for t in unseen)}
    if len(pool) > len(bound):
        logger.warning("%d pool tools have no program bindings (imported or LLM-made): the program planner "
                       "does not use them", len(pool) - len(bound))
    rate = float(cfg.paraphrase.get("rate", 0))
    if rate > 0:
        para_ledger = para_ledger if para_ledger is not None else Ledger("paraphrase")
        extra["paraphrase"] = paraphrase_dialogues(client, dialogues, rate, seed, int(cfg.paraphrase["max_tokens"]),
                                                   float(cfg.paraphrase["temperature"]), para_ledger)
        extra["paraphrase"]["rejected_by_reason"] = para_ledger.rejection_reasons()
    return dialogues, extra


# ----------------------------------------------------------------------------------- verify_seed
def run_verify(cfg: VerifySeedConfig | dict[str, Any], llm_section: Any, seed: int, dialogues_path: Path,
               out_dir: Path, client: Any | None = None) -> dict[str, Any]:
    cfg = as_config(VerifySeedConfig, cfg, "verify_seed")
    started = time.monotonic()
    dialogues = read_jsonl(dialogues_path)
    ledger = Ledger("verify_seed")
    use_judge = cfg.judge
    with contextlib.ExitStack() as stack:
        if use_judge and client is None and dialogues:
            client = stack.enter_context(llm_client(llm_section))
        verified = verify_dialogues(dialogues, client=client, seed=seed, judge_max_tokens=cfg.judge_max_tokens,
                                    ledger=ledger, use_judge=use_judge, judge_min_yes=cfg.judge_min_yes,
                                    judge_sample=cfg.judge_sample)
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


def run_build_samples(cfg: BuildSamplesConfig | dict[str, Any], seed: int, dialogues_path: Path, round1_path: Path, pool_path: Path,
                      out_dir: Path, heldout_path: Path | None = None,
                      heldout_unseen_path: Path | None = None) -> dict[str, Any]:
    """Per-step samples -> held-out sets, the round-1 slice and the pool, split by dialogue.

    ``heldout_path`` receives the held-out samples of training tools (``heldout_seen``) and
    ``heldout_unseen_path`` those of the held-out capabilities; both are never trained on.
    """
    cfg = as_config(BuildSamplesConfig, cfg, "build_samples")
    dialogues = read_jsonl(dialogues_path)
    ledger = Ledger("build_samples")
    samples = build_samples(dialogues, ledger)
    samples += add_extra_samples(cfg.extra_samples, ledger)
    heldout_size = cfg.heldout_size if heldout_path is not None else 0
    unseen, heldout, round1, rest = split_by_dialogue(samples, seed, heldout_size, cfg.round1_size)
    if unseen and heldout_unseen_path is None:
        raise ValueError("samples of held-out capabilities need a heldout_unseen path")
    unseen, heldout = [restore_clean_label(s) for s in unseen], [restore_clean_label(s) for s in heldout]
    bad = [s.id for s in unseen + heldout + round1 + rest if check_sample(Sample.from_dict(s.to_dict()))]
    if bad:  # build_samples already filtered: this would be a bug, not bad data
        raise AssertionError(f"{len(bad)} emitted samples fail the rule checks: {bad[:5]}")
    if heldout_unseen_path is not None:
        write_jsonl(heldout_unseen_path, unseen)
    if heldout_path is not None:
        write_jsonl(heldout_path, heldout)
    write_jsonl(round1_path, round1)
    write_jsonl(pool_path, rest)
    return _finish(ledger, out_dir / "ledger.jsonl", out_dir / "metrics.json", {
        "dialogues": len(dialogues), "samples": len(samples), "heldout_unseen": len(unseen), "heldout": len(heldout),
        "round1": len(round1), "pool": len(rest),
        "heldout_labels_restored": sum("label_restored" in s.meta for s in unseen + heldout),
        **sample_composition(samples)})


def sample_composition(samples: list[Sample]) -> dict[str, Any]:
    """Counts the acceptance of issue #13 reads: need kinds, value phenomena, tools, noise."""
    n = len(samples) or 1
    kinds: dict[str, int] = {}
    steps: dict[str, int] = {}
    phenomena = {p: 0 for p in PHENOMENA}
    noise: dict[str, int] = {}
    for s in samples:
        kind = str(s.meta.get("need_kind"))
        kinds[kind] = kinds.get(kind, 0) + 1
        key = f"{kind}/{s.meta.get('step')}"
        steps[key] = steps.get(key, 0) + 1
        for p in set(s.meta.get("phenomena") or []):
            phenomena[p] = phenomena.get(p, 0) + 1
        if s.meta.get("noise"):
            noise[s.meta["noise"]] = noise.get(s.meta["noise"], 0) + 1
    return {
        "call_samples": sum(1 for s in samples if s.expects_call),
        "text_samples": sum(1 for s in samples if not s.expects_call),
        "distinct_tools": len({t.name for s in samples for t in s.tools}),
        "need_kinds": dict(sorted(kinds.items())),
        "need_kind_share": {k: round(v / n, 3) for k, v in sorted(kinds.items())},
        "by_kind": dict(sorted(steps.items())),
        "phenomena": phenomena,
        "noisy_labels": sum(noise.values()), "noise_by_type": dict(sorted(noise.items())),
    }
