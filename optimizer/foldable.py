"""What TensorFlow may execute while optimizing: the one safety policy of constant evaluation.

Constant folding runs the graph's own ops, at optimization time, on the machine of whoever optimizes it. An
untrusted model must not make that read a local file into the output, draw random numbers once and freeze them,
update state, or run arbitrary Python. Folding (`optimizer.evaluate`), verification and fuzzing share this policy.

Contract
- `foldable_ops()` is the allowlist: the ops of TensorFlow's registry (every op this TensorFlow knows) whose OpDef
  says they are pure, minus explicit families. An op is on it only when its OpDef
  1. is not stateful and has outputs;
  2. has no ref argument and no argument of fixed type resource, variant or a quantized type;
  3. names no file, path, directory, device, shared resource or descriptor source among its input arguments and
     attrs (`filename`, `file_pattern`, `prefix`, `logdir`, `container`, `shared_name`, `descriptor_source`, ...;
     `ARGUMENTS_THAT_REACH_OUT`);
  4. draws no random numbers: no `seed`/`seed2` attrs (`FractionalMaxPool`: random yet not stateful), no
     `seed` input, no `key`+`counter` inputs (stateless random: a folded draw is not the op's meaning);
  and when it is not in `DENIED_OPS` (arguments, control flow, ops that are not marked stateful yet read the
  outside world) nor in `DENIED_FAMILIES` (quantization: TFLite needs the ops; summaries, debugging, TPU, XLA,
  TensorArray, distributed and internal (`_`-prefixed) ops: meaningless or unrunnable on this CPU).
  An op the registry does not know (a custom op) is never on it: a new op is refused until TensorFlow describes it.
- `refusal(node, library)` is None when `node` is safe to execute with constant inputs, and otherwise the reason
  it is not: `Const` is safe (it is the input of every evaluation); any other op must be on the allowlist, and the
  node's own dtype attrs must give no ref, resource, variant or quantized-type input or output (`T=resource`); a
  call (`PartitionedCall`, `StatelessIf`, a library function used as an op, any func-valued attr) is allowed only
  when every function it reaches, transitively, passes this policy node by node; a function missing from the
  library is refused.
- Being on the allowlist says what an op may touch, not how much it allocates: the size of every result is
  bounded by the caller (`fold`'s size guards, from static shapes before evaluating) and by the limits of the
  child process TensorFlow runs in (`optimizer.sandbox`); ops whose output size depends on values (`Fill`,
  `Range`, `Tile`, `RaggedRange`, `ParseTensor`, `DecodeCompressed`, `AsString`, ...) run only there.
- `outside_world_ops(graph_def)` names the ops of a whole graph that touch files, the network, processes or
  Python; verification does not run a graph that has any.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Iterator, Sequence

from optimizer import opinfo
from optimizer.library import executed_nodes
from optimizer.protos import AttrValue, FunctionDefLibrary, GraphDef, NodeDef, OpDef, OpList

CONSTANT_OPS = frozenset({"Const"})
"""Ops whose value is their `value` attr (a fed `Const`, one that is a graph input, is not constant)."""

DENIED_OPS = (
    frozenset(
        {
            # interface and argument nodes: their value is given at run time
            "Placeholder",
            "PlaceholderV2",
            "PlaceholderWithDefault",
            "FakeParam",
            "_Arg",
            "_Retval",
            "_DeviceArg",
            "_DeviceRetval",
            "HostConst",
            "Abort",
            # not marked stateful, yet they read the outside world or memory-map files
            "ReadFile",
            "MatchingFiles",
            "ImmutableConst",
            "GenerateVocabRemapping",
            "LoadAndRemapMatrix",
            "DecodeProtoV2",
            "EncodeProto",
            "PyFuncStateless",
            "Timestamp",
            "Sleep",
            "ShardedFilename",
            "ShardedFilespec",
            # allocate without initializing
            "Empty",
            "_ParallelConcatStart",
        }
    )
    | opinfo.CONTROL_FLOW_OPS
)  # control flow routes values and dead-ness, computes nothing

DENIED_FAMILIES = (
    ("a quantization op", re.compile(r"quantiz|FakeQuant", re.IGNORECASE)),
    ("a summary or debugging op", re.compile(r"Summary|Debug|Print")),
    (
        "a TPU, XLA, distributed or runtime-internal op",
        re.compile(
            r"TPU|Xla|DTensor|Collective|Nccl|Send|Recv|"
            r"^_+Mkl|^_Host|^_Xla|^_Device|^_Scoped|^_Read|^_Ready|^_If|^_While|^_Switch|^_Enter"
        ),
    ),
    ("a TensorArray op", re.compile(r"TensorArray")),
    ("a random op", re.compile(r"Random|Multinomial|TruncatedNormal|Shuffle|SampleDistorted|NonDeterministic")),
)
"""Families of ops denied by name: pure in the registry's eyes, yet not to be folded (see the contract)."""

