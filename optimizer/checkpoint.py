"""TensorFlow checkpoints: finding one, matching its keys to a graph's variables, reading values lazily.

Contract
- `resolve_prefix(path)` accepts a checkpoint prefix (`model.ckpt-3`), one of its files (`model.ckpt-3.index`,
  `model.ckpt-3.data-00000-of-00001`) or a folder (its latest checkpoint). Anything else is an OptimizerError
  that names the path and says what was expected.
- `latest_checkpoint(folder)`: the checkpoint the folder's `checkpoint` state file names, else the only
  `*.index` in the folder; None when there is none. A state file naming a checkpoint outside the folder (an
  absolute path, `../`, a symlink out) is an OptimizerError: a stranger's model folder must not make a run read
  other weights on this machine; only `--checkpoint PREFIX` may name a checkpoint elsewhere.
- Which key holds which variable: a saver in the graph says it exactly (a `RestoreV2` whose `tensor_names` is a
  constant, its outputs feeding `Assign`/`AssignVariableOp` of the variable, possibly through `Identity`); any other
  variable is looked up by its own name (`shared_name` for a `VarHandleOp` that has one). Slices of partitioned
  variables are not matched.
- `checkpoint_values(graph, prefix)` reads only the checkpoint's table of contents. A variable whose dtype or
  shape differs from the checkpoint's is an error; a variable the checkpoint lacks is recorded as missing (the
  freeze pass fails only if the outputs need it); a checkpoint that holds none of the graph's variables is an
  error (it belongs to another model). Every error is one line naming the checkpoint.
- The values also know the whole table of contents (`stored`) and which keys are optimizer slots (`slots`:
  variables that an optimizer update, `Apply*`/`ResourceApply*`, takes as state rather than as the variable it
  trains), so the report can say what freezing did not carry over.
"""

from __future__ import annotations

import difflib
import functools
import glob
import os
import re
from typing import Any

import numpy as np

from optimizer._tf import tensorflow
from optimizer.errors import OptimizerError
from optimizer.ir import Graph, Tensor
from optimizer.opinfo import ASSIGN_OPS
from optimizer.paths import check_readable, inside
from optimizer.tensor import to_numpy
from optimizer.tf_errors import describe
from optimizer.variables import VariableSpec, VariableValues, declared_spec, is_variable_node

_DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")
_FORWARDING = frozenset({"Identity", "RefIdentity", "Snapshot"})
_OPTIMIZER_UPDATE = re.compile(r"^(Resource)?(Sparse)?Apply\w+$")
_TO_STATE = _FORWARDING | {"ReadVariableOp", "Cast", "Switch", "RefSwitch", "Enter", "RefEnter"}
BOOKKEEPING_KEYS = frozenset({"_CHECKPOINTABLE_OBJECT_GRAPH"})  # the TF2 object graph, not a variable


def latest_checkpoint(folder: str) -> str | None:
    """The latest checkpoint prefix in `folder`, or None."""
    tf = tensorflow()
    try:
        found = tf.train.latest_checkpoint(folder)
    except Exception:  # a corrupt `checkpoint` state file: fall back to the files themselves
        found = None
    if found and not inside(found, folder):
        raise OptimizerError(
            f"it names a checkpoint outside its folder ({found}); to read that one, give it with --checkpoint PREFIX",
            os.path.join(folder, "checkpoint"),
        )
    if found and os.path.exists(found + ".index"):
        return str(found)
    indexes = sorted(glob.glob(os.path.join(glob.escape(folder), "*.index")))
    return indexes[0][: -len(".index")] if len(indexes) == 1 else None


def resolve_prefix(path: str | os.PathLike[str]) -> str:
    """The checkpoint prefix `path` stands for; see the module docstring."""
    where = str(path)
    check_readable(where)
    if os.path.isdir(where):
        found = latest_checkpoint(where)
        if found is None:
            raise OptimizerError("no checkpoint in this folder (no `checkpoint` file and no single *.index)", where)
        return found
    prefix = where[: -len(".index")] if where.endswith(".index") else _DATA_SUFFIX.sub("", where)
    if not os.path.exists(prefix + ".index"):
        hint = "" if os.path.exists(os.path.dirname(os.path.abspath(prefix))) else " (the folder does not exist)"
        raise OptimizerError(f"no checkpoint here: {os.path.basename(prefix)}.index does not exist{hint}", prefix)
    return prefix


class CheckpointReader:
    """A checkpoint's table of contents, and its tensors read one at a time."""

    def __init__(self, prefix: str) -> None:
        tf = tensorflow()
        self.prefix = prefix
        try:
            self._reader = tf.train.load_checkpoint(prefix)
            dtypes = self._reader.get_variable_to_dtype_map()
            shapes = self._reader.get_variable_to_shape_map()
        except Exception as error:
            raise OptimizerError(f"not a readable checkpoint: {describe(error)}", prefix) from error
        self.specs = {
            key: VariableSpec(int(dtypes[key].as_datatype_enum), tuple(int(dim) for dim in shapes[key]))
            for key in shapes
        }

    def __getstate__(self) -> dict[str, Any]:  # pickled as its prefix: a child process opens the files itself
        return {"prefix": self.prefix}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["prefix"])  # type: ignore[misc]

    def read(self, key: str) -> np.ndarray:
        value = self.read_raw(key)
        # numpy's bytes dtype would drop trailing NUL bytes; keep strings as Python objects
        return np.asarray(value, dtype=object) if isinstance(value, bytes) else np.asarray(value)

    def read_raw(self, key: str) -> Any:
        """The tensor as TensorFlow returns it (a scalar string is `bytes`)."""
        try:
            return self._reader.get_tensor(key)
        except Exception as error:
            raise OptimizerError(f"cannot read {key!r}: {describe(error)}", self.prefix) from error


