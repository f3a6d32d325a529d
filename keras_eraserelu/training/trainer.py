"""`train`: one model, one data set, one recipe, at any scale, resumable.

The same function behind `eraserelu train`: it builds the strategy, the
precision policy, the input pipelines (one per worker), the model (erased as
asked, or made erasable for progressive erasure) and the recipe's optimizer,
then runs `model.fit` with a progress bar, TensorBoard logs, an atomic
`history.json` per epoch and a crash-safe checkpoint of model and optimizer
(`run_record.EpochCheckpoint`). Started again with the same output directory
after a crash, it resumes from the last finished epoch; a run already
complete is not repeated.

`model=` is a registry or keras.applications name, a builder, a
`keras.Model` or a `.keras` file (`keras_eraserelu.models.model_source`: a
user's model is copied, re-initialized from the seed unless
`reinitialize=False`); `dataset=` a catalogue or registered name,
"tfds:NAME", arrays, a folder, a `.npz` file or a tf.data pair
(`keras_eraserelu.data.dataset_source`).

Files in `out`: `model.keras`, `history.json` (configuration, what the data
and the model were, replicas, versions, one record per epoch),
`tensorboard/`. In a multi-worker run only
the chief writes them.

Example:

```python
result = train("cifar_resnet20", "cifar10", erase="last", epochs=164, out="runs/r20")
result.history[-1]["val_accuracy"]
```
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import warnings
import zipfile

import keras

from keras_eraserelu.core import erase_arguments, make_erasable, tensorflow_available
from keras_eraserelu.data import dataset_source, distributed_dataset, load_dataset
from keras_eraserelu.models import model_source, output_is_probability
from keras_eraserelu.training.callbacks import (
    ActivationStats,
    GradientStats,
    ProgressiveErase,
)
from keras_eraserelu.training.cluster import is_chief, writable_dir
from keras_eraserelu.training.compat import patch_multiworker_fit
from keras_eraserelu.training.distribution import (
    BackendStrategy,
    as_backend_strategy,
)
from keras_eraserelu.training.fitting import fit_data_to_model
from keras_eraserelu.training.paper_recipes import default_recipe, get_recipe
from keras_eraserelu.training.precision import apply_precision, resolve_jit_compile
from keras_eraserelu.training.progress import LayerStatsProgbar
from keras_eraserelu.training.run_files import (
    HISTORY_FILE,
    MODEL_FILE,
    TENSORBOARD_DIR,
    DamagedRunFileError,
    EpochCheckpoint,
    HistoryWriter,
    atomic_save_model,
    check_output_dir,
    check_same_run,
    checkpoint_epoch,
    clear_checkpoint,
    clear_run,
    read_history,
    restore_checkpoint,
    versions,
)
from keras_eraserelu.training.run_lock import RunLock
from keras_eraserelu.training.strategies import (
    describe_strategy,
    make_strategy,
    per_replica_batch_size,
)

# Arguments that define a run: resuming with other values is refused.
_IDENTITY = ("model", "dataset", "erase", "epochs", "batch_size", "recipe", "seed")


@dataclasses.dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        model: the trained keras.Model (None when loaded from a finished run
            without `load_model=True`).
        history: list of dict. One record per epoch (`epoch`, `loss`,
            `accuracy`, `val_loss`, `val_accuracy`, `learning_rate`, ...).
        config: dict. The run's resolved configuration.
        out: str or None. The run directory.
        resumed: bool. Whether finished epochs were found and kept.
    """

    model: object
    history: list
    config: dict
    out: str | None
    resumed: bool = False

    @property
    def final(self):
        """The last epoch's record."""
        return self.history[-1] if self.history else {}


