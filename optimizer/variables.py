"""Variable values: where a graph's variables get their values from, read lazily.

Contract
- A `VariableValues` maps the name of each graph node that holds a variable (`VariableV2`/`Variable`,
  `VarHandleOp`, or a resource `Placeholder`) to a value source: its dtype and shape are known up front, its
  tensor is decoded only when `read` asks for it (a 100 MB embedding table stays on disk until the freeze pass
  needs it). Loaders build one and hang it on the Graph (`graph.variables`); the `freeze` pass reads it.
- `source` names the file the values come from (a checkpoint prefix, a SavedModel folder); every error names it.
- `missing` records variables of the graph that have no value, with the reason; they are an error only when
  something the outputs need reads them (the freeze pass decides).
- `assign_all(session)` writes the values into the variables of a TF1 session that imported the graph, which is
  how the original graph runs "with the checkpoint restored" during verification.
- `variable_leftovers(graph_def)` lists what of variables a GraphDef still holds (variable ops, reads, updates,
  resource or ref types in attrs and function signatures): empty for a fully frozen graph.
- What was carried over: `stored` is everything the source holds (a checkpoint's table of contents, key -> spec);
  `read` records in `read_names` which variables were decoded (by the freeze pass; `assign_all` does not count);
  `account(kept)` tallies the source into what became constants, what stays variables (`kept`, the variable
  nodes left in the graph) and what was not carried over, by kind (`state_kind`): optimizer slots (keys the loader
  found feeding an optimizer update as state, TF2 `.OPTIMIZER_SLOT`s, anything under an `optimizer` object), step
  counters (integer scalars: `global_step`, `iter`) and other training-only state.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optimizer._tf import tensorflow
from optimizer.errors import OptimizerError
from optimizer.protos import DataType

VARIABLE_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp"})
RESOURCE = int(DataType.DT_RESOURCE)


@dataclass(frozen=True)
class VariableSpec:
    """What is known about a value without decoding it: the `DataType` enum and the shape."""

    dtype: int
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        """Bytes of the decoded value (0 for strings, whose size is unknown until read)."""
        tf = tensorflow()
        dtype = tf.as_dtype(self.dtype)
        if dtype == tf.string:
            return 0
        return int(np.prod(self.shape, dtype=np.int64)) * dtype.size

    def describe(self) -> str:
        return f"{tensorflow().as_dtype(self.dtype).name}{list(self.shape)}"


class VariableValues:
    """The values of a graph's variables by node name, each decoded on first `read`."""

    def __init__(
        self,
        source: str,
        specs: Mapping[str, VariableSpec],
        reader: Callable[[str], np.ndarray],
        keys: Mapping[str, str] | None = None,
        missing: Mapping[str, str] | None = None,
        stored: Mapping[str, VariableSpec] | None = None,
        slots: Iterable[str] = (),
    ) -> None:
        self.source = source
        self._specs = dict(specs)
        self._reader = reader
        self._keys = dict(keys or {})
        self.missing: dict[str, str] = dict(missing or {})
        self.stored: dict[str, VariableSpec] = dict(stored if stored is not None else {})
        self.slots: set[str] = set(slots)
        self.read_names: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with its reader (a checkpoint's is reopened by its prefix), or, when the reader does not pickle
        (a lambda), with every value read: what a child process running the graph needs."""
        state = dict(self.__dict__)
        try:
            pickle.dumps(self._reader)
        except Exception:
            state["_reader"] = {name: self._reader(name) for name in self._specs}.__getitem__
        return state

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def spec(self, name: str) -> VariableSpec:
        return self._specs[name]

    def key(self, name: str) -> str:
        """Where the value of `name` lives in the source (a checkpoint key), for messages."""
        return self._keys.get(name, name)

    def read(self, name: str) -> np.ndarray:
        """Decode the value of variable `name` (checked against its spec), recording that it was carried over."""
        value = self._decode(name)
        self.read_names.add(name)
        return value

    def _decode(self, name: str) -> np.ndarray:
        if name not in self._specs:
            reason = self.missing.get(name, f"variable {name!r} has no value")
            raise OptimizerError(reason, self.source)
        value = np.asarray(self._reader(name))
        spec = self._specs[name]
        if tuple(value.shape) != spec.shape:
            raise OptimizerError(
                f"variable {name!r} ({self.key(name)}) has shape {list(value.shape)}, expected {list(spec.shape)}",
                self.source,
            )
        return value

    def assign_all(self, session: Any) -> None:
        """Assign every known value to the variable of the same name in `session`'s graph (variables the graph
        lacks are skipped). Values are fed, not embedded, so the graph does not grow by the weights."""
        tf = tensorflow()
        graph = session.graph
        assigns, feeds = [], {}
        with graph.as_default():
            for name in self:
                try:
                    operation = graph.get_operation_by_name(name)
                except KeyError:
                    continue
                if operation.type not in VARIABLE_OPS:
                    continue
                spec = self.spec(name)
                value = tf.compat.v1.placeholder(tf.as_dtype(spec.dtype), spec.shape)
                if operation.type == "VarHandleOp":
                    assigns.append(tf.raw_ops.AssignVariableOp(resource=operation.outputs[0], value=value))
                else:
                    assigns.append(tf.compat.v1.assign(operation.outputs[0], value, validate_shape=False))
                feeds[value] = self._decode(name)
        if assigns:
            session.run(assigns, feed_dict=feeds)

    def account(self, kept: Iterable[str] = ()) -> VariableAccount:
        """Tally `stored` into what was read (frozen), what the variable nodes `kept` still hold, and the rest, by
        `state_kind`. Without a table of contents, the graph's own variables stand for it."""
        stored = self.stored or {self.key(name): spec for name, spec in self._specs.items()}
        frozen = {self.key(name) for name in self.read_names}
        still = {self.key(name) for name in kept if name in self._specs} - frozen
        account = VariableAccount(self.source)
        for key, spec in stored.items():
            account.stored.add(spec)
            if key in frozen:
                account.frozen.add(spec)
            elif key in still:
                account.kept.add(spec)
            else:
                account.dropped.setdefault(state_kind(key, spec, self.slots), Tally()).add(spec)
        return account


