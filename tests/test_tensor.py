"""TensorProto <-> numpy conversion across dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer._tf import tensorflow
from optimizer.protos import DataType, TensorProto
from optimizer.tensor import const_attrs, element_count, from_numpy, to_numpy

tf = tensorflow()


@pytest.mark.parametrize(
    "value",
    [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.array([1.5, -2.0], dtype=np.float16),
        np.array([[1, 2]], dtype=np.int8),
        np.array([2**40], dtype=np.int64),
        np.array([True, False]),
        np.array([1 + 2j], dtype=np.complex64),
        np.array([b"a", b"bc"], dtype=object),
        np.float64(3.25),
    ],
    ids=lambda value: str(np.asarray(value).dtype),
)
def test_values_round_trip(value: np.ndarray) -> None:
    back = to_numpy(from_numpy(value))
    assert back.dtype == np.asarray(value).dtype and back.shape == np.asarray(value).shape
    assert np.array_equal(back, value)


def test_const_attrs_name_the_dtype() -> None:
    attrs = const_attrs(np.zeros(3, dtype=np.int32))
    assert attrs["dtype"].type == DataType.Value("DT_INT32")
    assert attrs["value"].tensor.tensor_shape.dim[0].size == 3


def _proto(
    dtype: int, dims: list[int], field: str = "", values: list[object] | None = None, content: bytes = b""
) -> TensorProto:
    proto = TensorProto(dtype=dtype, tensor_content=content)
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    if field:
        getattr(proto, field).extend(values or [])
    return proto


@pytest.mark.parametrize(
    "proto",
    [
        _proto(1, [2, 3], "float_val", [1.5]),  # one value repeated to fill the shape
        _proto(1, [4], "float_val", [1.0, -0.0]),  # the last value repeats
        _proto(1, [3], "float_val", [0.1, 0.2, 0.3]),  # doubles in the proto, float32 out
        _proto(2, [], "double_val", [2.5]),
        _proto(3, [2, 2], "int_val", []),  # empty: zeros
        _proto(9, [3], "int64_val", [2**40, -1]),
        _proto(10, [2], "bool_val", [True]),
        _proto(1, [2], content=np.array([1.0, float("nan")], np.float32).tobytes()),
        _proto(3, [0], "int_val", []),
        _proto(1, [], "float_val", []),
    ],
    ids=lambda proto: f"dtype{proto.dtype}",
)
def test_fast_decoding_equals_tensorflow(proto: TensorProto) -> None:
    expected = tf.make_ndarray(proto)
    value = to_numpy(proto)
    assert value.dtype == expected.dtype and value.shape == expected.shape
    assert value.tobytes() == expected.tobytes()


def test_a_proto_tensorflow_rejects_is_rejected_the_same_way() -> None:
    proto = _proto(1, [1], "float_val", [1.0, 2.0])  # more values than the shape holds
    with pytest.raises(ValueError):
        tf.make_ndarray(proto)
    with pytest.raises(ValueError):
        to_numpy(proto)


@pytest.mark.parametrize(
    "value",
    [
        np.float32(1.5),
        np.array(2.0, np.float32),
        np.array([1.0, -0.0, np.nan], np.float32),
        np.array([[1, 2], [3, 4]], np.int64),
        np.array([7], np.int32),
        np.array([], np.float64),
        np.zeros((2, 0, 3), np.float32),
        np.arange(6, dtype=np.float64).reshape(2, 3).T,  # not C-contiguous
        np.array([True, False]),
    ],
    ids=lambda value: f"{np.asarray(value).dtype}{np.asarray(value).shape}",
)
def test_from_numpy_encodes_as_tensorflow_does(value: np.ndarray) -> None:
    assert from_numpy(value) == tf.make_tensor_proto(value)


def test_element_count_reads_the_declared_shape_without_decoding() -> None:
    assert element_count(from_numpy(np.zeros((3, 0, 2), np.float32))) == 0
    assert element_count(from_numpy(np.float32(1.5))) == 1  # a scalar
    declared = TensorProto(dtype=1)
    for size in (10**6, 10**6, -4):  # a hostile shape: no content behind it, a negative size counts as 0
        declared.tensor_shape.dim.add(size=size)
    assert element_count(declared) == 0
    del declared.tensor_shape.dim[-1]
    assert element_count(declared) == 10**12
