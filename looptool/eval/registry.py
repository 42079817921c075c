"""Benchmarks as declared, registered objects (in the manner of lm-evaluation-harness tasks).

A :class:`Benchmark` declares its categories (name, kind, group, language) and knows how to list
entry ids, score one category's predictions, and summarise category accuracies into the
benchmark's headline numbers. ``get_benchmark("bfcl-v3")`` / ``get_benchmark("acebench",
data_dir=...)`` build them; :func:`register_benchmark` adds more.

Which entries are scored (the ``total`` of a category):

* by default, every category with at least one readable prediction is scored against *all* its
  entries; an entry without a prediction counts as wrong and is reported. Categories without any
  prediction are "not run": they count 0 in Overall and are listed as such;
* ``categories=[...]`` scores exactly those categories, again against all their entries;
* ``ids=[...]`` (e.g. from :func:`select_subset`, the stratified subset a CPU run used) restricts
  every category to those ids, so ``total`` is the number of entries evaluated;
* ``only_predicted=True`` restricts each category to the entries that have a prediction line.
"""

from __future__ import annotations

import abc
import functools
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from looptool.eval import acebench, aggregate, bfcl
from looptool.eval.ast_checker import PASS, Verdict, check_entry, check_relevance, fail, is_call_attempt
from looptool.schema import NEED_KINDS
from looptool.eval.multi_turn import check_multi_turn
from looptool.eval.predictions import Prediction, PredictionSet


@dataclass(frozen=True)
class Category:
    name: str
    kind: str  # ast | irrelevance | relevance | multi_turn | normal | conversation | special | agent
    group: str  # the summary part it belongs to (non_live, live, multi_turn, normal, special, agent)
    language: str = "python"
    runnable: bool = True


@dataclass
class CategoryScore:
    correct: int = 0
    total: int = 0
    unit: str = "entry"  # "conversation" for ACEBench's multi-turn categories
    failures: dict[str, str] = field(default_factory=dict)  # id -> reason
    units: list[str] = field(default_factory=list)  # the ids scored (entries, or conversations), in order

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def outcomes(self) -> dict[str, bool]:
        """Scored id -> right?: what a paired comparison of two models on the same items needs."""
        return {unit: unit not in self.failures for unit in self.units}

    def to_dict(self, include_failures: bool = False) -> dict:
        out: dict[str, Any] = {"correct": self.correct, "total": self.total, "accuracy": self.accuracy}
        if self.unit != "entry":
            out["unit"] = self.unit
        if include_failures:
            out["failures"] = dict(self.failures)
        return out


@dataclass
class ScoreReport:
    benchmark: str
    categories: dict[str, CategoryScore]
    summary: dict
    problems: list[str]

    def outcomes(self) -> dict[str, dict[str, bool]]:
        """Per category, scored id -> right? (eval stages write it for the paired comparisons)."""
        return {name: score.outcomes() for name, score in self.categories.items()}

    def to_dict(self, include_failures: bool = False) -> dict:
        return {
            "benchmark": self.benchmark,
            "categories": {name: s.to_dict(include_failures) for name, s in self.categories.items()},
            "summary": self.summary,
            "problems": list(self.problems),
        }


