"""What each `eraserelu` command does, once `keras_eraserelu.cli` has parsed it.

Each `run_<command>(args)` takes the parsed `argparse.Namespace` and returns
the exit status; heavy modules are imported inside, so `eraserelu --help`
stays fast.

Example:

```python
args = argparse.Namespace(model="cifar_resnet20", input_shape=None, where=None,
                          select=None, exclude=None, kinds="relu", modules=None,
                          ratio=1.0, ratio_from="start", json=None, plot=None)
run_inspect(args)   # prints the plan of cifar_resnet20, returns 0
```
"""

from __future__ import annotations

import json
import math
import os
import sys


def placement_from_args(args):
    """The `plan_erasure` keyword arguments given on the command line."""
    where = None if args.where is None else _placement(args.where)
    modules = [_placement(m) for m in args.modules] if args.modules else args.modules
    return {
        "where": where,
        "select": args.select,
        "exclude": args.exclude,
        "kinds": tuple(k.strip() for k in args.kinds.split(",") if k.strip()),
        "modules": modules,
        "ratio": args.ratio,
        "ratio_from": args.ratio_from,
    }


def load_model_by_name(name, input_shape=None):
    """A model from a `.keras` file, a keras.applications name or the registry."""
    import keras

    from keras_eraserelu.models.registry import get_builder, list_models
    from keras_eraserelu.validation import did_you_mean

    if name.endswith(".keras") or os.path.sep in name:
        if not os.path.exists(name):
            raise FileNotFoundError(f"Model file not found: {name!r}.")
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


def _parse_shape(text):
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(
            f"--input-shape must be comma-separated ints like 224,224,3. "
            f"Received: {text!r}."
        ) from None


def run_inspect(args):
    from keras_eraserelu.plan import plan_erasure

    model = load_model_by_name(args.model, _parse_shape(args.input_shape))
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
    from keras_eraserelu.models.registry import create_model, list_models

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
    from keras_eraserelu.training import train

    erase = _placement(args.erase)
    jit = {"auto": "auto", "on": True, "off": False}[args.jit_compile]
    verbose = int(args.verbose) if args.verbose.isdigit() else args.verbose
    result = train(
        args.model,
        args.dataset,
        erase=erase,
        epochs=args.epochs,
        batch_size=args.batch_size,
        recipe=args.recipe,
        strategy=args.strategy,
        precision=args.precision,
        jit_compile=jit,
        seed=args.seed,
        out=args.out,
        steps_per_epoch=args.steps_per_epoch,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        progressive_erase=_window(args.progressive_erase),
        activation_stats=args.activation_stats,
        gradient_stats=args.gradient_stats or False,
        verbose=verbose,
    )
    final = result.final
    print(
        f"done: {len(result.history)} epochs, val_accuracy "
        f"{final.get('val_accuracy', float('nan')):.4f}; files in {args.out}"
    )
    return 0


def run_tune(args):
    from keras_eraserelu.tuning_search import tune_placements

    where = args.where
    result = tune_placements(
        args.model,
        args.dataset,
        space=tuple(part.strip() for part in args.space.split(",")),
        tuner=args.tuner,
        max_trials=args.max_trials,
        objective=args.objective,
        directory=args.out,
        project_name=args.project,
        overwrite=args.overwrite,
        seed=args.seed,
        factor=args.factor,
        verbose=args.verbose,
        epochs=_int_list("--epochs", args.epochs),
        batch_size=_int_list("--batch-size", args.batch_size),
        recipe=args.recipe,
        where=_placement(where),
        kinds=tuple(k.strip() for k in args.kinds.split(",") if k.strip()),
        steps_per_epoch=args.steps_per_epoch,
        validation_steps=args.validation_steps,
        data_dir=args.data_dir,
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
        result.best_model.save(paths["best_model.keras"])
    print("written: " + ", ".join(p for p in paths.values() if os.path.exists(p)))
    for row in result.failed:
        print(
            f"trial {row['trial']} {row['status']}: {row['message']}", file=sys.stderr
        )
    return 1 if result.failed else 0


def _int_list(flag, text):
    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(
            f"{flag} must be an int or comma-separated ints like 1,2,4. "
            f"Received: {text!r}."
        ) from None
    return values[0] if len(values) == 1 else values


def run_compare(args):
    from keras_eraserelu.experiments import compare
    from keras_eraserelu.variants import depth_variants

    erase = [_placement(part) for part in args.erase.split(",") if part.strip()]
    models = [m.strip() for m in (args.models or "").split(",") if m.strip()]
    variants = [(model, placement) for model in models for placement in erase]
    if args.depths:
        try:
            depths = [int(part) for part in args.depths.split(",")]
        except ValueError:
            raise ValueError(
                "--depths must be comma-separated ints like 20,56,110. "
                f"Received: {args.depths!r}."
            ) from None
        variants += depth_variants(depths, erase)
    if not variants:
        raise ValueError(
            "Nothing to compare: give --models (with --erase) or --depths. "
            "Received neither."
        )
    compare(
        variants,
        args.dataset,
        args.seeds,
        args.recipe,
        out=args.out,
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
    )
    return 0


def run_demo(args):
    from keras_eraserelu.demo import demo

    options = {"seeds": args.seeds, "epochs": args.epochs}
    demo(args.out, **{k: v for k, v in options.items() if v is not None})
    return 0


def _placement(text):
    """A placement word ('last', a module name) or, if it is one, an int."""
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _window(text):
    if text is None:
        return None
    try:
        start, end = (int(part) for part in text.split(":"))
    except ValueError:
        raise ValueError(
            "--progressive-erase must be START:END epochs like 2:8. "
            f"Received: {text!r}."
        ) from None
    return start, end
