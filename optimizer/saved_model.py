"""SavedModel folders, TF1 or TF2: one signature's graph, its interface, and its variables' values.

Contract
- A folder holding `saved_model.pb` (or `saved_model.pbtxt`) is a SavedModel. The meta graph is the one whose
  tags include every tag asked for (`serve` by default; `serve,gpu` asks for two); the signature is
  `serving_default` by default. A missing tag set or signature is an OptimizerError naming the folder and listing
  the tag sets or signatures it has.
- The graph is the meta graph's `graph_def`, exactly as the SavedModel stores it (TF2 ones hold, per signature,
  input placeholders and a `StatefulPartitionedCall` of the signature function, plus the `VarHandleOp`s it
  captures). The signature's inputs and outputs, in the order of their keys, become the graph's inputs and
  outputs under the tensor names the signature gives (`serving_default_x:0`, `StatefulPartitionedCall:0`), so a
  consumer of the signature finds the same names in the optimized graph.
- Variable values come from `variables/variables`, decoded only when read. TF2: the signature functions' captured
  variables are matched to checkpoint keys through the object graph (a concrete function's `bound_inputs` name
  the object-graph nodes it captures; the checkpoint's object graph, which shares node ids, gives each one's key),
  which is how TensorFlow's own loader restores them. TF1: the graph's saver says which key restores which
  variable, as for any checkpoint (`optimizer.checkpoint`).
- The model's initializer (its init op and asset feeds, `optimizer.initializers.saved_model_init`) is attached
  as `graph.init`; variables it assigns (TF2 keeps each asset's path in one) take their value from it, not from
  the checkpoint.
- Composite signature tensors (sparse, or any stored as one `composite_tensor` entry) are refused with a message;
  nothing is executed to load the model. A `tf.RaggedTensorSpec` argument is not one: TensorFlow flattens it into
  dense signature tensors (`x`, the values; `x_1`, the row splits), which load as plain inputs, and verification
  feeds them valid row splits (`optimizer.ragged_inputs`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from google.protobuf import message, text_format

from optimizer.checkpoint import CheckpointReader, default_key, match_variables, saver_keys
from optimizer.errors import OptimizerError
from optimizer.initializers import INIT_OP_SIGNATURE, ModelInit, saved_model_init
from optimizer.ir import Graph
from optimizer.opinfo import ASSIGN_OPS
from optimizer.protos import GraphDef
from optimizer.variables import VariableValues, is_variable_node

DEFAULT_SIGNATURE = "serving_default"
DEFAULT_TAG = "serve"
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
VARIABLE_VALUE = "VARIABLE_VALUE"


def is_saved_model(path: str | os.PathLike[str]) -> bool:
    """True for a folder that holds `saved_model.pb` or `saved_model.pbtxt`."""
    where = str(path)
    return os.path.isdir(where) and any(
        os.path.isfile(os.path.join(where, name)) for name in ("saved_model.pb", "saved_model.pbtxt")
    )


@dataclass
class SavedModelSignature:
    """One signature of a SavedModel: the graph, its input and output tensor names, and where values live."""

    folder: str
    graph_def: GraphDef
    inputs: list[str]
    outputs: list[str]
    meta_graph: object  # the MetaGraphDef (its object graph maps TF2 captures to checkpoint keys)
    init: ModelInit | None = None

    @property
    def checkpoint_prefix(self) -> str | None:
        prefix = os.path.join(self.folder, "variables", "variables")
        return prefix if os.path.exists(prefix + ".index") else None


def _read_saved_model(folder: str) -> object:
    from tensorflow.core.protobuf.saved_model_pb2 import SavedModel

    saved_model = SavedModel()
    binary, text = os.path.join(folder, "saved_model.pb"), os.path.join(folder, "saved_model.pbtxt")
    try:
        if os.path.isfile(binary):
            with open(binary, "rb") as stream:
                saved_model.ParseFromString(stream.read())
        else:
            with open(text, encoding="utf-8") as stream:
                text_format.Parse(stream.read(), saved_model)
    except (OSError, message.DecodeError, text_format.ParseError, UnicodeDecodeError) as error:
        raise OptimizerError("saved_model.pb cannot be read: the SavedModel is corrupt", folder) from error
    return saved_model


def _tensor_name(info: object, key: str, folder: str) -> str:
    name = str(getattr(info, "name", ""))
    if not name:
        raise OptimizerError(
            f"signature tensor {key!r} is sparse or composite; only dense tensors are supported", folder
        )
    return name


def read_signature(
    path: str | os.PathLike[str], signature: str | None = None, tag: str | None = None
) -> SavedModelSignature:
    """The graph and interface of one signature of the SavedModel in `path`."""
    folder = str(path)
    saved_model = _read_saved_model(folder)
    wanted = {part.strip() for part in (tag or DEFAULT_TAG).split(",") if part.strip()}
    meta_graphs = list(saved_model.meta_graphs)  # type: ignore[attr-defined]
    chosen = next((meta for meta in meta_graphs if wanted <= set(meta.meta_info_def.tags)), None)
    if chosen is None:
        have = "; ".join(",".join(meta.meta_info_def.tags) or "(no tags)" for meta in meta_graphs) or "none"
        raise OptimizerError(f"has no meta graph tagged {','.join(sorted(wanted))!r}; its tag sets: {have}", folder)
    name = signature or DEFAULT_SIGNATURE
    signatures = {key: value for key, value in chosen.signature_def.items() if key != INIT_OP_SIGNATURE}
    if name not in signatures:
        have = ", ".join(sorted(signatures)) or "none"
        raise OptimizerError(f"has no signature {name!r}; its signatures: {have}", folder)
    found = signatures[name]
    inputs = [_tensor_name(found.inputs[key], key, folder) for key in sorted(found.inputs)]
    outputs = [_tensor_name(found.outputs[key], key, folder) for key in sorted(found.outputs)]
    graph_def = GraphDef()
    graph_def.CopyFrom(chosen.graph_def)
    return SavedModelSignature(folder, graph_def, inputs, outputs, chosen, saved_model_init(chosen, folder))


def object_graph_keys(graph: Graph, meta_graph: object, reader: CheckpointReader) -> dict[str, str]:
    """Variable node -> checkpoint key for the variables that TF2 concrete functions called in `graph` capture."""
    from tensorflow.core.protobuf.trackable_object_graph_pb2 import TrackableObjectGraph

    functions = meta_graph.object_graph_def.concrete_functions  # type: ignore[attr-defined]
    if not functions or OBJECT_GRAPH_KEY not in reader.specs:
        return {}
    saved = TrackableObjectGraph()
    saved.ParseFromString(reader.read_raw(OBJECT_GRAPH_KEY))
    key_of_node = {
        node_id: attribute.checkpoint_key
        for node_id, node in enumerate(saved.nodes)
        for attribute in node.attributes
        if attribute.name == VARIABLE_VALUE
    }
    keys: dict[str, str] = {}
    for node in graph.nodes():
        called = node.attrs["f"].func.name if "f" in node.attrs else node.op
        if called not in functions:
            continue
        bound = list(functions[called].bound_inputs)
        data = graph.inputs_of(node.name)
        if not bound or len(bound) > len(data):
            continue
        for tensor, node_id in zip(data[len(data) - len(bound) :], bound, strict=True):
            behind = tensor
            while graph.op(behind.node) == "Identity":
                behind = graph.inputs_of(behind.node)[0]
            if is_variable_node(graph.node(behind.node).proto) and node_id in key_of_node:
                keys.setdefault(behind.node, key_of_node[node_id])
    return keys


def assigned_by(graph: Graph, init: ModelInit | None) -> set[str]:
    """The variable nodes that `init` assigns (their first input, through `Identity`s)."""
    if init is None:
        return set()
    assigned = set()
    for name in graph.reachable([node for node in init.nodes if node in graph], backward=True):
        if graph.op(name) in ASSIGN_OPS and graph.inputs_of(name):
            target = graph.inputs_of(name)[0]
            while graph.op(target.node) == "Identity" and graph.inputs_of(target.node):
                target = graph.inputs_of(target.node)[0]
            assigned.add(target.node)
    return assigned


def saved_model_values(graph: Graph, model: SavedModelSignature) -> VariableValues | None:
    """Lazy values of `graph`'s variables from the SavedModel's `variables/` checkpoint (None without one)."""
    prefix = model.checkpoint_prefix
    initialized = assigned_by(graph, model.init)
    variables = [node for node in graph.nodes() if is_variable_node(node.proto) and node.name not in initialized]
    if prefix is None or not variables:
        return None
    reader = CheckpointReader(prefix)
    keys = object_graph_keys(graph, model.meta_graph, reader)
    if not keys:  # a TF1 SavedModel: its saver, else the variables' own names
        by_saver = saver_keys(graph)
        keys = {node.name: by_saver.get(node.name) or default_key(node.proto) for node in variables}
    values = match_variables(graph, reader, keys, source=model.folder)
    for node in variables:
        if node.name not in keys:
            values.missing[node.name] = f"variable {node.name!r} is captured by no saved function: it has no value"
    return values
