"""Persistent response cache for generator/judge calls: one SQLite file, shared by threads and processes.

Why a cache at all: a DVC stage that is killed half-way (or re-run with unchanged inputs) must not
pay for, or get different answers from, LLM calls it already finished. Every successful response is
written the moment it arrives, keyed by a hash of the full request, so a resumed run only sends the
requests that never completed. Failed requests are never stored: a retry later may succeed.

The key also names the model that answered (``model_identity``): the model name alone is only an
alias, and a different model served under the same alias must not get the old model's answers.

Concurrency: the file is opened in WAL mode (readers never block the single writer) with a busy
timeout, and each thread gets its own connection, because a sqlite3 connection must not be shared
across threads while a statement is active. Several processes may use the same file at once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

# Bump when the stored value layout changes, so old entries are ignored rather than misread.
CACHE_FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key        TEXT PRIMARY KEY,
    request    TEXT NOT NULL,
    response   TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


def request_key(request: dict[str, Any], model_identity: dict[str, Any] | None = None) -> str:
    """Stable hex digest of a request and the model behind it: canonical JSON (sorted keys, no
    whitespace), SHA-256.

    Two requests get the same key iff they and the identities are equal as JSON values, whatever
    the dict order. An empty identity (nothing known beyond the model name in the request) adds
    nothing, so keys written before identities existed stay valid where there is still nothing to add.
    """
    material: dict[str, Any] = {"v": CACHE_FORMAT_VERSION, "request": request}
    if model_identity:
        material["model"] = model_identity
    canonical = json.dumps(
        material,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    # size and mtime_ns are part of the memo key only: a rewritten file is hashed again.
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_fingerprint(path: str | os.PathLike) -> str:
    """``"sha256:<hex>"`` of a model file's whole content, independent of its path and mtime.

    The full hash rather than a sample (size + first/last MiB): two fine-tunes of one base model in
    one quantisation have the same size and header, and may differ only in tensors in the middle.
    Hashing runs at the speed of reading the file (0.1 s for the 98 MB SmolLM2 GGUF here), about
    what the server spends loading it anyway; it is memoised per path, size and mtime within a process.
    """
    stat = os.stat(path)
    return "sha256:" + _sha256_of(os.path.realpath(path), stat.st_size, stat.st_mtime_ns)


class ResponseCache:
    """Key -> JSON response store in one SQLite file (created with its folder on first use)."""

    def __init__(self, path: str | os.PathLike, busy_timeout_s: float = 60.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all_connections: list[sqlite3.Connection] = []
        self._registry_lock = threading.Lock()
        # Create the table (and switch to WAL, which is persistent in the file) once, up front.
        self._connection()

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across process crashes in WAL mode; only an OS crash can lose the
            # last commits, which merely costs a repeated call.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            self._local.conn = conn
            with self._registry_lock:
                self._all_connections.append(conn)
        return conn

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._connection().execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, request: dict[str, Any], response: dict[str, Any]) -> None:
        """Store (or overwrite) one response. The request is kept beside it for inspection."""
        self._connection().execute(
            "INSERT OR REPLACE INTO responses (key, request, response, created_at) VALUES (?, ?, ?, ?)",
            (
                key,
                json.dumps(request, ensure_ascii=False, sort_keys=True),
                json.dumps(response, ensure_ascii=False),
                time.time(),
            ),
        )

    def __contains__(self, key: str) -> bool:
        return self._connection().execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        return self._connection().execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._registry_lock:
            for conn in self._all_connections:
                conn.close()
            self._all_connections.clear()
        self._local = threading.local()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
