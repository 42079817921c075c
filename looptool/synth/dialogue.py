"""Multi-agent dialogue simulation over a sampled tool subset (LoopTool seed stage, issue #5).

Four agents, all one generator model behind the OpenAI-compatible client, all schema-constrained:

* **planner** — writes the plan: for each user need the exact argument values of the calls it
  takes (and, for a no-tool need, its topic). The user's goal for a call need is the tool's own
  description: every word the planner writes costs a grammar-checked token, the slowest part of
  the embedded server (DESIGN.md §5), so it writes only what cannot be derived. The plan's skeleton (how many needs, each need's kind and tools) is drawn
  here with a seeded RNG, so the mix of kinds is a parameter, not the model's whim; the schema
  then pins kinds and tool names and takes each call's arguments from the tool's own schema.
  Kinds: ``single_call``, ``parallel`` (two calls at once), ``multi_step`` (a second call after the
  first result), ``needs_clarification`` (the user leaves out a required value; the assistant must
  ask for it, then call), ``no_tool`` (chit-chat or a request no tool serves).
* **user** — one message per turn in a sampled style. Its schema is a pattern that contains the
  need's argument values verbatim, so every value a correct call needs is in the conversation.
  For ``needs_clarification`` one required value is withheld until the assistant asks.
* **assistant** — on a call step its output must be ``{"tool_calls": [...]}`` with names from the
  subset and arguments valid for the named tool (see :mod:`looptool.synth.schemas`); it draws
  ``k`` samples and keeps the majority call set (self-consistency vote, ties to the lowest sample
  index). On a text step (clarifying question, answer after results, no-tool reply) it writes text.
* **tool** — simulates each call's JSON result from the call and the tool's description; with a
  configured probability it is told to fail, which yields an error result.

Determinism and resumption: every request's seed is derived from (run seed, dialogue index, turn
number) and its ``sample_index`` is the sample/retry number, and all random choices come from an
RNG seeded by (run seed, dialogue index). A dialogue is therefore the same whatever the order or
concurrency, and a re-run after a kill answers every finished request from the client's cache.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import random
import re
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from tqdm.auto import tqdm

from looptool.llm.client import ChatRequest, ChatResult
from looptool.schema import NEED_KINDS, Call, Tool
from looptool.synth.schemas import arguments_schema, call_schema, mention_pattern, mentionable, text_schema
from looptool.synth.rules import check_calls
from looptool.synth.validate import PoolEntry
from looptool.synth.values import missing_mentions, value_texts
from looptool.toolcall import call_key, render_calls

CALL_KINDS = ("single_call", "parallel", "multi_step", "needs_clarification")
PROGRAM_AGENTS = {"planner": "program", "user": "template", "assistant": "oracle", "tool": "program"}
LLM_AGENTS = {"planner": "llm", "user": "llm", "assistant": "llm", "tool": "llm"}


@dataclass
class SimulationConfig:
    """Knobs of the dialogue simulation (params.yaml section ``simulate``)."""

    dialogues: int = field(default=560, metadata={
        "help": "Dialogues to simulate (program planner: over the training capabilities; they become the held-out-seen, "
                "round-1 and pool samples)."})
    # 2-3 tools: a tool schema costs ~220 prompt tokens (SmolLM2 tokenizer, measured: 3 tools 795, 5 tools 1115
    # tokens per prompt), and SFT and GRPO cost grows with prompt length on the CPU.
    tools_per_dialogue: list[int] = field(default_factory=lambda: [2, 3],
                                          metadata={"help": "[min, max] size of the tool subset each dialogue sees."})
    needs_per_dialogue: list[int] = field(default_factory=lambda: [1, 2],
                                          metadata={"help": "[min, max] user needs the planner writes per dialogue."})
    need_kind_weights: dict[str, float] = field(
        # no_tool yields one sample per need (the others two or three), hence its weight.
        default_factory=lambda: {"single_call": 3, "parallel": 1.5, "multi_step": 1.2, "needs_clarification": 1.2,
                                 "no_tool": 2.2},
        metadata={"help": "Relative frequency of each need kind in plans."})
    user_styles: list[str] = field(
        default_factory=lambda: ["brief and direct", "polite and chatty", "casual, lower-case", "formal and precise"],
        metadata={"help": "Writing styles the user agent is told to use (one sampled per dialogue)."})
    assistant_samples: int = field(default=2, metadata={"help": "k: assistant samples per call step, majority vote."})
    assistant_temperature: float = field(default=0.7, metadata={"help": "Sampling temperature of the k assistant samples."})
    agent_temperature: float = field(default=0.4, metadata={"help": "Temperature of planner, user and tool agents."})
    turn_retries: int = field(default=1, metadata={"help": "Extra attempts when an agent's reply fails (bad JSON, truncated)."})
    max_messages: int = field(default=16, metadata={"help": "Stop a dialogue once it holds this many messages."})
    max_rejected_turns: int = field(default=2, metadata={"help": "Stop a dialogue after this many turns failed all attempts."})
    tool_error_rate: float = field(default=0.05, metadata={"help": "Probability that a simulated tool call returns an error."})
    max_string: int = field(default=48, metadata={"help": "maxLength of free strings in generated arguments."})
    max_tokens: dict[str, int] = field(
        default_factory=lambda: {"planner": 260, "user": 100, "assistant": 120, "tool": 100, "reply": 80},
        metadata={"merge": True, "help": "Completion token limits per agent; a reply that hits its limit is a failed turn."})
    concurrency: int = field(default=1, metadata={"help": "Dialogues simulated at once (threads sharing the client)."})
    assistant_sees_plan: bool = field(
        default=True,
        metadata={"help": "Show the assistant agent the planned calls as a hint (the label is still checked: its "
                          "values must have been said by the user). Weak generators rarely copy values otherwise."})
    restrict_calls_to_plan: bool = field(
        default=True,
        metadata={"help": "Constrain a call step's tool names to the tools the plan put there (the whole subset is "
                          "still offered in the prompt and the sample); false lets the assistant pick any subset tool."})

    # The embedded 135M model cannot play the paper's agents (8 API requests -> 3 valid APIs, 3 dialogues -> 0
    # verified, measured), so the default is programs. The paper's setting, with a strong generator:
    # {planner: llm, user: llm, assistant: llm, tool: llm}.
    agents: dict[str, str] = field(
        default_factory=lambda: dict(PROGRAM_AGENTS),
        metadata={"merge": True, "help": "Backend per agent: planner program|llm, user template|llm, assistant oracle|llm, "
                          "tool program|llm (looptool.synth.program_agents). planner llm runs the LLM simulator, "
                          "whose other agents are the LLM too."})
    unseen_dialogues: int = field(default=80, metadata={
        "help": "Program planner: dialogues over the held-out capabilities (heldout_unseen), one need each, need "
                "kinds in turn."})
    unseen_share: float = field(default=0.15, metadata={
        "help": "Share of each domain's capabilities set aside for heldout_unseen (no training sample uses them)."})
    relative_date_rate: float = field(default=0.4, metadata={
        "help": "Template user: share of dates said relative to the system turn's date ('next Friday')."})
    enum_paraphrase_rate: float = field(default=0.7, metadata={
        "help": "Template user: share of enum values said by a paraphrase rather than verbatim."})
    noise: dict[str, Any] = field(default_factory=lambda: {
        "rate": 0.1, "types": {"drop_optional": 1, "wrong_enum": 1, "swap_args": 1, "near_miss_tool": 1,
                               "text_for_call": 0.5, "call_for_text": 0.5}}, metadata={"merge": True,
        "help": "Oracle as a noisy annotator: rate per assistant step and relative weights of the mistake types "
                "(looptool.synth.noise.NOISE_TYPES); the clean label stays in the sample's meta."})
    # About 2 s per reworded turn on the embedded server, hence a small share.
    paraphrase: dict[str, Any] = field(default_factory=lambda: {"rate": 0.03, "max_tokens": 80, "temperature": 0.7},
                                       metadata={"merge": True, "help": "LLM rewording of a seeded share of template user turns; "
                                                         "a rewording that loses a value is rejected, named."})

    def __post_init__(self) -> None:
        allowed = {"planner": ("program", "llm"), "user": ("template", "llm"), "assistant": ("oracle", "llm"),
                   "tool": ("program", "llm")}
        agents = {**PROGRAM_AGENTS, **(self.agents or {})}
        bad = {k: v for k, v in agents.items() if k not in allowed or v not in allowed[k]}
        if bad:
            raise ValueError(f"simulate.agents: unknown agent or backend {bad}; allowed {allowed}")
        if agents["planner"] == "llm" and any(agents[k] != "llm" for k in ("user", "assistant", "tool")):
            raise ValueError("simulate.agents: the LLM planner runs the LLM simulator, whose user, assistant and tool "
                             "are the LLM too; set planner: program to mix program and LLM agents")
        self.agents = agents
        unknown = sorted(set(self.need_kind_weights) - set(NEED_KINDS))
        if unknown:
            raise ValueError(f"unknown need kinds {unknown}; known {NEED_KINDS}")
        if self.assistant_samples < 1:
            raise ValueError("assistant_samples must be >= 1")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> "SimulationConfig":
        """From the ``simulate`` section (unknown keys rejected; max_tokens etc. merged over the defaults)."""
        from looptool.params import config_from_mapping

        return config_from_mapping(cls, values, "simulate")


def _stable_int(*parts: Any) -> int:
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:8], 16)


# Prompt phrases a weak model copies into its message; such a message is cut before them.
PROMPT_ECHOES = ("Mention these values", "Your goal:", "Your style:", "Write only your next message")


def clean_text(text: str) -> str:
    """First line of a free-text reply, without a role prefix, wrapping quotes or copied prompt text."""
    for phrase in PROMPT_ECHOES:
        text = text.split(phrase)[0]
    text = next((line.strip() for line in text.strip().splitlines() if line.strip()), "")
    text = re.sub(r"^(user|assistant|you)\s*:\s*", "", text, flags=re.I).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


# ------------------------------------------------------------------------------------- plans
@dataclass
class NeedSkeleton:
    kind: str
    tools: list[str]  # planned tool per call, in order (parallel: the same tool twice)
    omit: str | None = None  # needs_clarification: the required parameter the user leaves out


def plan_skeleton(rng: random.Random, tools: list[Tool], cfg: SimulationConfig) -> list[NeedSkeleton]:
    kinds = [k for k in NEED_KINDS if cfg.need_kind_weights.get(k, 0) > 0]
    weights = [cfg.need_kind_weights[k] for k in kinds]
    needs = []
    for _ in range(rng.randint(*cfg.needs_per_dialogue)):
        kind = rng.choices(kinds, weights)[0]
        tool = rng.choice(tools)
        if kind == "multi_step" and len(tools) < 2:
            kind = "single_call"
        if kind == "needs_clarification" and not tool.parameters.get("required"):
            kind = "single_call"
        if kind == "parallel":
            needs.append(NeedSkeleton(kind, [tool.name, tool.name]))
        elif kind == "multi_step":
            first, second = rng.sample(tools, 2)
            needs.append(NeedSkeleton(kind, [first.name, second.name]))
        elif kind == "needs_clarification":
            needs.append(NeedSkeleton(kind, [tool.name], omit=rng.choice(tool.parameters["required"])))
        elif kind == "no_tool":
            needs.append(NeedSkeleton(kind, []))
        else:
            needs.append(NeedSkeleton(kind, [tool.name]))
    return needs


def planner_schema(skeleton: list[NeedSkeleton], tools: dict[str, Tool], max_string: int) -> dict[str, Any]:
    items = []
    for need in skeleton:
        props: dict[str, Any] = {"kind": {"const": need.kind}}
        if not need.tools:
            props["topic"] = text_schema()
        if need.tools:
            calls = []
            for name in need.tools:
                args = arguments_schema(tools[name], max_string=max_string)
                # The plan states every required value (the user must be able to give it).
                calls.append({"type": "object", "properties": {"tool": {"const": name}, "arguments": args},
                              "required": ["tool", "arguments"], "additionalProperties": False})
            props["calls"] = {"type": "array", "prefixItems": calls, "items": False,
                              "minItems": len(calls), "maxItems": len(calls)}
        items.append({"type": "object", "properties": props, "required": list(props), "additionalProperties": False})
    return {"type": "object",
            "properties": {"needs": {"type": "array", "prefixItems": items, "items": False,
                                     "minItems": len(items), "maxItems": len(items)}},
            "required": ["needs"], "additionalProperties": False}


def describe_tools(tools: list[Tool]) -> str:
    lines = []
    for t in tools:
        params = ", ".join(
            f"{k}{'*' if k in t.parameters.get('required', []) else ''}: {v.get('type', 'any') if isinstance(v, dict) else 'any'}"
            for k, v in t.parameters.get("properties", {}).items()
        )
        lines.append(f"- {t.name}({params}): {t.description}")
    return "\n".join(lines)


KIND_EXPLANATIONS = {
    "single_call": "one request served by one call",
    "parallel": "two requests of the same kind asked together (two calls at once)",
    "multi_step": "a task needing the first tool, then the second",
    "needs_clarification": "a request that needs one call",
    "no_tool": "small talk or a question no tool can answer",
}


# ------------------------------------------------------------------------------------ dialogues
def for_server(transcript: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transcript as plain chat messages any OpenAI-compatible server accepts.

    Calls become Hermes-style ``<tool_call>`` text (the format the policy is trained on) and tool
    results become user-side text: llama-cpp-python's server rejects assistant ``tool_calls``
    without OpenAI ids, and the GGUF chat templates of small models know no "tool" role.
    """
    out = []
    for m in transcript:
        if m.get("tool_calls"):
            out.append({"role": "assistant", "content": render_calls(Call.from_dict(c) for c in m["tool_calls"])})
        elif m["role"] == "tool":
            out.append({"role": "user", "content": f"[result of {m.get('name')}] {m['content']}"})
        else:
            out.append({"role": m["role"], "content": m.get("content") or ""})
    return out


