"""Folding: an equivalent model with fewer layers, for deployment.

`fold_linear(model)` removes what EraseReLU (or anything else) left linear:
Identity layers, batch norms folded into a neighbouring convolution or
Dense layer, chains of linear layers merged into one, and optionally linear
branches merged with their identity shortcut (RepVGG). It returns the new
model and a `FoldReport`. Keras only: this layer sits beside `models` and
`data`, on top of `core`.

Example:

```python
from keras_eraserelu.folding import fold_linear
folded, report = fold_linear(erase_relu(model), residuals=True)
print(report)
```
"""

from keras_eraserelu.folding.chains import CHAIN_CHOICES
from keras_eraserelu.folding.fold import (
    LOW_PRECISION_TOLERANCE,
    TOLERANCE,
    fold_linear,
)
from keras_eraserelu.folding.report import Fold, FoldReport, Skip
from keras_eraserelu.folding.spatial_bias import SpatialBias

__all__ = [
    "CHAIN_CHOICES",
    "Fold",
    "FoldReport",
    "LOW_PRECISION_TOLERANCE",
    "Skip",
    "SpatialBias",
    "TOLERANCE",
    "fold_linear",
]
