"""The textual form of a graph: one line per node, what `str(graph)` prints.

    graph(x: f32[?,3]) -> (y, top:1)
      x = Placeholder() {dtype=f32, shape=[?,3]}
      w = Const() {dtype=f32, value=f32[3,4] [0.1, -0.2, 0.3, 0.0, ...] #5d0e2c1a}
      b = Const() {dtype=f32, value=f32[4] [0.5, 0.0, -1.0, 2.0]}
      mm = MatMul(x, w, ^init) {T=f32, transpose_a=false, transpose_b=false} on "/device:CPU:0"
      ...

    func @square(b: f32) -> (sq: f32)
      mul = Mul(b, b) {T=f32}
      return sq=mul:z:0

Contract
- A header names the declared inputs (with the dtype and shape of a placeholder), the outputs and the kept nodes;
  then every node in graph order (the order `to_graph_def` writes), then each library function (its signature,
  its body in written order, its returns), then the gradient entries.
- A node line is `name = Op(inputs) {attrs} on "device"`: the notation of `tests/builder.py`. Data inputs in slot
  order, `name` for port 0 and `name:port` otherwise (function bodies keep TensorFlow's `node:output:index`), then
  control inputs as `^name`. Attrs sorted by key, every one of them; dtypes abbreviated (`f32`, `i64`, `str`,
  `f32_ref`), shapes as `[2,?,3]` (`[*]` for an unknown rank), functions as `@name`, strings quoted.
- A constant (a `tensor` attr) is `dtype[shape]` then its values when it has at most `SMALL_TENSOR` elements, else
  its first `LEADING_VALUES` values and `#` with a hash of its serialized proto (just the hash for dtypes not
  decoded without TensorFlow): a changed constant is a changed line, whatever its size. Strings longer than
  `LONG_STRING` bytes are shortened the same way.
- Deterministic and stable (golden files are written in it): the same graph prints the same text in any process.
  It is not meant to be read back; a NodeDef's debug info and full type, and a shape's dim names, are left out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer.protos import AttrValue, DataType, FunctionDef, FunctionDefLibrary, NodeDef

if TYPE_CHECKING:
    from optimizer.ir import Graph

SMALL_TENSOR = 8
"""Constants with at most this many elements are printed in full."""
LEADING_VALUES = 4
"""Larger constants show this many leading values, then a hash of the whole."""
LONG_STRING = 64
"""Strings (attrs and tensor values) longer than this many bytes are printed shortened, with a hash."""

_DTYPE_NAMES = {
    "DT_FLOAT": "f32",
    "DT_DOUBLE": "f64",
    "DT_HALF": "f16",
    "DT_BFLOAT16": "bf16",
    "DT_INT8": "i8",
    "DT_INT16": "i16",
    "DT_INT32": "i32",
    "DT_INT64": "i64",
    "DT_UINT8": "u8",
    "DT_UINT16": "u16",
    "DT_UINT32": "u32",
    "DT_UINT64": "u64",
    "DT_COMPLEX64": "c64",
    "DT_COMPLEX128": "c128",
    "DT_STRING": "str",
    "DT_QINT8": "qi8",
    "DT_QUINT8": "qu8",
    "DT_QINT16": "qi16",
    "DT_QUINT16": "qu16",
    "DT_QINT32": "qi32",
}
_REF_OFFSET = 100  # DT_FLOAT_REF = DT_FLOAT + 100, and so on

# DataType -> numpy type and the repeated TensorProto field that holds its values when `tensor_content` is empty.
_DECODABLE: dict[int, tuple[Any, str]] = {
    1: (np.float32, "float_val"),
    2: (np.float64, "double_val"),
    3: (np.int32, "int_val"),
    4: (np.uint8, "int_val"),
    5: (np.int16, "int_val"),
    6: (np.int8, "int_val"),
    9: (np.int64, "int64_val"),
    10: (np.bool_, "bool_val"),
    17: (np.uint16, "int_val"),
    19: (np.float16, "half_val"),  # bit patterns
    22: (np.uint32, "uint32_val"),
    23: (np.uint64, "uint64_val"),
}
_DT_STRING = 7
_DT_HALF = 19

_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.\-/>]+$")
_PORT_ZERO = re.compile(r"^(?P<node>[^:^][^:]*):0$")


def format_graph(graph: Graph) -> str:
    """The whole textual form of `graph` (no trailing newline)."""
    inputs = ", ".join(_interface_input(graph, tensor.node, tensor.port) for tensor in graph.inputs)
    outputs = ", ".join(_tensor(tensor.node, tensor.port) for tensor in graph.outputs)
    header = f"graph({inputs}) -> ({outputs})"
    if graph.keep:
        header += f" keep({', '.join(_name(name) for name in graph.keep)})"
    lines = [header]
    for node in graph.nodes():
        data = [_tensor(tensor.node, tensor.port) for tensor in graph.inputs_of(node.name)]
        control = ["^" + _name(source) for source in graph.control_inputs_of(node.name)]
        lines.append("  " + _node_line(node.proto, data + control))
    lines.extend(format_library(graph.library))
    return "\n".join(lines)


def format_library(library: FunctionDefLibrary) -> list[str]:
    """The lines of every function of `library`, each block after an empty line, then its gradient entries."""
    lines: list[str] = []
    for function in library.function:
        lines.append("")
        lines.extend(format_function(function))
    if library.gradient:
        lines.append("")
        lines.extend(f"gradient @{entry.function_name} = @{entry.gradient_func}" for entry in library.gradient)
    return lines


def format_function(function: FunctionDef) -> list[str]:
    """A function's lines: its signature, its body nodes as written, its returns."""
    signature = function.signature
    arguments = []
    for index, arg in enumerate(signature.input_arg):
        text = f"{_name(arg.name)}: {_arg_type(arg)}"
        if index in function.arg_attr and function.arg_attr[index].attr:
            text += " " + _attrs(function.arg_attr[index].attr)
        if index in function.resource_arg_unique_id:
            text += f" unique_id({function.resource_arg_unique_id[index]})"
        arguments.append(text)
    results = ", ".join(f"{_name(arg.name)}: {_arg_type(arg)}" for arg in signature.output_arg)
    head = f"func @{signature.name}"
    if signature.attr:
        head += "[" + ", ".join(f"{attr.name}: {attr.type}" for attr in signature.attr) + "]"
    head += f"({', '.join(arguments)}) -> ({results})"
    if signature.is_stateful:
        head += " stateful"
    if function.attr:
        head += " " + _attrs(function.attr)
    lines = [head]
    lines.extend("  " + _node_line(node, [format_input(text) for text in node.input]) for node in function.node_def)
    declared = [arg.name for arg in signature.output_arg]
    order = declared + sorted(key for key in function.ret if key not in declared)
    returns = [f"{_name(key)}={format_input(function.ret[key])}" for key in order if key in function.ret]
    controls = list(signature.control_output) + sorted(
        key for key in function.control_ret if key not in signature.control_output
    )
    returns += [
        f"^{_name(key)}={_name(function.control_ret[key])}" if key in function.control_ret else f"^{_name(key)}"
        for key in controls
    ]
    lines.append("  return " + ", ".join(returns) if returns else "  return")
    return lines