def train(
    model="cifar_resnet20",
    dataset="cifar10",
    *,
    erase="none",
    epochs=None,
    batch_size=None,
    recipe=None,
    strategy="auto",
    precision="auto",
    jit_compile="auto",
    seed=0,
    out=None,
    steps_per_epoch=None,
    validation_steps=None,
    data_dir=None,
    manual_dir=None,
    progressive_erase=None,
    activation_stats=False,
    gradient_stats=False,
    callbacks=(),
    verbose="auto",
    model_kwargs=None,
    restart=False,
    reinitialize=None,
):
    """Trains a model on a data set with a recipe.

    Args:
        model: a registry name, a keras.applications name, a builder called
            as `builder(input_shape=..., classes=..., erase=...)`, a
            `keras.Model` or a `.keras` path (see `model_source`); a given
            model is copied, never modified. A model with a fixed input size
            gets the images resized to it.
        dataset: a catalogue or registered name, "tfds:NAME", `(x, y)` or
            `((x, y), (x_val, y_val))` arrays, a directory of class folders,
            a `.npz` file, a `(train, validation)` tf.data or PyDataset pair,
            or a `DataSource` (see `dataset_source`).
        erase: str, int or list. Placement to erase before training: "none",
            "last", "first", "all", an int k, or site names.
        epochs: int or None. Defaults to the recipe's; milestones keep their
            fractions.
        batch_size: int or None. The global batch. Defaults to the recipe's;
            the learning rate scales linearly with it.
        recipe: str or None. A name of `list_recipes()`. Defaults to the
            registry family's (`recipe_for_model`), "he_cifar" for others.
        strategy: str, tf.distribute.Strategy (TensorFlow backend) or
            keras.distribution.Distribution (JAX). See `make_strategy`;
            the names each backend offers are in
            `keras_eraserelu.training.distribution`.
        precision: str. See `keras_eraserelu.training.precision`.
        jit_compile: "auto" or bool. XLA.
        seed: int. Seeds weights, data order and augmentation.
        out: str or None. Run directory; None writes nothing.
        steps_per_epoch, validation_steps: int or None. Shorten epochs.
        data_dir, manual_dir: tfds directories.
        progressive_erase: (start_epoch, end_epoch) or None. Make the placement
            erasable and anneal it with `ProgressiveErase` (placement "last"
            when `erase` is "none").
        activation_stats: bool. Log `ActivationStats` on a test batch.
        gradient_stats: bool or int. Log `GradientStats` (every N steps).
        callbacks: more Keras callbacks.
        verbose: "auto", 0, 1 or 2, as in `fit`.
        model_kwargs: dict. More builder arguments.
        restart: bool. Delete the run's files in `out` (history, checkpoint,
            model, TensorBoard logs) and start over. Defaults to False.
        reinitialize: bool or None. A given model, file or KerasHub preset
            starts from fresh weights drawn under `seed` (True) or from its
            own weights (False, for fine-tuning). None: True, except for a
            preset ("hub:..."). Defaults to None.

    Returns:
        A `TrainResult`.

    Raises:
        ValueError: before any training, for data that do not fit the model
            (input shape, number of classes), bad data (see
            `dataset_source`); before any data is loaded or model built, for an `out`
            that is a file, not writable or on a full disk, holds another
            run, is in use by another process (`RunLockedError`) or holds a
            damaged file (`DamagedRunFileError`, naming it).
    """
    run = _resolve_run(
        model_source(model, reinitialize=reinitialize),
        dataset_source(dataset, data_dir=data_dir),
        erase,
        epochs,
        batch_size,
        recipe,
        seed,
        progressive_erase,
        precision=precision,
        jit_compile=jit_compile,
        steps_per_epoch=steps_per_epoch,
    )
    given_strategy = None if isinstance(strategy, str) else strategy
    if given_strategy is not None and keras.backend.backend() != "tensorflow":
        given_strategy = as_backend_strategy(given_strategy)
    if out is not None and is_chief(given_strategy):  # the only one writing
        check_output_dir(out)
    with _run_lock(out, given_strategy):
        previous = _previous_run(out, run.config, restart, given_strategy)
        if previous and previous.get("completed"):
            return _finished(out, previous, run.config)
        initial_epoch = checkpoint_epoch(out) if out else 0

        strategy_obj, policy, jit = _set_up_strategy(
            strategy, given_strategy, run.global_batch, seed, precision, jit_compile
        )
        data = {"data_dir": data_dir, "manual_dir": manual_dir,
                "image_size": run.image_size}  # fmt: skip
        steps = steps_per_epoch or _steps(run.data, run.global_batch, **data)
        train_data, test_data = _input_pipelines(
            strategy_obj, run.data, run.global_batch, seed, initial_epoch * steps, data
        )
        network = _build_network(
            run, strategy_obj, steps, jit, progressive_erase, model_kwargs
        )

        run.config.update(precision=policy, jit_compile=jit, steps_per_epoch=steps)
        extra = {"data": run.data.record, "model_source": run.model.record,
                 "strategy": describe_strategy(strategy_obj),
                 "versions": versions()}  # fmt: skip
        with _run_directory(out, strategy_obj) as run_dir:
            writer = HistoryWriter(
                os.path.join(run_dir, HISTORY_FILE),
                run.config,
                extra,
                previous,
                enabled=out is not None,
            )
            own = _own_callbacks(
                progressive_erase, activation_stats, gradient_stats, run.data, **data
            )
            # Every worker resumes from the chief's checkpoint (a shared `out`);
            # only the chief writes one.
            if initial_epoch:
                _resume(network, out, initial_epoch, run.recipe.epochs)
            with _fit_scope(strategy_obj):
                _fit(
                    network,
                    train_data,
                    test_data,
                    epochs=run.recipe.epochs,
                    steps=steps,
                    validation_steps=validation_steps,
                    callbacks=_fit_callbacks(run_dir, out, own, callbacks, writer),
                    initial_epoch=initial_epoch,
                    verbose=verbose,
                )
            content = writer.write(completed=True)
            _save_final_model(network, out, run_dir, strategy_obj)
    return TrainResult(
        network, content["epochs"], run.config, out, resumed=bool(previous)
    )


