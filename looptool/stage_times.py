"""Per-stage wall times of a ``dvc repro``: ``python -m looptool.stage_times dvc repro [args]``.

DVC records no durations, so this runs the command, passes its output through unchanged, notes when
each ``Running stage '<name>':`` line appears, and prints a table at the end: seconds per stage
(until the next stage starts or the command ends) and the total. ``make run`` uses it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence

STAGE_START = re.compile(r"^Running stage '([^']+)'")


def stage_durations(events: Iterable[tuple[float, str]], end: float) -> list[tuple[str, float]]:
    """(stage, seconds) from (time, output line) pairs: a stage lasts from its ``Running stage``
    line to the next one, the last one to ``end``."""
    starts = [(t, m.group(1)) for t, line in events if (m := STAGE_START.match(line.strip()))]
    bounds = [t for t, _ in starts[1:]] + [end]
    return [(name, stop - start) for (start, name), stop in zip(starts, bounds)]


def format_durations(durations: Sequence[tuple[str, float]], total: float) -> str:
    width = max([len(n) for n, _ in durations] + [len("total")])
    lines = [f"{'stage':<{width}}  {'seconds':>8}  {'min':>6}"]
    lines += [f"{name:<{width}}  {seconds:>8.1f}  {seconds / 60:>6.1f}" for name, seconds in durations]
    lines.append(f"{'total':<{width}}  {total:>8.1f}  {total / 60:>6.1f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    command = list(argv if argv is not None else sys.argv[1:]) or ["dvc", "repro"]
    started = time.monotonic()
    events: list[tuple[float, str]] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            events.append((time.monotonic(), line))
    end = time.monotonic()
    durations = stage_durations(events, end)
    print(f"\nwall time per stage ({' '.join(command)}):\n" + format_durations(durations, end - started))
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
