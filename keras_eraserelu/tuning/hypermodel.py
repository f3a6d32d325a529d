"""Search spaces over erasure placements, as a Keras Tuner `HyperModel`.

`PlacementHyperModel.build(hp)` applies one placement to a registry model or
to a user's model through the package's one rewriter (`plan_erasure` and
`erase_relu`), compiles it with a paper's recipe and returns it; its `fit`
trains on a held-out part of the training split. The spaces:

| space | hyperparameters | placement |
|---|---|---|
| `"per_module"` | a `Boolean` per module, named as it | `modules=[...]` |
| `"stage"` | a `Boolean` per stage: `stage_0`, ... | `modules=[...]` |
| `"ratio"` | `ratio` (k / n), `ratio_from` | `ratio=`, `ratio_from=` |
| `"position"` | `where`: last, first, all, inner k | `where=` |

`"position"` combines with one of the other three (`space=("position",
"ratio")`). A list of `epochs` or `batch_size` values makes them tuned too.
Keras Tuner's own values (`tuner/epochs`, ... of Hyperband) never enter a
placement.

Example:

```python
hypermodel = PlacementHyperModel("cifar_resnet8", space="per_module",
                                 dataset="digits", epochs=2)
tuner = keras_tuner.RandomSearch(hypermodel, "val_accuracy", max_trials=4)
tuner.search()
hypermodel.placement(tuner.get_best_hyperparameters()[0].values)
# {'where': 'last', 'kinds': ['relu'], 'modules': ['stage2_block1_out']}
```
"""

from __future__ import annotations

import keras
import keras_tuner

from keras_eraserelu.core import (
    RATIO_FROM_CHOICES,
    WHERE_CHOICES,
    check_choice,
    check_kinds,
    check_model,
    erase_relu,
    is_int,
    plan_erasure,
)
from keras_eraserelu.data import dataset_source, load_dataset, resolve_split
from keras_eraserelu.models import model_source, output_is_probability
from keras_eraserelu.training import (
    Recipe,
    default_recipe,
    fit_data_to_model,
    get_recipe,
    resolve_jit_compile,
)

SPACES = ("per_module", "ratio", "position", "stage")
# These three each choose the modules; "position" chooses the site inside them.
_MODULE_SPACES = ("per_module", "ratio", "stage")
# Where trials train and are scored when the data set has a test split of
# its own, which the search must not see (catalogue and tfds data sets).
HELD_OUT_SPLITS = ("train[:90%]", "train[90%:]")


def check_space(space):
    """Normalises `space` (a name or a sequence of names) to a tuple of names.

    Raises:
        TypeError: if `space` is not a str or a sequence of str.
        ValueError: for an unknown, repeated or contradictory space.
    """
    names = (space,) if isinstance(space, str) else space
    if not isinstance(names, (list, tuple)) or not names:
        raise TypeError(
            f"`space` must be one of {list(SPACES)} or a non-empty list of them. "
            f"Received: space={space!r}."
        )
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"Each entry of `space` must be a str. Received: {name!r}.")
        check_choice("space", name, SPACES)
    if len(set(names)) != len(names):
        raise ValueError(f"`space` names a space twice. Received: space={space!r}.")
    choosers = [name for name in names if name in _MODULE_SPACES]
    if len(choosers) > 1:
        raise ValueError(
            f"The spaces {choosers} each choose which modules are erased, so they "
            "cannot be combined. Combine one of them with 'position' (where "
            f"inside each module). Received: space={space!r}."
        )
    return tuple(names)


