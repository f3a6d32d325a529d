"""Tuning: Keras Tuner's search over where to erase (the hypermodel, the
search on one machine or many, and its result).

Example:

```python
from keras_eraserelu.tuning import tune_placements
result = tune_placements("cifar_resnet20", "cifar10", max_trials=20,
                         directory="runs/tune")
```
"""

from keras_eraserelu.tuning.hypermodel import SPACES, PlacementHyperModel
from keras_eraserelu.tuning.result import TuningResult
from keras_eraserelu.tuning.search import (
    OBJECTIVES,
    TUNERS,
    distributed_role,
    tune_placements,
)

__all__ = [
    "OBJECTIVES",
    "PlacementHyperModel",
    "SPACES",
    "TUNERS",
    "TuningResult",
    "distributed_role",
    "tune_placements",
]
