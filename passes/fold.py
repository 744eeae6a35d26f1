"""`fold`: constant folding, shape materialization, and dead-branch removal for constant conditions.

Contract
- Constant folding. A node is folded when it passes the safety policy (`optimizer.foldable`: never stateful,
  random, file/reader/queue/table, `ImmutableConst`, `PyFunc`, quantization, unknown ops, nor ops with ref,
  resource or variant tensors), every data input is a constant or itself folds, and every control input is a
  `Const`. Graph inputs are never constants (a fed `Const` is not constant). All values a run needs are computed
  by `optimizer.evaluate` in one TensorFlow call per round, with TensorFlow's own kernels.
- Names. A folded single-output node becomes a `Const` under its own name (device kept), so nothing downstream is
  rewired and `^name` control edges keep working; a graph output folds in place the same way. Only outputs that
  something outside the folded set reads are computed: for a multi-output node each used output `k` becomes a new
  `Const` `node/port_k`, its uses are rewired and the node goes, provided that this does not grow the graph (no
  more used outputs than the node and the constants only it reads); a multi-output graph output stays as it is.
- Control edges. The new `Const` keeps the conditions under which the node ran: it takes, transitively, the
  non-constant control inputs of the constants it was computed from (`^cond/switch_t` of a constant in a `tf.cond`
  branch, the pivot of a loop body), and drops the rest. A control edge from a `Const` without control inputs
  carries nothing and is dropped everywhere (the constant goes when nothing else uses it).
- Size guard, decided before evaluating from TensorFlow's static shapes of the frontier (an import of the constant
  subgraph only, so an unknown op elsewhere cannot blind it): a node whose output is over `max-bytes` (default
  10 MiB) and larger than all its inputs together is kept, and so is everything that depends on it; the log says
  how to raise the limit (`fold{max-bytes=N}`). A node whose output shape is not static (`Where`, `Unique`,
  `BroadcastGradientArgs`) is evaluated only when its inputs are values at hand (`Const`s, materialized shapes) of
  at most `max-bytes` together, and its result is kept by the same rule.
- Growth guard: the constants of the graph may grow by at most `max-growth` bytes of encoded values in one run
  of the pipeline (default 0: automatic, the larger of 64 MiB and the constants' bytes before the first `fold`;
  the first `fold` of the pipeline sets the ceiling, kept in `PassContext.state`, and later ones share it), so
  that many outputs each under `max-bytes` cannot add up to a memory bomb. Before evaluating, nodes are admitted in
  order while their static output bytes, less those of the constants only they read, fit in what is left; a
  node whose size is not static is admitted, and the child process sends back at most what is left
  (`evaluate`'s `max_result_bytes`). What does not fit is kept, with one warning naming how to raise the limit.
- Shapes. `Shape`, `Size`, `Rank` and `ShapeN` become constants where TensorFlow's shape inference (one import
  of the whole graph per round, when such ops read non-constants) knows the shape of their input (the rank, for
  `Rank`); `BroadcastGradientArgs` and everything else
  computed from them then folds. A `StridedSlice`/`Slice`/`Gather` at constant positions of the `Shape` of a
  tensor whose rank is known folds when it picks only known dimensions (`tf.shape(x)[1]` with a dynamic batch).
  When the input lies inside TF1 control flow the constant keeps a control edge from the input's node; the
  output of a `Switch` is left alone as an input (a control edge cannot name a port).
  `--input-shape` (`optimizer.load(input_shapes=...)`) fixes placeholder shapes to enable more of this.
- `Switch` with a constant scalar predicate (a `Const` without control inputs): uses of the live output read the
  `Switch`'s data input; everything the dead output reaches is removed (a node is dead when a data or control
  input is dead; a `Merge` when all its data inputs are); a `Merge` left with one live input becomes an `Identity`
  of it (same name), its `value_index` output, when used, the constant `merge/port_1`. A `Switch` is left alone
  when its dead side reaches a graph output, a loop (`Enter`, `Exit`, `NextIteration`, `LoopCond`), a `Merge`
  through a control edge, or a used `value_index` of a `Merge` that keeps several inputs.
- `If`/`StatelessIf`/`Case`/`StatelessCase` with a constant condition (or branch index, out of range: the last
  branch): the taken branch is inlined exactly as `inline` inlines a call (`optimizer.inlining.inline_call`: body nodes
  `call/<node>`, uses of the call's outputs read the body's results, control edges kept, a call that holds a graph
  output stays as an `Identity`/`IdentityN` of the results under its name); the branch functions nothing calls any
  more leave the library. Calls inside TF1 control flow and polymorphic branches are left alone.
- One run repeats these steps until nothing changes (at most 8 rounds). Nodes that folding made unused (the folded
  node's constant inputs, a resolved `Switch`) are removed; other dead nodes are left for `prune`.
- Leaves alone: function bodies (folding works on the top-level graph), `Enter` of constants, `Merge`s of
  unresolved conditions, nodes TensorFlow fails to evaluate (kept, logged at debug level).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from optimizer import Graph, Node, Pass, PassContext, Tensor, foldable
from optimizer._tf import tensorflow
from optimizer.evaluate import OVER_BUDGET, Imported, NotFoldable, evaluate, frontier_shapes, to_tensor_proto
from optimizer.inlining import inline_call
from optimizer.library import NotLiftable, Signatures, drop_unreferenced, lift, signatures_of
from optimizer.opinfo import CONDITIONAL_OPS, CONTROL_FLOW_ENTRY_OPS, SWITCH_OPS
from optimizer.protos import PROTOBUF_LIMIT, AttrValue, FunctionDef, TensorProto
from optimizer.shapes import Shape, StaticShapes
from optimizer.tensor import element_count

MAX_ROUNDS = 8
DEFAULT_MAX_BYTES = 10 * 2**20
MIN_AUTOMATIC_GROWTH = 64 * 2**20
"""`max-growth=0` (automatic) lets the constants grow by this much, or by their own size when that is larger."""
SHAPE_OPS = frozenset({"Shape", "Size", "Rank", "ShapeN"})
ELEMENT_PICKS = frozenset({"StridedSlice", "Slice", "Gather", "GatherV2"})
"""Ops whose output only selects elements of their first input at positions fixed by their other inputs."""
_SENTINEL_BASE = -(2**30)
LOOP_OPS = frozenset(
    {"Enter", "RefEnter", "Exit", "RefExit", "NextIteration", "RefNextIteration", "LoopCond", "RefMerge"}
)
_STRING_ELEMENT_BYTES = 32  # what TensorFlow allocates per string element, before the characters


# ----- small helpers -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorInfo:
    """The static dtype (a `DataType` enum) and shape of one tensor, as TensorFlow's shape inference gives them."""

    dtype: int
    shape: Shape | None

    @property
    def fully_defined(self) -> bool:
        return self.shape is not None and all(dim is not None for dim in self.shape)

    def num_elements(self) -> int | None:
        if self.shape is None or not self.fully_defined:
            return None
        return int(np.prod([int(dim or 0) for dim in self.shape], dtype=np.int64))