class Benchmark(abc.ABC):
    name: str = ""
    categories: tuple[Category, ...] = ()

    def category(self, name: str) -> Category:
        for category in self.categories:
            if category.name == name:
                return category
        raise ValueError(f"{self.name} has no category {name!r}; known: {', '.join(c.name for c in self.categories)}")

    @property
    def runnable_categories(self) -> list[str]:
        return [c.name for c in self.categories if c.runnable]

    @abc.abstractmethod
    def entry_ids(self, category: str) -> list[str]:
        """Ids of a category's entries, in benchmark order."""

    @abc.abstractmethod
    def check(self, category: str, entry_id: str, prediction: Prediction) -> Verdict:
        """Score one entry's prediction."""

    @abc.abstractmethod
    def summarize(self, accuracies: Mapping[str, float]) -> dict:
        """Headline numbers from the accuracies of the categories that were run."""

    def summarize_scores(self, scores: Mapping[str, CategoryScore]) -> dict:
        """Headline numbers from the category scores; a benchmark whose scores carry more than an
        accuracy (BFCL's strict irrelevance) overrides this."""
        return self.summarize({name: score.accuracy for name, score in scores.items()})

    @abc.abstractmethod
    def entry(self, entry_id: str) -> dict:
        """The raw benchmark entry with this id."""

    @abc.abstractmethod
    def prompt(self, entry_id: str) -> tuple[list[dict], list[dict]]:
        """(tools, messages) the model is shown for an entry (a multi-turn entry's first turn)."""

    def is_multi_turn(self, entry_id: str) -> bool:
        return self.category(self._known_category(entry_id)).kind == "multi_turn"

    def sampling_units(self, category: str) -> list[list[str]]:
        """Groups of ids that are sampled and scored together (default: each entry alone)."""
        return [[i] for i in self.entry_ids(category)]

    @functools.cached_property
    def _category_by_id(self) -> dict[str, str]:
        return {i: c for c in self.runnable_categories for i in self.entry_ids(c)}

    def category_of(self, entry_id: str) -> str | None:
        return self._category_by_id.get(entry_id)

    def _known_category(self, entry_id: str) -> str:
        category = self.category_of(entry_id)
        if category is None:
            raise KeyError(f"{self.name} has no entry {entry_id!r}")
        return category

    def score_category(self, category: str, predictions: Mapping[str, Prediction],
                       ids: Sequence[str] | None = None) -> CategoryScore:
        ids = self.entry_ids(category) if ids is None else list(ids)
        score = CategoryScore(total=len(ids), units=list(ids))
        for entry_id in ids:
            prediction = predictions.get(entry_id)
            verdict = fail("no prediction") if prediction is None else self.check(category, entry_id, prediction)
            if verdict:
                score.correct += 1
            else:
                score.failures[entry_id] = verdict.reason
        return score


_REGISTRY: dict[str, Callable[..., Benchmark]] = {}


def register_benchmark(name: str) -> Callable:
    def decorate(factory: Callable[..., Benchmark]) -> Callable[..., Benchmark]:
        _REGISTRY[name] = factory
        return factory
    return decorate


def available_benchmarks() -> list[str]:
    return sorted(_REGISTRY)


def get_benchmark(name: str, **options: Any) -> Benchmark:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(available_benchmarks())}") from None
    return factory(**options)


# ---------------------------------------------------------------------------------------------
# BFCL v3
# ---------------------------------------------------------------------------------------------

def _bfcl_categories() -> tuple[Category, ...]:
    out = []
    for name in bfcl.ALL_CATEGORIES:
        if name in bfcl.MULTI_TURN_CATEGORIES:
            kind, group = "multi_turn", "multi_turn"
        elif name in bfcl.IRRELEVANCE_CATEGORIES:
            kind, group = "irrelevance", "live" if name.startswith("live") else "non_live"
        elif name in bfcl.RELEVANCE_CATEGORIES:
            kind, group = "relevance", "live"
        else:
            kind, group = "ast", "live" if name.startswith("live") else "non_live"
        out.append(Category(name, kind, group, bfcl.category_language(name)))
    return tuple(out)


@dataclass
class _IrrelevanceScore(CategoryScore):
    """An irrelevance category's official score with the strict count beside it: ``strict_failures``
    are the official passes that were failed call attempts (ast_checker.is_call_attempt)."""

    strict_failures: dict[str, str] = field(default_factory=dict)

    @property
    def strict_correct(self) -> int:
        return self.correct - len(self.strict_failures)

    @property
    def strict_accuracy(self) -> float:
        return self.strict_correct / self.total if self.total else 0.0

    def to_dict(self, include_failures: bool = False) -> dict:
        out = super().to_dict(include_failures)
        out.update(strict_correct=self.strict_correct, strict_accuracy=self.strict_accuracy)
        if include_failures:
            out["strict_failures"] = dict(self.strict_failures)
        return out


