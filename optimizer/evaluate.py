"""The constant-evaluation engine: compute tensors whose inputs are all constant, with TensorFlow's own kernels.

Contract
- `evaluate(graph, fetches, known)` builds one small GraphDef, the frontier: the fetched nodes and what they read
  through data edges, down to `Const` nodes and to the tensors whose values `known` gives (such as materialized
  shapes), plus the library functions they call; and computes every fetch in ONE TensorFlow call (a session
  over that GraphDef, on the CPU, with Grappler and the classic graph optimizer off so that the kernels compute
  exactly what they compute at run time). Never one session per node. Fetches that `optimizer.exact` vouches
  for (element-wise `+ - * /` and negation of small float/int constants, bit for bit what TF computes) are
  computed with numpy first and never reach TensorFlow: its executor costs tens of microseconds a node.
- It never executes an unsafe op: every node of the frontier other than `Const` must pass `foldable.refusal`,
  and no graph input (a placeholder, or any node the caller feeds) may be part of it; otherwise `NotFoldable` is
  raised before anything runs. Control edges are left out of the frontier: they order execution, they do not
  change values.
- When the one call fails (an op rejects its constant inputs, say in a branch that never runs), the fetches are
  split in halves and each half is retried, so that one bad node costs a few extra calls, not the batch; the
  failing fetches come back in `failures` with TensorFlow's message.
- `frontier_shapes(graph, fetches, known)` gives the static dtype and shape of fetches from the same frontier,
  imported but not run (those `optimizer.exact` computes, from their small values): a caller's size guard
  decides from it before anything big is computed. The import happens in the child process too: TensorFlow's
  shape inference evaluates small constant subgraphs on its own (the axes of a `Sum` over `Range(Rank(x))` run
  `x`'s producer), so a `ParseTensor` claiming gigabytes would otherwise allocate them here. When the child fails
  on it, `NotFoldable` is raised. Given an `Imported`, it keeps the exact values and the frontier's GraphDef
  there, and `evaluate` given the same `Imported` runs that GraphDef (the child keeps its last import, so it is
  imported once) when it holds every fetch and the known values are a subset of those it was built with; the
  graph must not have changed in between.
- TensorFlow runs in the limited child process (`optimizer.sandbox`, stage `fold`). When the child crashes or
  exceeds its memory limit, the fetches are split in halves and retried like a TensorFlow error, up to
  `MAX_CHILD_FAILURES` failures per `evaluate` call (each costs a fresh child); a time-out is not retried. What
  is left uncomputed comes back in `failures` with the child's one line (logged as a warning): a hostile node
  costs its batch, never the run.
- `max_result_bytes` bounds what comes back: the child sends values in fetch order while their total size
  (`value_bytes`) stays within it, and reports the others as failures ("over the budget"), so that a value whose
  size depends on values (`Fill`, `RaggedRange`, `ParseTensor`, ...) cannot flood this process.
- Values come back as numpy arrays with their TensorFlow dtype, exactly as TF computed them. `to_tensor_proto`
  encodes one for a `Const`: an array whose elements are all bitwise equal is stored as one value and a shape
  (TensorFlow repeats the last value), anything else in full.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optimizer import foldable, sandbox
from optimizer._tf import tensorflow
from optimizer.exact import exact_values
from optimizer.ir import COLOCATION_ATTR, Graph, Tensor
from optimizer.library import referenced_library
from optimizer.protos import GraphDef, TensorProto
from optimizer.tensor import from_numpy
from optimizer.tf_errors import describe
from optimizer.tf_import import LazyImport

log = logging.getLogger(__name__)


RUN_CHUNK = 4096
"""At most this many fetches per `Session.run` call of one frontier."""
MAX_CHILD_FAILURES = 4
"""How many times one `evaluate` call retries halves after the child crashed or ran out of memory."""
OVER_BUDGET = "its value is over the budget of bytes left for folding"
"""The failure of a fetch whose value the child computed but did not send back (see `max_result_bytes`)."""


def value_bytes(value: np.ndarray) -> int:
    """The bytes `value` holds: its buffer, or for strings the sum of their lengths."""
    if value.dtype == object:
        return sum(len(item) if isinstance(item, bytes | str) else 8 for item in value.reshape(-1))
    return int(value.nbytes)


class NotFoldable(ValueError):
    """A fetch depends on something that must not be executed or is not constant."""


@dataclass
class Imported:
    """A frontier `frontier_shapes` imported (in the child), for `evaluate` to run (see the contract)."""

    graph_def: GraphDef | None = None  # what the child imported
    names: frozenset[str] = frozenset()  # its nodes
    known: frozenset[Tensor] = frozenset()
    exact: dict[Tensor, np.ndarray] | None = None  # the fetches `optimizer.exact` computed

    def holds(self, fetches: Sequence[Tensor], known: Mapping[Tensor, TensorProto]) -> bool:
        if self.graph_def is None or not set(known) <= self.known:
            return False
        return all(tensor.node in self.names for tensor in fetches)


@dataclass
class Evaluation:
    """What one `evaluate` call computed: values and TF dtypes per fetch, failures, and TF calls made."""

    values: dict[Tensor, np.ndarray] = field(default_factory=dict)
    dtypes: dict[Tensor, Any] = field(default_factory=dict)
    failures: dict[Tensor, str] = field(default_factory=dict)
    calls: int = 0

    def proto(self, tensor: Tensor) -> TensorProto:
        """The value of `tensor` as a TensorProto (see `to_tensor_proto`)."""
        return to_tensor_proto(self.values[tensor], self.dtypes[tensor])


def frontier_graph_def(
    graph: Graph, fetches: Sequence[Tensor], known: Mapping[Tensor, TensorProto] | None = None
) -> GraphDef:
    """The GraphDef that computes `fetches` from constants and `known` values; raises NotFoldable."""
    known = known or {}
    known_names = {tensor: graph.unique_name(f"{tensor.node}/_known_{tensor.port}") for tensor in known}
    closure: set[str] = set()
    used_known: set[Tensor] = set()
    stack = [tensor.node for tensor in fetches if tensor not in known]
    while stack:
        name = stack.pop()
        if name in closure:
            continue
        if graph.is_graph_input(name):
            raise NotFoldable(f"{name} is a graph input: its value is fed, not constant")
        closure.add(name)
        proto = graph.node(name).proto
        if proto.op in foldable.CONSTANT_OPS:
            continue
        reason = foldable.refusal(proto, graph.library)
        if reason is not None:
            raise NotFoldable(f"{name}: {reason}")
        for tensor in graph.inputs_of(name):
            if tensor in known:
                used_known.add(tensor)
            else:
                stack.append(tensor.node)
    graph_def = GraphDef()
    graph_def.versions.CopyFrom(graph.versions)
    for tensor in sorted(used_known):
        node = graph_def.node.add(name=known_names[tensor], op="Const")
        node.attr["dtype"].type = known[tensor].dtype
        node.attr["value"].tensor.CopyFrom(known[tensor])
    for name in graph:  # graph order, for a readable frontier
        if name not in closure:
            continue
        out = graph_def.node.add()
        out.CopyFrom(graph.node(name).proto)
        del out.input[:]  # as lifted, or empty: the edges say
        out.device = ""
        if COLOCATION_ATTR in out.attr:
            del out.attr[COLOCATION_ATTR]
        out.input.extend(
            f"{known_names[tensor]}:0" if tensor in known else str(tensor) for tensor in graph.inputs_of(name)
        )
    if len(graph.library.function):
        graph_def.library.CopyFrom(referenced_library(graph_def.node, graph.library))
    return graph_def


def _session_config() -> Any:
    from tensorflow.core.protobuf import config_pb2

    config = config_pb2.ConfigProto(device_count={"GPU": 0})
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    config.graph_options.optimizer_options.opt_level = config_pb2.OptimizerOptions.L0
    return config


def frontier_shapes(
    graph: Graph,
    fetches: Sequence[Tensor],
    known: Mapping[Tensor, TensorProto] | None = None,
    keep: Imported | None = None,
) -> dict[Tensor, tuple[int, tuple[int | None, ...] | None]]:
    """The static dtype (`DataType` enum) and shape (None: unknown rank) of each fetch, from TensorFlow's shape
    inference over the frontier (an import in the child process, nothing runs): what a size guard reads before
    evaluating. When the import fails, the fetches are split in halves; a fetch whose own frontier does not
    import is left out. Raises NotFoldable when the child crashes or exceeds its limits on the import."""
    tf = tensorflow()
    wanted = [tensor for tensor in dict.fromkeys(fetches) if not known or tensor not in known]
    exact = exact_values(graph, wanted, known)
    if keep is not None:
        keep.exact = exact
    found: dict[Tensor, tuple[int, tuple[int | None, ...] | None]] = {
        tensor: (int(tf.as_dtype(value.dtype).as_datatype_enum), value.shape) for tensor, value in exact.items()
    }
    wanted = [tensor for tensor in wanted if tensor not in exact]
    batches = [wanted] if wanted else []
    while batches:
        batch = batches.pop()
        frontier = frontier_graph_def(graph, batch, known)  # NotFoldable goes to the caller
        try:
            static = sandbox.call("fold", _static_serialized, frontier.SerializeToString(), [str(t) for t in batch])
        except sandbox.ChildFailure as failure:
            raise NotFoldable(f"inferring the shapes of {len(batch)} node(s): {failure}") from None
        except Exception:  # a shape function rejects its constant inputs somewhere in this batch
            if len(batch) > 1:
                batches.extend([batch[len(batch) // 2 :], batch[: len(batch) // 2]])
            continue
        if keep is not None and len(batch) == len(wanted):
            keep.graph_def, keep.known = frontier, frozenset(known or ())
            keep.names = frozenset(node.name for node in frontier.node)
        for tensor in batch:
            if str(tensor) in static:
                found[tensor] = static[str(tensor)]
    return found


_last_import: tuple[bytes, LazyImport] | None = None
"""In the child: the frontier imported last, by the digest of its bytes (`evaluate` runs what `frontier_shapes`
imported without importing it again)."""


def _import_serialized(data: bytes) -> LazyImport:
    """In the child: `data` imported, or the last import when it was the same bytes."""
    global _last_import
    digest = hashlib.sha256(data).digest()
    if _last_import is None or _last_import[0] != digest:
        _last_import = None  # the previous graph goes before the next is built
        _last_import = (digest, LazyImport(GraphDef.FromString(data)))
    return _last_import[1]


def _static_serialized(data: bytes, fetches: Sequence[str]) -> dict[str, tuple[int, tuple[int | None, ...] | None]]:
    """In the child: import the frontier and return each fetch's static dtype enum and shape (left out when the
    import does not have it); an import error is raised as one line."""
    try:
        imported = _import_serialized(data)
    except Exception as error:
        raise RuntimeError(describe(error)) from None
    found = {}
    for fetch in fetches:
        static = imported.tensor(Tensor.parse(fetch))
        if static is not None:
            shape = None if static.shape.rank is None else tuple(static.shape.as_list())
            found[fetch] = (int(static.dtype.as_datatype_enum), shape)
    return found


def run_frontier(
    graph_def: GraphDef, fetches: Sequence[Tensor], max_result_bytes: int | None = None
) -> tuple[list[np.ndarray | None], list[Any]]:
    """Run `graph_def` once on the CPU, in the limited child process (`optimizer.sandbox`), and return the fetched
    values (None for a value over `max_result_bytes`, see the contract) and their TF dtypes; raises
    `sandbox.ChildFailure` when the child crashes or exceeds its limits."""
    node = fetches[0].node if len(fetches) == 1 else None
    values, dtypes = sandbox.call(
        "fold",
        _run_serialized,
        graph_def.SerializeToString(),
        [str(fetch) for fetch in fetches],
        max_result_bytes,
        node=node,
    )
    tf = tensorflow()
    return values, [tf.as_dtype(dtype) for dtype in dtypes]


def _run_serialized(
    data: bytes, fetches: Sequence[str], max_result_bytes: int | None = None
) -> tuple[list[np.ndarray | None], list[int]]:
    """In the child: import the frontier, run it, return values (within `max_result_bytes` together, None past
    it) and dtype enums (TF errors as one-line text)."""
    try:
        imported = _import_serialized(data)
        tensors = []
        for fetch in fetches:
            tensor = imported.tensor(Tensor.parse(fetch))
            if tensor is None:
                raise ValueError(f"{fetch} is not in the imported frontier")
            tensors.append(tensor)
        values: list[np.ndarray | None] = []
        left = max_result_bytes
        with tensorflow().compat.v1.Session(graph=imported.graph, config=_session_config()) as session:
            for start in range(0, len(tensors), RUN_CHUNK):  # TF's executor grows superlinearly with one huge run
                for value in session.run(tensors[start : start + RUN_CHUNK]):
                    array = np.asarray(value)
                    size = value_bytes(array) if left is not None else 0
                    if left is not None and size > left:
                        values.append(None)  # computed here, never sent
                        continue
                    left = None if left is None else left - size
                    values.append(array)
    except Exception as error:
        raise RuntimeError(describe(error)) from None
    return values, [int(tensor.dtype.as_datatype_enum) for tensor in tensors]


def evaluate(
    graph: Graph,
    fetches: Sequence[Tensor],
    known: Mapping[Tensor, TensorProto] | None = None,
    imported: Imported | None = None,
    max_result_bytes: int | None = None,
) -> Evaluation:
    """Compute `fetches` in one TensorFlow call (more only when it fails); see the module docstring."""
    result = Evaluation()
    known = known or {}
    pending: list[Tensor] = []
    for tensor in dict.fromkeys(fetches):
        if tensor in known:
            tf = tensorflow()
            result.values[tensor] = np.asarray(tf.make_ndarray(known[tensor]))
            result.dtypes[tensor] = tf.as_dtype(known[tensor].dtype)
        else:
            pending.append(tensor)
    exact = imported.exact if imported is not None and imported.exact is not None else None
    if exact is None:
        exact = exact_values(graph, pending, known)
    for tensor in pending:
        if tensor in exact:
            result.values[tensor] = exact[tensor]
            result.dtypes[tensor] = tensorflow().as_dtype(exact[tensor].dtype)
    pending = [tensor for tensor in pending if tensor not in exact]
    # Refuse the whole request before running anything when any part of it is unsafe (an `Imported` that holds
    # the fetches was refused or accepted when `frontier_shapes` built it).
    prepared: GraphDef | None = None
    if pending:
        reuse = imported is not None and imported.holds(pending, known)
        prepared = imported.graph_def if reuse and imported is not None else frontier_graph_def(graph, pending, known)
    batches: list[tuple[list[Tensor], GraphDef | None]] = [(pending, prepared)] if pending else []
    budget = max_result_bytes
    child_failures = 0
    while batches:
        batch, prepared = batches.pop()
        result.calls += 1
        try:
            values, dtypes = run_frontier(
                prepared if prepared is not None else frontier_graph_def(graph, batch, known), batch, budget
            )
        except sandbox.ChildFailure as failure:
            child_failures += 1
            timed_out = "time limit" in failure.cause  # a retry could cost the limit again: leave them all
            if len(batch) > 1 and not timed_out and child_failures <= MAX_CHILD_FAILURES:
                half = len(batch) // 2
                batches.extend([(batch[half:], None), (batch[:half], None)])
                continue
            log.warning("fold: left %d node(s) unfolded: %s", len(batch), failure)
            result.failures.update(dict.fromkeys(batch, str(failure)))
            continue
        except Exception as error:  # TensorFlow raises many types; any of them fails this batch only
            if len(batch) == 1:
                result.failures[batch[0]] = describe(error)
                log.debug("cannot evaluate %s: %s", batch[0], result.failures[batch[0]])
                continue
            half = len(batch) // 2
            batches.extend([(batch[half:], None), (batch[:half], None)])
            continue
        for tensor, value, dtype in zip(batch, values, dtypes, strict=True):
            if value is None:
                result.failures[tensor] = OVER_BUDGET
                continue
            if budget is not None:
                budget -= value_bytes(value)
            result.values[tensor] = value
            result.dtypes[tensor] = dtype
    return result


def _all_bitwise_equal(array: np.ndarray) -> bool:
    flat = np.ascontiguousarray(array).reshape(-1)
    if flat.dtype == object:
        first = flat[0]
        return all(type(item) is type(first) and item == first for item in flat)
    rows = flat.view(np.uint8).reshape(flat.size, -1)
    return bool((rows == rows[0]).all())


def to_tensor_proto(value: Any, dtype: Any) -> TensorProto:
    """A TensorProto of `value` as TF `dtype`; all-equal arrays are stored as one value and a shape."""
    tf = tensorflow()
    dtype = tf.as_dtype(dtype)
    array = np.asarray(value)
    as_is = array.dtype == dtype.as_numpy_dtype  # then the numpy dtype says it all (`from_numpy`'s fast path)
    if array.size > 1 and _all_bitwise_equal(array):
        proto = from_numpy(array.reshape(-1)[:1].reshape(()), None if as_is else dtype)
        del proto.tensor_shape.dim[:]
        for size in array.shape:
            proto.tensor_shape.dim.add(size=size)
        return proto
    return from_numpy(array, None if as_is else dtype)