@dataclasses.dataclass
class _Run:
    """What `train` resolves from its arguments before it touches any file."""

    model: object
    data: object
    recipe: object
    placement: object
    global_batch: int
    config: dict
    input_shape: tuple
    image_size: tuple | None


def _resolve_run(
    model,
    data,
    erase,
    epochs,
    batch_size,
    recipe,
    seed,
    progressive_erase,
    **settings,
):
    """The model and data sources, recipe and placement of the run, and its
    configuration (the identity, then `settings` as given); raises for any
    unknown name before anything else runs."""
    recipe_obj = _recipe(model.name, recipe, epochs)
    placement = _placement(erase, progressive_erase)
    config = {
        **run_identity(model, data, erase, epochs, batch_size, recipe, seed),
        **settings,
        "progressive_erase": list(progressive_erase) if progressive_erase else None,
    }
    global_batch = batch_size or recipe_obj.batch_size
    fitted = fit_data_to_model(model, data)
    return _Run(model, fitted.data, recipe_obj, placement, global_batch, config,
                fitted.input_shape, fitted.image_size)  # fmt: skip


def _previous_run(out, config, restart, strategy):
    """Clears the run in `out` if `restart`; then the history of the run it
    holds, or None when there is none."""
    if restart and out is not None and is_chief(strategy):
        clear_run(out)
    return existing_run(out, config)


def _set_up_strategy(
    strategy, given_strategy, global_batch, seed, precision, jit_compile
):
    """The strategy (built unless given) after checking the batch splits over
    its replicas, with the seed set, the precision policy applied and XLA
    resolved: (strategy, policy name, jit_compile)."""
    strategy_obj = given_strategy or make_strategy(strategy)
    if strategy_obj.num_replicas_in_sync > 1:
        patch_multiworker_fit()  # also for uneven first batches over replicas
    per_replica_batch_size(global_batch, strategy_obj)
    keras.utils.set_random_seed(seed)
    policy = apply_precision(precision, strategy_obj)
    jit = resolve_jit_compile(jit_compile, strategy_obj)
    return strategy_obj, policy, jit


def _input_pipelines(strategy, dataset, global_batch, seed, skip_steps, data):
    """The training stream (repeated, `skip_steps` in for a resumed run) and
    the test set, one pipeline per worker. On JAX and PyTorch one tf.data
    pipeline of global batches: Keras splits them over a DataParallel mesh."""
    if isinstance(strategy, BackendStrategy):  # each process feeds its share
        train_data = load_dataset(
            dataset, "train", global_batch, seed=seed, repeat=True,
            skip_batches=skip_steps, **data,
        )  # fmt: skip
        test_data = load_dataset(dataset, "test", global_batch, **data)
        return strategy.feed(train_data), strategy.feed(test_data)
    train_data = distributed_dataset(
        strategy,
        dataset,
        "train",
        global_batch,
        seed=seed,
        repeat=True,
        skip_steps=skip_steps,  # resume where the run stopped
        **data,
    )
    test_data = distributed_dataset(strategy, dataset, "test", global_batch, **data)
    return train_data, test_data