def static_infos(graph: Graph, tensors: Iterable[Tensor]) -> dict[Tensor, TensorInfo]:
    """Static dtype and shape of `tensors` (missing where unknown), from one shape inference of the graph."""
    static = StaticShapes.of(graph)
    infos = {}
    for tensor in tensors:
        dtype = static.dtype(tensor)
        if dtype is not None:
            infos[tensor] = TensorInfo(dtype, static.shape(tensor))
    return infos


def is_constant(graph: Graph, name: str) -> bool:
    """A `Const` with a value that is not fed: a graph input is never constant."""
    proto = graph.node(name).proto
    return proto.op in foldable.CONSTANT_OPS and "value" in proto.attr and not graph.is_graph_input(name)


def _const_value(graph: Graph, name: str) -> TensorProto:
    """The value of a constant node (an empty proto for any other node: never insert into its attr map)."""
    attrs = graph.node(name).attrs
    return attrs["value"].tensor if "value" in attrs else TensorProto()


def _decode(proto: TensorProto) -> np.ndarray:
    return np.asarray(tensorflow().make_ndarray(proto))


def _dtype_bytes(dtype: object) -> int:
    tf = tensorflow()
    try:
        known = tf.as_dtype(dtype)
    except (TypeError, ValueError):  # a DataType TensorFlow does not know: assume the widest
        return _STRING_ELEMENT_BYTES
    return _STRING_ELEMENT_BYTES if known == tf.string else max(int(known.size), 1)


HARD_LIMIT_BYTES = PROTOBUF_LIMIT
"""No output over protobuf's limit is ever computed, whatever its inputs (a hostile constant declaring 10^12
elements must not make TensorFlow try to allocate terabytes): such a constant could not be written anyway."""


def _proto_bytes(proto: TensorProto) -> int:
    return element_count(proto) * _dtype_bytes(proto.dtype)


def _info_bytes(info: TensorInfo | None) -> int | None:
    if info is None:
        return None
    count = info.num_elements()
    return None if count is None else count * _dtype_bytes(info.dtype)


def _remove_unused(graph: Graph, names: Iterable[str], removable: set[str]) -> None:
    """Remove those of `names` (and, following their inputs, other nodes in `removable` or constants) that
    nothing uses any more and that hold no graph input or output."""
    pending = list(dict.fromkeys(names))
    while pending:
        name = pending.pop()
        if name not in graph or graph.is_used(name) or graph.is_protected(name):
            continue
        if name not in removable and not is_constant(graph, name):
            continue
        sources = [tensor.node for tensor in graph.inputs_of(name)] + graph.control_inputs_of(name)
        graph.remove(name)
        pending.extend(sources)


def constant_bytes(graph: Graph) -> int:
    """The encoded bytes of the values of all `Const` nodes of `graph`."""
    return sum(
        graph.node(name).attrs["value"].tensor.ByteSize()
        for name in graph.nodes_of(foldable.CONSTANT_OPS)
        if "value" in graph.node(name).attrs
    )