@register_benchmark("bfcl-v3")
class BFCLv3(Benchmark):
    """BFCL v3 from the bfcl-eval package. ``underscore_names``: the model was shown function
    names with dots replaced by underscores (see :func:`looptool.eval.bfcl.function_to_tool`)."""

    name = "bfcl-v3"
    categories = _bfcl_categories()

    def __init__(self, underscore_names: bool = False):
        self.underscore_names = underscore_names

    @functools.lru_cache(maxsize=None)
    def _entries(self, category: str) -> dict[str, dict]:
        return {entry["id"]: entry for entry in bfcl.iter_entries(category)}

    def entry_ids(self, category: str) -> list[str]:
        return list(self._entries(category))

    def entry(self, entry_id: str) -> dict:
        return self._entries(self._known_category(entry_id))[entry_id]

    def prompt(self, entry_id: str) -> tuple[list[dict], list[dict]]:
        return bfcl.build_prompt(self.entry(entry_id), self.underscore_names)

    def check(self, category: str, entry_id: str, prediction: Prediction) -> Verdict:
        entry = self._entries(category)[entry_id]
        kind = self.category(category).kind
        if kind == "multi_turn":
            if prediction.turns is None:
                return fail("a multi-turn entry needs 'turns'")
            return check_multi_turn(entry, bfcl.load_possible_answers(category)[entry_id], prediction.turns)
        if prediction.turns is not None:
            return fail("a single-turn entry needs 'calls', not 'turns'")
        if kind in ("irrelevance", "relevance"):
            return check_relevance(category, prediction.calls)
        answer = bfcl.load_possible_answers(category)[entry_id]
        return check_entry(category, entry["function"], prediction.calls, answer,
                           bfcl.category_language(category), self.underscore_names)

    def score_category(self, category: str, predictions: Mapping[str, Prediction],
                       ids: Sequence[str] | None = None) -> CategoryScore:
        score = super().score_category(category, predictions, ids)
        if self.category(category).kind != "irrelevance":
            return score
        # BFCL counts an output that tried to call but does not parse as an abstention (the
        # official number); the strict number does not.
        passed = [i for i in (self.entry_ids(category) if ids is None else ids) if i not in score.failures]
        attempts = {i: "a call attempt that could not be read is no abstention"
                    for i in passed if is_call_attempt(predictions[i].raw)}
        return _IrrelevanceScore(score.correct, score.total, score.unit, score.failures, score.units,
                                 strict_failures=attempts)

    def summarize(self, accuracies: Mapping[str, float], strict_accuracies: Mapping[str, float] | None = None) -> dict:
        sizes = {c: len(self._entries(c)) for c in aggregate.BFCL_LIVE}
        return aggregate.bfcl_summary(accuracies, sizes, strict_accuracies)

    def summarize_scores(self, scores: Mapping[str, CategoryScore]) -> dict:
        strict = {name: score.strict_accuracy for name, score in scores.items() if isinstance(score, _IrrelevanceScore)}
        return self.summarize({name: score.accuracy for name, score in scores.items()}, strict)


# ---------------------------------------------------------------------------------------------
# ACEBench (English)
# ---------------------------------------------------------------------------------------------

def _acebench_categories() -> tuple[Category, ...]:
    out = []
    for name in acebench.NORMAL_CATEGORIES:
        kind = "conversation" if name in acebench.CONVERSATION_CATEGORIES else "normal"
        out.append(Category(name, kind, "normal"))
    out += [Category(name, "special", "special") for name in acebench.SPECIAL_CATEGORIES]
    # Agent categories need ACEBench's simulated environment: declared, never run here.
    out += [Category(name, "agent", "agent", runnable=False) for name in acebench.AGENT_CATEGORIES]
    return tuple(out)


@dataclass
class _ACEBenchScore(CategoryScore):
    """A category's score under the benchmark's rules, with its score under the other rule set
    (reported as ``accuracy_<rules>`` / ``correct_<rules>``, e.g. ``accuracy_clean``)."""

    other_rules: str = ""
    other: CategoryScore | None = None

    def to_dict(self, include_failures: bool = False) -> dict:
        out = super().to_dict(include_failures)
        if self.other is not None:
            out[f"correct_{self.other_rules}"] = self.other.correct
            out[f"accuracy_{self.other_rules}"] = self.other.accuracy
        return out


