"""A graph's interface: resolving user-given input/output names, and inferring them when none are given.

Defaults: the inputs are the `Placeholder` nodes (a `PlaceholderWithDefault` is a default, not an input);
the outputs are the sinks, i.e. nodes nothing consumes that have data outputs, leaving out constants,
placeholders, `cond` pivots (an `Identity` of a `Switch` output, such as `cond/switch_f`) and whatever
only training machinery (savers, summaries, updates) reaches.

Input shapes: `parse_input_shapes` reads `--input-shape name:1,224,224,3` values and `fix_input_shapes` writes them
into the placeholders' `shape` attrs, so that shape inference (and folding) sees a static input.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence

from optimizer._tf import tensorflow
from optimizer.errors import OptimizerError
from optimizer.ir import Graph, Tensor
from optimizer.opinfo import PLACEHOLDER_OPS, SWITCH_OPS
from optimizer.protos import AttrValue, DataType
from optimizer.training import training_reach

INPUT_OPS = frozenset({"Placeholder", "PlaceholderV2"})
NEVER_OUTPUTS = frozenset({"Const", "NoOp"}) | PLACEHOLDER_OPS


def resolve(graph: Graph, names: Iterable[str], kind: str, where: str | None = None) -> list[Tensor]:
    """Turn `node` / `node:port` names into tensors of `graph`; a name that does not exist raises an
    OptimizerError that lists the closest node names."""
    tensors = []
    for text in names:
        try:
            tensor = Tensor.parse(text.strip())
        except ValueError as error:
            raise OptimizerError(f"{kind} {text!r} is not a tensor name (use node or node:port)", where) from error
        if tensor.node not in graph:
            close = difflib.get_close_matches(tensor.node, list(graph), n=3, cutoff=0.5)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise OptimizerError(f"{kind} {text!r} names no node in the graph{hint}", where)
        count = graph.num_outputs(tensor.node)
        if count is not None and tensor.port >= count:
            raise OptimizerError(
                f"{kind} {text!r}: node {tensor.node!r} ({graph.op(tensor.node)}) has {count} output(s)", where
            )
        tensors.append(tensor)
    return tensors


def default_inputs(graph: Graph) -> list[Tensor]:
    """The `Placeholder` nodes, in graph order, except resource placeholders (variables a function graph
    captured: the `freeze` pass gives them their values; nothing can feed them)."""
    return [
        Tensor(node.name)
        for node in graph.nodes()
        if node.op in INPUT_OPS and node.attrs["dtype"].type != DataType.DT_RESOURCE
    ]


def default_outputs(graph: Graph) -> list[Tensor]:
    """Every output of every sink that is not a constant, a placeholder, a cond pivot or training machinery."""
    training = training_reach(graph)
    outputs: list[Tensor] = []
    for node in graph.nodes():
        if node.op in NEVER_OUTPUTS or node.name in training or graph.is_used(node.name):
            continue
        if node.op == "Identity" and any(graph.op(tensor.node) in SWITCH_OPS for tensor in graph.inputs_of(node.name)):
            continue
        count = graph.num_outputs(node.name)
        outputs.extend(Tensor(node.name, port) for port in range(1 if count is None else count))
    return outputs


def parse_input_shapes(texts: Iterable[str]) -> dict[str, list[int | None]]:
    """Read `--input-shape` values: `name:1,224,224,3`, several in one text (`a:1,2,b:3`) or one per text.
    `-1` or `?` is a dynamic dimension; `name:` (or `name:[]`) is a scalar. Returns `{name: dims}`."""
    shapes: dict[str, list[int | None]] = {}
    current: str | None = None
    for text in texts:
        for token in text.split(","):
            token = token.strip()
            if ":" in token:
                current, _, token = token.rpartition(":")
                current = current.strip()
                if not current:
                    raise OptimizerError(f"--input-shape {text!r}: a shape must follow a name (name:1,224,224,3)")
                shapes[current] = []
            token = token.strip("[] ")
            if not token:
                continue
            if current is None:
                raise OptimizerError(f"--input-shape {text!r}: write name:dims, such as images:1,224,224,3")
            if token in ("-1", "?", "None"):
                shapes[current].append(None)
            elif token.isdigit():
                shapes[current].append(int(token))
            else:
                raise OptimizerError(f"--input-shape {text!r}: {token!r} is not a dimension (a size, -1 or ?)")
    return shapes


def fix_input_shapes(graph: Graph, shapes: Mapping[str, Sequence[int | None]], where: str | None = None) -> None:
    """Set the `shape` attr of each named placeholder (`node` or `node:0`) to the given shape, so that shape
    inference, and the passes that use it, see a static input. A shape that contradicts the one the graph
    declares (another rank, or another size where both are known) is refused."""
    tf = tensorflow()
    for text, dims in shapes.items():
        (tensor,) = resolve(graph, [text], "--input-shape", where)
        op = graph.op(tensor.node)
        if op not in PLACEHOLDER_OPS:
            raise OptimizerError(f"--input-shape {text!r}: {tensor.node} is a {op}, not a placeholder", where)
        wanted = tf.TensorShape([None if dim is None or int(dim) < 0 else int(dim) for dim in dims])
        attrs = graph.node(tensor.node).attrs
        if "shape" in attrs:
            declared = tf.TensorShape(attrs["shape"].shape)
            if not declared.is_compatible_with(wanted):
                raise OptimizerError(f"--input-shape {text!r}: the graph declares shape {declared}", where)
            wanted = declared.merge_with(wanted)
        graph.set_attr(tensor.node, "shape", AttrValue(shape=wanted.as_proto()))