ARGUMENTS_THAT_REACH_OUT = re.compile(
    r"^(filenames?|.*_filenames?|file_.*|.*_file|.*file_path|path|.*_path|ckpt_path|prefix|.*_prefix(es)?|"
    r"file_pattern|.*dir|directory|logdir|log_dir_path|descriptor_source|data_source_name|source|"
    r"containers?|shared_names?|.*device.*)$"
)
"""Input-argument and attr names that make an op read or name a file, device or shared resource."""

# DataType enum values that folding never produces or consumes.
_DT_RESOURCE, _DT_VARIANT = 20, 21
_QUANTIZED_TYPES = frozenset({11, 12, 13, 15, 16})  # qint8, quint8, qint32, qint16, quint16
_REF_OFFSET = 100


def registered_op_defs() -> list[OpDef]:
    """Every OpDef this TensorFlow registers (custom ops loaded so far included)."""
    opinfo.op_def("Const")  # imports TensorFlow
    from tensorflow.python.client import pywrap_tf_session

    return list(OpList.FromString(pywrap_tf_session.TF_GetBuffer(pywrap_tf_session.TF_GetAllOpList())).op)


def _fixed_type_refusal(definition: OpDef) -> str | None:
    for kind, args in (("input", definition.input_arg), ("output", definition.output_arg)):
        for arg in args:
            if arg.is_ref:
                return f"it has a ref {kind} ({arg.name})"
            if arg.type == _DT_RESOURCE:
                return f"it has a resource {kind} ({arg.name})"
            if arg.type == _DT_VARIANT:
                return f"it has a variant {kind} ({arg.name})"
            if arg.type in _QUANTIZED_TYPES:
                return f"it has a quantized-type {kind} ({arg.name})"
    return None


def op_refusal(definition: OpDef) -> str | None:
    """Why the op `definition` describes is not on the allowlist (rules 1 to 4 of the contract and the explicit
    lists), or None when it is."""
    op = definition.name
    if op in DENIED_OPS:
        return f"{op} is denied"
    for family, pattern in DENIED_FAMILIES:
        if pattern.search(op):
            return f"{op} is {family}"
    if definition.is_stateful:
        return f"{op} is stateful"
    if not definition.output_arg:
        return f"{op} has no outputs"
    reason = _fixed_type_refusal(definition)
    if reason is not None:
        return f"{op}: {reason}"
    inputs = {arg.name for arg in definition.input_arg}
    attrs = {attr.name: attr.type for attr in definition.attr}
    for name in sorted(inputs | set(attrs)):
        if ARGUMENTS_THAT_REACH_OUT.match(name):
            return f"{op} names a file, device or shared resource ({name})"
    if (attrs.get("seed") == "int" and attrs.get("seed2") == "int") or "seed" in inputs or {"key", "counter"} <= inputs:
        return f"{op} is a random op (it takes a seed)"
    return None


@functools.cache
def foldable_ops() -> frozenset[str]:
    """The allowlist: every registered op that `op_refusal` accepts."""
    return frozenset(definition.name for definition in registered_op_defs() if op_refusal(definition) is None)


def _arg_types(node: NodeDef, arg: OpDef.ArgDef) -> list[int]:
    """The DataType enums of one input or output argument of `node` (empty when attrs are missing)."""
    if arg.type_list_attr:
        return list(node.attr[arg.type_list_attr].list.type)
    if arg.type:
        base = int(arg.type)
    elif arg.type_attr and arg.type_attr in node.attr:
        base = int(node.attr[arg.type_attr].type)
    else:
        return []
    return [base + _REF_OFFSET if arg.is_ref else base]


def _type_refusal(node: NodeDef, definition: OpDef) -> str | None:
    for kind, args in (("input", definition.input_arg), ("output", definition.output_arg)):
        for arg in args:
            if arg.is_ref:
                return f"it has a ref {kind} ({arg.name})"
            for dtype in _arg_types(node, arg):
                if dtype == _DT_RESOURCE:
                    return f"it has a resource {kind} ({arg.name})"
                if dtype == _DT_VARIANT:
                    return f"it has a variant {kind} ({arg.name})"
                if dtype in _QUANTIZED_TYPES:
                    return f"it has a quantized-type {kind} ({arg.name})"
                if dtype > _REF_OFFSET:
                    return f"it has a ref {kind} ({arg.name})"
    return None


def _functions_named(attr: AttrValue) -> Iterator[str]:
    if attr.HasField("func"):
        yield attr.func.name
    elif attr.HasField("list"):
        for entry in attr.list.func:
            yield entry.name


def called_functions(node: NodeDef, library: FunctionDefLibrary | None) -> list[str]:
    """The library functions `node` calls directly: its op when that names a function, and func-valued attrs."""
    names = [name for attr in node.attr.values() for name in _functions_named(attr)]
    if (
        library is not None
        and opinfo.op_def(node.op) is None
        and any(function.signature.name == node.op for function in library.function)
    ):
        names.append(node.op)
    return names


