"""Statistics over seeds: mean, spread, Student-t intervals, Welch's t-test.

A handful of training runs per variant is a small sample: its mean is
reported with a Student-t confidence interval, and two variants are compared
with Welch's t-test (no equal-variance assumption), whose interval for the
difference of means uses the Welch-Satterthwaite degrees of freedom. The
distributions come from `scipy.stats`.

With fewer than two values (one seed) a spread, an interval or a test is
undefined: the fields are NaN (None in JSON, "n/a" in tables), not an error.

Example:

```python
summary = summarize([7.9, 8.4, 8.1, 7.6, 8.3])
summary.ci_low, summary.ci_high        # (7.60..., 8.51...)
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
from scipy import stats as scipy_stats


@dataclasses.dataclass(frozen=True)
class Summary:
    """Mean, standard deviation and confidence interval of a sample.

    Attributes:
        n: int. Sample size.
        mean: float. Sample mean (NaN when n is 0).
        std: float. Sample standard deviation, ddof=1 (NaN when n < 2).
        ci_low, ci_high: float. Student-t interval for the mean (NaN when
            n < 2).
        confidence: float. The interval's confidence level.
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    confidence: float

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
        ci_low, ci_high: float. Welch confidence interval of the difference.
        statistic: float. Welch's t statistic.
        df: float. Welch-Satterthwaite degrees of freedom.
        p_value: float. Two-sided p-value of "the means are equal".
        confidence: float. The interval's confidence level.

    All but `n_a`, `n_b` and `mean` are NaN when either sample has fewer
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

    @property
    def defined(self):
        """Whether the interval and the test exist (both n >= 2)."""
        return min(self.n_a, self.n_b) >= 2

    def to_dict(self):
        """A JSON-ready dict; undefined numbers are None."""
        return {k: json_number(v) for k, v in dataclasses.asdict(self).items()}


def summarize(values, confidence=0.95):
    """Mean, std (ddof=1) and Student-t confidence interval of `values`.

    Args:
        values: sequence of finite numbers (may be empty).
        confidence: float in (0, 1). Defaults to 0.95.

    Returns:
        A `Summary`; std and interval are NaN for fewer than two values.

    Raises:
        TypeError: if `values` holds something other than numbers.
        ValueError: if a value is not finite or `confidence` is not in (0, 1).

    Example:

    ```python
    summarize([1, 2, 3, 4, 5])   # mean 3, std 1.58, 95% CI (1.04, 4.96)
    ```
    """
    data = _sample("values", values)
    confidence = _confidence(confidence)
    n = len(data)
    mean = float(np.mean(data)) if n else math.nan
    if n < 2:
        return Summary(n, mean, math.nan, math.nan, math.nan, confidence)
    if np.all(data == data[0]):  # scipy gives NaN for a zero scale
        value = float(data[0])
        return Summary(n, value, 0.0, value, value, confidence)
    low, high = scipy_stats.t.interval(
        confidence, n - 1, loc=mean, scale=scipy_stats.sem(data)
    )
    std = float(np.std(data, ddof=1))
    return Summary(n, mean, std, float(low), float(high), confidence)


def welch_difference(a, b, confidence=0.95):
    """`mean(a) - mean(b)` with Welch's confidence interval and t-test.

    Args:
        a, b: sequences of finite numbers.
        confidence: float in (0, 1). Defaults to 0.95.

    Returns:
        A `Difference`. Interval, statistic, df and p-value are NaN when a
        sample has fewer than two values; when both samples have zero
        variance they are those `scipy.stats.ttest_ind` gives (p = 0 for
        different means, NaN for equal ones).

    Raises:
        TypeError, ValueError: as `summarize`.

    Example:

    ```python
    welch_difference([1, 2, 3], [4, 5, 6.5]).p_value   # 0.029
    ```
    """
    first, second = _sample("a", a), _sample("b", b)
    confidence = _confidence(confidence)
    n_a, n_b = len(first), len(second)
    mean = float(np.mean(first) - np.mean(second)) if n_a and n_b else math.nan
    if min(n_a, n_b) < 2:
        nan = math.nan
        return Difference(n_a, n_b, mean, nan, nan, nan, nan, nan, confidence)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        test = scipy_stats.ttest_ind(first, second, equal_var=False)
        interval = test.confidence_interval(confidence)
    return Difference(
        n_a,
        n_b,
        mean,
        float(interval.low),
        float(interval.high),
        float(test.statistic),
        float(test.df),
        float(test.pvalue),
        confidence,
    )


def json_number(value):
    """`value` as a JSON-ready number: NaN and infinities become None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
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
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
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


def _confidence(confidence):
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, numbers.Real)
        or not 0.0 < confidence < 1.0
    ):
        raise ValueError(
            "`confidence` must be a number in (0, 1), such as 0.95. Received: "
            f"confidence={confidence!r}."
        )
    return float(confidence)