def format_node(node: NodeDef) -> str:
    """One node as a line, its inputs as written in its `input` field."""
    return _node_line(node, [format_input(text) for text in node.input])


def format_input(text: str) -> str:
    """A written input (`x`, `x:0`, `x:1`, `^c`, `call:output:0`) in the printed notation: port 0 is left out."""
    if text.startswith("^"):
        return "^" + _name(text[1:])
    match = _PORT_ZERO.match(text)
    if match:
        return _name(match["node"])
    return text if _PLAIN_NAME.match(text.replace(":", "")) else json.dumps(text)


def format_inputs(texts: Iterable[str]) -> str:
    """Written inputs as the parenthesized list of a node line: `(x, w:1, ^c)`."""
    return "(" + ", ".join(format_input(text) for text in texts) + ")"


def format_dtype(dtype: int) -> str:
    """`f32`, `i64`, `str`, `resource`, `f32_ref`...: a DataType enum value, abbreviated."""
    if dtype > _REF_OFFSET:
        return format_dtype(dtype - _REF_OFFSET) + "_ref"
    try:
        name = DataType.Name(dtype)
    except ValueError:
        return f"dtype{dtype}"
    return _DTYPE_NAMES.get(name) or name.removeprefix("DT_").lower()


def format_shape(shape: Any) -> str:
    """A TensorShapeProto: `[2,?,3]`, `[]` for a scalar, `[*]` for an unknown rank."""
    if shape.unknown_rank:
        return "[*]"
    return "[" + ",".join("?" if dim.size < 0 else str(dim.size) for dim in shape.dim) + "]"


def format_tensor(tensor: Any) -> str:
    """A TensorProto: `f32[2] [1.0, 2.0]` when small, `f32[3,3,16,32] [0.1, 0.2, 0.3, 0.4, ...] #<hash>` when not,
    `dtype[shape] #<hash>` when its values are not decodable without TensorFlow."""
    head = format_dtype(tensor.dtype) + format_shape(tensor.tensor_shape)
    decoded = _leading_values(tensor, SMALL_TENSOR + 1)
    if decoded is not None and decoded[1] <= SMALL_TENSOR:
        values = decoded[0]
        if not tensor.tensor_shape.dim:
            return f"{head} {values[0]}"
        return f"{head} [{', '.join(values)}]"
    digest = "#" + _digest(tensor.SerializeToString(deterministic=True))
    if decoded is None:
        return f"{head} {digest}"
    return f"{head} [{', '.join(decoded[0][:LEADING_VALUES])}, ...] {digest}"