def _own_refusal(node: NodeDef, library: FunctionDefLibrary | None) -> str | None:
    """The policy for `node` alone (not what it calls): the allowlist, then its own dtype attrs."""
    op = str(node.op)
    if op in CONSTANT_OPS:
        return None
    definition = opinfo.op_def(op)
    if definition is None:
        if op not in called_functions(node, library):
            return f"{op} is not a registered op"
        return None
    if op not in foldable_ops():
        return op_refusal(definition) or f"{op} is not on the allowlist"
    reason = _type_refusal(node, definition)
    return None if reason is None else f"{op}: {reason}"


def refusal(node: NodeDef, library: FunctionDefLibrary | None = None) -> str | None:
    """Why `node` must not be executed at optimization time, or None when it may. See the module docstring.

    The functions `node` reaches are walked breadth-first, each once (a recursive or a deep library neither
    recurses nor repeats); the reason names the chain of calls down to the node refused."""
    reason = _own_refusal(node, library)
    if reason is not None:
        return reason
    by_name = {} if library is None else {function.signature.name: function for function in library.function}
    # function -> (the node calling it first, the function that node is in; None for `node` itself)
    reached: dict[str, tuple[NodeDef, str | None]] = {}
    queue: deque[tuple[str, NodeDef, str | None]] = deque(
        (name, node, None) for name in called_functions(node, library)
    )
    while queue:
        name, caller, caller_function = queue.popleft()
        if name in reached:
            continue
        reached[name] = (caller, caller_function)
        function = by_name.get(name)
        if function is None:
            return _through(reached, name, f"{caller.op} calls {name}, which is not in the function library")
        for inner in function.node_def:
            reason = _own_refusal(inner, library)
            if reason is not None:
                return _through(reached, name, f"{caller.op} calls {name}, where {inner.name}: {reason}")
            queue.extend((called, inner, name) for called in called_functions(inner, library))
    return None


def _through(reached: dict[str, tuple[NodeDef, str | None]], name: str, reason: str) -> str:
    """`reason` (about a call of `name`) prefixed with the calls that lead to it from the node asked about."""
    caller_function = reached[name][1]
    while caller_function is not None:
        caller, outer = reached[caller_function]
        reason = f"{caller.op} calls {caller_function}, where {reached[name][0].name}: {reason}"
        name, caller_function = caller_function, outer
    return reason


def is_safe(node: NodeDef, library: FunctionDefLibrary | None = None) -> bool:
    """True when `refusal(node, library)` is None."""
    return refusal(node, library) is None


_OUTSIDE_WORLD = re.compile(
    r"File|Reader|Save|Restore|Checkpoint|Summary|Writer|PyFunc|Send|Recv|Collective|Nccl|Rpc|Dataset|Iterator|"
    r"ImmutableConst|Debug|Socket|Http|Exec|Sleep"
)


def _touches_outside_world(node: NodeDef) -> bool:
    if node.op == "PrintV2":  # stderr is harmless; `output_stream: "file://..."` writes a file
        return node.attr["output_stream"].s.startswith(b"file")
    return _OUTSIDE_WORLD.search(node.op) is not None


def input_node(text: str) -> str:
    """The node name of a NodeDef input (`name`, `name:port` or `^name`)."""
    return text.lstrip("^").split(":")[0]


PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
"""Ops that call back into the Python process that built the graph (`tf.py_function`, `tf.numpy_function`): the
function lives only there, so the graph cannot run anywhere else."""


def outside_world_ops(graph_def: GraphDef, fetches: Sequence[str]) -> list[str]:
    """The ops that running `fetches` (`name:port`) of `graph_def` would execute, function bodies included, and
    that would read or write files, talk to the network or other processes, or run Python: verification refuses
    to run such a graph. Nodes the fetches do not need (a saver beside the model) never run and do not count."""
    return sorted({node.op for node in _executed(graph_def, fetches) if _touches_outside_world(node)})


def python_ops(graph_def: GraphDef, fetches: Sequence[str]) -> list[str]:
    """The `PYTHON_OPS` that running `fetches` of `graph_def` would execute (function bodies included), each as
    `Op 'node'` (the first node of that op found)."""
    found: dict[str, str] = {}
    for node in _executed(graph_def, fetches):
        if node.op in PYTHON_OPS:
            found.setdefault(node.op, node.name)
    return [f"{op} {name!r}" for op, name in sorted(found.items())]


def _executed(graph_def: GraphDef, fetches: Sequence[str]) -> list[NodeDef]:
    """`executed_nodes` as one list: the graph's nodes, then those of the functions they call."""
    nodes, called = executed_nodes(graph_def, fetches)
    return [*nodes, *(node for body in called.function for node in body.node_def)]
