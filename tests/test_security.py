"""An untrusted model cannot make optimizing or verifying it touch the outside world: no file is written, no local
file is read into the output, no Python runs (crafted graphs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer._tf import tensorflow
from optimizer.cli import main
from optimizer.graph_io import read_graph_def, write_graph_def


def crafted(tmp_path: Path) -> tuple[Path, Path, Path]:
    """y = x + length(ReadFile(secret)), computed after a WriteFile of `planted` (a control dependency)."""
    tf = tensorflow()
    secret, planted = tmp_path / "secret.txt", tmp_path / "planted.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [2], name="x")
        read = tf.io.read_file(str(secret))
        write = tf.io.write_file(str(planted), tf.constant("pwned"), name="write")
        with tf.control_dependencies([write]):
            tf.add(x, tf.cast(tf.strings.length(read), tf.float32), name="y")
    model = tmp_path / "model.pb"
    write_graph_def(graph.as_graph_def(), model)
    return model, secret, planted


def test_optimizing_and_verifying_never_reads_or_writes_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, _, planted = crafted(tmp_path)
    out = tmp_path / "out.pb"
    code = main([str(model), "-o", str(out), "--outputs", "y"])
    text, err = capsys.readouterr()
    assert code == 4  # written, not verified
    assert err.startswith(f"optimize: warning: {out} written but not verified: the graph has ops that touch files")
    assert not planted.exists()
    assert "touch files, the network or processes (ReadFile" in text
    assert b"TOP-SECRET-CONTENT" not in out.read_bytes()
    assert {"ReadFile", "WriteFile"} <= {node.op for node in read_graph_def(out).node}


def test_compare_does_not_run_such_graphs_either(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, _, planted = crafted(tmp_path)
    assert main(["--compare", str(model), str(model), "--outputs", "y"]) == 4
    assert not planted.exists() and "so it is not run" in capsys.readouterr().out
