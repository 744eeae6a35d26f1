"""`freeze`: replace every variable the outputs read by a constant holding its value.

Contract
- The values come with the graph: load it with a checkpoint (`--checkpoint`), as a `.meta` or as a SavedModel
  (`graph.variables`, read lazily). A graph with no variable node is left unchanged.
- Variables are `VariableV2`/`Variable` (ref), `VarHandleOp` (resource) and resource `Placeholder`s. Each one a
  declared output or input needs (reaches backwards through data and control edges) becomes a `Const` of the same
  name holding its value, with the dtype and shape the values have (every dtype: float16/bfloat16, integers,
  bool, string, complex). A needed `VariableV2`/`VarHandleOp` without a value is an error naming the checkpoint
  and the variable; a resource placeholder without one (a lookup table, say) is left alone.
- Before anything is decoded, the constants' bytes plus the graph's are checked against `max-graph-bytes`
  (protobuf's 2 GiB limit by default): a frozen graph that could not be serialized is refused with what to do.
- What nobody needs goes: a node that uses a variable (directly or through forwarding ops) but that no output
  needs — savers, optimizer updates and slots, initializers, other signatures' calls — is removed together with
  everything it feeds, none of which an output can need.
- What the outputs need is rewritten, following the value through forwarding ops and into functions:
  - `ReadVariableOp` -> its readers read the value; it stays, as an `Identity`, only when it holds a graph output;
  - `ResourceGather` -> `GatherV2` (axis `batch_dims`), `ResourceGatherNd` -> `GatherNd`, `VariableShape` -> `Shape`;
  - `RefIdentity`/`RefSwitch`/`RefEnter`/`RefExit`/`RefMerge`/`RefNextIteration` -> their value forms, and
    `Identity`/`IdentityN`/`Switch`/`Merge`/`Enter`/`Exit`/`NextIteration` of a resource -> the same op of the value;
  - `IsVariableInitialized`/`VarIsInitializedOp` -> `Const` true;
  - updates (`Assign*`, `Apply*`, `ResourceApply*`, `Scatter*`, `AssignVariableOp`, ... any op writing a ref or
    resource) are removed, unless the outputs see what one wrote: an output reads its result, a use of the same
    variable comes after it through data or control edges, or the same run reads the variable into an output's
    value (a counter incremented and returned, a seed generator's state read then advanced, a streaming metric, a
    training step), in the graph or in a function the outputs call. That is refused, naming the variable, the
    update and the reader: a constant would give every call the first call's result. Reads in the other branch of
    a v1 cond than the update's do not count: a batch-norm update in the training branch, whose outputs use the
    batch's statistics, is removed although the inference branch reads the moving average;
  - control edges from removed reads and updates go with them: they ordered accesses to a variable that no longer
    exists (this is what TensorFlow 2's automatic control dependencies add to every function). A node that waited
    on one and reads no data waits instead for what the access waited for and read (through an `Identity` anchor
    for a `Switch` output), so it stays in its branch of a v1 cond; a `NoOp` left waiting for nothing is removed,
    with its control edges. No `NoOp` is hung in front of the outputs;
  - functional ops (`If`, `Case`, `While`, `PartitionedCall`, `StatefulPartitionedCall`, stateless or not, and
    direct function calls) that receive a variable call a specialized copy of their functions, `<name>_frozen`,
    whose argument is the value instead of the resource (its argument type, `_handle_*` and `_output_shapes`
    argument attrs follow) and whose body is rewritten by these same rules; a resource the function returns (a
    `While` loop variable) becomes a value in the signature and in the caller's types. The caller's `Tin`/`T`/
    `Tout`, `output_shapes`, `_output_shapes` and `_read_only_resource_inputs` follow. Functions left unreferenced
    leave the library, and so do functions nothing calls that take or return a resource (TensorFlow leaves such
    variable machinery there, e.g. the pre-gradient copies of cond branches): no resource argument survives.
- Any other op that uses a needed variable is an error naming it. Nothing else in the graph is touched: dead
  nodes that do not use variables are `prune`'s.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from optimizer import Graph, Pass, PassContext, Tensor, opinfo
from optimizer._tf import tensorflow
from optimizer.errors import OptimizerError
from optimizer.library import (
    FunctionBody,
    NotLiftable,
    drop_unreferenced,
    lift,
    lower,
    referenced_functions,
    signatures_of,
)
from optimizer.protos import PROTOBUF_LIMIT, AttrValue, FunctionDef
from optimizer.tensor import const_attrs
from optimizer.variables import RESOURCE, VARIABLE_OPS, VariableValues, is_variable_node

Shape = tuple[int, ...] | None
Spec = tuple[int, Shape]  # (DataType enum, shape or None when unknown)

REF_FORWARD = {
    "RefIdentity": "Identity",
    "RefSwitch": "Switch",
    "RefEnter": "Enter",
    "RefExit": "Exit",
    "RefMerge": "Merge",
    "RefNextIteration": "NextIteration",
}
RESOURCE_FORWARD = frozenset({"Identity", "IdentityN", "Snapshot", "Switch", "Merge", "Enter", "Exit", "NextIteration"})
RESOURCE_UPDATES = frozenset(
    {
        "AssignVariableOp",
        "AssignAddVariableOp",
        "AssignSubVariableOp",
        "DestroyResourceOp",
        "DisableCopyOnRead",
        "ResourceStridedSliceAssign",
        "ResourceCountUpTo",
    }
)
# Functional ops: (index of the first input passed to the functions, type-list attr, function attrs).
FUNCTIONAL = {
    "If": (1, "Tin", ("then_branch", "else_branch")),
    "StatelessIf": (1, "Tin", ("then_branch", "else_branch")),
    "Case": (1, "Tin", ("branches",)),
    "StatelessCase": (1, "Tin", ("branches",)),
    "While": (0, "T", ("cond", "body")),
    "StatelessWhile": (0, "T", ("cond", "body")),
    "PartitionedCall": (0, "Tin", ("f",)),
    "StatefulPartitionedCall": (0, "Tin", ("f",)),
}
_DROPPED_ATTRS = ("_output_shapes", "_handle_dtypes", "_handle_shapes")


def _is_resource_update(op: str) -> bool:
    return op in RESOURCE_UPDATES or op.startswith(("ResourceApply", "ResourceSparseApply", "ResourceScatter"))


def _shape_proto(shape: Shape) -> AttrValue:
    return AttrValue(shape=tensorflow().TensorShape(None if shape is None else list(shape)).as_proto())


def input_kind(graph: Graph, name: str, index: int) -> tuple[bool, int | None]:
    """How the op of `name` declares its input `index`: (is a ref, dtype enum); dtype None for an unknown op."""
    definition = opinfo.op_def(graph.op(name))
    if definition is None:
        return False, None
    node = graph.node(name).proto
    position = 0
    for arg in definition.input_arg:
        if arg.type_list_attr:
            types = list(node.attr[arg.type_list_attr].list.type)
        else:
            count = int(node.attr[arg.number_attr].i) if arg.number_attr else 1
            types = [arg.type or node.attr[arg.type_attr].type] * count
        if index < position + len(types):
            return bool(arg.is_ref), int(types[index - position])
        position += len(types)
    return False, None


@dataclass
class _Scope:
    """One graph being frozen: the top-level graph or a function body."""

    graph: Graph
    live: set[str]
    converted: dict[Tensor, Spec] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)
    calls: dict[str, dict[int, Spec]] = field(default_factory=dict)
    anchors: dict[Tensor, str] = field(default_factory=dict)
    emptied: set[str] = field(default_factory=set)
    function: str = ""  # the function this scope is the body of ("" for the top-level graph)
    uses: dict[str, set[str]] = field(default_factory=dict)  # variable -> the nodes that use it
    branches: dict[str, frozenset[tuple[Tensor, int]]] = field(default_factory=dict)  # see `_branch`
    updates: list[tuple[str, str]] = field(default_factory=list)  # (update node, variable), see `_settle_updates`


def _exclusive(first: frozenset[tuple[Tensor, int]], second: frozenset[tuple[Tensor, int]]) -> bool:
    """Whether two sets of (predicate, `Switch` port) branches cannot be taken in one run."""
    return any(pred == other and port != other_port for pred, port in first for other, other_port in second)


@dataclass(frozen=True)
class Freeze(Pass):
    """Replace the variables the outputs read by constants; rewrite or remove what touches them."""

    name = "freeze"
    max_graph_bytes: int = PROTOBUF_LIMIT

    def run(self, graph: Graph, ctx: PassContext) -> None:
        _Freezer(graph, ctx, self.max_graph_bytes).run()


MAX_CALL_DEPTH = 100
"""How deeply nested the calls a variable is passed down may be: each level costs freeze a few Python frames."""


class _Freezer:
    def __init__(self, graph: Graph, ctx: PassContext, limit: int) -> None:
        self.graph = graph
        self.ctx = ctx
        self.limit = limit
        self.signatures = signatures_of(graph)
        self.replaced: set[str] = set()
        self.specialized: dict[tuple[str, tuple[tuple[int, Spec], ...]], tuple[str, dict[int, Spec]]] = {}
        self.has_v1_loops = False
        self.origins: dict[tuple[str, int], str] = {}  # (caller, argument) -> the variable it passes, for messages
        self.depth = 0  # functions being specialised, one inside the other

    # ----- the top-level graph ----------------------------------------------------------------------------------

    def run(self) -> None:
        graph = self.graph
        candidates = graph.nodes_of(VARIABLE_OPS | {"Placeholder"})
        variables = [name for name in candidates if is_variable_node(graph.node(name).proto)]
        if not variables:
            return
        self.has_v1_loops = bool(graph.nodes_of({"Enter", "RefEnter"}))
        seeds = list(graph.outputs) + list(graph.inputs)
        live = graph.reachable((tensor.node for tensor in seeds), backward=True) if graph.outputs else set(graph)
        scope = _Scope(graph, live)
        needed = [name for name in variables if name in live]
        for name in variables:
            if name not in live and name in graph:
                self._remove_dead(scope, name)
        values = graph.variables
        frozen = [name for name in needed if self._has_value(values, name)]
        self._check_size(values, frozen)
        work: list[tuple[Tensor, Spec, str]] = []
        for name in frozen:
            assert values is not None
            if not self.ctx.allow_rewrite():
                break
            work.append((Tensor(name), self._to_const(name, values), name))
        self._propagate(scope, work)
        drop_unreferenced(graph, self.replaced)
        used = referenced_functions(graph)
        stale = [
            function.signature.name
            for function in graph.library.function
            if function.signature.name not in used
            and any(arg.type == RESOURCE for arg in [*function.signature.input_arg, *function.signature.output_arg])
        ]
        drop_unreferenced(graph, stale)

    def _has_value(self, values: VariableValues | None, name: str) -> bool:
        if values is not None and name in values:
            return True
        node = self.graph.node(name)
        if node.op == "Placeholder":
            self.ctx.logger.info("freeze: leave resource placeholder %s: no value for it", name)
            return False
        if values is None:
            raise OptimizerError(
                f"freeze: the outputs read variable {name!r} ({node.op}), but the graph came without values: "
                "load it with --checkpoint PREFIX, or load its .meta or SavedModel"
            )
        reason = values.missing.get(name, f"variable {name!r} has no value")
        raise OptimizerError(reason, values.source)

    def _check_size(self, values: VariableValues | None, names: list[str]) -> None:
        if values is None or not names:
            return
        weights = sum(values.spec(name).nbytes for name in names)
        nodes = sum(node.proto.ByteSize() for node in self.graph.nodes())
        total = weights + nodes + self.graph.library.ByteSize()
        if total > self.limit:
            raise OptimizerError(
                f"freezing would make the graph {total / 2**30:.2f} GiB ({weights / 2**30:.2f} GiB of weights), over "
                f"protobuf's {self.limit / 2**30:.2f} GiB limit for one GraphDef; keep the weights out of the graph "
                "(convert the SavedModel or checkpoint directly, e.g. with the TFLite converter), or freeze a "
                "smaller part with --outputs",
                values.source,
            )

    def _to_const(self, name: str, values: VariableValues) -> Spec:
        """Turn variable node `name` into a Const of its value; return the value's (dtype, shape)."""
        graph = self.graph
        spec = values.spec(name)
        value = values.read(name)
        node = graph.node(name)
        for key in [key for key in node.attrs if not key.startswith("_") or key in _DROPPED_ATTRS]:
            graph.del_attr(name, key)
        graph.set_op(name, "Const")
        for key, attr in const_attrs(value, tensorflow().as_dtype(spec.dtype)).items():
            graph.set_attr(name, key, attr)
        return spec.dtype, spec.shape

    # ----- following values -----------------------------------------------------------------------------------

    def _propagate(self, scope: _Scope, work: list[tuple[Tensor, Spec, str]]) -> None:
        """Rewrite every use of the tensors in `work`, which now carry values (of `Spec`) instead of a variable."""
        queue = deque(work)
        while queue or scope.calls:
            while queue:
                tensor, spec, origin = queue.popleft()
                scope.converted[tensor] = spec
                for use in scope.graph.uses(tensor):
                    if use.node in scope.graph:
                        scope.uses.setdefault(origin, set()).add(use.node)
                        scope.branches.setdefault(use.node, self._branch(scope, tensor))
                        queue.extend(self._rewrite_use(scope, use.node, use.index, tensor, spec, origin))
            if scope.calls:
                call = next(iter(scope.calls))
                changes = scope.calls.pop(call)
                queue.extend(self._specialize_call(scope, call, changes))
        self._settle_updates(scope)
        self._finish_reads(scope)
        self._remove_empty_noops(scope)

    def _rewrite_use(
        self, scope: _Scope, name: str, index: int, tensor: Tensor, spec: Spec, origin: str
    ) -> list[tuple[Tensor, Spec, str]]:
        graph = scope.graph
        if name not in scope.live:
            self._remove_dead(scope, name)
            return []
        op = graph.op(name)
        dtype = AttrValue(type=spec[0])
        is_ref, declared = input_kind(graph, name, index)
        if op in REF_FORWARD:
            graph.set_op(name, REF_FORWARD[op])
            return self._forwarded(scope, name, spec, origin)
        if op in RESOURCE_FORWARD and declared == RESOURCE:
            if op == "IdentityN":
                types = list(graph.node(name).attrs["T"].list.type)
                types[index] = spec[0]
                graph.set_attr(name, "T", AttrValue(list=AttrValue.ListValue(type=types)))
                self._drop_shape_attrs(graph, name)
                return [(Tensor(name, index), spec, origin)]
            graph.set_attr(name, "T", dtype)
            return self._forwarded(scope, name, spec, origin)
        if op == "ReadVariableOp":
            self._replace_op(graph, name, "Identity", {"T": dtype})
            scope.reads.append(name)
            return []
        if op == "ResourceGather":
            self._to_gather(scope, name)
            return []
        if op == "ResourceGatherNd":
            node = graph.node(name)
            self._replace_op(
                graph, name, "GatherNd", {"Tparams": node.attrs["dtype"], "Tindices": node.attrs["Tindices"]}
            )
            return []
        if op == "VariableShape":
            self._replace_op(graph, name, "Shape", {"T": dtype, "out_type": graph.node(name).attrs["out_type"]})
            return []
        if op in opinfo.INITIALIZED_CHECK_OPS:
            self._to_true(graph, name)
            return []
        if op in FUNCTIONAL or op in self.signatures:
            first = FUNCTIONAL[op][0] if op in FUNCTIONAL else 0
            if index >= first:
                scope.calls.setdefault(name, {})[index - first] = spec
                self.origins[(name, index - first)] = origin
                return []
        if is_ref or (declared == RESOURCE and _is_resource_update(op)):
            return self._drop_update(scope, name, origin)
        if declared is not None and declared != RESOURCE:
            return []  # reads the value (a ref is read through `Identity` and any op taking a plain tensor)
        what = "an op TensorFlow does not know" if declared is None else "a resource op freeze does not know"
        raise OptimizerError(f"freeze: cannot rewrite {op} node {name!r} ({what}), which uses variable {origin!r}")

    def _forwarded(self, scope: _Scope, name: str, spec: Spec, origin: str) -> list[tuple[Tensor, Spec, str]]:
        graph = scope.graph
        self._drop_shape_attrs(graph, name)
        op = graph.op(name)
        ports = [0, 1] if op in opinfo.SWITCH_OPS else [0]
        return [(Tensor(name, port), spec, origin) for port in ports]

    @staticmethod
    def _drop_shape_attrs(graph: Graph, name: str) -> None:
        for key in _DROPPED_ATTRS:
            graph.del_attr(name, key)

    @staticmethod
    def _replace_op(graph: Graph, name: str, op: str, attrs: dict[str, AttrValue]) -> None:
        """Make `name` an `op` with `attrs` (underscore attrs other than shape hints stay)."""
        node = graph.node(name)
        kept = {key: AttrValue() for key in attrs}
        for key, value in attrs.items():
            kept[key].CopyFrom(value)
        for key in [key for key in node.attrs if not key.startswith("_") or key in _DROPPED_ATTRS[1:]]:
            graph.del_attr(name, key)
        graph.set_op(name, op)
        for key, value in kept.items():
            graph.set_attr(name, key, value)

    def _to_true(self, graph: Graph, name: str) -> None:
        graph.set_inputs(name, [])
        for source in graph.control_inputs_of(name):
            graph.remove_control_input(name, source)
        self._replace_op(graph, name, "Const", const_attrs(True))
        graph.del_attr(name, "_output_shapes")

    def _to_gather(self, scope: _Scope, name: str) -> None:
        graph = scope.graph
        node = graph.node(name)
        params, indices = graph.inputs_of(name)
        batch_dims = int(node.attrs["batch_dims"].i) if "batch_dims" in node.attrs else 0
        index_type = node.attrs["Tindices"]
        control = [self._anchor(scope, indices)] if self.has_v1_loops and scope.graph is self.graph else []
        axis = graph.add_node(
            f"{name}/axis",
            "Const",
            control_inputs=control,
            attrs=const_attrs(batch_dims, tensorflow().as_dtype(index_type.type)),
        )
        self._replace_op(
            graph,
            name,
            "GatherV2",
            {
                "Tparams": node.attrs["dtype"],
                "Tindices": index_type,
                "Taxis": index_type,
                "batch_dims": AttrValue(i=batch_dims),
            },
        )
        graph.set_inputs(name, [params, indices, Tensor(axis)])

    def _finish_reads(self, scope: _Scope) -> None:
        """Reads turned into Identity go (their control edges with them: they ordered the read before updates that
        are gone), unless they hold a graph output."""
        graph = scope.graph
        for name in scope.reads:
            if name not in graph or graph.is_protected(name):
                continue
            self._detach_control_consumers(scope, name)
            (source,) = graph.inputs_of(name)
            controls = graph.control_inputs_of(name)
            for consumer in dict.fromkeys(use.node for _, use in graph.data_consumers(name)):
                for control in controls:
                    graph.add_control_input(consumer, control)
            graph.replace_all_uses(Tensor(name), source)
            graph.remove(name)

    # ----- updates and dead nodes -------------------------------------------------------------------------------

    def _drop_update(self, scope: _Scope, name: str, origin: str) -> list[tuple[Tensor, Spec, str]]:
        """Set aside update `name` of `origin` for `_settle_updates`, once every use of the variable is known."""
        graph = scope.graph
        for _, use in graph.data_consumers(name):
            if use.node in graph and use.node not in scope.live:
                self._remove_dead(scope, use.node)
        scope.updates.append((name, origin))
        return []

    @staticmethod
    def _branch(scope: _Scope, tensor: Tensor) -> frozenset[tuple[Tensor, int]]:
        """The v1 cond branches a variable took to reach a consumer of `tensor`: (predicate, `Switch` port) for each
        `Switch` on its way; a run that takes one port of a predicate does not take the other."""
        taken = scope.branches.get(tensor.node, frozenset())
        if scope.graph.op(tensor.node) in opinfo.SWITCH_OPS:
            taken = taken | {(scope.graph.inputs_of(tensor.node)[1], tensor.port)}
        return taken

    @staticmethod
    def _feeds_outputs_beside(
        graph: Graph, start: str, branch: frozenset[tuple[Tensor, int]], outputs: set[str]
    ) -> bool:
        """Whether the value of `start` reaches an output through data edges in a run that also takes `branch`
        (the walk does not leave a `Switch` by a port that `branch` excludes)."""
        stack, seen = [start], set()
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in outputs:
                return True
            predicate = graph.inputs_of(name)[1] if graph.op(name) in opinfo.SWITCH_OPS else None
            for port, use in graph.data_consumers(name):
                if predicate is None or not _exclusive(branch, frozenset({(predicate, port)})):
                    stack.append(use.node)
        return False

    def _settle_updates(self, scope: _Scope) -> None:
        """Remove the updates set aside, unless the outputs see what one wrote: an output reads its result, a use
        of the same variable comes after it (through data or control edges), or the same run reads the variable
        into an output's value in a branch the update does not exclude (a read, then an increment: the next call
        reads another value). Such a variable cannot become a constant: the graph would give every call the first
        call's result (a counter, a seed generator's state, a streaming metric)."""
        graph = scope.graph
        updates = [(name, origin) for name, origin in scope.updates if name in graph]
        written = {name for name, _ in updates}
        outputs = {tensor.node for tensor in graph.outputs}
        for name, origin in updates:
            uses = {use for use in scope.uses.get(origin, set()) if use in graph} - written
            later = sorted(graph.reachable([name]) & uses)
            branch = scope.branches.get(name, frozenset())
            read = [
                use
                for use in sorted(uses)
                if not _exclusive(branch, scope.branches.get(use, frozenset()))
                and self._feeds_outputs_beside(graph, use, branch, outputs)
            ]
            seen = later or read
            if graph.data_consumers(name) or graph.is_protected(name) or seen:
                reader = next((use.node for _, use in graph.data_consumers(name)), None) or (seen or [name])[0]
                where = f" in function {scope.function!r}" if scope.function else ""
                values = self.graph.variables
                key = values.key(origin) if values is not None and origin in values else origin
                known = f"{origin!r}" if key == origin else f"{origin!r} ({key})"
                when = "afterwards" if not seen or later else "in the same run"
                raise OptimizerError(
                    f"freeze: the graph writes variable {known} with {graph.op(name)} {name!r}{where} and "
                    f"{reader!r} reads it {when}, so a constant would give every call the first call's "
                    "result; declare --outputs that do not depend on the update, or keep the variable: run --passes "
                    "without freeze"
                )
        for name, _ in updates:
            self._detach_control_consumers(scope, name)
            graph.remove(name)

    def _detach_control_consumers(self, scope: _Scope, name: str) -> None:
        """Drop the control edges from `name` (a variable access about to go). A consumer that reads no data waits
        instead for what `name` waited for and read (its branch of a v1 cond, its loop frame); a `NoOp` may be left
        with nothing to wait for (see `_remove_empty_noops`)."""
        graph = scope.graph
        waits = list(graph.control_inputs_of(name))
        for tensor in graph.inputs_of(name):
            producer = graph.node(tensor.node)
            if tensor in scope.converted or is_variable_node(producer.proto) or producer.op == "Const":
                continue
            if opinfo.has_ref_output(producer.op) and producer.op not in opinfo.SWITCH_OPS:
                continue
            waits.append(self._anchor(scope, tensor))
        for consumer in graph.control_consumers(name):
            graph.remove_control_input(consumer, name)
            if not graph.inputs_of(consumer):
                for source in waits:
                    graph.add_control_input(consumer, source)
            if graph.op(consumer) == "NoOp":
                scope.emptied.add(consumer)

    def _remove_empty_noops(self, scope: _Scope) -> None:
        """A `NoOp` that only waited for variable accesses waits for nothing now: it goes, with its control edges
        (and so, in turn, may the `NoOp`s that only waited for it)."""
        graph = scope.graph
        pending = sorted(scope.emptied)
        while pending:
            name = pending.pop()
            if name not in graph or graph.predecessors(name) or graph.is_protected(name):
                continue
            for consumer in graph.control_consumers(name):
                graph.remove_control_input(consumer, name)
                if graph.op(consumer) == "NoOp":
                    pending.append(consumer)
            if graph.is_used(name):
                continue
            graph.remove(name)

    def _anchor(self, scope: _Scope, tensor: Tensor) -> str:
        """A node to take a control edge from that fires exactly when `tensor` is alive: the producer itself, or
        an `Identity` of the tensor when the producer is a `Switch` (whose control edge fires on both branches)."""
        graph = scope.graph
        if graph.op(tensor.node) not in opinfo.SWITCH_OPS:
            return tensor.node
        if tensor not in scope.anchors:
            dtype = AttrValue()
            dtype.CopyFrom(graph.node(tensor.node).attrs["T"])
            scope.anchors[tensor] = graph.add_node(
                f"{tensor.node}/anchor_{tensor.port}", "Identity", [tensor], attrs={"T": dtype}
            )
            scope.live.add(scope.anchors[tensor])
        return scope.anchors[tensor]

    def _remove_dead(self, scope: _Scope, name: str) -> None:
        """Remove `name`, which no output needs, and everything it feeds (which no output can need either)."""
        graph = scope.graph
        if name not in graph:
            return
        doomed = graph.reachable([name])
        if doomed & scope.live:
            raise AssertionError(f"freeze: {name!r} is not needed but feeds {sorted(doomed & scope.live)[:3]}")
        for node in doomed:
            for called in self._called(graph, node):
                self.replaced.add(called)
        graph.remove_nodes(doomed)

    def _called(self, graph: Graph, name: str) -> list[str]:
        node = graph.node(name).proto
        found = [str(node.op)] if node.op in self.signatures else []
        for value in node.attr.values():
            if value.HasField("func"):
                found.append(value.func.name)
            elif value.HasField("list"):
                found.extend(func.name for func in value.list.func)
        return found

    # ----- functions ------------------------------------------------------------------------------------------

    def _specialize_call(self, scope: _Scope, name: str, changes: dict[int, Spec]) -> list[tuple[Tensor, Spec, str]]:
        """Point the functional node `name` at copies of its functions that take values for arguments `changes`."""
        graph = scope.graph
        node = graph.node(name)
        op = node.op
        first, type_attr, function_attrs = FUNCTIONAL.get(op, (0, "", ()))
        targets: list[tuple[str, int | None, str]] = []  # (attr, list index or None, function name)
        if op in FUNCTIONAL:
            for attr in function_attrs:
                value = node.attrs[attr]
                if value.HasField("func"):
                    targets.append((attr, None, value.func.name))
                else:
                    targets.extend((attr, position, func.name) for position, func in enumerate(value.list.func))
        else:
            targets.append(("", None, op))
        loop = op in ("While", "StatelessWhile")
        results: dict[int, Spec] | None = None
        renamed: list[tuple[str, int | None, str]] = []
        for attr, position, function_name in targets:
            new_name, returned = self._specialize_function(function_name, changes, name)
            renamed.append((attr, position, new_name))
            if loop and attr == "cond":
                continue
            if results is not None and returned != results:
                raise OptimizerError(f"freeze: the branches of {op} {name!r} return variables differently")
            results = returned
        results = results or {}
        if loop:
            missing = sorted(set(changes) - set(results))
            if missing:
                raise OptimizerError(f"freeze: the body of While {name!r} does not pass loop variable {missing[0]} on")
        self._retype_call(graph, name, first, type_attr, changes, results, renamed)
        return [(Tensor(name, port), spec, name) for port, spec in results.items()]

    def _retype_call(
        self,
        graph: Graph,
        name: str,
        first: int,
        type_attr: str,
        changes: dict[int, Spec],
        results: dict[int, Spec],
        renamed: list[tuple[str, int | None, str]],
    ) -> None:
        node = graph.node(name)
        if not type_attr:  # a direct call: the op is the function
            (_, _, new_name) = renamed[0]
            graph.set_op(name, new_name)
            return
        types = list(node.attrs[type_attr].list.type)
        for index, (dtype, _) in changes.items():
            types[index] = dtype
        graph.set_attr(name, type_attr, AttrValue(list=AttrValue.ListValue(type=types)))
        if "Tout" in node.attrs:
            out_types = list(node.attrs["Tout"].list.type)
            for port, (dtype, _) in results.items():
                out_types[port] = dtype
            graph.set_attr(name, "Tout", AttrValue(list=AttrValue.ListValue(type=out_types)))
        for key in ("output_shapes", "_output_shapes"):
            if key in node.attrs and node.attrs[key].list.shape:
                shapes = AttrValue()
                shapes.CopyFrom(node.attrs[key])
                for port, (_, shape) in results.items():
                    if port < len(shapes.list.shape):
                        shapes.list.shape[port].CopyFrom(_shape_proto(shape).shape)
                graph.set_attr(name, key, shapes)
        if "_read_only_resource_inputs" in node.attrs:
            frozen_inputs = {first + index for index in changes}
            kept = [index for index in node.attrs["_read_only_resource_inputs"].list.i if index not in frozen_inputs]
            graph.set_attr(name, "_read_only_resource_inputs", AttrValue(list=AttrValue.ListValue(i=kept)))
        for attr, position, new_name in renamed:
            value = AttrValue()
            value.CopyFrom(node.attrs[attr])
            if position is None:
                value.func.name = new_name
            else:
                value.list.func[position].name = new_name
            graph.set_attr(name, attr, value)

    def _specialize_function(
        self, function_name: str, changes: dict[int, Spec], caller: str
    ) -> tuple[str, dict[int, Spec]]:
        """A copy of `function_name` taking values for arguments `changes`; its name and the outputs that became
        values. Calls nested over MAX_CALL_DEPTH deep are refused (OptimizerError), before Python's stack runs out."""
        key = (function_name, tuple(sorted(changes.items())))
        if key in self.specialized:
            return self.specialized[key]
        if self.depth >= MAX_CALL_DEPTH:
            raise OptimizerError(
                f"freeze: {caller!r} passes a variable down more than {MAX_CALL_DEPTH} nested function calls "
                f"(at {function_name!r}); inline the functions first (--passes inline,freeze,...)"
            )
        self.depth += 1
        try:
            return self._specialize_new(function_name, changes, caller, key)
        finally:
            self.depth -= 1

    def _specialize_new(
        self, function_name: str, changes: dict[int, Spec], caller: str, key: tuple[str, tuple[tuple[int, Spec], ...]]
    ) -> tuple[str, dict[int, Spec]]:
        function = self.graph.function(function_name)
        if function is None:
            raise OptimizerError(f"freeze: {caller!r} calls {function_name!r}, which is not in the function library")
        try:
            body = lift(function, self.signatures)
        except NotLiftable as error:
            raise OptimizerError(f"freeze: cannot rewrite the function that {caller!r} calls: {error}") from error
        template = FunctionDef()
        template.CopyFrom(function)
        body.function = template
        work: list[tuple[Tensor, Spec, str]] = []
        for index, spec in changes.items():
            if index >= len(body.args):
                raise OptimizerError(f"freeze: {caller!r} passes more inputs than {function_name!r} takes")
            body.graph.set_attr(body.args[index], "dtype", AttrValue(type=spec[0]))
            self._retype_arg(template, index, spec)
            origin = self.origins.get((caller, index), f"{function_name}:{body.signature.input_arg[index].name}")
            work.append((Tensor(body.args[index]), spec, origin))
        scope = _Scope(body.graph, self._body_live(body), function=function_name)
        self._propagate(scope, work)
        returned = {
            port: scope.converted[tensor] for port, tensor in enumerate(body.graph.outputs) if tensor in scope.converted
        }
        for port, (dtype, _) in returned.items():
            body.signature.output_arg[port].type = dtype
            body.signature.output_arg[port].ClearField("handle_data")
        new_name = self._function_name(f"{function_name}_frozen")
        lowered = lower(body, self.signatures, new_name)
        self.graph.set_function(lowered)
        self.signatures[new_name] = lowered.signature
        self.replaced.add(function_name)
        self.specialized[key] = (new_name, returned)
        return new_name, returned

    @staticmethod
    def _retype_arg(function: FunctionDef, index: int, spec: Spec) -> None:
        if index in function.arg_attr:
            attrs = function.arg_attr[index].attr
            for key in ("_handle_dtypes", "_handle_shapes"):
                if key in attrs:
                    del attrs[key]
            if "_output_shapes" in attrs:
                attrs["_output_shapes"].list.shape[0].CopyFrom(_shape_proto(spec[1]).shape)
        if index in function.resource_arg_unique_id:
            del function.resource_arg_unique_id[index]
        # The function's own record of its argument shapes: left saying "scalar" (a resource handle's shape), it
        # makes shape inference of the body (TFLite's converter, Grappler) reject the value's real shape.
        input_shapes = function.attr["_input_shapes"].list.shape if "_input_shapes" in function.attr else None
        if input_shapes is not None and index < len(input_shapes):
            input_shapes[index].CopyFrom(_shape_proto(spec[1]).shape)

    @staticmethod
    def _body_live(body: FunctionBody) -> set[str]:
        roots = [tensor.node for tensor in body.graph.outputs]
        roots += [name for name in body.function.control_ret.values() if name in body.graph]
        return body.graph.reachable(roots, backward=True) | set(body.args)

    def _function_name(self, base: str) -> str:
        name, suffix = base, 0
        while name in self.signatures:
            suffix += 1
            name = f"{base}_{suffix}"
        return name
