"""The `eraserelu` command line.

Example:

```
eraserelu inspect ResNet50 --plot resnet50_plan.png
eraserelu inspect my_model.keras --where first --exclude "stage4_*"
eraserelu models "cifar_resnet*"
```

This module parses; what each command does is in `keras_eraserelu.cli_commands`.
"""

from __future__ import annotations

import argparse
import os
import sys

from keras_eraserelu import cli_commands


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
    inspect.set_defaults(run=cli_commands.run_inspect)

    models = commands.add_parser(
        "models", help="list the registered models with their parameter counts"
    )
    models.add_argument("pattern", nargs="?", default="*", help="glob over names")
    models.add_argument(
        "--no-params", action="store_true", help="list names only (no model is built)"
    )
    models.set_defaults(run=cli_commands.run_models)

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
    train.set_defaults(run=cli_commands.run_train)

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
    tune.set_defaults(run=cli_commands.run_tune)

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
    compare.set_defaults(run=cli_commands.run_compare)

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
    demo.set_defaults(run=cli_commands.run_demo)
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


if __name__ == "__main__":
    sys.exit(main())
