"""The textual form of a graph (`optimizer.printer`): exact lines for small graphs, and stability."""

from __future__ import annotations

import numpy as np
from google.protobuf import text_format

from optimizer import Graph, Tensor
from optimizer.printer import format_attr, format_dtype, format_input, format_inputs, format_node, format_tensor
from optimizer.protos import AttrValue, DataType, GraphDef, NodeDef, TensorProto
from optimizer.tensor import const_attrs

SMALL = """
node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } }
       attr { key: "shape" value { shape { dim { size: -1 } dim { size: 3 } } } } }
node { name: "w" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } }
       attr { key: "value" value { tensor {
         dtype: DT_FLOAT tensor_shape { dim { size: 3 } } float_val: 0.5 float_val: -2 } } } }
node { name: "init" op: "NoOp" }
node { name: "split" op: "Split" input: "dim" input: "x:0" attr { key: "num_split" value { i: 2 } }
       attr { key: "T" value { type: DT_FLOAT } } }
node { name: "dim" op: "Const" attr { key: "dtype" value { type: DT_INT32 } }
       attr { key: "value" value { tensor { dtype: DT_INT32 tensor_shape {} int_val: 1 } } } }
node { name: "y" op: "Mul" input: "split:1" input: "w" input: "^init" device: "/device:CPU:0"
       attr { key: "T" value { type: DT_FLOAT } } attr { key: "_class" value { list { s: "loc:@w" } } } }
"""

SMALL_TEXT = """\
graph(x: f32[?,3]) -> (y, split:1) keep(init)
  x = Placeholder() {dtype=f32, shape=[?,3]}
  w = Const() {dtype=f32, value=f32[3] [0.5, -2.0, -2.0]}
  init = NoOp()
  split = Split(dim, x) {T=f32, num_split=2}
  dim = Const() {dtype=i32, value=i32[] 1}
  y = Mul(split:1, w, ^init) {T=f32, _class=["loc:@w"]} on "/device:CPU:0\""""


def _graph(text: str, inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = ()) -> Graph:
    graph_def = GraphDef()
    text_format.Parse(text, graph_def)
    return Graph.from_graph_def(graph_def, [Tensor.parse(n) for n in inputs], [Tensor.parse(n) for n in outputs])


def _small() -> Graph:
    graph = _graph(SMALL, ("x",), ("y", "split:1"))
    graph.keep = ["init"]
    return graph


def test_a_small_graph_prints_one_line_per_node_in_graph_order() -> None:
    assert str(_small()) == SMALL_TEXT


def test_repr_stays_short() -> None:
    assert repr(_small()) == "<Graph: 6 nodes, 1 inputs, 2 outputs, 0 functions>"


def test_the_printed_inputs_follow_the_edges_after_a_rewrite() -> None:
    graph = _small()
    graph.set_input("y", 0, Tensor("split", 0))
    graph.remove_control_input("y", "init")
    graph.add_control_input("y", "dim")
    assert str(graph).splitlines()[-1] == '  y = Mul(split, w, ^dim) {T=f32, _class=["loc:@w"]} on "/device:CPU:0"'


def test_the_text_is_deterministic_across_copies_round_trips_and_attr_order() -> None:
    graph = _small()
    assert str(graph) == str(graph) == str(graph.copy())
    lifted = Graph.from_graph_def(GraphDef.FromString(graph.to_bytes()), graph.inputs, graph.outputs)
    lifted.keep = graph.keep
    assert str(lifted) == SMALL_TEXT
    one, other = NodeDef(name="n", op="Op"), NodeDef(name="n", op="Op")
    for key in ("b", "a", "_c", "C"):
        one.attr[key].i = 1
    for key in ("C", "_c", "a", "b"):
        other.attr[key].i = 1
    assert format_node(one) == format_node(other) == "n = Op() {C=1, _c=1, a=1, b=1}"


def test_a_large_constant_shows_its_leading_values_and_a_hash_of_the_whole() -> None:
    value = np.arange(3 * 3 * 16 * 32, dtype=np.float32).reshape(3, 3, 16, 32) / 4
    attrs = const_attrs(value)
    line = format_node(NodeDef(name="k", op="Const", attr=attrs))
    assert line == "k = Const() {dtype=f32, value=f32[3,3,16,32] [0.0, 0.25, 0.5, 0.75, ...] #b0c0202d}"
    value[2, 2, 15, 31] += 1  # the last element: a changed constant is a changed line
    assert format_tensor(const_attrs(value)["value"].tensor) != format_tensor(attrs["value"].tensor)


