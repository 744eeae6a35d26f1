"""`passes/freeze.py` on the models the project builds (`fixtures/tf1_models.py`, `fixtures/keras_models.py`):
TensorFlow's own freezer breaks the TF1 training graphs, ours reproduces the original outputs everywhere and leaves
no variable machinery behind; plus the contract's smaller promises on hand-built graphs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import optimizer
from optimizer import Graph, OptimizerError, PassError, get_pass
from optimizer._tf import tensorflow
from optimizer.session import run_graph
from optimizer.signature import default_inputs
from optimizer.variables import VariableSpec, VariableValues, variable_leftovers
from passes.freeze import Freeze
from tests.fixture_models import Models, assert_reproduces
from tests.passes.build import const, graph, node, placeholder

tf = tensorflow()
v1 = tf.compat.v1
PIPELINE = "inline,freeze"
SAVED_MODELS = ["keras3_saved_model", "keras3_export", "keras3_embedding", "tf_module_embedding", "keras3_rnn"]


def frozen(path: Path | str, passes: str = PIPELINE, **load: object) -> Graph:
    graph = optimizer.load(path, **load)  # type: ignore[arg-type]
    optimizer.optimize(graph, passes)
    return graph


def test_registry_name() -> None:
    assert get_pass("freeze") is Freeze
    assert str(Freeze()) == "freeze"
    assert str(Freeze(max_graph_bytes=10)) == "freeze{max-graph-bytes=10}"


# ----- TF1 training graphs: TensorFlow's freezer fails, ours matches the restored session ----------------------


def restored_session_outputs(meta_graph: Path, prefix: Path, feeds: dict[str, np.ndarray]) -> tuple[object, list]:
    """The original graph in a session with the checkpoint restored: its outputs and TF's own frozen GraphDef."""
    graph = tf.Graph()
    with graph.as_default():
        saver = v1.train.import_meta_graph(str(meta_graph))
    with v1.Session(graph=graph) as session:
        saver.restore(session, str(prefix))
        outputs = session.run(["probabilities:0"], feeds)
        tf_frozen = v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), ["probabilities"])
    return tf_frozen, outputs


@pytest.mark.parametrize("flavour", ["v1", "v2"])
def test_tensorflow_freezer_breaks_the_cond_training_graph_and_ours_matches_the_restored_session(
    tf1_models: Models, flavour: str
) -> None:
    model = tf1_models[f"bn_cond_{flavour}"]
    ops = Counter(proto.op for proto in optimizer.load(model.path("meta_graph")).to_graph_def().node)
    if flavour == "v1":
        assert ops["RefSwitch"] and ops["VariableV2"] and ops["AssignSub"] and ops["ApplyAdam"] and not ops["If"]
    else:
        assert ops["If"] and ops["VarHandleOp"] and ops["ResourceApplyAdam"] and not ops["VariableV2"]
    assert ops["SaveV2"] and ops["ScalarSummary"] and ops["HistogramSummary"]
    for training in (False, True):
        case = model.case("training" if training else "inference")
        tf_frozen, (expected,) = restored_session_outputs(
            model.path("meta_graph"), model.path("checkpoint"), case.feeds
        )
        np.testing.assert_allclose(expected, case.fetches["probabilities:0"], rtol=1e-6)
        if flavour == "v1":  # the leftover RefSwitch/AssignSub cannot even be imported
            with pytest.raises(ValueError, match="incompatible with expected float_ref"):
                run_graph(tf_frozen, case.feeds, ["probabilities:0"])
        else:  # the If branches still take resources: the graph fails when it runs
            with pytest.raises(tf.errors.InvalidArgumentError, match="expected type resource != float"):
                run_graph(tf_frozen, case.feeds, ["probabilities:0"])
    ours = frozen(model.path("meta_graph"), inputs=model.info["inputs"], outputs=model.info["outputs"])
    assert_reproduces(ours.to_graph_def(), model)  # both branches: inference and training mode
    assert variable_leftovers(ours.to_graph_def()) == []