@dataclass
class Growth:
    """The growth guard of one pipeline run (see the contract): `ceiling` is the most constant bytes the graph may
    hold; `kept` names the nodes the guard kept (later runs of the pass do not retry them), `reported` how many
    of them a warning has named."""

    ceiling: int
    kept: set[str] = field(default_factory=set)
    reported: int = 0

    @classmethod
    def of(cls, graph: Graph, max_growth: int) -> Growth:
        start = constant_bytes(graph)
        return cls(start + (max_growth or max(MIN_AUTOMATIC_GROWTH, start)))

    def left(self, graph: Graph) -> int:
        return max(self.ceiling - constant_bytes(graph), 0)


# ----- constant folding and shape materialization --------------------------------------------------------------


@dataclass
class _Round:
    """One round of constant folding: what can fold, what it needs, and the values computed."""

    graph: Graph
    max_bytes: int
    failed: set[str] = field(default_factory=set)
    infos: dict[Tensor, TensorInfo] = field(default_factory=dict)
    shape_values: dict[str, list[TensorProto]] = field(default_factory=dict)
    refusals: dict[str, str | None] = field(default_factory=dict)
    materialized: dict[Tensor, TensorProto] = field(default_factory=dict)
    too_large: dict[str, int] = field(default_factory=dict)
    _control_flow_reach: set[str] | None = None

    def refusal(self, name: str) -> str | None:
        if name not in self.refusals:
            self.refusals[name] = foldable.refusal(self.graph.node(name).proto, self.graph.library)
        return self.refusals[name]

    def control_flow_reach(self) -> set[str]:
        """Nodes that TF1 control flow (a `Switch`, `Merge` or `Enter`) reaches: conditional or in a loop frame."""
        if self._control_flow_reach is None:
            seeds = self.graph.nodes_of(CONTROL_FLOW_ENTRY_OPS)
            self._control_flow_reach = self.graph.reachable(seeds)
        return self._control_flow_reach

    def admissible(self, name: str) -> bool:
        """Safe to fold, not an input, and every control input a `Const`."""
        graph = self.graph
        if name in self.failed or graph.is_graph_input(name) or graph.op(name) in foldable.CONSTANT_OPS:
            return False
        if self.refusal(name):
            return False
        return all(is_constant(graph, source) for source in graph.control_inputs_of(name))

    def shape_value(self, name: str) -> list[TensorProto] | None:
        """The values of a shape op whose input shapes are static, one per output; None when not static."""
        graph = self.graph
        op = graph.op(name)
        node = graph.node(name)
        inputs = graph.inputs_of(name)
        if op not in SHAPE_OPS or not inputs:
            return None
        for tensor in inputs:
            if graph.op(tensor.node) in SWITCH_OPS and not is_constant(graph, tensor.node):
                return None  # the constant would need a control edge from one output of a Switch
        tf = tensorflow()
        out_type = tf.as_dtype(node.attrs["out_type"].type) if "out_type" in node.attrs else tf.int32
        values = []
        for tensor in inputs:
            info = self.infos.get(tensor)
            if info is None or info.shape is None:
                return None
            if op == "Rank":
                value: object = len(info.shape)
            elif not info.fully_defined:
                return None
            elif op == "Size":
                value = info.num_elements()
            else:
                value = list(info.shape)
            array = np.asarray(value, dtype=np.int64)
            if out_type == tf.int32 and (array > np.iinfo(np.int32).max).any():
                return None
            values.append(to_tensor_proto(array.astype(out_type.as_numpy_dtype), out_type))
        return values

    def materialize(self) -> None:
        """Compute the values of the shape ops whose input shapes are static (into `shape_values`), inferring the
        shapes of their inputs with one import of the whole graph when any input is not a constant."""
        graph = self.graph
        shape_ops = [name for name in graph.nodes_of(SHAPE_OPS) if self.admissible(name)]
        inputs = {tensor for name in shape_ops for tensor in graph.inputs_of(name)}
        for tensor in inputs:
            if is_constant(graph, tensor.node) and tensor.port == 0:
                value = _const_value(graph, tensor.node)
                dims = None if value.tensor_shape.unknown_rank else tuple(int(d.size) for d in value.tensor_shape.dim)
                self.infos[tensor] = TensorInfo(int(value.dtype), dims)
        unknown = [tensor for tensor in inputs if tensor not in self.infos]
        if unknown:
            self.infos.update(static_infos(graph, unknown))
        for name in shape_ops:
            values = self.shape_value(name)
            if values is not None:
                self.shape_values[name] = values

    def walk(self, guard: bool) -> list[str]:
        """The nodes that fold, in topological order (Kahn's algorithm over data and control edges, from the
        constants; a shape op in `shape_values` does not wait for its data input). With `guard`, the size guard
        applies (it needs `infos` of the nodes the unguarded walk found); that walk fills `materialized`."""
        graph = self.graph
        pending: dict[str, int] = {}  # edges not yet resolved, for each node the walk reached

        def unresolved(name: str) -> int:
            if name not in pending:
                if name in self.shape_values:
                    pending[name] = sum(1 for _, key, _ in graph.in_edges(name) if key < 0)
                else:
                    pending[name] = graph.in_degree(name)
            return pending[name]

        resolved = {name for name in graph.nodes_of(foldable.CONSTANT_OPS) if is_constant(graph, name)}
        ready = deque(sorted(resolved))
        order: list[str] = []
        self.materialized.clear()

        def admit(name: str) -> None:
            resolved.add(name)
            order.append(name)
            ready.append(name)
            for port, value in enumerate(self.shape_values.get(name, [])):
                self.materialized[Tensor(name, port)] = value

        for name in self.shape_values:
            if unresolved(name) == 0:
                admit(name)
        while ready:
            name = ready.popleft()
            for target, _, _ in graph.out_edges(name):
                pending[target] = unresolved(target) - 1
                if pending[target] or target in resolved:
                    continue
                if target in self.shape_values or (
                    self.admissible(target) and (not guard or self.within_limits(target))
                ):
                    admit(target)
        return _data_order(graph, order)

    def partial_shape_picks(self, folded: set[str]) -> dict[str, tuple[Tensor, TensorProto, list[int]]]:
        """Element picks (`ELEMENT_PICKS` with constant positions) of a `Shape` whose input has a static rank but
        some unknown dimensions. Each unknown dimension is stood in for by a sentinel (a negative number no
        dimension can be); a pick whose result holds no sentinel reads only known dimensions and folds.
        Returns pick node -> (the Shape's tensor, the stand-in vector, the sentinels)."""
        graph = self.graph
        found: dict[str, tuple[Tensor, TensorProto, list[int]]] = {}
        for name in graph.nodes_of("Shape"):
            if name in folded or not self.admissible(name):
                continue
            inputs = graph.inputs_of(name)
            info = self.infos.get(inputs[0]) if len(inputs) == 1 else None
            if info is None or info.shape is None or info.fully_defined or graph.op(inputs[0].node) in SWITCH_OPS:
                continue
            tf = tensorflow()
            node = graph.node(name)
            out_type = tf.as_dtype(node.attrs["out_type"].type) if "out_type" in node.attrs else tf.int32
            sentinels = [_SENTINEL_BASE - index for index, dim in enumerate(info.shape) if dim is None]
            unknown = iter(sentinels)
            vector = np.array([next(unknown) if dim is None else dim for dim in info.shape], out_type.as_numpy_dtype)
            stand_in = to_tensor_proto(vector, out_type)
            for _, use in graph.data_consumers(name):
                pick = use.node
                if use.index != 0 or graph.op(pick) not in ELEMENT_PICKS or pick in folded or pick in found:
                    continue
                positions = graph.inputs_of(pick)[1:]
                if all(is_constant(graph, tensor.node) for tensor in positions) and self.admissible(pick):
                    found[pick] = (Tensor(name), stand_in, sentinels)
        return found

    def within_limits(self, name: str) -> bool:
        """The size guard: see the module docstring."""
        graph = self.graph
        inputs = graph.inputs_of(name)
        input_bytes, all_values = 0, True
        for tensor in inputs:
            if is_constant(graph, tensor.node):
                input_bytes += _proto_bytes(_const_value(graph, tensor.node))
            elif tensor in self.materialized:
                input_bytes += _proto_bytes(self.materialized[tensor])
            else:
                input_bytes += _info_bytes(self.infos.get(tensor)) or 0
                all_values = False
        count = graph.num_outputs(name) or 1
        for port in range(count):
            size = _info_bytes(self.infos.get(Tensor(name, port)))
            if size is None:
                # Not static: only from values at hand (constants, materialized shapes), at most max-bytes of them;
                # checked again after evaluating.
                if input_bytes > self.max_bytes or not all_values:
                    return False
                continue
            if (size > self.max_bytes and size > input_bytes) or size > HARD_LIMIT_BYTES:
                self.too_large[name] = max(size, self.too_large.get(name, 0))
                return False
        return True

    def result_too_large(self, tensor: Tensor, value: np.ndarray, dtype: object) -> bool:
        """After evaluating an output whose shape was not static: the same rule as `within_limits`."""
        graph = self.graph
        size = int(value.size) * _dtype_bytes(dtype)
        inputs = sum(
            _proto_bytes(self.materialized[t] if t in self.materialized else _const_value(graph, t.node))
            for t in graph.inputs_of(tensor.node)
        )
        if size > self.max_bytes and size > inputs:
            self.too_large[tensor.node] = max(size, self.too_large.get(tensor.node, 0))
            return True
        return False


