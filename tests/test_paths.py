"""`optimizer/paths.py`: only regular files and folders are read; outputs never land on an input (symlinks
followed), a device or a FIFO; folders to write into are checked for the inputs they would overwrite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from optimizer.errors import OptimizerError
from optimizer.paths import (
    check_folder,
    check_outputs,
    check_readable,
    check_writable,
    files_read,
    inside,
    read_regular,
)


def test_only_regular_files_and_folders_are_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(OptimizerError, match="is a named pipe"):
        check_readable(tmp_path / "pipe")
    with pytest.raises(OptimizerError, match="is a named pipe"):
        read_regular(tmp_path / "pipe", 100)  # opened without blocking, refused on the descriptor
    with pytest.raises(OptimizerError, match="is a character device"):
        read_regular("/dev/zero", 100)
    (tmp_path / "big").write_bytes(bytes(101))
    with pytest.raises(OptimizerError, match="over the"):
        read_regular(tmp_path / "big", 100)
    check_readable(tmp_path)
    check_readable(tmp_path / "missing")  # the loader words that one


def test_outputs_never_overwrite_what_is_read(tmp_path: Path) -> None:
    model = tmp_path / "model.pb"
    model.write_bytes(b"x")
    (tmp_path / "link.pb").symlink_to(model)
    protected = files_read(str(model))
    with pytest.raises(OptimizerError, match="would overwrite an input"):
        check_writable(str(tmp_path / "link.pb"), protected)
    with pytest.raises(OptimizerError, match="-o and --report-json name the same file"):
        check_outputs(protected, str(tmp_path / "a.pb"), str(tmp_path / "a.pb"))
    with pytest.raises(OptimizerError, match="it is a character device"):
        check_writable("/dev/null", protected)
    check_writable(str(tmp_path / "new.pb"), protected)


def test_checkpoint_and_saved_model_files_are_inputs(tmp_path: Path) -> None:
    for name in ("model.meta", "checkpoint", "model.index", "model.data-00000-of-00001", "other.pb"):
        (tmp_path / name).write_bytes(b"x")
    read = files_read(str(tmp_path / "model.meta"))
    assert {Path(path).name for path in read} == {
        "model.meta",
        "checkpoint",
        "model.index",
        "model.data-00000-of-00001",
    }
    assert {Path(path).name for path in files_read(str(tmp_path))} >= {"other.pb", "checkpoint"}


def test_folders_to_write_into(tmp_path: Path) -> None:
    (tmp_path / "model.pb").write_bytes(b"x")
    (tmp_path / "file").write_bytes(b"x")
    protected = files_read(str(tmp_path / "model.pb"))
    with pytest.raises(OptimizerError, match="--dump-dir must be a folder"):
        check_folder(str(tmp_path / "file"), protected, "--dump-dir")
    with pytest.raises(OptimizerError, match=r"would overwrite an input of this run \(model.pb\)"):
        check_folder(str(tmp_path), protected, "--reproducer-dir", ["model.pb"])
    check_folder(str(tmp_path / "new"), protected, "--reproducer-dir", ["model.pb"])
    assert inside(str(tmp_path / "a" / ".." / "model.pb"), str(tmp_path))
    assert not inside(str(tmp_path / ".." / "x"), str(tmp_path))