@pytest.mark.parametrize("flavour", ["v1", "v2", "v1_resource"])
def test_graph_def_with_checkpoint_freezes_like_the_meta_graph(tf1_models: Models, flavour: str) -> None:
    model = tf1_models[f"bn_cond_{flavour}"]
    graph = frozen(
        model.path("graph_def"),
        inputs=model.info["inputs"],
        outputs=model.info["outputs"],
        checkpoint=model.path("checkpoint"),
    )
    assert_reproduces(graph.to_graph_def(), model)
    assert variable_leftovers(graph.to_graph_def()) == []
    if flavour == "v1_resource":  # resource-typed Switches now switch the values
        switches = [node for node in graph.nodes() if node.op == "Switch"]
        assert switches and all(node.attrs["T"].type != tf.resource.as_datatype_enum for node in switches)


def test_v2_branch_functions_take_values_instead_of_resources(tf1_models: Models) -> None:
    model = tf1_models["bn_cond_v2"]
    graph = frozen(model.path("meta_graph"), passes="freeze", outputs=model.info["outputs"])
    (cond,) = [node for node in graph.nodes() if node.op == "If"]
    assert list(cond.attrs["Tin"].list.type) == [tf.float32.as_datatype_enum] * 3
    assert cond.attrs["then_branch"].func.name.endswith("_frozen")
    for branch in ("then_branch", "else_branch"):
        function = graph.function(cond.attrs[branch].func.name)
        assert function is not None
        assert [arg.type for arg in function.signature.input_arg] == [tf.float32.as_datatype_enum] * 3
        assert not {node.op for node in function.node_def} & {"ReadVariableOp", "AssignSubVariableOp"}
        # the function's own record of its argument shapes follows: the values are [8], no longer scalar handles
        # (left as [], TFLite's converter rejects the branch: "'tf.Identity' op requires the same shape")
        recorded = [tf.TensorShape(shape).as_list() for shape in function.attr["_input_shapes"].list.shape]
        assert recorded[1:] == [[8], [8]], recorded
    names = [function.signature.name for function in graph.library.function]
    assert not any(name.endswith("_rewritten") for name in names), names  # the resource versions are gone


def test_only_what_the_outputs_need_is_decoded(tf1_models: Models) -> None:
    model = tf1_models["bn_cond_v1"]
    graph = optimizer.load(model.path("meta_graph"), outputs=model.info["outputs"])
    values = graph.variables
    assert values is not None and "dense/kernel/Adam" in values and "beta1_power" in values
    read: list[str] = []
    original = values.read

    def reading(name: str) -> np.ndarray:
        read.append(name)
        return original(name)

    values.read = reading  # type: ignore[method-assign]
    optimizer.optimize(graph, "freeze")
    needed = [f"{layer}/{name}" for layer in ("dense", "classifier") for name in ("kernel", "bias")]
    needed += [f"bn0/{name}" for name in ("beta", "gamma", "moving_mean", "moving_variance")]
    assert sorted(read) == sorted(needed)  # not the Adam slots, beta powers or the global step
    ops = {node.op for node in graph.nodes()}
    assert not ops & {"ApplyAdam", "VariableV2", "Assign", "AssignSub", "RefSwitch", "SaveV2"}


def test_tf_keras_graph_mode_with_learning_phase(tf1_models: Models) -> None:
    model = tf1_models["tf_keras_graph_mode"]
    graph = frozen(model.path("meta_graph"), inputs=model.info["inputs"], outputs=model.info["outputs"])
    learning_phase = model.info["learning_phase"].split(":")[0]
    assert graph.op(learning_phase) == "PlaceholderWithDefault"  # freeze leaves it to strip
    assert_reproduces(graph.to_graph_def(), model)
    assert variable_leftovers(graph.to_graph_def()) == []


