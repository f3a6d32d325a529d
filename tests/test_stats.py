"""stats: Student-t, logit-scale and Welch intervals against scipy and by hand."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from keras_eraserelu.experiments.stats import (
    json_number,
    summarize,
    summarize_rate,
    welch_difference,
)

ERRORS_A = [0.071, 0.074, 0.070, 0.068, 0.077]
ERRORS_B = [0.079, 0.084, 0.081, 0.076, 0.083, 0.080]
# The README demo's baseline: two seeds trained, two were still at 29% and 55%.
DEMO_ERRORS = [0.069, 0.092, 0.29, 0.55]


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
        "interval_method": "student_t",  # new field: how the interval is built
    }
    rate = summarize_rate([0.08])
    assert rate.mean == 0.08 and not rate.defined and math.isnan(rate.ci_high)
    assert rate.to_dict()["ci_low"] is None
    assert rate.to_dict()["interval_method"] == "logit_delta_t"
    assert math.isnan(summarize_rate([]).mean)
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
    with pytest.raises(ValueError, match=r"`rates` must hold rates in \[0, 1\].*7\.0"):
        summarize_rate([0.1, 7])  # a percentage passed as a rate
    with pytest.raises(ValueError, match=r"`b` must hold rates in \[0, 1\].*-0\.1"):
        welch_difference([0.1, 0.2], [0.3, -0.1], rates=True)
    with pytest.raises(TypeError, match=r"`rates` must hold numbers only"):
        summarize_rate([0.1, None])


def _logit_t_by_hand(rates, confidence):
    """logit(mean) +- t * se(mean) / (mean (1 - mean)), mapped back."""
    x = np.asarray(rates, dtype="float64")
    n, p = len(x), x.mean()
    se = x.std(ddof=1) / np.sqrt(n)
    half = scipy_stats.t.ppf((1 + confidence) / 2, n - 1) * se / (p * (1 - p))
    center = np.log(p / (1 - p))
    return 1 / (1 + np.exp(-(center - half))), 1 / (1 + np.exp(-(center + half)))


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
@pytest.mark.parametrize(
    "rates", [DEMO_ERRORS, ERRORS_B, [0.0, 0.011, 0.003], [0.97, 1.0], [0.2, 0.8]]
)
def test_rate_interval_matches_the_logit_t_interval_by_hand(rates, confidence):
    summary = summarize_rate(rates, confidence)
    assert summary.interval_method == "logit_delta_t" and summary.defined
    assert summary.mean == pytest.approx(np.mean(rates), rel=1e-12)
    assert summary.std == pytest.approx(np.std(rates, ddof=1), rel=1e-12)
    expected = _logit_t_by_hand(rates, confidence)
    assert (summary.ci_low, summary.ci_high) == pytest.approx(expected, rel=1e-9)
    assert 0.0 <= summary.ci_low <= summary.mean <= summary.ci_high <= 1.0


def test_rate_interval_is_the_quasi_binomial_wald_interval():
    # Fitted another way: an intercept-only binomial GLM by iteratively
    # reweighted least squares on the error counts of a 360-image test set,
    # Pearson dispersion, Wald interval on the logit scale with t(n - 1).
    trials = 360
    counts = np.array([25, 33, 104, 198])
    beta = 0.0
    for _ in range(50):
        mu = 1 / (1 + np.exp(-beta))
        weights = np.full(len(counts), trials * mu * (1 - mu))
        working = beta + (counts - trials * mu) / weights
        beta = np.sum(weights * working) / np.sum(weights)
    mu = 1 / (1 + np.exp(-beta))
    variance = trials * mu * (1 - mu)
    dispersion = np.sum((counts - trials * mu) ** 2 / variance) / (len(counts) - 1)
    se = np.sqrt(dispersion / (len(counts) * variance))
    half = scipy_stats.t.ppf(0.975, len(counts) - 1) * se
    expected = (1 / (1 + np.exp(-(beta - half))), 1 / (1 + np.exp(-(beta + half))))
    summary = summarize_rate(list(counts / trials))
    assert (summary.ci_low, summary.ci_high) == pytest.approx(expected, rel=1e-9)


def test_the_demo_errors_get_an_interval_inside_0_1():
    unbounded = summarize(DEMO_ERRORS)  # what the table showed before
    assert unbounded.ci_low < 0
    summary = summarize_rate(DEMO_ERRORS)
    assert summary.mean == pytest.approx(0.25025)
    assert (summary.ci_low, summary.ci_high) == pytest.approx(
        (0.0479, 0.6889), abs=1e-4
    )
    assert 0 < summary.ci_low < min(DEMO_ERRORS[2:]) and summary.ci_high < 1


def test_rate_interval_is_student_t_to_first_order_away_from_the_bounds():
    # Rates near 8% and 0.3 points apart: the logit interval is all but the t one.
    rate, plain = summarize_rate(ERRORS_B), summarize(ERRORS_B)
    assert (rate.ci_low, rate.ci_high) == pytest.approx(
        (plain.ci_low, plain.ci_high), rel=2e-3
    )


def test_rate_interval_stays_inside_0_1_and_holds_the_mean():
    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(2, 11))
        center = rng.choice([0.0, 0.003, 0.05, 0.5, 0.95, 0.997, 1.0])
        rates = np.clip(center + rng.normal(0, 0.02, n), 0, 1)
        rates[rng.random(n) < 0.2] = rng.choice([0.0, 1.0])
        summary = summarize_rate(list(rates))
        assert 0.0 <= summary.ci_low <= summary.mean <= summary.ci_high <= 1.0


def test_rate_interval_covers_the_mean_rate_about_as_often_as_it_says():
    # Four seeds whose true error varies around 5%, each measured on 360
    # test images: the "95%" interval should cover the mean 5% about 95% of
    # the time (a seeded simulation; the percentile bootstrap gets about 80%).
    rng = np.random.default_rng(1)
    rates = rng.binomial(360, rng.beta(3, 57, (2000, 4))) / 360
    covered = [
        s.ci_low <= 0.05 <= s.ci_high for s in map(summarize_rate, rates.tolist())
    ]
    assert 0.93 <= np.mean(covered) <= 0.97


def test_degenerate_rates():
    for value in (0.0, 0.1, 1.0):  # equal rates: a point, as for `summarize`
        summary = summarize_rate([value] * 3)
        assert (summary.std, summary.ci_low, summary.ci_high) == (0.0, value, value)
    with_zero = summarize_rate([0.0, 0.02, 0.01])  # no continuity correction
    assert 0.0 < with_zero.ci_low < 0.01 < with_zero.ci_high < 1.0
    with_one = summarize_rate([1.0, 0.9])
    assert 0.0 < with_one.ci_low < 0.95 < with_one.ci_high <= 1.0
    both = summarize_rate([0.0, 1.0])  # as wide as it gets, still inside
    assert 0.0 <= both.ci_low < 1e-6 and 1 - 1e-6 < both.ci_high <= 1.0


def test_a_difference_of_rates_stays_inside_minus_1_1():
    a, b = [0.3, 0.9], [0.1, 0.2]
    plain = welch_difference(a, b)
    assert plain.ci_low < -1 and plain.ci_high > 1  # two seeds: t(1) is wide
    clipped = welch_difference(a, b, rates=True)
    assert (clipped.ci_low, clipped.ci_high) == (-1.0, 1.0)
    assert clipped.interval_method == "welch_t_clipped"
    assert plain.interval_method == "welch_t"
    assert (clipped.mean, clipped.p_value, clipped.df) == (
        plain.mean,
        plain.p_value,
        plain.df,
    )
    inside = welch_difference(ERRORS_A, ERRORS_B, rates=True)  # not clipped
    assert inside.to_dict() == {
        **welch_difference(ERRORS_A, ERRORS_B).to_dict(),
        "interval_method": "welch_t_clipped",
    }
    same = welch_difference([0.1, 0.1], [0.1, 0.1], rates=True)
    assert math.isnan(same.p_value) and same.ci_low == same.ci_high == 0.0


def test_a_lower_bound_cuts_the_student_t_interval_there():
    values = [1, 1, 2, 6]  # epochs to a target: Student t reaches below 1
    low, high = scipy_stats.t.interval(
        0.95, 3, loc=np.mean(values), scale=np.std(values, ddof=1) / 2
    )
    assert low < 1
    summary = summarize(values, lower=1)
    assert summary.interval_method == "student_t_clipped"
    assert (summary.ci_low, summary.ci_high) == pytest.approx((1.0, high))
    far = summarize([5, 6, 7], lower=1)  # above the bound: unchanged
    assert (far.ci_low, far.ci_high) == pytest.approx(
        (summarize([5, 6, 7]).ci_low, summarize([5, 6, 7]).ci_high)
    )
    with pytest.raises(ValueError, match=r"must be >= lower=0.*\[-0.5, 1.0\]"):
        summarize([-0.5, 1.0], lower=0)
