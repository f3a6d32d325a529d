"""The graph core: flattened call graphs, activation sites and modules."""

from keras_eraserelu.graph.flatgraph import FlatGraph, GraphNode
from keras_eraserelu.graph.modules import Module, ModuleMap
from keras_eraserelu.graph.sites import KNOWN_KINDS, RELU_KINDS, ReluSite, find_relus

__all__ = [
    "FlatGraph",
    "GraphNode",
    "KNOWN_KINDS",
    "Module",
    "ModuleMap",
    "RELU_KINDS",
    "ReluSite",
    "find_relus",
]
