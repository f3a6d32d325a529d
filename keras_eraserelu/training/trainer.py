"""`train`: one model, one data set, one recipe, at any scale, resumable.

The same function behind `eraserelu train`: it builds the strategy, the
precision policy, the input pipelines (one per worker), the model (erased as
asked, or made erasable for progressive erasure) and the recipe's optimizer,
then runs `model.fit` with a progress bar, TensorBoard logs, an atomic
`history.json` per epoch and a crash-safe checkpoint of model and optimizer
(`run_record.EpochCheckpoint`). Started again with the same output directory
after a crash, it resumes from the last finished epoch; a run already
complete is not repeated.

Files in `out`: `model.keras`, `history.json` (configuration, replicas,
versions, one record per epoch), `tensorboard/`. In a multi-worker run only
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
import tensorflow as tf

from keras_eraserelu.core import erase_arguments, make_erasable
from keras_eraserelu.data import dataset_spec, distributed_dataset, load_dataset
from keras_eraserelu.models import get_builder
from keras_eraserelu.training.callbacks import (
    ActivationStats,
    GradientStats,
    ProgressiveErase,
)
from keras_eraserelu.training.cluster import is_chief, writable_dir
from keras_eraserelu.training.compat import patch_multiworker_fit
from keras_eraserelu.training.paper_recipes import get_recipe, recipe_for_model
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
):
    """Trains a registry model (or a builder) on a data set with a recipe.

    Args:
        model: str or callable. A registry name, or a builder called as
            `builder(input_shape=..., classes=...)` returning a keras.Model.
        dataset: str. A name of `keras_eraserelu.data.pipelines.DATASETS`.
        erase: str, int or list. Placement to erase before training: "none",
            "last", "first", "all", an int k, or site names.
        epochs: int or None. Defaults to the recipe's; milestones keep their
            fractions.
        batch_size: int or None. The global batch. Defaults to the recipe's;
            the learning rate scales linearly with it.
        recipe: str or None. A name of `list_recipes()`. Defaults to the
            model family's (`recipe_for_model`).
        strategy: str or tf.distribute.Strategy. See `make_strategy`.
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

    Returns:
        A `TrainResult`.

    Raises:
        ValueError: before any data is loaded or model built, for an `out`
            that is a file, not writable or on a full disk, holds another
            run, is in use by another process (`RunLockedError`) or holds a
            damaged file (`DamagedRunFileError`, naming it).
    """
    spec = dataset_spec(dataset)
    model_name = (
        model if isinstance(model, str) else getattr(model, "__name__", "custom")
    )
    builder = get_builder(model) if isinstance(model, str) else _check_builder(model)
    recipe_obj = _recipe(model_name, recipe, epochs)
    placement = _placement(erase, progressive_erase)
    global_batch = batch_size or recipe_obj.batch_size
    config = {
        **run_identity(model_name, dataset, erase, epochs, batch_size, recipe, seed),
        "precision": precision,
        "jit_compile": jit_compile,
        "steps_per_epoch": steps_per_epoch,
        "progressive_erase": list(progressive_erase) if progressive_erase else None,
    }
    given_strategy = None if isinstance(strategy, str) else strategy
    if out is not None and is_chief(given_strategy):  # the only one writing
        check_output_dir(out)
    with _run_lock(out, given_strategy):
        if restart and out is not None and is_chief(given_strategy):
            clear_run(out)
        previous = existing_run(out, config)
        if previous and previous.get("completed"):
            return _finished(out, previous, config)
        initial_epoch = checkpoint_epoch(out) if out else 0

        strategy_obj = given_strategy or make_strategy(strategy)
        if isinstance(strategy_obj, tf.distribute.MultiWorkerMirroredStrategy):
            patch_multiworker_fit()  # a strategy built by the caller
        per_replica_batch_size(global_batch, strategy_obj)
        keras.utils.set_random_seed(seed)
        policy = apply_precision(precision, strategy_obj)
        jit = resolve_jit_compile(jit_compile, strategy_obj)

        data = {"data_dir": data_dir, "manual_dir": manual_dir}
        steps = steps_per_epoch or _steps(dataset, global_batch, **data)
        train_data = distributed_dataset(
            strategy_obj,
            dataset,
            "train",
            global_batch,
            seed=seed,
            repeat=True,
            skip_steps=initial_epoch * steps,  # resume where the run stopped
            **data,
        )
        test_data = distributed_dataset(
            strategy_obj, dataset, "test", global_batch, **data
        )

        with strategy_obj.scope():
            network = builder(
                input_shape=spec.image_shape,
                classes=spec.num_classes,
                erase=None if progressive_erase else placement,
                **(model_kwargs or {}),
            )
            if progressive_erase:
                network = make_erasable(network, **erase_arguments(placement))
            network.compile(
                optimizer=recipe_obj.optimizer(steps, global_batch),
                loss=keras.losses.SparseCategoricalCrossentropy(),
                metrics=["accuracy"],
                jit_compile=jit,
            )

        config.update(precision=policy, jit_compile=jit, steps_per_epoch=steps)
        extra = {"strategy": describe_strategy(strategy_obj), "versions": versions()}
        with _run_directory(out, strategy_obj) as run_dir:
            writer = HistoryWriter(
                os.path.join(run_dir, HISTORY_FILE),
                config,
                extra,
                previous,
                enabled=out is not None,
            )
            own = _own_callbacks(
                progressive_erase, activation_stats, gradient_stats, dataset, **data
            )
            # Every worker resumes from the chief's checkpoint (a shared `out`);
            # only the chief writes one.
            if initial_epoch:
                restore_checkpoint(network, out)
                print(
                    f"resuming {out} at epoch {initial_epoch + 1} of "
                    f"{recipe_obj.epochs} ({initial_epoch} finished epochs kept)",
                    flush=True,
                )
            checkpoint = EpochCheckpoint(run_dir, enabled=out is not None)
            board = [
                keras.callbacks.TensorBoard(os.path.join(run_dir, TENSORBOARD_DIR))
            ]
            with warnings.catch_warnings():
                # A distributed data set reports its per-replica batches as its
                # size, so Keras reads past the end of the (complete) test set
                # and warns at every validation. The training data repeats.
                warnings.filterwarnings("ignore", "Your input ran out of data")
                network.fit(
                    train_data,
                    epochs=recipe_obj.epochs,
                    steps_per_epoch=steps,
                    validation_data=test_data,
                    validation_steps=validation_steps,
                    shuffle=False,  # the pipeline shuffles
                    callbacks=[
                        *own,
                        *callbacks,
                        writer,
                        *(board if out else []),
                        checkpoint,
                        *_progress_bar(callbacks),
                    ],
                    initial_epoch=initial_epoch,
                    verbose=verbose,
                )
            content = writer.write(completed=True)
            if out is not None and is_chief(strategy_obj):
                atomic_save_model(network, os.path.join(run_dir, MODEL_FILE))
                clear_checkpoint(run_dir)
    return TrainResult(network, content["epochs"], config, out, resumed=bool(previous))


def _run_lock(out, strategy):
    """The run directory's lock on the chief; nothing to hold elsewhere."""
    if out is None or not is_chief(strategy):
        return contextlib.nullcontext()
    return RunLock(out, purpose="train")