def format_attr(value: AttrValue) -> str:
    """One AttrValue in the printed notation."""
    kind = value.WhichOneof("value")
    if kind == "list":
        items = value.list
        parts: list[str] = []
        parts += [_string(item) for item in items.s]
        parts += [str(item) for item in items.i]
        parts += [_float32(item) for item in items.f]
        parts += ["true" if item else "false" for item in items.b]
        parts += [format_dtype(item) for item in items.type]
        parts += [format_shape(item) for item in items.shape]
        parts += [format_tensor(item) for item in items.tensor]
        parts += [_func(item) for item in items.func]
        return "[" + ", ".join(parts) + "]"
    if kind == "s":
        return _string(value.s)
    if kind == "i":
        return str(value.i)
    if kind == "f":
        return _float32(value.f)
    if kind == "b":
        return "true" if value.b else "false"
    if kind == "type":
        return format_dtype(value.type)
    if kind == "shape":
        return format_shape(value.shape)
    if kind == "tensor":
        return format_tensor(value.tensor)
    if kind == "func":
        return _func(value.func)
    if kind == "placeholder":
        return "$" + value.placeholder
    return "none"


# ----- pieces -------------------------------------------------------------------------------------------------


def _node_line(node: NodeDef, inputs: list[str]) -> str:
    line = f"{_name(node.name)} = {node.op}({', '.join(inputs)})"
    if node.attr:
        line += " " + _attrs(node.attr)
    if node.device:
        line += f" on {json.dumps(node.device)}"
    return line


def _attrs(attrs: Mapping[str, AttrValue]) -> str:
    return "{" + ", ".join(f"{_name(key)}={format_attr(attrs[key])}" for key in sorted(attrs)) + "}"


def _name(name: str) -> str:
    return name if _PLAIN_NAME.match(name) else json.dumps(name)


def _tensor(node: str, port: int) -> str:
    return _name(node) if port == 0 else f"{_name(node)}:{port}"


def _interface_input(graph: Graph, node: str, port: int) -> str:
    """A declared input, with the dtype and shape of its placeholder when they are known."""
    text = _tensor(node, port)
    if node not in graph or port != 0:
        return text
    attrs = graph.node(node).attrs
    if "dtype" not in attrs:
        return text
    return f"{text}: {format_dtype(attrs['dtype'].type)}" + (
        format_shape(attrs["shape"].shape) if "shape" in attrs else ""
    )


def _arg_type(arg: Any) -> str:
    if arg.number_attr:
        kind = f"{arg.number_attr}*{format_dtype(arg.type) if arg.type else arg.type_attr}"
    elif arg.type_list_attr:
        kind = f"list({arg.type_list_attr})"
    elif arg.type_attr:
        kind = arg.type_attr
    else:
        kind = format_dtype(arg.type)
    return kind + "_ref" if arg.is_ref else kind


def _func(func: Any) -> str:
    return f"@{func.name}" + (_attrs(func.attr) if func.attr else "")


def _float32(value: float) -> str:
    return str(np.float32(value))


def _string(value: bytes) -> str:
    if len(value) > LONG_STRING:
        return f"{_string(value[: LONG_STRING // 2])}...({len(value)} bytes #{_digest(value)})"
    try:
        return json.dumps(value.decode("utf-8"))
    except UnicodeDecodeError:
        return repr(value)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:8]


def _leading_values(tensor: Any, limit: int) -> tuple[list[str], int] | None:
    """The printed values of the first `limit` elements of a tensor (flat, row-major), decoded by TensorFlow's
    rules (`tensor_content` first, else the typed field with its last value repeated), and how many elements it
    has; None when its shape is not fully known or its values are not decodable here."""
    if tensor.tensor_shape.unknown_rank:
        return None
    count = 1
    for dim in tensor.tensor_shape.dim:
        if dim.size < 0:
            return None
        count *= dim.size
    wanted = min(count, limit)
    if tensor.dtype == _DT_STRING:
        strings = list(tensor.string_val[:wanted])
        if len(tensor.string_val) > count or (count and not strings and tensor.tensor_content):
            return None
        strings += [strings[-1] if strings else b""] * (wanted - len(strings))
        return [_string(item) for item in strings], count
    decodable = _DECODABLE.get(tensor.dtype)
    if decodable is None:
        return None
    dtype, field = decodable
    content = tensor.tensor_content
    if content:
        size = np.dtype(dtype).itemsize
        if len(content) != count * size:
            return None
        array = np.frombuffer(content[: wanted * size], dtype=dtype)
    else:
        values = getattr(tensor, field)
        if len(values) > count:
            return None
        given = list(values[:wanted])
        given += [values[-1] if len(values) else 0] * (wanted - len(given))
        array = np.array(given, np.uint16).view(np.float16) if tensor.dtype == _DT_HALF else np.array(given, dtype)
    return [_scalar(item) for item in array], count


def _scalar(value: Any) -> str:
    if isinstance(value, np.bool_):
        return "true" if value else "false"
    if isinstance(value, np.float64):
        return repr(float(value))
    return str(value)
