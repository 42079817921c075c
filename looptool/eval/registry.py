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
from looptool.eval.ast_checker import PASS, Verdict, check_entry, check_relevance, fail
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

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

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
        score = CategoryScore(total=len(ids))
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

    def summarize(self, accuracies: Mapping[str, float]) -> dict:
        sizes = {c: len(self._entries(c)) for c in aggregate.BFCL_LIVE}
        return aggregate.bfcl_summary(accuracies, sizes)


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


@register_benchmark("acebench")
class ACEBench(Benchmark):
    """ACEBench English from a data directory. ``strict``: also compare top-level numbers and
    booleans and require every expected parameter (ACEBench itself does neither).
    ``agent_accuracy``: an Agent score measured elsewhere; None counts Agent 0 in Overall."""

    name = "acebench"
    categories = _acebench_categories()

    def __init__(self, data_dir: str | Path | None = None, strict: bool = False, agent_accuracy: float | None = None):
        self.data_dir = Path(data_dir) if data_dir is not None else acebench.default_data_dir()
        self.strict = strict
        self.agent_accuracy = agent_accuracy

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

    def check(self, category: str, entry_id: str, prediction: Prediction) -> Verdict:
        entry = self._entries(category)[entry_id]
        answer = acebench.load_possible_answers(self.data_dir, category)[entry_id]
        if self.category(category).kind == "special":
            return acebench.check_special(category, prediction.raw, answer)
        return acebench.check_normal(entry["function"], prediction.calls, answer, self.strict)

    def score_category(self, category: str, predictions: Mapping[str, Prediction],
                       ids: Sequence[str] | None = None) -> CategoryScore:
        steps = super().score_category(category, predictions, ids)
        if self.category(category).kind != "conversation":
            return steps
        # A conversation is right only if every one of its steps is (ACEBench end-to-end accuracy).
        conversations: dict[str, list[str]] = {}
        for entry_id in (self.entry_ids(category) if ids is None else ids):
            conversations.setdefault(acebench.conversation_of(entry_id), []).append(entry_id)
        score = CategoryScore(total=len(conversations), unit="conversation")
        for conversation, members in conversations.items():
            wrong = [m for m in members if m in steps.failures]
            if wrong:
                score.failures[conversation] = "; ".join(f"{m}: {steps.failures[m]}" for m in wrong)
            else:
                score.correct += 1
        return score

    def summarize(self, accuracies: Mapping[str, float]) -> dict:
        return aggregate.acebench_summary(accuracies, self.agent_accuracy)


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
        # Scored from `calls`, like every benchmark (a predictions file need not carry `raw`). The
        # training reward also wants a text reply that ended; prediction lines do not record that.
        from looptool.schema import Call
        from looptool.toolcall import calls_match

        label = self._samples[entry_id].label
        if isinstance(label, str) or not label:
            return fail(f"called {len(prediction.calls)} tool(s); the label is a text reply") if prediction.calls else PASS
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
    summary = benchmark.summarize({name: score.accuracy for name, score in scores.items()})
    return ScoreReport(benchmark.name, scores, summary, problems)
