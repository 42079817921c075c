"""The experiment report: final score table, per-round loop numbers and PNG plots (issue #8).

Everything here works on plain dicts read from the JSON files other stages write, so tests can
feed literal data. A missing or unreadable file never raises: its series is left out and the
path is listed in ``ReportInputs.missing`` so the report can say what it could not show.

Layout read (DESIGN.md §6): ``eval/<arm>/<round>/{metrics,train,train_curve}.json`` for the base
model (``base/r0``) and both arms per configured round, ``eval/sft/train.json``,
``data/rounds/<round>/{metrics,probe/metrics,judge/metrics,expand/metrics}.json``, the judge's
ledger ``data/rounds/<round>/judge/ledger.jsonl`` (who decided each verdict), the round-1 seed
slice ``data/seed/round1.jsonl`` and the held-out sets ``data/seed/heldout_{unseen,seen}.jsonl``
(need kind and value phenomena of each held-out item).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from looptool.eval.stats import paired_comparison, wilson_interval
from looptool.io import atomic_open
from looptool.schema import NEED_KINDS

BASE_RUN = ("base", "r0")
SFT_RUN = ("sft", "r0")  # the warm-up model every arm's round 1 starts from
TRAINED_ARMS = ("iterative", "static")
# Origins of a round's samples, bottom to top in the composition plot (DESIGN.md §3).
ORIGINS = ("seed", "hppl", "error_seed", "corrected", "edde", "fresh")
MISSING = "–"
# Held-out sets whose items are seed samples (outcome ids = sample ids), pooled by phenomenon.
HELDOUT_SETS = ("heldout_unseen", "heldout_seen")
# Buckets as looptool.loop.probe names them (need_kind_of / phenomena_of; not imported, since the
# probe module would bring the policy engine into this stage's dependencies): the meta does not say,
# or says the answer holds no value to copy.
UNKNOWN_BUCKET = "unknown"
NO_PHENOMENON = "none"
# Who decided a JGLV verdict (ledger info ``decided_by``): the seed set's rules, the LLM judge, or
# nobody (ablation.jglv=false: every mismatch kept as PRED_WRONG).
DECIDERS = ("rule", "judge", "ablation")

# Headline columns per benchmark, in the paper's order; categories follow them.
SUMMARY_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "bfcl-v3": (("overall", "Overall"), ("non_live", "Non-Live"), ("live", "Live"), ("multi_turn", "Multi-Turn")),
    "acebench": (("overall", "Overall"), ("normal", "Normal"), ("special", "Special")),
    "heldout": (("overall", "exact match"),),
    "heldout_unseen": (("overall", "exact match"),),
    "heldout_seen": (("overall", "exact match"),),
}
# Headline columns shown only where some run reports them (metrics files written before they existed
# do not): BFCL's parts with irrelevance scored strictly, and ACEBench under our clean rules, beside
# the official numbers.
OPTIONAL_SUMMARY_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "bfcl-v3": (("overall_strict", "Overall (strict irrelevance)"), ("non_live_strict", "Non-Live (strict irrelevance)"),
                ("live_strict", "Live (strict irrelevance)")),
    "acebench": (("overall_clean", "Overall (clean rules)"), ("normal_clean", "Normal (clean rules)"),
                 ("special_clean", "Special (clean rules)")),
}
# Per-category numbers beside ``accuracy`` that get their own column, placed right after it.
CATEGORY_EXTRA_METRICS = (("strict_accuracy", "strict"), ("accuracy_clean", "clean"))
BENCHMARK_LABELS = {"bfcl-v3": "BFCL", "acebench": "ACE", "heldout": "Held-out", "heldout_unseen": "Held-out unseen tools",
                    "heldout_seen": "Held-out seen tools"}
BENCHMARK_KEYS = {"bfcl-v3": "bfcl", "acebench": "acebench", "heldout": "heldout", "heldout_unseen": "heldout_unseen",
                  "heldout_seen": "heldout_seen"}


# ------------------------------------------------------------------------------------------
# Collecting the inputs


@dataclass
class ReportInputs:
    """Everything the report shows; ``None`` marks a file that was missing or unreadable."""

    rounds: list[str]
    evals: dict[tuple[str, str], dict | None] = field(default_factory=dict)
    train_summaries: dict[tuple[str, str], dict | None] = field(default_factory=dict)
    train_curves: dict[tuple[str, str], list | None] = field(default_factory=dict)
    sft_summary: dict | None = None
    # (label, composition or None, where it came from), in training order.
    compositions: list[tuple[str, dict | None, str]] = field(default_factory=list)
    # round -> {"probe": dict|None, "judge": ..., "expand": ...}
    loop_stages: dict[str, dict[str, dict | None]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    # Static rounds read from the iterative arm (the same computation, run once).
    shared_static: list[str] = field(default_factory=list)
    # (arm, round) -> {benchmark: {category: {item id: 0/1}}} (eval/<arm>/<round>/outcomes.json)
    outcomes: dict[tuple[str, str], dict | None] = field(default_factory=dict)
    # round -> {decider: verdicts} from the judge's ledger; None where it could not be read.
    decided_by: dict[str, dict[str, int] | None] = field(default_factory=dict)
    # held-out set -> {sample id: meta}; a set whose file could not be read is absent.
    heldout_meta: dict[str, dict[str, dict]] = field(default_factory=dict)


def eval_runs(rounds: Sequence[str]) -> list[tuple[str, str]]:
    """(arm, round) of every evaluation the report expects: base, SFT, then each arm over the rounds."""
    return [BASE_RUN, SFT_RUN] + [(arm, r) for arm in TRAINED_ARMS for r in rounds]


def run_label(arm: str, round_key: str) -> str:
    return arm if (arm, round_key) in (BASE_RUN, SFT_RUN) else f"{arm} {round_key}"


def previous_round(rounds: Sequence[str], round_key: str, params_rounds: Mapping | None = None) -> str | None:
    """The round whose assembled data this round trains on; None = the round-1 seed slice.

    params may name it (``{prev: r1}``, DESIGN.md §6); otherwise the previous key in order.
    """
    spec = (params_rounds or {}).get(round_key)
    prev = spec.get("prev") if isinstance(spec, Mapping) else getattr(spec, "prev", None)
    if prev is not None:
        return str(prev) if prev in rounds else None
    index = list(rounds).index(round_key)
    return rounds[index - 1] if index > 0 else None


class _Reader:
    """Reads JSON under a root and remembers which paths it could not use."""

    _UNREAD = object()  # not None: a file may hold JSON null

    def __init__(self, root: Path):
        self.root = root
        self.missing: list[str] = []

    def _parsed(self, relative: str, parse: Any) -> Any:
        try:
            return parse((self.root / relative).read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.missing.append(f"{relative} (not found)")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            self.missing.append(f"{relative} (unreadable: {type(err).__name__})")
        return self._UNREAD

    def json(self, relative: str, expect: type) -> Any:
        value = self._parsed(relative, json.loads)
        if value is self._UNREAD:
            return None
        if not isinstance(value, expect):
            self.missing.append(f"{relative} (expected a JSON {expect.__name__})")
            return None
        return value

    def jsonl(self, relative: str) -> list[dict] | None:
        """The JSON objects of a JSONL file, or None (and the path noted) if any line is not one."""
        rows = self._parsed(relative, lambda text: [json.loads(line) for line in text.splitlines() if line.strip()])
        if rows is self._UNREAD:
            return None
        if not all(isinstance(row, dict) for row in rows):
            self.missing.append(f"{relative} (expected one JSON object a line)")
            return None
        return rows

    def line_count(self, relative: str) -> int | None:
        try:
            with (self.root / relative).open("r", encoding="utf-8") as handle:
                return sum(1 for line in handle if line.strip())
        except OSError:
            self.missing.append(f"{relative} (not found)")
            return None


def shared_static_rounds(rounds: Sequence[str], static_rounds: Iterable[str] | None) -> list[str]:
    """Rounds the static arm does not train itself because its run would repeat the iterative
    arm's (round 1: same start model, same seed slice): ``rounds`` minus ``static_rounds``.
    ``None`` (no ``static_rounds`` in params) means the static arm trains every round."""
    if static_rounds is None:
        return []
    own = {str(r) for r in static_rounds}
    return [r for r in rounds if r not in own]


def collect_inputs(root: str | Path, rounds: Sequence[str], params_rounds: Mapping | None = None,
                   static_rounds: Iterable[str] | None = None, evolve_rounds: Iterable[str] | None = None) -> ReportInputs:
    """Read every file the report uses under ``root``; never raises for a missing file.

    A static round listed by :func:`shared_static_rounds` is read from the iterative arm's files.
    ``evolve_rounds`` (params ``evolve``): the rounds that build next-round data; the loop files of
    other rounds (by default the last) are not expected, so their absence is not reported.
    """
    reader = _Reader(Path(root))
    rounds = list(rounds)
    inputs = ReportInputs(rounds=rounds, shared_static=shared_static_rounds(rounds, static_rounds))
    for arm, r in eval_runs(rounds):
        source = "iterative" if arm == "static" and r in inputs.shared_static else arm
        inputs.evals[(arm, r)] = reader.json(f"eval/{source}/{r}/metrics.json", dict)
        inputs.outcomes[(arm, r)] = reader.json(f"eval/{source}/{r}/outcomes.json", dict)
        if arm in TRAINED_ARMS:
            inputs.train_summaries[(arm, r)] = reader.json(f"eval/{source}/{r}/train.json", dict)
            inputs.train_curves[(arm, r)] = reader.json(f"eval/{source}/{r}/train_curve.json", list)
    inputs.sft_summary = reader.json("eval/sft/train.json", dict)

    assembled: dict[str, dict | None] = {}
    evolving = set(rounds if evolve_rounds is None else (str(r) for r in evolve_rounds))
    for r in rounds:
        if r not in evolving:
            assembled[r], inputs.loop_stages[r] = None, {stage: None for stage in ("probe", "judge", "expand")}
            continue
        metrics = reader.json(f"data/rounds/{r}/metrics.json", dict)
        composition = (metrics or {}).get("composition")
        assembled[r] = composition if isinstance(composition, dict) else None
        inputs.loop_stages[r] = {stage: reader.json(f"data/rounds/{r}/{stage}/metrics.json", dict)
                                 for stage in ("probe", "judge", "expand")}
        if inputs.loop_stages[r]["judge"] is not None:  # no judge stage output: already noted missing
            records = reader.jsonl(f"data/rounds/{r}/judge/ledger.jsonl")
            inputs.decided_by[r] = None if records is None else decided_by_counts(records)
    for r in rounds:
        prev = previous_round(rounds, r, params_rounds)
        if prev is None:
            count = reader.line_count("data/seed/round1.jsonl")
            composition = None if count is None else {"seed": count, "total": count}
            inputs.compositions.append((r, composition, "seed slice data/seed/round1.jsonl"))
        else:
            inputs.compositions.append((r, assembled.get(prev), f"assembled at {prev}"))
    if rounds and assembled.get(rounds[-1]) is not None:
        # The last round also assembles data that no configured round trains on; still worth seeing.
        inputs.compositions.append((f"after {rounds[-1]}", assembled[rounds[-1]], f"assembled at {rounds[-1]}, not trained on"))
    for name in HELDOUT_SETS:
        rows = reader.jsonl(f"data/seed/{name}.jsonl")
        if rows is not None:
            inputs.heldout_meta[name] = {str(row.get("id")): row.get("meta") if isinstance(row.get("meta"), dict) else {}
                                         for row in rows}
    inputs.missing = reader.missing
    return inputs


def decided_by_counts(ledger_records: Iterable[dict]) -> dict[str, int]:
    """Verdicts per decider (rule | judge | ablation) over a judge ledger's item records."""
    counts = {decider: 0 for decider in DECIDERS}
    for record in ledger_records:
        if record.get("fate") in ("kept", "rejected"):
            decider = str(_get(record, "info", "decided_by") or UNKNOWN_BUCKET)
            counts[decider] = counts.get(decider, 0) + 1
    return counts


