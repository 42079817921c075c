"""Model serving.

* ``client`` — OpenAI-compatible chat client for the generator and judge roles (structured output,
  concurrency, retries, persistent response cache).
* ``server`` — the embedded llama.cpp server and ``open_llm``, which turns a params section into a
  ready client (starting the embedded server only when the section asks for it).
* ``policy`` — batched decoding of the policy with per-token log-probs (transformers on CPU, vLLM
  offline engine on CUDA).
"""

from looptool.llm.client import (
    ChatClient,
    ChatRequest,
    ChatResult,
    ClientConfig,
    LLMConfigError,
    LLMError,
    LLMServerUnreachable,
    UsageStats,
)
from looptool.llm.policy import DecodeConfig, PolicyOutput, load_policy_engine
from looptool.llm.server import EmbeddedServer, EmbeddedServerConfig, EmbeddedServerError, open_llm

__all__ = [
    "ChatClient", "ChatRequest", "ChatResult", "ClientConfig", "DecodeConfig", "EmbeddedServer",
    "EmbeddedServerConfig", "EmbeddedServerError", "LLMConfigError", "LLMError", "LLMServerUnreachable",
    "PolicyOutput", "UsageStats", "load_policy_engine", "open_llm",
]
