"""`eval run` end to end on the tiny model: decode, execute multi-turn calls, score, write files."""

import json

from looptool.cli import main as cli_main
from looptool.eval import get_benchmark
from looptool.eval.runner import BenchmarkSpec, EvalRunConfig, evaluate_model, plan_ids, score_lines


def test_plan_ids_is_the_seeded_subset_or_everything():
    bfcl = get_benchmark("bfcl-v3")
    subset = plan_ids(bfcl, BenchmarkSpec("bfcl-v3", categories=["simple", "irrelevance"], per_category=3), seed=1)
    assert len(subset) == 6 and subset == plan_ids(bfcl, BenchmarkSpec("bfcl-v3", ["simple", "irrelevance"], 3), seed=1)
    assert subset != plan_ids(bfcl, BenchmarkSpec("bfcl-v3", ["simple", "irrelevance"], 3), seed=2)
    full = plan_ids(bfcl, BenchmarkSpec("bfcl-v3", categories=["java"]), seed=0)
    assert full == bfcl.entry_ids("java")


def test_score_lines_counts_gold_and_bad_lines():
    bfcl = get_benchmark("bfcl-v3")
    ids = ["irrelevance_0", "irrelevance_1"]
    report = score_lines(bfcl, [{"id": "irrelevance_0", "calls": []}, {"id": "irrelevance_1", "calls": "oops"}], ids)
    assert report.categories["irrelevance"].correct == 1 and report.categories["irrelevance"].total == 2
    assert any("irrelevance_1" in p for p in report.problems)


def test_evaluate_tiny_model_on_single_and_multi_turn(tiny_model_dir):
    specs = [BenchmarkSpec("bfcl-v3", categories=["simple", "irrelevance", "multi_turn_base"], per_category=1),
             BenchmarkSpec("acebench", categories=["special_incomplete", "normal_atom_bool"], per_category=1)]
    results = evaluate_model(tiny_model_dir, specs, EvalRunConfig(max_new_tokens=8, batch_size=2, max_steps_per_turn=1),
                             backend="hf")
    lines, report = results["bfcl-v3"]
    assert [line["id"].rsplit("_", 1)[0] for line in lines] == ["simple", "irrelevance", "multi_turn_base"]
    multi = lines[2]
    entry = get_benchmark("bfcl-v3").entry(multi["id"])
    assert len(multi["turns"]) == len(entry["question"])  # every user turn was played
    assert {c: s.total for c, s in report.categories.items()} == {"simple": 1, "irrelevance": 1, "multi_turn_base": 1}
    assert "overall" in {k.lower() for k in report.summary}
    ace_lines, ace_report = results["acebench"]
    assert set(ace_report.categories) == {"special_incomplete", "normal_atom_bool"} and all("raw" in l for l in ace_lines)


