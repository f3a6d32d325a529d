"""What each `eraserelu` command does, once `eraserelu.cli` has parsed it.

Each `run_<command>(args)` takes the `argparse.Namespace` of
`eraserelu.cli.build_parser()`, whose values are already checked and
converted (ints, tuples, placements), and returns the exit status. The
command line imports this module only after parsing succeeded, so that
`eraserelu --help` imports no Keras.

Example:

```python
from eraserelu.cli import build_parser
args = build_parser().parse_args(["inspect", "cifar_resnet20", "--where", "1"])
run_inspect(args)   # prints the plan of cifar_resnet20, returns 0
```
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import zipfile

from eraserelu import arguments


def placement_from_args(args):
    """The `plan_erasure` keyword arguments given on the command line."""
    return {
        "where": args.where,
        "select": args.select,
        "exclude": args.exclude,
        "kinds": args.kinds,
        "modules": args.modules,
        "ratio": args.ratio,
        "ratio_from": args.ratio_from,
    }


def load_model_by_name(name, input_shape=None):
    """A model from a `.keras` file, a keras.applications name, the registry
    or a KerasHub preset (`hub:PRESET_OR_DIR`)."""
    import keras

    from keras_eraserelu.core import did_you_mean
    from keras_eraserelu.models import create_model, get_builder, list_models

    if name.startswith("hub:"):
        return create_model(name, input_shape=input_shape)
    if name.endswith(".keras") or os.path.sep in name:
        if not os.path.exists(name):
            raise FileNotFoundError(f"Model file not found: {name!r}.")
        if name.endswith(".keras"):
            check_keras_archive(name)
        return keras.models.load_model(name)
    kwargs = {} if input_shape is None else {"input_shape": input_shape}
    applications = [n for n in dir(keras.applications) if n[:1].isupper()]
    if name in applications:
        return getattr(keras.applications, name)(weights=None, **kwargs)
    if name in list_models():
        return get_builder(name)(**kwargs)
    raise ValueError(
        f"Unknown model {name!r}: expected a .keras file, a keras.applications "
        "name (such as 'ResNet50') or a registry name (see `eraserelu models`)."
        + did_you_mean(name, applications + list_models())
    )


def check_keras_archive(path):
    """Raises a ValueError unless `path` is a Keras v3 archive (a zip file
    holding `config.json`), before Keras is asked to open it."""
    if os.path.isdir(path):
        raise ValueError(
            f"{path!r} is a folder, not a Keras archive (.keras zip file)."
        )
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if "config.json" in archive.namelist():
                return
    size = os.path.getsize(path)
    raise ValueError(
        f"{path!r} is not a Keras archive (.keras zip) holding config.json: "
        f"{'it is empty' if size == 0 else f'{size:,d} bytes of something else'}. "
        "Save models with `model.save('name.keras')`."
    )


def check_dataset_args(args):
    """Imports `--dataset-module` (its `register_dataset` calls), then checks
    `--dataset` against every name known; raises a ValueError naming it."""
    registered = arguments.registered_dataset_names()
    if args.dataset_module:
        import importlib

        try:
            importlib.import_module(args.dataset_module)
        except ImportError as error:
            raise ValueError(
                f"argument --dataset-module: cannot import {args.dataset_module!r}: "
                f"{error}. Expected an importable module (on PYTHONPATH) that calls "
                "keras_eraserelu.data.register_dataset."
            ) from None
        from keras_eraserelu.data import registered_names

        registered = sorted(set(registered) | set(registered_names()))
    try:
        arguments.check_dataset(args.dataset, registered)
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"argument --dataset: {error}") from None


def dataset_from_args(args):
    """`--dataset` with the options of a user's data: the name or path as
    given, or a `DataSource` when `--image-size` or `--validation-split` is."""
    if args.image_size is None and args.validation_split is None:
        return args.dataset
    from keras_eraserelu.data import dataset_source

    options = {"image_size": args.image_size, "data_dir": args.data_dir}
    if args.validation_split is not None:
        options["validation_split"] = args.validation_split
    return dataset_source(args.dataset, **options)


# The process flags (by argparse dest) and the variables of Keras they set,
# which keras.distribution.initialize reads.
_KERAS = "KERAS_DISTRIBUTION_"
PROCESS_FLAGS = {
    "coordinator_address": ("--coordinator-address", f"{_KERAS}JOB_ADDRESSES"),
    "num_processes": ("--num-processes", f"{_KERAS}NUM_PROCESSES"),
    "process_id": ("--process-id", f"{_KERAS}PROCESS_ID"),
}


def set_process_environment(args, environ=None):
    """Sets Keras' KERAS_DISTRIBUTION_* variables from --coordinator-address,
    --num-processes and --process-id, after checking them together.

    Returns:
        dict. The variables set (empty when no flag is given).

    Raises:
        ValueError: naming the flags, when some are missing, the id is out
            of range, or the Keras backend is not JAX.

    Example:

    ```python
    args = build_parser().parse_args(["train", "--out", "run",
        "--coordinator-address", "h0:1234", "--num-processes", "2",
        "--process-id", "1"])
    set_process_environment(args)["KERAS_DISTRIBUTION_PROCESS_ID"]  # '1'
    ```
    """
    environ = os.environ if environ is None else environ
    given = {dest: getattr(args, dest, None) for dest in PROCESS_FLAGS}
    if all(value is None for value in given.values()):
        return {}
    count, process_id = given["num_processes"] or 1, given["process_id"] or 0
    missing = [PROCESS_FLAGS[dest][0] for dest, value in given.items() if value is None]
    if count > 1 and missing:
        raise ValueError(
            "--coordinator-address, --num-processes and --process-id go together "
            f"for several processes; missing: {', '.join(missing)}. Expected e.g. "
            "--coordinator-address 10.0.0.1:1234 --num-processes 2 --process-id 0."
        )
    if process_id >= count:
        raise ValueError(
            f"argument --process-id: expected an int from 0 to {count - 1} "
            f"(--num-processes {count}). Received: {process_id}."
        )
    if count > 1:
        _check_jax_backend()
    variables = {PROCESS_FLAGS[dest][1]: str(value) for dest, value in given.items()
                 if value is not None}  # fmt: skip
    environ.update(variables)
    return variables


def _check_jax_backend():
    import keras

    backend = keras.backend.backend()
    if backend != "jax":
        raise ValueError(
            "--coordinator-address, --num-processes and --process-id start several "
            f"JAX processes, but the Keras backend is {backend}. Set "
            "KERAS_BACKEND=jax, or on tensorflow describe the workers with TF_CONFIG "
            "and --strategy multiworker."
        )


def run_inspect(args):
    from keras_eraserelu.core import plan_erasure

    model = load_model_by_name(args.model, args.input_shape)
    plan = plan_erasure(model, **placement_from_args(args))
    print(plan)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(plan.to_dict(), handle, indent=2)
        print(f"plan written to {args.json}")
    if args.plot:
        plan.plot(args.plot)
        print(f"picture saved to {args.plot}")
    return 0


def run_models(args):
    from keras_eraserelu.models import create_model, list_models

    names = list_models(args.pattern)
    if not names:
        raise ValueError(f"No registered model matches {args.pattern!r}.")
    width = max(len(name) for name in names)
    for name in names:
        if args.no_params:
            print(name)
            continue
        model = create_model(name)
        count = sum(math.prod(v.shape) for v in model.trainable_weights)
        print(f"{name.ljust(width)}  {count:>13,d} trainable params", flush=True)
    return 0


def run_train(args):
    set_process_environment(args)
    from keras_eraserelu.training import is_chief, train

    jit = {"auto": "auto", "on": True, "off": False}[args.jit_compile]
    result = train(
        args.model,
        dataset_from_args(args),
        erase=args.erase,
        epochs=args.epochs,
        batch_size=args.batch_size,
        recipe=args.recipe,
        strategy=args.strategy,
        precision=args.precision,
        jit_compile=jit,
        seed=args.seed,
        out=args.out,
        restart=args.restart,
        steps_per_epoch=args.steps_per_epoch,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        progressive_erase=args.progressive_erase,
        activation_stats=args.activation_stats,
        gradient_stats=args.gradient_stats or False,
        verbose=args.verbose,
        reinitialize=False if args.keep_weights else None,
    )
    final = result.final
    files = f"files in {args.out}" if is_chief() else "the chief writes the files"
    print(
        f"done: {len(result.history)} epochs, val_accuracy "
        f"{final.get('val_accuracy', float('nan')):.4f}; {files}"
    )
    return 0


def run_tune(args):
    from keras_eraserelu.training import atomic_save_model
    from keras_eraserelu.tuning import tune_placements

    result = tune_placements(
        args.model,
        dataset_from_args(args),
        space=args.space,
        tuner=args.tuner,
        max_trials=args.max_trials,
        objective=args.objective,
        directory=args.out,
        project_name=args.project,
        overwrite=args.overwrite,
        seed=args.seed,
        factor=args.factor,
        verbose=args.verbose,
        epochs=args.epochs,
        batch_size=args.batch_size,
        recipe=args.recipe,
        where=args.where,
        kinds=args.kinds,
        steps_per_epoch=args.steps_per_epoch,
        validation_steps=args.validation_steps,
        data_dir=args.data_dir,
        reinitialize=False if args.keep_weights else None,
    )
    if result.role == "worker":
        print(f"worker done; the chief writes the results in {result.project_dir}")
        return 0
    print(result)
    paths = {
        name: os.path.join(result.project_dir, name)
        for name in ("results.csv", "results.json", "results.png", "best_model.keras")
    }
    result.to_csv(paths["results.csv"])
    result.to_json(paths["results.json"])
    result.plot(paths["results.png"])
    if result.best_model is not None:
        atomic_save_model(result.best_model, paths["best_model.keras"])
    print("written: " + ", ".join(p for p in paths.values() if os.path.exists(p)))
    for row in result.failed:
        print(
            f"trial {row['trial']} {row['status']}: {row['message']}", file=sys.stderr
        )
    return 1 if result.failed else 0


def run_compare(args):
    set_process_environment(args)
    from keras_eraserelu.experiments import compare, depth_variants

    erase = args.erase
    variants = [
        (model, placement) for model in args.models or () for placement in erase
    ]
    if args.depths:
        variants += depth_variants(args.depths, erase)
    if not variants:
        raise ValueError(
            "Nothing to compare: give --models (with --erase) or --depths. "
            "Received neither."
        )
    compare(
        variants,
        dataset_from_args(args),
        args.seeds,
        args.recipe,
        out=args.out,
        restart=args.restart,
        epochs=args.epochs,
        batch_size=args.batch_size,
        strategy=args.strategy,
        precision=args.precision,
        steps_per_epoch=args.steps_per_epoch,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        target_accuracy=args.target_accuracy,
        gradient_stats=args.gradient_stats or False,
        verbose=args.verbose,
        reinitialize=False if args.keep_weights else None,
    )
    return 0


def run_export(args):
    from keras_eraserelu.models import export_plain
    from keras_eraserelu.training import atomic_save_model

    model = load_model_by_name(args.model, args.input_shape)
    plain = export_plain(model)
    report = getattr(plain, "export_report", None)
    if report is not None:
        print(report)
    atomic_save_model(plain, args.out)
    print(
        f"standard Keras model ({plain.count_params():,d} params) written to {args.out}"
    )
    return 0


def run_fold(args):
    from keras_eraserelu.folding import fold_linear
    from keras_eraserelu.training import atomic_save_model

    model = load_model_by_name(args.model, args.input_shape)
    folded, report = fold_linear(
        model,
        batch_norm=not args.no_batch_norm,
        chains=False if args.chains == "none" else args.chains,
        residuals=args.residuals,
    )
    print(report)
    atomic_save_model(folded, args.out)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report.to_dict(), handle, indent=2)
        print(f"report written to {args.json}")
    print(f"folded model ({folded.count_params():,d} params) written to {args.out}")
    return 0


def run_demo(args):
    from keras_eraserelu.experiments import demo

    options = {"seeds": args.seeds, "epochs": args.epochs}
    demo(args.out, **{k: v for k, v in options.items() if v is not None})
    return 0
