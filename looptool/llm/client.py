"""Generator/judge client: OpenAI chat-completions over httpx, for any compatible server.

One client serves both production (`vllm serve`, or any OpenAI-compatible endpoint) and the embedded
llama.cpp server. What it guarantees to the stages above it:

* **Structured output** — a request may carry a JSON Schema; the server is asked to constrain its
  output to it (in the dialect that server kind understands, see ``RESPONSE_FORMAT_ADAPTERS``), and
  the reply is parsed and validated with ``jsonschema`` before it counts as a success.
* **Per-request failures, never a crashed batch** — a malformed body, missing choices, invalid JSON,
  a schema mismatch, a truncated reply (``finish_reason == "length"``), an HTTP 4xx, or retries
  exhausted on 429/5xx/timeouts: each becomes a failed ``ChatResult`` with a reason, and the batch
  goes on.
* **Fail fast when nobody is listening** — if the server cannot be connected to after the bounded
  retries, ``LLMServerUnreachable`` is raised (naming the endpoint) and the batch stops: thousands
  of identical failures would only hide the real problem.
* **Thinking models** — ``chat_template_kwargs`` (e.g. ``{"enable_thinking": false}``) go into every
  request body for the server's chat template; a reply that opens a ``<think>`` block is cut to the
  answer after it (the thought is kept in ``ChatResult.thought``), and one whose block never closes
  is a failure (``think_unclosed``): the thought is never read as the answer.
* **Resumable and deterministic re-runs** — successful replies go to a persistent cache keyed by the
  full request (model, messages, response format, sampling params, seed, chat template kwargs,
  sample index) and by what identifies the model behind the name (``model_revision``, and
  ``served_model``: the embedded GGUF's fingerprint or what an external server reports), written
  as each reply arrives.
* **Bounded concurrency** — ``chat_many`` runs at most ``concurrency`` requests at once in a thread
  pool and returns results in input order.

API keys are read from the environment variable named by ``ClientConfig.api_key_env`` and only ever
placed in the Authorization header; they are not stored in the config, logged, or cached.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema
from tqdm.auto import tqdm

from looptool.llm.cache import ResponseCache, request_key
from looptool.params import ParamsError
from looptool.toolcall import split_thinking

logger = logging.getLogger(__name__)

# HTTP statuses worth another try: rate limiting and server-side trouble. Every other 4xx means the
# request itself is wrong and would fail the same way again.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class LLMError(RuntimeError):
    """Base class of errors that stop an LLM-using stage (as opposed to per-request failures)."""


class LLMServerUnreachable(LLMError):
    """No connection could be made to the server within the configured retries and timeouts."""


class LLMConfigError(LLMError, ParamsError):
    """The client or server configuration is invalid (unknown key, unknown server kind, ...)."""


def _json_object_with_schema(schema: dict[str, Any], name: str) -> dict[str, Any]:
    # llama-cpp-python's server compiles `schema` into a grammar; it answers HTTP 500 to OpenAI's
    # "json_schema" type (measured with llama-cpp-python 0.3.x, see DESIGN.md section 5).
    return {"type": "json_object", "schema": schema}


def _openai_json_schema(schema: dict[str, Any], name: str) -> dict[str, Any]:
    # OpenAI's structured-output form, which vLLM's OpenAI-compatible server also accepts.
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


RESPONSE_FORMAT_ADAPTERS = {
    "llama_cpp": _json_object_with_schema,
    "openai": _openai_json_schema,
    "vllm": _openai_json_schema,
}


@dataclass
class ClientConfig:
    """Settings of the OpenAI-compatible chat client (one instance per role: generator, judge)."""

    base_url: str = field(
        default="http://127.0.0.1:8000/v1",
        metadata={"help": "Server URL up to and including the API version, e.g. http://host:8000/v1."},
    )
    model: str = field(
        default="smollm2-135m-instruct",
        metadata={"help": "Model name sent with every request (the server's served model name)."},
    )
    model_revision: str | None = field(
        default=None,
        metadata={
            "help": "Revision of the model served as `model` (checkpoint tag, HF commit, ...); part of the response "
            "cache key, so change it when the model behind the name changes. The embedded backend also keys on "
            "the GGUF file's hash, an external server on the model root it reports (vLLM)."
        },
    )
    kind: str = field(
        default="llama_cpp",
        metadata={
            "help": "Server dialect for structured output: 'llama_cpp' (llama-cpp-python server) or "
            "'openai' / 'vllm' (OpenAI json_schema response format)."
        },
    )
    api_key_env: str = field(
        default="OPENAI_API_KEY",
        metadata={"help": "NAME of the environment variable holding the API key (sent only if set)."},
    )
    timeout_s: float = field(
        default=300.0,
        metadata={"help": "Seconds to wait for one response (read timeout) before the attempt counts as failed."},
    )
    connect_timeout_s: float = field(
        default=5.0,
        metadata={"help": "Seconds to wait for a TCP connection to the server per attempt."},
    )
    max_retries: int = field(
        default=3,
        metadata={
            "help": "Retries after the first attempt on connection errors, timeouts, 429 and 5xx. An unreachable "
            "server is reported after at most (max_retries+1)*connect_timeout_s plus the backoff sleeps."
        },
    )
    backoff: float = field(
        default=1.0,
        metadata={"help": "Base backoff in seconds; attempt k sleeps backoff*2**k (jittered, capped by backoff_max)."},
    )
    backoff_max: float = field(default=30.0, metadata={"help": "Upper bound of one backoff sleep, in seconds."})
    concurrency: int = field(
        default=4, metadata={"help": "Requests in flight at once in chat_many (the server may still serialise)."}
    )
    cache_path: str | None = field(
        default=None,
        metadata={"help": "SQLite response cache file; None disables caching (not resumable)."},
    )
    temperature: float = field(default=0.0, metadata={"help": "Sampling temperature (0 = greedy)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass."})
    max_tokens: int = field(
        default=512, metadata={"help": "Completion token limit; a reply that hits it is a failure (truncated)."}
    )
    seed: int = field(
        default=0,
        metadata={"help": "Base sampling seed; request sample i is sent with seed + i so samples differ."},
    )
    chat_template_kwargs: dict[str, Any] | None = field(
        default=None,
        metadata={
            "help": "Variables for the server's chat template, sent as `chat_template_kwargs` in every request body "
            "(vLLM's OpenAI server passes them to the template; e.g. {enable_thinking: false} for Qwen3) and so part "
            "of the response-cache key. None or {} sends nothing. llama-cpp-python's server ignores the field."
        },
    )

    def __post_init__(self) -> None:
        if self.kind not in RESPONSE_FORMAT_ADAPTERS:
            raise LLMConfigError(
                f"unknown server kind {self.kind!r}; expected one of {sorted(RESPONSE_FORMAT_ADAPTERS)}"
            )
        if self.concurrency < 1:
            raise LLMConfigError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_retries < 0:
            raise LLMConfigError(f"max_retries must be >= 0, got {self.max_retries}")
        self.base_url = self.base_url.rstrip("/")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "llm") -> ClientConfig:
        """Build from a params section; unknown keys are an error (a typo must not fall back silently)."""
        from looptool.params import ParamsError, config_from_mapping

        try:
            return config_from_mapping(cls, values, where)
        except ParamsError as err:
            raise LLMConfigError(str(err)) from None

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


@dataclass
class ChatRequest:
    """One chat-completions request. Unset sampling fields take the client's defaults."""

    messages: list[dict[str, Any]]
    schema: dict[str, Any] | None = None
    schema_name: str = "response"
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    sample_index: int = 0