def _data_order(graph: Graph, names: list[str]) -> list[str]:
    """`names` reordered so that each comes after those of them it reads (a shape op may have been admitted
    before the node whose shape it takes)."""
    members = set(names)
    pending = {name: sum(1 for source in graph.predecessors(name) if source in members) for name in names}
    ready = deque(name for name in names if pending[name] == 0)
    order: list[str] = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for target in graph.successors(name):
            if target in members:
                pending[target] -= 1
                if pending[target] == 0:
                    ready.append(target)
    return order


def _liveness(graph: Graph, order: list[str], state: _Round, picks: dict[str, str]) -> dict[str, list[str]]:
    """For each folded node, the non-constant nodes its value's availability depends on (see the contract).
    `picks` maps each partial-shape pick to the `Shape` it reads, which stays unfolded."""
    folded = set(order)
    memo: dict[str, list[str]] = {}

    def of_constant(name: str) -> list[str]:
        if name not in memo:
            found: dict[str, None] = {}
            for source in graph.control_inputs_of(name):
                found.update(dict.fromkeys(of_constant(source) if is_constant(graph, source) else [source]))
            memo[name] = list(found)
        return memo[name]

    def of_source(name: str) -> list[str]:
        if is_constant(graph, name):
            return of_constant(name)
        if name in folded:
            return memo[name]
        if name in state.control_flow_reach():
            return [name]  # the input of a materialized shape inside control flow
        return []

    for name in order + list(picks):
        found: dict[str, None] = {}
        sources = [tensor.node for tensor in graph.inputs_of(name)]
        controls = graph.control_inputs_of(name)
        if name in picks:  # read the Shape as the shape ops that fold are read: through its input
            sources = [tensor.node for tensor in graph.inputs_of(picks[name])] + sources[1:]
            controls = controls + graph.control_inputs_of(picks[name])
        for source in sources:
            found.update(dict.fromkeys(of_source(source)))
        for source in controls:
            found.update(dict.fromkeys(of_constant(source)))
        memo[name] = list(found)
    return {name: memo[name] for name in order + list(picks)}


