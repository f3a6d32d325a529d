"""Experiments: variants, per-run metrics, statistics over seeds, the report
and its plots, `compare` and the demo.

Example:

```python
from keras_eraserelu.experiments import compare
compare([("cifar_resnet56", "none"), ("cifar_resnet56", "last")], "cifar10",
        seeds=5, out="r56")
```
"""

from keras_eraserelu.experiments.comparison import ExperimentResult, compare
from keras_eraserelu.experiments.digits_demo import demo
from keras_eraserelu.experiments.metrics import run_metrics
from keras_eraserelu.experiments.stats import (
    summarize,
    summarize_rate,
    welch_difference,
)
from keras_eraserelu.experiments.variants import Variant, as_variants, depth_variants

__all__ = [
    "ExperimentResult",
    "Variant",
    "as_variants",
    "compare",
    "demo",
    "depth_variants",
    "run_metrics",
    "summarize",
    "summarize_rate",
    "welch_difference",
]
