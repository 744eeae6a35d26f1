"""`optimizer/tf_import.py`: a lazy import answers as a full `import_graph_def` does, and wraps only what is asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optimizer import tf_import
from optimizer._tf import tensorflow
from optimizer.graph_io import read_graph_def
from optimizer.ir import Tensor
from optimizer.protos import GraphDef
from optimizer.tf_import import LazyImport, import_whole

ROOT = Path(__file__).resolve().parent.parent
tf = tensorflow()


def _library_graph_def() -> GraphDef:
    """A graph with a function call, a v2 while loop (library functions), shapes computed from shapes, and a
    constant subgraph."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")

        @tf.function
        def double(value: Any) -> Any:
            return value * 2.0

        y = double(x)
        _, looped = tf.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, v + 1.0), [tf.constant(0), y])
        flat = tf.reshape(looped, tf.stack([tf.shape(looped)[0], -1]), name="flat")
        tf.identity(tf.exp(tf.constant([1.0, 2.0])), name="folded")
        tf.identity(flat, name="out")
    graph_def: GraphDef = graph.as_graph_def()
    return graph_def


def _answers(graph_def: GraphDef, lookup: Any) -> dict[str, tuple[Any, Any]]:
    """dtype and shape (None: unknown rank) of every output of every node, by `lookup(Tensor)`."""
    full = import_whole(graph_def)
    found = {}
    for operation in full.get_operations():
        for port in range(len(operation.outputs)):
            tensor = lookup(Tensor(operation.name, port))
            found[f"{operation.name}:{port}"] = (tensor.dtype, None if tensor.shape.rank is None else tensor.shape)
    return found


@pytest.mark.parametrize("source", ["small_cnn", "library"])
def test_every_shape_and_dtype_is_the_full_imports(source: str) -> None:
    graph_def = read_graph_def(ROOT / "fixtures" / "small_cnn.pb") if source == "small_cnn" else _library_graph_def()
    full = import_whole(graph_def)
    expected = _answers(graph_def, lambda tensor: full.get_tensor_by_name(str(tensor)))
    lazy = LazyImport(graph_def)
    assert _answers(graph_def, lazy.tensor) == expected
    assert len(expected) > 20


def test_only_the_nodes_asked_about_get_python_objects() -> None:
    graph_def = _library_graph_def()
    lazy = LazyImport(graph_def)
    assert lazy.graph.get_operations() == [] and lazy.names == {node.name for node in graph_def.node}
    flat = lazy.tensor(Tensor("flat"))
    assert flat is not None and flat.shape.rank == 2
    assert [operation.name for operation in lazy.graph.get_operations()] == ["flat"]
    assert lazy.operation("flat") is flat.op  # wrapped once


def test_a_session_over_the_lazy_graph_runs_what_a_full_import_runs() -> None:
    graph_def = _library_graph_def()
    lazy = LazyImport(graph_def)
    fetch = lazy.tensor(Tensor("folded"))
    with tf.compat.v1.Session(graph=lazy.graph) as session:
        value = session.run(fetch)
    with tf.compat.v1.Session(graph=import_whole(graph_def)) as session:
        expected = session.run("folded:0")
    np.testing.assert_array_equal(value, expected)
    np.testing.assert_allclose(value, np.exp([1.0, 2.0]), rtol=1e-6)


def test_unknown_nodes_and_ports_are_none() -> None:
    lazy = LazyImport(_library_graph_def())
    assert lazy.operation("nothing") is None and lazy.tensor(Tensor("nothing")) is None
    assert lazy.tensor(Tensor("flat", 1)) is None and lazy.tensor(Tensor("flat", 0)) is not None


def test_an_attr_written_without_a_value_takes_its_default_as_in_a_full_import() -> None:
    graph_def = GraphDef()
    x = graph_def.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = 1
    x.attr["shape"].shape.dim.add(size=2)
    cast = graph_def.node.add(name="y", op="Cast", input=["x"])
    cast.attr["SrcT"].type, cast.attr["DstT"].type = 1, 3
    cast.attr["Truncate"].SetInParent()  # present, with no value: the C-level import alone refuses it
    lazy = LazyImport(graph_def)
    y = lazy.tensor(Tensor("y"))
    assert y is not None and y.dtype == tf.int32 and y.shape.as_list() == [2]


def test_a_graph_tensorflow_rejects_raises_value_error() -> None:
    graph_def = GraphDef()
    graph_def.node.add(name="y", op="Identity", input=["missing"]).attr["T"].type = 1
    with pytest.raises(ValueError, match="missing"):
        LazyImport(graph_def)


@pytest.mark.parametrize("hooks", ["missing", "of another shape"])
def test_without_the_private_hooks_everything_is_imported_the_public_way(
    monkeypatch: pytest.MonkeyPatch, hooks: str
) -> None:
    graph_def = _library_graph_def()
    expected = _answers(graph_def, LazyImport(graph_def).tensor)
    if hooks == "missing":
        monkeypatch.setattr(tf_import, "lazy_supported", lambda: False)
    else:

        def other_shape(graph: Any, graph_def: GraphDef) -> list[Any]:
            raise TypeError("get() takes no arguments")

        monkeypatch.setattr(tf_import, "_import_c_level", other_shape)
    public = LazyImport(graph_def)
    assert len(public.graph.get_operations()) == len(graph_def.node)
    assert _answers(graph_def, public.tensor) == expected
