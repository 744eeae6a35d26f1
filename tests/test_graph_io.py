"""Reading and writing GraphDef files: format by content, atomic writes, untouched inputs, one-line errors."""

from __future__ import annotations

import functools
import hashlib
import os
import random
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format

import optimizer
from optimizer import Graph, OptimizerError, graph_io, paths
from optimizer._tf import tensorflow
from optimizer.graph_io import read_graph_def, write_graph_def
from optimizer.protos import GraphDef

tf = tensorflow()


@pytest.fixture(scope="module")
def graph_def() -> GraphDef:
    """A small real graph: a placeholder, a weight, a matmul, an identity output."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 4], name="x")
        weight = tf.constant(np.arange(16, dtype=np.float32).reshape(4, 4), name="weight")
        tf.identity(tf.nn.relu(tf.matmul(x, weight)), name="y")
    return graph.as_graph_def()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _only_these_files(folder: Path, *names: str) -> None:
    assert sorted(entry.name for entry in folder.iterdir()) == sorted(names)


def _raises_one_line(path: Path | str) -> str:
    with pytest.raises(OptimizerError) as caught:
        read_graph_def(path)
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message, message
    assert str(path) in message, message
    return message


# ----- formats, told apart by content --------------------------------------------------------------------------


def test_binary_and_text_load_whatever_the_extension(graph_def: GraphDef, tmp_path: Path) -> None:
    text_in_pb = tmp_path / "text.pb"
    text_in_pb.write_text(text_format.MessageToString(graph_def))
    binary_in_pbtxt = tmp_path / "binary.pbtxt"
    binary_in_pbtxt.write_bytes(graph_def.SerializeToString())
    assert read_graph_def(text_in_pb) == graph_def
    assert read_graph_def(binary_in_pbtxt) == graph_def
    assert read_graph_def(str(binary_in_pbtxt)) == graph_def


@pytest.mark.parametrize("name", ["out.pb", "out.pbtxt", "out.txt", "out.bin"])
def test_save_picks_the_format_from_the_extension_and_round_trips(
    graph_def: GraphDef, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    written = write_graph_def(graph_def, path)
    assert written == path.stat().st_size
    data = path.read_bytes()
    if name.endswith((".pbtxt", ".txt")):
        assert data.decode("utf-8").startswith("node {")
    else:
        assert data == graph_def.SerializeToString(deterministic=True)
    assert read_graph_def(path) == graph_def


def test_a_graph_is_written_in_pieces_byte_for_byte_its_graph_def(graph_def: GraphDef, tmp_path: Path) -> None:
    graph = Graph.from_graph_def(GraphDef.FromString(graph_def.SerializeToString()))
    graph.set_input("y", 0, optimizer.Tensor("x"))  # one node rewired: its `input` is written from its edges
    chunks = graph.to_chunks()
    assert len(chunks) == 2 * len(graph) + 1  # each node's tag and length, its bytes; the header
    path = tmp_path / "out.pb"
    assert write_graph_def(graph, path) == path.stat().st_size == sum(map(len, chunks))
    assert path.read_bytes() == graph.to_graph_def().SerializeToString(deterministic=True)


def test_an_explicit_format_wins_over_the_extension(graph_def: GraphDef, tmp_path: Path) -> None:
    path = tmp_path / "out.pb"
    write_graph_def(graph_def, path, "pbtxt")
    assert path.read_bytes().startswith(b"node {")
    assert read_graph_def(path) == graph_def
    with pytest.raises(OptimizerError, match="unknown format"):
        write_graph_def(graph_def, tmp_path / "other.pb", "onnx")
    _only_these_files(tmp_path, "out.pb")


# ----- writing: whole file or nothing --------------------------------------------------------------------------


def test_write_leaves_no_temporary_file(graph_def: GraphDef, tmp_path: Path) -> None:
    write_graph_def(graph_def, tmp_path / "a.pb")
    write_graph_def(graph_def, tmp_path / "a.pb")  # replacing an existing file
    write_graph_def(graph_def, tmp_path / "b.pbtxt")
    _only_these_files(tmp_path, "a.pb", "b.pbtxt")


@pytest.mark.parametrize("as_graph", [False, True], ids=["graph_def", "graph"])
def test_failed_serialization_leaves_the_existing_output_untouched(
    graph_def: GraphDef, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_graph: bool
) -> None:
    path = tmp_path / "out.pb"
    path.write_bytes(b"previous contents")
    monkeypatch.setattr(graph_io, "serialized_chunks", functools.partial(graph_io.serialized_chunks, limit=16))
    with pytest.raises(OptimizerError) as caught:
        write_graph_def(
            Graph.from_graph_def(GraphDef.FromString(graph_def.SerializeToString())) if as_graph else graph_def, path
        )
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "limit" in message
    assert path.read_bytes() == b"previous contents"
    _only_these_files(tmp_path, "out.pb")


def test_failed_write_cleans_up_its_temporary_file(graph_def: GraphDef, tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()  # the final rename onto a folder fails
    with pytest.raises(OptimizerError) as caught:
        write_graph_def(graph_def, target)
    assert "\n" not in str(caught.value) and str(target) in str(caught.value)
    _only_these_files(tmp_path, "taken")
    with pytest.raises(OptimizerError, match="cannot write"):
        write_graph_def(graph_def, tmp_path / "missing-folder" / "out.pb")
    _only_these_files(tmp_path, "taken")


def test_save_writes_atomically_through_the_api(graph_def: GraphDef, tmp_path: Path) -> None:
    copy = GraphDef()
    copy.CopyFrom(graph_def)
    path = tmp_path / "model.pb"
    size = optimizer.save(optimizer.Graph.from_graph_def(copy), path)
    assert size == path.stat().st_size
    assert read_graph_def(path) == graph_def
    _only_these_files(tmp_path, "model.pb")


# ----- reading never modifies the input ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["model.pb", "model.pbtxt"])
def test_the_input_file_is_never_modified(graph_def: GraphDef, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write_graph_def(graph_def, path)
    before, modified = _digest(path), path.stat().st_mtime_ns
    graph = optimizer.load(path, ["x"], ["y"])
    optimizer.optimize(graph)
    optimizer.save(graph, tmp_path / "out.pb")
    read_graph_def(path)
    assert _digest(path) == before
    assert path.stat().st_mtime_ns == modified
    _only_these_files(tmp_path, name, "out.pb")


# ----- what is not a GraphDef: one-line errors naming the file --------------------------------------------------


def _onnx_like() -> bytes:
    """A ModelProto-shaped message: ir_version (field 1, varint), producer_name (2), graph (7, bytes)."""
    graph = b"\x0a\x05\x0a\x01x\x12\x00" + b"\x12\x04main"  # node {input: "x"}, name: "main"
    return b"\x08\x07" + b"\x12\x07pytorch" + b"\x3a" + bytes([len(graph)]) + graph + b"\x42\x02\x10\x0d"


def _onnx_minimal() -> bytes:
    """Only field 1 (varint) and field 7 (bytes): parses as an empty GraphDef."""
    return b"\x08\x08" + b"\x3a\x04main"


BAD_CONTENTS = {
    "empty.pb": b"",
    "fake.tflite": b"\x1c\x00\x00\x00TFL3" + bytes(range(64)),
    "fake_tflite.pb": b"\x20\x00\x00\x00TFL3\x00\x00\x12\x00" + b"\x00" * 40,
    "onnx_like.onnx": _onnx_like(),
    "onnx_minimal.pb": _onnx_minimal(),
    "text_not_graph.pbtxt": b'name: "not a graph"\nir_version: 7\n',
    "text_garbage.pb": b"hello world, this is not a graph {{{\n",
    "only_whitespace.pbtxt": b"\n  \n",
}


@pytest.mark.parametrize("name", sorted(BAD_CONTENTS))
def test_foreign_files_raise_one_line_errors(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(BAD_CONTENTS[name])
    message = _raises_one_line(path)
    if name.startswith("empty"):
        assert "empty" in message
    if "tflite" in name:
        assert "TensorFlow Lite" in message
    assert path.read_bytes() == BAD_CONTENTS[name]


def _cuts_inside_fields(graph_def: GraphDef) -> list[int]:
    """Prefix lengths that end inside a field: halfway through each node, and inside the trailing `versions`.
    (A cut exactly between two nodes leaves a valid, smaller GraphDef that no reader can tell from a whole one.)"""
    cuts, start = [], 0
    for node in graph_def.node:
        size = GraphDef(node=[node]).ByteSize()
        cuts.append(start + size // 2)
        start += size
    total = graph_def.ByteSize()
    return [*cuts, total - 1, total - 2]


def test_truncated_binary_graph_raises(graph_def: GraphDef, tmp_path: Path) -> None:
    data = graph_def.SerializeToString(deterministic=True)
    cuts = _cuts_inside_fields(graph_def)
    assert len(cuts) == len(graph_def.node) + 2
    for index, keep in enumerate(cuts):
        path = tmp_path / f"truncated{index}.pb"
        path.write_bytes(data[:keep])
        assert "GraphDef" in _raises_one_line(path)


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_raise(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(rng.choice([3, 64, 4096])))
    path = tmp_path / f"random{seed}.pb"
    path.write_bytes(data)
    _raises_one_line(path)


def test_random_printable_text_raises(tmp_path: Path) -> None:
    rng = random.Random(0)
    path = tmp_path / "random.pbtxt"
    path.write_text("".join(rng.choice("abc{}:;\"'\n 0123456789") for _ in range(2000)))
    _raises_one_line(path)


def test_a_folder_raises(tmp_path: Path) -> None:
    folder = tmp_path / "model.pb"
    folder.mkdir()
    assert "folder" in _raises_one_line(folder)


def test_a_missing_path_raises(tmp_path: Path) -> None:
    _raises_one_line(tmp_path / "missing.pb")
    _raises_one_line(str(tmp_path / "missing" / "deeper.pbtxt"))


def test_a_path_through_a_file_raises(graph_def: GraphDef, tmp_path: Path) -> None:
    parent = tmp_path / "model.pb"
    write_graph_def(graph_def, parent)
    _raises_one_line(parent / "child.pb")


def test_a_dangling_link_raises(tmp_path: Path) -> None:
    link = tmp_path / "link.pb"
    link.symlink_to(tmp_path / "nowhere.pb")
    _raises_one_line(link)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files without permission")
def test_an_unreadable_file_raises(graph_def: GraphDef, tmp_path: Path) -> None:
    path = tmp_path / "locked.pb"
    write_graph_def(graph_def, path)
    path.chmod(0)
    try:
        assert "cannot read" in _raises_one_line(path)
    finally:
        path.chmod(0o644)


def test_a_permission_error_raises_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unreadable case where the tests run as root: the OS error arrives as it would for another user."""
    path = tmp_path / "locked.pb"
    path.write_bytes(b"\x0a\x00")

    def refuse(name: str, flags: int) -> int:
        raise PermissionError(13, "Permission denied", name)

    monkeypatch.setattr(paths.os, "open", refuse)
    message = _raises_one_line(path)
    assert "cannot read" in message and "Permission denied" in message


def test_optimizer_load_reports_errors_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "empty.pbtxt"
    path.write_bytes(b"")
    with pytest.raises(OptimizerError) as caught:
        optimizer.load(path)
    assert caught.value.path == str(path)
    assert "\n" not in str(caught.value)
