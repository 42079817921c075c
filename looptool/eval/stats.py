"""Uncertainty of benchmark scores: Wilson intervals for one accuracy, exact McNemar for two models
scored on the same items.

Every accuracy the report shows carries its n and a 95% Wilson score interval: unlike the normal
approximation it stays inside [0, 1] and does not collapse to a point at 0/n or n/n, which matters
at the sizes a CPU run can afford (tens of items per category).

Two models evaluated on the same items are compared by a paired test: only the discordant items
count (b: right for A only, c: right for B only), and under "no difference" b follows
Binomial(b + c, 1/2). The two-sided exact p-value is twice the smaller tail, capped at 1
(McNemar 1947; the exact, conditional form as in Fagerland, Lydersen & Laake 2013).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

Z_95 = NormalDist().inv_cdf(0.975)  # 1.959963984540054


def wilson_interval(correct: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of ``correct / n`` (default 95%); (0, 1) when n is 0."""
    if n < 0 or not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n, got correct={correct}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0/n (n/n) the bound is exactly 0 (1); floating point leaves ~1e-17 there.
    low = 0.0 if correct == 0 else max(0.0, center - half)
    high = 1.0 if correct == n else min(1.0, center + half)
    return low, high


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c``."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got {b}, {c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class PairedComparison:
    """Model A against model B on the items both were scored on."""

    n: int            # items scored for both
    a_correct: int
    b_correct: int
    a_only: int       # right for A, wrong for B (McNemar's b)
    b_only: int       # right for B, wrong for A (McNemar's c)
    p_value: float    # exact McNemar, two-sided

    @property
    def difference(self) -> float:
        """Accuracy of A minus accuracy of B on the shared items."""
        return (self.a_correct - self.b_correct) / self.n if self.n else 0.0

    def to_dict(self) -> dict:
        return {"n": self.n, "a_correct": self.a_correct, "b_correct": self.b_correct, "a_only": self.a_only,
                "b_only": self.b_only, "difference": self.difference, "p_value": self.p_value}


def paired_comparison(a: Mapping[str, bool], b: Mapping[str, bool]) -> PairedComparison:
    """Compare two models' per-item outcomes (item id -> right?) on the items both have."""
    shared = sorted(set(a) & set(b))
    a_only = sum(1 for i in shared if a[i] and not b[i])
    b_only = sum(1 for i in shared if b[i] and not a[i])
    return PairedComparison(len(shared), sum(bool(a[i]) for i in shared), sum(bool(b[i]) for i in shared),
                            a_only, b_only, mcnemar_exact(a_only, b_only))
