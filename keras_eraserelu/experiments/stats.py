"""Statistics over seeds: mean, spread, bounded and Student-t intervals, Welch.

A handful of training runs per variant is a small sample. Its mean is
reported with a confidence interval, and two variants are compared with
Welch's t-test (no equal-variance assumption), whose interval for the
difference of means uses the Welch-Satterthwaite degrees of freedom. The
distributions come from `scipy.stats`.

- `summarize`: any quantity (gradient norms, epochs): Student-t interval
  (`interval_method` "student_t").
- `summarize_rate`: a rate in [0, 1] (test error, accuracy): Student t on the
  logit scale by the delta method ("logit_delta_t"), which stays inside
  [0, 1]; see its docstring for why this and not a bootstrap.
- `welch_difference`: `rates=True` clips the Welch interval of a difference
  of two rates to [-1, 1] ("welch_t_clipped").

With fewer than two values (one seed) a spread, an interval or a test is
undefined: the fields are NaN (None in JSON, "n/a" in tables), not an error.

Example:

```python
summary = summarize([7.9, 8.4, 8.1, 7.6, 8.3])
summary.ci_low, summary.ci_high        # (7.60..., 8.51...)
errors = summarize_rate([0.069, 0.092, 0.29, 0.55])
errors.ci_low, errors.ci_high          # (0.048..., 0.689...): never below 0
difference = welch_difference([7.1, 7.4, 7.0], [7.9, 8.4, 8.1])
difference.mean, difference.p_value    # (-0.97, 0.013...)
```
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings

import numpy as np
from scipy import special as scipy_special
from scipy import stats as scipy_stats

from keras_eraserelu.core import is_number

# The names `interval_method` takes (in `Summary`, `Difference` and JSON).
STUDENT_T = "student_t"
STUDENT_T_CLIPPED = "student_t_clipped"
LOGIT_DELTA_T = "logit_delta_t"
WELCH_T = "welch_t"
WELCH_T_CLIPPED = "welch_t_clipped"


@dataclasses.dataclass(frozen=True)
class Summary:
    """Mean, standard deviation and confidence interval of a sample.

    Attributes:
        n: int. Sample size.
        mean: float. Sample mean (NaN when n is 0).
        std: float. Sample standard deviation, ddof=1 (NaN when n < 2).
        ci_low, ci_high: float. Confidence interval for the mean (NaN when
            n < 2).
        confidence: float. The interval's confidence level.
        interval_method: str. How the interval was built: "student_t" or,
            cut at the least possible value, "student_t_clipped"
            (`summarize`), or "logit_delta_t" (`summarize_rate`).
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    confidence: float
    interval_method: str = STUDENT_T

    @property
    def defined(self):
        """Whether the spread and the interval exist (n >= 2)."""
        return self.n >= 2

    def to_dict(self):
        """A JSON-ready dict; undefined numbers are None."""
        return {k: json_number(v) for k, v in dataclasses.asdict(self).items()}


@dataclasses.dataclass(frozen=True)
class Difference:
    """Difference of two sample means with Welch's interval and t-test.

    Attributes:
        n_a, n_b: int. Sample sizes.
        mean: float. `mean(a) - mean(b)`.
        ci_low, ci_high: float. Welch confidence interval of the difference
            (clipped to [-1, 1] for rates).
        statistic: float. Welch's t statistic.
        df: float. Welch-Satterthwaite degrees of freedom.
        p_value: float. Two-sided p-value of "the means are equal".
        confidence: float. The interval's confidence level.
        interval_method: str. "welch_t", or "welch_t_clipped" for rates.

    All but `n_a`, `n_b`, `mean` and the method are NaN when either sample has fewer
    than two values.
    """

    n_a: int
    n_b: int
    mean: float
    ci_low: float
    ci_high: float
    statistic: float
    df: float
    p_value: float
    confidence: float
    interval_method: str = WELCH_T

    @property
    def defined(self):
        """Whether the interval and the test exist (both n >= 2)."""
        return min(self.n_a, self.n_b) >= 2

    def to_dict(self):
        """A JSON-ready dict; undefined numbers are None."""
        return {k: json_number(v) for k, v in dataclasses.asdict(self).items()}


