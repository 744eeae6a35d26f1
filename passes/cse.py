"""`cse`: common subexpression elimination: merge nodes that compute the same thing from the same inputs.

Contract
- Two nodes are the same when they have the same op, device and attrs (every attr, compared by its serialized
  bytes; `_class` colocation and `_`-prefixed attrs included), read the same data inputs in the same order (inputs
  that were merged count as the same), and have the same set of control inputs. A `Const` is compared by its value:
  dtype, shape and bytes, however the proto encodes them (`-0.0` and `0.0` differ; equal NaN bits are equal).
  For commutative ops (`AddV2`, `Mul`, `Maximum`, `Minimum`, ... on numbers) the two data inputs count in either
  order.
- Never merged: stateful ops and ops TensorFlow does not know (`opinfo.is_stateful`), ops that take a random
  seed (`opinfo.takes_seed`: `FractionalMaxPool` draws its pooling regions yet is not stateful), placeholders and
  graph inputs (fed values), control-flow primitives (`Switch`, `Merge`, `Enter`, `Exit`, `NextIteration`,
  `LoopCond`, ...: they carry frames and dead-ness), nodes that read a ref tensor (a TF1 variable read sees the
  value at its own time), and nodes with a function-valued attr their op declares (`f`, `then_branch`, ...) or a
  library function as op (a function may hide state).
- Of two equal nodes one survives: the one first in topological order, unless only the other holds a graph output,
  then that one. The other's data readers read the survivor, its control consumers wait on the survivor, and it is
  removed. Two equal graph outputs both stay (their names are the interface), but their readers still merge.
- Linear in the graph: one walk in topological order, each node hashed by (op, attrs, input classes) into a table;
  never pairwise comparison. A node reading an input nothing else reads cannot have a twin until that input's
  class gains a member: it is hashed only then. One run reaches a fixed point.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optimizer import Graph, Pass, PassContext, Tensor, opinfo
from optimizer.opinfo import ARGUMENT_OPS, CONTROL_FLOW_OPS
from optimizer.patterns import const_value, topological_order
from optimizer.tensor import element_count

COMMUTATIVE_OPS = frozenset(
    {
        "Add",
        "AddV2",
        "Mul",
        "Maximum",
        "Minimum",
        "Equal",
        "NotEqual",
        "LogicalAnd",
        "LogicalOr",
        "BitwiseAnd",
        "BitwiseOr",
        "BitwiseXor",
        "SquaredDifference",
    }
)
_STRING = 7  # DataType DT_STRING: `Add` of strings concatenates, which does not commute

Key = tuple[object, ...]


@functools.cache
def _op_refusal(op: str) -> str | None:
    """Why no node of `op` is ever merged, or None."""
    if op in ARGUMENT_OPS:
        return "it is a placeholder"
    if op in CONTROL_FLOW_OPS:
        return "it is a control-flow primitive"
    if opinfo.is_stateful(op):
        return "it is stateful or unknown"
    if opinfo.takes_seed(op):
        return "it draws random numbers"
    return None


@functools.cache
def _may_call(op: str) -> bool:
    """False when `op`'s OpDef declares no function-valued attr (other attrs never run a function); True for an
    op TensorFlow does not know or one named after a library function."""
    definition = opinfo.op_def(op)
    return definition is None or any(attr.type in ("func", "list(func)") for attr in definition.attr)


@functools.cache
def _plain(op: str) -> bool:
    """True when no node of `op` is refused for its op (not a refused op, and no function-valued attr declared)."""
    return _op_refusal(op) is None and not _may_call(op)


def merge_refusal(graph: Graph, name: str, ref_ops: Collection[str] | None = None) -> str | None:
    """Why `name` must never be merged with another node, or None. `ref_ops`, when given, are the graph's ops
    with a ref output (`ref_ops_of`), found once for many calls."""
    if graph.is_graph_input(name):
        return "it is a graph input (fed)"
    op = graph.op(name)
    if not _plain(op):
        reason = _op_refusal(op)
        if reason is not None:
            return reason
        for attr in graph.node(name).attrs.values():  # the op may call a function
            kind = attr.WhichOneof("value")
            if kind == "func" or (kind == "list" and attr.list.func):
                return "it calls a function"
    if ref_ops is None:
        ref_ops = ref_ops_of(graph)
    if ref_ops and any(key >= 0 and graph.op(source) in ref_ops for source, key, _ in graph.in_edges(name)):
        return "it reads a ref tensor"
    return None


def ref_ops_of(graph: Graph) -> frozenset[str]:
    """The ops in `graph` with a ref output (TF1 variables and their plumbing)."""
    return frozenset(op for op in graph.op_counts() if opinfo.has_ref_output(op))


DECODE_LIMIT = 4096
"""Constants with more elements are compared by their serialized bytes, never decoded: weights stay bytes (two
large constants are written the same way, `tensor_content`, when their values are equal)."""


SMALL_BYTES = 256
"""A numeric constant of at most this many bytes is keyed by its bytes themselves, not a digest of them."""


def _const_digest(graph: Graph, name: str) -> bytes | tuple[str, tuple[int, ...], bytes]:
    """A key of a Const's value: dtype, shape and bytes (decoded only for small constants, whose encodings
    vary; the bytes themselves when few, else a digest); the serialized proto for large ones and for those with
    no numpy form."""
    proto = graph.node(name).attrs["value"]
    value = const_value(graph, Tensor(name)) if element_count(proto.tensor) <= DECODE_LIMIT else None
    if value is None:
        return b"proto:" + hashlib.sha256(proto.SerializeToString(deterministic=True)).digest()
    if value.dtype != object and value.nbytes <= SMALL_BYTES:
        return (value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes())
    digest = hashlib.sha256(f"{value.dtype.str}{value.shape}".encode())
    if value.dtype == object:
        for item in value.reshape(-1):
            data = item if isinstance(item, bytes) else str(item).encode()
            digest.update(len(data).to_bytes(8, "little") + data)
    else:
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.digest()


MEMO_BYTES = 1024
"""A Const whose serialized value is at most this many bytes has its key remembered by those bytes: equal encodings
(the common case: the same constant written many times) are decoded once."""

REMEMBERED_ELEMENTS = 256
"""A Const with more elements has its key remembered across runs, in `Graph.memo` (`_DIGESTS`), while it keeps
its proto and no attr of it changes (`Graph.retypes_of`): a pipeline runs cse several times, and hashing weights
again each time cost a small model a tenth of its time. A node already remembered is keyed without asking its
proto's `ByteSize` (which writes the whole weight out)."""

