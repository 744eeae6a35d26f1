"""Verification: random feeds, running graphs, comparing outputs."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import Tensor
from optimizer._tf import tensorflow
from optimizer.verify import FAILED, NOT_RUN, PASSED, Tolerance, compare, random_feeds, verify
from tests.builder import graph_def_of

ADD = """
x = Placeholder(dtype=DT_FLOAT, shape=[3])
c = Placeholder(dtype=DT_FLOAT, shape=[3])
y = AddV2(x, c, T=DT_FLOAT)
"""


def test_compare_applies_rtol_atol_and_nan_rules() -> None:
    assert compare("a", np.array([1.0, np.nan]), np.array([1.0 + 1e-6, np.nan])).passed
    failing = compare("a", np.array([1.0, 2.0]), np.array([1.0, 2.1]))
    assert not failing.passed and failing.max_abs_error == pytest.approx(0.1)
    assert failing.max_rel_error == pytest.approx(0.05)
    assert not compare("a", np.array([np.nan]), np.array([1.0])).passed
    assert not compare("a", np.array([np.inf]), np.array([-np.inf])).passed
    assert compare("a", np.array([np.inf]), np.array([np.inf])).passed
    assert not compare("a", np.zeros(2), np.zeros(3)).passed
    assert compare("s", np.array([b"x"]), np.array([b"x"])).passed
    assert not compare("s", np.array([b"x"]), np.array([b"y"])).passed


def test_random_feeds_follow_dtype_and_static_shape_with_a_note_for_dynamic_dims() -> None:
    graph_def = graph_def_of("x = Placeholder(dtype=DT_INT32)\nb = Placeholder(dtype=DT_BOOL)")
    graph_def.node[0].attr["shape"].shape.dim.add(size=-1)
    graph_def.node[0].attr["shape"].shape.dim.add(size=4)
    feeds, notes = random_feeds(graph_def, [Tensor("x"), Tensor("b")], seed=3)
    assert feeds["x:0"].shape == (1, 4) and feeds["x:0"].dtype == np.int32
    assert feeds["b:0"].dtype == bool and feeds["b:0"].shape == ()
    assert any("dynamic dimensions fed as 1" in note for note in notes)
    again, _ = random_feeds(graph_def, [Tensor("x"), Tensor("b")], seed=3)
    assert np.array_equal(again["x:0"], feeds["x:0"])


def test_verify_passes_equal_graphs_and_names_the_output_that_differs() -> None:
    original = graph_def_of(ADD)
    inputs, outputs = [Tensor("x"), Tensor("c")], [Tensor("y")]
    assert verify(original, original, inputs, outputs).status == PASSED
    broken = graph_def_of(ADD.replace("AddV2", "Sub"))
    result = verify(original, broken, inputs, outputs)
    assert result.status == FAILED and [check.name for check in result.outputs if not check.passed] == ["y:0"]


def test_a_candidate_that_does_not_run_fails_and_an_original_that_does_not_run_skips() -> None:
    original = graph_def_of(ADD)
    inputs, outputs = [Tensor("x"), Tensor("c")], [Tensor("y")]
    broken = graph_def_of(ADD.replace("AddV2", "NoSuchOp"))
    failed = verify(original, broken, inputs, outputs)
    assert failed.status == FAILED
    assert "the optimized graph fails to run: Op type not registered 'NoSuchOp'" in failed.outputs[0].note
    custom = verify(broken, original, inputs, outputs)
    assert custom.status == NOT_RUN and not custom.passed and not custom.failed
    assert custom.skipped == "the graph uses ops this TensorFlow does not know (NoSuchOp), so it is not run"
    assert custom.invalid_original is None
    miswired = graph_def_of(ADD.replace("y = AddV2(x, c,", "y = AddV2(x,"))
    invalid = verify(miswired, original, inputs, outputs)
    assert invalid.status == NOT_RUN and invalid.invalid_original
    assert invalid.skipped == f"the original graph does not import: {invalid.invalid_original}"


def test_figures_count_failures_and_give_the_tolerance_that_would_pass() -> None:
    check = compare("a", np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.2, 4.0]), rtol=0.0, atol=0.1)
    assert (check.failing, check.elements) == (1, 3)
    assert check.mean_abs_error == pytest.approx(0.2 / 3)
    assert check.atol_needed == pytest.approx(0.2)
    assert check.rtol_needed == pytest.approx(0.05)
    assert compare("a", np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.2, 4.0]), rtol=0.0, atol=0.2 + 1e-12).passed


def test_nan_or_inf_on_one_side_only_is_called_out() -> None:
    check = compare("a", np.array([1.0, np.inf, 3.0]), np.array([np.nan, np.inf, np.inf]))
    assert not check.passed
    assert "NaN in the candidate only at 1 element(s)" in check.note
    assert "Inf in the candidate only at 1 element(s)" in check.note


def test_per_output_tolerances_ranges_given_feeds_and_samples() -> None:
    original = graph_def_of(ADD)
    inputs, outputs = [Tensor("x"), Tensor("c")], [Tensor("y")]
    relu = graph_def_of(ADD.replace("y = AddV2(x, c", "r = Relu(x, T=DT_FLOAT)\ny = AddV2(r, c"))
    lucky = next(seed for seed in range(20) if verify(original, relu, inputs, outputs, seed=seed).status == PASSED)
    assert verify(original, relu, inputs, outputs, seed=lucky, samples=8).status == FAILED
    nudged = graph_def_of(ADD)
    nudged.node.add(name="eps", op="Const").attr["dtype"].type = 1
    nudged.node[-1].attr["value"].tensor.dtype = 1
    nudged.node[-1].attr["value"].tensor.float_val.append(1e-3)
    nudged.node[2].name = "y0"
    nudged.node.add(name="y", op="AddV2", input=["y0", "eps"]).attr["T"].type = 1
    strict = verify(original, nudged, inputs, outputs, samples=2)
    assert strict.status == FAILED and strict.failing_feeds is not None
    assert strict.outputs[0].failing == strict.outputs[0].elements
    loose = verify(original, nudged, inputs, outputs, tolerances={"y": Tolerance(rtol=0.0, atol=2e-3)})
    assert loose.status == PASSED
    feeds = {"x:0": np.full(3, 5.0, np.float32)}
    ranged = verify(original, original, inputs, outputs, feeds=feeds, ranges={"c": (10.0, 11.0)})
    assert ranged.status == PASSED and ranged.failing_feeds is None


def test_ranges_bound_random_values() -> None:
    graph_def = graph_def_of("x = Placeholder(dtype=DT_FLOAT, shape=[])\nn = Placeholder(dtype=DT_INT64)")
    feeds, _ = random_feeds(graph_def, [Tensor("x"), Tensor("n")], seed=1, ranges={"x:0": (5.0, 6.0), "n": (7, 7)})
    assert 5.0 <= float(feeds["x:0"]) < 6.0 and int(feeds["n:0"]) == 7


def test_an_integer_range_wider_than_its_dtype_is_cut_to_it() -> None:
    """Found by scripts/fuzz.py: `--input-range n=-1e30,1` on an int64 input was a ValueError traceback."""
    graph_def = graph_def_of("n = Placeholder(dtype=DT_INT64, shape=[50])\nb = Placeholder(dtype=DT_UINT8, shape=[9])")
    ranges = {"n": (-1e30, 1.0), "b": (-5.0, -1.0)}
    feeds, _ = random_feeds(graph_def, [Tensor("n"), Tensor("b")], seed=1, ranges=ranges)
    assert feeds["n:0"].dtype == np.int64 and int(feeds["n:0"].max()) <= 1
    assert feeds["b:0"].dtype == np.uint8 and not feeds["b:0"].any()  # below the dtype: its least value


def test_a_float_input_of_unknown_rank_is_not_guessed() -> None:
    graph_def = graph_def_of("x = Placeholder(dtype=DT_FLOAT)\ny = Relu(x, T=DT_FLOAT)")
    result = verify(graph_def, graph_def, [Tensor("x")], [Tensor("y")])
    assert result.status == NOT_RUN and result.skipped == (
        "cannot make inputs for the original graph: input x:0 has unknown rank: give --input-shape or --input-data"
        " to verify"
    )
    given = verify(graph_def, graph_def, [Tensor("x")], [Tensor("y")], feeds={"x:0": np.ones(3, np.float32)})
    assert given.status == PASSED


def test_a_candidate_failing_inside_names_the_node_and_its_op_and_an_original_failing_is_not_run() -> None:
    tf = tensorflow()
    inputs, outputs = [Tensor("x")], [Tensor("y")]
    original = graph_def_of("x = Placeholder(dtype=DT_FLOAT, shape=[-1])\ny = Relu(x, T=DT_FLOAT)")
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        tf.nn.relu(tf.reshape(x, [5, 5], name="r"), name="y")
    candidate = graph.as_graph_def()
    feeds = {"x:0": np.ones(12, np.float32)}
    failed = verify(original, candidate, inputs, outputs, feeds=feeds)
    assert failed.status == FAILED
    assert failed.outputs[0].note == (
        "the optimized graph fails to run: node 'r' (Reshape): Input to reshape is a tensor with 12 values, but the"
        " requested shape has 25"
    )
    not_run = verify(candidate, original, inputs, outputs, feeds=feeds)
    assert not_run.status == NOT_RUN and not_run.remedy
    assert not_run.skipped == (
        "the original graph does not run on these inputs: node 'r' (Reshape): Input to reshape is a tensor with 12"
        " values, but the requested shape has 25"
    )