def test_every_dtype_survives(tf1_models: Models) -> None:
    model = tf1_models["variable_dtypes"]
    graph = frozen(model.path("meta_graph"), inputs=model.info["inputs"], outputs=model.info["outputs"])
    graph_def = graph.to_graph_def()
    assert_reproduces(graph_def, model, tol=0.0)
    assert variable_leftovers(graph_def) == []
    constants = {proto.name: proto for proto in graph_def.node if proto.op == "Const"}
    for kind in ("ref", "resource"):
        for dtype in ("float16", "bfloat16", "int8", "uint16", "bool", "string", "complex128"):
            proto = constants[f"{kind}/{dtype}/variable"]
            assert proto.attr["dtype"].type == tf.as_dtype(dtype).as_datatype_enum
    ops = Counter(proto.op for proto in graph_def.node)
    assert ops["GatherV2"] == 1 and not ops["ResourceGather"]  # the embedding lookup


def test_tf1_while_loop_reading_variables(tf1_models: Models) -> None:
    model = tf1_models["rnn_v1"]
    graph = frozen(model.path("meta_graph"), inputs=model.info["inputs"], outputs=model.info["outputs"])
    assert {"Enter", "Merge", "NextIteration", "Exit"} <= {node.op for node in graph.nodes()}
    assert_reproduces(graph.to_graph_def(), model)
    leftovers = variable_leftovers(graph.to_graph_def())
    assert leftovers and all("gradients/" in item for item in leftovers)  # the gradient's stacks: prune's
    optimizer.optimize(graph, "strip,identity,prune")
    assert variable_leftovers(graph.to_graph_def()) == []
    assert_reproduces(graph.to_graph_def(), model)


# ----- TF2 SavedModels ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAVED_MODELS)
def test_saved_models_freeze_to_the_original_outputs(keras_models: Models, name: str) -> None:
    model = keras_models[name]
    graph = frozen(model.path("saved_model"))
    assert [str(tensor) for tensor in graph.inputs] == model.info["inputs"]
    assert [str(tensor) for tensor in graph.outputs] == model.info["outputs"]
    graph_def = graph.to_graph_def()
    assert_reproduces(graph_def, model)
    assert variable_leftovers(graph_def) == []


@pytest.mark.parametrize("name", ["keras3_export", "tf_module_embedding", "keras3_rnn"])
def test_freeze_alone_rewrites_the_called_functions(keras_models: Models, name: str) -> None:
    model = keras_models[name]
    graph = frozen(model.path("saved_model"), passes="freeze")
    graph_def = graph.to_graph_def()
    assert_reproduces(graph_def, model)
    assert variable_leftovers(graph_def) == []
    assert any(function.signature.name.endswith("_frozen") for function in graph_def.library.function)
    if name == "tf_module_embedding":  # ResourceGather inside the function and inside an If branch
        bodies = Counter(node.op for function in graph_def.library.function for node in function.node_def)
        assert bodies["GatherV2"] == 2 and not bodies["ResourceGather"]


def test_no_noop_is_hung_in_front_of_the_outputs_unlike_tensorflows_v2_freezer(keras_models: Models) -> None:
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    model = keras_models["keras3_export"]
    loaded = tf.saved_model.load(str(model.path("saved_model")))  # kept alive: the signature captures its variables
    theirs = convert_variables_to_constants_v2(loaded.signatures["serving_default"]).graph.as_graph_def()
    their_reads = [node for node in theirs.node if node.op == "Identity" and node.name.endswith("ReadVariableOp")]
    assert their_reads and any(node.op == "NoOp" and node.input for node in theirs.node)
    graph = frozen(model.path("saved_model"), passes="inline,freeze,strip,identity,prune")
    ours = graph.to_graph_def()
    assert not [node.name for node in ours.node if node.op == "NoOp" or any(text[0] == "^" for text in node.input)]
    assert Counter(node.op for node in ours.node)["Identity"] == 1  # the signature output keeps its name
    assert_reproduces(ours, model)