def _make_const(graph: Graph, name: str, proto: TensorProto, control_inputs: list[str]) -> None:
    """Turn `name` into a `Const` holding `proto`, with exactly `control_inputs` (device kept, attrs replaced)."""
    graph.set_inputs(name, [])
    for source in graph.control_inputs_of(name):
        if source not in control_inputs:
            graph.remove_control_input(name, source)
    for source in control_inputs:
        graph.add_control_input(name, source)
    for key in list(graph.node(name).attrs):
        graph.del_attr(name, key)
    graph.set_op(name, "Const")
    graph.set_attr(name, "dtype", AttrValue(type=proto.dtype))
    graph.set_attr(name, "value", AttrValue(tensor=proto))


def fold_constants(
    graph: Graph,
    ctx: PassContext,
    max_bytes: int = DEFAULT_MAX_BYTES,
    failed: set[str] | None = None,
    growth: Growth | None = None,
) -> None:
    """One round of constant folding and shape materialization over `graph`. `failed` collects the nodes that
    TensorFlow could not evaluate (and what they were computed from), so that later rounds do not retry them;
    `growth` is the run's growth guard (a fresh automatic one when None)."""
    failed = set() if failed is None else failed
    growth = Growth.of(graph, 0) if growth is None else growth
    state = _Round(graph, max_bytes, failed)
    state.materialize()
    planned = state.walk(guard=False)
    imported = Imported()
    outputs_of = [
        Tensor(name, port)
        for name in planned
        if name not in state.shape_values
        for port in range(graph.num_outputs(name) or 1)
    ]
    try:
        static = frontier_shapes(graph, outputs_of, state.materialized, imported)
    except NotFoldable as error:  # the walk admits only safe nodes, so this is a bug: keep the graph as it is
        ctx.logger.warning("fold: not folding this round: %s", error)
        return
    for tensor, (dtype, shape) in static.items():
        state.infos[tensor] = TensorInfo(dtype, shape)
    # The guarded walk admits what the first did unless the size guard stops a node: walk again only then.
    guarded = all(state.within_limits(name) for name in planned if name not in state.shape_values)
    order = planned if guarded else state.walk(guard=True)
    _report_too_large(state, ctx)
    folded = set(order)
    picks = state.partial_shape_picks(folded)
    outputs = {tensor for tensor in graph.outputs}
    plans: list[tuple[str, list[int], bool]] = []  # node, ports to materialize, in place
    for name in order + list(picks):
        ports = sorted({port for port, use in graph.data_consumers(name) if use.node not in folded})
        if graph.num_outputs(name) == 1:
            if ports or graph.control_consumers(name) or Tensor(name) in outputs:
                plans.append((name, [0], True))
        elif ports and not graph.is_protected(name) and len(ports) <= _freed_by_folding(graph, name, folded):
            plans.append((name, ports, False))
    plans, result_bytes = _within_growth(state, plans, folded, growth)
    if not plans:
        return
    fetches = [
        Tensor(name, port) for name, ports, _ in plans for port in ports if Tensor(name, port) not in state.materialized
    ]
    known = dict(state.materialized)
    known.update({shape: stand_in for shape, stand_in, _ in picks.values()})
    try:
        result = evaluate(graph, fetches, known, imported, max_result_bytes=result_bytes)
    except NotFoldable as error:  # the walk admits only safe nodes, so this is a bug: keep the graph as it is
        ctx.logger.warning("fold: not folding this round: %s", error)
        return
    for tensor, reason in result.failures.items():
        if reason == OVER_BUDGET:
            growth.kept.add(tensor.node)
        ctx.logger.debug("fold: keep %s: TensorFlow cannot evaluate it: %s", tensor, reason)
    if result.failures:
        sources = graph.reachable((tensor.node for tensor in result.failures), backward=True)
        failed.update(name for name in sources if name in folded)
    values: dict[Tensor, TensorProto] = dict(state.materialized)
    for tensor, value in result.values.items():
        info = state.infos.get(tensor)
        if (info is None or not info.fully_defined) and state.result_too_large(tensor, value, result.dtypes[tensor]):
            continue
        if tensor.node in picks and np.isin(value, picks[tensor.node][2]).any():
            continue  # the pick reads an unknown dimension
        values[tensor] = result.proto(tensor)
    _report_too_large(state, ctx)
    liveness = _liveness(graph, order, state, {pick: shape.node for pick, (shape, _, _) in picks.items()})
    touched: list[str] = []
    for name, ports, in_place in plans:
        available = [port for port in ports if Tensor(name, port) in values]
        if not available:
            continue
        if not ctx.allow_rewrite():
            break
        touched.extend(tensor.node for tensor in graph.inputs_of(name))
        touched.extend(graph.control_inputs_of(name))
        deps = liveness[name]
        if in_place:
            _make_const(graph, name, values[Tensor(name, 0)], deps)
            continue
        node = graph.node(name)
        for port in available:
            proto = values[Tensor(name, port)]
            attrs = {"dtype": AttrValue(type=proto.dtype), "value": AttrValue(tensor=proto)}
            constant = graph.add_node(f"{name}/port_{port}", "Const", (), deps, attrs, node.device)
            graph.replace_all_uses(Tensor(name, port), Tensor(constant))
        if len(available) == len(ports):
            for consumer in graph.control_consumers(name):
                graph.remove_control_input(consumer, name)
                for source in deps:
                    graph.add_control_input(consumer, source)
            touched.append(name)
    _remove_unused(graph, touched, folded | {shape.node for shape, _, _ in picks.values()})


