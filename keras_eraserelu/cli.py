"""The `eraserelu` command line.

Example:

```
eraserelu inspect ResNet50 --plot resnet50_plan.png
eraserelu inspect my_model.keras --where first --exclude "stage4_*"
eraserelu models "cifar_resnet*"
```
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv=None):
    """Entry point of the `eraserelu` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, IndexError, FileNotFoundError) as error:
        print(f"eraserelu {args.command}: error: {error}", file=sys.stderr)
        return 2


def _parser():
    parser = argparse.ArgumentParser(
        prog="eraserelu",
        description="EraseReLU for Keras 3: find, plan and erase the last ReLU of "
        "every module of a network.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    inspect = commands.add_parser(
        "inspect",
        help="print the erasure plan of a model as a table (dry run)",
        description="Print which activations erase_relu would erase, and why.",
    )
    inspect.add_argument(
        "model",
        help="a .keras file, a keras.applications name (ResNet50) or a registry "
        "name (cifar_resnet56)",
    )
    inspect.add_argument(
        "--input-shape",
        help="input shape for a keras.applications or registry model, e.g. 224,224,3",
    )
    _add_placement_arguments(inspect)
    inspect.add_argument("--plot", metavar="PATH", help="save the plan's picture here")
    inspect.add_argument("--json", metavar="PATH", help="write the plan as JSON here")
    inspect.set_defaults(run=_run_inspect)

    models = commands.add_parser(
        "models", help="list the registered models with their parameter counts"
    )
    models.add_argument("pattern", nargs="?", default="*", help="glob over names")
    models.add_argument(
        "--no-params", action="store_true", help="list names only (no model is built)"
    )
    models.set_defaults(run=_run_models)

    train = commands.add_parser(
        "train",
        help="train a registry model on a data set with a paper's recipe",
        description="Train one model; resumable: run the same command again "
        "after a crash and it continues from the last finished epoch.",
    )
    train.add_argument("--model", default="cifar_resnet20", help="registry name")
    train.add_argument("--dataset", default="cifar10")
    train.add_argument(
        "--erase", default="none", help="none, last, first, all, or an int k"
    )
    train.add_argument("--epochs", type=int, help="default: the recipe's")
    train.add_argument("--batch-size", type=int, help="global batch; default: recipe's")
    train.add_argument("--recipe", help="default: the model family's")
    train.add_argument("--strategy", default="auto")
    train.add_argument("--precision", default="auto")
    train.add_argument("--jit-compile", default="auto", choices=("auto", "on", "off"))
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", required=True, help="run directory")
    train.add_argument("--steps-per-epoch", type=int)
    train.add_argument("--data-dir")
    train.add_argument("--manual-dir", help="folder with the ImageNet tar files")
    train.add_argument(
        "--progressive-erase",
        metavar="START:END",
        help="anneal the erased ReLUs from ReLU to identity over these epochs",
    )
    train.add_argument("--activation-stats", action="store_true")
    train.add_argument("--gradient-stats", type=int, metavar="EVERY", default=0)
    train.add_argument("--verbose", default="auto")
    train.set_defaults(run=_run_train)

    tune = commands.add_parser(
        "tune",
        help="search where to erase with Keras Tuner (one machine or many)",
        description="Search erasure placements with Keras Tuner. Run again with "
        "the same arguments to resume. With KERASTUNER_TUNER_ID (chief, tuner0, "
        "...) and KERASTUNER_ORACLE_PORT set, the same command is the chief or a "
        "worker of one distributed search; the chief listens on "
        "KERASTUNER_ORACLE_IP, 127.0.0.1 (this machine only) unless set.",
    )
    tune.add_argument("--model", default="cifar_resnet20", help="registry name")
    tune.add_argument("--dataset", default="cifar10")
    tune.add_argument(
        "--space",
        default="per_module",
        help="per_module, ratio, position, stage, or position with one of the "
        "others, comma-separated (position,ratio)",
    )
    tune.add_argument(
        "--tuner", default="bayesian", help="bayesian, random, hyperband, grid"
    )
    tune.add_argument("--max-trials", type=int, default=10)
    tune.add_argument(
        "--epochs", help="epochs per trial (default: the recipe's); 1,2,4 tunes them"
    )
    tune.add_argument("--batch-size", help="global batch; 64,128 tunes it")
    tune.add_argument("--recipe", help="default: the model family's")
    tune.add_argument(
        "--where", default="last", help="position when the space has no 'position'"
    )
    tune.add_argument("--kinds", default="relu", help="comma-separated kinds or any")
    tune.add_argument("--objective", default="val_accuracy")
    tune.add_argument("--factor", type=int, default=3, help="Hyperband's factor")
    tune.add_argument("--steps-per-epoch", type=int)
    tune.add_argument("--validation-steps", type=int)
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--data-dir")
    tune.add_argument("--project", help="default: <model>_<space>_<tuner>")
    tune.add_argument("--overwrite", action="store_true", help="start over")
    tune.add_argument("--verbose", type=int, default=1)
    tune.add_argument("--out", required=True, help="search directory (shared)")
    tune.set_defaults(run=_run_tune)

    compare = commands.add_parser(
        "compare",
        help="train variants over seeds and compare them with intervals and tests",
        description="Train every model x erase variant once per seed, then print "
        "final and best test error with 95% confidence intervals, the difference "
        "from the baseline with Welch's t-test, epochs to a target accuracy and "
        "gradient-norm statistics; write results.json, results.csv and PNG plots "
        "to --out. Run the same command again to resume: finished runs are not "
        "repeated.",
    )
    compare.add_argument(
        "--models",
        help="comma-separated registry names, e.g. cifar_resnet20,cifar_resnet56",
    )
    compare.add_argument(
        "--erase",
        default="none,last",
        help="comma-separated placements: none, last, first, all, k",
    )
    compare.add_argument(
        "--depths",
        help="comma-separated CIFAR ResNet depths 6n+2 (20,56,110): cifar_resnet<d> "
        "models x --erase, the 'deeper benefits more' sweep",
    )
    compare.add_argument("--dataset", default="cifar10")
    compare.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    compare.add_argument("--out", required=True, help="experiment directory")
    compare.add_argument("--epochs", type=int, help="default: the recipe's")
    compare.add_argument(
        "--batch-size", type=int, help="global batch; default: recipe's"
    )
    compare.add_argument("--recipe", help="default: each model family's")
    compare.add_argument("--strategy", default="auto")
    compare.add_argument("--precision", default="auto")
    compare.add_argument(
        "--target-accuracy",
        type=float,
        help="default: the lowest mean final accuracy of a variant",
    )
    compare.add_argument("--steps-per-epoch", type=int)
    compare.add_argument(
        "--gradient-stats",
        type=int,
        metavar="EVERY",
        default=10,
        help="record gradient norms every N steps (0: off)",
    )
    compare.add_argument("--data-dir")
    compare.add_argument("--manual-dir", help="folder with the ImageNet tar files")
    compare.add_argument(
        "--verbose", type=int, default=0, help="Keras progress per run"
    )
    compare.set_defaults(run=_run_compare)

    demo = commands.add_parser(
        "demo",
        help="offline demo: a deep ResNet with and without EraseReLU on digits",
        description="Compare a deep CIFAR ResNet with and without EraseReLU over "
        "several seeds on scikit-learn's 8x8 digits (offline, a few minutes on "
        "2 CPU cores): a table with confidence intervals and Welch's t-test, "
        "and plots.",
    )
    demo.add_argument("--out", default="eraserelu-demo", help="experiment directory")
    demo.add_argument("--seeds", type=int, help="default: the demo's")
    demo.add_argument("--epochs", type=int, help="default: the demo's")
    demo.set_defaults(run=_run_demo)
    return parser


