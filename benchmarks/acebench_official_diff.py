"""Differential check: our ACEBench scorers against ACEBench's own evaluator, entry by entry.

ACEBench's evaluator (github.com/ACEBench/ACEBench, eval_main.py with model_eval/ and
model_inference/utils.py) is plain Python. This script extracts those files from a snapshot of
that repository into a temporary directory (nothing of it is kept or vendored here), imports
``eval_main`` there with its spreadsheet side effects switched off, and runs its
normal_single_turn_eval / normal_multi_turn_eval / special_eval on the same predictions that our
``official`` and ``clean`` rules score: the ground truth, and randomly damaged copies of it (calls
dropped, duplicated, renamed; arguments dropped, added, retyped; strings, numbers, lists and objects
altered; special replies with phrases, names or values missing or spelt differently). Normal
predictions reach ACEBench as the ``[Api(k='v')]`` text our official rules render.

For each of the 15 normal/special categories it reports ACEBench's accuracy, ours under each rule
set, and how many entries get a different verdict. Run:

    python benchmarks/acebench_official_diff.py [--official PATH] [--trials 5] [--seed 0]

PATH: a git directory or checkout of ACEBench (default: $ACEBENCH_OFFICIAL, else
/work/.mirror/ACEBench+ACEBench/repo, where the ``fetch`` tool puts it). Exit status 1 when the
official rules disagree with ACEBench on any entry.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from looptool.eval import acebench, acebench_official  # noqa: E402

DEFAULT_OFFICIAL = Path(os.environ.get("ACEBENCH_OFFICIAL", "/work/.mirror/ACEBench+ACEBench/repo"))
OFFICIAL_FILES = ("eval_main.py", "category.py", "model_eval/checker.py", "model_eval/utils.py",
                  "model_eval/evaluation_helper.py", "model_inference/utils.py", "model_inference/prompt_en.py",
                  "model_inference/prompt_zh.py")
CATEGORIES = acebench.NORMAL_CATEGORIES + acebench.SPECIAL_CATEGORIES


# ---------------------------------------------------------------------------------------------
# ACEBench's evaluator, loaded from a snapshot
# ---------------------------------------------------------------------------------------------

def _read_official(root: Path, path: str) -> str:
    if (root / path).is_file():
        return (root / path).read_text(encoding="utf-8")
    return subprocess.run(["git", f"--git-dir={root}", "show", f"HEAD:{path}"], check=True,
                          capture_output=True, text=True).stdout


class OfficialEvaluator:
    """eval_main's three scoring loops, run on in-memory predictions one entry at a time."""

    def __init__(self, root: Path, workdir: Path):
        code = workdir / "acebench_code"
        for path in OFFICIAL_FILES:
            target = code / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_read_official(root, path), encoding="utf-8")
        for name in ("openpyxl", "openpyxl.styles", "pandas"):  # used only to write spreadsheets
            try:
                __import__(name)
            except ImportError:
                stub = types.ModuleType(name)
                stub.Workbook = stub.Alignment = stub.DataFrame = object
                sys.modules[name] = stub
        sys.path.insert(0, str(code))
        import eval_main  # noqa: PLC0415 -- the snapshot's module

        eval_main.OUTPUT_PATH = str(workdir / "scores") + "/"
        eval_main.convert_result_to_excel = lambda *args, **kwargs: None
        self.main = eval_main
        self.scores = workdir / "scores" / "diff"

    def run(self, category: str, entries: list[dict], answers: list[dict], results: list[dict]) -> float:
        """ACEBench's accuracy of these results (end to end for multi-turn). Its score file is not
        read: for an entry that fails one ground-truth alternative and passes another,
        normal_single_turn_eval counts it correct but still lists it among the errors."""
        with contextlib.redirect_stdout(io.StringIO()):
            if "special" in category:
                return self.main.special_eval(results, entries, answers, category, "diff", None)
            if "normal_multi_turn" in category:
                return self.main.normal_multi_turn_eval(results, entries, answers, category, "diff", None)
            return self.main.normal_single_turn_eval(results, entries, answers, category, "diff", None)

    def verdicts(self, category: str, entries: list[dict], answers: list[dict], texts: list[str]) -> dict[str, Any]:
        """id -> True / False / "raises", each entry scored on its own (an exception stops
        ACEBench's whole run; here it marks only that entry)."""
        out: dict[str, Any] = {}
        for entry, answer, text in zip(entries, answers, texts):
            try:
                accuracy = self.run(category, [entry], [answer], [{"id": entry["id"], "result": text}])
            except Exception:  # noqa: BLE001 -- whatever ACEBench's code raises
                out[entry["id"]] = "raises"
                continue
            out[entry["id"]] = accuracy == 1
        return out

    def category_accuracy(self, category: str, entries: list[dict], answers: list[dict], texts: list[str]) -> Any:
        """ACEBench's accuracy of the whole category in one run (None where its run raises)."""
        results = [{"id": e["id"], "result": t} for e, t in zip(entries, texts)]
        try:
            return self.run(category, entries, answers, results)
        except Exception:  # noqa: BLE001
            return None


