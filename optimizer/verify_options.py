"""Verification settings as users write them on the command line, parsed into `optimizer.verify.verify` keywords.

    --tolerance NAME=RTOL,ATOL     per output (`node` or `node:port`)
    --input-data NAME=FILE.npy     a fixed input value
    --input-range NAME=LOW,HIGH    the interval random values of an input are drawn from

Every malformed value raises an OptimizerError naming the option and the value: a pair that is not two finite
numbers, a negative tolerance, a range whose LOW exceeds HIGH, an unreadable `.npy`. Once the model is loaded,
`check_against` refuses names that are not the graph's inputs (`--input-data`, `--input-range`) or outputs
(`--tolerance`), and `--input-data` arrays whose shape or dtype the input cannot take.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from optimizer.errors import OptimizerError
from optimizer.ir import Tensor
from optimizer.npy_file import load_npy
from optimizer.verify import Tolerance


def _split(option: str, text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.strip() or not value.strip():
        raise OptimizerError(f"{option} {text!r}: write NAME=VALUE")
    try:
        return str(Tensor.parse(name.strip())), value.strip()
    except ValueError as error:
        raise OptimizerError(f"{option} {text!r}: {name.strip()!r} is not a tensor name") from error


def _pair(option: str, text: str, value: str) -> tuple[float, float]:
    try:
        first, second = (float(part) for part in value.split(","))
    except ValueError as error:
        raise OptimizerError(f"{option} {text!r}: expected two numbers separated by a comma") from error
    if not (math.isfinite(first) and math.isfinite(second)):
        raise OptimizerError(f"{option} {text!r}: both numbers must be finite")
    return first, second


def parse_tolerances(items: Iterable[str]) -> dict[str, Tolerance]:
    """`NAME=RTOL,ATOL` items -> {`node:port`: Tolerance}."""
    tolerances = {}
    for text in items:
        name, value = _split("--tolerance", text)
        rtol, atol = _pair("--tolerance", text, value)
        if rtol < 0 or atol < 0:
            raise OptimizerError(f"--tolerance {text!r}: tolerances must not be negative")
        tolerances[name] = Tolerance(rtol, atol)
    return tolerances


def parse_ranges(items: Iterable[str]) -> dict[str, tuple[float, float]]:
    """`NAME=LOW,HIGH` items -> {`node:port`: (low, high)}."""
    ranges = {}
    for text in items:
        name, value = _split("--input-range", text)
        low, high = _pair("--input-range", text, value)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise OptimizerError(f"--input-range {text!r}: LOW and HIGH must be finite numbers")
        if not low <= high:
            raise OptimizerError(f"--input-range {text!r}: LOW must not exceed HIGH")
        ranges[name] = (low, high)
    return ranges


def load_input_data(items: Iterable[str]) -> dict[str, np.ndarray]:
    """`NAME=FILE.npy` items -> {`node:port`: array}; never unpickles (a .npy of objects is refused)."""
    feeds = {}
    for text in items:
        name, path = _split("--input-data", text)
        feeds[name] = load_npy(path)
    return feeds


def verify_keywords(
    samples: int,
    seed: int,
    rtol: float,
    atol: float,
    tolerances: Iterable[str],
    input_data: Iterable[str],
    input_ranges: Iterable[str],
) -> dict[str, Any]:
    """All verification settings as keyword arguments of `optimizer.verify.verify`."""
    if samples < 1:
        raise OptimizerError("--verify-samples must be at least 1")
    for option, value in (("--rtol", rtol), ("--atol", atol)):
        if not (math.isfinite(value) and value >= 0):
            raise OptimizerError(f"{option} {value:g}: must be a finite number, not negative")
    return {
        "samples": samples,
        "seed": seed,
        "rtol": rtol,
        "atol": atol,
        "tolerances": parse_tolerances(tolerances),
        "feeds": load_input_data(input_data),
        "ranges": parse_ranges(input_ranges),
    }


def _shape_text(shape: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if dim is None else str(dim) for dim in shape) + "]"


def _takes(dtype: Any, array: np.ndarray) -> bool:
    """Whether an input of TF `dtype` can be fed `array` without changing the kind of its values."""
    if dtype.is_bool:
        return array.dtype.kind == "b"
    if dtype.is_integer:
        return array.dtype.kind in "iu"
    if dtype.is_floating:
        return array.dtype.kind in "iuf"
    if dtype.is_complex:
        return array.dtype.kind in "iufc"
    if dtype.name == "string":
        return array.dtype.kind in "SUO"
    return True  # quantized, variant, resource: TensorFlow judges


def check_against(
    keywords: Mapping[str, Any],
    inputs: Mapping[str, tuple[Sequence[int | None] | None, Any]],
    outputs: Sequence[str],
) -> None:
    """Refuse verification settings that do not fit the loaded graph: `inputs` maps each input (`node:port`) to
    its static shape (None: unknown rank) and TF dtype (None: unknown), `outputs` lists the outputs."""
    known_inputs, known_outputs = ", ".join(inputs) or "none", ", ".join(outputs) or "none"
    for option, names in (("--input-data", keywords["feeds"]), ("--input-range", keywords["ranges"])):
        for name in names:
            if name not in inputs:
                raise OptimizerError(f"{option} {name}: not an input of the graph (its inputs: {known_inputs})")
    for name in keywords["tolerances"]:
        if name not in outputs:
            raise OptimizerError(f"--tolerance {name}: not an output of the graph (its outputs: {known_outputs})")
    for name, array in keywords["feeds"].items():
        shape, dtype = inputs[name]
        fits = shape is None or (
            len(shape) == array.ndim and all(want in (None, got) for want, got in zip(shape, array.shape, strict=True))
        )
        if not fits:
            raise OptimizerError(
                f"--input-data {name}: an array of shape {_shape_text(array.shape)}, but input {name} has shape "
                f"{_shape_text(shape or ())}"
            )
        if dtype is not None and not _takes(dtype, array):
            raise OptimizerError(f"--input-data {name}: an array of {array.dtype}, but input {name} is {dtype.name}")