def _within_growth(
    state: _Round, plans: list[tuple[str, list[int], bool]], folded: set[str], growth: Growth
) -> tuple[list[tuple[str, list[int], bool]], int]:
    """The plans that fit in what the growth guard leaves, in order, and the bytes their values may take when they
    come back (their static sizes, and what is left for the values whose size is not static); the others are
    kept (added to `state.failed`, so that later rounds do not retry them)."""
    graph = state.graph
    left = growth.left(graph)
    static = 0
    admitted = []
    for name, ports, in_place in plans:
        adds = sum(_info_bytes(state.infos.get(Tensor(name, port))) or 0 for port in ports)
        frees = sum(
            _proto_bytes(_const_value(graph, source))
            for source in {tensor.node for tensor in graph.inputs_of(name)}
            if is_constant(graph, source)
            and not graph.is_protected(source)
            and all(target == name for target in graph.successors(source))
        )
        if adds - frees > left:
            growth.kept.add(name)
            state.failed.add(name)
            continue
        left -= max(adds - frees, 0)
        static += adds
        admitted.append((name, ports, in_place))
    return admitted, static + left


def _report_growth(growth: Growth, ctx: PassContext) -> None:
    if len(growth.kept) > growth.reported:
        ctx.logger.warning(
            "fold: kept %d node(s): folding them would grow the graph's constants past %d bytes (max-growth); "
            "to fold them, raise the limit: fold{max-growth=N}",
            len(growth.kept) - growth.reported,
            growth.ceiling,
        )
        growth.reported = len(growth.kept)


def _freed_by_folding(graph: Graph, name: str, folded: set[str]) -> int:
    """How many nodes go when the multi-output node `name` is replaced by constants: itself, and the constants or
    folding nodes only it reads. Folding never grows the graph, so at most that many outputs become constants."""
    freed = 1
    for source in {tensor.node for tensor in graph.inputs_of(name)}:
        if not (is_constant(graph, source) or source in folded) or graph.is_protected(source):
            continue
        if all(target == name for target in graph.successors(source)):
            freed += 1
    return freed


def _report_too_large(state: _Round, ctx: PassContext) -> None:
    if not state.too_large:
        return
    name, size = max(state.too_large.items(), key=lambda item: item[1])
    ctx.logger.warning(
        "fold: kept %d node(s) whose output is over max-bytes=%d and larger than their inputs (largest: %s, %s, "
        "%d bytes); to fold them, raise the limit: fold{max-bytes=%d}",
        len(state.too_large),
        state.max_bytes,
        name,
        state.graph.op(name),
        size,
        size,
    )
    state.too_large.clear()


# ----- Switch with a constant predicate -------------------------------------------------------------------------


@dataclass
class _DeadBranch:
    """What a constant predicate kills: dead nodes, and the dead data inputs of the `Merge`s that survive."""

    dead: set[str] = field(default_factory=set)
    merge_dead_inputs: dict[str, set[int]] = field(default_factory=dict)


def _scalar(proto: TensorProto) -> np.ndarray | None:
    """The value of a scalar constant (decoded only when it is one), or None."""
    if proto.tensor_shape.dim or proto.tensor_shape.unknown_rank:
        return None
    try:
        return _decode(proto)
    except Exception:  # content that does not fit the declared shape: not a usable constant
        return None