def _build_network(run, strategy, steps, jit, progressive_erase, model_kwargs):
    """The model, erased as placed (or made erasable for progressive erasure),
    compiled with the recipe's optimizer, under the strategy's scope."""
    with strategy.scope():
        network = run.model.build(
            run.input_shape,
            run.data.spec.num_classes,
            erase=None if progressive_erase else run.placement,
            **(model_kwargs or {}),
        )
        if progressive_erase:
            network = make_erasable(network, **erase_arguments(run.placement))
        logits = not output_is_probability(network)
        network.compile(
            optimizer=run.recipe.optimizer(steps, run.global_batch),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=logits),
            metrics=["accuracy"],
            jit_compile=jit,
        )
    return network


def _resume(network, out, initial_epoch, epochs):
    """Restores model and optimizer from the checkpoint in `out`, and says so."""
    restore_checkpoint(network, out)
    print(
        f"resuming {out} at epoch {initial_epoch + 1} of "
        f"{epochs} ({initial_epoch} finished epochs kept)",
        flush=True,
    )


def _fit_callbacks(run_dir, out, own, callbacks, writer):
    """Every callback of the fit, in order: train's own, the user's, the
    history writer, TensorBoard (when writing), the checkpoint, the bar."""
    checkpoint = EpochCheckpoint(run_dir, enabled=out is not None)
    return [
        *own,
        *callbacks,
        writer,
        *(_tensorboard(run_dir) if out else []),
        checkpoint,
        *_progress_bar(callbacks),
    ]


def _fit(
    network,
    train_data,
    test_data,
    *,
    epochs,
    steps,
    validation_steps,
    callbacks,
    initial_epoch,
    verbose,
):
    """`network.fit`, from `initial_epoch`, without the spurious warning of
    distributed test sets."""
    with warnings.catch_warnings():
        # A distributed data set reports its per-replica batches as its
        # size, so Keras reads past the end of the (complete) test set
        # and warns at every validation. The training data repeats.
        warnings.filterwarnings("ignore", "Your input ran out of data")
        network.fit(
            train_data,
            epochs=epochs,
            steps_per_epoch=steps,
            validation_data=test_data,
            validation_steps=validation_steps,
            shuffle=False,  # the pipeline shuffles
            callbacks=callbacks,
            initial_epoch=initial_epoch,
            verbose=verbose,
        )


def _fit_scope(strategy):
    """Where `fit` runs: a JAX distribution or a pinned device must hold
    while Keras places the batches; tf.distribute needs no scope there."""
    if isinstance(strategy, BackendStrategy):
        return strategy.scope()
    return contextlib.nullcontext()


def _save_final_model(network, out, run_dir, strategy):
    """On the chief of a run that writes files: the trained model, saved
    atomically, replaces the checkpoint."""
    if out is not None and is_chief(strategy):
        atomic_save_model(network, os.path.join(run_dir, MODEL_FILE))
        clear_checkpoint(run_dir)


def _run_lock(out, strategy):
    """The run directory's lock on the chief; nothing to hold elsewhere."""
    if out is None or not is_chief(strategy):
        return contextlib.nullcontext()
    return RunLock(out, purpose="train")


def _placement(erase, progressive_erase):
    if progressive_erase is not None:
        start, end = progressive_erase  # ProgressiveErase checks the window
        ProgressiveErase(start, end)
        return "last" if erase in (None, "none") else erase
    if erase in (None, "none"):
        return None
    erase_arguments(erase)  # raises for a value the vocabulary lacks
    return erase