@dataclass
class ChatResult:
    """Outcome of one request. ``ok`` is False iff ``error`` is set; ``parsed`` only with a schema."""

    ok: bool
    text: str | None = None
    parsed: Any = None
    error: str | None = None
    error_kind: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 0
    cached: bool = False
    thought: str | None = None  # the reply's think block (stripped from ``text``), or the server's reasoning


@dataclass
class UsageStats:
    """Running totals for logging (MLflow metrics, stage summaries)."""

    requests: int = 0  # results handed back, cache hits included
    calls: int = 0  # HTTP requests sent, retries included
    cache_hits: int = 0
    failures: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0  # summed wall time of answered server calls
    thinking: int = 0  # results whose reply held a think block (or came with the server's reasoning)
    failure_kinds: Counter = field(default_factory=Counter)

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        flat: dict[str, float] = {
            f"{prefix}{name}": getattr(self, name)
            for name in ("requests", "calls", "cache_hits", "failures", "retries", "prompt_tokens",
                         "completion_tokens", "latency_s")
        }
        if self.thinking:
            flat[f"{prefix}thinking"] = self.thinking
        for kind, count in sorted(self.failure_kinds.items()):
            flat[f"{prefix}failures_{kind}"] = count
        return flat


class _Attempt(Exception):
    """Internal: an attempt that failed in a way worth retrying (carries the final failure if not)."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after


def _failure(kind: str, message: str, **extra: Any) -> ChatResult:
    return ChatResult(ok=False, error=f"{kind}: {message}", error_kind=kind, **extra)


def interpret_response(body: bytes, schema: dict[str, Any] | None) -> ChatResult:
    """Turn a 2xx chat-completions body into a result; anything malformed is a failure, never a raise."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _failure("malformed_body", f"response body is not JSON ({exc}); starts with {body[:120]!r}")
    if not isinstance(data, dict):
        return _failure("malformed_body", f"response body is a JSON {type(data).__name__}, not an object")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    tokens = {
        "prompt_tokens": int(usage.get("prompt_tokens") or 0),
        "completion_tokens": int(usage.get("completion_tokens") or 0),
    }
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return _failure("no_choices", "response has no choices", **tokens)
    choice = choices[0]
    finish_reason = choice.get("finish_reason")
    message = choice.get("message")
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(text, str):
        return _failure("no_content", "first choice has no message content", finish_reason=finish_reason, **tokens)
    if finish_reason == "length":
        return _failure(
            "truncated", "reply hit max_tokens (finish_reason=length)", text=text, finish_reason=finish_reason,
            **tokens,
        )
    # A thinking model's reply: only what follows its think block is the answer (looptool.toolcall).
    split = split_thinking(text)
    if not split.closed:
        return _failure("think_unclosed", "the reply opened a think block and never closed it (no answer)", text=text,
                        finish_reason=finish_reason, thought=split.thought, **tokens)
    text, thought = split.answer, split.thought
    reasoning = message.get("reasoning_content") or message.get("reasoning")  # vLLM with a reasoning parser
    if thought is None and isinstance(reasoning, str):
        thought = reasoning
    if schema is None:
        return ChatResult(ok=True, text=text, finish_reason=finish_reason, thought=thought, **tokens)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        return _failure("invalid_json", f"content is not JSON ({exc})", text=text, finish_reason=finish_reason,
                        thought=thought, **tokens)
    try:
        jsonschema.validate(parsed, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "<root>"
        return _failure("schema_mismatch", f"at {where}: {exc.message}", text=text, finish_reason=finish_reason,
                        thought=thought, **tokens)
    except jsonschema.SchemaError as exc:
        return _failure("invalid_schema", f"the request schema itself is invalid: {exc.message}", text=text,
                        finish_reason=finish_reason, thought=thought, **tokens)
    return ChatResult(ok=True, text=text, parsed=parsed, finish_reason=finish_reason, thought=thought, **tokens)


# Fields of a /models entry that say which weights are served under the name. vLLM's `root` is the
# path or repository it loaded and `parent` the base of a LoRA adapter. `created` is left out
# (vLLM stamps it with the time of the request) and so is `owned_by` (it names the server software).
SERVED_MODEL_FIELDS = ("root", "parent")


def served_model_identity(models_body: Any, model: str) -> dict[str, Any]:
    """What a ``GET /models`` body says about ``model`` beyond its name; {} when nothing (llama.cpp)."""
    entries = models_body.get("data") if isinstance(models_body, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("id") == model:
            return {name: entry[name] for name in SERVED_MODEL_FIELDS if entry.get(name) is not None}
    return {}


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


class ChatClient:
    """Thread-safe chat-completions client; see the module docstring for its guarantees.

    ``served_model`` identifies the model the server actually serves under ``config.model``
    (``open_llm`` fills it in: the GGUF fingerprint for the embedded server, or the external
    server's own report, see ``identify_served_model``); it goes into the cache key."""

    def __init__(self, config: ClientConfig, served_model: Mapping[str, Any] | None = None):
        self.config = config
        self.served_model = dict(served_model or {})
        self.endpoint = f"{config.base_url}/chat/completions"
        self._http = self._new_http_client()
        self.cache = ResponseCache(config.cache_path) if config.cache_path else None
        self.usage = UsageStats()
        self._usage_lock = threading.Lock()
        self._stop = threading.Event()  # set on Ctrl-C or once the server is known unreachable
        self._unreachable: LLMServerUnreachable | None = None
        self._random = random.Random(config.seed)

    def _new_http_client(self) -> httpx.Client:
        headers = {"Content-Type": "application/json"}
        api_key = os.environ.get(self.config.api_key_env)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self.config.timeout_s, connect=self.config.connect_timeout_s),
            limits=httpx.Limits(max_connections=self.config.concurrency * 2),
        )

    # ----------------------------------------------------------------------------------- requests
    def build_payload(self, request: ChatRequest) -> dict[str, Any]:
        """The exact JSON body sent to the server (also the cache key, with the sample index)."""
        cfg = self.config
        payload: dict[str, Any] = {
            "model": cfg.model,
            "messages": request.messages,
            "temperature": cfg.temperature if request.temperature is None else request.temperature,
            "top_p": cfg.top_p if request.top_p is None else request.top_p,
            "max_tokens": cfg.max_tokens if request.max_tokens is None else request.max_tokens,
            "seed": (cfg.seed if request.seed is None else request.seed) + request.sample_index,
        }
        if request.schema is not None:
            payload["response_format"] = RESPONSE_FORMAT_ADAPTERS[cfg.kind](request.schema, request.schema_name)
        if cfg.chat_template_kwargs:
            payload["chat_template_kwargs"] = dict(cfg.chat_template_kwargs)
        return payload

    def model_identity(self) -> dict[str, Any]:
        """What the cache key knows about the model beyond the name in the payload."""
        identity = dict(self.served_model)
        if self.config.model_revision is not None:
            identity["revision"] = self.config.model_revision
        return identity

    def cache_key(self, request: ChatRequest) -> str:
        # base_url is deliberately not part of the key: the embedded server gets a fresh port per run.
        return request_key({"payload": self.build_payload(request), "sample_index": request.sample_index},
                           self.model_identity())

    def chat(self, messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **fields: Any) -> ChatResult:
        """One request; ``fields`` are ``ChatRequest`` fields (temperature, max_tokens, seed, ...)."""
        return self.chat_many([ChatRequest(messages=messages, schema=schema, **fields)], concurrency=1,
                              progress=False)[0]

    def chat_many(
        self,
        requests: Sequence[ChatRequest],
        *,
        concurrency: int | None = None,
        progress: bool = True,
        desc: str = "llm",
    ) -> list[ChatResult]:
        """Answer every request (cache first, then the server); results are in input order.

        Raises ``LLMServerUnreachable`` if the server cannot be reached; results that finished
        before that are already in the cache, so a re-run resumes where this one stopped.
        """
        concurrency = concurrency or self.config.concurrency
        results: list[ChatResult | None] = [None] * len(requests)
        # Identical requests (same key) are sent once and share the answer.
        pending: dict[str, list[int]] = {}
        bar = tqdm(total=len(requests), desc=desc, disable=not progress, unit="req", dynamic_ncols=True)
        try:
            for index, request in enumerate(requests):
                key = self.cache_key(request)
                hit = self._from_cache(key, request)
                if hit is not None:
                    results[index] = hit
                    bar.update(1)
                else:
                    pending.setdefault(key, []).append(index)
            self._count(cache_hits=len(requests) - sum(len(v) for v in pending.values()))
            if pending:
                self._run_pending(requests, pending, results, concurrency, bar)
        finally:
            bar.close()
        final = [r for r in results if r is not None]
        assert len(final) == len(requests)
        with self._usage_lock:
            self.usage.requests += len(final)
            for result in final:
                self.usage.thinking += result.thought is not None
                if not result.ok:
                    self.usage.failures += 1
                    self.usage.failure_kinds[result.error_kind or "unknown"] += 1
        return final

    def _run_pending(self, requests, pending, results, concurrency, bar) -> None:
        self._stop.clear()
        self._unreachable = None
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="llm")
        try:
            futures = {
                executor.submit(self._answer, key, requests[indices[0]]): indices for key, indices in pending.items()
            }
            failures = 0
            for future in concurrent.futures.as_completed(futures):
                result = future.result()  # _answer never raises except LLMServerUnreachable
                for index in futures[future]:
                    results[index] = dataclasses.replace(result)
                failures += 0 if result.ok else 1
                bar.update(len(futures[future]))
                bar.set_postfix(failed=failures, refresh=False)
        except BaseException as exc:
            # Unreachable server or Ctrl-C: stop the workers' retry loops and drop queued requests
            # without waiting for them (finished replies are already cached).
            self._stop.set()
            executor.shutdown(wait=False, cancel_futures=True)
            if isinstance(exc, KeyboardInterrupt):
                # Closing the pool aborts requests still in flight instead of waiting up to timeout_s.
                self._http.close()
                self._http = self._new_http_client()
            if self._unreachable is not None:
                raise self._unreachable from None
            raise
        executor.shutdown(wait=True)

    # ------------------------------------------------------------------------------------ helpers
    def _from_cache(self, key: str, request: ChatRequest) -> ChatResult | None:
        if self.cache is None:
            return None
        stored = self.cache.get(key)
        if stored is None:
            return None
        # Re-validate: the cache holds raw successful replies, so a fixed bug in interpretation
        # applies to old entries too, and anything that no longer validates is asked again.
        result = interpret_response(json.dumps(stored["body"]).encode(), request.schema)
        if not result.ok:
            return None
        result.cached = True
        result.latency_s = 0.0
        return result

    def _count(self, **increments: float) -> None:
        with self._usage_lock:
            for name, value in increments.items():
                setattr(self.usage, name, getattr(self.usage, name) + value)

    def _answer(self, key: str, request: ChatRequest) -> ChatResult:
        payload = self.build_payload(request)
        attempts = 0
        last: _Attempt | None = None
        for attempt in range(self.config.max_retries + 1):
            if self._stop.is_set():
                if self._unreachable is not None:
                    raise self._unreachable
                return _failure("cancelled", "batch was stopped before this request finished", attempts=attempts)
            if attempt > 0:
                self._count(retries=1)
                delay = min(self.config.backoff * 2 ** (attempt - 1), self.config.backoff_max)
                delay *= 0.5 + 0.5 * self._random.random()  # jitter: spread retries of parallel workers
                if last is not None and last.retry_after is not None:
                    delay = min(max(delay, last.retry_after), self.config.backoff_max)
                logger.warning("%s: %s; retry %d/%d in %.1fs", self.endpoint, last.message if last else "",
                               attempt, self.config.max_retries, delay)
                if self._stop.wait(delay):
                    continue  # stopped while sleeping: handled at the top of the loop
            attempts += 1
            self._count(calls=1)
            started = time.monotonic()
            try:
                response = self._http.post(self.endpoint, json=payload)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last = _Attempt("unreachable", f"cannot connect ({type(exc).__name__}: {exc})")
                continue
            except httpx.TimeoutException as exc:
                last = _Attempt("timeout", f"no reply within {self.config.timeout_s}s ({type(exc).__name__})")
                continue
            except httpx.TransportError as exc:
                last = _Attempt("transport", f"{type(exc).__name__}: {exc}")
                continue
            latency = time.monotonic() - started
            if response.status_code in RETRYABLE_STATUS:
                last = _Attempt(f"http_{response.status_code}", f"HTTP {response.status_code}: {response.text[:300]}",
                                retry_after=_retry_after_seconds(response))
                continue
            if response.status_code >= 400:
                return _failure(f"http_{response.status_code}", f"HTTP {response.status_code}: {response.text[:300]}",
                                attempts=attempts, latency_s=latency)
            result = interpret_response(response.content, request.schema)
            result.attempts = attempts
            result.latency_s = latency
            self._count(prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
                        latency_s=latency)
            if result.ok and self.cache is not None:
                self.cache.put(key, payload, {"body": response.json()})
            return result
        assert last is not None
        if last.kind == "unreachable":
            error = LLMServerUnreachable(
                f"LLM server at {self.config.base_url} is unreachable: {last.message} after {attempts} attempt(s). "
                f"Start the server or fix base_url (backend 'embedded' starts one for you)."
            )
            self._unreachable = error
            self._stop.set()
            raise error
        return _failure(last.kind, f"{last.message} (gave up after {attempts} attempt(s))", attempts=attempts)

    def _models_body(self) -> Any:
        try:
            response = self._http.get(f"{self.config.base_url}/models")
            response.raise_for_status()
            return response.json()
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise LLMServerUnreachable(f"LLM server at {self.config.base_url} is unreachable: {exc}") from None

    def list_models(self) -> list[str]:
        """Model ids the server serves (GET /models); raises ``LLMServerUnreachable`` if it cannot connect."""
        return [entry.get("id") for entry in self._models_body().get("data", [])]

    def identify_served_model(self) -> dict[str, Any]:
        """Ask the server (GET /models) what it serves as ``config.model`` and key the cache on it.

        Raises ``LLMServerUnreachable`` if it cannot connect."""
        self.served_model.update(served_model_identity(self._models_body(), self.config.model))
        return self.served_model

    def close(self) -> None:
        self._http.close()
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