def test_small_constants_are_shown_in_full_whatever_their_encoding() -> None:
    packed = const_attrs(np.array([[1, 2], [3, 4]], np.int64))["value"].tensor
    assert packed.tensor_content  # encoded as raw bytes
    assert format_tensor(packed) == "i64[2,2] [1, 2, 3, 4]"
    splat = TensorProto(dtype=DataType.Value("DT_BOOL"), bool_val=[True])
    splat.tensor_shape.dim.add(size=3)
    assert format_tensor(splat) == "bool[3] [true, true, true]"
    half = TensorProto(dtype=DataType.Value("DT_HALF"), half_val=[np.float16(1.5).view(np.uint16)])
    assert format_tensor(half) == "f16[] 1.5"
    words = TensorProto(dtype=DataType.Value("DT_STRING"), string_val=[b"a", b"\xff"])
    words.tensor_shape.dim.add(size=2)
    assert format_tensor(words) == "str[2] [\"a\", b'\\xff']"
    complex_value = TensorProto(dtype=DataType.Value("DT_COMPLEX64"), scomplex_val=[1, 2])
    assert format_tensor(complex_value) == "c64[] #4700558e"  # not decoded without TensorFlow: a hash
    unknown = TensorProto(dtype=DataType.Value("DT_FLOAT"))
    unknown.tensor_shape.unknown_rank = True
    assert format_tensor(unknown).startswith("f32[*] #")


def test_attr_values_and_dtypes_have_short_stable_spellings() -> None:
    assert [format_dtype(DataType.Value(name)) for name in ("DT_FLOAT", "DT_INT64", "DT_STRING", "DT_RESOURCE")] == [
        "f32",
        "i64",
        "str",
        "resource",
    ]
    assert format_dtype(DataType.Value("DT_FLOAT_REF")) == "f32_ref"
    assert format_attr(AttrValue(f=0.1)) == "0.1"  # float32's shortest spelling, not 0.10000000149011612
    assert format_attr(AttrValue(s=b"SAME")) == '"SAME"'
    long = format_attr(AttrValue(s=b"x" * 100))
    assert long.startswith('"' + "x" * 32 + '"...(100 bytes #') and long.endswith(")")
    assert format_attr(AttrValue(placeholder="T")) == "$T"
    assert format_attr(AttrValue()) == "none"
    func = AttrValue()
    func.func.name = "body"
    func.func.attr["T"].type = DataType.Value("DT_INT32")
    assert format_attr(func) == "@body{T=i32}"
    shapes = AttrValue()
    shapes.list.shape.add().unknown_rank = True
    shapes.list.shape.add().dim.add(size=-1)
    shapes.list.shape.add()
    assert format_attr(shapes) == "[[*], [?], []]"


def test_written_inputs_drop_port_zero_and_keep_function_output_names() -> None:
    assert [format_input(text) for text in ("x", "x:0", "x:2", "^c", "call:output:0")] == [
        "x",
        "x",
        "x:2",
        "^c",
        "call:output:0",
    ]
    assert format_inputs(["a:0", "b:1", "^c"]) == "(a, b:1, ^c)"
    assert format_input("odd name") == '"odd name"'


LIBRARY = """
node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }
node { name: "call" op: "PartitionedCall" input: "x"
       attr { key: "Tin" value { list { type: DT_FLOAT } } } attr { key: "Tout" value { list { type: DT_FLOAT } } }
       attr { key: "f" value { func { name: "twice" } } } }
library {
  function {
    signature {
      name: "twice"
      input_arg { name: "a" type: DT_FLOAT }
      input_arg { name: "h" type: DT_RESOURCE }
      output_arg { name: "out" type_attr: "T" }
      attr { name: "T" type: "type" }
      control_output: "side"
      is_stateful: true
    }
    node_def { name: "two" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } }
               attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape {} float_val: 2 } } } }
    node_def { name: "mul" op: "Mul" input: "a" input: "two:output:0" input: "^two"
               attr { key: "T" value { type: DT_FLOAT } } }
    node_def { name: "side" op: "NoOp" }
    ret { key: "out" value: "mul:z:0" }
    control_ret { key: "side" value: "side" }
    attr { key: "_noinline" value { b: true } }
    arg_attr { key: 0 value { attr { key: "_user_specified_name" value { s: "a" } } } }
    resource_arg_unique_id { key: 1 value: 7 }
  }
  gradient { function_name: "twice" gradient_func: "twice_grad" }
}
"""

LIBRARY_TEXT = """\
graph(x: f32) -> (call)
  x = Placeholder() {dtype=f32}
  call = PartitionedCall(x) {Tin=[f32], Tout=[f32], f=@twice}

func @twice[T: type](a: f32 {_user_specified_name="a"}, h: resource unique_id(7)) -> (out: T) stateful {_noinline=true}
  two = Const() {dtype=f32, value=f32[] 2.0}
  mul = Mul(a, two:output:0, ^two) {T=f32}
  side = NoOp()
  return out=mul:z:0, ^side=side

gradient @twice = @twice_grad"""


def test_library_functions_print_after_the_graph_one_block_each() -> None:
    assert str(_graph(LIBRARY, ("x",), ("call",))) == LIBRARY_TEXT
