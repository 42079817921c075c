"""The whole seed flow (synth_apis -> simulate -> verify_seed -> build_samples) on the real client,
talking HTTP to a scripted stand-in server that answers every request deterministically from the
request itself: structured requests get an instance of their JSON Schema (string values derived
from the property name, so values the planner picks can be repeated by the user and the
assistant), free-text requests get a sentence repeating the values the prompt asks to mention.

What this checks: every stage's ledger balances (in == kept + rejected), 100% of emitted samples
pass the rule checks, and the stages complete. Real model behaviour is covered by the server tests.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from looptool.io import read_jsonl
from looptool.ledger import Ledger
from looptool.llm.client import ChatClient, ClientConfig
from looptool.schema import Sample
from looptool.synth.apis import PARAM_NAME_PATTERNS
from looptool.synth.pipeline import run_build_samples, run_import_tools, run_simulate, run_synth_apis, run_verify
from looptool.synth.samples import check_sample
from looptool.synth.trees import ConstraintTree

ROOT = Path(__file__).resolve().parents[1]
TREES = ROOT / "data" / "trees"
TOOL_WORDS = ["route", "parcel", "invoice", "ticket", "meter", "recipe", "permit", "playlist", "course", "claim",
              "voucher", "session"]
PARAM_WORDS = [("city", "name"), ("start", "date"), ("order", "code"), ("amount", "due"), ("room", "label")]


def _names_for(pattern: str, counter: int) -> str | None:
    word = TOOL_WORDS[counter % len(TOOL_WORDS)]
    styles = ConstraintTree.load(TREES / "constraint_tree.yaml").branches["naming_style"]
    candidates = {
        styles["snake_case"]: f"lookup_{word}_status",
        styles["camelCase"]: f"lookup{word.capitalize()}Status",
        styles["dotted_namespace"]: f"{word}.lookup_status",
        styles["PascalCase"]: f"Lookup{word.capitalize()}Status",
    }
    return candidates.get(pattern)


class SchemaAnswerer:
    """Builds a deterministic instance of a (decoding) JSON Schema."""

    def __init__(self):
        self.tool_counter = 0

    def instance(self, schema: dict, key: str = "value", position: int = 0):
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][0]
        if "anyOf" in schema:
            return self.instance(schema["anyOf"][0], key, position)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = kind[0]
        if kind == "object":
            props = schema.get("properties") or {}
            return {k: self.instance(v, k, position) for k, v in props.items()}
        if kind == "array":
            if "prefixItems" in schema:
                return [self.instance(s, key, i) for i, s in enumerate(schema["prefixItems"])]
            count = max(1, schema.get("minItems", 1))
            return [self.instance(schema.get("items") or {"type": "string"}, key, i) for i in range(count)]
        if kind == "integer":
            return 7
        if kind == "number":
            return 2.5
        if kind == "boolean":
            return True
        pattern = schema.get("pattern")
        if pattern:
            if pattern in (PARAM_NAME_PATTERNS["snake"], PARAM_NAME_PATTERNS["camel"]):
                first, second = PARAM_WORDS[position % len(PARAM_WORDS)]
                return f"{first}_{second}" if pattern == PARAM_NAME_PATTERNS["snake"] else f"{first}{second.capitalize()}"
            name = _names_for(pattern, self.tool_counter)
            if name is not None:
                self.tool_counter += 1
                return name
            raise AssertionError(f"no scripted string for pattern {pattern}")
        if key in ("description", "reason", "topic", "error"):
            return f"A clear {key} for this item."
        return f"{key}-{position}x"  # e.g. "order_code-0x": repeatable by the user and the assistant


def scripted_text(messages: list[dict]) -> str:
    prompt = messages[-1]["content"]
    mention = re.search(r"Mention these values exactly as written: (.*)\.$", prompt, re.S)
    if mention:
        return f"Please help me with {mention.group(1)} today."
    if messages[0]["role"] == "system" and "Reply in plain text" in messages[0]["content"]:
        return "Here is what I found for you."
    return "Hello, could you help me with something?"


class ScriptedServer:
    def __init__(self):
        answerer = SchemaAnswerer()
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fmt = request.get("response_format")
                with lock:
                    content = (json.dumps(answerer.instance(fmt["schema"])) if fmt else scripted_text(request["messages"]))
                body = json.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": content}}],
                                   "usage": {"prompt_tokens": 5, "completion_tokens": 5}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self):
        self.http.shutdown()
        self.http.server_close()


def test_seed_flow_balances_and_emits_only_rule_passing_samples(tmp_path):
    server = ScriptedServer()
    synth_cfg = {"backend": "llm", "context_tree": str(TREES / "context_tree.yaml"), "constraint_tree": str(TREES / "constraint_tree.yaml"),
                 "requested": 10, "temperature": 0.7, "max_tokens": 300, "parameter_descriptions": "templated",
                 "contamination": {"bfcl": True, "acebench_dir": None}}
    sim_cfg = {"agents": {"planner": "llm", "user": "llm", "assistant": "llm", "tool": "llm"},
               "dialogues": 6, "tools_per_dialogue": [2, 3], "needs_per_dialogue": [2, 3], "assistant_samples": 2,
               "tool_error_rate": 0.3, "concurrency": 2,
               "need_kind_weights": {"single_call": 2, "parallel": 1, "multi_step": 1, "needs_clarification": 1, "no_tool": 1}}
    try:
        with ChatClient(ClientConfig(base_url=server.base_url, kind="llama_cpp", concurrency=2, max_retries=0,
                                     cache_path=str(tmp_path / "cache.sqlite"))) as client:
            apis = run_synth_apis(synth_cfg, {}, 0, tmp_path / "apis", client=client)
            imported = run_import_tools({"files": []}, tmp_path / "imported")
            sim = run_simulate(sim_cfg, {}, 0, [tmp_path / "apis" / "apis.jsonl", tmp_path / "imported" / "tools.jsonl"],
                               tmp_path / "dialogues", client=client)
            ver = run_verify({"judge": True, "judge_max_tokens": 60, "judge_sample": None, "judge_min_yes": 3}, {}, 0, tmp_path / "dialogues" / "dialogues.jsonl",
                             tmp_path / "verified", client=client)
    finally:
        server.close()
    built = run_build_samples({"round1_size": 0.5}, 0, tmp_path / "verified" / "dialogues.jsonl",
                              tmp_path / "round1.jsonl", tmp_path / "pool.jsonl", tmp_path / "samples")
    for metrics, folder in ((apis, "apis"), (imported, "imported"), (sim, "dialogues"), (ver, "verified"), (built, "samples")):
        assert metrics["in"] == metrics["kept"] + metrics["rejected"], folder
        ledger = Ledger.read(tmp_path / folder / "ledger.jsonl")
        ledger.check_balanced()
        assert ledger.count("kept") == metrics["kept"]
    assert apis["valid_apis"] >= 5, apis["rejected_by_reason"]
    assert sim["dialogues"] >= 1 and ver["verified"] >= 1 and built["samples"] >= 1, (sim, ver["rejected_by_reason"], [json.loads(l)["info"] for l in (tmp_path / "verified" / "ledger.jsonl").read_text().splitlines()][:3])
    assert built["round1"] + built["pool"] == built["samples"]
    samples = read_jsonl(tmp_path / "round1.jsonl", Sample.from_dict) + read_jsonl(tmp_path / "pool.jsonl", Sample.from_dict)
    assert len(samples) == built["samples"]
    assert all(check_sample(s) == [] for s in samples)
    assert any(s.expects_call for s in samples) and any(not s.expects_call for s in samples)
    assert {s.origin for s in samples} == {"seed"}