@register_benchmark("acebench")
class ACEBench(Benchmark):
    """ACEBench English from a data directory.

    ``rules``: ``"official"`` (default) scores as ACEBench's own eval_main.py does, quirks included
    (see :mod:`looptool.eval.acebench_official`), so accuracies compare with published numbers;
    ``"clean"`` uses :mod:`looptool.eval.acebench`'s rules. Each category is scored under both: the
    report's ``accuracy`` is under ``rules``, ``accuracy_<other>`` under the other, and the summary
    adds ``overall_<other>``, ``normal_<other>``, ``special_<other>`` and says which ``rules`` ran.
    ``strict``: the clean rules also compare top-level numbers and booleans and require every
    expected parameter (ACEBench itself does neither).
    ``agent_accuracy``: an Agent score measured elsewhere; None counts Agent 0 in Overall."""

    name = "acebench"
    categories = _acebench_categories()

    def __init__(self, data_dir: str | Path | None = None, strict: bool = False, agent_accuracy: float | None = None,
                 rules: str = acebench.DEFAULT_RULES):
        if rules not in acebench.RULES:
            raise ValueError(f"acebench: unknown rules {rules!r}; known: {', '.join(acebench.RULES)}")
        self.data_dir = Path(data_dir) if data_dir is not None else acebench.default_data_dir()
        self.strict = strict
        self.agent_accuracy = agent_accuracy
        self.rules = rules
        self.other_rules = next(r for r in acebench.RULES if r != rules)
        self._other_accuracy: dict[str, float] = {}  # category -> accuracy under other_rules, last scored

    @functools.lru_cache(maxsize=None)
    def _entries(self, category: str) -> dict[str, dict]:
        return {entry["id"]: entry for entry in acebench.load_entries(self.data_dir, category)}

    def entry_ids(self, category: str) -> list[str]:
        return list(self._entries(category))

    def entry(self, entry_id: str) -> dict:
        return self._entries(self._known_category(entry_id))[entry_id]

    def prompt(self, entry_id: str) -> tuple[list[dict], list[dict]]:
        return acebench.build_prompt(self.entry(entry_id), self._known_category(entry_id))

    def sampling_units(self, category: str) -> list[list[str]]:
        if self.category(category).kind != "conversation":
            return super().sampling_units(category)
        groups: dict[str, list[str]] = {}
        for entry_id in self.entry_ids(category):
            groups.setdefault(acebench.conversation_of(entry_id), []).append(entry_id)
        return list(groups.values())

    def check_with(self, rules: str, category: str, entry_id: str, prediction: Prediction) -> Verdict:
        entry = self._entries(category)[entry_id]
        answer = acebench.load_possible_answers(self.data_dir, category)[entry_id]
        return acebench.check_entry(category, entry["function"], prediction.calls, prediction.raw, answer,
                                    rules, self.strict)

    def check(self, category: str, entry_id: str, prediction: Prediction) -> Verdict:
        return self.check_with(self.rules, category, entry_id, prediction)

    def _score(self, rules: str, category: str, predictions: Mapping[str, Prediction], ids: list[str]) -> CategoryScore:
        steps = CategoryScore(total=len(ids), units=list(ids))
        for entry_id in ids:
            prediction = predictions.get(entry_id)
            verdict = fail("no prediction") if prediction is None else self.check_with(rules, category, entry_id, prediction)
            if verdict:
                steps.correct += 1
            else:
                steps.failures[entry_id] = verdict.reason
        if self.category(category).kind != "conversation":
            return steps
        # A conversation is right only if every one of its steps is (ACEBench end-to-end accuracy).
        conversations: dict[str, list[str]] = {}
        for entry_id in ids:
            conversations.setdefault(acebench.conversation_of(entry_id), []).append(entry_id)
        score = CategoryScore(total=len(conversations), unit="conversation", units=list(conversations))
        for conversation, members in conversations.items():
            wrong = [m for m in members if m in steps.failures]
            if wrong:
                score.failures[conversation] = "; ".join(f"{m}: {steps.failures[m]}" for m in wrong)
            else:
                score.correct += 1
        return score

    def score_category(self, category: str, predictions: Mapping[str, Prediction],
                       ids: Sequence[str] | None = None) -> CategoryScore:
        ids = self.entry_ids(category) if ids is None else list(ids)
        primary = self._score(self.rules, category, predictions, ids)
        other = self._score(self.other_rules, category, predictions, ids)
        self._other_accuracy[category] = other.accuracy
        return _ACEBenchScore(primary.correct, primary.total, primary.unit, primary.failures, primary.units,
                              other_rules=self.other_rules, other=other)

    def summarize(self, accuracies: Mapping[str, float]) -> dict:
        summary = aggregate.acebench_summary(accuracies, self.agent_accuracy)
        summary["rules"] = self.rules
        if all(c in self._other_accuracy for c in accuracies):  # every category came through score_category
            other = aggregate.acebench_summary({c: self._other_accuracy[c] for c in accuracies}, self.agent_accuracy)
            for key in ("overall", "normal", "special"):
                summary[f"{key}_{self.other_rules}"] = other[key]
        return summary