def _truth(proto: TensorProto, *, strict_bool: bool) -> bool | None:
    """The truth of a predicate: with `strict_bool` only a bool scalar (`Switch`), else by `If`'s rules (a
    non-scalar is true when it has elements, a string when it is not empty, a number when it is not zero)."""
    value = _scalar(proto)
    if strict_bool:
        return bool(value) if value is not None and value.dtype == bool else None
    if value is None:
        if proto.tensor_shape.unknown_rank:
            return None
        return all(dim.size != 0 for dim in proto.tensor_shape.dim)
    if value.dtype == object:
        return len(value.item()) > 0
    return bool(value)


def dead_branch(graph: Graph, switch: str, dead_port: int) -> _DeadBranch | str:
    """What output `dead_port` of `switch` kills, or the reason the switch cannot be resolved."""
    found = _DeadBranch()
    if Tensor(switch, dead_port) in graph.outputs:
        return f"its dead output {switch}:{dead_port} is a graph output"
    stack: list[tuple[str, int | None]] = [(use.node, use.index) for use in graph.uses(Tensor(switch, dead_port))]
    while stack:
        name, index = stack.pop()
        if name in found.dead:
            continue
        op = graph.op(name)
        if op == "Merge":
            if index is None:
                return f"{name} (Merge) has a control input from the dead branch"
            dead_inputs = found.merge_dead_inputs.setdefault(name, set())
            dead_inputs.add(index)
            if len(dead_inputs) < len(graph.inputs_of(name)):
                continue
            del found.merge_dead_inputs[name]
        elif op in LOOP_OPS:
            return f"the dead branch reaches a loop ({name}, {op})"
        if graph.is_protected(name):
            return f"the dead branch reaches {name}, which holds a graph input or output"
        found.dead.add(name)
        stack.extend((use.node, use.index) for _, use in graph.data_consumers(name))
        stack.extend((consumer, None) for consumer in graph.control_consumers(name))
    for merge, dead_inputs in found.merge_dead_inputs.items():
        live = len(graph.inputs_of(merge)) - len(dead_inputs)
        if Tensor(merge, 1) in graph.outputs:
            return f"{merge}:1 (the Merge's value_index) is a graph output"
        if live > 1 and graph.uses(Tensor(merge, 1)):
            return f"{merge} keeps {live} inputs and its value_index is used"
    return found


def _resolve_merge(graph: Graph, merge: str, dead_inputs: set[int]) -> None:
    inputs = graph.inputs_of(merge)
    live = [(index, tensor) for index, tensor in enumerate(inputs) if index not in dead_inputs]
    if len(live) > 1:
        graph.set_inputs(merge, [tensor for _, tensor in live])
        graph.set_attr(merge, "N", AttrValue(i=len(live)))
        return
    ((index, tensor),) = live
    device = graph.node(merge).device
    if graph.uses(Tensor(merge, 1)):
        attrs = {
            "dtype": AttrValue(type=tensorflow().int32.as_datatype_enum),
            "value": AttrValue(tensor=to_tensor_proto(np.int32(index), tensorflow().int32)),
        }
        value_index = graph.add_node(f"{merge}/port_1", "Const", (), [merge], attrs, device)
        graph.replace_all_uses(Tensor(merge, 1), Tensor(value_index))
    graph.set_inputs(merge, [tensor])
    graph.del_attr(merge, "N")
    graph.set_op(merge, "Identity")


def resolve_switches(graph: Graph, ctx: PassContext) -> None:
    """Resolve every `Switch` whose predicate is a constant scalar bool without control inputs."""
    for name in graph.nodes_of("Switch"):
        if name not in graph or graph.op(name) != "Switch" or graph.control_inputs_of(name):
            continue
        inputs = graph.inputs_of(name)
        if len(inputs) != 2:
            continue
        data, predicate = inputs
        if not is_constant(graph, predicate.node) or graph.control_inputs_of(predicate.node):
            continue
        truth = _truth(_const_value(graph, predicate.node), strict_bool=True)
        if truth is None:
            continue
        live_port = 1 if truth else 0
        found = dead_branch(graph, name, 1 - live_port)
        if isinstance(found, str):
            ctx.logger.debug("fold: keep %s: %s", name, found)
            continue
        if not ctx.allow_rewrite():
            return
        for merge, dead_inputs in found.merge_dead_inputs.items():
            _resolve_merge(graph, merge, dead_inputs)
        graph.replace_all_uses(Tensor(name, live_port), data)
        for dead in found.dead:
            for consumer in graph.control_consumers(dead):
                if consumer not in found.dead:
                    graph.remove_control_input(consumer, dead)
        graph.remove_nodes(found.dead)
        _remove_unused(graph, [name], {name})


# ----- If / Case with a constant condition ----------------------------------------------------------------------


