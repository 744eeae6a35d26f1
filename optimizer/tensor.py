"""TensorProto <-> numpy. Constants stay protos in the IR; a pass decodes one only when it needs the values."""

from __future__ import annotations

from typing import Any

import numpy as np

from optimizer._tf import tensorflow
from optimizer.protos import AttrValue, TensorProto

_FAST_DTYPES: dict[int, tuple[type, str]] = {
    1: (np.float32, "float_val"),
    2: (np.float64, "double_val"),
    3: (np.int32, "int_val"),
    9: (np.int64, "int64_val"),
    10: (np.bool_, "bool_val"),
}
"""DataType enum -> numpy type and repeated field, for the dtypes decoded here without TensorFlow."""


def element_count(proto: TensorProto) -> int:
    """How many elements `proto` declares, from its shape alone (a negative size counts as 0; nothing is decoded)."""
    count = 1
    for dim in proto.tensor_shape.dim:
        count *= max(int(dim.size), 0)
    return count


def to_numpy(proto: TensorProto) -> np.ndarray:
    """The values of `proto` as a numpy array, exactly as `tf.make_ndarray` gives them (its rules: `tensor_content`
    first, else the typed repeated field with its last value repeated to fill the shape, zeros when empty).
    Float32/64, int32/64 and bool are decoded here (a constant is decoded in microseconds, not tens of them);
    every other dtype, and any proto those rules reject, goes to TensorFlow."""
    fast = _FAST_DTYPES.get(proto.dtype)
    if fast is not None:
        dtype, field = fast
        shape = [dim.size for dim in proto.tensor_shape.dim]
        count = 1
        for size in shape:
            count *= size
        content = proto.tensor_content
        if count >= 0 and min(shape, default=0) >= 0:
            if content:
                if len(content) == count * np.dtype(dtype).itemsize:
                    return np.frombuffer(content, dtype=dtype).copy().reshape(shape)
            else:
                values = getattr(proto, field)
                given = len(values)
                if given == 0:
                    return np.zeros(shape, dtype)
                if given <= count:
                    array: np.ndarray = np.empty(count, dtype)
                    array[:given] = values
                    array[given:] = values[-1]
                    return array.reshape(shape)
    return np.asarray(tensorflow().make_ndarray(proto))


NUMERIC_DTYPES: dict[int, np.dtype] = {
    enum: np.dtype(numpy_type) for enum, (numpy_type, _) in _FAST_DTYPES.items() if numpy_type != np.bool_
}
"""DataType enum -> numpy dtype of float32/64 and int32/64, which `from_numpy` encodes without TensorFlow."""
_FAST_ENCODINGS = {dtype: (enum, _FAST_DTYPES[enum][1]) for enum, dtype in NUMERIC_DTYPES.items()}


def from_numpy(value: Any, dtype: Any = None) -> TensorProto:
    """A TensorProto holding `value` (optionally as TF `dtype`), encoded as `tf.make_tensor_proto` encodes it.
    A float32/64 or int32/64 numpy value with no `dtype` is encoded here by its rules (`tensor_content` for more
    than one element, else the typed repeated field), in microseconds rather than tens of them."""
    fast = _FAST_ENCODINGS.get(value.dtype) if dtype is None and isinstance(value, np.ndarray | np.generic) else None
    if fast is None:
        proto: TensorProto = tensorflow().make_tensor_proto(value, dtype=dtype)
        return proto
    enum, field = fast
    array = np.asarray(value)
    encoded = TensorProto(dtype=enum)
    encoded.tensor_shape.SetInParent()  # a scalar's shape is present and empty, as TensorFlow writes it
    for size in array.shape:
        encoded.tensor_shape.dim.add(size=size)
    if array.size > 1:
        encoded.tensor_content = array.tobytes()
    else:
        getattr(encoded, field).extend(array.ravel().tolist())
    return encoded


def const_attrs(value: Any, dtype: Any = None) -> dict[str, AttrValue]:
    """The attrs of a `Const` node holding `value`: `dtype` and `value`."""
    proto = from_numpy(value, dtype)
    return {"dtype": AttrValue(type=proto.dtype), "value": AttrValue(tensor=proto)}
