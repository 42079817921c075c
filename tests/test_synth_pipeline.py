"""synth_apis end to end against a scripted chat server: malformed and invalid generator output is
rejected with named reasons and the stage completes. The real ChatClient talks HTTP to a stand-in
for the server (transport only; what it answers is the literal text below, in request order)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from looptool.io import read_jsonl
from looptool.llm.client import ChatClient, ClientConfig
from looptool.synth.pipeline import run_synth_apis
from looptool.synth.trees import ConstraintTree, ContextTree, sample_api_spec

ROOT = Path(__file__).resolve().parents[1]
CFG = {
    "backend": "llm", "parameter_descriptions": "generated",
    "context_tree": str(ROOT / "data" / "trees" / "context_tree.yaml"),
    "constraint_tree": str(ROOT / "data" / "trees" / "constraint_tree.yaml"),
    "requested": 6, "temperature": 0.7, "max_tokens": 300,
    "contamination": {"bfcl": True, "acebench_dir": None},
}


class ScriptedChatServer:
    """Answers chat-completions requests with the next scripted (content, finish_reason)."""

    def __init__(self, replies: list[tuple[str, str]]):
        self.replies = list(replies)
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                with server.lock:
                    content, finish = server.replies.pop(0)
                body = json.dumps({"choices": [{"index": 0, "finish_reason": finish,
                                                "message": {"role": "assistant", "content": content}}],
                                   "usage": {"prompt_tokens": 10, "completion_tokens": 10}}).encode()
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


def reply_for(spec, name: str, param_names: list[str] | None = None, description: str = "Does the thing.") -> str:
    params = []
    for i, slot in enumerate(spec.slots):
        camel = spec.naming_style in ("camelCase", "PascalCase")
        words = ["city", "start", "order", "room"]
        default = [f"{w}Label" if camel else f"{w}_label" for w in words[: len(spec.slots)]]
        entry = {"name": (param_names or default)[i],
                 "description": "value as the user says it, e.g. 4 inch"}
        if slot.kind == "enum":
            entry["values"] = ["small", "large"]
        if slot.kind == "array":
            entry["item_type"] = "string"
        if slot.kind == "object":
            entry["fields"] = [{"name": "label", "type": "string"}]
        params.append(entry)
    return json.dumps({"name": name, "description": description, "parameters": params})


STYLE_NAMES = {"snake_case": ["plan_{}_trip", "track_{}_parcel"], "camelCase": ["planTrip{}", "trackParcel{}"],
               "dotted_namespace": ["travel.plan_{}", "parcel.track_{}"], "PascalCase": ["PlanTrip{}", "TrackParcel{}"]}


def good_name(spec, k: int) -> str:
    words = ["alpha", "bravo", "delta", "echo", "golf", "hotel"]
    word = words[k] if spec.naming_style in ("snake_case", "dotted_namespace") else words[k].capitalize()
    return STYLE_NAMES[spec.naming_style][k % 2].format(word)


def test_synth_apis_rejects_bad_generations_with_reasons(tmp_path):
    context, constraints = ContextTree.load(CFG["context_tree"]), ConstraintTree.load(CFG["constraint_tree"])
    specs = [sample_api_spec(context, constraints, 0, i) for i in range(6)]
    two_params = [s for s in specs if len(s.slots) >= 2]
    assert two_params, "seed 0 should draw a spec with two or more parameters"
    replies = []
    expected = {}
    for i, spec in enumerate(specs):
        if i == 0:
            replies.append(("{\"name\": \"oops\", \"description\": ", "length"))  # truncated output
            expected[spec.id] = "generator_truncated"
        elif i == 1:
            replies.append(("this is not json at all", "stop"))
            expected[spec.id] = "generator_invalid_json"
        elif i == 2:
            replies.append((reply_for(spec, "calculate_triangle_area"), "stop"))  # a BFCL function
            expected[spec.id] = "generator_schema_mismatch" if spec.naming_style != "snake_case" else "benchmark_contamination"
        elif i == 3:
            replies.append((reply_for(spec, good_name(spec, 3), description="   "), "stop"))
            expected[spec.id] = "empty_description"
        elif spec is two_params[-1] and len(spec.slots) >= 2:
            names = ["same_name"] * len(spec.slots) if spec.naming_style in ("snake_case", "dotted_namespace") else ["sameName"] * len(spec.slots)
            replies.append((reply_for(spec, good_name(spec, i), param_names=names), "stop"))
            expected[spec.id] = "param_count_out_of_range"
        else:
            replies.append((reply_for(spec, good_name(spec, i)), "stop"))
            expected[spec.id] = None
    server = ScriptedChatServer(replies)
    try:
        with ChatClient(ClientConfig(base_url=server.base_url, kind="llama_cpp", concurrency=1, max_retries=0)) as client:
            metrics = run_synth_apis(dict(CFG), {}, 0, tmp_path, client=client)
    finally:
        server.close()
    ledger = {r["id"]: r for r in read_jsonl(tmp_path / "ledger.jsonl")}
    assert set(ledger) == {s.id for s in specs}
    for spec_id, reason in expected.items():
        assert ledger[spec_id]["reason"] == reason, (spec_id, ledger[spec_id]["info"].get("detail"))
    kept = [e["tool"]["name"] for e in read_jsonl(tmp_path / "apis.jsonl")]
    assert len(kept) == sum(1 for r in expected.values() if r is None) == metrics["valid_apis"] >= 1
    assert metrics["in"] == metrics["kept"] + metrics["rejected"] == 6
    assert json.loads((tmp_path / "metrics.json").read_text())["requested"] == 6