def _const_strings(graph: Graph, tensor: Tensor) -> list[str] | None:
    """The strings of a constant `tensor` (through identities), or None when it is not a constant."""
    while graph.op(tensor.node) in _FORWARDING:
        tensor = graph.inputs_of(tensor.node)[0]
    node = graph.node(tensor.node)
    if node.op != "Const":
        return None
    values = to_numpy(node.attrs["value"].tensor).reshape(-1)
    return [value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value) for value in values]


def _variable_behind(graph: Graph, tensor: Tensor) -> str | None:
    while graph.op(tensor.node) in _FORWARDING:
        tensor = graph.inputs_of(tensor.node)[0]
    return tensor.node if is_variable_node(graph.node(tensor.node).proto) else None


def saver_keys(graph: Graph) -> dict[str, str]:
    """Variable node -> checkpoint key, as the graph's savers (`RestoreV2` -> `Assign*`) restore them."""
    keys: dict[str, str] = {}
    for node in graph.nodes():
        if node.op != "RestoreV2":
            continue
        inputs = graph.inputs_of(node.name)
        names, slices = _const_strings(graph, inputs[1]), _const_strings(graph, inputs[2])
        if names is None:
            continue
        for port, key in enumerate(names):
            if slices and port < len(slices) and slices[port]:
                continue  # one slice of a partitioned variable
            pending = [Tensor(node.name, port)]
            while pending:
                for use in graph.uses(pending.pop()):
                    op = graph.op(use.node)
                    if op in _FORWARDING:
                        pending.append(Tensor(use.node))
                    elif op in ASSIGN_OPS and use.index == 1:
                        variable = _variable_behind(graph, graph.inputs_of(use.node)[0])
                        if variable is not None:
                            keys.setdefault(variable, key)
    return keys


def optimizer_slots(graph: Graph) -> set[str]:
    """Variable nodes that optimizer updates take as state (Adam's `m`/`v` and `beta1_power`, momentum
    accumulators): any input but the first (the variable trained) of an `Apply*` op, through reads and forwarding."""
    slots: set[str] = set()
    for node in graph.nodes():
        if not _OPTIMIZER_UPDATE.match(node.op):
            continue
        for tensor in graph.inputs_of(node.name)[1:]:
            while graph.op(tensor.node) in _TO_STATE and graph.inputs_of(tensor.node):
                tensor = graph.inputs_of(tensor.node)[0]
            if is_variable_node(graph.node(tensor.node).proto):
                slots.add(tensor.node)
    return slots


def default_key(node: Any) -> str:
    """The key a variable is saved under by name: its `shared_name`, if it has one, else its node name."""
    shared = node.attr["shared_name"].s.decode("utf-8", "replace") if "shared_name" in node.attr else ""
    return shared or str(node.name)


def _dtype_name(dtype: int) -> str:
    return str(tensorflow().as_dtype(dtype).name)


def match_variables(
    graph: Graph, reader: CheckpointReader, keys: dict[str, str], source: str | None = None
) -> VariableValues:
    """Check the variable nodes named in `keys` against the checkpoint and build their lazy values."""
    source = source or reader.prefix
    specs: dict[str, VariableSpec] = {}
    found: dict[str, str] = {}
    missing: dict[str, str] = {}
    for name, key in keys.items():
        if key not in reader.specs:
            close = difflib.get_close_matches(key, list(reader.specs), n=2, cutoff=0.6)
            hint = f"; closest: {', '.join(close)}" if close else ""
            missing[name] = f"variable {name!r} is not in the checkpoint (no key {key!r}{hint})"
            continue
        spec = reader.specs[key]
        declared = declared_spec(graph.node(name).proto)
        if declared is not None:
            dtype, shape = declared
            if dtype != spec.dtype:
                raise OptimizerError(
                    f"variable {name!r} is {_dtype_name(dtype)} in the graph but {_dtype_name(spec.dtype)} in the "
                    f"checkpoint ({key})",
                    source,
                )
            if shape is not None and shape != spec.shape:
                raise OptimizerError(
                    f"variable {name!r} has shape {list(shape)} in the graph but {list(spec.shape)} in the "
                    f"checkpoint ({key}): the checkpoint belongs to another model or version",
                    source,
                )
        specs[name] = spec
        found[name] = key
    if keys and not specs:
        sample = ", ".join(sorted(reader.specs)[:3])
        raise OptimizerError(
            f"none of the graph's {len(keys)} variables is in the checkpoint (it holds {sample}, ...): "
            "it belongs to another model",
            source,
        )
    stored = {key: spec for key, spec in reader.specs.items() if key not in BOOKKEEPING_KEYS}
    slots = {found[name] for name in optimizer_slots(graph) if name in found}
    read = functools.partial(_read_variable, reader, found)  # picklable: verification sends it to its child
    return VariableValues(source, specs, read, found, missing, stored, slots)


def _read_variable(reader: CheckpointReader, keys: dict[str, str], name: str) -> np.ndarray:
    return reader.read(keys[name])


def checkpoint_values(graph: Graph, prefix: str) -> VariableValues:
    """The values of `graph`'s variables in the checkpoint `prefix` (see the module docstring)."""
    reader = CheckpointReader(prefix)
    by_saver = saver_keys(graph)
    keys = {
        node.name: by_saver.get(node.name) or default_key(node.proto)
        for node in graph.nodes()
        if is_variable_node(node.proto)
    }
    return match_variables(graph, reader, keys)