# ------------------------------------------------------------------------------------------
# The summary table


@dataclass(frozen=True)
class Column:
    benchmark: str
    key: str          # summary key, or category name
    label: str
    is_category: bool
    metric: str = "accuracy"  # which of a category's numbers the column shows

    @property
    def field_name(self) -> str:
        """Flat name used in summary.json, e.g. ``bfcl_overall``, ``acebench_normal_atom_bool``,
        ``bfcl_irrelevance_strict`` (a category's ``strict_accuracy``)."""
        prefix = BENCHMARK_KEYS.get(self.benchmark, re.sub(r"\W+", "_", self.benchmark).strip("_").lower())
        suffix = "" if self.metric == "accuracy" else "_" + self.metric.removesuffix("_accuracy")
        return f"{prefix}_{self.key}{suffix}"


@dataclass
class SummaryTable:
    columns: list[Column]
    # (arm, round) -> values aligned with columns (fractions or None); None = no metrics file.
    rows: dict[tuple[str, str], list[float | None] | None]

    def value(self, arm: str, round_key: str, field_name: str) -> float | None:
        values = self.rows.get((arm, round_key))
        if values is None:
            return None
        for column, value in zip(self.columns, values):
            if column.field_name == field_name:
                return value
        return None


def table_columns(evals: Mapping[tuple[str, str], dict | None]) -> list[Column]:
    """Headline columns of each benchmark, then every category any run evaluated (first-seen order)."""
    benchmarks: list[str] = []
    for metrics in evals.values():
        for name in metrics or {}:
            if name not in benchmarks and isinstance(metrics[name], dict):
                benchmarks.append(name)
    known = [b for b in SUMMARY_COLUMNS if b in benchmarks]
    benchmarks = known + [b for b in benchmarks if b not in SUMMARY_COLUMNS]
    columns: list[Column] = []
    for bench in benchmarks:
        short = BENCHMARK_LABELS.get(bench, bench)
        blocks = [(metrics or {}).get(bench) or {} for metrics in evals.values()]
        for key, label in SUMMARY_COLUMNS.get(bench, (("overall", "Overall"),)):
            columns.append(Column(bench, key, f"{short} {label}", False))
        for key, label in OPTIONAL_SUMMARY_COLUMNS.get(bench, ()):
            if any(key in (block.get("summary") or {}) for block in blocks):
                columns.append(Column(bench, key, f"{short} {label}", False))
        seen: list[str] = []
        for block in blocks:
            seen += [c for c in block.get("categories") or {} if c not in seen]
        for c in seen:
            columns.append(Column(bench, c, f"{short} {c}", True))
            for metric, label in CATEGORY_EXTRA_METRICS:
                if any(metric in ((block.get("categories") or {}).get(c) or {}) for block in blocks):
                    columns.append(Column(bench, c, f"{short} {c} ({label})", True, metric))
    return columns