def test_rnn_while_loop_carries_values(keras_models: Models) -> None:
    graph = frozen(keras_models["keras3_rnn"].path("saved_model"))
    (loop,) = [node for node in graph.nodes() if node.op == "While"]
    assert tf.resource.as_datatype_enum not in loop.attrs["T"].list.type
    body = graph.function(loop.attrs["body"].func.name)
    assert body is not None and "ReadVariableOp" not in {node.op for node in body.node_def}
    shapes = loop.attrs["output_shapes"].list.shape
    types = loop.attrs["T"].list.type
    assert all(len(shape.dim) > 0 for shape, dtype in zip(shapes, types, strict=True) if dtype == tf.float32)


def test_tf1_saved_model_signatures(tf1_models: Models) -> None:
    model = tf1_models["tf1_saved_model"]
    graph = frozen(model.path("saved_model"), signature="logits")
    assert [str(tensor) for tensor in graph.inputs] == ["x:0"]
    assert [str(tensor) for tensor in graph.outputs] == ["logits:0"]
    assert_reproduces(graph.to_graph_def(), model, cases=["logits"])
    assert variable_leftovers(graph.to_graph_def()) == []


def test_default_pipeline_start_runs_and_a_second_run_changes_nothing(keras_models: Models) -> None:
    model = keras_models["keras3_rnn"]
    pipeline = "inline,freeze,strip,identity,prune"
    graph = frozen(model.path("saved_model"), passes=pipeline)
    assert_reproduces(graph.to_graph_def(), model)
    again = optimizer.optimize(graph, pipeline)
    assert not again.changed


# ----- errors -----------------------------------------------------------------------------------------------------


def test_size_limit_is_checked_before_anything_is_decoded(tf1_models: Models) -> None:
    graph = optimizer.load(tf1_models["bn_cond_v1"].path("meta_graph"), outputs=["probabilities"])
    values = graph.variables
    assert values is not None
    values.read = lambda name: pytest.fail("decoded")  # type: ignore[method-assign]
    with pytest.raises(PassError, match=r"over protobuf's 0\.00 GiB limit .*keep the weights out of the graph"):
        optimizer.optimize(graph, "freeze{max-graph-bytes=2000}")


def variable_graph() -> Graph:
    return graph(
        placeholder("x", shape=(2,)),
        node("v", "VarHandleOp", T=None, dtype=tf.float32, shape=(2,), shared_name="v"),
        node("read", "ReadVariableOp", "v", T=None, dtype=tf.float32),
        node("y", "Mul", "x", "read"),
        const("one", [1.0, 1.0]),
        node("update", "AssignAddVariableOp", "v", "one", T=None, dtype=tf.float32),
        node("step", "NoOp", "^update", T=None),
        inputs=["x"],
        outputs=["y"],
    )


def test_a_needed_variable_without_values_is_an_error() -> None:
    with pytest.raises(PassError, match=r"the outputs read variable 'v' .* --checkpoint PREFIX"):
        optimizer.optimize(variable_graph(), "freeze")


def test_a_needed_variable_missing_from_the_checkpoint_names_it_and_the_checkpoint() -> None:
    g = variable_graph()
    g.variables = VariableValues("/ckpt/model", {}, lambda name: np.zeros(2), missing={"v": "variable 'v' is absent"})
    with pytest.raises(PassError, match="/ckpt/model: variable 'v' is absent"):
        optimizer.optimize(g, "freeze")


def test_unneeded_variables_go_with_their_updates_and_nothing_is_read() -> None:
    g = variable_graph()
    g.outputs = [optimizer.Tensor("x")]
    g.variables = VariableValues("ckpt", {}, lambda name: pytest.fail("read"))
    optimizer.optimize(g, "freeze")
    assert sorted(g) == ["one", "x"]


