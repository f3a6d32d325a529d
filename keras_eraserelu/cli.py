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
