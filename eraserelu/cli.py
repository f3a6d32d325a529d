"""The `eraserelu` command line: the parser and `main`.

Every value is checked as it is parsed (`eraserelu.arguments`); a bad one
stops at once with `eraserelu CMD: error: argument --FLAG: ...` and exit
status 2, before TensorFlow or Keras is imported. Only then does `main`
import the command's runner from `eraserelu.commands`.

Example:

```
eraserelu inspect ResNet50 --plot resnet50_plan.png
eraserelu inspect my_model.keras --where first --exclude "stage4_*"
eraserelu export my_model.keras my_model_plain.keras
eraserelu fold my_model.keras --out my_model_folded.keras --residuals
eraserelu models "cifar_resnet*"
```
"""

from __future__ import annotations

import argparse
import os
import sys

from eraserelu import arguments as a
from eraserelu import names
from eraserelu import options as o
from eraserelu.quiet import hide_tensorflow_noise

# What a user's mistake raises inside a command: exit status 2, no traceback.
USER_ERRORS = (
    ValueError,
    TypeError,
    IndexError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def main(argv=None):
    """Runs the `eraserelu` command line and returns its exit status.

    Args:
        argv: list of str or None. The arguments; defaults to `sys.argv[1:]`.

    Returns:
        0 on success, 1 when a tuning trial failed, 2 for a usage error (a
        bad value, an unreadable model, an unwritable path, data that need
        a TensorFlow that cannot be imported).

    Example:

    ```python
    main(["models", "cifar_resnet2*", "--no-params"])   # prints names, 0
    ```
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a bad argument (2)
        return stop.code
    # Hide TensorFlow's C++ INFO and WARNING lines; its errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from eraserelu import commands as cli_commands

    try:
        if getattr(args, "dataset", None) is not None:
            cli_commands.check_dataset_args(args)
        return getattr(cli_commands, args.runner)(args)
    except USER_ERRORS as error:
        print(f"eraserelu {args.command}: error: {error}", file=sys.stderr)
        return 2
    except ImportError as error:  # e.g. cifar10 where TensorFlow is missing
        if error.name != "tensorflow":
            raise
        print(f"eraserelu {args.command}: error: {error}", file=sys.stderr)
        return 2


def run():
    """The `eraserelu` program (console script, `python -m eraserelu`):
    `main` with TensorFlow's start-up log lines hidden (`eraserelu.quiet`),
    unless the user set TF_CPP_MIN_LOG_LEVEL."""
    hide_tensorflow_noise()
    return main()


def build_parser():
    """The `argparse.ArgumentParser` of `eraserelu` (imports no Keras)."""
    parser = argparse.ArgumentParser(
        prog="eraserelu",
        description="EraseReLU for Keras 3: find, plan and erase the last ReLU of "
        "every module of a network.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_inspect(commands)
    _add_export(commands)
    _add_fold(commands)
    _add_models(commands)
    _add_train(commands)
    _add_tune(commands)
    _add_compare(commands)
    _add_demo(commands)
    return parser


def _add_inspect(commands):
    inspect = commands.add_parser(
        "inspect",
        help="print the erasure plan of a model as a table (dry run)",
        description="Print which activations erase_relu would erase, and why.",
    )
    inspect.add_argument("model", metavar="MODEL", help=o.MODEL_HELP)
    o.add_input_shape(inspect)
    o.add_placement_arguments(inspect)
    inspect.add_argument(
        "--plot", metavar="PATH", type=a.writable_file(), help="save the plan's picture"
    )
    inspect.add_argument(
        "--json", metavar="PATH", type=a.writable_file(), help="write the plan as JSON"
    )
    inspect.set_defaults(runner="run_inspect")


def _add_export(commands):
    export = commands.add_parser(
        "export",
        help="save a model with standard Keras layers only (same outputs)",
        description="Load MODEL and save it as OUT with standard Keras layers "
        "only (export_plain): the saved model reopens without keras_eraserelu.",
    )
    export.add_argument("model", metavar="MODEL", help=o.MODEL_HELP)
    export.add_argument(
        "out", metavar="OUT", type=a.writable_file(".keras"), help="the .keras to write"
    )
    o.add_input_shape(export)
    export.set_defaults(runner="run_export")


def _add_fold(commands):
    fold = commands.add_parser(
        "fold",
        help="fold batch norms, linear chains and residuals into fewer layers",
        description="Load MODEL and fold what is linear in it (fold_linear): "
        "Identity layers removed, batch norms folded into a neighbouring "
        "convolution or Dense layer, chains of linear layers merged, with "
        "--residuals linear branches merged with their identity shortcut. The "
        "outputs are checked on a probe batch; the report is printed and the "
        "folded model written to --out through a temporary file.",
    )
    fold.add_argument("model", metavar="MODEL", help=o.MODEL_HELP)
    fold.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        type=a.writable_file(".keras"),
        help="the .keras to write",
    )
    o.add_input_shape(fold)
    fold.add_argument(
        "--no-batch-norm", action="store_true", help="leave the batch norms as they are"
    )
    fold.add_argument(
        "--chains",
        default="cheaper",
        type=a.choice(names.FOLD_CHAINS),
        help=f"merge chains of linear layers: {o.one_of(names.FOLD_CHAINS, 'cheaper')}"
        " (cheaper: where the merged layer needs fewer FLOPs)",
    )
    fold.add_argument(
        "--residuals",
        action="store_true",
        help="fold linear branches and their identity shortcut into one kernel",
    )
    fold.add_argument(
        "--json", metavar="PATH", type=a.writable_file(), help="write the report (JSON)"
    )
    fold.set_defaults(runner="run_fold")


def _add_models(commands):
    models = commands.add_parser(
        "models", help="list the registered models with their parameter counts"
    )
    models.add_argument(
        "pattern", nargs="?", default="*", help="glob over names. Defaults to *"
    )
    models.add_argument(
        "--no-params", action="store_true", help="list names only (no model is built)"
    )
    models.set_defaults(runner="run_models")


def _add_train(commands):
    train = commands.add_parser(
        "train",
        help="train a model on a data set with a paper's recipe",
        description="Train one model; resumable: run the same command again "
        "after a crash and it continues from the last finished epoch.",
    )
    train.add_argument(
        "--model",
        default="cifar_resnet20",
        type=a.model_value,
        help=f"{o.MODEL_HELP}. Defaults to %(default)s",
    )
    o.add_dataset(train)
    o.add_keep_weights(train)
    train.add_argument(
        "--erase",
        default="none",
        type=a.placement(names.ERASE_WORDS),
        help=f"{o.one_of(names.ERASE_WORDS)}, or an int k (the k-th ReLU of each "
        "module from 0). Defaults to none",
    )
    o.add_training_arguments(train, each="the model family's")
    train.add_argument(
        "--jit-compile",
        default="auto",
        type=a.choice(names.JIT_COMPILE),
        help=f"XLA: {o.one_of(names.JIT_COMPILE, 'auto')}",
    )
    train.add_argument(
        "--seed", type=o.NON_NEGATIVE, default=0, help="an int >= 0. Defaults to 0"
    )
    train.add_argument("--out", required=True, help="run directory")
    o.add_restart(train)
    train.add_argument(
        "--progressive-erase",
        metavar="START:END",
        type=a.window,
        help="anneal the erased ReLUs from ReLU to identity over these epochs "
        "(0 <= START < END)",
    )
    train.add_argument(
        "--activation-stats",
        action="store_true",
        help="record the erased sites' activation statistics every epoch",
    )
    train.add_argument(
        "--gradient-stats",
        type=o.NON_NEGATIVE,
        metavar="EVERY",
        default=0,
        help="record gradient norms every N steps. Defaults to 0 (off)",
    )
    train.add_argument(
        "--verbose",
        default="auto",
        type=a.train_verbose,
        help=f"Keras progress: {o.one_of(names.TRAIN_VERBOSE, 'auto')}",
    )
    train.set_defaults(runner="run_train")


def _add_tune(commands):
    tune = commands.add_parser(
        "tune",
        help="search where to erase with Keras Tuner (one machine or many)",
        description="Search erasure placements with Keras Tuner. Run again with "
        "the same arguments to resume. With KERASTUNER_TUNER_ID (chief, tuner0, "
        "...) and KERASTUNER_ORACLE_PORT set, the same command is the chief or a "
        "worker of one distributed search; the chief listens on "
        "KERASTUNER_ORACLE_IP, 127.0.0.1 (this machine only) unless set.",
    )
    tune.add_argument(
        "--model",
        default="cifar_resnet20",
        type=a.model_value,
        help=f"{o.MODEL_HELP}. Defaults to %(default)s",
    )
    o.add_dataset(tune)
    o.add_keep_weights(tune)
    tune.add_argument(
        "--space",
        default="per_module",
        type=a.space_list,
        help=f"{o.one_of(names.SPACES)}, or position with one of the others, "
        "comma-separated (position,ratio). Defaults to per_module",
    )
    tune.add_argument(
        "--tuner",
        default="bayesian",
        type=a.choice(names.TUNERS),
        help=o.one_of(names.TUNERS, "bayesian"),
    )
    tune.add_argument(
        "--max-trials", type=o.POSITIVE, default=10, help="an int >= 1. Defaults to 10"
    )
    tune.add_argument(
        "--epochs",
        type=a.int_or_list(1),
        help="epochs per trial (default: the recipe's); 1,2,4 tunes them",
    )
    tune.add_argument(
        "--batch-size", type=a.int_or_list(1), help="global batch; 64,128 tunes it"
    )
    o.add_recipe(tune, "the model family's")
    tune.add_argument(
        "--where",
        default="last",
        type=a.placement(names.POSITIONS),
        help=f"position when the space has no 'position': {o.one_of(names.POSITIONS)} "
        "or an int k. Defaults to last",
    )
    o.add_kinds(tune)
    tune.add_argument(
        "--objective",
        default="val_accuracy",
        type=a.choice(names.OBJECTIVES),
        help=o.one_of(names.OBJECTIVES, "val_accuracy"),
    )
    tune.add_argument(
        "--factor",
        type=a.int_at_least(2),
        default=3,
        help="Hyperband's reduction factor, an int >= 2. Defaults to 3",
    )
    o.add_steps(tune)
    tune.add_argument(
        "--validation-steps", type=o.POSITIVE, help="validation batches per trial"
    )
    tune.add_argument(
        "--seed", type=o.NON_NEGATIVE, default=0, help="an int >= 0. Defaults to 0"
    )
    o.add_data_dir(tune)
    tune.add_argument("--project", help="default: <model>_<space>_<tuner>")
    tune.add_argument("--overwrite", action="store_true", help="start over")
    tune.add_argument(
        "--verbose", type=a.verbose, default=1, help="0, 1 or 2. Defaults to 1"
    )
    tune.add_argument("--out", required=True, help="search directory (shared)")
    tune.set_defaults(runner="run_tune")


def _add_compare(commands):
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
        type=a.name_list,
        help="comma-separated models: registry or keras.applications names or "
        ".keras files, e.g. cifar_resnet20,my_net.keras",
    )
    compare.add_argument(
        "--erase",
        default="none,last",
        type=a.placement_list(names.ERASE_WORDS),
        help=f"comma-separated placements: {', '.join(names.ERASE_WORDS)} or an "
        "int k. Defaults to none,last",
    )
    compare.add_argument(
        "--depths",
        type=a.depth_list,
        help="comma-separated CIFAR ResNet depths 6n+2 (20,56,110): cifar_resnet<d> "
        "models x --erase, the 'deeper benefits more' sweep",
    )
    o.add_dataset(compare)
    o.add_keep_weights(compare)
    compare.add_argument(
        "--seeds", type=o.POSITIVE, default=5, help="seeds 0..N-1. Defaults to 5"
    )
    compare.add_argument("--out", required=True, help="experiment directory")
    o.add_restart(compare, whose="every run's")
    o.add_training_arguments(compare, each="each model family's")
    compare.add_argument(
        "--target-accuracy",
        type=a.number_in(0, 1, high_open=True),
        help="in (0, 1); default: the lowest mean final accuracy of a variant",
    )
    compare.add_argument(
        "--gradient-stats",
        type=o.NON_NEGATIVE,
        metavar="EVERY",
        default=10,
        help="record gradient norms every N steps (0: off). Defaults to 10",
    )
    compare.add_argument(
        "--verbose", type=a.verbose, default=0, help="Keras progress per run: 0, 1, 2"
    )
    compare.set_defaults(runner="run_compare")


def _add_demo(commands):
    demo = commands.add_parser(
        "demo",
        help="offline demo: a deep ResNet with and without EraseReLU on digits",
        description="Compare a deep CIFAR ResNet with and without EraseReLU over "
        "several seeds on scikit-learn's 8x8 digits (offline, a few minutes on "
        "2 CPU cores): a table with confidence intervals and Welch's t-test, "
        "and plots.",
    )
    demo.add_argument("--out", default="eraserelu-demo", help="experiment directory")
    demo.add_argument(
        "--seeds", type=o.POSITIVE, help="an int >= 1; default: the demo's"
    )
    demo.add_argument(
        "--epochs", type=o.POSITIVE, help="an int >= 1; default: the demo's"
    )
    demo.set_defaults(runner="run_demo")


if __name__ == "__main__":
    sys.exit(main())