def test_values_replace_the_variable_and_updates_go() -> None:
    """`w` is written before an output (`marker` waits for the update) but no output reads it: the update goes."""
    g = variable_graph()
    g.add_node("w", "VarHandleOp", attrs={key: g.node("v").attrs[key] for key in ("dtype", "shape")})
    g.add_node("after_update", "AssignAddVariableOp", [optimizer.Tensor("w"), optimizer.Tensor("x")], attrs={})
    g.set_attr("after_update", "dtype", g.node("read").attrs["dtype"])
    g.add_node("marker", "Const", control_inputs=["after_update"], attrs=const("m", 1.0).attr)
    g.outputs = [optimizer.Tensor("y"), optimizer.Tensor("marker")]
    spec = VariableSpec(tf.float32.as_datatype_enum, (2,))
    g.variables = VariableValues("ckpt", {"v": spec, "w": spec}, lambda name: np.array([2.0, 3.0], np.float32))
    optimizer.optimize(g, "freeze")
    assert g.op("v") == "Const" and not {"read", "update", "step", "after_update"} & set(g)
    assert [tensor.node for tensor in g.inputs_of("y")] == ["x", "v"]
    assert g.control_inputs_of("marker") == ["x"]  # waits for what the update read, not for nothing
    (value,) = run_graph(g.to_graph_def(), {"x:0": np.array([1.0, 2.0], np.float32)}, ["y:0"])
    np.testing.assert_array_equal(value, [2.0, 6.0])


def test_an_output_reading_a_training_update_is_refused() -> None:
    g = graph(
        placeholder("x", shape=(2,)),
        node("v", "VariableV2", T=None, dtype=tf.float32, shape=(2,)),
        node("apply", "ApplyGradientDescent", "v", "alpha", "x"),
        const("alpha", 0.1),
        node("y", "Identity", "apply"),
        inputs=["x"],
        outputs=["y"],
    )
    g.variables = VariableValues("ckpt", {"v": VariableSpec(1, (2,))}, lambda name: np.ones(2, np.float32))
    with pytest.raises(PassError, match=r"writes variable 'v' with ApplyGradientDescent 'apply' and 'y' reads it"):
        optimizer.optimize(g, "freeze")


def test_a_graph_without_variables_is_unchanged() -> None:
    g = graph(placeholder("x"), node("y", "Neg", "x"), inputs=["x"], outputs=["y"])
    report = optimizer.optimize(g, "freeze")
    assert not report.changed


def test_an_output_reading_an_assigned_value_is_refused() -> None:
    """`Assign` and `AssignAdd` return the variable's new value: a constant would be right for the first call only."""
    g = graph(
        placeholder("x", shape=(2,)),
        node("v", "VariableV2", T=None, dtype=tf.float32, shape=(2,)),
        node("add", "AssignAdd", "v", "x"),
        node("y", "Identity", "add"),
        inputs=["x"],
        outputs=["y"],
    )
    g.variables = VariableValues("ckpt", {"v": VariableSpec(1, (2,))}, lambda name: np.full(2, 10.0, np.float32))
    with pytest.raises(PassError, match=r"writes variable 'v' with AssignAdd 'add' and 'y' reads it afterwards"):
        optimizer.optimize(g, "freeze")


@pytest.mark.parametrize("order", ["read after update", "update after read"])
def test_a_variable_an_output_reads_and_the_same_run_writes_is_refused(order: str) -> None:
    """A counter read then incremented (a seed generator's state) is as stateful as one incremented then read:
    the next call reads another value."""
    g = variable_graph()  # y = x * read(v); update = AssignAddVariableOp(v, one)
    if order == "read after update":
        g.add_control_input("read", "update")
    else:
        g.add_control_input("update", "read")
    g.add_node("marker", "Const", control_inputs=["update"], attrs=const("m", 1.0).attr)
    g.outputs = [optimizer.Tensor("y"), optimizer.Tensor("marker")]
    g.variables = VariableValues("ckpt", {"v": VariableSpec(1, (2,))}, lambda name: np.array([2.0, 3.0], np.float32))
    when = "afterwards" if order == "read after update" else "in the same run"
    with pytest.raises(
        PassError, match=rf"writes variable 'v' with AssignAddVariableOp 'update' and 'read' reads it {when}"
    ):
        optimizer.optimize(g, "freeze")


