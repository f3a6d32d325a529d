"""A training recipe: the `Recipe` settings and their learning-rate schedule.

A `Recipe` holds what a paper states about training: epochs, reference batch,
learning rate, momentum, weight decay (coupled L2, see `CoupledSGD`) and the
schedule. It turns into a Keras `LearningRateSchedule` (`RecipeSchedule`) and
an optimizer for a given number of steps per epoch and global batch. The
learning rate scales linearly with the global batch,
`lr = base_lr * global_batch / batch_size` (Goyal et al. 2017, arXiv
1706.02677); so does a constant warm-up rate.

The papers' named recipes live in `keras_eraserelu.training.paper_recipes`.

Example:

```python
recipe = Recipe("short", epochs=10, batch_size=128, base_lr=0.1, momentum=0.9,
                nesterov=False, weight_decay=1e-4, schedule="step",
                milestones=(0.5,))
recipe.learning_rate(5.0, global_batch_size=256)          # 0.02
schedule = recipe.schedule_fn(steps_per_epoch=100)
float(schedule(499)), float(schedule(500))                # 0.1, 0.01
```
"""

from __future__ import annotations

import dataclasses
import math

import keras
from keras import ops

from keras_eraserelu.core import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_type,
)
from keras_eraserelu.training.optimizers import CoupledSGD