def _check_builder(model):
    if not callable(model):
        raise TypeError(
            "`model` must be a registry name (see `list_models()`) or a builder "
            f"callable(input_shape=..., classes=...). Received: {model!r}."
        )
    return model


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
    model_name, dataset, erase="none", epochs=None, batch_size=None, recipe=None, seed=0
):
    """The fields that define a run: a run directory holding other values
    for them belongs to another run.

    Example:

    ```python
    run_identity("cifar_resnet20", "cifar10", "last")["recipe"]   # 'he_cifar'
    ```
    """
    recipe_obj = _recipe(model_name, recipe, epochs)
    return {
        "model": model_name,
        "dataset": dataset,
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
    stored = previous.get("config", {})
    plain = json.loads(json.dumps({k: identity[k] for k in _IDENTITY}))
    different = [k for k in _IDENTITY if stored.get(k) != plain[k]]
    if different:
        theirs = ", ".join(f"{k}={stored.get(k)!r}" for k in different)
        ours = ", ".join(f"{k}={plain[k]!r}" for k in different)
        raise ValueError(
            f"The run directory {out!r} holds another run ({theirs}); this one "
            f"has {ours}. Choose another `out`, or delete that directory to "
            "start over."
        )
    return previous


def _recipe(model_name, recipe, epochs):
    recipe_obj = get_recipe(recipe or recipe_for_model(model_name))
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


def _steps(dataset, global_batch, data_dir, manual_dir):
    local = load_dataset(
        dataset,
        "train",
        global_batch,
        augment=False,
        shuffle=False,
        data_dir=data_dir,
        manual_dir=manual_dir,
    )
    count = int(local.cardinality())
    if count <= 0:
        raise ValueError(
            f"The size of {dataset!r} is unknown; pass steps_per_epoch= explicitly."
        )
    return count


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
    dataset,
    data_dir=None,
    manual_dir=None,
):
    own = []
    if progressive_erase:
        own.append(ProgressiveErase(*progressive_erase))
    if activation_stats:
        probe = load_dataset(
            dataset, "test", 256, data_dir=data_dir, manual_dir=manual_dir
        )
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
