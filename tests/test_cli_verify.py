"""Verification from the command line: --compare, tolerances, inputs, samples, and --bisect with its reproducer."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from optimizer import Graph, PassContext, function_pass
from optimizer._tf import tensorflow
from optimizer.cli import main
from optimizer.graph_io import write_graph_def
from optimizer.protos import GraphDef
from optimizer.registry import unregister_pass
from optimizer.tensor import from_numpy, to_numpy


def mlp() -> GraphDef:
    """x[?, 4] -> Dense(3) + bias -> Relu -> Dense(2) + bias = logits; softmax = probabilities."""
    tf = tensorflow()
    rng = np.random.default_rng(5)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        w1 = tf.constant(rng.uniform(0.1, 0.2, (4, 3)).astype(np.float32).round(5), name="w1")
        hidden = tf.nn.relu(tf.nn.bias_add(tf.matmul(x, w1), tf.constant([0.5, 0.2, 0.1]), name="b1"))
        w2 = tf.constant(rng.uniform(-1, 1, (3, 2)).astype(np.float32), name="w2")
        logits = tf.nn.bias_add(tf.matmul(tf.identity(hidden), w2), tf.constant([1.0, -1.0]), name="logits_bias")
        tf.identity(logits, name="logits")
        tf.nn.softmax(logits, name="probabilities")
    return graph.as_graph_def()


def node(graph_def: GraphDef, name: str):  # type: ignore[no-untyped-def]
    return next(n for n in graph_def.node if n.name == name)


def nudged_weight() -> GraphDef:
    graph_def = mlp()
    weights = to_numpy(node(graph_def, "w1").attr["value"].tensor).copy()
    weights[0, 0] += 1e-5  # the 5th decimal of 0.1xxxx
    node(graph_def, "w1").attr["value"].tensor.CopyFrom(from_numpy(weights))
    return graph_def


def swapped_outputs() -> GraphDef:
    graph_def = mlp()
    logits, probabilities = node(graph_def, "logits"), node(graph_def, "probabilities")
    logits.name, probabilities.name = "probabilities", "logits"
    return graph_def


def dropped_bias() -> GraphDef:
    graph_def = mlp()
    bias = node(graph_def, "logits_bias")
    bias.op, bias.input[:] = "Identity", bias.input[:1]
    del bias.attr["data_format"]
    return graph_def


@pytest.fixture
def models(tmp_path: Path) -> Path:
    write_graph_def(mlp(), tmp_path / "original.pb")
    write_graph_def(nudged_weight(), tmp_path / "nudged.pb")
    write_graph_def(swapped_outputs(), tmp_path / "swapped.pb")
    write_graph_def(dropped_bias(), tmp_path / "nobias.pb")
    assert main([str(tmp_path / "original.pb"), "-o", str(tmp_path / "equivalent.pb")]) == 0
    return tmp_path


def compare(models: Path, candidate: str, *extra: str) -> int:
    return main(["--compare", str(models / "original.pb"), str(models / candidate), *extra])


def failing_outputs(capsys: pytest.CaptureFixture[str]) -> list[str]:
    lines = capsys.readouterr().out.splitlines()
    return sorted(line.split()[1] for line in lines if "FAIL" in line and line.startswith("│"))


def test_an_equivalent_candidate_passes_even_at_tight_tolerance(
    models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert compare(models, "equivalent.pb", "--rtol", "0", "--atol", "1e-6", "--verify-samples", "4") == 0
    assert "outputs match" in capsys.readouterr().out


def test_a_weight_changed_in_the_fifth_decimal_is_caught_at_tight_tolerance(
    models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert compare(models, "nudged.pb", "--rtol", "0", "--atol", "1e-6", "--input-range", "x=10,100") == 1
    assert failing_outputs(capsys) == ["logits:0"]  # the softmax saturates at these inputs


def test_swapped_outputs_and_a_dropped_bias_are_caught_at_default_tolerance(
    models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert compare(models, "swapped.pb") == 1
    assert failing_outputs(capsys) == ["logits:0", "probabilities:0"]
    assert compare(models, "nobias.pb", "--outputs", "logits,probabilities") == 1
    assert failing_outputs(capsys) == ["logits:0", "probabilities:0"]


def test_per_output_tolerance_input_data_and_json_report(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(models / "x.npy", np.full((2, 4), 50.0, np.float32))
    report = models / "report.json"
    args = ["--input-data", f"x={models / 'x.npy'}", "--rtol", "0", "--atol", "1e-6", "--report-json", str(report)]
    assert compare(models, "nudged.pb", *args) == 1
    loose = ["--tolerance", "logits=0,1e-2", "--tolerance", "probabilities:0=0,1e-2"]
    assert compare(models, "nudged.pb", *args, *loose) == 0
    data = json.loads(report.read_text())
    assert (data["status"], data["passed"]) == ("passed", True)
    capsys.readouterr()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tolerance", "logits=1e-3"], "--tolerance 'logits=1e-3': expected two numbers separated by a comma"),
        (["--input-range", "x=5,1"], "--input-range 'x=5,1': LOW must not exceed HIGH"),
        (["--input-range", "x=inf,1"], "--input-range 'x=inf,1': both numbers must be finite"),
        (["--input-range", "x=0,nan"], "--input-range 'x=0,nan': both numbers must be finite"),
        (["--tolerance", "logits=-1,0"], "--tolerance 'logits=-1,0': tolerances must not be negative"),
        (["--atol", "-1e-3"], "--atol -0.001: must be a finite number, not negative"),
        (
            ["--input-data", "x=/nonexistent.npy"],
            "/nonexistent.npy: cannot read input data: No such file or directory",
        ),
        (
            ["--input-data", "x={models}/garbage.npy"],
            "{models}/garbage.npy: not a readable .npy file: the magic string is not correct; expected"
            " b'\\x93NUMPY', got b'not nu'",
        ),
        (
            ["--input-data", "x={models}/objects.npy"],
            "{models}/objects.npy: holds Python objects; only plain arrays are read (never unpickled)",
        ),
        (
            ["--input-data", "logits={models}/x.npy"],
            "--input-data logits:0: not an input of the graph (its inputs: x:0)",
        ),
        (
            ["--input-data", "x={models}/x5.npy"],
            "--input-data x:0: an array of shape [2, 5], but input x:0 has shape [?, 4]",
        ),
        (["--input-data", "x={models}/xb.npy"], "--input-data x:0: an array of bool, but input x:0 is float32"),
        (["--input-range", "y=0,1"], "--input-range y:0: not an input of the graph (its inputs: x:0)"),
        (
            ["--tolerance", "x=0,1"],
            "--tolerance x:0: not an output of the graph (its outputs: logits:0, probabilities:0)",
        ),
        (["--verify-samples", "0"], "--verify-samples must be at least 1"),
    ],
)
def test_bad_verification_options_exit_2_with_one_line(
    models: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    np.save(models / "x.npy", np.ones((2, 4), np.float32))
    np.save(models / "x5.npy", np.ones((2, 5), np.float32))
    np.save(models / "xb.npy", np.ones((2, 4), bool))
    (models / "garbage.npy").write_bytes(b"not numpy")
    np.save(models / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    capsys.readouterr()
    args = [arg.format(models=models) for arg in args]
    assert compare(models, "equivalent.pb", *args) == 2
    err = capsys.readouterr().err
    assert err == f"optimize: error: {message.format(models=models)}\n"
    assert main([str(models / "original.pb"), "-o", str(models / "out.pb"), *args]) == 2
    assert capsys.readouterr().err == err and not (models / "out.pb").exists()


def test_compare_needs_two_models_with_the_original_interface(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["--compare", str(models / "original.pb")]) == 2
    assert "--compare takes two models" in capsys.readouterr().err
    assert compare(models, "equivalent.pb", "--outputs", "Identity") == 2  # an identity the optimizer removed
    assert "equivalent.pb: output 'Identity:0' names no node in the graph" in capsys.readouterr().err


@pytest.fixture
def planted() -> Iterator[None]:
    @function_pass("planted")
    def planted_bug(graph: Graph, ctx: PassContext) -> None:
        """Its second rewrite turns a BiasAdd into a plain identity of its input."""
        for item in graph.nodes():
            if item.op == "BiasAdd" and ctx.allow_rewrite() and ctx.rewrites == 2:
                graph.set_inputs(item.name, graph.inputs_of(item.name)[:1])
                graph.del_attr(item.name, "data_format")
                graph.set_op(item.name, "Identity")

    yield
    unregister_pass("planted")


def test_bisect_finds_the_planted_bug_and_its_reproducer_reproduces(
    models: Path, capsys: pytest.CaptureFixture[str], planted: None
) -> None:
    repro = models / "repro"
    args = [str(models / "original.pb"), "-o", str(models / "out.pb"), "--passes", "strip,identity,planted,prune"]
    assert main([*args, "--bisect", "--reproducer-dir", str(repro)]) == 1
    out = capsys.readouterr().out
    assert "the first bad pass is 'planted', rewrite 2, after strip, identity" in out
    commands = [line for line in (repro / "reproduce.sh").read_text().splitlines() if line.startswith("optimize ")]
    assert len(commands) == 2
    for line in commands:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(repro)
            assert main(shlex.split(line)[1:]) == 1
    assert "outputs differ" in capsys.readouterr().out
