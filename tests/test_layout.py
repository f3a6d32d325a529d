"""The package's layers, enforced by reading its imports (AST, nothing run).

core <- models, data, folding <- training <- experiments, tuning <- eraserelu
(the command line): a module imports from its own subpackage or from a lower
layer, never from above or from beside; another subpackage only through the
names its `__init__` declares in `__all__`; no `_private` name from another
module; no import cycle, function-level imports included; and the command
line's parser imports neither the package nor Keras.
"""

import ast
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[1]
LAYERS = {"core": 0, "models": 1, "data": 1, "folding": 1, "training": 2,
          "experiments": 3, "tuning": 3}  # fmt: skip
PACKAGE = "keras_eraserelu"
CLI = "eraserelu"
CLI_COMMANDS = "eraserelu.commands"  # imported only once the arguments parsed


def _modules(root):
    """{dotted name: parsed tree} of every module of both packages."""
    modules = {}
    for top in (PACKAGE, CLI):
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = ast.parse(path.read_text(), str(path))
    return modules


def _imports(tree):
    """(imported module, [names], line, at module level) of every import."""
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [alias.name for alias in node.names]
            found.append((node.module, names, node.lineno, id(node) in top_level))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, [], node.lineno, id(node) in top_level))
    return found


def _subpackage(module):
    parts = module.split(".")
    if parts[0] == CLI:
        return CLI
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def _all_names(tree):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__"
            for target in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return None


def violations(root=ROOT):
    """Every broken rule, as 'module:line: what' lines."""
    modules = _modules(root)
    problems = []
    for name, tree in modules.items():
        if name in (f"{PACKAGE}.{sub}" for sub in LAYERS) and _all_names(tree) is None:
            problems.append(f"{name}: its __init__ declares no __all__")
    graph = {name: set() for name in modules}
    for name, tree in modules.items():
        own = _subpackage(name)
        for target, names, line, module_level in _imports(tree):
            where = f"{name}:{line}"
            if target.split(".")[0] not in (PACKAGE, CLI):
                if own == CLI and name != CLI_COMMANDS and module_level:
                    if target.split(".")[0] in ("keras", "tensorflow"):
                        problems.append(f"{where}: the parser imports {target}")
                continue
            problems += _check_import(name, own, target, names, where, modules)
            if own == CLI and name != CLI_COMMANDS and target.startswith(PACKAGE):
                problems.append(f"{where}: the parser imports {target}")
            for module in _targets(target, names, modules):
                if module != name:
                    graph[name].add(module)
    problems += [f"import cycle among: {', '.join(c)}" for c in _cycles(graph)]
    return problems


def _check_import(name, own, target, names, where, modules):
    problems = []
    theirs = _subpackage(target)
    if any(n.startswith("_") and not n.startswith("__") for n in names):
        private = [n for n in names if n.startswith("_")]
        problems.append(f"{where}: imports private {private} from {target}")
    if own in (None, theirs) or theirs is None:  # the top package, version.py
        return problems
    if theirs == CLI:
        return problems + [f"{where}: imports the command line ({target})"]
    if own != CLI and LAYERS[theirs] >= LAYERS[own]:
        direction = "beside" if LAYERS[theirs] == LAYERS[own] else "above"
        problems.append(f"{where}: {own} imports {target}, {direction} it")
    package = f"{PACKAGE}.{theirs}"
    if target != package:
        problems.append(
            f"{where}: imports {target}; other subpackages use {package}'s __all__"
        )
    else:
        exported = _all_names(modules[package]) or set()
        missing = sorted(set(names) - exported)
        if missing:
            problems.append(f"{where}: {missing} are not in {package}.__all__")
    return problems


def _targets(target, names, modules):
    """The modules an import depends on: the one named, and a submodule when
    an imported name is one. (Parent packages are left out: Python has them
    half-imported already when a module below them runs.)"""
    found = [target] + [f"{target}.{n}" for n in names]
    return [m for m in found if m in modules]


def _cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_package_keeps_its_layers():
    assert violations() == []


