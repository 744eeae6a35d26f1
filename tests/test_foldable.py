"""The safety policy of constant evaluation (`optimizer/foldable.py`): what may run at optimization time."""

from __future__ import annotations

import pytest

from optimizer import foldable
from optimizer.protos import FunctionDefLibrary
from tests.passes.build import node

tf = pytest.importorskip("tensorflow")


@pytest.mark.parametrize(
    ("op", "attrs", "reason"),
    [
        ("ReadFile", {}, "denied"),
        ("MatchingFiles", {}, "denied"),
        ("ImmutableConst", {"dtype": tf.float32}, "denied"),
        ("PyFuncStateless", {}, "denied"),
        ("PyFunc", {}, "outside world"),
        ("EagerPyFunc", {}, "outside world"),
        ("RandomUniform", {"dtype": tf.float32}, "random"),
        ("StatelessRandomUniform", {"dtype": tf.float32}, "random"),
        ("TruncatedNormal", {"dtype": tf.float32}, "random"),
        ("FractionalMaxPool", {}, "random op (it takes a seed)"),
        ("FakeQuantWithMinMaxArgs", {}, "quantization"),
        ("QuantizeV2", {}, "quantization"),
        ("Dequantize", {}, "quantization"),
        ("QuantizedConv2D", {}, "quantization"),
        ("HashTableV2", {}, "outside world"),
        ("LookupTableFindV2", {}, "outside world"),
        ("TextLineReaderV2", {}, "outside world"),
        ("QueueDequeueV2", {}, "outside world"),
        ("RestoreV2", {}, "outside world"),
        ("Placeholder", {"dtype": tf.float32}, "denied"),
        ("Switch", {}, "denied"),
        ("Merge", {}, "denied"),
        ("Enter", {}, "denied"),
        ("CheckNumerics", {}, "stateful"),
        ("Empty", {"dtype": tf.float32}, "denied"),
        ("NoSuchCustomOp", {}, "not a registered op"),
        ("TensorListFromTensor", {"element_dtype": tf.float32, "shape_type": tf.int32}, "variant"),
        ("ReadVariableOp", {"dtype": tf.float32}, "outside world"),
        ("NoOp", {"T": None}, "no outputs"),
    ],
)
def test_unsafe_ops_are_refused_with_a_reason(op: str, attrs: dict[str, object], reason: str) -> None:
    attrs = {"T": tf.float32, **attrs}
    refusal = foldable.refusal(node("n", op, **attrs))
    assert refusal is not None and reason in refusal


@pytest.mark.parametrize(
    ("op", "attrs"),
    [
        ("Const", {"T": None}),
        ("AddV2", {}),
        ("MatMul", {}),
        ("Shape", {"out_type": tf.int32}),
        ("Fill", {"index_type": tf.int32}),
        ("Cast", {"SrcT": tf.float32, "DstT": tf.bfloat16}),
        ("StringJoin", {"T": None}),
        ("_FusedConv2D", {}),
    ],
)
def test_pure_ops_are_allowed(op: str, attrs: dict[str, object]) -> None:
    assert foldable.refusal(node("n", op, **{"T": tf.float32, **attrs})) is None


def _library(*bodies: tuple[str, str]) -> FunctionDefLibrary:
    """Functions `name` whose body is one node of `op`."""
    library = FunctionDefLibrary()
    for name, op in bodies:
        function = library.function.add()
        function.signature.name = name
        function.node_def.add().CopyFrom(node("inner", op, T=tf.float32, dtype=tf.float32))
    return library


def test_function_calls_are_checked_through_their_bodies() -> None:
    library = _library(("pure", "Neg"), ("reads", "ReadFile"), ("calls_reads", "PartitionedCall"))
    library.function[2].node_def[0].attr["f"].func.name = "reads"
    call = node("call", "PartitionedCall", T=None, Tin=[tf.float32], Tout=[tf.float32])

    call.attr["f"].func.name = "pure"
    assert foldable.refusal(call, library) is None
    call.attr["f"].func.name = "calls_reads"
    assert "ReadFile" in (foldable.refusal(call, library) or "")
    call.attr["f"].func.name = "missing"
    assert "not in the function library" in (foldable.refusal(call, library) or "")
    # a library function used as an op is a call too
    assert foldable.refusal(node("direct", "pure", T=None), library) is None
    assert foldable.refusal(node("direct", "reads", T=None), library) is not None


def test_recursive_functions_terminate() -> None:
    library = _library(("loop", "PartitionedCall"))
    library.function[0].node_def[0].attr["f"].func.name = "loop"
    call = node("call", "PartitionedCall", T=None, Tin=[tf.float32], Tout=[tf.float32])
    call.attr["f"].func.name = "loop"
    assert foldable.refusal(call, library) is None