@dataclass
class Tally:
    """How many variables and how many bytes (decoded; strings count 0)."""

    count: int = 0
    bytes: int = 0

    def add(self, spec: VariableSpec) -> None:
        self.count += 1
        self.bytes += spec.nbytes

    def to_dict(self) -> dict[str, int]:
        return {"count": self.count, "bytes": self.bytes}


OPTIMIZER_SLOTS, STEP_COUNTERS, OTHER_STATE = "optimizer slots", "step counters", "other training-only state"
STATE_KINDS = (OPTIMIZER_SLOTS, STEP_COUNTERS, OTHER_STATE)
_OPTIMIZER_KEY = re.compile(r"\.OPTIMIZER_SLOT/|(^|/)optimizer(/|$)")


def state_kind(key: str, spec: VariableSpec, slots: Iterable[str] = ()) -> str:
    """What a variable that was not carried over held: optimizer slots (`key` in `slots`, which the loader found
    feeding optimizer updates, or a TF2 optimizer's key), step counters (integer scalars), or other state."""
    if key in slots or _OPTIMIZER_KEY.search(key):
        return OPTIMIZER_SLOTS
    if not spec.shape and tensorflow().as_dtype(spec.dtype).is_integer:
        return STEP_COUNTERS
    return OTHER_STATE


