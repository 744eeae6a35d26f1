"""TensorFlow's errors as one line: the failing node, its op and the kernel's message, from real sessions."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer._tf import tensorflow
from optimizer.protos import GraphDef
from optimizer.session import open_session
from optimizer.tf_errors import describe
from optimizer.tf_import import import_whole


def failing_graph() -> GraphDef:
    """x[?] reshaped to [3, 4]; an Assert that x > 100; a function whose body reshapes x to [7, 3]."""
    tf = tensorflow()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, None, name="x")
        tf.reshape(x, [3, 4], name="reshape")
        check = tf.debugging.Assert(tf.reduce_all(x > 100), ["x must exceed 100", x], name="check")
        with tf.control_dependencies([check]):
            tf.identity(x, name="asserted")

        @tf.function
        def body(value: object) -> object:
            return tf.reshape(value, [7, 3])

        tf.identity(body(x), name="called")
    return graph.as_graph_def()


def run_error(graph_def: GraphDef, fetch: str) -> Exception:
    with open_session(graph_def) as session, pytest.raises(Exception) as caught:
        session.run(fetch, {"x:0": np.ones(10, np.float32)})
    assert isinstance(caught.value, tensorflow().errors.OpError)
    assert str(caught.value).startswith("Graph execution error:")  # the header that used to be all users saw
    return caught.value


def test_a_kernel_error_names_the_node_its_op_and_the_kernels_message() -> None:
    error = run_error(failing_graph(), "reshape:0")
    assert describe(error) == (
        "node 'reshape' (Reshape): Input to reshape is a tensor with 10 values, but the requested shape has 12"
    )


def test_an_assert_keeps_its_own_text() -> None:
    graph_def = failing_graph()
    error = run_error(graph_def, "asserted:0")
    assert describe(error, graph_def) == "node 'Assert' (Assert): assertion failed: [x must exceed 100] [1 1 1...]"


def test_a_node_failing_in_a_function_body_names_the_call_and_its_op_comes_from_the_graph() -> None:
    graph_def = failing_graph()
    error = run_error(graph_def, "called:0")
    assert describe(error).startswith("node 'Reshape' in function call 'PartitionedCall': Input to reshape")
    assert describe(error, graph_def) == (
        "node 'Reshape' (Reshape) in function call 'PartitionedCall': "
        "Input to reshape is a tensor with 10 values, but the requested shape has 21"
    )


def test_an_import_error_keeps_its_text() -> None:
    graph_def = failing_graph()
    next(node for node in graph_def.node if node.name == "reshape").input[0] = "missing"
    with pytest.raises(ValueError) as caught:
        import_whole(graph_def)
    assert describe(caught.value) == "Node 'reshape': Unknown input node 'missing'"


def test_a_traceback_in_the_message_is_dropped() -> None:
    text = (
        "Graph execution error:\n\nDetected at node 'conv' defined at (most recent call last):\n"
        "    File \"<stdin>\", line 5, in <module>\n      conv = tf.nn.conv3d(x, w)\nNode: 'conv'\n"
        "CPU implementation of Conv3D currently only supports the NHWC tensor format.\n\t [[{{node conv}}]]"
    )
    error = tensorflow().errors.InvalidArgumentError(None, None, text)
    assert describe(error) == (
        "node 'conv': CPU implementation of Conv3D currently only supports the NHWC tensor format."
    )


def test_of_several_root_errors_the_first_is_kept() -> None:
    text = (
        "2 root error(s) found.\n  (0) INVALID_ARGUMENT: Input to reshape is a tensor with 10 values, but the "
        "requested shape has 12\n\t [[{{node reshape}}]]\n  (1) CANCELLED: Function was cancelled\n0 successful "
        "operations.\n0 derived errors ignored."
    )
    error = tensorflow().errors.InvalidArgumentError(None, None, text)
    assert describe(error) == (
        "node 'reshape': Input to reshape is a tensor with 10 values, but the requested shape has 12"
    )


def test_a_long_message_is_cut_in_the_middle_and_never_emptied() -> None:
    tf = tensorflow()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, None, name="x")
        check = tf.debugging.Assert(tf.reduce_all(x > 100), ["start " + "y" * 2000 + " end"], name="long")
        with tf.control_dependencies([check]):
            tf.identity(x, name="asserted")
    with open_session(graph.as_graph_def()) as session, pytest.raises(tf.errors.InvalidArgumentError) as caught:
        session.run("asserted:0", {"x:0": np.ones(3, np.float32)})
    text = describe(caught.value, limit=200)
    assert len(text) <= 200 and " ... " in text
    assert text.startswith("node 'long/Assert' (Assert): assertion failed: [start yyy") and text.endswith("yyy end]")
    assert describe(ValueError()) == "ValueError"
    assert describe(tf.errors.InvalidArgumentError(None, None, "Graph execution error:")) == "Graph execution error:"


def test_an_error_attached_to_the_call_still_names_the_node_inside() -> None:
    graph_def = failing_graph()
    call = import_whole(graph_def).get_operation_by_name("PartitionedCall")
    text = "Graph execution error:\n\nbad value\n\t [[{{node Reshape}}]]\n\t [[PartitionedCall]]"
    error = tensorflow().errors.InvalidArgumentError(None, call, text)
    assert describe(error, graph_def) == "node 'Reshape' (Reshape) in function call 'PartitionedCall': bad value"
    plain = tensorflow().errors.InvalidArgumentError(None, call, "bad value")
    assert describe(plain) == "node 'PartitionedCall' (PartitionedCall): bad value"
