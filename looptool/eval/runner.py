"""Generate benchmark predictions with the policy engine, then score them.

Single-turn entries are decoded together in length-sorted batches. A BFCL multi-turn entry is
played out turn by turn: the model's calls run against the benchmark's own API classes and the
results go back into the conversation, until the model answers without a call or the step limit
of the turn is reached. Each turn's tools and user message come from :mod:`looptool.eval.bfcl`, so a
``miss_func`` turn that adds functions back brings BFCL's notice and the longer tool list. The
multi-turn entries advance in lock-step: the current steps of all unfinished entries are decoded
together in one batched call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from looptool.chat import render_prompt
from looptool.eval import multi_turn
from looptool.eval.bfcl import entry_messages, entry_tools
from looptool.eval.predictions import PredictionSet, parse_prediction
from looptool.eval.registry import Benchmark, ScoreReport, score_predictions
from looptool.params import ParamsError
from looptool.toolcall import parse_tool_calls, prompt_opens_thinking


@dataclass
class EvalRunConfig:
    """How to decode benchmark entries."""

    max_new_tokens: int = field(default=96, metadata={"help": "Generation limit per model step."})
    batch_size: int = field(default=16, metadata={
        "help": "Prompts per generate call (single-turn entries, and the current steps of multi-turn entries)."})
    max_steps_per_turn: int = field(default=4, metadata={"help": "Model steps per user turn in multi-turn entries."})
    stop_after_tool_call: bool = field(default=False, metadata={
        "help": "Stop once text after the last </tool_call> is not another call; the pipeline keeps it off, so "
                "evaluation stops as GRPO rollouts do (looptool.llm.policy.GenerationSettings)."})


def _default_benchmarks() -> dict[str, dict[str, Any]]:
    # Sized for the 2-core CPU main job (params.yaml says why); public benchmarks on the final models only.
    return {
        "bfcl-v3": {"per_category": 20, "models": "final",
                    "categories": ["simple", "multiple", "parallel", "irrelevance", "live_simple", "live_irrelevance"]},
        "acebench": {"data_dir": None, "per_category": 10, "models": "final",
                     "categories": ["normal_single_turn_single_function", "normal_single_turn_parallel_function",
                                    "special_incomplete", "special_irrelevant"]},
        "heldout_unseen": {"path": "data/seed/heldout_unseen.jsonl", "per_category": 43},
        "heldout_seen": {"path": "data/seed/heldout_seen.jsonl", "per_category": 4},
    }


@dataclass
class EvalConfig:
    """params.yaml ``eval``: every benchmark run on each model (base, SFT, every arm and round). The
    generation limit is the pipeline's one budget (``generation.max_new_tokens``)."""

    backend: str = field(default="auto", metadata={"help": "Policy engine: auto (vLLM when installed + CUDA) | hf | vllm."})
    seed: int = field(default=0, metadata={"help": "Seed of the stratified entry subsets (the same ids for every model)."})
    batch_size: int = field(default=16, metadata={
        "help": "Prompts per generate call (single-turn entries, and the current steps of multi-turn entries)."})
    max_steps_per_turn: int = field(default=4, metadata={"help": "Model steps per user turn in multi-turn entries."})
    benchmarks: dict[str, dict[str, Any]] = field(default_factory=_default_benchmarks, metadata={
        "help": "Benchmark name -> {per_category (null = all), categories (null = all), and the benchmark's "
                "options, e.g. data_dir, path, rules}."})

    def specs(self, final: bool = True) -> list["BenchmarkSpec"]:
        """The benchmarks of one model; ``final`` = base, SFT or an arm's last round (see ``models``)."""
        specs = [BenchmarkSpec.from_params(name, values) for name, values in self.benchmarks.items()]
        return [s for s in specs if final or s.models == "all"]

    def run_config(self, generation: Any) -> EvalRunConfig:
        """Decoding settings with the pipeline's budget (a ``GenerationSettings``)."""
        return EvalRunConfig(generation.max_new_tokens, self.batch_size, self.max_steps_per_turn,
                             stop_after_tool_call=False)


def _prediction(entry_id: str, text: str, in_thought: bool = False) -> dict[str, Any]:
    """``in_thought``: the prompt opened a think block (the output's thought is stripped first)."""
    parsed = parse_tool_calls(text, in_thought)
    line = {"id": entry_id, "calls": [c.to_dict() for c in parsed.calls], "raw": text}
    if not parsed.ok:
        line["parse_error"] = parsed.error
    if parsed.thinking:
        line["thinking"] = True
    return line


