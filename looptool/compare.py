"""Sweep points side by side: ``python -m looptool.compare`` (``make compare``).

``dvc exp show`` opens on the seed stages' counters and leaves the scores far to the right. This
reads ``dvc exp show --json`` and prints, per experiment, only the params that differ from its
baseline commit and the headline scores of ``eval/scores.json`` per arm and round, as
``41.2 [34.1,48.7] n=170`` (percent, 95% Wilson interval, items), in blocks of columns that fit the
terminal. A run that failed, is queued or has no report yet shows ``-``.

Layout read (DVC 3): a list of commits ``{rev, name, data, error, experiments}``; ``data`` holds
``params`` and ``metrics`` keyed by file, each ``{"data": ...}`` or ``{"error": ...}``;
``experiments`` is a list of ``{name, executor: {state} | null, revs: [commit-like]}``.
``eval/scores.json`` is ``{arm: {round: {field, field_n, field_ci_low, field_ci_high}}}``
(looptool.report.scores_metrics).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from looptool.tracking import flatten

SCORES_FILE = "eval/scores.json"
PARAMS_FILE = "params.yaml"
# Headline summaries shown unless --metric says otherwise: the loop's own held-out set on unseen
# tools, and the public benchmark scored on the final models.
DEFAULT_METRICS = ("heldout_unseen_overall", "bfcl_overall")
ARM_ORDER = ("base", "sft", "iterative", "static")
MISSING = "-"
_ABSENT = "<absent>"  # a param one side of a comparison does not have
GAP = "  "
NAME_WIDTH = 24  # longest experiment name shown in full; DVC's generated names are shorter


@dataclass
class Row:
    """One line of the table: the workspace, a commit or an experiment on it."""

    name: str
    params: dict[str, Any] | None           # flattened; None = not readable
    scores: dict[str, Any] | None           # eval/scores.json as written; None = not there
    baseline: dict[str, Any] | None = None  # params of the commit this row is compared with
    state: str | None = None                # failed / queued / running, or None when done
    changed: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------
# Reading `dvc exp show --json`


def _file_data(section: Mapping | None, path: str) -> Any:
    entry = (section or {}).get(path)
    return entry.get("data") if isinstance(entry, Mapping) else None


def _params(state: Mapping) -> dict[str, Any] | None:
    """All params files of a commit/experiment flattened; keys outside params.yaml get ``file:``."""
    files = (state.get("data") or {}).get("params")
    if not files:
        return None
    flat: dict[str, Any] = {}
    for path, entry in files.items():
        data = entry.get("data") if isinstance(entry, Mapping) else None
        if isinstance(data, Mapping):
            flat.update(flatten(data, "" if path == PARAMS_FILE else f"{path}:"))
    return flat


def _scores(state: Mapping) -> dict | None:
    scores = _file_data((state.get("data") or {}).get("metrics"), SCORES_FILE)
    return scores if isinstance(scores, Mapping) else None


def _label(state: Mapping) -> str:
    name = state.get("name") or str(state.get("rev", "?"))[:7]
    return "workspace" if state.get("rev") == "workspace" else name


def rows_from_exp_show(commits: Sequence[Mapping]) -> list[Row]:
    """Rows in `dvc exp show`'s order: workspace, then each commit followed by its experiments.

    The workspace is compared with the first commit (HEAD), an experiment with its commit.
    """
    rows: list[Row] = []
    params = [_params(c) for c in commits]
    head = next((p for c, p in zip(commits, params) if c.get("rev") != "workspace"), None)
    for commit, own in zip(commits, params):
        is_workspace = commit.get("rev") == "workspace"
        state = "error" if commit.get("error") and not commit.get("data") else None
        rows.append(Row(_label(commit), own, _scores(commit), head if is_workspace else None, state))
        for exp in commit.get("experiments") or []:
            executor = exp.get("executor") or {}
            revs = exp.get("revs") or [{}]
            latest = revs[0]  # a checkpoint-style range lists the newest first
            name = exp.get("name") or _label(latest)
            done = executor.get("state") in (None, "success")
            rows.append(Row(name, _params(latest), _scores(latest), own, None if done else executor.get("state")))
    for row in rows:
        row.changed = changed_params(row.params, row.baseline)
    # A commit row shows its own value of every key its experiments (or the workspace) change, so
    # the sweep reads as a column of alternatives. Rows point at their baseline's very dict.
    for row in rows:
        if row.baseline is None and row.params is not None:
            swept = {k for other in rows if other.baseline is row.params for k in other.changed}
            row.changed = {k: row.params.get(k, _ABSENT) for k in sorted(swept)}
    return rows



def changed_params(params: Mapping | None, baseline: Mapping | None) -> dict[str, Any]:
    """Keys whose value differs from the baseline (a key on one side only counts), sorted."""
    if params is None or baseline is None:
        return {}
    keys = sorted(set(params) | set(baseline))
    return {k: params.get(k, _ABSENT) for k in keys if params.get(k, _ABSENT) != baseline.get(k, _ABSENT)}


def format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)  # true/false/null as in params.yaml
    return value if isinstance(value, str) else json.dumps(value)


def format_params(changed: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in changed.items()) or MISSING


# ------------------------------------------------------------------------------------------
# Score columns


def _round_key(name: str) -> tuple[str, int, str]:
    """r2 before r10."""
    match = re.fullmatch(r"(\D*)(\d+)(.*)", name)
    return (match.group(1), int(match.group(2)), match.group(3)) if match else (name, -1, "")


def run_label(arm: str, round_key: str) -> str:
    # base and sft are evaluated once (r0): their round says nothing.
    return arm if arm in ("base", "sft") and round_key == "r0" else f"{arm} {round_key}"


def score_columns(rows: Sequence[Row], metrics: Sequence[str]) -> list[tuple[str, str, str]]:
    """(metric, arm, round) for every metric and run some row has a score for, metric first, then
    base, sft, iterative r1..rN, static r1..rN (other arms after them, by name)."""
    runs: set[tuple[str, str]] = set()
    for row in rows:
        for arm, rounds in (row.scores or {}).items():
            for round_key, fields in (rounds or {}).items() if isinstance(rounds, Mapping) else ():
                for metric in metrics:
                    if isinstance(fields, Mapping) and fields.get(metric) is not None:
                        runs.add((metric, arm, round_key))

    def order(run: tuple[str, str, str]) -> tuple:
        metric, arm, round_key = run
        arm_rank = ARM_ORDER.index(arm) if arm in ARM_ORDER else len(ARM_ORDER)
        return metrics.index(metric), arm_rank, arm, _round_key(round_key)

    return sorted(runs, key=order)


def available_metrics(rows: Sequence[Row]) -> list[str]:
    """Score fields the rows' scores.json hold (not their _n / _ci_* companions), sorted."""
    found: set[str] = set()
    for row in rows:
        for rounds in (row.scores or {}).values():
            for fields in (rounds or {}).values() if isinstance(rounds, Mapping) else ():
                found.update(k for k in fields if not re.search(r"_(n|ci_low|ci_high)$", k))
    return sorted(found)


