"""Wilson intervals and the exact McNemar test against values worked out by hand (issue 15)."""

import pytest

from looptool.eval.stats import mcnemar_exact, paired_comparison, wilson_interval


def test_wilson_interval_worked_by_hand():
    # 8/10, z = 1.96: center (0.8 + 0.19208) / 1.38415 = 0.71674,
    # half 1.96 * sqrt(0.016 + 0.0096040) / 1.38415 = 0.22658 -> [0.4902, 0.9433].
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    # 0/10: the lower bound is 0 and the upper z^2/n / (1 + z^2/n) = 0.38415 / 1.38415 = 0.2775.
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    # n/n mirrors 0/n.
    assert wilson_interval(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)
    # 1/2: center 0.5, half 1.96 * sqrt(0.125 + 0.96040 / 16) / (1 + 1.92082) = 0.4094... -> [0.0945, 0.9055].
    assert wilson_interval(1, 2) == (pytest.approx(0.0945, abs=1e-4), pytest.approx(0.9055, abs=1e-4))
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_exact_mcnemar_worked_by_hand():
    # b=1, c=9: 2 * (C(10,0) + C(10,1)) / 2^10 = 2 * 11 / 1024 = 0.021484375.
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)
    # b=0, c=6: 2 / 64 = 0.03125; b=0, c=5: 2 / 32 = 0.0625 (five one-sided wins are not enough).
    assert mcnemar_exact(0, 6) == pytest.approx(0.03125) and mcnemar_exact(0, 5) == pytest.approx(0.0625)
    # Balanced discordance: the doubled tail exceeds 1 and is capped.
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0


def test_paired_comparison_counts_only_shared_items():
    a = {"x": True, "y": True, "z": False, "w": True, "only_a": True}
    b = {"x": True, "y": False, "z": False, "w": False, "only_b": False}
    result = paired_comparison(a, b)
    assert (result.n, result.a_correct, result.b_correct, result.a_only, result.b_only) == (4, 3, 1, 2, 0)
    assert result.difference == pytest.approx(0.5) and result.p_value == pytest.approx(0.5)  # 2 * 1/4