def _cell(metrics: dict, column: Column) -> float | None:
    bench = metrics.get(column.benchmark)
    if not isinstance(bench, dict):
        return None
    if column.is_category:
        value = ((bench.get("categories") or {}).get(column.key) or {}).get(column.metric)
    else:
        value = (bench.get("summary") or {}).get(column.key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def build_summary_table(evals: Mapping[tuple[str, str], dict | None], runs: Sequence[tuple[str, str]]) -> SummaryTable:
    columns = table_columns({run: evals.get(run) for run in runs})
    rows = {run: (None if evals.get(run) is None else [_cell(evals[run], c) for c in columns]) for run in runs}
    return SummaryTable(columns=columns, rows=rows)


def percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal; the dash marks a missing value."""
    return MISSING if value is None else f"{100 * value:.1f}"


def table_markdown(table: SummaryTable) -> str:
    header = ["run"] + [c.label for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * len(table.columns)]
    for (arm, r), values in table.rows.items():
        cells = [MISSING] * len(table.columns) if values is None else [percent(v) for v in values]
        lines.append("| " + " | ".join([run_label(arm, r)] + cells) + " |")
    return "\n".join(lines)


def table_text(table: SummaryTable) -> str:
    """Plain text for the terminal, one line per column and one column per run.

    Transposed on purpose: with every category there are dozens of score columns but only
    1 + 2 x rounds runs, so this orientation stays within a terminal's width.
    """
    runs = list(table.rows)
    header = ["score (%)"] + [run_label(*run) for run in runs]
    body = []
    for index, column in enumerate(table.columns):
        row = [column.label]
        for run in runs:
            values = table.rows[run]
            row.append(MISSING if values is None else percent(values[index]))
        body.append(row)
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]

    def render(line: list[str]) -> str:
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))

    return "\n".join([render(header), "  ".join("-" * w for w in widths)] + [render(line) for line in body])


def summary_rows(table: SummaryTable, rounds: Sequence[str]) -> list[dict]:
    """Flat rows for eval/summary.json: one per (arm, round), fractions, None where missing."""
    order = {r: i + 1 for i, r in enumerate(rounds)}
    rows = []
    for (arm, r), values in table.rows.items():
        row: dict[str, Any] = {"arm": arm, "round": r, "round_index": order.get(r, 0), "evaluated": values is not None}
        for index, column in enumerate(table.columns):
            row[column.field_name] = None if values is None else values[index]
        rows.append(row)
    return rows


def headline_fields(table: SummaryTable) -> list[str]:
    return [c.field_name for c in table.columns if not c.is_category]


def score_intervals(evals: Mapping[tuple[str, str], dict | None]) -> dict[tuple[str, str], dict[str, dict]]:
    """Per run, per score field: value, n and the 95% Wilson interval.

    A category's n is its item count (entries, or ACEBench conversations). A benchmark summary
    (``*_overall``...) gets the n of all items scored and the Wilson interval of its value at that n:
    exact for a plain proportion, an approximation for summaries that average categories (BFCL's
    Overall, the held-out means over need kinds).
    """
    out: dict[tuple[str, str], dict[str, dict]] = {}
    for run, metrics in evals.items():
        if not metrics:
            continue
        fields: dict[str, dict] = {}
        for bench, block in metrics.items():
            if not isinstance(block, dict):
                continue
            categories = {c: s for c, s in (block.get("categories") or {}).items() if isinstance(s, dict)}
            pooled_n = sum(int(s.get("total", 0)) for s in categories.values())
            for name, score in categories.items():
                column = Column(bench, name, name, True)
                correct, total = int(score.get("correct", 0)), int(score.get("total", 0))
                fields[column.field_name] = _interval(score.get("accuracy"), correct, total)
            for key, value in (block.get("summary") or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    fields[Column(bench, key, key, False).field_name] = _interval(
                        value, round(min(max(float(value), 0.0), 1.0) * pooled_n), pooled_n)
        out[run] = fields
    return out


def _interval(value: Any, correct: int, total: int) -> dict:
    low, high = wilson_interval(min(correct, total), total)
    return {"value": value, "n": total, "ci_low": round(low, 4), "ci_high": round(high, 4)}


def scores_metrics(table: SummaryTable, intervals: Mapping[tuple[str, str], dict[str, dict]] | None = None) -> dict:
    """Nested scores ``{arm: {round: {field: value, field_n, field_ci_low, field_ci_high}}}`` for
    `dvc metrics show` / `dvc exp show` (DVC flattens nested dicts into columns but does not display
    a top-level list). Headline fields, and with ``intervals`` every category accuracy too."""
    fields = set(headline_fields(table)) | {c.field_name for c in table.columns if c.is_category and c.metric == "accuracy"}
    nested: dict[str, dict] = {}
    for row in summary_rows(table, []):
        if not row["evaluated"]:
            continue
        run = (row["arm"], row["round"])
        scores: dict[str, Any] = {}
        for k, v in row.items():
            if k not in fields or v is None:
                continue
            scores[k] = v
            found = (intervals or {}).get(run, {}).get(k)
            if found is not None:
                scores.update({f"{k}_n": found["n"], f"{k}_ci_low": found["ci_low"], f"{k}_ci_high": found["ci_high"]})
        nested.setdefault(row["arm"], {})[row["round"]] = scores
    return nested


# Benchmarks on which the arms are compared item by item.
PAIRED_BENCHMARKS = ("heldout_unseen", "heldout_seen", "bfcl-v3")


def paired_tests(inputs: ReportInputs) -> dict[str, dict[str, dict]]:
    """Iterative vs static per round, on the items both were scored on (all categories pooled):
    ``{round: {benchmark: PairedComparison.to_dict() + {"same_model": bool}}}``. A round the static
    arm shares with the iterative one is the same model (difference 0, p = 1 by construction)."""
    out: dict[str, dict[str, dict]] = {}
    for r in inputs.rounds:
        iterative, static = inputs.outcomes.get(("iterative", r)), inputs.outcomes.get(("static", r))
        if not iterative or not static:
            continue
        for bench in PAIRED_BENCHMARKS:
            a, b = _pooled(iterative.get(bench)), _pooled(static.get(bench))
            if a and b:
                result = paired_comparison(a, b).to_dict()
                out.setdefault(r, {})[BENCHMARK_KEYS.get(bench, bench)] = {**result, "same_model": r in inputs.shared_static}
    return out


def _pooled(block: Any) -> dict[str, bool]:
    if not isinstance(block, dict):
        return {}
    return {f"{c}/{i}": bool(ok) for c, items in block.items() if isinstance(items, dict) for i, ok in items.items()}


def paired_section(paired: Mapping[str, Mapping[str, dict]]) -> str:
    if not paired:
        return "No round has per-item outcomes of both arms (eval/<arm>/<round>/outcomes.json)."
    rows = []
    for r, benches in paired.items():
        for bench, p in benches.items():
            note = "same model (shared round)" if p.get("same_model") else ""
            rows.append([r, bench, p["n"], percent(p["a_correct"] / p["n"]) if p["n"] else MISSING,
                         percent(p["b_correct"] / p["n"]) if p["n"] else MISSING,
                         f"{100 * p['difference']:+.1f}", p["a_only"], p["b_only"], f"{p['p_value']:.3g}", note])
    return _markdown_table(["round", "benchmark", "n", "iterative %", "static %", "difference (pp)",
                            "iterative only", "static only", "exact McNemar p", ""], rows)


# ------------------------------------------------------------------------------------------
# Held-out accuracy by value phenomenon and need kind

Ratio = tuple[int, int]  # (correct or mastered, items)
BucketsOf = Callable[[Mapping], list[str]]  # an item's meta -> the buckets it counts under


def need_kind_buckets(meta: Mapping) -> list[str]:
    """An item's need kind (``meta.need_kind``) as its one bucket; ``unknown`` when absent."""
    kind = meta.get("need_kind")
    return [str(kind)] if isinstance(kind, str) and kind else [UNKNOWN_BUCKET]


def phenomenon_buckets(meta: Mapping) -> list[str]:
    """The value phenomena an item exercises, each once (it counts under every one); ``none`` for an
    empty list, ``unknown`` when the meta has none."""
    found = meta.get("phenomena")
    if not isinstance(found, list):
        return [UNKNOWN_BUCKET]
    return list(dict.fromkeys(str(p) for p in found)) or [NO_PHENOMENON]


def heldout_accuracy_by(outcomes: Mapping | None, heldout_meta: Mapping[str, Mapping[str, Mapping]],
                        buckets_of: BucketsOf) -> dict[str, Ratio]:
    """bucket -> (correct, items) of one run over the held-out sets pooled, every category included.

    A set whose sample file was not read is left out (its items' buckets are unknowable); an item id
    not in its set's file (the file rebuilt after the evaluation) counts as ``unknown``.
    """
    tally: dict[str, list[int]] = {}
    for name in HELDOUT_SETS:
        if name not in heldout_meta:
            continue
        categories = (outcomes or {}).get(name)
        for items in (categories.values() if isinstance(categories, dict) else ()):
            for item_id, ok in (items.items() if isinstance(items, dict) else ()):
                meta = heldout_meta[name].get(item_id)
                for bucket in [UNKNOWN_BUCKET] if meta is None else buckets_of(meta):
                    counts = tally.setdefault(bucket, [0, 0])
                    counts[0] += bool(ok)
                    counts[1] += 1
    return {bucket: (k, n) for bucket, (k, n) in tally.items()}


def heldout_table(outcomes: Mapping[tuple[str, str], Mapping | None], heldout_meta: Mapping[str, Mapping[str, Mapping]],
                  buckets_of: BucketsOf) -> dict[tuple[str, str], dict[str, Ratio]]:
    """run -> bucket -> (correct, items), for the runs (in the given order) that scored a held-out item."""
    table = {run: heldout_accuracy_by(found, heldout_meta, buckets_of) for run, found in outcomes.items()}
    return {run: by_bucket for run, by_bucket in table.items() if by_bucket}


def iterative_chain(runs: Iterable[tuple[str, str]], rounds: Sequence[str]) -> list[tuple[str, str]]:
    """The iterative arm's models in training order, from its start (SFT when present, else base),
    restricted to ``runs`` (the ones with numbers)."""
    present = set(runs)
    start = [SFT_RUN] if SFT_RUN in present else [BASE_RUN] if BASE_RUN in present else []
    return start + [("iterative", r) for r in rounds if ("iterative", r) in present]


@dataclass(frozen=True)
class Move:
    before_run: tuple[str, str]
    after_run: tuple[str, str]
    bucket: str
    before: Ratio
    after: Ratio

    @property
    def change(self) -> float:
        return self.after[0] / self.after[1] - self.before[0] / self.before[1]


def largest_moves(table: Mapping[tuple[str, str], Mapping[str, Ratio]], chain: Sequence[tuple[str, str]],
                  top: int = 3) -> list[Move]:
    """Per step of ``chain``, the ``top`` phenomena whose accuracy changed most (absolute change,
    then name), among those scored in both runs; the none/unknown buckets name no phenomenon and an
    unchanged one is no move."""
    moves: list[Move] = []
    for before_run, after_run in zip(chain, chain[1:]):
        before, after = table.get(before_run) or {}, table.get(after_run) or {}
        step = [Move(before_run, after_run, b, before[b], after[b]) for b in after
                if b in before and b not in (NO_PHENOMENON, UNKNOWN_BUCKET) and before[b][1] and after[b][1]]
        step = [m for m in step if m.change != 0]
        moves += sorted(step, key=lambda m: (-abs(m.change), m.bucket))[:top]
    return moves


def bucket_order(buckets: Iterable[str], first: Sequence[str] = ()) -> list[str]:
    """``first`` (those present) in its order, then the rest by name, then none and unknown."""
    present = set(buckets)
    last = [b for b in (NO_PHENOMENON, UNKNOWN_BUCKET) if b in present]
    head = [b for b in first if b in present and b not in last]
    return head + sorted(present - set(head) - set(last)) + last


def ratio_text(ratio: Ratio | None) -> str:
    return MISSING if ratio is None else f"{ratio[0]}/{ratio[1]}"


def ratio_table(corner: str, columns: Mapping[str, Mapping[str, Ratio]], first: Sequence[str] = ()) -> str:
    """Rows = buckets, one column per key of ``columns``, cells ``k/n`` (the dash: not scored)."""
    rows = bucket_order((b for by_bucket in columns.values() for b in by_bucket), first)
    return _markdown_table([corner, *columns],
                           [[b, *(ratio_text(by_bucket.get(b)) for by_bucket in columns.values())] for b in rows])


def heldout_section(inputs: ReportInputs) -> str:
    by_phenomenon = heldout_table(inputs.outcomes, inputs.heldout_meta, phenomenon_buckets)
    if not by_phenomenon:
        return ("No held-out outcomes to break down (eval/<arm>/<round>/outcomes.json with "
                f"{' or '.join(HELDOUT_SETS)}, and data/seed/<set>.jsonl).")
    by_kind = heldout_table(inputs.outcomes, inputs.heldout_meta, need_kind_buckets)
    labels = {run: run_label(*run) for run in by_phenomenon}
    moves = largest_moves(by_phenomenon, iterative_chain(by_phenomenon, inputs.rounds))
    lines = [f"- {labels[m.before_run]} → {labels[m.after_run]}: {m.bucket} {ratio_text(m.before)} → "
             f"{ratio_text(m.after)} ({100 * m.change:+.1f} pp)" for m in moves]
    pooled = ", ".join(name for name in HELDOUT_SETS if name in inputs.heldout_meta)
    return "\n\n".join([
        f"Held-out sets pooled ({pooled}), correct/items. An item counts under every value phenomenon its answer "
        "exercises; none = no value to copy (a text reply, a call without arguments); unknown = the item's meta "
        "does not say, or it is not in the set's sample file.",
        ratio_table("phenomenon", {labels[run]: v for run, v in by_phenomenon.items()}),
        ratio_table("need kind", {labels[run]: by_kind.get(run, {}) for run in by_phenomenon}, NEED_KINDS),
        "Phenomena that moved most along the iterative arm, each round against the run before it (SFT, or base "
        "without SFT, before the first; few items make large swings):",
        "\n".join(lines) or "none moved."])


def intervals_section(table: SummaryTable, intervals: Mapping[tuple[str, str], dict[str, dict]]) -> str:
    """Headline scores per run as value [95% Wilson interval] (n)."""
    fields = headline_fields(table)
    rows = []
    for run in table.rows:
        found = intervals.get(run) or {}
        cells = []
        for name in fields:
            item = found.get(name)
            cells.append(MISSING if item is None or item["value"] is None else
                         f"{percent(item['value'])} [{percent(item['ci_low'])}, {percent(item['ci_high'])}] (n={item['n']})")
        rows.append([run_label(*run), *cells])
    return _markdown_table(["run", *fields], rows)


def scores_by_round(table: SummaryTable, rounds: Sequence[str]) -> list[dict]:
    """Wide rows for DVC data-series plots: x = ``round_index`` (numeric, since DVC's default
    template treats x as quantitative), one y field per arm and headline score.

    Round 0 is the model both arms start from (the SFT warm-up when evaluated, else the base), so
    both arm lines start at the same point; the ``base_*`` fields repeat the base score as a
    reference line.
    """
    # The known benchmarks' headline fields are always present (null when not evaluated) so
    # that the DVC plot definitions naming them never point at a missing field.
    known = [Column(b, key, label, False).field_name for b, cols in SUMMARY_COLUMNS.items() for key, label in cols]
    fields = known + [f for f in headline_fields(table) if f not in known]
    rows = []
    for index, r in enumerate(["r0", *rounds]):
        row: dict[str, Any] = {"round": r, "round_index": index}
        for name in fields:
            base = table.value(*BASE_RUN, name)
            row[f"base_{name}"] = base
            start = _arm_start(table, name)
            for arm in TRAINED_ARMS:
                row[f"{arm}_{name}"] = start if index == 0 else table.value(arm, r, name)
        rows.append(row)
    return rows


def _arm_start(table: SummaryTable, name: str) -> float | None:
    """Round 0 of both arms: the SFT warm-up model when it was evaluated, else the base model."""
    sft = table.value(*SFT_RUN, name)
    return sft if sft is not None else table.value(*BASE_RUN, name)


# The runs MLflow draws over rounds (looptool.tracking.log_round_series): the base model as a
# reference line, then each trained arm.
SERIES_ARMS = ("base", *TRAINED_ARMS)
# GRPO summary keys (eval/<arm>/<round>/train.json) and the metric names they get in MLflow.
SERIES_TRAIN_METRICS = (("reward_mean", "grpo_reward_mean"), ("frac_reward_zero_std_mean", "grpo_frac_reward_zero_std"))


def round_series(table: SummaryTable, intervals: Mapping[tuple[str, str], Mapping[str, dict]],
                 inputs: ReportInputs, rounds: Sequence[str]) -> dict[str, dict[int, dict[str, float]]]:
    """Per arm, per round index, the numbers logged with ``step`` = round index:
    ``{arm: {index: {metric: value}}}``.

    Index 0 is the model both trained arms start from (the SFT warm-up when evaluated, else the
    base), as in :func:`scores_by_round`; the base arm repeats its scores at every index. Each
    headline score comes with ``<field>_n``, ``_ci_low`` and ``_ci_high`` (95% Wilson); the trained
    arms add the GRPO reward mean and zero-std fraction of the round, and the size of its training
    data by origin (``data_<origin>``; the static arm trains on the round-1 seed slice every round).
    """
    start = SFT_RUN if table.rows.get(SFT_RUN) is not None else BASE_RUN
    fields = headline_fields(table)
    composition = {label: counts for label, counts, _ in inputs.compositions}
    seed_slice = composition.get(rounds[0]) if rounds else None
    series: dict[str, dict[int, dict[str, float]]] = {arm: {} for arm in SERIES_ARMS}
    for index, r in enumerate(["r0", *rounds]):
        for arm in SERIES_ARMS:
            run = BASE_RUN if arm == "base" else start if index == 0 else (arm, r)
            point: dict[str, float] = {}
            for name in fields:
                value = table.value(*run, name)
                if value is None:
                    continue
                point[name] = value
                found = intervals.get(run, {}).get(name)
                if found is not None:
                    point.update({f"{name}_n": found["n"], f"{name}_ci_low": found["ci_low"], f"{name}_ci_high": found["ci_high"]})
            if arm in TRAINED_ARMS and index > 0:
                summary = inputs.train_summaries.get((arm, r)) or {}
                for key, metric in SERIES_TRAIN_METRICS:
                    value = summary.get(key)
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        point[metric] = float(value)
                counts = composition.get(r) if arm == "iterative" else seed_slice
                for origin, count in (counts or {}).items():
                    if isinstance(count, int) and not isinstance(count, bool):
                        point[f"data_{origin}"] = float(count)
            if point:
                series[arm][index] = point
    return series


def composition_rows(inputs: ReportInputs) -> list[dict]:
    rows = []
    for index, (label, composition, source) in enumerate(inputs.compositions, start=1):
        row: dict[str, Any] = {"round": label, "round_index": index, "source": source}
        for origin in (*ORIGINS, "total"):
            row[origin] = None if composition is None else int(composition.get(origin, 0) or 0)
        rows.append(row)
    return rows


def categories_not_run(evals: Mapping[tuple[str, str], dict | None]) -> dict[str, list[str]]:
    """benchmark -> categories some evaluated run did not run (ordered union of the summaries)."""
    result: dict[str, list[str]] = {}
    for metrics in evals.values():
        for bench, block in (metrics or {}).items():
            names = ((block or {}).get("summary") or {}).get("categories_not_run") or []
            target = result.setdefault(bench, [])
            target += [n for n in names if n not in target]
    return result


# ------------------------------------------------------------------------------------------
# Plots (matplotlib's object API with no pyplot: no global backend or figure state to leak)


def _save_png(figure: Figure, path: str | Path) -> None:
    figure.tight_layout()
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110)