@dataclass
class Turn:
    """Bookkeeping for one assistant message (kept beside the messages, by message index)."""

    need: int
    expected: str  # "call" or "text"
    planned_tools: list[str] = field(default_factory=list)
    votes: int = 1
    agreement: float = 1.0


class DialogueFailed(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class DialogueSimulator:
    """Simulates dialogues over a tool pool with one client (thread-safe: one instance per run)."""

    def __init__(self, client: Any, pool: list[PoolEntry], cfg: SimulationConfig, seed: int):
        self.client = client
        self.pool = pool
        self.cfg = cfg
        self.seed = seed
        self.stop = threading.Event()  # set when the run is aborted: no new requests after it

    # ------------------------------------------------------------------------------- requests
    def _ask(self, state: dict[str, Any], role: str, messages: list[dict], schema: dict | None, temperature: float,
             samples: int = 1, accept: Any = None, first_sample: int = 0) -> list[ChatResult]:
        """``samples`` requests for one turn, retried as a whole when none succeeds.

        ``schema=None`` asks for free text (no grammar: about five times faster on llama.cpp, whose
        grammar check runs over the whole vocabulary every token). ``accept(result)`` may return a
        reason to discard a successful reply (e.g. a user message that leaves out a planned value).
        """
        turn = state["turn"]
        state["turn"] += 1
        base_seed = _stable_int("turn", self.seed, state["index"], turn) % (2**31 - 1)
        results: list[ChatResult] = []
        for attempt in range(self.cfg.turn_retries + 1):
            if self.stop.is_set():
                raise DialogueFailed("stopped", "the run was aborted")
            requests = [
                ChatRequest(messages=messages, schema=schema, schema_name=role, temperature=temperature,
                            max_tokens=self.cfg.max_tokens[role], seed=base_seed,
                            sample_index=first_sample + attempt * samples + i)
                for i in range(samples)
            ]
            results = self.client.chat_many(requests, concurrency=samples, progress=False)
            state["requests"] += len(requests)
            good = []
            for r in results:
                why = None if not r.ok or accept is None else accept(r)
                if r.ok and why is None:
                    good.append(r)
                elif r.ok:
                    r.ok, r.error_kind, r.error = False, why, why
            if good:
                return good
            state["failures"].extend(r.error_kind or "failed" for r in results)
        raise DialogueFailed(f"{role}_failed", "; ".join(sorted({r.error or "" for r in results}))[:300])

    # ------------------------------------------------------------------------------- agents
    def plan(self, state, tools: list[Tool], skeleton: list[NeedSkeleton]) -> list[dict[str, Any]]:
        by_name = {t.name: t for t in tools}
        lines = [f"Tools:\n{describe_tools(tools)}", "", "Write a plan with these user needs, in order:"]
        for i, need in enumerate(skeleton, 1):
            what = KIND_EXPLANATIONS[need.kind]
            lines.append(f"{i}. {need.kind}: {what}" + (f" using {' then '.join(need.tools)}" if need.tools else ""))
        lines.append("For each call write the exact argument values: realistic, specific values (names, dates, "
                     "amounts with units, ids), never placeholders. For a no-tool need write a short topic.")
        messages = [{"role": "system", "content": "You plan realistic conversations between a user and an assistant that can call tools."},
                    {"role": "user", "content": "\n".join(lines)}]
        schema = planner_schema(skeleton, by_name, self.cfg.max_string)
        reply = self._ask(state, "planner", messages, schema, self.cfg.agent_temperature)[0].parsed
        return reply["needs"]

    def user_message(self, state, goal: str, values: list[str], style: str, transcript: list[dict],
                     extra: str = "") -> str:
        """The user's next message; it must contain every value in ``values`` verbatim.

        Free text first (fast); if a value is missing, a schema whose pattern spells the values
        out forces them in (slow, but only on that fallback).
        """
        history = "\n".join(f"{m['role']}: {m['content'] or json.dumps(m.get('tool_calls'))}" for m in transcript[-4:])
        unique = [v for v in dict.fromkeys(values)]
        prompt = (f"You are a user chatting with an assistant. Your style: {style}.\n"
                  + (f"Conversation so far:\n{history}\n" if history else "")
                  + f"Write only your next message, in one or two sentences. Your goal: {goal}\n" + extra
                  + (f"Mention these values exactly as written: {', '.join(unique)}." if unique else ""))
        messages = [{"role": "user", "content": prompt}]

        def says_all(result: ChatResult) -> str | None:
            text = clean_text(result.text or "")
            if len(text) < 3:
                return "empty_message"
            return "missing_values" if missing_mentions(unique, text) else None

        try:
            reply = self._ask(state, "user", messages, None, self.cfg.agent_temperature, accept=says_all)
            return clean_text(reply[0].text)
        except DialogueFailed:
            if not unique or not all(mentionable(v) for v in unique):
                raise
        schema = {"type": "object", "properties": {"message": {"type": "string", "pattern": mention_pattern(unique)}},
                  "required": ["message"], "additionalProperties": False}
        state["turn"] -= 1  # the fallback belongs to the same turn: same seed, later sample indices
        reply = self._ask(state, "user", messages, schema, self.cfg.agent_temperature, first_sample=100)
        return reply[0].parsed["message"].strip()

    def assistant_calls(self, state, tools: list[Tool], transcript: list[dict], n_calls: int,
                        hint: str, planned: list[str]) -> tuple[list[Call], int, float]:
        callable_tools = [t for t in tools if t.name in planned] if self.cfg.restrict_calls_to_plan else tools
        schema = {"type": "object",
                  "properties": {"tool_calls": {"type": "array", "items": call_schema(callable_tools, max_string=self.cfg.max_string),
                                                "minItems": n_calls, "maxItems": n_calls}},
                  "required": ["tool_calls"], "additionalProperties": False}
        system = (f"You are a helpful assistant with tools.\nTools:\n{describe_tools(tools)}\n"
                  f"Call the right tool with argument values taken from the conversation. {hint}")
        results = self._ask(state, "assistant", [{"role": "system", "content": system}, *for_server(transcript)], schema,
                            self.cfg.assistant_temperature, samples=self.cfg.assistant_samples)
        options = [[Call.from_dict(c) for c in r.parsed["tool_calls"]] for r in results]
        # Self-consistency among the samples that pass the call rules (values said by the user,
        # arguments valid); when none does, among all, and verification will judge the winner.
        by_name = {t.name: t for t in tools}
        passing = [o for o in options if not check_calls(o, by_name, transcript)]
        options = passing or options
        keys = [tuple(sorted(call_key(c) for c in calls)) for calls in options]
        counts = Counter(keys)
        best_key, best = max(counts.items(), key=lambda kv: (kv[1], -keys.index(kv[0])))
        return options[keys.index(best_key)], len(results), best / len(options)

    def assistant_text(self, state, tools: list[Tool], transcript: list[dict], instruction: str) -> str:
        system = (f"You are a helpful assistant with tools.\nTools:\n{describe_tools(tools)}\n{instruction} "
                  "Reply in plain text, one or two sentences.")
        reply = self._ask(state, "reply", [{"role": "system", "content": system}, *for_server(transcript)], None,
                          self.cfg.agent_temperature,
                          accept=lambda r: None if len(clean_text(r.text or "")) >= 3 else "empty_reply")
        return clean_text(reply[0].text)

    def tool_result(self, state, entry: PoolEntry, call: Call, fail: bool) -> dict[str, Any]:
        if fail:
            schema = {"type": "object", "properties": {"status": {"const": "error"}, "error": text_schema()},
                      "required": ["status", "error"], "additionalProperties": False}
            ask = "The call fails. Write a short, specific error message (e.g. a value not found or not allowed)."
        else:
            schema = {"type": "object",
                      "properties": {"status": {"const": "ok"},
                                     "result": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}},
                      "required": ["status", "result"], "additionalProperties": False}
            ask = f"The call succeeds. Write a realistic result: {entry.returns}, consistent with the arguments."
        prompt = (f"You simulate the tool {entry.tool.name}: {entry.tool.description}\n"
                  f"Call arguments: {json.dumps(call.arguments, ensure_ascii=False)}\n{ask}")
        return self._ask(state, "tool", [{"role": "user", "content": prompt}], schema, self.cfg.agent_temperature)[0].parsed

    # ------------------------------------------------------------------------------ one dialogue
    def run_calls(self, state, rng, tools, entries, transcript, turns, need_index, planned, calls_count, hint):
        """An assistant call step plus one tool message per call; returns True if any result was an error."""
        calls, votes, agreement = self.assistant_calls(state, tools, transcript, calls_count, hint, planned)
        turns[len(transcript)] = Turn(need_index, "call", planned, votes, agreement)
        transcript.append({"role": "assistant", "content": "", "tool_calls": [c.to_dict() for c in calls]})
        any_error = False
        for call in calls:
            fail = rng.random() < self.cfg.tool_error_rate
            result = self.tool_result(state, entries[call.name], call, fail)
            any_error |= result.get("status") == "error"
            transcript.append({"role": "tool", "name": call.name, "content": json.dumps(result, ensure_ascii=False)})
        return any_error

    def do_need(self, state, rng, need_index, skeleton, need, tools, entries, style, transcript, turns):
        entry_by_name = {e.tool.name: e for e in entries}
        by_name = {t.name: t for t in tools}
        calls = need.get("calls") or []
        first_tool = by_name[skeleton.tools[0]] if skeleton.tools else None
        goal = need.get("topic") or (first_tool.description if first_tool else "small talk")
        if skeleton.kind == "parallel":
            goal = f"{goal} (two requests at once)"
        elif skeleton.kind == "multi_step":
            goal = f"{goal}, then {by_name[skeleton.tools[1]].description}"
        if skeleton.kind == "no_tool":
            transcript.append({"role": "user", "content": self.user_message(state, goal, [], style, transcript)})
            text = self.assistant_text(state, tools, transcript,
                                       "No tool is needed or able to help with this message: answer it briefly in text.")
            turns[len(transcript)] = Turn(need_index, "text")
            transcript.append({"role": "assistant", "content": text})
            return
        values = [t for c in calls for t in value_texts(c["arguments"])]
        if skeleton.kind == "needs_clarification":
            withheld = calls[0]["arguments"].get(skeleton.omit)
            withheld_texts = value_texts(withheld)
            shown = [v for v in values if v not in withheld_texts]
            transcript.append({"role": "user", "content": self.user_message(
                state, goal, shown, style, transcript, extra=f"Do not say the {skeleton.omit.replace('_', ' ')} yet.\n")})
            question = self.assistant_text(
                state, tools, transcript,
                f"The user has not said the {skeleton.omit} that {skeleton.tools[0]} requires. Ask for it in one short question.")
            turns[len(transcript)] = Turn(need_index, "text")
            transcript.append({"role": "assistant", "content": question})
            transcript.append({"role": "user", "content": self.user_message(
                state, f"answer the question: give the {skeleton.omit}", withheld_texts or [json.dumps(withheld)],
                style, transcript)})
        else:
            transcript.append({"role": "user", "content": self.user_message(state, goal, values, style, transcript)})
        steps = [skeleton.tools] if skeleton.kind != "multi_step" else [[n] for n in skeleton.tools]
        planned_calls = list(calls)
        for step_tools in steps:
            hint = f"This step needs {len(step_tools)} call(s) to {', '.join(dict.fromkeys(step_tools))}."
            if self.cfg.assistant_sees_plan:
                # The calls of this step, in plan order (multi-step: one per step).
                step_calls = planned_calls[: len(step_tools)]
                del planned_calls[: len(step_tools)]
                hint += " Planned: " + "; ".join(
                    f"{c['tool']}({json.dumps(c['arguments'], ensure_ascii=False)})" for c in step_calls)
            errored = self.run_calls(state, rng, tools, entry_by_name, transcript, turns, need_index, step_tools, len(step_tools), hint)
            if errored:
                break  # the tool failed: the assistant explains instead of going on
        text = self.assistant_text(state, tools, transcript,
                                   "Tell the user the outcome of the tool results above in one or two sentences.")
        turns[len(transcript)] = Turn(need_index, "text")
        transcript.append({"role": "assistant", "content": text})

    def simulate(self, index: int) -> dict[str, Any]:
        """One dialogue; raises :class:`DialogueFailed` when it has nothing usable."""
        cfg = self.cfg
        rng = random.Random(f"dialogue:{self.seed}:{index}")
        low, high = cfg.tools_per_dialogue
        if len(self.pool) < low:
            raise DialogueFailed("pool_too_small", f"{len(self.pool)} tools in the pool, need {low}")
        entries = rng.sample(self.pool, min(rng.randint(low, high), len(self.pool)))
        tools = [e.tool for e in entries]
        style = rng.choice(cfg.user_styles)
        state: dict[str, Any] = {"index": index, "turn": 0, "requests": 0, "failures": []}
        skeleton = plan_skeleton(rng, tools, cfg)
        try:
            plan = self.plan(state, tools, skeleton)
        except DialogueFailed as err:
            raise DialogueFailed("planner_failed", err.detail) from None
        transcript: list[dict[str, Any]] = []
        turns: dict[int, Turn] = {}
        done: list[int] = []
        rejected: list[dict[str, str]] = []
        stop = "plan_done"
        for need_index, (sk, need) in enumerate(zip(skeleton, plan)):
            if len(transcript) >= cfg.max_messages:
                stop = "max_messages"
                break
            if len(rejected) >= cfg.max_rejected_turns:
                stop = "too_many_rejected_turns"
                break
            mark = len(transcript)
            try:
                self.do_need(state, rng, need_index, sk, need, tools, entries, style, transcript, turns)
                done.append(need_index)
            except DialogueFailed as err:
                # Roll back the unfinished need: a dialogue never ends in the middle of one.
                del transcript[mark:]
                for k in [k for k in turns if k >= mark]:
                    del turns[k]
                rejected.append({"need": need_index, "reason": err.reason, "detail": err.detail})
        if not done:
            raise DialogueFailed("no_need_completed", json.dumps(rejected)[:300])
        return {
            "id": f"dlg-{index:05d}",
            "index": index,
            "tools": [t.to_dict() for t in tools],
            "tool_sources": {e.tool.name: e.id for e in entries},
            "style": style,
            "plan": [{**asdict(sk), **need} for sk, need in zip(skeleton, plan)],
            "messages": transcript,
            "turns": {str(k): asdict(v) for k, v in sorted(turns.items())},
            "needs_done": done,
            "rejected_turns": rejected,
            "stop_reason": stop,
            "requests": state["requests"],
            "request_failures": dict(Counter(state["failures"])),
        }