def summarize(values, confidence=0.95, *, lower=None):
    """Mean, std (ddof=1) and Student-t confidence interval of `values`.

    Args:
        values: sequence of finite numbers (may be empty).
        confidence: float in (0, 1). Defaults to 0.95.
        lower: None or float. The least value the quantity can take (1 for
            an epoch count, 0 for a norm): the interval is cut there
            ("student_t_clipped"). Intersecting an interval with the support
            of the quantity loses no coverage. Defaults to None.

    Returns:
        A `Summary`; std and interval are NaN for fewer than two values.

    Raises:
        TypeError: if `values` holds something other than numbers.
        ValueError: if a value is not finite or below `lower`, or
            `confidence` is not in (0, 1).

    Example:

    ```python
    summarize([1, 2, 3, 4, 5])         # mean 3, std 1.58, 95% CI (1.04, 4.96)
    summarize([1, 8], lower=1).ci_low  # 1.0 (Student t alone: -40.0)
    ```
    """
    data = _sample("values", values)
    confidence = _confidence(confidence)
    method = STUDENT_T if lower is None else STUDENT_T_CLIPPED
    if lower is not None and np.any(data < lower):
        raise ValueError(
            f"`values` must be >= lower={lower!r}. Received: {data.tolist()}."
        )
    n = len(data)
    mean = float(np.mean(data)) if n else math.nan
    if n < 2:
        return Summary(n, mean, math.nan, math.nan, math.nan, confidence, method)
    if np.all(data == data[0]):  # scipy gives NaN for a zero scale
        value = float(data[0])
        return Summary(n, value, 0.0, value, value, confidence, method)
    low, high = scipy_stats.t.interval(
        confidence, n - 1, loc=mean, scale=scipy_stats.sem(data)
    )
    if lower is not None:
        low = max(low, lower)
    std = float(np.std(data, ddof=1))
    return Summary(n, mean, std, float(low), float(high), confidence, method)


def summarize_rate(rates, confidence=0.95):
    """Mean, std (ddof=1) and a confidence interval inside [0, 1] of rates.

    For per-seed test errors or accuracies. A Student-t interval of the mean
    can leave [0, 1] (four seeds at 6.9%, 9.2%, 29% and 55% error give
    [-10.3%, 60.3%]); this one is the Student-t interval on the logit scale,
    by the delta method, back-transformed ("logit_delta_t"): with mean rate
    p, sample std s and n seeds,

        logit(p) +- t(n - 1) * s / (sqrt(n) * p * (1 - p)),

    mapped back with the logistic function. It is the Wald interval of an
    intercept-only quasi-binomial model (R's `glm(..., quasibinomial)`) with
    the dispersion estimated from the seeds, hence t(n - 1): it describes
    the mean rate reported next to it (it always contains it), and when the
    rates are far from 0 and 1 and close together it is the Student-t
    interval to first order. Why not the alternatives, for 2-10 seeds:

    - Student t on the logit of each seed's rate: an interval for the
      back-transformed mean logit, not for the mean rate (it need not
      contain it), and a seed at 0 or 1 needs a continuity correction whose
      choice moves the interval.
    - A bootstrap (percentile or BCa): with n = 2 the resampled means take
      three values; up to about 10 seeds it covers the mean far less often
      than stated (in a simulation of 4 seeds, about 80% for "95%").

    No continuity correction is needed: a seed at exactly 0 or 1 is used as
    it is; the mean is 0 or 1 only when every seed is, and equal rates give
    the point interval (the interval describes the spread between seeds,
    not the test set's sampling error).

    Args:
        rates: sequence of numbers in [0, 1] (may be empty).
        confidence: float in (0, 1). Defaults to 0.95.

    Returns:
        A `Summary` with `interval_method` "logit_delta_t"; std and
        interval are NaN for fewer than two values.

    Raises:
        TypeError: if `rates` holds something other than numbers.
        ValueError: if a rate is not in [0, 1] or `confidence` is not in
            (0, 1).

    Example:

    ```python
    summarize_rate([0.069, 0.092, 0.29, 0.55])   # mean 0.25, CI (0.048, 0.689)
    ```
    """
    data = _rates("rates", rates)
    confidence = _confidence(confidence)
    n = len(data)
    mean = float(np.mean(data)) if n else math.nan
    if n < 2:
        nan = math.nan
        return Summary(n, mean, nan, nan, nan, confidence, LOGIT_DELTA_T)
    if np.all(data == data[0]):
        value = float(data[0])
        return Summary(n, value, 0.0, value, value, confidence, LOGIT_DELTA_T)
    std = float(np.std(data, ddof=1))
    quantile = scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)
    half = quantile * std / (math.sqrt(n) * mean * (1.0 - mean))
    center = scipy_special.logit(mean)
    low, high = scipy_special.expit([center - half, center + half])
    return Summary(n, mean, std, float(low), float(high), confidence, LOGIT_DELTA_T)