SCHEDULES = ("step", "cosine")
WARMUPS = ("constant", "gradual")
# Epoch comparisons forgive float noise such as 0.3 * 90 = 26.999999999999996.
_EPS = 1e-9


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A training recipe: optimizer settings and learning-rate schedule.

    All rates are given at the reference global batch `batch_size`; pass the
    actual global batch to the methods to scale them linearly.

    The main schedule is either "step" (the rate is multiplied by `gamma` at
    each milestone, a fraction of `epochs`; at the milestone itself the new
    rate already holds) or "cosine" (`0.5 * (1 + cos(pi * epoch / epochs))`
    times the rate, 0 at the end). During the first `warmup_epochs`:
    `warmup="constant"` holds `warmup_lr` (scaled with the batch), as He et
    al. did for ResNet-110; `warmup="gradual"` multiplies the main schedule
    by a factor that grows linearly from `1 / k` to 1, where `k` is the
    batch scaling factor, so it starts at `base_lr` (Goyal et al.); for
    `k <= 1` it changes nothing.

    Args:
        name: str. The recipe's name.
        epochs: int > 0. Training length.
        batch_size: int > 0. The paper's global batch.
        base_lr: float > 0. Learning rate at `batch_size`.
        momentum: float in [0, 1].
        nesterov: bool. Nesterov momentum.
        weight_decay: float >= 0. Coupled L2 coefficient (`CoupledSGD(l2=)`).
        schedule: "step" or "cosine".
        milestones: tuple of increasing fractions in (0, 1) of `epochs`
            ("step" only). Defaults to ().
        gamma: float in (0, 1]. Factor applied at each milestone.
            Defaults to 0.1.
        warmup_epochs: float in [0, epochs). Defaults to 0.0.
        warmup_lr: float >= 0. Constant warm-up rate at `batch_size`
            (`warmup="constant"` only). Defaults to 0.0.
        label_smoothing: float in [0, 1). For the loss. Defaults to 0.0.
        source: str. Citation. Defaults to "".
        warmup: "constant" or "gradual". Defaults to "constant".
        l2_exclude: tuple of str. Substrings of variable paths that get no
            weight decay (`CoupledSGD(exclude_from_l2=)`). Defaults to ().

    Example:

    ```python
    recipe = get_recipe("wrn_cifar").with_epochs(20)
    recipe.learning_rate(6.0)       # 0.02: the first x0.2 at 30% of 20 epochs
    ```
    """

    name: str
    epochs: int
    batch_size: int
    base_lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    schedule: str
    milestones: tuple = ()
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    warmup_lr: float = 0.0
    label_smoothing: float = 0.0
    source: str = ""
    warmup: str = "constant"
    l2_exclude: tuple = ()

    def __post_init__(self):
        check_type("name", self.name, str)
        check_type("source", self.source, str)
        check_bool("nesterov", self.nesterov)
        for field in ("epochs", "batch_size"):
            check_int(field, getattr(self, field), minimum=1)
        check_number("base_lr", self.base_lr, 0, open_low=True)
        check_number("momentum", self.momentum, 0, 1)
        check_number("weight_decay", self.weight_decay, 0)
        check_number("gamma", self.gamma, 0, 1, open_low=True)
        check_number("warmup_lr", self.warmup_lr, 0)
        check_number("label_smoothing", self.label_smoothing, 0, 1, open_high=True)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("warmup", self.warmup, WARMUPS)
        check_number(
            "warmup_epochs", self.warmup_epochs, 0, self.epochs, open_high=True
        )
        milestones = _as_tuple("milestones", self.milestones)
        object.__setattr__(self, "milestones", milestones)
        object.__setattr__(self, "l2_exclude", _as_tuple("l2_exclude", self.l2_exclude))
        for i, m in enumerate(milestones):
            check_number(f"milestones[{i}]", m, 0, 1, open_low=True, open_high=True)
        if list(milestones) != sorted(set(milestones)):
            raise ValueError(
                "`milestones` must be strictly increasing fractions of the epochs. "
                f"Received: milestones={milestones!r}."
            )
        if milestones and self.schedule != "step":
            raise ValueError(
                f"`milestones` apply to schedule='step' only; schedule="
                f"{self.schedule!r} ignores them. Received: milestones={milestones!r}."
            )
        if self.warmup_epochs and self.warmup == "constant" and not self.warmup_lr:
            raise ValueError(
                "A constant warm-up needs `warmup_lr` > 0 (He et al. used 0.01). "
                f"Received: warmup_epochs={self.warmup_epochs!r}, warmup_lr=0."
            )
        if self.warmup == "gradual" and self.warmup_lr:
            raise ValueError(
                "warmup='gradual' starts at `base_lr` and ignores `warmup_lr`; "
                "set warmup_lr=0.0, or use warmup='constant'. "
                f"Received: warmup_lr={self.warmup_lr!r}."
            )

    def learning_rate(self, epoch, global_batch_size=None):
        """The learning rate at `epoch` (a float: 2.5 is the middle of epoch 3).

        Args:
            epoch: float >= 0. Epochs done so far (step / steps_per_epoch).
            global_batch_size: int or None. The global batch; None means the
                reference `batch_size`.

        Returns:
            A Python float.
        """
        check_number("epoch", epoch, 0)
        scale = self.batch_scale(global_batch_size)
        if self.schedule == "step":
            drops = sum(_reached(epoch, m * self.epochs) for m in self.milestones)
            main = self.base_lr * scale * self.gamma**drops
        else:
            # 0.5 * (1 + cos(pi * epoch / epochs)) = sin(pi / 2 * left)^2, with
            # left = 1 - epoch / epochs: accurate to the end, exactly 0 there.
            left = (self.epochs - min(epoch, self.epochs)) / self.epochs
            main = self.base_lr * scale * math.sin(math.pi / 2 * left) ** 2
        if _reached(epoch, self.warmup_epochs):
            return main
        if self.warmup == "constant":
            return self.warmup_lr * scale
        start = min(1.0, 1.0 / scale)
        return main * (start + (1.0 - start) * epoch / self.warmup_epochs)

    def batch_scale(self, global_batch_size=None):
        """The linear-scaling factor `global_batch_size / batch_size`."""
        if global_batch_size is None:
            return 1.0
        check_int("global_batch_size", global_batch_size, minimum=1)
        return global_batch_size / self.batch_size

    def schedule_fn(self, steps_per_epoch, global_batch_size=None):
        """The recipe as a step-level Keras `LearningRateSchedule`.

        Args:
            steps_per_epoch: int > 0. Optimizer steps per epoch at the
                global batch actually used.
            global_batch_size: int or None. The global batch.

        Returns:
            A serializable `RecipeSchedule`; at step `s` it equals
            `learning_rate(s / steps_per_epoch, global_batch_size)`.
        """
        return RecipeSchedule(self, steps_per_epoch, global_batch_size)

    def optimizer(self, steps_per_epoch, global_batch_size=None):
        """A `CoupledSGD` with this recipe's schedule, momentum and weight decay.

        Args:
            steps_per_epoch: int > 0. Optimizer steps per epoch.
            global_batch_size: int or None. The global batch.

        Returns:
            A `CoupledSGD`, to pass to `model.compile(optimizer=...)`.
        """
        return CoupledSGD(
            learning_rate=self.schedule_fn(steps_per_epoch, global_batch_size),
            momentum=float(self.momentum),
            nesterov=self.nesterov,
            l2=float(self.weight_decay),
            exclude_from_l2=list(self.l2_exclude) or None,
        )

    def with_epochs(self, epochs):
        """The same recipe over `epochs` epochs, with the same shape.

        Milestones are fractions, so they move with the length; the warm-up
        keeps its fraction of the run too.

        Args:
            epochs: int > 0.

        Returns:
            A new `Recipe`.
        """
        check_int("epochs", epochs, minimum=1)
        return dataclasses.replace(
            self,
            epochs=epochs,
            warmup_epochs=self.warmup_epochs * epochs / self.epochs,
        )


@keras.saving.register_keras_serializable(package="keras_eraserelu")
class RecipeSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A `Recipe`'s learning rate per optimizer step, for Keras optimizers.

    Boundaries (milestones, warm-up end) fall on the first step whose epoch
    `step / steps_per_epoch` reaches them, the same rule as
    `Recipe.learning_rate`.

    Args:
        recipe: `Recipe` or its dict (`dataclasses.asdict`).
        steps_per_epoch: int > 0.
        global_batch_size: int or None. Defaults to None (reference batch).

    Example:

    ```python
    schedule = get_recipe("he_cifar").schedule_fn(steps_per_epoch=391)
    float(schedule(32062))    # 0.01
    ```
    """

    def __init__(self, recipe, steps_per_epoch, global_batch_size=None):
        if isinstance(recipe, dict):
            recipe = Recipe(**recipe)
        check_type("recipe", recipe, Recipe)
        check_int("steps_per_epoch", steps_per_epoch, minimum=1)
        self.recipe = recipe
        self.steps_per_epoch = int(steps_per_epoch)
        scale = recipe.batch_scale(global_batch_size)
        self.global_batch_size = (
            None if global_batch_size is None else int(global_batch_size)
        )
        self._boundaries = [
            _first_step(m * recipe.epochs, steps_per_epoch) for m in recipe.milestones
        ]
        self._values = [
            recipe.base_lr * scale * recipe.gamma**i
            for i in range(len(recipe.milestones) + 1)
        ]
        self._total_steps = float(recipe.epochs * steps_per_epoch)
        self._warmup_steps = _first_step(recipe.warmup_epochs, steps_per_epoch)
        self._warmup_lr = recipe.warmup_lr * scale
        self._start = min(1.0, 1.0 / scale)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        recipe = self.recipe
        if recipe.schedule == "step":
            drops = ops.zeros((), "int32")
            for boundary in self._boundaries:
                drops = drops + ops.cast(ops.greater_equal(step, boundary), "int32")
            main = ops.take(ops.convert_to_tensor(self._values, "float32"), drops)
        else:
            total = self._total_steps
            left = (total - ops.minimum(step, total)) / total
            main = self._values[0] * ops.square(ops.sin(math.pi / 2 * left))
        if not self._warmup_steps:
            return main
        if recipe.warmup == "constant":
            warm = ops.full((), self._warmup_lr, "float32")
        else:
            fraction = step / (recipe.warmup_epochs * self.steps_per_epoch)
            warm = main * (self._start + (1.0 - self._start) * fraction)
        return ops.where(ops.less(step, self._warmup_steps), warm, main)

    def get_config(self):
        return {
            "recipe": dataclasses.asdict(self.recipe),
            "steps_per_epoch": self.steps_per_epoch,
            "global_batch_size": self.global_batch_size,
        }


def _reached(epoch, threshold):
    return epoch >= threshold - _EPS


def _first_step(threshold, steps_per_epoch):
    # The first integer step whose epoch reaches `threshold` under _reached().
    step = max(0, math.ceil(threshold * steps_per_epoch) - 1)
    while not _reached(step / steps_per_epoch, threshold):
        step += 1
    while step > 0 and _reached((step - 1) / steps_per_epoch, threshold):
        step -= 1
    return step


def _as_tuple(field, value):
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(
            f"`{field}` must be a tuple. Received: {field}={value!r} of type "
            f"{type(value).__name__}."
        )
    return tuple(value)