def _branch(graph: Graph, name: str) -> FunctionDef | str:
    """The function a conditional call `name` takes, or why it cannot be inlined."""
    node = graph.node(name)
    condition = graph.inputs_of(name)[0]
    if not is_constant(graph, condition.node) or graph.control_inputs_of(condition.node):
        return "its condition is not a constant"
    value = _const_value(graph, condition.node)
    if node.op in ("If", "StatelessIf"):
        truth = _truth(value, strict_bool=False)
        if truth is None:
            return "its condition has an unknown shape"
        call = node.attrs["then_branch" if truth else "else_branch"].func
    else:
        scalar = _scalar(value)
        if scalar is None or scalar.dtype.kind not in "iu":
            return "its branch index is not an integer scalar"
        index = int(scalar)
        branches = node.attrs["branches"].list.func
        call = branches[index if 0 <= index < len(branches) else len(branches) - 1]
    if call.attr:
        return f"its branch {call.name} is polymorphic"
    function = next((f for f in graph.library.function if f.signature.name == call.name), None)
    if function is None:
        return f"its branch {call.name} is not in the library"
    if len(function.signature.input_arg) != len(graph.inputs_of(name)) - 1:
        return f"its branch {call.name} takes {len(function.signature.input_arg)} arguments"
    if len(function.signature.output_arg) != len(node.attrs["Tout"].list.type):
        return f"its branch {call.name} returns {len(function.signature.output_arg)} values"
    if any(inner.op in LOOP_OPS for inner in function.node_def):
        return f"its branch {call.name} holds a TF1 loop"
    return function


def _branch_names(node: Node) -> list[str]:
    if node.op.endswith("If"):
        return [node.attrs[key].func.name for key in ("then_branch", "else_branch")]
    return [call.name for call in node.attrs["branches"].list.func]


def inline_conditionals(graph: Graph, ctx: PassContext) -> None:
    """Inline the taken branch of every `If`/`Case` call whose condition is a constant (`passes.inline` does the
    inlining, the call reading only the branch's arguments); branch functions nothing calls any more leave the
    library."""
    reach: set[str] | None = None
    signatures: Signatures | None = None
    branches: list[str] = []
    for node in [graph.node(name) for name in graph.nodes_of(CONDITIONAL_OPS)]:
        if node.op not in CONDITIONAL_OPS or node.name not in graph or not graph.inputs_of(node.name):
            continue
        branch_attrs = ("then_branch", "else_branch") if node.op.endswith("If") else ("branches",)
        if any(key not in node.attrs for key in ("Tout", *branch_attrs)):
            continue
        function = _branch(graph, node.name)
        if isinstance(function, str):
            ctx.logger.debug("fold: keep %s: %s", node.name, function)
            continue
        if reach is None:
            reach = graph.reachable(graph.nodes_of(CONTROL_FLOW_ENTRY_OPS))
        if node.name in reach:
            ctx.logger.debug("fold: keep %s: it lies inside TF1 control flow", node.name)
            continue
        signatures = signatures or signatures_of(graph)
        try:
            body = lift(function, signatures)
        except NotLiftable as error:
            ctx.logger.debug("fold: keep %s: %s", node.name, error)
            continue
        if not ctx.allow_rewrite():
            break
        condition, *arguments = graph.inputs_of(node.name)
        branches.extend(_branch_names(node))
        graph.set_inputs(node.name, arguments)
        inline_call(graph, node.name, body, signatures)
        _remove_unused(graph, [condition.node], set())
    if branches:
        drop_unreferenced(graph, dict.fromkeys(branches))


# ----- constant control edges -----------------------------------------------------------------------------------


def drop_constant_control_inputs(graph: Graph, ctx: PassContext) -> None:
    """Drop every control edge from a `Const` that has no control inputs itself: it carries nothing. A constant
    that no longer has any consumer goes."""
    sources: list[str] = []
    for source in graph.nodes_of(foldable.CONSTANT_OPS):
        consumers = graph.control_consumers(source)
        if not consumers or not is_constant(graph, source) or graph.control_inputs_of(source):
            continue
        for name in consumers:
            if not ctx.allow_rewrite():
                break
            graph.remove_control_input(name, source)
            sources.append(source)
    _remove_unused(graph, sources, set())


# ----- the pass -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fold(Pass):
    """Fold constant subgraphs with TensorFlow's kernels; resolve constant Switch/If; materialize static shapes."""

    name = "fold"
    max_bytes: int = DEFAULT_MAX_BYTES
    max_growth: int = 0

    def run(self, graph: Graph, ctx: PassContext) -> None:
        growth = ctx.state.setdefault("fold.growth", Growth.of(graph, self.max_growth))
        failed: set[str] = set(growth.kept)
        for _ in range(MAX_ROUNDS):
            before = graph.mutations
            # Dead branches first, so that folding never evaluates what a constant condition discards.
            resolve_switches(graph, ctx)
            inline_conditionals(graph, ctx)
            fold_constants(graph, ctx, self.max_bytes, failed, growth)
            drop_constant_control_inputs(graph, ctx)
            if graph.mutations == before:
                break
            logging.getLogger(__name__).debug("fold: %d mutation(s) this round", graph.mutations - before)
        _report_growth(growth, ctx)