def _add_placement_arguments(parser):
    parser.add_argument(
        "--where", default=None, help="last (default), first, all, or an int k"
    )
    parser.add_argument("--select", action="append", help="name, glob or re:regex")
    parser.add_argument("--exclude", action="append", help="name, glob or re:regex")
    parser.add_argument(
        "--kinds", default="relu", help="comma-separated kinds (relu,relu6,...) or any"
    )
    parser.add_argument("--modules", action="append", help="module index or name")
    parser.add_argument("--ratio", type=float, default=1.0)
    parser.add_argument("--ratio-from", default="start", choices=("start", "end"))


def placement_from_args(args):
    """The `plan_erasure` keyword arguments given on the command line."""
    where = args.where
    if where is not None and where.lstrip("-").isdigit():
        where = int(where)
    modules = args.modules
    if modules:
        modules = [int(m) if m.lstrip("-").isdigit() else m for m in modules]
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


def _run_inspect(args):
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


def _run_models(args):
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
        count = sum(int(_size(v.shape)) for v in model.trainable_weights)
        print(f"{name.ljust(width)}  {count:>13,d} trainable params", flush=True)
    return 0


def _run_train(args):
    from keras_eraserelu.training import train

    erase = int(args.erase) if args.erase.lstrip("-").isdigit() else args.erase
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


def _run_tune(args):
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
        where=int(where) if where.lstrip("-").isdigit() else where,
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


def _run_compare(args):
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


def _run_demo(args):
    from keras_eraserelu.demo import demo

    options = {"seeds": args.seeds, "epochs": args.epochs}
    demo(args.out, **{k: v for k, v in options.items() if v is not None})
    return 0


def _placement(text):
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


def _size(shape):
    total = 1
    for dim in shape:
        total *= int(dim)
    return total


if __name__ == "__main__":
    sys.exit(main())
