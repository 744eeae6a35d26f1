"""`optimizer/call_graph.py`: cycles found and named through every way a function refers to another, iteratively,
in linear time; callers-first order; `optimizer.load` refuses a recursive library."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

import optimizer
from optimizer.call_graph import (
    call_graph,
    callers_first,
    check_not_recursive,
    find_cycle,
    recursive_functions,
    strongly_connected,
)
from optimizer.errors import OptimizerError
from tests.hostile import RECURSION_KINDS, call_chain, fan_out_tree, recursive_library

CYCLES = {
    "direct": ["f", "f"],
    "mutual": ["f", "g", "f"],
    "op-name": ["f", "g", "f"],
    "if": ["f", "f"],
    "while": ["f", "f"],
    "case": ["f", "f"],
    "three-cycle": ["f", "g", "h", "f"],
}


@pytest.mark.parametrize("kind", RECURSION_KINDS)
def test_every_kind_of_recursion_is_found_and_named(kind: str) -> None:
    library = recursive_library(kind).library
    assert find_cycle(call_graph(library)) == CYCLES[kind]
    with pytest.raises(OptimizerError, match="the function library is recursive"):
        check_not_recursive(library)


def test_acyclic_libraries_pass() -> None:
    for graph_def in (call_chain(5), fan_out_tree(5)):
        calls = call_graph(graph_def.library)
        assert find_cycle(calls) is None and not recursive_functions(calls)
        check_not_recursive(graph_def.library)


def test_order_is_callers_first() -> None:
    calls = {"a": ["b", "c"], "b": ["c"], "c": [], "lonely": []}
    assert callers_first(calls, ["a"]) == ["a", "b", "c"]
    assert recursive_functions({"a": ["b"], "b": ["a"], "c": ["a"]}) == {"a", "b"}


def test_a_chain_far_deeper_than_the_stack_is_walked_in_linear_time() -> None:
    depth = 20 * sys.getrecursionlimit()
    calls = {f"f{index}": [f"f{index + 1}"] for index in range(depth)} | {f"f{depth}": []}
    start = time.perf_counter()
    assert len(strongly_connected(calls)) == depth + 1
    assert callers_first(calls, ["f0"])[:2] == ["f0", "f1"]
    calls[f"f{depth}"] = ["f0"]
    assert len(find_cycle(calls) or []) == depth + 2
    assert time.perf_counter() - start < 10


def test_load_refuses_a_recursive_library(tmp_path: Path) -> None:
    model = tmp_path / "model.pb"
    model.write_bytes(recursive_library("mutual").SerializeToString())
    with pytest.raises(OptimizerError) as raised:
        optimizer.load(model)
    assert str(raised.value) == (
        f"{model}: the function library is recursive (f -> g -> f): TensorFlow cannot run recursive functions"
    )