def _no_data(axes, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, color="grey")


def plot_scores(table: SummaryTable, rounds: Sequence[str], path: str | Path,
                intervals: Mapping[tuple[str, str], dict[str, dict]] | None = None) -> None:
    """Headline scores per round, iterative vs static from their shared round-0 model (SFT, or
    base without SFT), base as a horizontal line; error bars are the 95% Wilson intervals."""
    intervals = intervals or {}

    def error(run: tuple[str, str], name: str, value: float) -> tuple[float, float]:
        found = (intervals.get(run) or {}).get(name)
        if not found:
            return 0.0, 0.0
        return max(0.0, 100 * (value - found["ci_low"])), max(0.0, 100 * (found["ci_high"] - value))

    panels = [("bfcl_overall", "BFCL v3 Overall"), ("acebench_overall", "ACEBench Overall"),
              ("heldout_unseen_overall", "Held-out, unseen tools (exact match)"),
              ("heldout_seen_overall", "Held-out, training tools (exact match)")]
    figure = Figure(figsize=(5 * len(panels), 4))
    ticks = ["r0", *rounds]
    for slot, (name, title) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, len(panels), slot)
        axes.set_title(title)
        axes.set_xticks(range(len(ticks)), ticks)
        axes.set_xlabel("round")
        axes.set_ylabel("accuracy (%)")
        base = table.value(*BASE_RUN, name)
        drawn = False
        if base is not None:
            axes.axhline(100 * base, color="grey", linestyle=":", label="base")
            drawn = True
        start = SFT_RUN if table.value(*SFT_RUN, name) is not None else BASE_RUN
        for offset, (arm, marker) in zip((-0.05, 0.05), zip(TRAINED_ARMS, ("o", "s"))):
            runs = [(0, start, _arm_start(table, name))] + [(i, (arm, r), table.value(arm, r, name))
                                                            for i, r in enumerate(rounds, start=1)]
            points = [(x + offset, 100 * y, error(run, name, y)) for x, run, y in runs if y is not None]
            if len(points) > 1:
                axes.errorbar([p[0] for p in points], [p[1] for p in points],
                              yerr=[[p[2][0] for p in points], [p[2][1] for p in points]],
                              marker=marker, capsize=3, label=arm)
                drawn = True
        if drawn:
            axes.legend()
        else:
            _no_data(axes, "no evaluation found")
    _save_png(figure, path)


