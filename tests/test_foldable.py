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
        ("PyFunc", {}, "stateful"),
        ("EagerPyFunc", {}, "stateful"),
        ("RandomUniform", {"dtype": tf.float32}, "random"),
        ("StatelessRandomUniform", {"dtype": tf.float32}, "random"),
        ("TruncatedNormal", {"dtype": tf.float32}, "random"),
        ("FractionalMaxPool", {}, "random op (it takes a seed)"),
        ("FakeQuantWithMinMaxArgs", {}, "quantization"),
        ("QuantizeV2", {}, "quantization"),
        ("Dequantize", {}, "quantization"),
        ("QuantizedConv2D", {}, "quantization"),
        ("HashTableV2", {}, "stateful"),
        ("LookupTableFindV2", {}, "stateful"),
        ("TextLineReaderV2", {}, "stateful"),
        ("QueueDequeueV2", {}, "stateful"),
        ("RestoreV2", {}, "stateful"),
        ("Placeholder", {"dtype": tf.float32}, "denied"),
        ("Switch", {}, "denied"),
        ("Merge", {}, "denied"),
        ("Enter", {}, "denied"),
        ("CheckNumerics", {}, "stateful"),
        ("Empty", {"dtype": tf.float32}, "denied"),
        ("NoSuchCustomOp", {}, "not a registered op"),
        ("TensorListFromTensor", {"element_dtype": tf.float32, "shape_type": tf.int32}, "variant"),
        ("ReadVariableOp", {"dtype": tf.float32}, "stateful"),
        ("NoOp", {"T": None}, "no outputs"),
        ("GenerateVocabRemapping", {}, "denied"),
        ("LoadAndRemapMatrix", {}, "denied"),
        ("DecodeProtoV2", {}, "denied"),
        ("RecordInput", {}, "stateful"),
        ("PrintV2", {}, "debugging"),
        ("Batch", {}, "shared resource (container)"),
        ("StochasticCastToInt", {}, "random op (it takes a seed)"),
        ("StatelessRandomUniformV2", {}, "random"),
        ("XlaDot", {}, "XLA"),
        ("Identity", {"T": tf.resource}, "resource input"),
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
        ("RegexReplace", {}),
        ("CTCBeamSearchDecoder", {}),
        ("RaggedRange", {"Tsplits": tf.int64}),
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


def test_the_allowlist_is_built_from_the_registry() -> None:
    """Every op on the allowlist is registered, pure by its OpDef and outside every explicit list; the ops every
    model folds are on it."""
    definitions = {definition.name: definition for definition in foldable.registered_op_defs()}
    allowed = foldable.foldable_ops()
    assert len(definitions) > 1000 and 500 < len(allowed) < len(definitions)
    assert {"MatMul", "Conv2D", "Shape", "StridedSlice", "ConcatV2", "Cast", "Transpose", "PartitionedCall"} <= allowed
    for op in allowed:
        definition = definitions[op]
        assert not definition.is_stateful and definition.output_arg and op not in foldable.DENIED_OPS
        assert not any(arg.is_ref or arg.type in (20, 21) for arg in [*definition.input_arg, *definition.output_arg])
        names = [arg.name for arg in definition.input_arg] + [attr.name for attr in definition.attr]
        assert not any(foldable.ARGUMENTS_THAT_REACH_OUT.match(name) for name in names), op


def test_an_op_that_names_a_file_is_refused_by_its_arguments_alone() -> None:
    """Not on any explicit list, not stateful: an argument called `filename` keeps it off the allowlist."""
    from optimizer.protos import OpDef

    definition = OpDef(name="LooksPure")
    definition.input_arg.add(name="filename", type=tf.string.as_datatype_enum)
    definition.output_arg.add(name="contents", type=tf.string.as_datatype_enum)
    assert "names a file" in (foldable.op_refusal(definition) or "")
    del definition.input_arg[:]
    definition.input_arg.add(name="x", type=tf.string.as_datatype_enum)
    assert foldable.op_refusal(definition) is None
    definition.attr.add(name="shared_name", type="string")
    assert "shared resource" in (foldable.op_refusal(definition) or "")
