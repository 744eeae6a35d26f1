"""Which paths a run may read and write: it reads only regular files and folders, and writes only where asked.

Contract
- `check_readable(path)` raises an OptimizerError naming `path` when it exists and is neither a regular file nor a
  folder (symlinks followed): a FIFO blocks a reader forever, `/dev/zero` never ends, a device or a socket is no
  model. A path that does not exist passes: the loader says so in its own words.
- `read_regular(path, limit)` reads a whole regular file, checked on the open descriptor (no race with a FIFO put
  in its place), refusing one over `limit` bytes before reading it.
- `files_read(model, checkpoint, input_data)` is every existing file a run reads, as real paths: the model file,
  every file of a model folder (a SavedModel), the checkpoint files next to a `.meta` (its folder's `checkpoint`
  state file, `*.index`, `*.data-*`), the files of `--checkpoint` (a prefix's files, or a folder's), and the
  `--input-data` files.
- `check_writable(path, protected)` refuses, before any work, an output that resolves (symlinks followed) to a
  protected file; that exists and is not a regular file (a device node such as `/dev/null`, a FIFO, a folder: it is
  refused, never replaced by a regular file nor written through); or whose folder is missing or not writable.
  `check_folder(path, protected, ...)` does the same for a folder to write files into (`--dump-dir`,
  `--reproducer-dir`): an existing non-folder is refused, and so is a folder holding an input it would write.
- `inside(path, folder)`: whether `path` resolves to somewhere under `folder` (checkpoint state files use it).
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Iterable

from optimizer.errors import OptimizerError

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def check_readable(path: str | os.PathLike[str]) -> None:
    """Refuse an existing path that is neither a regular file nor a folder (see the module docstring)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise OptimizerError(f"is {_kind(mode)}, not a model or data file: only regular files are read", str(path))


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them (an OptimizerError otherwise)."""
    where = str(path)
    try:
        handle = os.open(where, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise OptimizerError(f"cannot read: {error.strerror or error}", where) from error
    with os.fdopen(handle, "rb") as stream:
        info = os.fstat(stream.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise OptimizerError("is a folder, not a file", where)
        if not stat.S_ISREG(info.st_mode):
            raise OptimizerError(f"is {_kind(info.st_mode)}, not a model file: only regular files are read", where)
        if info.st_size > limit:
            raise OptimizerError(f"is {info.st_size / 2**30:.2f} GiB, over the {limit / 2**30:.2f} GiB limit", where)
        return stream.read(info.st_size + 1)  # sized by the file, not the limit: no needless allocation


def _real(path: str) -> str:
    return os.path.realpath(path)


def _files_under(folder: str) -> list[str]:
    return [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names]


def _checkpoint_files(folder: str) -> list[str]:
    patterns = ("checkpoint", "*.index", "*.data-*", "*.meta")
    return [found for pattern in patterns for found in glob.glob(os.path.join(glob.escape(folder), pattern))]


def files_read(model: str, checkpoint: str | None = None, input_data: Iterable[str] = ()) -> set[str]:
    """The real paths of the existing files a run reads (see the module docstring)."""
    read = [model]
    if os.path.isdir(model):
        read += _files_under(model)
    elif model.endswith(".meta"):
        read += _checkpoint_files(os.path.dirname(os.path.abspath(model)))
    if checkpoint:
        if os.path.isdir(checkpoint):
            read += _checkpoint_files(checkpoint)
        else:
            prefix = checkpoint.rsplit(".index", 1)[0] if checkpoint.endswith(".index") else checkpoint
            read += [checkpoint, *glob.glob(glob.escape(prefix.split(".data-")[0]) + ".*")]
    read += [item.partition("=")[2].strip() for item in input_data]
    return {_real(path) for path in read if path and os.path.isfile(path)}


def check_writable(path: str, protected: set[str], what: str = "the output") -> None:
    """Refuse to write `path` when it is an input, a non-regular file, or in a folder that cannot be written."""
    check_not_input(path, protected, what)
    if os.path.lexists(path):
        try:
            mode = os.stat(path).st_mode
        except OSError:
            mode = 0  # a dangling symlink: writing replaces the link itself
        if stat.S_ISDIR(mode):
            raise OptimizerError("cannot write: it is a folder", path)
        if mode and not stat.S_ISREG(mode):
            raise OptimizerError(f"cannot write: it is {_kind(mode)}; {what} is only written to regular files", path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OptimizerError(f"cannot write: folder {folder} does not exist", path)
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise OptimizerError("cannot write: permission denied", path)


def check_not_input(path: str, protected: set[str], what: str = "the output") -> None:
    """Refuse an output `path` that resolves to one of the `protected` files."""
    real = _real(path)
    if real in protected:
        raise OptimizerError(f"{what} would overwrite an input of this run ({real}); choose another path", path)


def check_folder(
    path: str, protected: set[str], what: str, names: Iterable[str] = (), suffixes: tuple[str, ...] = ()
) -> None:
    """Refuse a folder to write into that exists as something else, or that holds an input named one of `names`
    or ending in one of `suffixes` (the files it will write)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise OptimizerError(f"{what} must be a folder, and this is not one", path)
    real = _real(path)
    names = set(names)
    for file in protected:
        name = os.path.basename(file)
        if os.path.dirname(file) == real and (name in names or (suffixes and name.endswith(suffixes))):
            raise OptimizerError(f"{what} would overwrite an input of this run ({name}); choose another folder", path)


def inside(path: str, folder: str) -> bool:
    """Whether `path` resolves to `folder` or somewhere under it."""
    real, base = _real(path), _real(folder)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


REPRODUCER_FILES = ("model.pb", "before.pb", "reproduce.sh")


def check_outputs(
    protected: set[str],
    output: str | None = None,
    report_json: str | None = None,
    dump_dir: str | None = None,
    reproducer_dir: str | None = None,
) -> None:
    """Check every path a run will write, before any work: `-o`, `--report-json`, `--dump-dir` (its files are
    checked again as they are written), `--reproducer-dir` (`optimizer.bisect` writes `REPRODUCER_FILES` and
    `.npy` inputs there)."""
    written = [path for path in (output, report_json) if path]
    if len(written) == 2 and _real(written[0]) == _real(written[1]):
        raise OptimizerError("-o and --report-json name the same file", written[0])
    if output:
        check_writable(output, protected)
    if report_json:
        check_writable(report_json, protected, "the JSON report")
    if dump_dir:
        check_folder(dump_dir, protected, "--dump-dir", suffixes=(".txt",))
    if reproducer_dir:
        check_folder(reproducer_dir, protected, "--reproducer-dir", REPRODUCER_FILES, (".npy",))