def run_identity(
    model, dataset, erase="none", epochs=None, batch_size=None, recipe=None, seed=0
):
    """The fields that define a run: a run directory holding other values
    for them belongs to another run.

    Args:
        model: a `ModelSource` or a registry name.
        dataset: a `DataSource` or a catalogue name.
        The others: as in `train`.

    Example:

    ```python
    run_identity("cifar_resnet20", "cifar10", "last")["recipe"]   # 'he_cifar'
    ```
    """
    model = model_source(model)
    recipe_obj = _recipe(model.name, recipe, epochs)
    data = fit_data_to_model(model, dataset_source(dataset)).data
    return {
        "model": model.identity,
        "dataset": data.identity,
        "erase": erase,
        "epochs": recipe_obj.epochs,
        "batch_size": batch_size or recipe_obj.batch_size,
        "recipe": recipe_obj.name,
        "seed": seed,
    }


def existing_run(out, identity):
    """The `history.json` content of the run in `out`, or None if there is none.

    Raises:
        ValueError: when `out` holds a run whose identity differs.
    """
    if out is None:
        return None
    previous = read_history(os.path.join(out, HISTORY_FILE))
    if previous is None:
        return None
    plain = json.loads(json.dumps({k: identity[k] for k in _IDENTITY}))
    check_same_run(
        out,
        previous.get("config", {}),
        plain,
        way_out="Choose another `out`, or delete that directory to start over.",
    )
    return previous


def _recipe(model_name, recipe, epochs):
    recipe_obj = get_recipe(recipe or default_recipe(model_name))
    return recipe_obj if epochs is None else recipe_obj.with_epochs(epochs)


def _finished(out, previous, config):
    print(
        f"{out}: this run is complete ({len(previous['epochs'])} epochs); not repeated."
    )
    path = os.path.join(out, MODEL_FILE)
    model = None
    if os.path.exists(path):
        try:
            model = keras.models.load_model(path)
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            reason = str(error).splitlines()[0] if str(error) else "unreadable"
            raise DamagedRunFileError(
                path, f"not a loadable Keras archive: {reason}"
            ) from None
    return TrainResult(model, previous["epochs"], previous["config"], out, resumed=True)


def _steps(data, global_batch, data_dir, manual_dir, image_size):
    if data.size("train"):
        return -(-data.size("train") // global_batch)
    local = load_dataset(
        data,
        "train",
        global_batch,
        augment=False,
        shuffle=False,
        data_dir=data_dir,
        manual_dir=manual_dir,
        image_size=image_size,
    )
    count = int(local.cardinality())
    if count <= 0:
        raise ValueError(
            f"The size of {data.identity!r} is unknown; pass steps_per_epoch= "
            "explicitly."
        )
    return count


def _tensorboard(run_dir):
    """Keras' TensorBoard callback, which writes through `tf.summary`: left
    out, with a warning, where TensorFlow cannot be imported."""
    if not tensorflow_available():
        warnings.warn(
            "No TensorBoard logs: Keras writes them with TensorFlow, which "
            "cannot be imported here; history.json records every epoch.",
            stacklevel=3,
        )
        return []
    return [keras.callbacks.TensorBoard(os.path.join(run_dir, TENSORBOARD_DIR))]


def _progress_bar(callbacks):
    """A bar that shows per-layer statistics as means, unless the user's
    callbacks bring their own (it comes last: it prints what they logged)."""
    if any(isinstance(c, keras.callbacks.ProgbarLogger) for c in callbacks):
        return []
    return [LayerStatsProgbar()]


def _own_callbacks(
    progressive_erase,
    activation_stats,
    gradient_stats,
    data,
    data_dir=None,
    manual_dir=None,
    image_size=None,
):
    own = []
    if progressive_erase:
        own.append(ProgressiveErase(*progressive_erase))
    if activation_stats:
        probe = load_dataset(
            data, "test", 256, data_dir=data_dir, manual_dir=manual_dir,
            image_size=image_size,
        )  # fmt: skip
        own.append(ActivationStats(probe))
    if gradient_stats:
        every = 10 if gradient_stats is True else int(gradient_stats)
        own.append(GradientStats(every=every))
    return own


def _run_directory(out, strategy):
    """`out` on the chief (a temporary directory elsewhere), or a temporary
    directory for the backup alone when the run writes no files."""
    if out is None:
        return tempfile.TemporaryDirectory(prefix="eraserelu-run-")
    return writable_dir(out, strategy)