_DIGESTS = "cse.digests"  # the key in `Graph.memo`: node -> (its proto, its retypes, `_const_digest`)


def _attrs_key(attrs: Any, skip: str) -> tuple[tuple[str, bytes], ...]:
    """Every attr but `skip`, in name order, with its serialized bytes."""
    names = sorted(attrs) if len(attrs) > 1 else list(attrs)
    return tuple([(key, attrs[key].SerializeToString(deterministic=True)) for key in names if key != skip])


@dataclass
class _Table:
    """Equivalence classes of nodes: class id per node, the surviving node per class, and the hash table."""

    graph: Graph
    class_of: dict[str, int]
    survivor: dict[int, str]
    table: dict[Key, int]
    deferred: dict[int, list[str]] = field(default_factory=dict)  # see `exclusive_class`
    shared: set[int] = field(default_factory=set)  # classes that keep more than one node (equal graph outputs)
    ref_ops: frozenset[str] = frozenset()  # see `merge_refusal`
    const_keys: dict[bytes, object] = field(default_factory=dict)  # see `MEMO_BYTES`
    sourceless_keys: dict[bytes, Key] = field(default_factory=dict)  # see `key`
    digests: dict[str, tuple[Any, int, object]] = field(default_factory=dict)  # see `REMEMBERED_ELEMENTS`

    def fresh(self, name: str) -> None:
        self.class_of[name] = len(self.survivor)
        self.survivor[self.class_of[name]] = name

    def exclusive_class(self, name: str) -> int | None:
        """The class of a data input of `name` whose node nothing else reads and is the only node its class
        keeps, if any. Until another node joins that class, no node can have the same inputs as `name`: it is not
        hashed but deferred, and hashed into the table (`join`) only when its class gains a member."""
        graph = self.graph
        for source, keys in graph.edges_into(name).items():
            if graph.has_one_out_edge(source) and next(iter(keys)) >= 0 and self.class_of[source] not in self.shared:
                return self.class_of[source]
        return None

    def join(self, name: str, cls: int) -> None:
        """`name` joins class `cls`: the readers deferred on `cls` now may have twins, so they enter the table."""
        self.class_of[name] = cls
        for reader in self.deferred.pop(cls, ()):
            if reader in self.graph and merge_refusal(self.graph, reader, self.ref_ops) is None:
                self.table.setdefault(self.key(reader), self.class_of[reader])

    def key(self, name: str) -> Key:
        """`name`'s hash key: op, device, attrs, the classes of its data inputs and of its control inputs; for a
        Const, its value (`const_key`). That of a small node without inputs is remembered by its serialized
        NodeDef less the name (see `MEMO_BYTES`): the same constant written many times is keyed once."""
        graph = self.graph
        proto = graph.node(name).proto
        if graph.edges_into(name) or name in self.digests or proto.ByteSize() > MEMO_BYTES:
            return self._key(name, proto)
        written = _without_name(proto.SerializeToString(deterministic=True))
        found = self.sourceless_keys.get(written)
        if found is None:
            found = self.sourceless_keys[written] = self._key(name, proto)
        return found

    def _key(self, name: str, proto: Any) -> Key:
        graph, class_of = self.graph, self.class_of
        op, attrs = proto.op, proto.attr
        indexed: list[tuple[int, int, int]] = []
        controls: set[int] = set()
        for source, keys in graph.edges_into(name).items():
            for key, edge in keys.items():
                if key >= 0:
                    indexed.append((key, class_of[source], edge["port"]))
                else:
                    controls.add(class_of[source])
        if len(indexed) > 1:
            indexed.sort()
        data = [(cls, port) for _, cls, port in indexed]
        if op in COMMUTATIVE_OPS and len(data) == 2 and ("T" not in attrs or attrs["T"].type != _STRING):
            data.sort()
        if op != "Const":
            return (op, proto.device, _attrs_key(attrs, ""), tuple(data), frozenset(controls), None)
        return (op, proto.device, _attrs_key(attrs, "value"), tuple(data), frozenset(controls), self.const_key(name))

    def const_key(self, name: str) -> object:
        """`_const_digest`, remembered by the serialized value for small constants (see `MEMO_BYTES`), by node
        across runs for large ones (see `REMEMBERED_ELEMENTS`)."""
        proto = self.graph.node(name).proto
        if _remembered(proto):
            retypes = self.graph.retypes_of(name)
            entry = self.digests.get(name)
            if entry is None or entry[0] is not proto or entry[1] != retypes:
                entry = self.digests[name] = (proto, retypes, _const_digest(self.graph, name))
            return entry[2]
        value = proto.attr["value"]
        if value.ByteSize() > MEMO_BYTES:
            return _const_digest(self.graph, name)
        data = value.SerializeToString(deterministic=True)
        found = self.const_keys.get(data)
        if found is None:
            found = self.const_keys[data] = _const_digest(self.graph, name)
        return found