def test_cli_eval_run_writes_predictions_and_json(tiny_model_dir, tmp_path, capsys):
    out, preds = tmp_path / "report.json", tmp_path / "preds.jsonl"
    code = cli_main(["eval", "run", "--model", str(tiny_model_dir), "--benchmark", "bfcl-v3", "--categories", "irrelevance",
                     "--limit", "2", "--max-new-tokens", "4", "--backend", "hf", "--json", str(out),
                     "--predictions-out", str(preds)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["categories"]["irrelevance"]["total"] == 2
    assert len(preds.read_text().splitlines()) == 2
    assert "irrelevance" in capsys.readouterr().out


class _RecordingTokenizer:
    """Stands in for a chat template: remembers what each prompt was built from."""

    def __init__(self):
        self.prompts: list[tuple[list[dict], list[str]]] = []

    def apply_chat_template(self, messages, tools=None, tokenize=False, add_generation_prompt=True, **template_kwargs):
        self.prompts.append(([dict(m) for m in messages], [t["function"]["name"] for t in tools or []]))
        return f"prompt {len(self.prompts)}"


class _SilentEngine:
    """A model that never calls a tool: one step per turn."""

    def generate(self, prompts, config=None):
        from types import SimpleNamespace

        return [SimpleNamespace(text="I cannot do that.") for _ in prompts]


def test_miss_func_turn_sends_bfcl_prompt_and_adds_the_function_then():
    # multi_turn_miss_func_1 holds back `mv` until turn 2, whose question in the data is empty.
    from looptool.eval.runner import predict_multi_turn

    tokenizer = _RecordingTokenizer()
    line = predict_multi_turn(_SilentEngine(), tokenizer, get_benchmark("bfcl-v3"), "multi_turn_miss_func_1",
                              EvalRunConfig(max_steps_per_turn=1))
    assert len(line["turns"]) == 5 and len(tokenizer.prompts) == 5
    (_, tools0), (_, tools1), (messages2, tools2), (messages3, _), _ = tokenizer.prompts
    # bfcl_eval/constants/default_prompts.py: DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC
    assert messages2[-1] == {"role": "user",
                             "content": "I have updated some more functions you can choose from. What about now?"}
    assert [m["role"] for m in messages2] == ["user", "assistant", "user", "assistant", "user"]
    assert messages3[-1]["content"].startswith("Investigate within 'log.txt'")
    assert "mv" not in tools0 and "mv" not in tools1
    # BFCL appends the added docs to the end of the function list.
    assert tools2[-1] == "mv" and tools2[:-1] == tools1


class _TranscriptTokenizer:
    """A chat template stand-in whose prompt is the whole conversation and tool list, so a prompt
    names the exact state of its entry."""

    def apply_chat_template(self, messages, tools=None, tokenize=False, add_generation_prompt=True, **template_kwargs):
        return json.dumps({"messages": list(messages), "tools": [t["function"]["name"] for t in tools or []]},
                          sort_keys=True, default=str)


class _ScriptedEngine:
    """A deterministic model: its output is a function of the prompt alone. It calls one or two of
    the offered tools without arguments (some succeed, many return an error text) or answers in
    text; every generate call's batch size is recorded."""

    def __init__(self):
        self.batches: list[int] = []

    def generate(self, prompts, config=None):
        from types import SimpleNamespace

        self.batches.append(len(prompts))
        return [SimpleNamespace(text=self.reply(p)) for p in prompts]

    @staticmethod
    def reply(prompt: str) -> str:
        import hashlib

        h = int(hashlib.sha256(prompt.encode()).hexdigest(), 16)
        tools = json.loads(prompt)["tools"]
        if h % 4 == 0 or not tools:
            return f"All done ({h % 97})."
        calls = [{"name": tools[(h >> (8 * k)) % len(tools)], "arguments": {}} for k in range(1 + (h >> 40) % 2)]
        return "\n".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>" for c in calls)


def _play_alone_as_before(engine, tokenizer, benchmark, entry_id, config):
    """predict_multi_turn as it was before entries were batched: one entry, one step per generate call."""
    from looptool.chat import render_prompt
    from looptool.eval import multi_turn
    from looptool.eval.bfcl import entry_messages, entry_tools
    from looptool.toolcall import parse_tool_calls

    entry = benchmark.entry(entry_id)
    instances = multi_turn.make_instances(entry)
    messages, turns, raw = [], [], []
    for turn_index in range(len(entry["question"])):
        tools = entry_tools(entry, turn_index=turn_index)
        messages += entry_messages(entry, turn_index)
        steps = []
        for _ in range(config.max_steps_per_turn):
            text = engine.generate([render_prompt(tokenizer, messages, tools)], None)[0].text
            raw.append(text)
            calls = [c.to_dict() for c in parse_tool_calls(text).calls]
            if not calls:
                messages.append({"role": "assistant", "content": text})
                break
            steps.append(calls)
            results = multi_turn.execute_calls(instances, calls)
            messages.append({"role": "assistant", "content": "", "tool_calls": calls})
            messages += [{"role": "tool", "name": c["name"], "content": r} for c, r in zip(calls, results)]
        turns.append(steps)
    return {"id": entry_id, "turns": turns, "raw": "\n<|step|>\n".join(raw)}


def test_multi_turn_entries_decoded_together_match_one_at_a_time():
    from looptool.eval.runner import generate_predictions, predict_multi_turn, predict_multi_turn_entries

    bfcl = get_benchmark("bfcl-v3")
    ids = (bfcl.entry_ids("multi_turn_base")[:3] + bfcl.entry_ids("multi_turn_miss_func")[:2]
           + bfcl.entry_ids("multi_turn_miss_param")[:2])
    config = EvalRunConfig(max_steps_per_turn=3, batch_size=4)
    before_engine = _ScriptedEngine()
    before = [_play_alone_as_before(before_engine, _TranscriptTokenizer(), bfcl, i, config) for i in ids]
    alone = [predict_multi_turn(_ScriptedEngine(), _TranscriptTokenizer(), bfcl, i, config) for i in ids]
    together_engine = _ScriptedEngine()
    together = predict_multi_turn_entries(together_engine, _TranscriptTokenizer(), bfcl, ids, config)
    assert together == alone == before
    # The script plays real games: calls that succeed and fail, several steps in a turn, text answers.
    steps = [step for line in before for turn in line["turns"] for step in turn]
    assert any(len(turn) > 1 for line in before for turn in line["turns"]) and len(steps) > 2 * len(ids)
    assert any("All done" in line["raw"] for line in before)
    # One generate call per round, holding every unfinished entry; far fewer calls than steps.
    assert together_engine.batches[0] == len(ids) and len(together_engine.batches) < len(before_engine.batches) / 3
    assert sum(together_engine.batches) == sum(before_engine.batches)
    # generate_predictions takes this path too, with single-turn entries around them in any order.
    mixed = [ids[0], "irrelevance_0", *ids[1:]]
    lines = generate_predictions(_ScriptedEngine(), _TranscriptTokenizer(), bfcl, mixed, config)
    assert [line["id"] for line in lines] == mixed and [lines[0], *lines[2:]] == before


def test_multi_turn_with_no_steps_per_turn_still_plays_every_turn():
    from looptool.eval.runner import predict_multi_turn_entries

    bfcl = get_benchmark("bfcl-v3")
    ids = bfcl.entry_ids("multi_turn_base")[:2]
    engine = _ScriptedEngine()
    lines = predict_multi_turn_entries(engine, _TranscriptTokenizer(), bfcl, ids, EvalRunConfig(max_steps_per_turn=0))
    assert [len(line["turns"]) for line in lines] == [len(bfcl.entry(i)["question"]) for i in ids]
    assert engine.batches == [] and all(line["raw"] == "" for line in lines)
