"""Basic modules: where each residual block, inception cell or conv stack ends.

The rule, from the cut points of the flattened graph (nodes that every path
from an input to an output passes through), in topological order:

1. If some cut points merge several inputs (Add, Concatenate, or any layer
   with several inputs), those end the modules. Otherwise the network is a
   plain chain and its local pooling cut points end the modules.
2. A merge whose only consumer is a standalone activation (ResNet's
   `conv2_block1_out`) ends its module with that activation.
3. A module spans the nodes after the previous module end up to its own end.
   The first module starts where its branches fork (the last cut point before
   its end); for plain chains, at the input. What lies before is the stem,
   what lies after the last end is the head. Modules without sites are
   dropped. A graph whose only merging cut point closes cross-connected cells
   (NASNet) has no modules.
4. The last sites of a module: walk back from its end along every input until
   a site or the previous module end; keep the sites found that are not
   ancestors of another one found. The first sites mirror this.
5. Opaque layers (a `Lambda`, a custom layer: `sites.is_opaque`) may hold
   an activation the walker cannot see. A merge whose only consumer is an
   opaque layer ends its module with that layer; a module that ends in an
   opaque layer, or has one between its last sites and its end, is
   *hidden*: its last site cannot be told (`hidden_by`).
6. Gates are not part of this: a Multiply of a tensor by a function of
   itself (squeeze-and-excitation, MobileNetV3's hard-sigmoid gates) neither
   ends a module nor holds its sites. The activations on the gating branch
   shape a gate, not the feature path, so they are never a module's first,
   last or k-th site.

Example:

```python
modules = ModuleMap(FlatGraph.from_model(model), is_site=lambda node: ...)
[m.name for m in modules.modules][:2]   # ['conv2_block1_out', 'conv2_block2_out']
```
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace

import keras

from keras_eraserelu.core.sites import activation_of, is_opaque

# The windowed pooling layers: a cut point that ends a module.
POOLING_LAYERS = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
)


@dataclass(frozen=True)
class Module:
    """One basic module of a network.

    Attributes:
        index: int. Position among the modules, from the input.
        name: str. Stable name: the qualified name of the node that ends it.
        stage: int. Index of the group of consecutive modules whose outputs
            have the same spatial size.
        site_count: int. Number of sites inside the module.
        hidden_by: tuple of str. Qualified names of the opaque layers that
            may hold its last activation (its end, or layers between its last
            sites and its end); empty when its last site is known.
    """

    index: int
    name: str
    stage: int
    site_count: int
    hidden_by: tuple = ()

    def to_dict(self):
        return {
            "index": self.index,
            "name": self.name,
            "stage": self.stage,
            "site_count": self.site_count,
            "hidden_by": list(self.hidden_by),
        }


class ModuleMap:
    """The modules of a flattened graph, and which nodes lie in each.

    Args:
        graph: FlatGraph.
        is_site: callable(GraphNode) -> bool. Which nodes count as sites
            (the activations that can be erased, and those erased earlier).
    """

    def __init__(self, graph, is_site):
        self.graph = graph
        self._gates = {
            node: branch
            for node in graph.nodes
            if (branch := _gating_branch(graph, node))
        }
        self._gated = {
            member: gate for gate, branch in self._gates.items() for member in branch
        }
        self.is_site = lambda node: is_site(node) and id(node) not in self._gated
        cuts = graph.cut_points()
        merges = [
            node for node in cuts if len(node.parents) >= 2 and node not in self._gates
        ]
        self.boundary = "merge" if merges else "pooling"
        ends = merges or [n for n in cuts if isinstance(n.operation, POOLING_LAYERS)]
        start = -1
        if merges:
            forks = [node.index for node in cuts if node.index < merges[0].index]
            start = forks[-1] if forks else -1
        #: Why there are no modules: "cross_wired", "no_cut_points",
        #: "no_sites" (no segment holds a site), or None when there are.
        self.empty_reason = None if ends else "no_cut_points"
        if len(merges) == 1 and self._has_inner_merges(start, merges[0]):
            # One cut point at the very end and cross-connected cells before
            # it (NASNet): there are no modules to speak of.
            self.boundary, ends = "none", []
            self.empty_reason = "cross_wired"
        self._ends = [self._with_trailing_layer(end) for end in ends]
        self._build_segments(start)

    def gate_of(self, node):
        """The gate (a Multiply node) whose gating branch holds `node`, or None."""
        return self._gated.get(id(node))

    def _has_inner_merges(self, start, end):
        inner = self.graph.nodes[start + 1 : end.index]
        return any(len(node.parents) >= 2 and node not in self._gates for node in inner)

    def _with_trailing_layer(self, end):
        """The merge `end`, or its only consumer when that is a standalone
        site or an opaque layer taking `end` alone."""
        if self.boundary != "merge" or len(end.children) != 1:
            return end
        child = end.children[0]
        if len(child.parents) != 1:
            return end
        activation = activation_of(child.operation)
        standalone = activation is not None and activation[0] != "fused"
        if (standalone and self.is_site(child)) or is_opaque(child.operation):
            return child
        return end

    def _build_segments(self, start):
        self.modules = []
        self._bounds = []  # (first index exclusive, last index inclusive)
        previous_shape = None
        stage = -1
        lower = start
        for end in self._ends:
            sites = [
                node
                for node in self.graph.nodes[lower + 1 : end.index + 1]
                if self.is_site(node)
            ]
            if sites:
                shape = _spatial(end.output_shape)
                if shape != previous_shape:
                    stage += 1
                    previous_shape = shape
                index = len(self.modules)
                self.modules.append(
                    Module(index, end.qualified_name, stage, len(sites))
                )
                self._bounds.append((lower, end.index))
            lower = end.index
        self._uppers = [upper for _, upper in self._bounds]
        #: The opaque nodes hiding each module's last site (`hidden_by`).
        self.hidden = {}
        for index, module in enumerate(self.modules):
            nodes = self.hidden_by(index)
            if nodes:
                self.hidden[index] = nodes
                names = tuple(node.qualified_name for node in nodes)
                self.modules[index] = replace(module, hidden_by=names)
        if not self.modules:
            self.boundary = "none"
            self.empty_reason = self.empty_reason or "no_sites"

    def module_of(self, node):
        """Index of the module whose span holds `node`, or None (stem or head)."""
        position = bisect.bisect_left(self._uppers, node.index)
        if position < len(self._bounds) and self._bounds[position][0] < node.index:
            return position
        return None

    def region_of(self, node):
        """`"module"`, `"stem"` or `"head"`."""
        if self.module_of(node) is not None:
            return "module"
        if self.modules and node.index > self._bounds[-1][1]:
            return "head"
        return "stem"

    def sites_in(self, module_index):
        """The site nodes of a module, in topological order."""
        lower, upper = self._bounds[module_index]
        return [
            node
            for node in self.graph.nodes[lower + 1 : upper + 1]
            if self.is_site(node)
        ]

    def last_sites(self, module_index):
        """The module's last sites: those no other site of it comes after."""
        lower, upper = self._bounds[module_index]
        end = self.graph.nodes[upper]
        if self.is_site(end):
            return [end]
        found, seen, stack = [], set(), list(end.parents)
        while stack:
            node = stack.pop()
            if node.index <= lower or id(node) in seen:
                continue
            seen.add(id(node))
            if self.is_site(node):
                found.append(node)
            else:
                stack.extend(node.parents)
        return self._not_ancestors(found, lower)

    def hidden_by(self, module_index):
        """The opaque nodes that may hold the module's last activation: its
        end, or those between its last sites and its end; [] when its last
        site is known."""
        lower, upper = self._bounds[module_index]
        end = self.graph.nodes[upper]
        if is_opaque(end.operation):
            return [end]
        if self.is_site(end):
            return []
        before_end = self.graph.ancestors(end, stop=lambda n: n.index <= lower)
        after_last, stack = set(), list(self.last_sites(module_index))
        while stack:
            node = stack.pop()
            for child in node.children:
                if child.index < upper and id(child) not in after_last:
                    after_last.add(id(child))
                    stack.append(child)
        between = before_end & after_last
        return [
            node
            for node in self.graph.nodes[lower + 1 : upper]
            if id(node) in between and is_opaque(node.operation)
        ]

    def first_sites(self, module_index):
        """The module's first sites: those no other site of it comes before."""
        lower, _ = self._bounds[module_index]
        sites = self.sites_in(module_index)
        site_ids = {id(node) for node in sites}
        return [
            node
            for node in sites
            if not site_ids
            & self.graph.ancestors(node, stop=lambda n: n.index <= lower)
        ]

    def _not_ancestors(self, found, lower):
        found_ids = {id(node) for node in found}
        covered = set()
        for node in found:
            covered |= found_ids & self.graph.ancestors(
                node, stop=lambda n: n.index <= lower
            )
        return sorted(
            (node for node in found if id(node) not in covered),
            key=lambda node: node.index,
        )


def _gating_branch(graph, node):
    """Ids of the nodes of `node`'s gating branch if `node` is a gate, else None.

    A gate is a two-input Multiply (layer or `*` op) of a tensor and a
    function of it; its branch lies between the gated input and the gating
    one, the gating input included.
    """
    if type(node.operation).__name__ != "Multiply" or len(node.parents) != 2:
        return None
    gated, gating = sorted(node.parents, key=lambda parent: parent.index)
    # Every path from `gated` to `gating` stays above `gated` in topological
    # order, so this bounded walk finds `gated` exactly when it is an ancestor.
    above = graph.ancestors(gating, stop=lambda other: other.index <= gated.index)
    if id(gated) not in above:
        return None
    return {
        id(other)
        for other in graph.nodes[gated.index + 1 : gating.index]
        if id(other) in above
    } | {id(gating)}


def _spatial(shape):
    if shape is None or len(shape) < 3:
        return None
    return tuple(shape[1:-1])