@dataclass
class VariableAccount:
    """Where the variables of `source` went: frozen into constants, kept as variables, or not carried over."""

    source: str
    stored: Tally = field(default_factory=Tally)
    frozen: Tally = field(default_factory=Tally)
    kept: Tally = field(default_factory=Tally)
    dropped: dict[str, Tally] = field(default_factory=dict)

    @property
    def not_carried(self) -> Tally:
        return Tally(sum(t.count for t in self.dropped.values()), sum(t.bytes for t in self.dropped.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "stored": self.stored.to_dict(),
            "frozen": self.frozen.to_dict(),
            "kept_as_variables": self.kept.to_dict(),
            "not_carried_over": {
                **self.not_carried.to_dict(),
                "by_kind": {kind: self.dropped[kind].to_dict() for kind in STATE_KINDS if kind in self.dropped},
            },
        }


def declared_spec(node: Any) -> tuple[int, tuple[int, ...] | None] | None:
    """The dtype (`DataType` enum) and shape a variable node declares; the shape is None when not fully known.
    None for a node that is not a variable or declares nothing (a resource placeholder without handle data)."""
    attrs = node.attr
    if node.op in VARIABLE_OPS:
        dtype, shapes = int(attrs["dtype"].type), [attrs["shape"].shape]
    elif node.op == "Placeholder" and attrs["dtype"].type == RESOURCE and attrs["_handle_dtypes"].list.type:
        dtype, shapes = int(attrs["_handle_dtypes"].list.type[0]), list(attrs["_handle_shapes"].list.shape[:1])
    else:
        return None
    if not shapes or shapes[0].unknown_rank or any(dim.size < 0 for dim in shapes[0].dim):
        return dtype, None
    return dtype, tuple(int(dim.size) for dim in shapes[0].dim)


def is_variable_node(node: Any) -> bool:
    """True for `VariableV2`/`Variable`/`VarHandleOp` nodes and resource `Placeholder`s."""
    return node.op in VARIABLE_OPS or (node.op == "Placeholder" and node.attr["dtype"].type == RESOURCE)


_REF_OFFSET = 100  # DataType enums of ref types are the base type + 100
_VARIABLE_MACHINERY = re.compile(
    r"^(VariableV2|Variable|VarHandleOp|_VarHandlesOp|ReadVariableOp|_ReadVariablesOp|ResourceGather(Nd)?|"
    r"VariableShape|VarIsInitializedOp|IsVariableInitialized|DestroyResourceOp|Assign\w*|Ref[A-Z]\w*|"
    r"(Resource)?(Sparse)?Apply\w+|(Resource)?Scatter\w+)$"
)


def _bad_types(attrs: Any) -> list[str]:
    found = []
    for key, value in attrs.items():
        types = [value.type] if value.HasField("type") else list(value.list.type) if value.HasField("list") else []
        if any(dtype == RESOURCE or dtype > _REF_OFFSET for dtype in types):
            found.append(key)
    return found


def variable_leftovers(graph_def: Any) -> list[str]:
    """What in `graph_def` still belongs to variables: variable ops, reads and updates (`Assign*`, `Ref*`,
    `*Apply*`, `*Scatter*`), resource or ref types in node attrs, and resource arguments or results of library
    functions (their bodies checked the same way). Empty for a fully frozen graph."""
    found = []
    for where, nodes in [("", graph_def.node)] + [
        (f"{function.signature.name}/", function.node_def) for function in graph_def.library.function
    ]:
        for node in nodes:
            if _VARIABLE_MACHINERY.match(node.op):
                found.append(f"{where}{node.name}: {node.op}")
            elif node.op == "Placeholder" and node.attr["dtype"].type == RESOURCE:
                found.append(f"{where}{node.name}: resource placeholder")
            bad = _bad_types(node.attr)
            if bad:
                found.append(f"{where}{node.name}: resource or ref type in {', '.join(bad)}")
    for function in graph_def.library.function:
        signature = function.signature
        for arg in [*signature.input_arg, *signature.output_arg]:
            if arg.type == RESOURCE or arg.type > _REF_OFFSET:
                found.append(f"{signature.name}: argument {arg.name} is a resource or ref")
    return found
