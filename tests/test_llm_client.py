"""ChatClient against a scripted HTTP server on 127.0.0.1 (a stand-in for the transport only).

The stub speaks just enough of the chat-completions protocol to return good, malformed, truncated
and failing replies on demand; what it returns is chosen by the user message of each request. The
real llama.cpp server is exercised in test_llm_server.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from looptool.llm.cache import ResponseCache, file_fingerprint
from looptool.llm.client import (
    ChatClient,
    ChatRequest,
    ClientConfig,
    LLMConfigError,
    LLMServerUnreachable,
)
from looptool.llm.server import EmbeddedServerConfig, embedded_model_identity, free_port, open_llm

CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temp_c": {"type": "number"}},
    "required": ["city", "temp_c"],
}


def completion_body(content: str, finish_reason: str = "stop") -> dict:
    return {
        "id": "stub",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


class ScriptedServer:
    """Answers POST /v1/chat/completions according to the last user message (the 'script word')."""

    def __init__(self):
        self.requests: list[dict] = []  # every request body received, in arrival order
        self.models: list[dict] = [{"id": "stub-model"}]  # what GET /v1/models lists
        self.headers: list[dict] = []
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                self._send(200, json.dumps({"data": stub.models}).encode())

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                word = body["messages"][-1]["content"]
                with stub._lock:
                    stub.requests.append(body)
                    stub.headers.append(dict(self.headers))
                    stub._seen[word] = stub._seen.get(word, 0) + 1
                    seen = stub._seen[word]
                stub.respond(self, word, seen)

            def _send(self, status: int, payload: bytes, length: int | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload) if length is None else length))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, word: str) -> int:
        with self._lock:
            return self._seen.get(word, 0)

    def respond(self, handler, word: str, seen: int) -> None:
        send = handler._send
        if word.startswith("ok"):
            # Answers valid for CITY_SCHEMA; the word is echoed so order can be checked.
            if word.startswith("ok-slow"):
                time.sleep(0.05 * (hash(word) % 5))
            send(200, json.dumps(completion_body(json.dumps({"city": word, "temp_c": 20.5}))).encode())
        elif word == "bad_body":
            send(200, b"this is not {json")
        elif word == "no_choices":
            send(200, json.dumps({"choices": [], "usage": {}}).encode())
        elif word == "schema_mismatch":
            send(200, json.dumps(completion_body(json.dumps({"city": 5}))).encode())
        elif word == "not_json_content":
            send(200, json.dumps(completion_body("The weather is nice.")).encode())
        elif word == "truncated":
            send(200, json.dumps(completion_body('{"city": "Par', finish_reason="length")).encode())
        elif word == "cut_body":
            # Promise more bytes than are sent, then close: the body is cut off mid-stream.
            full = json.dumps(completion_body(json.dumps({"city": "x", "temp_c": 1}))).encode()
            send(200, full[: len(full) // 2], length=len(full))
            handler.close_connection = True
        elif word == "flaky503":
            if seen == 1:
                send(503, b'{"error": "warming up"}')
            else:
                send(200, json.dumps(completion_body(json.dumps({"city": "Oslo", "temp_c": -3}))).encode())
        elif word == "always503":
            send(503, b'{"error": "overloaded"}')
        elif word == "bad400":
            send(400, b'{"error": "bad request"}')
        elif word == "thinks":
            # A thinking model served without a reasoning parser: the thought comes in the content.
            reply = "<think>\nParis is in France; about 20 degrees.\n</think>\n\n" + json.dumps({"city": "Paris", "temp_c": 20})
            send(200, json.dumps(completion_body(reply)).encode())
        elif word == "thinks_on":
            send(200, json.dumps(completion_body('<think>\nParis... {"city": "Paris", "temp_c": 20} or')).encode())
        else:
            send(200, json.dumps(completion_body(f"plain text reply to {word}")).encode())

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    server = ScriptedServer()
    yield server
    server.close()


def make_client(stub: ScriptedServer, tmp_path, **overrides) -> ChatClient:
    settings = dict(base_url=stub.base_url, model="stub-model", kind="llama_cpp", max_retries=2, backoff=0.05,
                    timeout_s=5, cache_path=str(tmp_path / "cache.sqlite"))
    settings.update(overrides)
    return ChatClient(ClientConfig(**settings))


def ask(word: str, schema=CITY_SCHEMA, **fields) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": word}], schema=schema, **fields)


def test_malformed_or_truncated_replies_fail_only_their_own_request(stub, tmp_path):
    words = ["ok-1", "bad_body", "no_choices", "schema_mismatch", "not_json_content", "truncated", "cut_body", "ok-2"]
    with make_client(stub, tmp_path, concurrency=4) as client:
        results = client.chat_many([ask(w) for w in words], progress=False)
        kinds = {w: r.error_kind for w, r in zip(words, results)}
        assert kinds == {
            "ok-1": None, "bad_body": "malformed_body", "no_choices": "no_choices",
            "schema_mismatch": "schema_mismatch", "not_json_content": "invalid_json", "truncated": "truncated",
            "cut_body": "transport", "ok-2": None,
        }
        assert results[0].parsed == {"city": "ok-1", "temp_c": 20.5}
        assert results[-1].parsed == {"city": "ok-2", "temp_c": 20.5}
        assert all(r.ok == (r.error is None) for r in results)
        assert client.usage.failures == 6 and client.usage.requests == 8
        # A cut-off body is a transport error: retried (max_retries=2), then given up.
        assert stub.count("cut_body") == 3
        # Only successes are cached: a re-run asks again for the failures, never for the successes.
        assert len(client.cache) == 2
        again = client.chat_many([ask(w) for w in words], progress=False)
        assert [r.cached for r in again] == [True, False, False, False, False, False, False, True]
        assert stub.count("ok-1") == 1 and stub.count("bad_body") == 2


def test_results_come_back_in_input_order_under_concurrency(stub, tmp_path):
    words = [f"ok-slow-{i}" for i in range(24)]
    with make_client(stub, tmp_path, concurrency=8) as client:
        results = client.chat_many([ask(w) for w in words], progress=False)
    assert [r.parsed["city"] for r in results] == words


def test_identical_requests_in_one_batch_are_sent_once(stub, tmp_path):
    with make_client(stub, tmp_path, cache_path=None) as client:
        results = client.chat_many([ask("ok-dup")] * 5, progress=False)
    assert all(r.ok for r in results) and stub.count("ok-dup") == 1


def test_503_is_retried_with_backoff_then_succeeds(stub, tmp_path):
    with make_client(stub, tmp_path, backoff=0.2, max_retries=3) as client:
        started = time.monotonic()
        result = client.chat_many([ask("flaky503")], progress=False)[0]
        elapsed = time.monotonic() - started
    assert result.ok and result.parsed == {"city": "Oslo", "temp_c": -3}
    assert result.attempts == 2 and stub.count("flaky503") == 2
    assert client.usage.retries == 1 and client.usage.calls == 2
    assert elapsed >= 0.1  # the first backoff sleep is 0.2 s with jitter in [0.5, 1]


def test_503_gives_up_after_max_retries(stub, tmp_path):
    with make_client(stub, tmp_path, max_retries=2, backoff=0.01) as client:
        result = client.chat_many([ask("always503")], progress=False)[0]
    assert not result.ok and result.error_kind == "http_503" and result.attempts == 3
    assert stub.count("always503") == 3


def test_400_is_not_retried(stub, tmp_path):
    with make_client(stub, tmp_path, max_retries=3) as client:
        result = client.chat_many([ask("bad400")], progress=False)[0]
    assert not result.ok and result.error_kind == "http_400" and result.attempts == 1
    assert stub.count("bad400") == 1


def test_closed_port_fails_fast_naming_the_endpoint(tmp_path):
    port = free_port()  # nothing listens here
    config = ClientConfig(base_url=f"http://127.0.0.1:{port}/v1", max_retries=2, backoff=0.1, connect_timeout_s=1.0,
                          cache_path=str(tmp_path / "c.sqlite"))
    with ChatClient(config) as client:
        started = time.monotonic()
        with pytest.raises(LLMServerUnreachable, match=f"127.0.0.1:{port}/v1"):
            client.chat_many([ask(f"ok-{i}") for i in range(50)], concurrency=4, progress=False)
        elapsed = time.monotonic() - started
    # 3 connection attempts with 0.1 s and 0.2 s backoff, not 50 requests times that.
    assert elapsed < 3.0
    assert client.usage.calls <= 4 * 3


def test_schema_dialect_follows_server_kind(stub, tmp_path):
    with make_client(stub, tmp_path, kind="llama_cpp", cache_path=None) as client:
        client.chat_many([ask("ok-a")], progress=False)
    with make_client(stub, tmp_path, kind="vllm", cache_path=None) as client:
        client.chat_many([ask("ok-b", schema_name="weather")], progress=False)
    llama_format, openai_format = stub.requests[0]["response_format"], stub.requests[1]["response_format"]
    assert llama_format == {"type": "json_object", "schema": CITY_SCHEMA}
    assert openai_format == {"type": "json_schema",
                             "json_schema": {"name": "weather", "schema": CITY_SCHEMA, "strict": True}}


def test_plain_text_request_has_no_response_format(stub, tmp_path):
    with make_client(stub, tmp_path, cache_path=None) as client:
        result = client.chat([{"role": "user", "content": "hello"}])
    assert result.ok and result.parsed is None and result.text == "plain text reply to hello"
    assert "response_format" not in stub.requests[0]


def test_api_key_read_from_named_env_var_and_never_stored(stub, tmp_path, monkeypatch):
    secret = "sk-test-6f1d0c"
    monkeypatch.setenv("LOOPTOOL_TEST_JUDGE_KEY", secret)
    with make_client(stub, tmp_path, api_key_env="LOOPTOOL_TEST_JUDGE_KEY") as client:
        assert client.chat_many([ask("ok-key")], progress=False)[0].ok
        assert secret not in repr(client.config)
    assert stub.headers[0]["Authorization"] == f"Bearer {secret}"
    assert secret.encode() not in (tmp_path / "cache.sqlite").read_bytes()


def test_cache_key_covers_every_request_field(tmp_path):
    client = ChatClient(ClientConfig(cache_path=None))
    base = ask("ok")
    keys = {
        client.cache_key(base),
        client.cache_key(ask("ok", sample_index=1)),
        client.cache_key(ask("ok", seed=7)),
        client.cache_key(ask("ok", temperature=0.7)),
        client.cache_key(ask("ok", max_tokens=9)),
        client.cache_key(ask("ok", schema=None)),
        client.cache_key(ask("other")),
    }
    assert len(keys) == 7
    reordered = ChatRequest(messages=[{"content": "ok", "role": "user"}],
                            schema={"required": ["city", "temp_c"], **CITY_SCHEMA})
    assert client.cache_key(reordered) == client.cache_key(base)
    # The server address is not part of the key: the embedded server gets a new port every run.
    other_port = ChatClient(ClientConfig(base_url="http://127.0.0.1:1/v1", cache_path=None))
    assert other_port.cache_key(base) == client.cache_key(base)


def test_cache_file_is_shared_between_clients(stub, tmp_path):
    with make_client(stub, tmp_path) as first:
        first.chat_many([ask("ok-shared")], progress=False)
    with make_client(stub, tmp_path) as second:
        result = second.chat_many([ask("ok-shared")], progress=False)[0]
    assert result.cached and stub.count("ok-shared") == 1
    assert second.usage.cache_hits == 1 and second.usage.calls == 0


def test_cache_survives_concurrent_writers_in_processes(tmp_path):
    import multiprocessing

    path = tmp_path / "mp.sqlite"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_entries, args=(str(path), worker)) for worker in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    with ResponseCache(path) as cache:
        assert len(cache) == 3 * 50


def _write_entries(path: str, worker: int) -> None:
    with ResponseCache(path) as cache:
        for i in range(50):
            cache.put(f"{worker}-{i}", {"i": i}, {"body": {"worker": worker}})


def test_unknown_setting_is_rejected():
    with pytest.raises(LLMConfigError, match="tempurature"):
        ClientConfig.from_mapping({"tempurature": 0.3})
    with pytest.raises(LLMConfigError, match="kind"):
        ClientConfig(kind="anthropic")


def test_model_file_fingerprint_follows_the_content_not_the_path_or_mtime(tmp_path):
    data = b"GGUF" + bytes(range(256)) * 64
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(data)
    fingerprint = file_fingerprint(fake)
    assert fingerprint == "sha256:" + hashlib.sha256(data).hexdigest()
    copy = tmp_path / "elsewhere" / "copy.gguf"
    copy.parent.mkdir()
    shutil.copyfile(fake, copy)
    os.utime(copy, ns=(1_000_000_000, 1_000_000_000))
    assert file_fingerprint(copy) == fingerprint
    # Same size, one byte different, rewritten later: a new model, even though the name is the same.
    mtime = fake.stat().st_mtime_ns
    fake.write_bytes(data[:-1] + b"X")
    os.utime(fake, ns=(mtime + 1_000_000_000, mtime + 1_000_000_000))
    assert file_fingerprint(fake) not in (fingerprint, None)
    assert file_fingerprint(fake) == file_fingerprint(fake)


def test_embedded_identity_is_the_gguf_fingerprint_and_chat_format(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF fake weights")
    expected = "sha256:" + hashlib.sha256(b"GGUF fake weights").hexdigest()
    assert embedded_model_identity(EmbeddedServerConfig(model_path=str(fake))) == {"gguf": expected}
    assert embedded_model_identity(EmbeddedServerConfig(model_path=str(fake), chat_format="chatml")) == {
        "gguf": expected, "chat_format": "chatml"}
    with pytest.raises(LLMConfigError, match="not found"):
        embedded_model_identity(EmbeddedServerConfig(model_path=str(tmp_path / "missing.gguf")))


def test_cache_key_names_the_served_model():
    config = ClientConfig(cache_path=None)
    request = ask("ok")
    plain = ChatClient(config).cache_key(request)
    gguf_a = ChatClient(config, served_model={"gguf": "sha256:aa"}).cache_key(request)
    gguf_b = ChatClient(config, served_model={"gguf": "sha256:bb"}).cache_key(request)
    revised = ChatClient(ClientConfig(model_revision="2025-06", cache_path=None)).cache_key(request)
    assert len({plain, gguf_a, gguf_b, revised}) == 4
    assert ChatClient(config, served_model={"gguf": "sha256:aa"}).cache_key(request) == gguf_a
    assert ChatClient(ClientConfig(model_revision="2025-06", cache_path=None)).cache_key(request) == revised


def test_a_swapped_model_under_the_same_name_is_asked_again(stub, tmp_path):
    config = ClientConfig(base_url=stub.base_url, model="stub-model", max_retries=0,
                          cache_path=str(tmp_path / "cache.sqlite"))
    served_a, served_b = {"gguf": "sha256:aa"}, {"gguf": "sha256:bb"}
    with ChatClient(config, served_model=served_a) as client:
        assert not client.chat_many([ask("ok-swap")], progress=False)[0].cached
    with ChatClient(config, served_model=served_a) as client:
        assert client.chat_many([ask("ok-swap")], progress=False)[0].cached
    with ChatClient(config, served_model=served_b) as client:
        assert not client.chat_many([ask("ok-swap")], progress=False)[0].cached
    revised = ClientConfig(**{**config.__dict__, "model_revision": "v2"})
    with ChatClient(revised, served_model=served_b) as client:
        assert not client.chat_many([ask("ok-swap")], progress=False)[0].cached
    assert stub.count("ok-swap") == 3


def test_external_server_reported_model_root_enters_the_key(stub, tmp_path):
    section = {"backend": "external", "base_url": stub.base_url, "model": "stub-model", "max_retries": 0,
               "cache_path": str(tmp_path / "cache.sqlite")}

    def serve(root: str, created: int) -> None:
        # vLLM's card: `root` is what it loaded; `created` is the time of the request.
        stub.models = [{"id": "other-model", "root": "/weights/other"},
                       {"id": "stub-model", "object": "model", "root": root, "owned_by": "vllm", "created": created}]

    def asked_again() -> bool:
        with open_llm(section) as client:
            return not client.chat_many([ask("ok-root")], progress=False)[0].cached

    serve("/weights/qwen-a", 1)
    with open_llm(section) as client:
        assert client.served_model == {"root": "/weights/qwen-a"}
    assert asked_again()
    serve("/weights/qwen-a", 2)
    assert not asked_again()
    serve("/weights/qwen-b", 3)
    assert asked_again()
    assert stub.count("ok-root") == 2


def test_chat_template_kwargs_go_into_every_request_body_and_the_cache_key(stub, tmp_path):
    off = {"enable_thinking": False}
    with make_client(stub, tmp_path, kind="vllm", chat_template_kwargs=off) as client:
        assert client.chat_many([ask("ok-think-off"), ask("ok-think-off-2", schema=None)], progress=False)[0].ok
    assert [r.get("chat_template_kwargs") for r in stub.requests] == [off, off]
    with make_client(stub, tmp_path, kind="vllm") as client:  # the default: nothing sent
        client.chat_many([ask("ok-no-kwargs")], progress=False)
    assert "chat_template_kwargs" not in stub.requests[-1]
    plain = ChatClient(ClientConfig(cache_path=None)).cache_key(ask("ok"))
    assert ChatClient(ClientConfig(chat_template_kwargs={}, cache_path=None)).cache_key(ask("ok")) == plain
    assert ChatClient(ClientConfig(chat_template_kwargs=off, cache_path=None)).cache_key(ask("ok")) != plain
    # From params: the llm section takes the key beside the other client fields.
    from looptool.llm.server import LLMConfig
    from looptool.params import section_config

    llm = section_config({"llm": {"backend": "external", "chat_template_kwargs": off}}, "llm", LLMConfig)
    assert llm.client.chat_template_kwargs == off and LLMConfig().client.chat_template_kwargs is None


def test_a_think_block_in_the_reply_is_cut_off_and_counted(stub, tmp_path):
    with make_client(stub, tmp_path) as client:
        thought, unclosed, plain = client.chat_many([ask("thinks"), ask("thinks_on"), ask("ok-plain")], progress=False)
        assert thought.ok and thought.parsed == {"city": "Paris", "temp_c": 20} and not thought.text.startswith("<think>")
        assert thought.thought == "Paris is in France; about 20 degrees."
        assert not unclosed.ok and unclosed.error_kind == "think_unclosed"  # the thought is never read as the answer
        assert plain.ok and plain.thought is None
        assert client.usage.as_dict()["thinking"] == 2 and client.usage.failure_kinds == {"think_unclosed": 1}
    with make_client(stub, tmp_path) as client:  # the cached reply is read the same way
        again = client.chat_many([ask("thinks")], progress=False)[0]
        assert again.cached and again.parsed == thought.parsed and again.thought == thought.thought


def test_reasoning_returned_beside_the_content_is_kept_as_the_thought():
    from looptool.llm.client import interpret_response

    body = completion_body("plain answer")
    body["choices"][0]["message"]["reasoning_content"] = "weighing it up"  # vLLM with --reasoning-parser
    result = interpret_response(json.dumps(body).encode(), None)
    assert result.ok and result.text == "plain answer" and result.thought == "weighing it up"