# ---------------------------------------------------------------------------------------------
# Held-out LoopTool samples
# ---------------------------------------------------------------------------------------------

@register_benchmark("heldout")
class HeldOutSamples(Benchmark):
    """Seed samples set aside by ``build_samples`` (never trained on), scored by greedy exact match.

    An entry is right iff its predicted ``calls`` are the label's multiset of calls (no call for a
    text label): the binary training reward's rule, so this number moves with what GRPO optimises.
    Categories: ``call`` (the label is one or more calls) and ``no_call`` (a text label).
    """

    name = "heldout"
    categories = (Category("call", "ast", "heldout"), Category("no_call", "irrelevance", "heldout"))

    def __init__(self, path: str | Path = "data/seed/heldout.jsonl"):
        from looptool.io import read_jsonl
        from looptool.schema import Sample

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"heldout benchmark: {self.path} does not exist (stage build_samples writes it)")
        self._samples = {s.id: s for s in read_jsonl(self.path, Sample.from_dict)}

    def _category_name(self, sample: Any) -> str:
        return "call" if sample.expects_call else "no_call"

    def entry_ids(self, category: str) -> list[str]:
        self.category(category)
        return [i for i, s in self._samples.items() if self._category_name(s) == category]

    def entry(self, entry_id: str) -> dict:
        return self._samples[entry_id].to_dict()

    def prompt(self, entry_id: str) -> tuple[list[dict], list[dict]]:
        sample = self._samples[entry_id]
        return [t.to_dict() for t in sample.tools], [dict(m) for m in sample.messages]

    def check(self, category: str, entry_id: str, prediction: Prediction) -> Verdict:
        # Scored from `calls`, like every benchmark (a predictions file need not carry `raw`). As in the
        # training reward, a failed call attempt is no text reply (strict, unlike BFCL's irrelevance);
        # the reward also wants a reply that ended, which prediction lines do not record.
        from looptool.schema import Call
        from looptool.toolcall import calls_match

        label = self._samples[entry_id].label
        if isinstance(label, str) or not label:
            if prediction.calls:
                return fail(f"called {len(prediction.calls)} tool(s); the label is a text reply")
            return fail("a call attempt that does not parse; the label is a text reply") \
                if is_call_attempt(prediction.raw) else PASS
        if calls_match([Call.from_dict(c) for c in prediction.calls], label):
            return PASS
        return fail("prediction differs from the label")

    def summarize(self, accuracies: Mapping[str, float]) -> dict:
        sizes = {c: len(self.entry_ids(c)) for c in accuracies}
        total = sum(sizes.values())
        overall = sum(accuracies[c] * sizes[c] for c in accuracies) / total if total else 0.0
        return {"overall": overall}


NEED_KIND_CATEGORIES = NEED_KINDS


