"""A plan's warnings: what the user should know before erasing, and what to do.

Each warning says what was found, why it matters and which argument changes
it:

- no module: why (no merging or pooling cut point, cells cross-wired as in
  NASNet, or no segment holding a site of the asked kinds), how many sites
  of which kinds the model has, which `kinds=` would find modules, and the
  opaque layers that may hide its blocks;
- hidden modules: the modules whose last activation cannot be told because
  they end in, or pass through, an opaque layer (nothing erased there);
- nested sites chosen but not erasable through their layer's config;
- erased before, clipped kinds, shared layers.

Example:

```python
plan = plan_erasure(keras.applications.MobileNetV2(weights=None))
plan.warnings[0]   # "No module of 'mobilenetv2_1.00_224' holds a site of
                   #  kinds ['relu']: its 35 activation sites are 35 relu6;
                   #  kinds=('relu6',) finds 10 modules. ..."
```
"""

from __future__ import annotations

from collections import Counter

from keras_eraserelu.core.modules import ModuleMap
from keras_eraserelu.core.sites import ERASED_KIND, is_opaque, site_key, sites_of_graph

_CLIPPED_NOTES = {
    "relu6": "relu6 loses its upper clip",
    "leaky": "leaky ReLU loses its negative slope",
    "thresholded": "thresholded ReLU loses its threshold",
}
_SELECT_HINT = (
    "Choose the sites to erase with select= (names, globs, indices or a "
    "function of the site)."
)


def plan_warnings(name, sites, module_map, graph, kinds, restrict, select, refused):
    """Every warning of a plan, in order.

    Args:
        name: str. The model's name.
        sites: list of decided `ReluSite`.
        module_map: `ModuleMap` the plan was made on.
        graph: the model's `FlatGraph`.
        kinds: tuple of str. The kinds asked for.
        restrict: bool. Whether a position rule, `modules=` or `ratio=` applies.
        select: the `select=` selector or None.
        refused: list of str. Why chosen nested sites cannot be erased.
    """
    warnings = []
    if not module_map.modules and restrict and select is None:
        warnings.append(no_module_warning(name, graph, module_map, kinds))
    hidden = hidden_modules_warning(name, module_map, sites) if restrict else None
    warnings += [hidden] if hidden else []
    warnings += refused
    erased = [site for site in sites if site.decision == "erase"]
    before = [site for site in sites if site.decision == "erased"]
    if before and not erased:
        warnings.append(
            f"'{name}' was erased before ({len(before)} sites already linear): "
            "nothing more to erase."
        )
    clipped = sorted({site.kind for site in erased if site.kind in _CLIPPED_NOTES})
    if clipped:
        notes = "; ".join(_CLIPPED_NOTES[kind] for kind in clipped)
        warnings.append(f"Erasing changes more than linearity here: {notes}.")
    shared = [site.path for site in erased if site.calls > 1]
    if shared:
        warnings.append(
            f"Shared layers {shared} are erased at every call, not only where "
            "the placement found them."
        )
    return warnings


def no_module_warning(name, graph, module_map, kinds):
    """Why `graph` has no module, what it has instead, and what to pass."""
    every = sites_of_graph(graph, {"any"})
    counts = Counter(
        site.kind
        for site in every.values()
        if site.kind != ERASED_KIND and site.form != "nested"
    )
    reason = module_map.empty_reason
    if reason == "cross_wired":
        text = (
            f"No basic modules detected in '{name}': its cells are cross-wired "
            "(a single cut point closes them all, as in NASNet), so there is no "
            "'last ReLU of a module'."
        )
    elif reason == "no_cut_points":
        text = (
            f"No basic modules detected in '{name}': its graph has no merging or "
            "pooling cut points, so there is no 'last ReLU of a module'."
        )
        text += _hidden_blocks(graph, every)
    else:
        text = f"No module of '{name}' holds a site of kinds {list(kinds)}."
        text += _other_kinds(graph, every, counts, kinds)
    if counts and reason != "no_sites":
        text += f" Its activation sites: {_kinds_text(counts)}."
    return f"{text} {_SELECT_HINT}"


def hidden_modules_warning(name, module_map, sites):
    """The modules left alone because an opaque layer may hold their last
    activation, or None."""
    chosen = {site.module for site in sites if site.module is not None}
    hidden = [
        (index, nodes) for index, nodes in module_map.hidden.items() if index in chosen
    ]
    if not hidden:
        return None
    described = "; ".join(
        f"module {index} {hidden_words(index, nodes, module_map)}"
        for index, nodes in hidden[:5]
    )
    more = f" (and {len(hidden) - 5} more)" if len(hidden) > 5 else ""
    return (
        f"In {len(hidden)} modules of '{name}' the last ReLU cannot be told: "
        f"{described}{more}, which the graph walker cannot see into. Nothing is "
        "erased in those modules by default. If such a layer holds no "
        "activation, choose the module's sites with select=."
    )


def hidden_words(index, nodes, module_map):
    """`"ends in 'x' (Lambda)"` or `"passes through 'y' (MyBlock)"`."""
    ends = module_map.modules[index].name == nodes[0].qualified_name
    verb = "ends in" if ends else "passes through"
    layers = ", ".join(
        f"'{node.qualified_name}' ({type(node.operation).__name__})" for node in nodes
    )
    return f"{verb} {layers}"


def _other_kinds(graph, every, counts, kinds):
    if not counts:
        return " It has no activation site at all."
    text = f" Its {sum(counts.values())} activation sites are {_kinds_text(counts)}"
    found = []
    for kind in sorted(counts, key=lambda k: -counts[k]):
        if kind in kinds:
            continue
        keys = {key for key, site in every.items() if site.kind == kind}
        modules = ModuleMap(graph, lambda node, keys=keys: site_key(node) in keys)
        if modules.modules:
            found.append(f"kinds=({kind!r},) finds {len(modules.modules)} modules")
    return text + ("; " + ", ".join(found) if found else "") + "."


def _hidden_blocks(graph, every):
    opaque = [node for node in graph.nodes if is_opaque(node.operation)]
    if not opaque:
        return ""
    classes = Counter(type(node.operation).__name__ for node in opaque)
    listed = ", ".join(f"{count} {name}" for name, count in classes.most_common())
    nested = [site.name for site in every.values() if site.form == "nested"]
    text = (
        f" Its blocks may be inside {len(opaque)} layers the graph walker cannot "
        f"see into ({listed})"
    )
    if nested:
        text += (
            f"; their {len(nested)} activation sub-layers are nested sites "
            f"('{nested[0]}', ...): select= can choose those, erased where the "
            "layer's config allows it"
        )
    return text + "."


def _kinds_text(counts):
    return ", ".join(f"{count} {kind}" for kind, count in counts.most_common())
