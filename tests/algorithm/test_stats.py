"""Wilson intervals and ratios."""

import math

import pytest

from rzero_lib.stats import ratio, wilson_interval


def test_wilson_interval_matches_scipy_and_edges():
    from scipy.stats import binomtest

    for k, n in ((3, 4), (0, 5), (5, 5), (79, 100), (1, 1)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert wilson_interval(3, 4) == pytest.approx((0.30064, 0.95441), abs=1e-5)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


def test_intervals_contain_the_estimate():
    for n in range(1, 301):
        for k in {0, 1, n // 2, n - 1, n}:
            low, high = wilson_interval(k, n)
            assert 0.0 <= low <= k / n <= high <= 1.0


def test_ratio_of_nothing_is_nan():
    assert ratio(3, 4) == 0.75 and math.isnan(ratio(1, 0))