# ---------------------------------------------------------------------------------------------
# Damaged predictions
# ---------------------------------------------------------------------------------------------

_WORDS = ["new", "old", "the", "blue", "City", "extra", "2024", "A"]


def _damage_value(value: Any, rng: random.Random, depth: int = 0) -> Any:
    if isinstance(value, bool):
        return rng.choice([not value, str(value).lower(), int(value), value])
    if isinstance(value, int):
        return rng.choice([value + 1, value * 10 + 1, str(value), float(value), -value, value])
    if isinstance(value, float):
        return rng.choice([value + 0.5, int(value), str(value), value])
    if isinstance(value, str):
        return rng.choice([
            value.upper(), value.lower(), value + " " + rng.choice(_WORDS), rng.choice(_WORDS) + " " + value,
            value.replace(" ", ""), value.replace(" ", "  "), value + " ", " " + value, value[: max(1, len(value) // 2)],
            rng.choice(_WORDS), "", value.replace("-", " "), value.replace(" ", "_"), "true", value,
        ])
    if isinstance(value, list):
        choice = rng.randrange(7)
        if choice == 0 and value:
            return value[:-1]
        if choice == 1:
            return list(reversed(value))
        if choice == 2:
            return []
        if choice == 3:
            return value + [copy.deepcopy(value[0]) if value else rng.choice(_WORDS)]
        if choice == 4 and value and depth < 4:
            index = rng.randrange(len(value))
            return value[:index] + [_damage_value(value[index], rng, depth + 1)] + value[index + 1:]
        if choice == 5 and value:
            return value[0]
        return value
    if isinstance(value, dict):
        out = dict(value)
        choice = rng.randrange(5)
        if choice == 0 and out:
            out.pop(rng.choice(list(out)))
        elif choice == 1:
            out[rng.choice(["note", "extra", "id"])] = rng.choice(_WORDS)
        elif choice in (2, 3) and out and depth < 4:
            key = rng.choice(list(out))
            out[key] = _damage_value(out[key], rng, depth + 1)
        elif choice == 4 and out:
            key = rng.choice(list(out))
            out[key + " "] = out.pop(key)
        return out
    if value is None:
        return rng.choice(["None", "", None])
    return value


def damage_calls(calls: list[dict], functions: list[dict], alternatives: list, rng: random.Random) -> list[dict]:
    calls = copy.deepcopy(calls)
    if len(alternatives) > 1 and rng.random() < 0.2:
        calls = acebench.gold_calls(functions, [rng.choice(alternatives[1:])])
    for _ in range(rng.choice([0, 0, 1, 1, 1, 2])):
        kind = rng.randrange(10)
        if not calls:
            break
        index = rng.randrange(len(calls))
        call = calls[index]
        arguments = call["arguments"] if isinstance(call.get("arguments"), dict) else {}
        if kind == 0:
            calls.pop(index)
        elif kind == 1:
            calls.append(copy.deepcopy(call))
        elif kind == 2:
            names = [f["name"] for f in functions if f.get("name") != call["name"]]
            call["name"] = rng.choice(names) if names and rng.random() < 0.6 else call["name"] + "_v2"
        elif kind == 3 and arguments:
            arguments.pop(rng.choice(list(arguments)))
        elif kind == 4:
            doc = next((f for f in functions if f.get("name") == call["name"]), {})
            spare = [p for p in ((doc.get("parameters") or {}).get("properties") or {}) if p not in arguments]
            arguments[rng.choice(spare) if spare and rng.random() < 0.7 else "extra_param"] = rng.choice(_WORDS)
        elif kind == 5:
            rng.shuffle(calls)
        elif kind == 6:
            call["arguments"] = {}
        elif arguments:
            key = rng.choice(list(arguments))
            arguments[key] = _damage_value(arguments[key], rng)
    return calls


def variant_text(calls: list[dict], rng: random.Random) -> str:
    """The calls as a model might write them other than our rendering (to test the decoding)."""
    def args(call, literal):
        arguments = call["arguments"] if isinstance(call.get("arguments"), dict) else {}
        return ", ".join(f"{k} = {literal(v)}" for k, v in arguments.items())

    choice = rng.randrange(7)
    if choice == 0:  # JSON literals: true/false/null are bare names there
        return "[" + ", ".join(f"{c['name']}({args(c, json.dumps)})" for c in calls) + "]"
    if choice == 1:  # no brackets
        return ", ".join(f"{c['name']}({args(c, repr)})" for c in calls)
    if choice == 2:  # prose around the list
        return "Sure, here you go: " + acebench_official.render_calls(calls)
    if choice == 3:  # positional values
        return "[" + ", ".join(f"{c['name']}(" + ", ".join(map(repr, (c.get("arguments") or {}).values())) + ")"
                               for c in calls) + "]"
    if choice == 4:  # laid out over lines
        return "[\n  " + ",\n  ".join(f"{c['name']}(\n    {args(c, repr)}\n  )" for c in calls) + "\n]"
    if choice == 5:  # a string built with +, a number with a sign
        text = acebench_official.render_calls(calls)
        return text.replace("='", "='' + '", 1).replace("=1", "=+1", 1)
    return json.dumps([{c["name"]: c.get("arguments")} for c in calls])  # JSON, not calls


def damage_reply(category: str, truth: Any, rng: random.Random) -> str:
    gold = acebench.gold_reply(category, truth)
    if category == "special_incomplete":
        verbatim = "; ".join(f"{acebench.INCOMPLETE_PHRASE} ({', '.join(params)}) for the api ({function})"
                             for function, params in truth.items())
        first = next(iter(truth), "f")
        options = [gold, verbatim, gold.lower(), gold.replace(first, "SomeApi"),
                   gold.replace(acebench.INCOMPLETE_PHRASE, "Missing parameters"),
                   gold.split(",")[0] + f") for the api ({first})", "Due to the limitations of the function, no.", ""]
    elif category == "special_error_param":
        values = [str(v) for vs in truth.values() for v in vs]
        options = [gold, gold.lower(), gold.replace(values[0], values[0].upper()) if values else gold,
                   gold.replace(values[0], "") if values else gold, f"{acebench.ERROR_PARAM_PHRASE} for {list(truth)}",
                   " ".join(values), ""]
    else:
        options = [gold, f"Due to {acebench.IRRELEVANT_PHRASE}, I cannot.", "Due to the limitation of the function.",
                   "Due to The Limitations Of The Function.", "[SomeApi(x='1')]", ""]
    return rng.choice(options)


# ---------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------

def _ours(rules: str, category: str, entry: dict, truth: Any, calls: list[dict], text: str) -> bool:
    return bool(acebench.check_entry(category, entry["function"], calls, text, truth, rules))


def _accuracy(category: str, verdicts: dict[str, Any]) -> float:
    if category in acebench.CONVERSATION_CATEGORIES:
        conversations: dict[str, bool] = {}
        for entry_id, ok in verdicts.items():
            key = acebench.conversation_of(entry_id)
            conversations[key] = conversations.get(key, True) and ok is True
        return sum(conversations.values()) / len(conversations)
    return sum(ok is True for ok in verdicts.values()) / len(verdicts)


def compare(official: OfficialEvaluator, data_dir: Path, trials: int, seed: int) -> dict:
    """{category: [per trial: {"acebench", "official", "clean", "differ_official", "differ_clean",
    "raises"}]}; trial 0 is the undamaged ground truth."""
    report: dict[str, list[dict]] = {}
    for category in CATEGORIES:
        entries = acebench.load_entries(data_dir, category)
        answers = acebench.load_possible_answers(data_dir, category)
        answer_rows = [{"id": e["id"], "ground_truth": answers[e["id"]]} for e in entries]
        rows = []
        for trial in range(trials + 1):
            rng = random.Random(f"{seed}:{category}:{trial}")
            calls_list, texts, variants = [], [], set()
            for entry in entries:
                truth = answers[entry["id"]]
                if category in acebench.SPECIAL_CATEGORIES:
                    calls, text = [], (acebench.gold_reply(category, truth) if trial == 0
                                       else damage_reply(category, truth, rng))
                else:
                    alternatives = truth if isinstance(truth, list) else [truth]
                    calls = acebench.gold_calls(entry["function"], truth)
                    if trial:
                        calls = damage_calls(calls, entry["function"], alternatives, rng)
                    text = acebench_official.render_calls(calls)
                    if trial and rng.random() < 0.15:
                        text = variant_text(calls, rng)
                        variants.add(entry["id"])
                calls_list.append(calls)
                texts.append(text)
            theirs = official.verdicts(category, entries, answer_rows, texts)
            whole = official.category_accuracy(category, entries, answer_rows, texts)
            row = {"acebench": _accuracy(category, theirs), "acebench_run": whole,
                   "raises": sum(v == "raises" for v in theirs.values()),
                   "text_variants": len(variants)}
            for rules in acebench.RULES:
                ours = {}
                for e, c, t in zip(entries, calls_list, texts):
                    if rules == "official" and e["id"] in variants:  # text not of our rendering
                        ours[e["id"]] = bool(acebench_official.check_text(e["function"], t, answers[e["id"]]))
                    else:
                        ours[e["id"]] = _ours(rules, category, e, answers[e["id"]], c, t)
                row[rules] = _accuracy(category, ours)
                row[f"differ_{rules}"] = sorted(i for i in ours if ours[i] != (theirs[i] is True))
            rows.append(row)
        report[category] = rows
    return report


def summarise(report: dict) -> tuple[str, dict]:
    lines = [f"{'category':40s} {'trial':>5s} {'ACEBench':>8s} {'(run)':>6s} {'official':>8s} {'clean':>8s} "
             f"{'differ(off)':>11s} {'differ(clean)':>13s} {'raises':>6s}"]
    agree = {rules: 0 for rules in acebench.RULES}
    for category, rows in report.items():
        for trial, row in enumerate(rows):
            run = "-" if row["acebench_run"] is None else f"{row['acebench_run']:.3f}"
            lines.append(f"{category:40s} {trial:5d} {row['acebench']:8.3f} {run:>6s} "
                         f"{row['official']:8.3f} {row['clean']:8.3f} "
                         f"{len(row['differ_official']):11d} {len(row['differ_clean']):13d} {row['raises']:6d}")
        damaged = rows[1:] or rows
        for rules in acebench.RULES:
            agree[rules] += all(round(r[rules], 3) == round(r["acebench"], 3) for r in damaged)
    lines.append("")
    trials = len(next(iter(report.values()))) - 1
    for rules in acebench.RULES:
        per_set = [sum(round(rows[t][rules], 3) == round(rows[t]["acebench"], 3) for rows in report.values())
                   for t in range(1, trials + 1)]
        lines.append(f"{rules} rules: categories whose accuracy equals ACEBench's on every damaged set: "
                     f"{agree[rules]} of {len(report)}; per damaged set: {per_set}")
    return "\n".join(lines), agree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, default=DEFAULT_OFFICIAL, help="ACEBench git dir or checkout")
    parser.add_argument("--data-dir", type=Path, default=acebench.default_data_dir())
    parser.add_argument("--trials", type=int, default=5, help="damaged prediction sets per category")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the per-trial report here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        official = OfficialEvaluator(args.official, Path(tmp))
        report = compare(official, args.data_dir, args.trials, args.seed)
    text, _ = summarise(report)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    differ = sum(len(r["differ_official"]) for rows in report.values() for r in rows)
    print(f"entries where the official rules and ACEBench disagree: {differ}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
