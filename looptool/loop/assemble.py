"""Next-round data: D_{j+1} = high-PPL mastered + error seeds (labels corrected where the judge
said so) + EDDE samples + a fresh slice of unused seed samples, deduplicated and shuffled."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from looptool.ledger import Ledger
from looptool.schema import Sample

# When two parts hold the same content, the first in this order keeps it: a corrected label or an
# error seed says more about the sample than its being mastered or fresh.
PRIORITY = ("corrected", "error_seed", "edde", "hppl", "fresh", "seed")


@dataclass
class AssembleConfig:
    """params.yaml ``assemble``: what joins the next round's data besides the loop's own samples."""

    fresh_size: int = field(default=8, metadata={"help": "Unused seed samples added per round (a new slice each round)."})


def fresh_slice(pool: Sequence[Sample], round_index: int, size: int) -> list[Sample]:
    """The ``round_index``-th (1-based) slice of the shuffled unused pool: rounds never share one."""
    start = (round_index - 1) * size
    return [_with_origin(s, "fresh") for s in pool[start : start + size]]


def _with_origin(sample: Sample, origin: str) -> Sample:
    return Sample(sample.tools, sample.messages, sample.label, origin, sample.round, sample.parent or None,
                  dict(sample.meta), sample.id)


@dataclass
class Assembled:
    samples: list[Sample]
    ledger: Ledger
    composition: dict[str, int]


def assemble(parts: Sequence[Sequence[Sample]], next_round: int, seed: int) -> Assembled:
    """Merge the parts, drop repeated content (ledger reason ``duplicate_content``), shuffle."""
    candidates = sorted((s for part in parts for s in part), key=lambda s: PRIORITY.index(s.origin))
    ledger = Ledger("assemble")
    ledger.expect(len(candidates))
    kept: dict[str, Sample] = {}
    for position, sample in enumerate(candidates):
        record_id = f"{sample.origin}:{sample.id}:{position}"
        content = sample.content_id()
        if content in kept:
            ledger.reject(record_id, "duplicate_content", kept_as=kept[content].origin)
            continue
        kept[content] = Sample(sample.tools, sample.messages, sample.label, sample.origin, next_round,
                               sample.parent, sample.meta, content)
        ledger.keep(record_id, origin=sample.origin)
    ledger.check_balanced()
    samples = list(kept.values())
    random.Random(f"assemble:{seed}:{next_round}").shuffle(samples)
    composition = Counter(s.origin for s in samples)
    return Assembled(samples, ledger, {o: composition.get(o, 0) for o in PRIORITY if o != "seed"} | {"total": len(samples)})
