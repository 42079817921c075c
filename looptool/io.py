"""File IO shared by every stage: atomic writes and JSONL with errors that name file and line.

Every output is written to a temporary file in the destination directory and renamed into place,
so a stage killed mid-write never leaves a half-written file where DVC (or the next stage) would
take it for a finished one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class DataError(ValueError):
    """A data file is malformed. The message names the file and, where known, the line."""

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary file next to ``path``; on clean exit fsync it and rename it over ``path``.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path`` is
    left exactly as it was before.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    if "b" in mode:
        encoding = None
    try:
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def dumps_canonical(obj: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace: equal data gives equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(obj: Any, length: int = 16) -> str:
    """Stable hex digest of a JSON-serialisable object (key order does not matter)."""
    return hashlib.sha256(dumps_canonical(obj).encode("utf-8")).hexdigest()[:length]


def iter_jsonl(
    path: str | os.PathLike, parse: Callable[[dict], T] | None = None
) -> Iterator[T | dict]:
    """Yield one object per non-blank line of a JSONL file.

    ``parse`` (for example ``Sample.from_dict``) converts and validates each object; any
    ``ValueError``/``TypeError``/``KeyError`` it raises becomes a :class:`DataError` naming the
    file and line number.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    with path.open("r", encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(path, f"invalid JSON ({err.msg} at column {err.colno})", lineno) from None
            if not isinstance(obj, dict):
                raise DataError(path, f"expected a JSON object, got {type(obj).__name__}", lineno)
            if parse is None:
                yield obj
                continue
            try:
                yield parse(obj)
            except (ValueError, TypeError, KeyError) as err:
                raise DataError(path, str(err), lineno) from None


def read_jsonl(path: str | os.PathLike, parse: Callable[[dict], T] | None = None) -> list[T | dict]:
    """Read a whole JSONL file; see :func:`iter_jsonl`."""
    return list(iter_jsonl(path, parse))


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> int:
    """Atomically write rows (dicts, or objects with ``to_dict``) as JSONL; returns the count."""
    count = 0
    with atomic_open(path, "w") as handle:
        for row in rows:
            if hasattr(row, "to_dict"):
                row = row.to_dict()
            handle.write(json.dumps(row, ensure_ascii=False))
            handle.write("\n")
            count += 1
    return count


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    """Atomically write one JSON document (metrics, manifests)."""
    with atomic_open(path, "w") as handle:
        json.dump(obj, handle, indent=indent, ensure_ascii=False, sort_keys=False)
        handle.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        with path.open("r", encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except json.JSONDecodeError as err:
        raise DataError(path, f"invalid JSON ({err.msg})", err.lineno) from None