def welch_difference(a, b, confidence=0.95, *, rates=False):
    """`mean(a) - mean(b)` with Welch's confidence interval and t-test.

    For rates (`rates=True`: test errors, accuracies) the difference lies in
    [-1, 1], and so does its interval: the Welch interval is clipped to
    [-1, 1] ("welch_t_clipped"). Intersecting a confidence interval with the
    set the difference can take keeps its coverage, and it leaves the test
    alone: 0 is inside the clipped interval exactly when it was inside the
    Welch one, so interval and p-value still agree.

    Args:
        a, b: sequences of finite numbers (in [0, 1] when `rates`).
        confidence: float in (0, 1). Defaults to 0.95.
        rates: bool. `a` and `b` are rates in [0, 1]. Defaults to False.

    Returns:
        A `Difference`. Interval, statistic, df and p-value are NaN when a
        sample has fewer than two values; when both samples have zero
        variance they are those `scipy.stats.ttest_ind` gives (p = 0 for
        different means, NaN for equal ones).

    Raises:
        TypeError, ValueError: as `summarize` (as `summarize_rate` when
            `rates`).

    Example:

    ```python
    welch_difference([1, 2, 3], [4, 5, 6.5]).p_value   # 0.029
    welch_difference([0.3, 0.9], [0.1, 0.2], rates=True).ci_high   # 1.0
    ```
    """
    check = _rates if rates else _sample
    first, second = check("a", a), check("b", b)
    confidence = _confidence(confidence)
    method = WELCH_T_CLIPPED if rates else WELCH_T
    n_a, n_b = len(first), len(second)
    mean = float(np.mean(first) - np.mean(second)) if n_a and n_b else math.nan
    if min(n_a, n_b) < 2:
        nan = math.nan
        return Difference(n_a, n_b, mean, nan, nan, nan, nan, nan, confidence, method)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        test = scipy_stats.ttest_ind(first, second, equal_var=False)
        interval = test.confidence_interval(confidence)
    low, high = float(interval.low), float(interval.high)
    if rates:  # np.clip keeps a NaN (no spread in either sample) NaN
        low, high = (float(np.clip(v, -1.0, 1.0)) for v in (low, high))
    return Difference(
        n_a,
        n_b,
        mean,
        low,
        high,
        float(test.statistic),
        float(test.df),
        float(test.pvalue),
        confidence,
        method,
    )


def json_number(value):
    """`value` as a JSON-ready number: NaN and infinities become None."""
    if not is_number(value):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value) if math.isfinite(value) else None


def _sample(argument, values):
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(
            f"`{argument}` must be a sequence of numbers. Received: "
            f"{argument}={values!r} of type {type(values).__name__}."
        )
    for value in values:
        if not is_number(value):
            raise TypeError(
                f"`{argument}` must hold numbers only. Received: {value!r} of "
                f"type {type(value).__name__} in {argument}={list(values)!r}."
            )
        if not math.isfinite(value):
            raise ValueError(
                f"`{argument}` must hold finite numbers. Received: {value!r} in "
                f"{argument}={list(values)!r}."
            )
    return np.asarray(values, dtype="float64").reshape(-1)


def _rates(argument, values):
    data = _sample(argument, values)
    outside = [float(v) for v in data if not 0.0 <= v <= 1.0]
    if outside:
        raise ValueError(
            f"`{argument}` must hold rates in [0, 1] (an error of 7% is 0.07). "
            f"Received: {outside[0]!r} in {argument}={list(values)!r}."
        )
    return data


def _confidence(confidence):
    if not is_number(confidence) or not 0.0 < confidence < 1.0:
        raise ValueError(
            "`confidence` must be a number in (0, 1), such as 0.95. Received: "
            f"confidence={confidence!r}."
        )
    return float(confidence)
