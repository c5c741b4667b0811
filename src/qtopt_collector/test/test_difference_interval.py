"""The margin of one policy over another (Sec. 6.1's comparisons): Newcombe's hybrid score
interval for the difference of two independent proportions, checked against the worked
examples of Newcombe (1998), "Interval estimation for the difference between independent
proportions: comparison of eleven methods", Statistics in Medicine 17, Table II, method 10."""

import pytest

from qtopt_collector.evaluation import difference_interval, wilson_interval

# (s1, n1, s2, n2) -> method 10's 95 % interval, as Table II prints it (4 decimals)
TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "interval"), TABLE_II, ids=str)
def test_newcombe_1998_table_ii(counts, interval):
    s1, n1, s2, n2 = counts
    d, low, high = difference_interval(*counts)
    assert d == pytest.approx(s1 / n1 - s2 / n2)
    assert (low, high) == pytest.approx(interval, abs=1e-4)


def test_the_interval_is_built_from_the_two_wilson_intervals():
    """Method 10 by hand for 56/70 - 48/80: each side adds the two rates' distances to the
    Wilson limits on that side in quadrature."""
    (l1, u1), (l2, u2) = wilson_interval(56, 70), wilson_interval(48, 80)
    assert (l1, u1) == pytest.approx((0.6918, 0.8770), abs=1e-4)
    assert (l2, u2) == pytest.approx((0.4905, 0.7004), abs=1e-4)
    d, low, high = difference_interval(56, 70, 48, 80)
    assert d == pytest.approx(0.2)
    assert low == pytest.approx(d - ((0.8 - l1) ** 2 + (u2 - 0.6) ** 2) ** 0.5)
    assert high == pytest.approx(d + ((u1 - 0.8) ** 2 + (0.6 - l2) ** 2) ** 0.5)
    # swapping the policies mirrors the interval
    assert difference_interval(48, 80, 56, 70) == pytest.approx((-d, -high, -low))