def simulate_dialogues(client: Any, pool: list[PoolEntry], cfg: SimulationConfig, seed: int, ledger: Any,
                       indices: list[int] | None = None) -> list[dict[str, Any]]:
    """Simulate ``cfg.dialogues`` dialogues (or the given indices); every one gets a ledger record.

    ``LLMError`` (server unreachable, bad configuration) stops the run: nothing useful can follow.
    """
    simulator = DialogueSimulator(client, pool, cfg, seed)
    indices = list(range(cfg.dialogues)) if indices is None else indices
    ledger.expect(len(indices))
    outcomes: dict[int, dict[str, Any] | DialogueFailed] = {}

    def run(index: int):
        try:
            return index, simulator.simulate(index)
        except DialogueFailed as err:
            return index, err

    executor = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, cfg.concurrency), thread_name_prefix="dialogue")
    futures = [executor.submit(run, i) for i in indices]
    try:
        for future in tqdm(concurrent.futures.as_completed(futures), total=len(futures), desc="simulate",
                           unit="dlg", dynamic_ncols=True):
            index, outcome = future.result()
            outcomes[index] = outcome
    except BaseException:
        # Server unreachable, Ctrl-C or SIGTERM: stop now. Dialogues not started are cancelled and
        # a running one ends at its next request (the stop flag); finished replies are cached.
        simulator.stop.set()
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    dialogues = []
    for index in indices:
        outcome = outcomes[index]
        if isinstance(outcome, DialogueFailed):
            ledger.reject(f"dlg-{index:05d}", outcome.reason, detail=outcome.detail)
        else:
            ledger.keep(outcome["id"], messages=len(outcome["messages"]), needs_done=len(outcome["needs_done"]),
                        stop_reason=outcome["stop_reason"], rejected_turns=len(outcome["rejected_turns"]))
            dialogues.append(outcome)
    return dialogues
