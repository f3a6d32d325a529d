"""stats: Student-t intervals and Welch's test against scipy and by hand."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from keras_eraserelu.stats import json_number, summarize, welch_difference

ERRORS_A = [0.071, 0.074, 0.070, 0.068, 0.077]
ERRORS_B = [0.079, 0.084, 0.081, 0.076, 0.083, 0.080]


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_summary_matches_scipy_t_interval(confidence):
    summary = summarize(ERRORS_B, confidence)
    data = np.array(ERRORS_B)
    low, high = scipy_stats.t.interval(
        confidence, len(data) - 1, loc=data.mean(), scale=scipy_stats.sem(data)
    )
    assert summary.n == 6 and summary.defined
    assert summary.mean == pytest.approx(data.mean(), rel=1e-12)
    assert summary.std == pytest.approx(data.std(ddof=1), rel=1e-12)
    assert (summary.ci_low, summary.ci_high) == pytest.approx((low, high), rel=1e-12)


def test_summary_by_hand():
    # 1..5: mean 3, sample variance 2.5, sem sqrt(2.5 / 5) = 0.70711; the
    # two-sided 95% t quantile for 4 degrees of freedom is 2.7764 (tables),
    # so the half width is 1.9632.
    summary = summarize([1, 2, 3, 4, 5])
    assert summary.mean == 3.0
    assert summary.std == pytest.approx(math.sqrt(2.5))
    assert summary.ci_low == pytest.approx(3 - 1.9632, abs=1e-4)
    assert summary.ci_high == pytest.approx(3 + 1.9632, abs=1e-4)


def test_welch_matches_scipy_and_the_satterthwaite_interval():
    difference = welch_difference(ERRORS_A, ERRORS_B)
    test = scipy_stats.ttest_ind(ERRORS_A, ERRORS_B, equal_var=False)
    assert difference.p_value == pytest.approx(test.pvalue, rel=1e-12)
    assert difference.statistic == pytest.approx(test.statistic, rel=1e-12)
    # The interval built another way: Welch-Satterthwaite df and a t quantile.
    a, b = np.array(ERRORS_A), np.array(ERRORS_B)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    mean = a.mean() - b.mean()
    assert difference.mean == pytest.approx(mean, rel=1e-12)
    assert difference.df == pytest.approx(df, rel=1e-12)
    assert (difference.ci_low, difference.ci_high) == pytest.approx(
        (mean - half, mean + half), rel=1e-10
    )
    assert difference.p_value < 0.01  # the two samples do not overlap


def test_welch_by_hand():
    # a = 1, 2, 3 and b = 4, 5, 6: both variances 1, se = sqrt(1/3 + 1/3),
    # t = -3 / 0.8165 = -3.674, df = (2/3)^2 / (2 * (1/3)^2 / 2) = 4.
    difference = welch_difference([1, 2, 3], [4, 5, 6])
    assert difference.mean == -3.0
    assert difference.statistic == pytest.approx(-3.6742, abs=1e-4)
    assert difference.df == pytest.approx(4.0)
    assert difference.p_value == pytest.approx(2 * scipy_stats.t.sf(3.6742, 4), 1e-4)


def test_one_value_is_undefined_not_an_error():
    summary = summarize([0.08])
    assert summary.mean == 0.08 and not summary.defined
    assert all(math.isnan(v) for v in (summary.std, summary.ci_low, summary.ci_high))
    assert summary.to_dict() == {
        "n": 1,
        "mean": 0.08,
        "std": None,
        "ci_low": None,
        "ci_high": None,
        "confidence": 0.95,
    }
    difference = welch_difference([0.08], ERRORS_B)
    assert not difference.defined and math.isnan(difference.p_value)
    assert difference.mean == pytest.approx(0.08 - np.mean(ERRORS_B))
    assert difference.to_dict()["ci_low"] is None
    assert math.isnan(summarize([]).mean)


def test_zero_spread_gives_a_point_interval():
    summary = summarize([0.1, 0.1, 0.1])
    assert (summary.std, summary.ci_low, summary.ci_high) == (0.0, 0.1, 0.1)


def test_json_number():
    assert json_number(float("nan")) is None and json_number(float("inf")) is None
    assert json_number(np.float32(0.5)) == 0.5 and json_number(np.int64(3)) == 3
    assert json_number("text") == "text" and json_number(True) is True


def test_bad_input():
    with pytest.raises(TypeError, match=r"`values` must be a sequence.*'0.1'"):
        summarize("0.1")
    with pytest.raises(TypeError, match=r"numbers only.*'x' of type str"):
        summarize([0.1, "x"])
    with pytest.raises(ValueError, match=r"finite numbers.*nan"):
        welch_difference([0.1, 0.2], [0.3, float("nan")])
    with pytest.raises(ValueError, match=r"`confidence` must be a number in \(0, 1\)"):
        summarize([0.1, 0.2], confidence=95)