class _NeedKindHeldOut(HeldOutSamples):
    """A held-out seed set scored per need kind, answers after tool results apart.

    A step's category is the need its dialogue step served (``meta.need_kind``), except a text
    answer that follows tool results (the summary of a call's outcome), which is ``reply``: any model
    that makes no call gets those right, so they would inflate every need kind they belong to.
    Overall is the unweighted mean over the categories scored, so a stratified subset (the same count
    per category) and the full set are read the same way.
    """

    categories = tuple(Category(k, "irrelevance" if k in ("no_tool", "reply") else "ast", "heldout")
                       for k in (*NEED_KIND_CATEGORIES, "reply"))

    def _category_name(self, sample: Any) -> str:
        if isinstance(sample.label, str) and sample.messages and sample.messages[-1].get("role") == "tool":
            return "reply"
        kind = sample.meta.get("need_kind")
        if kind in NEED_KIND_CATEGORIES:
            return kind
        return "single_call" if sample.expects_call else "no_tool"

    def summarize(self, accuracies: Mapping[str, float]) -> dict:
        return {"overall": sum(accuracies.values()) / len(accuracies) if accuracies else 0.0}


@register_benchmark("heldout_unseen")
class HeldOutUnseen(_NeedKindHeldOut):
    """Samples over capabilities and tools no training slice or pool has (calling tools never seen)."""

    name = "heldout_unseen"

    def __init__(self, path: str | Path = "data/seed/heldout_unseen.jsonl"):
        super().__init__(path)


@register_benchmark("heldout_seen")
class HeldOutSeen(_NeedKindHeldOut):
    """New dialogues over training tools, split by dialogue from the training data."""

    name = "heldout_seen"

    def __init__(self, path: str | Path = "data/seed/heldout_seen.jsonl"):
        super().__init__(path)


# ---------------------------------------------------------------------------------------------
# Subsets and scoring
# ---------------------------------------------------------------------------------------------

def _resolve(benchmark: Benchmark | str) -> Benchmark:
    return get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark


def select_subset(benchmark: Benchmark | str, categories: Iterable[str] | None = None,
                  per_category: int = 20, seed: int = 0) -> list[str]:
    """A seeded, per-category stratified sample of entry ids (benchmark order kept).

    Each category contributes ``min(per_category, size)`` sampling units (entries; whole
    conversations for ACEBench's multi-turn categories); the draw for one category does not depend
    on which other categories are asked for.
    """
    benchmark = _resolve(benchmark)
    chosen: list[str] = []
    for category in (list(categories) if categories else benchmark.runnable_categories):
        units = benchmark.sampling_units(category)
        rng = random.Random(f"{benchmark.name}:{category}:{seed}")
        picked = sorted(rng.sample(range(len(units)), min(per_category, len(units))))
        chosen += [entry_id for index in picked for entry_id in units[index]]
    return chosen


def score_predictions(benchmark: Benchmark | str, predictions: PredictionSet,
                      categories: Iterable[str] | None = None, ids: Iterable[str] | None = None,
                      only_predicted: bool = False) -> ScoreReport:
    """Score predictions; see the module docstring for which entries count."""
    benchmark = _resolve(benchmark)
    problems = list(predictions.problems)
    id_filter = set(ids) if ids is not None else None
    if categories:
        names = list(dict.fromkeys(categories))
        for name in names:
            if not benchmark.category(name).runnable:
                raise ValueError(f"{benchmark.name} category {name!r} cannot be run here")
    else:
        source = id_filter if id_filter is not None else predictions.by_id
        present = {benchmark.category_of(i) for i in source}
        names = [c for c in benchmark.runnable_categories if c in present]
    if not names:
        problems.append("no category was scored: the predictions hold no known entry id")
    scores: dict[str, CategoryScore] = {}
    for name in names:
        category_ids = benchmark.entry_ids(name)
        if id_filter is not None:
            category_ids = [i for i in category_ids if i in id_filter]
        if only_predicted:
            category_ids = [i for i in category_ids if i in predictions.by_id]
        missing = [i for i in category_ids if i not in predictions.by_id]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            problems.append(f"{name}: {len(missing)} of {len(category_ids)} entries have no prediction "
                            f"and count as wrong ({shown})")
        scores[name] = benchmark.score_category(name, predictions.by_id, category_ids)
    summary = benchmark.summarize_scores(scores)
    return ScoreReport(benchmark.name, scores, summary, problems)