class PlacementHyperModel(keras_tuner.HyperModel):
    """A `keras_tuner.HyperModel` whose hyperparameters are an erasure placement.

    The network is built once (seeded), and every trial starts from a copy of
    these same weights, so trials differ only in their placement. Each trial
    trains on `train_split` and is scored on `validation_split`, two disjoint
    parts of the training data; the test split stays untouched.

    Args:
        model_or_name: anything `model_source` accepts: a registry or
            keras.applications name (built for the data's input shape and
            classes), a builder, a built Functional or Sequential model or a
            `.keras` path (copied; see `reinitialize`).
        space: str or sequence of str. See the module docstring. Defaults to
            `"per_module"`.
        dataset: anything `dataset_source` accepts: a catalogue or
            registered name, "tfds:NAME", arrays, a folder, a `.npz` file, a
            `(train, validation)` tf.data or PyDataset pair. Defaults to
            `"digits"`.
        recipe: str, Recipe or None. Optimizer and learning-rate schedule.
            Defaults to the model family's (`recipe_for_model`), or
            `"he_cifar"` for a user's model.
        epochs: int, list of int or None. Epochs per trial; a list is tuned
            (`epochs` hyperparameter). Defaults to the recipe's.
        batch_size: int, list of int or None. Global batch; a list is tuned
            (`batch_size`); the learning rate scales with it. Defaults to the
            batch of the given pipelines when they are batched, else the
            recipe's.
        where: str or int. The position inside each module when `"position"`
            is not searched. Defaults to `"last"` (the paper's).
        kinds: str or sequence of str. Activation kinds to erase, as in
            `plan_erasure`. Defaults to `"relu"`.
        steps_per_epoch: int or None. Shorter epochs (the training data
            repeats). Defaults to one pass over `train_split`.
        validation_steps: int or None. Defaults to all of `validation_split`.
        train_split: str or None. None: `"train[:90%]"` for a catalogue or
            tfds data set (its test split stays untouched), `"train"` for a
            user's data.
        validation_split: str or None. None: `"train[90%:]"` for a catalogue
            or tfds data set, `"test"` (the user's validation data) otherwise.
        loss: a Keras loss or None. Defaults to sparse categorical
            cross-entropy, on probabilities when the model ends in a softmax,
            else on logits.
        jit_compile: "auto" or bool. XLA; "auto" is on for one GPU only (see
            `keras_eraserelu.training.precision.resolve_jit_compile`).
        seed: int. Seeds the initial weights and the data order. Defaults to 0.
        data_dir: str or None. The tensorflow-datasets directory.
        model_kwargs: dict or None. More arguments of a registry builder.
        reinitialize: bool or None. A given model's copy starts from fresh
            weights drawn under `seed` (True) or from the model's own (False;
            None: True, except for a KerasHub preset). Every trial starts
            from the same weights either way. Defaults to None.
        name: str or None. The hypermodel's name.

    Attributes:
        base_model: keras.Model. The network every trial copies and erases.
        modules: tuple of Module. Its modules, as `plan_erasure` finds them.
        spaces: tuple of str. The spaces searched.

    Raises:
        TypeError: for a model that is neither a name nor a Keras model.
        ValueError: for an unknown space or recipe, a model without modules,
            a model that does not fit the data set, or bad sizes.

    Example:

    ```python
    hypermodel = PlacementHyperModel(my_model, space=("position", "ratio"),
                                     dataset="cifar10", recipe="he_cifar")
    model = hypermodel.build(keras_tuner.HyperParameters())
    ```
    """

    def __init__(
        self,
        model_or_name,
        space="per_module",
        *,
        dataset="digits",
        recipe=None,
        epochs=None,
        batch_size=None,
        where="last",
        kinds="relu",
        steps_per_epoch=None,
        validation_steps=None,
        train_split=None,
        validation_split=None,
        loss=None,
        jit_compile="auto",
        seed=0,
        data_dir=None,
        model_kwargs=None,
        reinitialize=None,
        name=None,
    ):
        self.spaces = check_space(space)
        self.seed = seed
        model = model_source(model_or_name, reinitialize=reinitialize)
        fitted = fit_data_to_model(model, dataset_source(dataset, data_dir=data_dir))
        self.source = fitted.data
        self.input_shape, self.image_size = fitted.input_shape, fitted.image_size
        self.base_model = _base_model(
            model, self.input_shape, self.source.spec.num_classes, seed,
            model_kwargs or {},
        )  # fmt: skip
        self.model_name = model.name
        super().__init__(name=name or f"placements_{self.model_name}")
        self.kinds = check_kinds(kinds)
        self.where = where
        reference = plan_erasure(self.base_model, where, kinds=self.kinds)
        self.modules = reference.modules
        if not self.modules:
            why = " ".join(reference.warnings) or "no merging or pooling cut points."
            raise ValueError(
                f"Model '{self.base_model.name}' has no basic modules, so the space "
                f"{list(self.spaces)} has no placement to choose: {why} Tune a "
                "network made of residual, Inception or pooled stages, or erase "
                "chosen sites with `erase_relu(model, select=...)`."
            )
        self.recipe = _resolve_recipe(recipe, model.name)
        self.epochs = _sizes("epochs", self.recipe.epochs if epochs is None else epochs)
        if batch_size is None:
            batch_size = self.source.record.get("batch_size") or self.recipe.batch_size
        self.batch_size = _sizes("batch_size", batch_size)
        self.steps_per_epoch = steps_per_epoch
        self.validation_steps = validation_steps
        self.splits = _splits(self.source, train_split, validation_split)
        logits = not output_is_probability(self.base_model)
        self.loss = loss or keras.losses.SparseCategoricalCrossentropy(
            from_logits=logits
        )
        self.jit_compile = jit_compile
        resolve_jit_compile(jit_compile)  # raises for a bad value
        self.data_dir = data_dir
        self._data = {}
        for split in self.splits:  # check the split names now, not per trial
            resolve_split(self.source.spec, split)

    @property
    def stages(self):
        """The stage indices of the modules, in order."""
        return sorted({module.stage for module in self.modules})

    @property
    def positions(self):
        """The `where` values of the "position" space (all valid everywhere)."""
        fewest = min(module.site_count for module in self.modules)
        return list(WHERE_CHOICES) + [str(k) for k in range(1, fewest - 1)]

    @property
    def ratios(self):
        """The `ratio` values of the "ratio" space: k / n for k = 0..n."""
        count = len(self.modules)
        return [round(k / count, 4) for k in range(count + 1)]

    def declare(self, hp):
        """Declares this space's hyperparameters in `hp`."""
        if "per_module" in self.spaces:
            for module in self.modules:
                hp.Boolean(module.name, default=True)
        if "stage" in self.spaces:
            for stage in self.stages:
                hp.Boolean(f"stage_{stage}", default=True)
        if "ratio" in self.spaces:
            hp.Choice("ratio", self.ratios, default=1.0)
            hp.Choice("ratio_from", list(RATIO_FROM_CHOICES))
        if "position" in self.spaces:
            hp.Choice("where", self.positions, default="last")
        if len(self.epochs) > 1:
            hp.Choice("epochs", list(self.epochs))
        if len(self.batch_size) > 1:
            hp.Choice("batch_size", list(self.batch_size))

    def placement(self, values):
        """The `plan_erasure` arguments that hyperparameter `values` mean.

        Args:
            values: dict. Hyperparameter values (`hp.values`); missing ones
                take their defaults, unknown ones (`tuner/...`) are ignored.

        Returns:
            A dict for `plan_erasure(model, **placement)` or `erase_relu`.
        """
        placement = {"where": self.where, "kinds": list(self.kinds)}
        if "position" in self.spaces:
            where = values.get("where", "last")
            placement["where"] = int(where) if where.isdigit() else where
        if "per_module" in self.spaces:
            placement["modules"] = [
                m.name for m in self.modules if values.get(m.name, True)
            ]
        if "stage" in self.spaces:
            placement["modules"] = [
                m.name for m in self.modules if values.get(f"stage_{m.stage}", True)
            ]
        if "ratio" in self.spaces:
            placement["ratio"] = float(values.get("ratio", 1.0))
            placement["ratio_from"] = values.get("ratio_from", "start")
        return placement

    def plan(self, values):
        """The `ErasePlan` of hyperparameter `values` on this model."""
        return plan_erasure(self.base_model, **self.placement(values))

    def training_values(self, values):
        """`(epochs, batch_size)` of hyperparameter `values`."""
        epochs = values.get("tuner/epochs", values.get("epochs", self.epochs[0]))
        return epochs, values.get("batch_size", self.batch_size[0])

    def build(self, hp):
        """A compiled copy of the model with `hp`'s placement erased.

        Raises:
            keras_tuner.errors.FatalValueError: for a placement that cannot be
                applied, so that the search stops instead of failing each trial.
        """
        self.declare(hp)
        try:
            plan = self.plan(hp.values)
        except (ValueError, TypeError, IndexError) as error:
            raise keras_tuner.errors.FatalValueError(
                f"Cannot apply the placement {self.placement(hp.values)} to model "
                f"'{self.model_name}': {error}"
            ) from error
        model = erase_relu(self.base_model, plan=plan)
        batch = self.training_values(hp.values)[1]
        # The schedule spans the trial's epochs; under Hyperband, its maximum.
        recipe = self.recipe.with_epochs(hp.values.get("epochs", self.epochs[0]))
        model.compile(
            optimizer=recipe.optimizer(self.steps(batch), batch),
            loss=self.loss,
            metrics=["accuracy"],
            jit_compile=resolve_jit_compile(self.jit_compile),
        )
        return model

    def fit(self, hp, model, *args, **kwargs):
        """Trains `model` on the training part; Hyperband's epochs win.

        Without data in `args`/`kwargs`, trains on `train_split` and
        validates on `validation_split` at the trial's batch size.
        """
        epochs, batch = self.training_values(hp.values)
        kwargs.setdefault("epochs", epochs)
        if not args and "x" not in kwargs:
            train, validation = self.data(batch)
            args = (train,)
            kwargs.setdefault("validation_data", validation)
            kwargs.setdefault("steps_per_epoch", self.steps_per_epoch)
            kwargs.setdefault("validation_steps", self.validation_steps)
            kwargs.setdefault("shuffle", False)  # the pipeline shuffles
        return model.fit(*args, **kwargs)

    def data(self, batch_size):
        """`(train, validation)` pipelines at `batch_size` (built once each)."""
        if batch_size not in self._data:
            train, validation = self.splits
            options = {"data_dir": self.data_dir, "image_size": self.image_size}
            self._data[batch_size] = (
                load_dataset(
                    self.source,
                    train,
                    batch_size,
                    seed=self.seed,
                    repeat=self.steps_per_epoch is not None,
                    **options,
                ),
                load_dataset(
                    self.source,
                    validation,
                    batch_size,
                    augment=False,
                    shuffle=False,
                    **options,
                ),
            )
        return self._data[batch_size]

    def steps(self, batch_size):
        """Optimizer steps per epoch at `batch_size` (for the schedule)."""
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        count = int(self.data(batch_size)[0].cardinality())
        if count <= 0:
            raise ValueError(
                "The number of batches of the training data is unknown; pass "
                f"`steps_per_epoch`. Received: dataset={self.source.identity!r}."
            )
        return count


def _base_model(model, input_shape, classes, seed, model_kwargs):
    """The network every trial copies: built (or copied) under `seed`."""
    keras.utils.set_random_seed(seed)
    network = model.build(input_shape, classes, **model_kwargs)
    check_model(network)
    return network


def _splits(source, train_split, validation_split):
    """The (train, validation) splits: held out of the training split for a
    data set with a test split of its own, the user's validation otherwise."""
    held_out = source.kind in ("catalogue", "tfds")
    defaults = HELD_OUT_SPLITS if held_out else ("train", "test")
    return (train_split or defaults[0], validation_split or defaults[1])


def _resolve_recipe(recipe, model_name):
    if isinstance(recipe, Recipe):
        return recipe
    if recipe is None:
        return get_recipe(default_recipe(model_name))
    if not isinstance(recipe, str):
        raise TypeError(
            f"`recipe` must be a recipe name, a Recipe or None. Received: {recipe!r}."
        )
    return get_recipe(recipe)


def _sizes(argument, value):
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    if not values or any(not is_int(v) or v < 1 for v in values):
        raise ValueError(
            f"`{argument}` must be a positive int or a non-empty list of them. "
            f"Received: {argument}={value!r}."
        )
    return tuple(int(v) for v in values)
