"""SGD whose weight decay means what the CNN papers meant: an L2 term.

The ResNet, Wide ResNet, ResNeXt and ImageNet-at-scale papers train with SGD
and "weight decay" `wd`, by which they mean the gradient of the L2 penalty
`wd / 2 * ||w||^2` added to the loss gradient *before* the momentum update
(Caffe, Torch and `torch.optim.SGD(weight_decay=...)` all do this). Keras 3's
`SGD(weight_decay=...)` is something else: a decoupled decay `w -= lr * wd *
w` applied outside the momentum. With momentum `m` the coupled L2 term is
amplified by the velocity (about `1 / (1 - m)`, 10x at `m=0.9`), the decoupled
one is not, so the same number gives a much weaker regulariser in Keras.
`CoupledSGD` adds the L2 term to the gradient and then runs Keras' own SGD
update.

Example:

```python
model.compile(
    optimizer=CoupledSGD(0.1, momentum=0.9, l2=1e-4),
    loss="sparse_categorical_crossentropy",
)
```
"""

from __future__ import annotations

import keras
from keras import ops

from keras_eraserelu.core import check_number, is_int


@keras.saving.register_keras_serializable(package="keras_eraserelu")
class CoupledSGD(keras.optimizers.SGD):
    """SGD (momentum, Nesterov) with weight decay as an L2 term in the gradient.

    Each step, for every variable `w` with gradient `g`:

    ```
    g = g + l2 * w                    # skipped for variables in exclude_from_l2
    v = momentum * v - lr * g         # Keras' SGD convention, unchanged
    w = w + v                         # plain momentum
    w = w + momentum * v - lr * g     # nesterov=True
    ```

    This is `torch.optim.SGD(lr, momentum, weight_decay=l2, nesterov=...)`
    (with `dampening=0`), written in Keras' convention. PyTorch keeps the
    velocity without the learning rate (`b = m * b + g; w -= lr * b`). For a
    constant learning rate the two are the same sequence of weights
    (`v = -lr * b`). When the learning rate changes, Keras' velocity still
    carries the past steps at their old rate for a few iterations (a
    transient that decays as `momentum ** k`); Goyal et al. 2017 (arXiv
    1706.02677, section 2.3, "momentum correction") discuss the difference.

    The variables that get no L2 term are chosen once, when the optimizer is
    built, from their paths (`"stage1_block1_bn1/gamma"`); the step itself
    keeps no Python-side state, so it runs under any `tf.distribute`
    strategy, inside `model.fit` or a custom loop.

    Args:
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`.
            The learning rate. Defaults to 0.01.
        momentum: float in [0, 1]. Momentum. Defaults to 0.0.
        nesterov: bool. Whether to use Nesterov momentum. Defaults to False.
        l2: float >= 0. Coefficient of the L2 term `l2 * w` added to each
            gradient: the "weight decay" of the papers. Defaults to 0.0.
        exclude_from_l2: None, str or list of str. Variables whose path
            (`variable.path`, e.g. `"dense/bias"`) contains any of these
            substrings get no L2 term; `["bias", "gamma", "beta"]` spares
            biases and batch-norm scales and offsets. Defaults to None
            (every trainable variable is decayed).
        **kwargs: the other arguments of `keras.optimizers.SGD` (`name`,
            `clipnorm`, `use_ema`, `loss_scale_factor`, ...), except a
            non-None `weight_decay`.

    Raises:
        TypeError: if `l2` is not a number or `exclude_from_l2` is not None,
            a str or a list of str.
        ValueError: if `l2` is negative, or a decoupled `weight_decay` is
            given too.

    Example:

    ```python
    optimizer = CoupledSGD(
        learning_rate=0.1, momentum=0.9, nesterov=True, l2=5e-4,
        exclude_from_l2=["bias"],
    )
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    ```
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
        l2=0.0,
        exclude_from_l2=None,
        **kwargs,
    ):
        if kwargs.get("weight_decay") is not None:
            raise ValueError(
                "CoupledSGD takes the papers' weight decay as `l2` (added to "
                "the gradient before the momentum update). Keras' decoupled "
                "`weight_decay` is a different regulariser; use "
                "`keras.optimizers.SGD(weight_decay=...)` for it. Received: "
                f"weight_decay={kwargs['weight_decay']!r}."
            )
        if is_int(momentum):
            momentum = float(momentum)  # keras.optimizers.SGD insists on a float
        super().__init__(
            learning_rate=learning_rate,
            momentum=momentum,
            nesterov=nesterov,
            **kwargs,
        )
        self.l2 = check_number("l2", l2, 0)
        self.exclude_from_l2 = _check_patterns(exclude_from_l2)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # One flag per trainable variable, in the optimizer's index order.
        self._l2_flags = tuple(self.uses_l2(variable) for variable in variables)

    def uses_l2(self, variable):
        """Whether `variable` gets the L2 term (its path matches no exclusion)."""
        path = getattr(variable, "path", None) or variable.name
        return not any(pattern in path for pattern in self.exclude_from_l2)

    def update_step(self, gradient, variable, learning_rate):
        """Adds `l2 * variable` to `gradient`, then runs Keras' SGD step."""
        if self.l2 and self._l2_flags[self._get_variable_index(variable)]:
            gradient = ops.add(
                ops.cast(gradient, variable.dtype),
                ops.multiply(ops.cast(self.l2, variable.dtype), variable),
            )
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"l2": self.l2, "exclude_from_l2": list(self.exclude_from_l2) or None}
        )
        return config


def _check_patterns(exclude_from_l2):
    if exclude_from_l2 is None:
        return ()
    if isinstance(exclude_from_l2, str):
        exclude_from_l2 = [exclude_from_l2]
    if not isinstance(exclude_from_l2, (list, tuple)) or not all(
        isinstance(pattern, str) and pattern for pattern in exclude_from_l2
    ):
        raise TypeError(
            "`exclude_from_l2` must be None, a str or a list of non-empty str "
            "(substrings of variable paths such as 'bias' or 'bn'). "
            f"Received: exclude_from_l2={exclude_from_l2!r}."
        )
    return tuple(exclude_from_l2)