def _tree(tmp_path, files):
    """A small copy of the layout with the given extra or changed modules."""
    base = {
        "keras_eraserelu/__init__.py": "from keras_eraserelu import core\n",
        "keras_eraserelu/core/__init__.py": "from keras_eraserelu.core.plan import "
        "plan\n__all__ = ['plan']\n",
        "keras_eraserelu/core/plan.py": "def plan():\n    pass\n",
        "keras_eraserelu/training/__init__.py": "__all__ = []\n",
        "keras_eraserelu/training/trainer.py": "from keras_eraserelu.core import "
        "plan\n",
        "eraserelu/__init__.py": "",
        "eraserelu/cli.py": "import argparse\n",
        "eraserelu/commands.py": "from keras_eraserelu.core import plan\n",
    }
    for path, text in {**base, **files}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(textwrap.dedent(text))
    return tmp_path


def test_the_rules_catch_what_they_forbid(tmp_path):
    assert violations(_tree(tmp_path / "clean", {})) == []
    upward = {
        "keras_eraserelu/core/plan.py": """
        def plan():
            from keras_eraserelu.training import trainer  # hidden in a function
        """
    }
    assert violations(_tree(tmp_path / "upward", upward)) == [
        "keras_eraserelu.core.plan:3: core imports keras_eraserelu.training, above it",
        "keras_eraserelu.core.plan:3: ['trainer'] are not in "
        "keras_eraserelu.training.__all__",
        "import cycle among: keras_eraserelu.core, keras_eraserelu.core.plan, "
        "keras_eraserelu.training.trainer",
    ]
    cycle = {"keras_eraserelu/core/sites.py": "from keras_eraserelu.core.plan "
             "import plan\n",
             "keras_eraserelu/core/plan.py": "def plan():\n    from "
             "keras_eraserelu.core.sites import x\n"}  # fmt: skip
    assert violations(_tree(tmp_path / "cycle", cycle)) == [
        "import cycle among: keras_eraserelu.core.plan, keras_eraserelu.core.sites"
    ]
    bypass = {"keras_eraserelu/training/trainer.py": "from keras_eraserelu.core."
              "plan import plan, _helper\n"}  # fmt: skip
    assert violations(_tree(tmp_path / "bypass", bypass)) == [
        "keras_eraserelu.training.trainer:1: imports private ['_helper'] from "
        "keras_eraserelu.core.plan",
        "keras_eraserelu.training.trainer:1: imports keras_eraserelu.core.plan; "
        "other subpackages use keras_eraserelu.core's __all__",
    ]
    heavy_parser = {"eraserelu/cli.py": "import keras\nfrom keras_eraserelu "
                    "import core\n"}  # fmt: skip
    assert violations(_tree(tmp_path / "parser", heavy_parser)) == [
        "eraserelu.cli:1: the parser imports keras",
        "eraserelu.cli:2: the parser imports keras_eraserelu",
    ]
    unexported = {"keras_eraserelu/training/trainer.py": "from keras_eraserelu."
                  "core import plan, erase\n"}  # fmt: skip
    assert violations(_tree(tmp_path / "unexported", unexported)) == [
        "keras_eraserelu.training.trainer:1: ['erase'] are not in "
        "keras_eraserelu.core.__all__"
    ]


def test_subpackages_are_attributes_and_the_heavy_ones_load_when_used():
    import os
    import subprocess
    import sys

    code = textwrap.dedent("""
        import sys
        import keras_eraserelu as ker
        heavy = ("keras_tuner", "tensorflow_datasets", "keras_hub")
        print(sorted(name for name in heavy if name in sys.modules))
        print(ker.models.create_model("cifar_resnet8").name)
        print(ker.training.train.__name__, ker.data.load_dataset.__name__)
        print(ker.experiments.compare.__name__, ker.tuning.tune_placements.__name__)
        print("keras_tuner" in sys.modules)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [
        "[]",  # neither Keras Tuner, TensorFlow Datasets nor KerasHub at import
        "cifar_resnet8",
        "train load_dataset",
        "compare tune_placements",
        "True",  # ker.tuning loaded Keras Tuner
    ]
