"""Program-backed dialogue agents (issue #13): planner, template user, oracle assistant, program tool.

The paper's seed dialogues come from four LLM agents played by Qwen3-32B; a 135M model cannot
play them (DESIGN.md §10). These agents do the same jobs with programs over the structured
capabilities of :mod:`looptool.synth.concepts`, so the labels are exact by construction:

* **planner** — draws the need kinds (weights in params) and a tool subset that serves them, with
  similar tools (same sub-domain) and random distractors beside the ones the plan calls;
* **user** — a template realizer: many request frames per need kind, a style and a persona per
  dialogue, every value said through its concept (ISO or relative dates, enum paraphrases, unit
  strings, quoted free text, ...), answers to clarification questions; optionally reworded by the
  LLM afterwards (:mod:`looptool.synth.paraphrase`), which must keep every value verbatim;
* **assistant** — an oracle that derives the calls from the plan (or asks for the withheld value,
  or declines), optionally a noisy annotator (:mod:`looptool.synth.noise`) that keeps the clean
  label beside the noisy one;
* **tool** — results shaped by the capability's return fields and the tool's return shape, with
  injected errors at ``tool_error_rate``.

Need kinds: ``single_call``; ``parallel`` (the same tool twice, or two tools); ``multi_step`` (the
second call takes a value from the first result); ``needs_clarification`` (a required value is
withheld until the assistant asks); ``no_tool`` (small talk, or a request for a capability no
offered tool has). The user, assistant and tool agents can each be the LLM instead
(``simulate.agents``); the dialogue format is the LLM simulator's, so verification and sample
building are shared.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from looptool.schema import NEED_KINDS, Call, Tool, label_to_json
from looptool.synth.concepts import CapabilityLibrary, Realized, ValueGenerator, value_phrase
from looptool.synth.noise import call_for_text, corrupt_calls
from looptool.synth.validate import PoolEntry


STYLES: dict[str, tuple[str, ...]] = {
    "brief": ("{Ask} {args}.", "{Ask} {args}", "Need to {ask} {args}."),
    "polite": ("Hello! Could you please {ask} {args}? Thank you.", "Would you mind helping me {ask} {args}?",
               "Hi there, I'd like to {ask} {args}, please."),
    "casual": ("hey, can you {ask} {args}", "ok so I wanna {ask} {args}", "can u {ask} {args} pls"),
    "formal": ("I would like you to {ask} {args}.", "Please {ask} {args}.", "Kindly {ask} {args}."),
    "hurried": ("Quick one: {ask} {args}!", "{Ask} {args}, asap.", "No time to explain, just {ask} {args}."),
}
PERSONAS = ("", "", "I'm sorting out a few things today. ", "This is for a client. ", "My manager asked me this. ",
            "Planning ahead here. ", "Question from a student: ", "Helping my parents with this. ")
SMALL_TALK = (
    ("thanks, that's all for now!", "You're welcome! Have a good day."),
    ("how are you doing today?", "I'm doing well, thanks for asking! What can I help you with?"),
    ("what's a good name for a grey cat?", "How about Smokey, Ash or Pebble?"),
    ("tell me a fun fact about octopuses", "Octopuses have three hearts and blue blood."),
    ("can you recommend a book for a long flight?", "A long novel works well, for example a classic you've always meant to read."),
    ("is it better to stretch before or after running?", "Light dynamic stretching before and static stretching after is a common approach."),
    ("what does 'serendipity' mean?", "It means finding something good by chance."),
    ("good morning!", "Good morning! How can I help?"),
)
DECLINES = (
    "Sorry, I can't {ask} with the tools I have here.",
    "None of my tools can {ask}, so I can't do that for you.",
    "I'm not able to {ask}: no available tool does that.",
)
CLARIFY = ("What {describe} should I use?", "Could you tell me the {words}?", "Which {words} do you mean?")
ANSWERS = ("{phrase}.", "It's {surface}.", "Use {surface}.", "Oh right, {surface}.")
SUMMARIES = ("Done. Here is what I got: {fields}.", "Here you go: {fields}.", "All set: {fields}.")
ERRORS = ("That didn't work: {error}.", "The request failed ({error}). Please check the details.")
BASE_DATE = dt.date(2025, 1, 6)
SUMMARY_INSTRUCTION = "Tell the user the outcome of the tool results above in one or two sentences."


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass
class BoundTool:
    """A pool tool with what the program agents need: its bindings, return fields and shape."""

    tool: Tool
    capability: str
    subdomain: str
    asks: list[str]
    bindings: list[dict[str, Any]]
    returns: list[tuple[str, str]]
    shape: str
    meta: dict[str, Any]

    @property
    def name(self) -> str:
        return self.tool.name

    @classmethod
    def from_meta(cls, tool: Tool, meta: dict[str, Any]) -> "BoundTool":
        return cls(tool=tool, capability=meta["capability"], subdomain=meta.get("subdomain", ""),
                   asks=list(meta.get("asks") or [tool.description]), bindings=list(meta["bindings"]),
                   returns=[tuple(r) for r in meta.get("returns") or []], shape=meta.get("return_shape", "single_record"),
                   meta=meta)

    @classmethod
    def from_entry(cls, entry: PoolEntry) -> "BoundTool":
        return cls.from_meta(entry.tool, entry.meta["program"])


@dataclass
class PlannedNeed:
    kind: str
    variant: str  # parallel: same_tool | two_tools; no_tool: small_talk | unavailable; else: plain
    tools: list[str]  # the clean plan's call per tool name, in order
    omit: str | None = None  # needs_clarification: the withheld required parameter
    unavailable: str | None = None  # no_tool/unavailable: the capability the user asks for
    modes: list[dict[str, str]] = field(default_factory=list)  # per call: parameter -> how it is said
    # no_tool/unavailable: that capability's tool and bindings (not offered, so not in the tool list)
    unavailable_tool: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "variant": self.variant, "tools": self.tools, "omit": self.omit,
                "unavailable": self.unavailable, "modes": self.modes, "unavailable_tool": self.unavailable_tool}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PlannedNeed":
        return cls(kind=d["kind"], variant=d.get("variant", "plain"), tools=list(d.get("tools") or []),
                   omit=d.get("omit"), unavailable=d.get("unavailable"), modes=list(d.get("modes") or []),
                   unavailable_tool=d.get("unavailable_tool"))


@dataclass
class RealizedCall:
    call: Call
    phrases: dict[str, str]  # parameter -> the phrase that says its value, in parameter order
    keeps: dict[str, list[str]]  # parameter -> strings any rewording must keep
    surfaces: dict[str, str]  # parameter -> the words for the value itself
    phenomena: list[str]
    modes: dict[str, str]
    chained: str | None = None  # parameter filled from the previous call's result

    @property
    def keep(self) -> list[str]:
        return [k for keeps in self.keeps.values() for k in keeps]


CHAIN_GENERATORS = ("identifier", "code")  # return values a later call can take: ids and codes


def mode_of(realized: Realized) -> str | None:
    """The pinned way a value was said, for EDDE to keep (None: nothing worth keeping)."""
    ph = realized.phenomena
    if "relative_date" in ph:
        return "relative"
    if "iso_date" in ph:
        return "absolute"
    if "enum_paraphrase" in ph:
        return "paraphrase"
    if "enum_verbatim" in ph:
        return "verbatim"
    return None


class ProgramAgents:
    """Program planner, template user, oracle assistant and program tool over one capability library.

    ``llm`` (a :class:`looptool.synth.dialogue.DialogueSimulator`) plays the user, assistant or tool
    where ``cfg.agents`` says ``llm``; the program agents need no client at all.
    """

    def __init__(self, library: CapabilityLibrary, cfg: Any, seed: int, llm: Any = None):
        self.library = library
        self.cfg = cfg
        self.seed = seed
        self.llm = llm
        self.noise = dict(cfg.noise or {})
        self.noise_types = dict(self.noise.get("types") or {})

    # ---------------------------------------------------------------------------- the planner
    def plan(self, rng: random.Random, tools_pool: list[BoundTool], forced_kind: str | None = None
             ) -> tuple[list[BoundTool], list[PlannedNeed]]:
        """Need kinds first, then a tool subset that serves them plus similar tools and distractors."""
        cfg = self.cfg
        kinds = [k for k in NEED_KINDS if cfg.need_kind_weights.get(k, 0) > 0]
        weights = [cfg.need_kind_weights[k] for k in kinds]
        n_needs = 1 if forced_kind else rng.randint(*cfg.needs_per_dialogue)
        by_name = {t.name: t for t in tools_pool}
        chosen: list[str] = []
        needs: list[PlannedNeed] = []
        chains = [(a.name, b.name) for a in tools_pool for b in tools_pool
                  if a.name != b.name and a.subdomain == b.subdomain and self._chain_link(a, b)]
        for n in range(n_needs):
            kind = forced_kind if forced_kind and n == 0 else rng.choices(kinds, weights)[0]
            # A capability an earlier no-tool need asked for (as unavailable) cannot serve a later need.
            blocked = {m.unavailable for m in needs if m.unavailable}
            usable = [t for t in tools_pool if t.capability not in blocked] if blocked else tools_pool
            usable_chains = [(a, b) for a, b in chains if by_name[a].capability not in blocked
                             and by_name[b].capability not in blocked] if blocked else chains
            need = self._plan_need(rng, kind, usable, usable_chains, chosen)
            needs.append(need)
            for name in need.tools:
                if name not in chosen:
                    chosen.append(name)
        size = rng.randint(*cfg.tools_per_dialogue)
        anchors = [by_name[n] for n in chosen]
        similar = [t for t in tools_pool if t.name not in chosen and any(t.subdomain == a.subdomain for a in anchors)]
        rng.shuffle(similar)
        for t in similar[: max(0, min(len(similar), size - len(chosen), rng.randint(1, 2)))]:
            chosen.append(t.name)
        others = [t for t in tools_pool if t.name not in chosen]
        rng.shuffle(others)
        chosen += [t.name for t in others[: max(0, size - len(chosen))]]
        # The unavailable capability of a no-tool need must not sneak in as a distractor.
        blocked = {n.unavailable for n in needs if n.unavailable}
        subset = [by_name[n] for n in chosen if by_name[n].capability not in blocked]
        rng.shuffle(subset)
        return subset, needs

    def _chain_link(self, first: BoundTool, second: BoundTool) -> tuple[str, str] | None:
        """(parameter of ``second``, result field of ``first``): a required, unsplit parameter whose
        concept is an id or code that ``first`` returns."""
        concepts = self.library.concepts
        fields = {concept: name for name, concept in reversed(first.returns)
                  if concept in concepts and concepts[concept].gen in CHAIN_GENERATORS}
        for b in second.bindings:
            if b["required"] and not b.get("unit_param") and b.get("concept") in fields:
                return b["param"], fields[b["concept"]]
        return None

    def _plan_need(self, rng, kind, pool: list[BoundTool], chains, chosen: list[str]) -> PlannedNeed:
        tool = rng.choice(pool)
        if kind == "multi_step" and chains:
            first, second = rng.choice(chains)
            return PlannedNeed("multi_step", "chain", [first, second])
        if kind == "multi_step":
            kind = "parallel"  # no chainable pair in this pool
        if kind == "parallel":
            if rng.random() < 0.5 and len(pool) > 1:
                a, b = rng.sample(pool, 2)
                return PlannedNeed("parallel", "two_tools", [a.name, b.name])
            return PlannedNeed("parallel", "same_tool", [tool.name, tool.name])
        if kind == "needs_clarification":
            askable = [b["param"] for b in tool.bindings if b["required"] and b.get("concept")
                       and self.library.concepts[b["concept"]].gen not in ("boolean", "object", "list")]
            if askable:
                return PlannedNeed("needs_clarification", "plain", [tool.name], omit=rng.choice(askable))
            return PlannedNeed("single_call", "plain", [tool.name])
        if kind == "no_tool":
            offered = {t.capability for t in pool if t.name in chosen}
            others = [t for t in pool if t.capability not in offered and t.name not in chosen]
            if others and rng.random() < 0.75:
                other = rng.choice(others)
                return PlannedNeed("no_tool", "unavailable", [], unavailable=other.capability,
                                   unavailable_tool={"tool": other.tool.to_dict(), "meta": other.meta})
            return PlannedNeed("no_tool", "small_talk", [])
        return PlannedNeed("single_call", "plain", [tool.name])

    # ------------------------------------------------------------------------------ the values
    def realize_call(self, gen: ValueGenerator, rng: random.Random, tool: BoundTool,
                     modes: dict[str, str] | None = None, fixed: dict[str, Any] | None = None) -> RealizedCall:
        """Arguments for one call: every required parameter, each optional one half the time.

        ``modes`` replays a recorded call (EDDE): exactly its optional parameters, each value said the
        same way (relative or ISO date, enum paraphrase or verbatim), new values drawn.
        """
        replay = modes is not None
        modes = dict(modes or {})
        args: dict[str, Any] = {}
        phrases, keeps, surfaces, phenomena, used_modes = {}, {}, {}, [], {}
        chained = None
        for b in tool.bindings:
            param = b["param"]
            if fixed and param in fixed:
                args[param] = fixed[param]
                chained = param
                continue
            if not b["required"] and (param not in modes if replay else rng.random() < 0.5):
                continue
            concept = self.library.concepts[b["concept"]]
            realized = gen.draw(b["concept"], split=bool(b.get("unit_param")), mode=modes.get(param))
            args[param] = realized.value
            if b.get("unit_param"):
                args[b["unit_param"]] = realized.unit
            phrases[param] = value_phrase(concept, realized.surface, rng, b.get("name"),
                                          relative="relative_date" in realized.phenomena)
            surfaces[param] = realized.surface
            keeps[param] = realized.keep or ([realized.surface] if realized.surface else [])
            phenomena += realized.phenomena
            used_modes[param] = mode_of(realized) or "as_drawn"
        return RealizedCall(Call(tool.name, args), phrases, keeps, surfaces, list(dict.fromkeys(phenomena)), used_modes,
                            chained)

    # ------------------------------------------------------------------------------- the tool
    def tool_result(self, gen: ValueGenerator, rng: random.Random, tool: BoundTool, call: Call, fail: bool
                    ) -> dict[str, Any]:
        if fail:
            shown = next((f"{k} {v}" for k, v in call.arguments.items() if isinstance(v, str)), "the request")
            return {"status": "error", "error": rng.choice((f"{shown} was not found", f"{shown} is not available",
                                                            "the service is temporarily unavailable"))}
        def record() -> dict[str, Any]:
            return {name: gen.draw(concept).value for name, concept in tool.returns}
        if not tool.returns:
            return {"status": "ok", "message": "request completed"}
        if tool.shape == "record_list":
            return {"status": "ok", "items": [record() for _ in range(2)]}
        if tool.shape in ("status", "number"):
            return {"status": "ok", "message": "request completed", **record()}
        return {"status": "ok", "result": record()}

    @staticmethod
    def first_record(result: dict[str, Any]) -> dict[str, Any]:
        if isinstance(result.get("items"), list) and result["items"]:
            return result["items"][0]
        if isinstance(result.get("result"), dict):
            return result["result"]
        return {k: v for k, v in result.items() if k not in ("status", "message")}

    # ------------------------------------------------------------------------------- the user
    def request_text(self, rng: random.Random, style: str, persona: str, parts: list[tuple[str, list[str]]],
                     joiner: str = ", and ") -> str:
        """One user message: a style frame around 'ask args' clauses (values are never re-cased)."""
        clauses = [f"{ask} {' '.join(p)}".strip() for ask, p in parts]
        body = clauses[0] + "".join(f"{joiner}{c}" for c in clauses[1:])
        frame = rng.choice(STYLES[style])
        text = frame.replace("{Ask} {args}", _cap(body)).replace("{ask} {args}", body)
        return (persona + text) if persona else text

    # ------------------------------------------------------------------------------- one need
    def run_need(self, rng: random.Random, gen: ValueGenerator, tools: list[BoundTool], need: PlannedNeed,
                 need_index: int, style: str, persona: str, transcript: list[dict], turns: dict[int, dict],
                 user_keep: dict[int, list[str]], state: dict[str, Any]) -> None:
        by_name = {t.name: t for t in tools}
        tool_map = {t.name: t.tool for t in tools}
        step = 0

        def llm_assistant() -> bool:
            return self.cfg.agents.get("assistant") == "llm" and self.llm is not None

        def assistant(content: str = "", calls: list[Call] | None = None, expected: str = "text",
                      planned: list[str] | None = None, meta: dict | None = None, instruction: str = "") -> None:
            nonlocal step
            if not calls and instruction and llm_assistant():
                content = self.llm.assistant_text(state, [t.tool for t in tools], transcript, instruction)
            turns[len(transcript)] = {"need": need_index, "expected": expected, "planned_tools": planned or [],
                                      "votes": 1, "agreement": 1.0,
                                      "meta": {"step_in_need": step, "recipe": {**need.to_dict(), "style": style,
                                                                                  "persona": persona},
                                               **(meta or {})}}
            msg: dict[str, Any] = {"role": "assistant", "content": content}
            if calls:
                msg["tool_calls"] = [c.to_dict() for c in calls]
            transcript.append(msg)
            step += 1

        def user(text: str, keep: list[str]) -> None:
            if self.cfg.agents.get("user") == "llm" and self.llm is not None:
                # The LLM user writes the message itself; the template is its goal, the values must stay.
                text = self.llm.user_message(state, f"say this in your own words: {text}", keep, style, transcript)
            user_keep[len(transcript)] = keep
            transcript.append({"role": "user", "content": text})


        if need.kind == "no_tool":
            if need.variant == "small_talk":
                said, reply = rng.choice(SMALL_TALK)
                user(said if style == "casual" else _cap(said), [])
                assistant(reply, meta={"phenomena": []}, instruction="No tool is needed: answer briefly in text.")
                return
            wanted = BoundTool.from_meta(Tool.from_dict(need.unavailable_tool["tool"]), need.unavailable_tool["meta"])
            realized = self.realize_call(gen, rng, wanted)
            ask = rng.choice(wanted.asks)
            user(self.request_text(rng, style, persona, [(ask, list(realized.phrases.values()))]), realized.keep)
            clean = rng.choice(DECLINES).replace("{ask}", ask)
            noisy = self._maybe_noise(rng, "text", clean, tool_map, said=realized.keep)
            if noisy and isinstance(noisy["label"], list):
                calls = noisy["label"]
                assistant(calls=calls, expected="call", planned=[c.name for c in calls],
                          meta={"phenomena": realized.phenomena, "noise": noisy["kind"], "noise_detail": noisy["detail"],
                                "clean_label": clean})
                self._results(rng, gen, by_name, calls, transcript, state)
                assistant(self._summary(rng, transcript[-1]), meta={"phenomena": []}, instruction=SUMMARY_INSTRUCTION)
            else:
                assistant(clean, meta={"phenomena": realized.phenomena},
                          instruction="No offered tool can serve this request: say so briefly, in text.")
            return

        # Calls of the plan; multi-step: the second waits for the first result.
        replay = bool(need.modes)  # EDDE replays a recorded need; a fresh need draws its own
        realized: list[RealizedCall] = []
        for j, name in enumerate(need.tools):
            tool = by_name[name]
            fixed = None
            if need.kind == "multi_step" and j == 1:
                param, _ = self._chain_link(by_name[need.tools[0]], tool)
                fixed = {param: None}  # filled after the first result
            for _ in range(4):  # parallel calls of one tool must differ
                r = self.realize_call(gen, rng, tool, need.modes[j] if replay and j < len(need.modes) else None, fixed)
                if not (need.variant == "same_tool" and j == 1 and r.call == realized[0].call):
                    break
            realized.append(r)
        need.modes = [r.modes for r in realized]
        asks = [rng.choice(by_name[n].asks) for n in need.tools]
        if need.kind == "parallel" and need.variant == "same_tool":
            parts = [(asks[0], list(realized[0].phrases.values())), ("also", list(realized[1].phrases.values()))]
            text = self.request_text(rng, style, persona, parts, joiner=", and ")
        elif need.kind == "multi_step":
            param = realized[1].chained or ""
            binding = next(b for b in by_name[need.tools[1]].bindings if b["param"] == param)
            concept_words = str(binding.get("name") or param).replace("_", " ")
            parts = [(asks[0], list(realized[0].phrases.values())),
                     (asks[1], [*realized[1].phrases.values(), f"using the {concept_words} from that"])]
            text = self.request_text(rng, style, persona, parts, joiner=", then ")
        elif need.kind == "needs_clarification":
            binding = next(b for b in by_name[need.tools[0]].bindings if b["param"] == need.omit)
            concept = self.library.concepts[binding["concept"]]
            value = realized[0].call.arguments[need.omit]
            shown = [phrase for param, phrase in realized[0].phrases.items() if param != need.omit]
            text = self.request_text(rng, style, persona, [(asks[0], shown)])
        else:
            text = self.request_text(rng, style, persona, [(a, list(r.phrases.values())) for a, r in zip(asks, realized)])
        keep = [k for r in realized for k in r.keep]
        if need.kind == "needs_clarification":
            keep_withheld = realized[0].keeps[need.omit]
            user(text, [k for k in keep if k not in keep_withheld])
            question = rng.choice(CLARIFY).replace("{describe}", concept.describe.split(",")[0]).replace("{words}", concept.words)
            assistant(concept.ask or question, meta={"phenomena": []},
                      instruction=f"The user has not said the {need.omit}. Ask for it in one short question.")
            answer = rng.choice(ANSWERS).replace("{phrase}", _cap(realized[0].phrases[need.omit])).replace(
                "{surface}", realized[0].surfaces.get(need.omit, str(value)))
            user(answer, keep_withheld)
        else:
            user(text, keep)
        steps = [[0, 1]] if need.kind == "parallel" else [[j] for j in range(len(need.tools))]
        for indices in steps:
            calls = [realized[j].call for j in indices]
            if need.kind == "multi_step" and indices == [1]:
                param, field_name = self._chain_link(by_name[need.tools[0]], by_name[need.tools[1]])
                source = self.first_record(json.loads(transcript[-1]["content"]))
                calls = [Call(calls[0].name, {**calls[0].arguments, param: source.get(field_name)})]
                realized[1].call = calls[0]
            phenomena = list(dict.fromkeys(p for j in indices for p in realized[j].phenomena))
            # The first call of a multi-step need feeds the second: a corrupted one would leave it
            # nothing to take, so that need is corrupted at its last step only.
            noisy = None if need.kind == "multi_step" and indices == [0] else self._maybe_noise(rng, "call", calls, tool_map)
            if noisy and isinstance(noisy["label"], str):
                assistant(noisy["label"], meta={"phenomena": phenomena, "noise": noisy["kind"],
                                                "noise_detail": noisy["detail"], "clean_label": label_to_json(calls)})
                return
            written = noisy["label"] if noisy else calls
            if llm_assistant():
                # The LLM assistant (k samples + vote) decides the calls; the plan is only its hint.
                hint = "Planned: " + "; ".join(f"{c.name}({json.dumps(c.arguments, ensure_ascii=False)})" for c in calls)
                written, _, _ = self.llm.assistant_calls(state, [t.tool for t in tools], transcript, len(calls), hint,
                                                         [c.name for c in calls])
                noisy = None
            meta = {"phenomena": phenomena}
            if noisy:
                meta.update(noise=noisy["kind"], noise_detail=noisy["detail"], clean_label=label_to_json(calls))
            assistant(calls=written, expected="call", planned=[c.name for c in written], meta=meta)
            if self._results(rng, gen, by_name, written, transcript, state):
                break
        assistant(self._summary(rng, transcript[-1]), meta={"phenomena": []}, instruction=SUMMARY_INSTRUCTION)

    def _results(self, rng, gen, by_name, calls: list[Call], transcript: list[dict], state: dict) -> bool:
        """One tool message per call; True when any result is an error."""
        errored = False
        for call in calls:
            fail = rng.random() < self.cfg.tool_error_rate
            tool = by_name[call.name]
            if self.cfg.agents.get("tool") == "llm" and self.llm is not None:
                entry = PoolEntry(id=tool.capability, tool=tool.tool, source="program",
                                  returns=f"an object with {', '.join(f for f, _ in tool.returns) or 'a status'}")
                result = self.llm.tool_result(state, entry, call, fail)
            else:
                result = self.tool_result(gen, rng, tool, call, fail)
            errored |= result.get("status") == "error"
            transcript.append({"role": "tool", "name": call.name, "content": json.dumps(result, ensure_ascii=False)})
        return errored

    def _summary(self, rng: random.Random, last: dict[str, Any]) -> str:
        try:
            body = json.loads(last.get("content") or "{}")
        except json.JSONDecodeError:
            body = {}
        if body.get("status") == "error":
            return rng.choice(ERRORS).replace("{error}", str(body.get("error", "unknown error")))
        record = self.first_record(body)
        fields = ", ".join(f"{k.replace('_', ' ')} {json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v}"
                           for k, v in list(record.items())[:3]) or "the request went through"
        return rng.choice(SUMMARIES).replace("{fields}", fields)

    def _maybe_noise(self, rng: random.Random, step: str, clean: Any, tools: dict[str, Tool],
                     said: list[str] | None = None) -> dict[str, Any] | None:
        """With probability ``noise.rate``, a rule-passing wrong label for this step (None: clean)."""
        rate = float(self.noise.get("rate", 0.0))
        if rate <= 0 or rng.random() >= rate:
            return None
        if step == "call":
            made = corrupt_calls(clean, tools, rng, self.noise_types)
        elif self.noise_types.get("call_for_text", 0) > 0:
            made = call_for_text(tools, said or [], rng)
        else:
            made = None
        return None if made is None else {"kind": made.kind, "label": made.label, "detail": made.detail}

    # ------------------------------------------------------------------------------ a dialogue
    def bind_pool(self, pool: list[PoolEntry]) -> list[BoundTool]:
        return [BoundTool.from_entry(e) for e in pool if "program" in (e.meta or {})]

    def simulate(self, index: int, tools_pool: list[BoundTool], split: str = "seen",
                 forced_kind: str | None = None) -> dict[str, Any]:
        rng = random.Random(f"program-dialogue:{self.seed}:{split}:{index}")
        today = BASE_DATE + dt.timedelta(days=rng.randint(0, 700))
        gen = ValueGenerator(self.library, rng, today, relative_date_rate=float(self.cfg.relative_date_rate),
                             paraphrase_rate=float(self.cfg.enum_paraphrase_rate))
        tools, needs = self.plan(rng, tools_pool, forced_kind)
        style = rng.choice(sorted(STYLES))
        persona = rng.choice(PERSONAS)
        transcript: list[dict[str, Any]] = [
            {"role": "system", "content": f"Today is {today.isoformat()} ({today.strftime('%A')})."}]
        turns: dict[int, dict] = {}
        user_keep: dict[int, list[str]] = {}
        state: dict[str, Any] = {"index": index, "turn": 0, "requests": 0, "failures": []}
        for n, need in enumerate(needs):  # the persona leads the first request only
            self.run_need(rng, gen, tools, need, n, style, persona if n == 0 else "", transcript, turns, user_keep, state)
        return {
            "id": f"{'unseen' if split == 'unseen' else 'dlg'}-{index:05d}",
            "index": index if split != "unseen" else 100000 + index,
            "split": split,
            "backend": "program",
            "today": today.isoformat(),
            "tools": [t.tool.to_dict() for t in tools],
            "tool_sources": {t.name: f"prog-{t.capability}" for t in tools},
            "tool_meta": {t.name: t.meta for t in tools},
            "style": style,
            "persona": persona.strip(),
            "plan": [n.to_dict() for n in needs],
            "messages": transcript,
            "turns": {str(k): v for k, v in sorted(turns.items())},
            "user_keep": {str(k): v for k, v in sorted(user_keep.items())},
            "needs_done": list(range(len(needs))),
            "rejected_turns": [],
            "stop_reason": "plan_done",
            "requests": state["requests"],
            "request_failures": dict(Counter(state["failures"])),
        }
