"""The IR: a TensorFlow graph held in a `networkx.MultiDiGraph`, and the primitives passes mutate it with.

Contract
- Nodes are keyed by name. Each carries its `NodeDef`: op, attrs (as protos, so round trips are lossless), device
  and every other NodeDef field stay exactly as loaded. Its `input` field keeps the inputs as written until they
  change, when it is emptied: never stale, but read inputs from the edges, not from it.
- Inputs live on edges. A data edge `src -> dst` has key `index >= 0` (the input slot of `dst`) and attr
  `port` (the output of `src`); a control edge has a negative key and attr `order` (its place among the control
  inputs). `"name:port"` and `"^name"` strings are parsed once, in `from_graph_def`, and written once, in
  `to_graph_def`.
- The function library, versions and any other GraphDef field are kept as a header proto and written back.
- Graph inputs and outputs are explicit tensors. Their nodes are protected: `remove` refuses them, and no
  primitive renames them, so a consumer fetching `y:0` before optimizing fetches the same tensor after.
- `keep` names nodes that are run besides the outputs (a model's initializer, such as `init_all_tables`): they are
  protected and live like outputs, though nothing reads them.
- Every primitive that changes the graph adds one to `mutations`, so a pass's "changed" is computed, not claimed.
  Those that change a node's op or attrs in place (`set_op`, `set_attr`, `del_attr`) also add one to `retypes`
  and to the node's own `retypes_of(name)`: what was read of a node's proto stays true while the node keeps the
  same proto and that count stays (or, for a whole graph, while `retypes` stays).
- `memo` is where analyses remember what they derived from the graph across the passes of one pipeline run
  (shapes, constant digests); the pass manager empties it when its run ends. The graph never reads it and
  `copy`/`restore` start it empty; whoever reads an entry checks that it is still true (by `mutations`, or per
  node by its proto and `retypes_of`).
- Removing a node also drops the colocation references to it (`loc:@name` in other nodes' `_class` attr), which
  TensorFlow would otherwise refuse at import ("expects to be colocated with unknown node").
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Collection, Iterable, Iterator, KeysView, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import networkx as nx

from optimizer import opinfo
from optimizer._gc import gc_paused
from optimizer.errors import GraphError
from optimizer.printer import format_graph
from optimizer.protos import AttrValue, FunctionDef, FunctionDefLibrary, GraphDef, NodeDef

if TYPE_CHECKING:
    from optimizer.initializers import ModelInit
    from optimizer.variables import VariableValues

_TENSOR_NAME = re.compile(r"^(?P<node>[^:^][^:]*)(?::(?P<port>\d+))?$")
COLOCATION_ATTR = "_class"
"""The attr that lists the nodes a node is colocated with (`loc:@name`): the one name for it."""
_COLOCATION_PREFIX = b"loc:@"


_NODE_TAG = b"\x0a"  # GraphDef.node: field 1, length-delimited


def _varint(value: int) -> bytes:
    """Protobuf's base-128 encoding of a non-negative int."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_NODE_PREFIXES = [_NODE_TAG + _varint(size) for size in range(1 << 14)]
"""The tag and length that precede a serialized node of each size under 16 KiB (one or two length bytes)."""

_PORT_ATTRS: dict[int, dict[str, Any]] = {}


def _port_attrs(port: int) -> dict[str, Any]:
    """The attr dict of a data edge reading output `port`: one shared dict per port (edge attrs are replaced
    with their edge, never updated in place)."""
    attrs = _PORT_ATTRS.get(port)
    if attrs is None:
        attrs = _PORT_ATTRS[port] = {"port": port}
    return attrs


class Tensor(NamedTuple):
    """One output of a node: `(node, port)`. `str()` gives TensorFlow's `name:port`."""

    node: str
    port: int = 0

    @classmethod
    def parse(cls, text: str) -> Tensor:
        """Parse `name` or `name:port`; raise ValueError for anything else (such as `^name`)."""
        match = _TENSOR_NAME.match(text)
        if match is None:
            raise ValueError(f"not a tensor name: {text!r}")
        return cls(match["node"], int(match["port"] or 0))

    def __str__(self) -> str:
        return f"{self.node}:{self.port}"


@dataclass(frozen=True, slots=True)
class Use:
    """A data use of a tensor: input slot `index` of `node`."""

    node: str
    index: int


class Node:
    """A read view of one node. Mutate through `Graph` methods, so that mutations are counted."""

    __slots__ = ("proto",)

    def __init__(self, proto: NodeDef) -> None:
        self.proto = proto

    @property
    def name(self) -> str:
        return str(self.proto.name)

    @property
    def op(self) -> str:
        return str(self.proto.op)

    @property
    def attrs(self) -> Any:
        """The NodeDef's attr map (name -> AttrValue proto)."""
        return self.proto.attr

    @property
    def device(self) -> str:
        return str(self.proto.device)

    def __repr__(self) -> str:
        return f"Node({self.name!r}, op={self.op!r})"