def plot_composition(inputs: ReportInputs, path: str | Path) -> None:
    """Stacked bars: the training data of each round by sample origin."""
    rows = composition_rows(inputs)
    figure = Figure(figsize=(max(5, 1.6 * len(rows) + 2), 4))
    axes = figure.add_subplot(1, 1, 1)
    axes.set_title("Training data per round (iterative arm) by origin")
    axes.set_ylabel("samples")
    labels = [row["round"] for row in rows]
    positions = list(range(len(rows)))
    bottoms = [0] * len(rows)
    for origin in ORIGINS:
        heights = [row[origin] or 0 for row in rows]
        if any(heights):
            axes.bar(positions, heights, bottom=bottoms, label=origin)
            bottoms = [b + h for b, h in zip(bottoms, heights)]
    for x, row in zip(positions, rows):
        if row["total"] is None:
            axes.text(x, 0, "missing", ha="center", va="bottom", color="grey", rotation=90)
    axes.set_xticks(positions, labels)
    if any(bottoms):
        axes.legend()
    elif not rows:
        _no_data(axes, "no rounds configured")
    _save_png(figure, path)


def plot_rewards(inputs: ReportInputs, path: str | Path) -> None:
    """GRPO reward mean per logging step: colour = round, line style = arm."""
    figure = Figure(figsize=(8, 4))
    axes = figure.add_subplot(1, 1, 1)
    axes.set_title("GRPO reward per step")
    axes.set_xlabel("step (within the round)")
    axes.set_ylabel("reward mean")
    colours = {r: f"C{i % 10}" for i, r in enumerate(inputs.rounds)}
    styles = {"iterative": "-", "static": "--"}
    drawn = False
    for (arm, r), curve in inputs.train_curves.items():
        points = [(p["step"], p["reward"]) for p in curve or []
                  if isinstance(p, dict) and isinstance(p.get("step"), (int, float)) and isinstance(p.get("reward"), (int, float))]
        if points:
            axes.plot([p[0] for p in points], [p[1] for p in points], color=colours.get(r, "black"),
                      linestyle=styles.get(arm, ":"), marker=".", label=f"{arm} {r}")
            drawn = True
    if drawn:
        axes.legend()
    else:
        _no_data(axes, "no GRPO curve found")
    _save_png(figure, path)