def predict_single_turn(engine: Any, tokenizer: Any, benchmark: Benchmark, ids: Sequence[str], config: EvalRunConfig) -> list[dict]:
    from looptool.llm.policy import DecodeConfig

    prompts = []
    for entry_id in ids:
        tools, messages = benchmark.prompt(entry_id)
        prompts.append(render_prompt(tokenizer, messages, tools))
    decode = DecodeConfig(max_new_tokens=config.max_new_tokens, batch_size=config.batch_size,
                          stop_after_tool_call=config.stop_after_tool_call, progress=True)
    outputs = engine.generate(prompts, decode)
    return [_prediction(entry_id, out.text, prompt_opens_thinking(prompt))
            for entry_id, out, prompt in zip(ids, outputs, prompts)]


class _MultiTurnPlay:
    """One BFCL multi-turn entry played out step by step: ``prompt()`` is the model's next input,
    ``advance(text)`` takes its output (runs its calls, moves to the next step or turn).

    Per user turn: the turn's tools and messages are added, then up to ``max_steps_per_turn`` model
    steps; a step without a call ends the turn, a step with calls gets their results as tool
    messages. The API instances carry their state across turns."""

    def __init__(self, tokenizer: Any, benchmark: Benchmark, entry_id: str, config: EvalRunConfig):
        self.entry_id, self.tokenizer, self.max_steps = entry_id, tokenizer, config.max_steps_per_turn
        self.entry = benchmark.entry(entry_id)
        self.instances = multi_turn.make_instances(self.entry)
        self.messages: list[dict[str, Any]] = []
        self.turns: list[list[list[dict]]] = []
        self.raw: list[str] = []
        self.thinking = 0  # steps whose output opened a think block
        self._prompt = ""
        self.turn_index = -1
        self.finished = False
        self._next_turn()

    def _next_turn(self) -> None:
        while True:
            self.turn_index += 1
            if self.turn_index >= len(self.entry["question"]):
                self.finished = True
                return
            self.tools = entry_tools(self.entry, turn_index=self.turn_index)
            self.messages += entry_messages(self.entry, self.turn_index)
            self.steps: list[list[dict]] = []
            self.turns.append(self.steps)
            if self.max_steps > 0:
                return

    def prompt(self) -> str:
        self._prompt = render_prompt(self.tokenizer, self.messages, self.tools)
        return self._prompt

    def advance(self, text: str) -> None:
        self.raw.append(text)
        parsed = parse_tool_calls(text, prompt_opens_thinking(self._prompt))
        self.thinking += parsed.thinking
        calls = [c.to_dict() for c in parsed.calls]
        if not calls:
            self.messages.append({"role": "assistant", "content": parsed.answer})  # the thought stays out of the history
            self._next_turn()
            return
        self.steps.append(calls)
        results = multi_turn.execute_calls(self.instances, calls)
        self.messages.append({"role": "assistant", "content": "", "tool_calls": calls})
        self.messages += [{"role": "tool", "name": c["name"], "content": r} for c, r in zip(calls, results)]
        if len(self.steps) >= self.max_steps:
            self._next_turn()

    def line(self) -> dict:
        line = {"id": self.entry_id, "turns": self.turns, "raw": "\n<|step|>\n".join(self.raw)}
        return {**line, "thinking": True} if self.thinking else line


def predict_multi_turn_entries(engine: Any, tokenizer: Any, benchmark: Benchmark, entry_ids: Sequence[str],
                               config: EvalRunConfig, progress: bool = False) -> list[dict]:
    """Play several multi-turn entries in lock-step: each round decodes the next step of every
    unfinished entry in one ``engine.generate`` call (batched by ``config.batch_size``), then hands
    each output to its entry. The entries are independent, so each gets the prediction it would
    get played alone (up to the engine's batching, which greedy decoding does not change)."""
    from looptool.llm.policy import DecodeConfig

    decode = DecodeConfig(max_new_tokens=config.max_new_tokens, batch_size=config.batch_size,
                          stop_after_tool_call=config.stop_after_tool_call, progress=False)
    plays = [_MultiTurnPlay(tokenizer, benchmark, entry_id, config) for entry_id in entry_ids]
    bar = tqdm(total=len(plays), desc=f"{benchmark.name} multi-turn", unit="entry", leave=False, disable=not progress)
    bar.update(sum(play.finished for play in plays))
    try:
        while active := [play for play in plays if not play.finished]:
            outputs = engine.generate([play.prompt() for play in active], decode)
            for play, output in zip(active, outputs):
                play.advance(output.text)
            bar.update(sum(play.finished for play in active))
    finally:
        bar.close()
    return [play.line() for play in plays]