class Graph:
    """A TensorFlow graph as a networkx multigraph, with explicit inputs and outputs."""

    variables: VariableValues | None = None
    """Values of the graph's variables, attached by loaders that read a checkpoint (see `optimizer.variables`);
    a class attribute until set, so that `derive` shares it with copies."""
    init: ModelInit | None = None
    """What runs once before the outputs (a SavedModel's init op and its asset feeds), attached by loaders (see
    `optimizer.initializers`); shared with copies like `variables`."""

    def __init__(self, header: GraphDef | None = None) -> None:
        self._nx: nx.MultiDiGraph = nx.MultiDiGraph()
        # networkx's own adjacency dicts, read directly on hot paths (its view objects cost microseconds a call):
        # `_node[name]["proto"]`; `_pred[target][source]` is `_succ[source][target]`, one `{key: attrs}` dict.
        self._node: dict[str, dict[str, Any]] = self._nx._node
        self._pred: dict[str, dict[str, dict[int, dict[str, Any]]]] = self._nx._pred
        self._succ: dict[str, dict[str, dict[int, dict[str, Any]]]] = self._nx._succ
        self._header = GraphDef() if header is None else header
        self._control_order = itertools.count()
        self._inputs: list[Tensor] = []
        self._outputs: list[Tensor] = []
        self._protected: set[str] = set()
        self._input_nodes: set[str] = set()
        self._output_nodes: set[str] = set()
        self._keep: list[str] = []
        self._by_op: dict[str, dict[str, None]] = {}  # op -> names of its nodes (an ordered set)
        self._touched: set[str] = set()  # nodes whose inputs changed (see `take_touched`)
        self._retyped: set[str] = set()  # nodes whose op or attrs changed: their readers are checked too
        self._lifted_port_reads: list[tuple[str, int, str]] | None = None
        self._rewired: set[str] = set()  # nodes whose inputs changed since lifting: their `input` field is empty
        # node -> nodes whose `_class` names it (may be stale); built on the first removal, then kept up to date
        self._colocated_with: dict[str, set[str]] | None = None
        self._retypes_by_node: dict[str, int] = {}
        self._function_index: dict[str, int] = {}  # function name -> position in the library (checked on use)
        self.mutations = 0
        self.retypes = 0
        self.memo: dict[str, Any] = {}

    # ----- lifting and lowering -------------------------------------------------------------------------------

    @classmethod
    def from_graph_def(
        cls,
        graph_def: GraphDef,
        inputs: Sequence[Tensor] = (),
        outputs: Sequence[Tensor] = (),
    ) -> Graph:
        """Lift `graph_def` (which is consumed: its node protos become the graph's). Raise GraphError when a
        node name repeats or an input names a node that does not exist."""
        with gc_paused():
            return cls._lift(graph_def, inputs, outputs)

    @classmethod
    def _lift(cls, graph_def: GraphDef, inputs: Sequence[Tensor], outputs: Sequence[Tensor]) -> Graph:
        # Builds networkx's adjacency dicts directly, as `add_node`/`add_edge` would (several times faster), in one
        # sweep: an input naming a node not lifted yet (later in the file, or itself) is linked after the sweep,
        # and then the graph may have a cycle; when there is none, every node comes after its inputs.
        nodes = list(graph_def.node)
        graph = cls(graph_def)  # emptied of nodes below: what stays is the header
        node_store, pred, succ, by_op = graph._node, graph._pred, graph._succ, graph._by_op
        port_reads: list[tuple[str, int, str]] = []  # (source, port, target) of the reads of ports above 0
        later: list[tuple[str, str, int, dict[str, Any], str]] = []  # (source, target, key, attrs, text)
        port0 = _port_attrs(0)
        for node in nodes:
            name, op = node.name, node.op
            if name in node_store or not name or not op:
                raise GraphError(
                    f"node name {name!r} is used twice" if name in node_store else f"node {name!r} has no name or op"
                )
            group = by_op.get(op)
            if group is None:
                group = by_op[op] = {}
            group[name] = None
            node_store[name] = {"proto": node}
            target_pred = pred[name] = {}
            texts = node.input
            if texts:
                index = 0
                for text in texts:
                    if text.startswith("^"):
                        source = text[1:]
                        order = next(graph._control_order)
                        key, attrs = -1 - order, {"order": order}
                    else:
                        colon = text.rfind(":")
                        if colon > 0 and text[colon + 1 :].isdigit():
                            source, port = text[:colon], int(text[colon + 1 :])
                            attrs = {"port": 0, "spelled": text} if port == 0 else _port_attrs(port)
                            if port:
                                port_reads.append((source, port, name))
                        else:
                            source, attrs = text, port0
                        key = index
                        index += 1
                    keys = target_pred.get(source)
                    if keys is None:
                        source_succ = succ.get(source)
                        if source_succ is None:
                            later.append((source, name, key, attrs, text))
                            continue
                        keys = target_pred[source] = source_succ[name] = {}
                    keys[key] = attrs
            succ[name] = {}
        for source, target, key, attrs, text in later:
            if source not in node_store:
                raise GraphError(f"node {target!r} has input {text!r}, but no node is named {source!r}")
            graph._connect(source, target, key, attrs)
        del graph_def.node[:]
        graph.inputs = list(inputs)
        graph.outputs = list(outputs)
        graph.mutations = 0
        graph._lifted_port_reads = None if later else port_reads
        return graph

    def lifted_port_reads(self) -> list[tuple[str, int, str]] | None:
        """While nothing changed since lifting, and lifting found every node after its inputs (so data slots are
        0..n-1 and there is no cycle, by construction): the reads of ports above 0, as `(source, port, reader)`,
        all a structural check has left to look at. Otherwise None."""
        return self._lifted_port_reads if self.mutations == 0 else None

    def to_graph_def(self, stand_in: Callable[[NodeDef], NodeDef | None] | None = None) -> GraphDef:
        """A new GraphDef: the header's fields, then every node in insertion order with its inputs. `stand_in`, when
        given, may return for a node a NodeDef to write in its place, with the node's inputs (shape inference writes
        each weight as a placeholder without copying it first)."""
        with gc_paused():
            return self._lower(stand_in)

    def _lower(self, stand_in: Callable[[NodeDef], NodeDef | None] | None) -> GraphDef:
        graph_def = GraphDef()
        graph_def.CopyFrom(self._header)
        for name, data in self._node.items():
            proto = data["proto"]
            replacement = None if stand_in is None else stand_in(proto)
            out = graph_def.node.add()
            out.CopyFrom(proto if replacement is None else replacement)
            if name in self._rewired:
                out.input.extend(self._input_strings(name))
            elif replacement is not None:
                out.input.extend(proto.input)
        return graph_def

    def to_bytes(self) -> bytes:
        """The binary GraphDef: byte for byte `to_graph_def().SerializeToString(deterministic=True)`, written node
        by node without building that GraphDef (nodes are field 1, so the header's fields follow them)."""
        return b"".join(self.to_chunks())

    def to_chunks(self) -> list[bytes]:
        """`to_bytes()` in pieces, in order: a writer that takes them one by one never holds the whole file in
        memory a second time (for a model's weights, that copy cost more than writing them out)."""
        with gc_paused():
            parts: list[bytes] = []
            append, rewired, prefixes = parts.append, self._rewired, _NODE_PREFIXES
            for name, data in self._node.items():
                proto = data["proto"]
                texts = self._input_strings(name) if name in rewired else None
                if texts:
                    proto.input.extend(texts)
                    try:
                        body = proto.SerializeToString(deterministic=True)
                    finally:
                        proto.ClearField("input")
                else:  # as lifted, inputs included, or without inputs
                    body = proto.SerializeToString(deterministic=True)
                size = len(body)
                append(prefixes[size] if size < len(prefixes) else _NODE_TAG + _varint(size))
                append(body)
            parts.append(self._header.SerializeToString(deterministic=True))
            return parts

    def copy(self) -> Graph:
        """An independent copy: nodes, edges, header, inputs and outputs (see `derive`)."""
        return self.derive(self.to_graph_def())

    def derive(self, graph_def: GraphDef) -> Graph:
        """A new Graph of `graph_def` (consumed) with this graph's inputs and outputs; other attributes that
        loaders attach (such as variable values) are shared, since passes replace rather than mutate them."""
        clone = Graph.from_graph_def(graph_def, self._inputs, self._outputs)
        clone.keep = self._keep
        for key, value in vars(self).items():
            if key not in vars(clone):
                setattr(clone, key, value)
        return clone

    def restore(self, snapshot: Graph) -> None:
        """Become `snapshot` (a `copy()` taken earlier), undoing every change since; counts one mutation."""
        mutations, retypes = self.mutations, self.retypes
        self.__dict__.clear()
        self.__dict__.update(snapshot.copy().__dict__)
        self.mutations, self.retypes = mutations + 1, retypes + 1

    def _input_strings(self, name: str) -> list[str]:
        """The `input` field of `name` as lowering writes it, from its edges."""
        data: list[tuple[int, str]] = []
        control: list[tuple[int, str]] = []
        for source, keys in self._pred[name].items():
            for key, attrs in keys.items():
                if key >= 0:
                    port = attrs["port"]
                    text = attrs.get("spelled") or (source if port == 0 else f"{source}:{port}")
                    data.append((key, text))
                else:
                    control.append((attrs["order"], "^" + source))
        data.sort()
        control.sort()
        return [text for _, text in data] + [text for _, text in control]

    # ----- the whole graph ------------------------------------------------------------------------------------

    @property
    def nx(self) -> nx.MultiDiGraph:
        """The underlying networkx graph, for analyses. Mutating it directly bypasses the counters."""
        return self._nx

    @property
    def library(self) -> FunctionDefLibrary:
        """The function library (kept and written back as it is unless a pass owns it)."""
        return self._header.library

    @property
    def versions(self) -> Any:
        return self._header.versions

    @property
    def inputs(self) -> list[Tensor]:
        """The graph's declared inputs, in order (a copy)."""
        return list(self._inputs)

    @inputs.setter
    def inputs(self, tensors: Iterable[Tensor]) -> None:
        self._inputs = list(tensors)
        self._update_protected()

    @property
    def outputs(self) -> list[Tensor]:
        """The graph's declared outputs, in order (a copy)."""
        return list(self._outputs)

    @outputs.setter
    def outputs(self, tensors: Iterable[Tensor]) -> None:
        self._outputs = list(tensors)
        self._update_protected()

    @property
    def keep(self) -> list[str]:
        """Nodes run besides the outputs (initializers): protected, and live for `prune`, like outputs (a copy)."""
        return list(self._keep)

    @keep.setter
    def keep(self, names: Iterable[str]) -> None:
        self._keep = list(dict.fromkeys(names))
        self._update_protected()

    def _update_protected(self) -> None:
        self._input_nodes = {tensor.node for tensor in self._inputs}
        self._output_nodes = {tensor.node for tensor in self._outputs}
        self._protected = self._input_nodes | self._output_nodes | set(self._keep)

    def __len__(self) -> int:
        return len(self._node)

    def __str__(self) -> str:
        """The textual form, one line per node (`optimizer.printer`)."""
        return format_graph(self)

    def __repr__(self) -> str:
        counts = (len(self._node), len(self._inputs), len(self._outputs), len(self._header.library.function))
        return "<Graph: {} nodes, {} inputs, {} outputs, {} functions>".format(*counts)

    def __contains__(self, name: object) -> bool:
        return name in self._node

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._node))

    def nodes(self) -> Iterator[Node]:
        """Every node, in order. Safe to mutate the graph while iterating (the list is taken first)."""
        return iter([Node(data["proto"]) for data in self._node.values()])

    def node(self, name: str) -> Node:
        """The node named `name`; KeyError when there is none."""
        return Node(self._node[name]["proto"])

    def op(self, name: str) -> str:
        op: str = self._node[name]["proto"].op
        return op

    def op_counts(self) -> dict[str, int]:
        """How many nodes of each op the graph has."""
        return {op: len(names) for op, names in self._by_op.items() if names}

    def nodes_of(self, ops: str | Iterable[str]) -> list[str]:
        """The names of the nodes whose op is `ops` (or one of them), without a sweep of the graph: grouped by
        op in sorted op order, each group in the order its nodes got their op."""
        wanted = [ops] if isinstance(ops, str) else sorted(ops)
        return [name for op in wanted for name in self._by_op.get(op, ())]

    def constant_bytes(self) -> int:
        """Bytes of every `Const` node's serialized value (weights are measured, not decoded)."""
        return sum(self._node[name]["proto"].attr["value"].ByteSize() for name in self._by_op.get("Const", ()))

    # ----- edges ----------------------------------------------------------------------------------------------

    def in_edges(self, name: str) -> Iterator[tuple[str, int, dict[str, Any]]]:
        """Every edge into `name` as `(source, key, attrs)`: data edges have `key >= 0` (the slot) and attr
        `port`; control edges a negative key and attr `order`. In no particular order; do not mutate `attrs`."""
        for source, keys in self._pred[name].items():
            for key, attrs in keys.items():
                yield source, key, attrs

    def out_edges(self, name: str) -> Iterator[tuple[str, int, dict[str, Any]]]:
        """Every edge out of `name` as `(target, key, attrs)` (keys and attrs as in `in_edges`)."""
        for target, keys in self._succ[name].items():
            for key, attrs in keys.items():
                yield target, key, attrs

    def edges_into(self, name: str) -> Mapping[str, Mapping[int, dict[str, Any]]]:
        """The edges into `name` grouped by source, `{source: {key: attrs}}` (keys and attrs as in `in_edges`): a
        live read-only view of the adjacency, the fastest way to read every input; copy it before mutating."""
        return self._pred[name]

    def in_degree(self, name: str) -> int:
        """How many edges (data and control) enter `name`."""
        return sum(len(keys) for keys in self._pred[name].values())

    def has_one_out_edge(self, name: str) -> bool:
        """True when exactly one edge (data or control) leaves `name` (in constant time, whatever its fan-out)."""
        targets = self._succ[name]
        return len(targets) == 1 and len(next(iter(targets.values()))) == 1

    def predecessors(self, name: str) -> KeysView[str]:
        """The nodes `name` has a data or control input from (a live view: copy it before mutating)."""
        return self._pred[name].keys()

    def successors(self, name: str) -> KeysView[str]:
        """The nodes that have a data or control input from `name` (a live view: copy it before mutating)."""
        return self._succ[name].keys()

    def inputs_of(self, name: str) -> list[Tensor]:
        """The data inputs of `name`, in slot order."""
        found = [
            (key, Tensor(source, attrs["port"]))
            for source, keys in self._pred[name].items()
            for key, attrs in keys.items()
            if key >= 0
        ]
        if len(found) > 1:
            found.sort()
        return [tensor for _, tensor in found]

    def control_inputs_of(self, name: str) -> list[str]:
        """The nodes `name` has control inputs from, in their written order."""
        found = [
            (attrs["order"], source)
            for source, keys in self._pred[name].items()
            for key, attrs in keys.items()
            if key < 0
        ]
        found.sort()
        return [source for _, source in found]

    def uses(self, tensor: Tensor) -> list[Use]:
        """Every data use `(node, input index)` of `tensor`."""
        port = tensor.port
        return [
            Use(target, key)
            for target, keys in self._succ[tensor.node].items()
            for key, attrs in keys.items()
            if key >= 0 and attrs["port"] == port
        ]

    def data_consumers(self, name: str) -> list[tuple[int, Use]]:
        """Every data use of any output of `name`, as `(port, Use)`."""
        return [
            (attrs["port"], Use(target, key))
            for target, keys in self._succ[name].items()
            for key, attrs in keys.items()
            if key >= 0
        ]

    def control_consumers(self, name: str) -> list[str]:
        """The nodes that have a control input from `name`."""
        return [target for target, keys in self._succ[name].items() for key in keys if key < 0]

    def take_touched(self) -> set[str]:
        """The nodes whose inputs, op or attrs changed, or that were added, since the last call (or since
        lifting), and the readers of those whose op or attrs changed (they may read a port that went): what a
        structural check must look at. Nodes removed since are left out. Starts a new set."""
        touched = {name for name in self._touched | self._retyped if name in self._node}
        touched.update(reader for name in self._retyped if name in self._node for reader in self._succ[name])
        self._touched, self._retyped = set(), set()
        return touched

    def sinks(self) -> list[str]:
        """The nodes nothing reads (no data or control edge leaves them), in graph order."""
        return [name for name, targets in self._succ.items() if not targets]

    def is_used(self, name: str) -> bool:
        """True when any node consumes `name` through a data or control edge."""
        return bool(self._succ[name])

    def reachable(self, seeds: Iterable[str], *, backward: bool = False) -> set[str]:
        """The `seeds` and every node they reach through data and control edges (towards consumers, or
        towards producers with `backward=True`)."""
        adjacency = self._pred if backward else self._succ
        reached = set(seeds)
        stack = list(reached)
        while stack:
            for other in adjacency[stack.pop()]:
                if other not in reached:
                    reached.add(other)
                    stack.append(other)
        return reached

    def num_outputs(self, name: str) -> int | None:
        """How many outputs `name` has by TensorFlow's op registry or the function library; None if unknown."""
        return opinfo.num_outputs(self._node[name]["proto"], self.library)

    # ----- interface protection -------------------------------------------------------------------------------

    def is_graph_input(self, name: str) -> bool:
        return name in self._input_nodes

    def is_graph_output(self, name: str) -> bool:
        return name in self._output_nodes

    def is_protected(self, name: str) -> bool:
        """True for nodes that hold a graph input or output, or are kept (`keep`): never removed or renamed."""
        return name in self._protected

    # ----- mutation primitives --------------------------------------------------------------------------------

    def unique_name(self, base: str) -> str:
        """`base`, or `base_1`, `base_2`, ... : the first that no node uses."""
        if base not in self._node:
            return base
        for suffix in itertools.count(1):
            candidate = f"{base}_{suffix}"
            if candidate not in self._node:
                return candidate
        raise AssertionError("unreachable")

    def add_node(
        self,
        name: str,
        op: str,
        inputs: Sequence[Tensor] = (),
        control_inputs: Sequence[str] = (),
        attrs: dict[str, AttrValue] | None = None,
        device: str = "",
    ) -> str:
        """Add a node named `name` (made unique if taken); return the name it got."""
        proto = NodeDef(name=self.unique_name(name), op=op, device=device)
        for key, value in (attrs or {}).items():
            proto.attr[key].CopyFrom(value)
        return self.add_node_def(proto, inputs, control_inputs)

    def add_node_def(self, proto: NodeDef, inputs: Sequence[Tensor] = (), control_inputs: Sequence[str] = ()) -> str:
        """Add `proto` (its `input` field is ignored; its name is made unique if taken); return its name."""
        proto.name = self.unique_name(proto.name)
        del proto.input[:]
        for source in [tensor.node for tensor in inputs] + list(control_inputs):
            if source not in self._node:
                raise GraphError(f"cannot add {proto.name!r}: input node {source!r} does not exist")
        name = proto.name
        self._node[name] = {"proto": proto}
        self._pred[name] = {}
        self._succ[name] = {}
        self._by_op.setdefault(proto.op, {})[name] = None
        self._touched.add(name)
        self._index_colocation(proto)
        for index, tensor in enumerate(inputs):
            self._link(tensor.node, name, index, _port_attrs(tensor.port))
        for source in control_inputs:
            self._add_control_edge(source, proto.name)
        self.mutations += 1
        return str(proto.name)

    def remove(self, name: str) -> None:
        """Remove `name`. Refuse (GraphError) while anything uses it or it holds a graph input or output."""
        if self.is_protected(name):
            raise GraphError(f"cannot remove {name!r}: it holds a graph input or output")
        if self.is_used(name):
            users = sorted(self._succ[name])
            raise GraphError(f"cannot remove {name!r}: still used by {', '.join(users[:5])}")
        self._drop_node(name)
        self._drop_colocation_with({name})
        self.mutations += 1

    def remove_nodes(self, names: Iterable[str]) -> int:
        """Remove a set of nodes that nothing outside the set uses; return how many went. Refuses as `remove`."""
        doomed = set(names)
        for name in doomed:
            if self.is_protected(name):
                raise GraphError(f"cannot remove {name!r}: it holds a graph input or output")
            outside = self._succ[name].keys() - doomed
            if outside:
                raise GraphError(f"cannot remove {name!r}: still used by {', '.join(sorted(outside)[:5])}")
        for name in doomed:
            self._drop_node(name)
        self._drop_colocation_with(doomed)
        self.mutations += len(doomed)
        return len(doomed)

    def set_input(self, name: str, index: int, tensor: Tensor) -> None:
        """Make data input slot `index` of `name` read `tensor`."""
        if tensor.node not in self._node:
            raise GraphError(f"cannot rewire {name!r}: node {tensor.node!r} does not exist")
        for source, keys in self._pred[name].items():
            if index in keys:
                self._unlink(source, name, index)
                break
        else:
            raise GraphError(f"node {name!r} has no input {index}")
        self._link(tensor.node, name, index, _port_attrs(tensor.port))
        self.mutations += 1

    def set_inputs(self, name: str, tensors: Sequence[Tensor]) -> None:
        """Replace all data inputs of `name` with `tensors` (control inputs stay)."""
        for tensor in tensors:
            if tensor.node not in self._node:
                raise GraphError(f"cannot rewire {name!r}: node {tensor.node!r} does not exist")
        data_edges = [(source, key) for source, keys in self._pred[name].items() for key in keys if key >= 0]
        for source, key in data_edges:
            self._unlink(source, name, key)
        for index, tensor in enumerate(tensors):
            self._link(tensor.node, name, index, _port_attrs(tensor.port))
        self.mutations += 1

    def replace_all_uses(self, old: Tensor, new: Tensor) -> int:
        """Make every data use of `old` read `new`; return how many uses moved. Graph outputs are names, not
        uses: they keep naming `old`, which is why a node holding an output is never removed."""
        if old == new:
            return 0
        # The edits of `_unlink` and `_link`, written out: this runs once per identity the identity pass removes.
        pred, old_out, rewired, port = self._pred, self._succ[old.node], self._rewired, old.port
        if new.node not in self._node:
            raise GraphError(f"cannot rewire the uses of {old}: node {new.node!r} does not exist")
        new_out, attrs = self._succ[new.node], _port_attrs(new.port)
        moved = 0
        for target, keys in list(old_out.items()):
            slots = [key for key, edge in keys.items() if key >= 0 and edge["port"] == port]
            if not slots:
                continue
            target_pred = pred[target]
            for key in slots:
                del keys[key]
            if not keys:
                del old_out[target], target_pred[old.node]
            new_keys = target_pred.get(new.node)
            if new_keys is None:
                new_keys = target_pred[new.node] = new_out[target] = {}
            for key in slots:
                new_keys[key] = attrs
            moved += len(slots)
            self._touched.add(target)
            if target not in rewired:
                self._rewire(target)
        if moved:
            self.mutations += 1
        return moved

    def move_readers(self, old: str, new: str) -> int:
        """Make every data reader of `old` read the same port of `new`, and every control consumer of `old` wait on
        `new` instead (once); return how many edges moved. `new` must not read `old`."""
        # The edits of `_unlink` and `_link`, written out: this runs once per node that cse merges away.
        pred, old_out, new_out, rewired = self._pred, self._succ[old], self._succ[new], self._rewired
        moved = 0
        for target, keys in list(old_out.items()):
            target_pred = pred[target]
            del old_out[target], target_pred[old]
            self._touched.add(target)
            if target not in rewired:
                self._rewire(target)
            for key, attrs in keys.items():
                moved += 1
                if key >= 0:
                    new_keys = target_pred.get(new)
                    if new_keys is None:
                        new_keys = target_pred[new] = new_out[target] = {}
                    new_keys[key] = attrs if len(attrs) == 1 else _port_attrs(attrs["port"])  # not as spelled
                elif not any(other < 0 for other in target_pred.get(new, ())):
                    self._add_control_edge(new, target)
        if moved:
            self.mutations += 1
        return moved

    def _add_control_edge(self, source: str, target: str) -> None:
        order = next(self._control_order)
        self._link(source, target, -1 - order, {"order": order})

    def _connect(self, source: str, target: str, key: int, attrs: dict[str, Any]) -> None:
        """Add edge `source -> target` with `key` in networkx's adjacency dicts (as `add_edge` would)."""
        keys = self._pred[target].get(source)
        if keys is None:
            keys = self._pred[target][source] = self._succ[source][target] = {}
        keys[key] = attrs

    def _link(self, source: str, target: str, key: int, attrs: dict[str, Any]) -> None:
        """`_connect`, as a change of `target`'s inputs."""
        self._connect(source, target, key, attrs)
        self._touched.add(target)
        if target not in self._rewired:
            self._rewire(target)

    def _unlink(self, source: str, target: str, key: int) -> None:
        """Remove edge `source -> target` with `key` (as networkx's `remove_edge` would)."""
        keys = self._pred[target][source]
        del keys[key]
        self._touched.add(target)
        if target not in self._rewired:
            self._rewire(target)
        if not keys:
            del self._pred[target][source]
            del self._succ[source][target]

    def _rewire(self, name: str) -> None:
        """`name`'s inputs change: its `input` field, written as lifted, would be stale; empty it."""
        self._rewired.add(name)
        self._node[name]["proto"].ClearField("input")

    def _drop_node(self, name: str) -> None:
        """Remove `name` and its edges (as networkx's `remove_node` would)."""
        for target in self._succ.pop(name):
            del self._pred[target][name]
        for source in self._pred.pop(name):
            if source != name:  # a self-loop went with `_succ[name]`
                del self._succ[source][name]
        self._rewired.discard(name)
        op = self._node.pop(name)["proto"].op
        del self._by_op[op][name]

    def add_control_input(self, name: str, source: str) -> bool:
        """Give `name` a control input from `source` unless it has one already; return whether it was added."""
        if source not in self._node:
            raise GraphError(f"cannot add control input: node {source!r} does not exist")
        if any(key < 0 for key in self._pred[name].get(source, ())):  # in constant time, however many it has
            return False
        self._add_control_edge(source, name)
        self.mutations += 1
        return True

    def remove_control_input(self, name: str, source: str) -> bool:
        """Drop every control input of `name` from `source`; return whether there was one."""
        keys = [key for key in self._pred[name].get(source, ()) if key < 0]
        for key in keys:
            self._unlink(source, name, key)
        if keys:
            self.mutations += 1
        return bool(keys)

    def set_op(self, name: str, op: str) -> None:
        """Change the op of `name` (its attrs stay; adjust them with `set_attr`/`del_attr`)."""
        proto = self._node[name]["proto"]
        if proto.op != op:
            del self._by_op[proto.op][name]
            self._by_op.setdefault(op, {})[name] = None
            proto.op = op
            self._count_retype(name)

    def set_attr(self, name: str, key: str, value: AttrValue) -> None:
        """Set attr `key` of `name` to a copy of `value`."""
        attrs = self._node[name]["proto"].attr
        if key not in attrs or attrs[key] != value:
            attrs[key].CopyFrom(value)
            if key == COLOCATION_ATTR:
                self._index_colocation(self._node[name]["proto"])
            self._count_retype(name)

    def del_attr(self, name: str, key: str) -> None:
        """Remove attr `key` from `name`, if it has it."""
        attrs = self._node[name]["proto"].attr
        if key in attrs:
            del attrs[key]
            self._count_retype(name)

    def _count_retype(self, name: str) -> None:
        """`name`'s op or attrs changed in place."""
        self._retyped.add(name)
        self._retypes_by_node[name] = self._retypes_by_node.get(name, 0) + 1
        self.retypes += 1
        self.mutations += 1

    def retypes_of(self, name: str) -> int:
        """How many times `name`'s op or attrs changed in place (any node of that name, since lifting): a fact
        read from a node's proto stays true while the node keeps that proto object and this count."""
        return self._retypes_by_node.get(name, 0)

    # ----- the function library -------------------------------------------------------------------------------

    def function(self, name: str) -> FunctionDef | None:
        """The library function named `name`, or None. In constant time: a name -> position index, checked against
        the library on every use and rebuilt when it is stale (the library is a protobuf anyone may edit)."""
        functions = self._header.library.function
        position = self._function_index.get(name)
        if position is None or position >= len(functions) or functions[position].signature.name != name:
            self._function_index = {function.signature.name: index for index, function in enumerate(functions)}
            position = self._function_index.get(name)
        return None if position is None else functions[position]

    def set_function(self, function: FunctionDef) -> None:
        """Add `function` to the library, replacing the one of the same name (in place, keeping the order)."""
        library = self._header.library
        for index, existing in enumerate(library.function):
            if existing.signature.name == function.signature.name:
                if existing != function:
                    library.function[index].CopyFrom(function)
                    self.mutations += 1
                return
        library.function.add().CopyFrom(function)
        self.mutations += 1

    def remove_function(self, name: str) -> bool:
        """Remove the library function `name` and its gradient entry; return whether it was there."""
        return self.remove_functions({name}) > 0

    def remove_functions(self, names: Collection[str]) -> int:
        """Remove the library functions in `names` and their gradient entries, in one sweep over the library;
        return how many functions went."""
        library = self._header.library
        gone = [index for index, function in enumerate(library.function) if function.signature.name in names]
        if len(gone) == 1:
            del library.function[gone[0]]
        elif gone:
            kept = [function for function in library.function if function.signature.name not in names]
            del library.function[:]
            library.function.extend(kept)
        gradients = [gradient for gradient in library.gradient if gradient.function_name not in names]
        if len(gradients) != len(library.gradient):
            del library.gradient[:]
            library.gradient.extend(gradients)
        if gone:
            self.mutations += 1
        return len(gone)

    # ----- colocation references ------------------------------------------------------------------------------

    def _index_colocation(self, proto: NodeDef) -> None:
        if self._colocated_with is None or COLOCATION_ATTR not in proto.attr:
            return  # no index yet: it is built from every node when first needed
        for entry in proto.attr[COLOCATION_ATTR].list.s:
            if entry.startswith(_COLOCATION_PREFIX):
                target = entry[len(_COLOCATION_PREFIX) :].decode("utf-8", "replace")
                self._colocated_with.setdefault(target, set()).add(str(proto.name))

    def _colocation_index(self) -> dict[str, set[str]]:
        if self._colocated_with is None:
            self._colocated_with = {}
            for data in self._node.values():
                self._index_colocation(data["proto"])
        return self._colocated_with

    def _drop_colocation_with(self, removed: set[str]) -> None:
        """Remove `loc:@name` for each removed name from the `_class` attr of the nodes that remain (the attr
        goes when it empties). Part of the removal, so not counted as a mutation of its own."""
        index = self._colocation_index()
        if not index:
            return  # no node colocates with another (the usual case)
        for target in removed:
            colocated = index.pop(target, None)
            if not colocated:
                continue
            reference = _COLOCATION_PREFIX + target.encode("utf-8")
            for name in colocated:
                if name not in self._node:
                    continue
                attrs = self._node[name]["proto"].attr
                if COLOCATION_ATTR not in attrs:
                    continue
                entries = attrs[COLOCATION_ATTR].list.s
                kept = [entry for entry in entries if entry != reference]
                if not kept:
                    del attrs[COLOCATION_ATTR]
                elif len(kept) != len(entries):
                    del entries[:]
                    entries.extend(kept)