# ------------------------------------------------------------------------------------------
# eval/report.md


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def text(value: Any) -> str:
        if value is None:
            return MISSING
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(text(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _get(block: dict | None, *keys: str) -> Any:
    value: Any = block
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def loop_section(inputs: ReportInputs) -> str:
    """Probe (GCP), judge (JGLV) and expand (EDDE) numbers per round of the iterative arm."""
    stages = {r: inputs.loop_stages[r] for r in inputs.rounds}
    return "\n\n".join(["### Probe (GCP)", probe_section(stages), "### Judge (JGLV)",
                        judge_section(stages, inputs.decided_by), "### Expand (EDDE)", expand_section(stages)])


def probe_section(stages: Mapping[str, Mapping[str, dict | None]]) -> str:
    counts = _markdown_table(
        ["round", "samples", "mastered", "failed", "unparsable", "high-PPL kept", "mastered PPL min / median / max"],
        [[r, _get(s := found["probe"], "samples"), _get(s, "mastered"), _get(s, "failed"),
          _get(s, "unparsable"), _get(s, "high_ppl_kept"),
          None if _get(s, "mastered_ppl") is None else " / ".join(
              MISSING if _get(s, "mastered_ppl", k) is None else f"{_get(s, 'mastered_ppl', k):.3g}"
              for k in ("min", "median", "max"))]
         for r, found in stages.items()])
    by_kind, by_phenomenon = ({r: mastery_ratios(_get(found["probe"], key)) for r, found in stages.items()}
                              for key in ("by_need_kind", "by_phenomenon"))
    if not any(by_kind.values()) and not any(by_phenomenon.values()):
        return counts  # probe metrics written before the breakdown existed
    return "\n\n".join([
        counts, "Mastered/probed per need kind and per value phenomenon (a sample counts under every phenomenon it "
        "exercises; none = no value to copy, unknown = its meta does not say):",
        ratio_table("need kind", by_kind, NEED_KINDS), ratio_table("phenomenon", by_phenomenon)])


def mastery_ratios(block: Any) -> dict[str, Ratio]:
    """Probe metrics ``{bucket: {"mastered": m, "failed": f}}`` -> ``{bucket: (m, m + f)}``."""
    ratios = {}
    for bucket, counts in (block.items() if isinstance(block, dict) else ()):
        mastered, failed = (int(_get(counts, k) or 0) for k in ("mastered", "failed"))
        ratios[bucket] = (mastered, mastered + failed)
    return ratios


def judge_section(stages: Mapping[str, Mapping[str, dict | None]], decided_by: Mapping[str, dict[str, int] | None]) -> str:
    verdicts = ("PRED_WRONG", "LABEL_WRONG", "BOTH_CORRECT", "BOTH_WRONG", "JUDGE_FAILED")
    table = _markdown_table(
        ["round", "mismatches", *verdicts, "judge ran", *(f"decided by {d}" for d in DECIDERS)],
        [[r, _get(j := found["judge"], "mismatches"), *(_get(j, "verdicts", v) for v in verdicts), _get(j, "judge_ran"),
          *(_get(decided_by.get(r), d) for d in DECIDERS)] for r, found in stages.items()])
    parts = [table, "Decided by (from the judge's ledger): rule = the prediction broke a seed-set rule, so no judge "
             "was asked; judge = the LLM judge's votes; ablation = JGLV off, every mismatch kept as PRED_WRONG."]
    audits = {r: _get(found["judge"], "noise_audit") for r, found in stages.items()}
    if not any(isinstance(a, dict) for a in audits.values()):
        return "\n\n".join(parts)
    columns = ("corrupted_seen", "corrupted_judged_label_wrong", "corrected_equal_clean", "clean_labels_seen",
               "clean_labels_rewritten")
    audit = _markdown_table(
        ["round", "corrupted seen", "judged LABEL_WRONG", "corrected to clean", "clean seen", "clean rewritten",
         "corrupted by type", "verdicts on corrupted"],
        [[r, *(_get(a, c) for c in columns), _counts_text(_get(a, "corrupted_by_type")),
          _counts_text(_get(a, "corrupted_verdicts"))] for r, a in audits.items()])
    return "\n\n".join([
        *parts, "Noise audit of the mismatches against the labels the oracle corrupted on purpose: corrupted seen = "
        "corrupted labels among the mismatches; judged LABEL_WRONG = those the judge replaced by the prediction; "
        "corrected to clean = replacements equal to the clean label; clean seen = mismatches with an intact "
        "label; clean rewritten = intact labels the judge replaced (harm done); by type = the corruptions seen; "
        "verdicts on corrupted = what the judge said about them.", audit])


def expand_section(stages: Mapping[str, Mapping[str, dict | None]]) -> str:
    rows = []
    for r, found in stages.items():
        e = found["expand"]
        attempted, kept = _get(e, "asked"), _get(e, "new_samples")
        share = percent(kept / attempted) if isinstance(kept, int) and isinstance(attempted, int) and attempted else None
        rows.append([r, _get(e, "error_seeds"), attempted, kept, share,
                     _counts_text(_get(e, "ledger", "rejected_by_reason"))])
    return "\n\n".join([
        _markdown_table(["round", "error seeds", "variants attempted", "kept (new samples)", "yield %",
                         "rejected by reason"], rows),
        "Yield = kept / attempted; attempted = error seeds expanded (at most expand.max_seeds) x expand.per_seed."])


def _counts_text(counts: Any) -> str | None:
    """``{name: n}`` as "name n, ..." largest first; None (the dash) when there is no dict."""
    if not isinstance(counts, dict):
        return None
    ranked = sorted(counts.items(), key=lambda item: (-item[1] if isinstance(item[1], (int, float)) else 0, item[0]))
    return ", ".join(f"{name} {n}" for name, n in ranked) or "none"


def composition_section(inputs: ReportInputs) -> str:
    rows = composition_rows(inputs)
    table = _markdown_table(["training data of", *ORIGINS, "total", "source"],
                            [[row["round"], *(row[o] for o in ORIGINS), row["total"], row["source"]] for row in rows])
    return table + "\n\nThe static arm trains on the round-1 seed slice in every round."


def training_section(inputs: ReportInputs) -> str:
    keys = ("samples", "trained_on", "steps", "seconds", "reward_mean", "frac_reward_zero_std_mean")
    rows = []
    for (arm, r), summary in inputs.train_summaries.items():
        curve = [p for p in inputs.train_curves.get((arm, r)) or [] if isinstance(p, dict)]
        last = curve[-1].get("reward") if curve else None
        rows.append([f"{arm} {r}", *(_get(summary, k) for k in keys), last])
    grpo = _markdown_table(["run", *keys, "last logged reward"], rows)
    if inputs.sft_summary is None:
        sft = "SFT warm-up: no summary found."
    else:
        scalars = {k: v for k, v in inputs.sft_summary.items() if isinstance(v, (int, float, str, bool))}
        sft = "SFT warm-up: " + ", ".join(f"{k} = {v}" for k, v in scalars.items())
    return "\n\n".join([sft, grpo])


def render_report(inputs: ReportInputs, table: SummaryTable, plot_links: Mapping[str, str],
                  intervals: Mapping[tuple[str, str], dict[str, dict]] | None = None,
                  paired: Mapping[str, Mapping[str, dict]] | None = None) -> str:
    """The Markdown report; ``plot_links`` maps a caption to a path relative to the report.
    ``intervals`` / ``paired``: :func:`score_intervals` / :func:`paired_tests` when the caller has
    them already (computed here otherwise)."""
    intervals = score_intervals(inputs.evals) if intervals is None else intervals
    paired = paired_tests(inputs) if paired is None else paired
    parts = ["# LoopTool report", "",
             f"Rounds configured: {', '.join(inputs.rounds) or 'none'}. Accuracies in percent; "
             f"{MISSING} = not evaluated or file missing.", "",
             "## Final summary table", "", table_markdown(table), "",
             "## Scores with 95% Wilson intervals", "",
             "A summary that averages categories carries the Wilson interval of its value at the pooled n "
             "(an approximation).", "",
             intervals_section(table, intervals), "",
             "## Iterative vs static, item by item", "",
             "All categories of a benchmark pooled; exact McNemar test on the items one arm gets right and the "
             "other wrong.", "", paired_section(paired), ""]
    if any(c.metric == "strict_accuracy" or c.key.endswith("_strict") for c in table.columns):
        parts += ["BFCL's official irrelevance score counts an output that tried to call a tool but could not "
                  "be read as a correct abstention; the columns marked strict count it wrong.", ""]
    if inputs.shared_static:
        shared = ", ".join(inputs.shared_static)
        parts += [f"Static {shared} is the iterative arm's {shared}: both arms start from the same model and "
                  "train on the same seed slice there, so that run is made once and shown in both rows.", ""]
    not_run = {b: names for b, names in categories_not_run(inputs.evals).items() if names}
    if not_run:
        parts += ["Categories not run (each counts 0 in its benchmark's Overall):", ""]
        parts += [f"- {BENCHMARK_LABELS.get(b, b)}: {', '.join(names)}" for b, names in not_run.items()]
        parts.append("")
    parts += ["## Held-out accuracy by phenomenon", "", heldout_section(inputs), "", "## Plots", ""]
    parts += [f"![{caption}]({link})" for caption, link in plot_links.items()]
    parts += ["", "## Training data per round", "", composition_section(inputs), "",
              "## Loop stages per round", "", loop_section(inputs), "",
              "## Training", "", training_section(inputs), "", "## Missing inputs", ""]
    if inputs.missing:
        parts += ["These files were missing or unreadable; their series are left out above:", ""]
        parts += [f"- {m}" for m in inputs.missing]
    else:
        parts.append("None: every expected file was read.")
    return "\n".join(parts) + "\n"
