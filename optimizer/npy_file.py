"""Reading a user's `.npy` file (`--input-data`) without trusting it.

Contract
- `load_npy(path)` returns the array, or raises an OptimizerError naming the file in one line when it is not a
  regular file, not a `.npy`, holds Python objects (never unpickled), has a header over `MAX_HEADER_BYTES`, or
  declares a shape whose data the file does not hold (a small file claiming terabytes is refused before anything
  is allocated).
"""

from __future__ import annotations

import math
import os
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from optimizer.errors import OptimizerError
from optimizer.paths import check_readable

MAX_HEADER_BYTES = 10_000  # numpy's own default limit for untrusted files


def _header(stream: BinaryIO, where: str) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(stream, max_header_size=MAX_HEADER_BYTES)
        else:
            shape, _, dtype = npy_format.read_array_header_2_0(stream, max_header_size=MAX_HEADER_BYTES)
    except (ValueError, OSError, SyntaxError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OptimizerError(f"not a readable .npy file: {first}", where) from error
    return tuple(shape), dtype


def load_npy(path: str) -> np.ndarray:
    """The array in the `.npy` file `path` (see the module docstring)."""
    check_readable(path)
    try:
        with open(path, "rb") as stream:
            shape, dtype = _header(stream, path)
            if dtype.hasobject:
                raise OptimizerError("holds Python objects; only plain arrays are read (never unpickled)", path)
            needed = math.prod(shape) * dtype.itemsize
            available = os.fstat(stream.fileno()).st_size - stream.tell()
            if needed > available:
                raise OptimizerError(
                    f"declares shape {list(shape)} ({needed} bytes of {dtype}) but holds {available} bytes", path
                )
        return np.load(path, allow_pickle=False, max_header_size=MAX_HEADER_BYTES)
    except OSError as error:
        raise OptimizerError(f"cannot read input data: {error.strerror or error}", path) from error
    except ValueError as error:
        raise OptimizerError(f"cannot read input data: {str(error).strip().splitlines()[0]}", path) from error
