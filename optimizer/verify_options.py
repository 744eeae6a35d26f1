"""Verification settings as users write them on the command line, parsed into `optimizer.verify.verify` keywords.

    --tolerance NAME=RTOL,ATOL     per output (`node` or `node:port`)
    --input-data NAME=FILE.npy     a fixed input value
    --input-range NAME=LOW,HIGH    the interval random values of an input are drawn from

Every malformed value raises an OptimizerError naming the option and the value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
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
    return first, second


def parse_tolerances(items: Iterable[str]) -> dict[str, Tolerance]:
    """`NAME=RTOL,ATOL` items -> {`node:port`: Tolerance}."""
    tolerances = {}
    for text in items:
        name, value = _split("--tolerance", text)
        rtol, atol = _pair("--tolerance", text, value)
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
    return {
        "samples": samples,
        "seed": seed,
        "rtol": rtol,
        "atol": atol,
        "tolerances": parse_tolerances(tolerances),
        "feeds": load_input_data(input_data),
        "ranges": parse_ranges(input_ranges),
    }