def test_error_message_is_one_line(tf1_models: Models) -> None:
    with pytest.raises(OptimizerError) as caught:
        optimizer.load(tf1_models["bn_cond_v1"].path("graph_def"), checkpoint="/nonexistent/model.ckpt")
    assert "\n" not in str(caught.value) and "/nonexistent/model.ckpt" in str(caught.value)


def test_resource_placeholders_captured_by_a_function_graph() -> None:
    resource = tf.resource
    g = graph(
        placeholder("x", shape=(2,)),
        placeholder("captured", dtype=resource, shape=()),
        placeholder("table", dtype=resource, shape=()),
        node("read", "ReadVariableOp", "captured", T=None, dtype=tf.float32),
        node("y", "Mul", "x", "read"),
        node("size", "LookupTableSizeV2", "table", T=None),
        outputs=["y", "size"],
    )
    g.inputs = default_inputs(g)
    assert [tensor.node for tensor in g.inputs] == ["x"]  # nothing can feed a resource
    spec = VariableSpec(tf.float32.as_datatype_enum, (2,))
    g.variables = VariableValues("ckpt", {"captured": spec}, lambda name: np.array([3.0, 4.0], np.float32))
    optimizer.optimize(g, "freeze")
    assert g.op("captured") == "Const" and g.op("table") == "Placeholder"  # no value: left alone (a table)
    g.outputs = [optimizer.Tensor("y")]
    (value,) = run_graph(g.to_graph_def(), {"x:0": np.array([1.0, 2.0], np.float32)}, ["y:0"])
    np.testing.assert_array_equal(value, [3.0, 8.0])


def _variable_passed_down(depth: int) -> optimizer.Graph:
    """`out = f0(v)`, where `f<i>(h) = f<i+1>(h)` and the last reads variable `v` through its handle `h`."""
    from tensorflow.core.framework.graph_pb2 import GraphDef

    graph_def = GraphDef()
    v = graph_def.node.add(name="v", op="VarHandleOp")
    v.attr["dtype"].type = 1
    v.attr["shape"].shape.dim.add(size=2)
    call = graph_def.node.add(name="out", op="PartitionedCall", input=["v"])
    call.attr["f"].func.name = "f0"
    call.attr["Tin"].list.type.append(20)
    call.attr["Tout"].list.type.append(1)
    for index in range(depth):
        function = graph_def.library.function.add()
        function.signature.name = f"f{index}"
        function.signature.input_arg.add(name="h", type=20)
        function.signature.output_arg.add(name="y", type=1)
        if index == depth - 1:
            read = function.node_def.add(name="read", op="ReadVariableOp", input=["h"])
            read.attr["dtype"].type = 1
            function.ret["y"] = "read:value:0"
            continue
        inner = function.node_def.add(name="call", op="PartitionedCall", input=["h"])
        inner.attr["f"].func.name = f"f{index + 1}"
        inner.attr["Tin"].list.type.append(20)
        inner.attr["Tout"].list.type.append(1)
        function.ret["y"] = "call:output:0"
    g = optimizer.Graph.from_graph_def(graph_def)
    g.outputs = [optimizer.Tensor("out")]
    spec = VariableSpec(tf.float32.as_datatype_enum, (2,))
    g.variables = VariableValues("ckpt", {"v": spec}, lambda name: np.array([3.0, 4.0], np.float32))
    return g


def test_a_variable_passed_down_a_few_calls_becomes_a_constant_in_the_last() -> None:
    g = _variable_passed_down(20)
    optimizer.optimize(g, "freeze")
    assert g.op("v") == "Const"
    (value,) = run_graph(g.to_graph_def(), {}, ["out:0"])
    np.testing.assert_array_equal(value, [3.0, 4.0])


def test_a_variable_passed_down_deeper_than_pythons_stack_is_one_user_error() -> None:
    import sys

    g = _variable_passed_down(sys.getrecursionlimit() * 2)
    with pytest.raises(PassError, match=r"more than 100 nested function calls") as caught:
        optimizer.optimize(g, "freeze")
    assert caught.value.user_error and "\n" not in str(caught.value)