def default_metrics(rows: Sequence[Row]) -> list[str]:
    """DEFAULT_METRICS that some row has; else every ``*_overall`` there is (an older layout)."""
    found = available_metrics(rows)
    chosen = [m for m in DEFAULT_METRICS if m in found]
    return chosen or [m for m in found if m.endswith("_overall")]


def format_score(fields: Mapping | None, metric: str) -> str:
    """``41.2 [34.1,48.7] n=170`` from a fraction, its interval and n; ``-`` when not scored."""
    value = (fields or {}).get(metric)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return MISSING
    text = f"{100 * value:.1f}"
    low, high = (fields or {}).get(f"{metric}_ci_low"), (fields or {}).get(f"{metric}_ci_high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        text += f" [{100 * low:.1f},{100 * high:.1f}]"
    n = (fields or {}).get(f"{metric}_n")
    return text + (f" n={n}" if n is not None else "")


def score_cell(row: Row, metric: str, arm: str, round_key: str) -> str:
    if row.state is not None:  # a failed or unfinished run's scores.json is the baseline's, or none
        return MISSING
    rounds = (row.scores or {}).get(arm)
    return format_score(rounds.get(round_key) if isinstance(rounds, Mapping) else None, metric)


# ------------------------------------------------------------------------------------------
# The table


@dataclass
class Column:
    header: tuple[str, str]  # two header lines: group (metric) and run
    cells: list[str]

    @property
    def width(self) -> int:
        return max(len(s) for s in (*self.header, *self.cells))


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def build_columns(rows: Sequence[Row], metrics: Sequence[str]) -> tuple[Column, list[Column]]:
    """The experiment-name column (repeated in every block) and the others: changed params, then
    one per (metric, arm, round)."""
    names = [clip(r.name + (f" [{r.state}]" if r.state else ""), NAME_WIDTH) for r in rows]
    name_column = Column(("", "experiment"), names)
    columns = [Column(("", "changed params"), [format_params(r.changed) for r in rows])]
    for metric, arm, round_key in score_columns(rows, metrics):
        columns.append(Column((metric, run_label(arm, round_key)),
                              [score_cell(r, metric, arm, round_key) for r in rows]))
    return name_column, columns


def render(name_column: Column, columns: Sequence[Column], width: int) -> str:
    """Columns packed left to right into blocks no wider than ``width``, each block led by the
    names; a column too wide even alone is cut (``…``) rather than let lines wrap."""
    room = max(width - name_column.width - len(GAP), 1)
    blocks: list[list[Column]] = []
    used = room + 1  # forces a first block
    for column in columns:
        need = min(column.width, room)
        if blocks and used + len(GAP) + need <= room:
            blocks[-1].append(column)
            used += len(GAP) + need
        else:
            blocks.append([column])
            used = need
    out: list[str] = []
    for block in blocks:
        widths = [name_column.width] + [min(c.width, room) for c in block]
        # The group line names a metric once, over its first column in the block.
        groups = [c.header[0] if i == 0 or c.header[0] != block[i - 1].header[0] else "" for i, c in enumerate(block)]
        lines = [[""] + groups, [name_column.header[1]] + [c.header[1] for c in block]]
        lines += [[name] + [c.cells[i] for c in block] for i, name in enumerate(name_column.cells)]
        if not any(groups):
            lines = lines[1:]
        for cells in lines:
            text = GAP.join(clip(cell, w).ljust(w) for cell, w in zip(cells, widths)).rstrip()
            out.append(clip(text, width))
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def compare_table(commits: Sequence[Mapping], width: int, metrics: Sequence[str] | None = None) -> str:
    rows = rows_from_exp_show(commits)
    if not rows:
        return "No commits or experiments in `dvc exp show`.\n"
    metrics = list(metrics) if metrics else default_metrics(rows)
    name_column, columns = build_columns(rows, metrics)
    if len(columns) == 1:  # changed params only
        legend = f"No scores yet: {SCORES_FILE} comes from the report stage (make run, dvc exp run)."
    else:
        legend = "Scores: % correct [95% Wilson interval] n=items; - = not scored (failed, queued or no report yet)."
    return textwrap.fill(legend, max(width, 1)) + "\n\n" + render(name_column, columns, width)


# ------------------------------------------------------------------------------------------


def exp_show_json(all_commits: bool = False) -> list:
    """`dvc exp show --json` from this interpreter's DVC (the project's virtualenv)."""
    command = [sys.executable, "-m", "dvc", "exp", "show", "--json"] + (["-A"] if all_commits else [])
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m looptool.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--metric", action="append", help="a score field of eval/scores.json (repeatable); "
                        f"default: {', '.join(DEFAULT_METRICS)}")
    parser.add_argument("--list-metrics", action="store_true", help="print the score fields there are and exit")
    parser.add_argument("--json", type=Path, help="read a saved `dvc exp show --json` instead of running it")
    parser.add_argument("-A", "--all-commits", action="store_true", help="experiments of every commit, not only HEAD's")
    parser.add_argument("--width", type=int, help="table width (default: the terminal's)")
    args = parser.parse_args(argv)
    try:
        commits = json.loads(args.json.read_text(encoding="utf-8")) if args.json else exp_show_json(args.all_commits)
    except subprocess.CalledProcessError as err:
        print(f"dvc exp show failed:\n{err.stderr}", file=sys.stderr)
        return 1
    if args.list_metrics:
        print("\n".join(available_metrics(rows_from_exp_show(commits))))
        return 0
    width = args.width or shutil.get_terminal_size().columns
    sys.stdout.write(compare_table(commits, width, args.metric))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
