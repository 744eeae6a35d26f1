"""A TensorFlow graph optimizer: load a model into a networkx IR, run passes, save, verify.

import optimizer
graph = optimizer.load("model.pb")
report = optimizer.optimize(graph, "strip,identity,prune")
optimizer.save(graph, "model.opt.pb")
run = optimizer.as_function(graph)  # a frozen graph as a TF2 concrete function: outputs = run(*inputs)
"""

from optimizer.api import load, optimize, save
from optimizer.errors import GraphError, OptimizerError, PassError
from optimizer.function import as_function
from optimizer.ir import Graph, Node, Tensor, Use
from optimizer.manager import PassManager, PassRecord, RunReport
from optimizer.pass_base import Pass, PassContext
from optimizer.pipeline import Pipeline
from optimizer.registry import DEFAULT_PIPELINE, function_pass, get_pass, pass_names, register_pass

__all__ = [
    "DEFAULT_PIPELINE",
    "Graph",
    "GraphError",
    "Node",
    "OptimizerError",
    "Pass",
    "PassContext",
    "PassError",
    "PassManager",
    "PassRecord",
    "Pipeline",
    "RunReport",
    "Tensor",
    "Use",
    "as_function",
    "function_pass",
    "get_pass",
    "load",
    "optimize",
    "pass_names",
    "register_pass",
    "save",
]