def predict_multi_turn(engine: Any, tokenizer: Any, benchmark: Benchmark, entry_id: str, config: EvalRunConfig) -> dict:
    """One multi-turn entry on its own (see ``predict_multi_turn_entries``)."""
    return predict_multi_turn_entries(engine, tokenizer, benchmark, [entry_id], config)[0]


def generate_predictions(engine: Any, tokenizer: Any, benchmark: Benchmark, ids: Sequence[str], config: EvalRunConfig) -> list[dict]:
    """Prediction lines (DESIGN.md §3 format) for the given entry ids, in the given order."""
    single = [i for i in ids if not benchmark.is_multi_turn(i)]
    lines = {line["id"]: line for line in predict_single_turn(engine, tokenizer, benchmark, single, config)} if single else {}
    multi = [i for i in ids if benchmark.is_multi_turn(i)]
    if multi:
        lines.update((line["id"], line) for line in
                     predict_multi_turn_entries(engine, tokenizer, benchmark, multi, config, progress=True))
    return [lines[i] for i in ids]


def score_lines(benchmark: Benchmark, lines: Sequence[dict], ids: Sequence[str]) -> ScoreReport:
    """Score prediction lines held in memory against exactly ``ids``."""
    predictions = PredictionSet()
    for line in lines:
        try:
            prediction = parse_prediction(line)
        except ValueError as err:
            predictions.problems.append(f"{line.get('id')}: {err}")
            continue
        predictions.by_id[prediction.id] = prediction
    return score_predictions(benchmark, predictions, ids=ids)


BENCHMARK_MODELS = ("all", "final")


@dataclass
class BenchmarkSpec:
    """One benchmark of an evaluation: which categories, and how many entries of each."""

    name: str
    categories: list[str] | None = None  # None: every category that can run here
    per_category: int | None = None  # None: every entry (the full benchmark)
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {"data_dir": ...} for ACEBench
    # all: every evaluated model; final: the base model, SFT and each arm's last round only (the
    # public benchmarks are the costly ones, and intermediate rounds are read on the held-out sets).
    models: str = "all"

    @classmethod
    def from_params(cls, name: str, values: dict[str, Any] | None) -> "BenchmarkSpec":
        values = dict(values or {})
        models = values.pop("models", "all")
        if models not in BENCHMARK_MODELS:
            raise ParamsError(f"params.yaml eval.benchmarks.{name}.models must be one of {BENCHMARK_MODELS}, got {models!r}")
        return cls(name=name, categories=values.pop("categories", None), per_category=values.pop("per_category", None),
                   options={k: v for k, v in values.items() if v is not None}, models=models)


def plan_ids(benchmark: Benchmark, spec: BenchmarkSpec, seed: int) -> list[str]:
    from looptool.eval.registry import select_subset

    categories = spec.categories or benchmark.runnable_categories
    if spec.per_category is None:
        return [i for c in categories for i in benchmark.entry_ids(c)]
    return select_subset(benchmark, categories, per_category=spec.per_category, seed=seed)


def evaluate_model(model_dir: Any, specs: Sequence[BenchmarkSpec], config: EvalRunConfig, seed: int = 0,
                   backend: str = "auto", compute: Any = None) -> dict[str, tuple[list[dict], ScoreReport]]:
    """Decode and score one model on each benchmark: {name: (prediction lines, report)}.
    ``compute``: a looptool.models.ComputeConfig for the HF engine (its default when None)."""
    from looptool.eval.registry import get_benchmark
    from looptool.llm.policy import load_policy_engine

    engine = load_policy_engine(model_dir, backend=backend, compute=compute)
    tokenizer = engine.tokenizer
    results = {}
    for spec in specs:
        benchmark = get_benchmark(spec.name, **spec.options)
        ids = plan_ids(benchmark, spec, seed)
        if not ids:
            print(f"eval: {spec.name} has no entries to evaluate (categories {spec.categories or 'all'}); skipped")
            continue
        lines = generate_predictions(engine, tokenizer, benchmark, ids, config)
        results[spec.name] = (lines, score_lines(benchmark, lines, ids))
    return results