def _remembered(proto: Any) -> bool:
    """True for a Const whose key is remembered across runs (see `REMEMBERED_ELEMENTS`)."""
    return bool(
        proto.op == "Const"
        and "value" in proto.attr
        and element_count(proto.attr["value"].tensor) > REMEMBERED_ELEMENTS
    )


def _remembered_digests(graph: Graph) -> dict[str, tuple[Any, int, object]]:
    """The graph's remembered constant keys (see `REMEMBERED_ELEMENTS`), less those of nodes that went or changed
    since (so that no removed weight is kept alive)."""
    digests: dict[str, tuple[Any, int, object]] = graph.memo.setdefault(_DIGESTS, {})
    for name, (proto, retypes, _) in list(digests.items()):
        if name not in graph or graph.node(name).proto is not proto or graph.retypes_of(name) != retypes:
            del digests[name]
    return digests


def _without_name(written: bytes) -> bytes:
    """A serialized NodeDef less its leading `name` field (field 1, written first when there is one)."""
    if not written.startswith(b"\x0a"):
        return written
    if written[1] < 0x80:  # a name under 128 bytes: one length byte
        return written[2 + written[1] :]
    length, shift, offset = 0, 0, 1
    while True:
        byte = written[offset]
        offset += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return written[offset + length :]


def eliminate_common_subexpressions(graph: Graph, ctx: PassContext) -> int:
    """Merge equal nodes (see the module docstring); return how many nodes were removed."""
    state = _Table(graph, {}, {}, {}, ref_ops=ref_ops_of(graph), digests=_remembered_digests(graph))
    class_of, survivor, table, deferred = state.class_of, state.survivor, state.table, state.deferred
    classified = class_of.keys()
    debug = ctx.logger.isEnabledFor(logging.DEBUG)
    removed = 0
    for name in topological_order(graph):  # a node removed is either this one or one visited before
        inputs = graph.edges_into(name)
        if inputs:
            if not classified >= inputs.keys():
                state.fresh(name)
                continue
            exclusive = state.exclusive_class(name)
            if exclusive is not None:
                state.fresh(name)
                deferred.setdefault(exclusive, []).append(name)
                continue
        if merge_refusal(graph, name, state.ref_ops) is not None:
            state.fresh(name)
            continue
        key = state.key(name)
        cls = table.get(key)
        if cls is None:
            state.fresh(name)
            table[key] = class_of[name]
            continue
        state.join(name, cls)
        keep = survivor[cls]
        if graph.is_protected(name):
            if graph.is_protected(keep):
                state.shared.add(cls)
                continue  # both are the interface: both stay, and their readers share this class
            keep, name = name, keep
            survivor[cls] = keep
        if not ctx.allow_rewrite():
            return removed
        graph.move_readers(name, keep)
        graph.remove(name)
        state.digests.pop(name, None)
        removed += 1
        if debug:
            ctx.logger.debug("cse: %s merged into %s", name, keep)
    return removed


@dataclass(frozen=True)
class CommonSubexpressions(Pass):
    """Merge nodes with the same op, attrs and inputs; see the module docstring."""

    name = "cse"
    idempotent = True

    def run(self, graph: Graph, ctx: PassContext) -> None:
        removed = eliminate_common_subexpressions(graph, ctx)
        if removed:
            ctx.logger.info("cse: %d node(s) merged away", removed)
