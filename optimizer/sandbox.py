"""Running TensorFlow on a stranger's graph in a child process, with a time limit and a memory limit.

TensorFlow's kernels can crash (SIGSEGV, an `Abort` op's SIGABRT), loop for ever (a `While` with an endless trip
count) or allocate without bound on crafted input. Everything that executes a user's graph (constant evaluation,
verification runs, TFLite conversion and its interpreter) goes through `call`, so that none of this can kill or
hang the optimizer itself.

Contract
- `call(stage, function, *args, node=None, **kwargs)` runs `function(*args, **kwargs)` (a module-level function:
  it is pickled by reference, its arguments and result by value) in this process's worker and returns its result.
  The worker is a spawned process started on the first call and kept for the next ones, so TensorFlow is imported
  once per run, not once per call; `start()` starts it ahead of time (its import then overlaps other work). A
  call's time limit counts from the moment the worker has imported TensorFlow.
- An exception raised by `function` is raised again here: the same exception when it pickles, otherwise a
  `RuntimeError` with `tf_errors.describe`'s one line.
- When the worker dies (a signal), runs longer than `Limits.seconds` on one call, or its resident memory exceeds
  `Limits.memory` bytes, it is killed and `ChildFailure` is raised: one line naming the stage, the node when the
  caller knows it, the last `step` the call announced, and the cause. The next call starts a fresh worker.
  `ChildFailure` is an `OptimizerError`: the model made TensorFlow crash or exhaust its limits, so the CLI exits 2
  with that line (unless a verification decides otherwise: see `optimizer.verify.verify`).
- `set_limits` sets the limits of later calls (the CLI's `--time-limit` and `--memory-limit`); the defaults are
  `DEFAULT_SECONDS` and `DEFAULT_MEMORY_FRACTION` of the machine's physical memory.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import pickle
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from optimizer.errors import OptimizerError

DEFAULT_SECONDS = 600.0
"""The default wall-time limit of one call (one stage's TensorFlow work), in seconds."""
DEFAULT_MEMORY_FRACTION = 0.75
"""The default memory limit: this fraction of the machine's physical memory."""
READY = "ready"
"""The worker's first message: TensorFlow is imported (a call's time limit counts from then on)."""
POLL_SECONDS = 0.02
"""How often the worker's resident memory is read while a call runs."""


def physical_memory() -> int:
    """The machine's physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True)
class Limits:
    """Wall seconds per call and resident bytes for the worker."""

    seconds: float = DEFAULT_SECONDS
    memory: int = int(physical_memory() * DEFAULT_MEMORY_FRACTION)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str) -> int:
    """Bytes from a size such as `4G`, `512M`, `1.5GiB` or `1000000` (powers of 1024); ValueError otherwise."""
    match = _SIZE.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a size such as 4G, 512M or 1000000")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def format_size(size: int) -> str:
    """`size` bytes as a short human figure (`1.5 GiB`)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} TiB"


class ChildFailure(OptimizerError):
    """The worker crashed, timed out or ran out of memory; `str()` is the one line, `stage` and `cause` its parts;
    `step` is the last step the call announced (`step`), or None; `internal` is True when the worker exited by
    itself (a bug, not the model's doing)."""

    def __init__(
        self, stage: str, node: str | None, cause: str, step: str | None = None, *, internal: bool = False
    ) -> None:
        self.stage, self.node, self.cause, self.step, self.internal = stage, node, cause, step, internal
        where = f" of node {node!r}" if node else f" ({step})" if step else ""
        super().__init__(f"{stage}{where}: {cause}")


_announce: Connection | None = None  # in the worker: where `step` writes


def step(text: str) -> None:
    """In the worker, tell the caller what the current call does now (such as `running the original graph`), so
    that a failure can say it (`ChildFailure.step`); elsewhere, nothing."""
    if _announce is not None:
        _announce.send((None, text))


def _serve(connection: Connection) -> None:
    """The worker's loop: receive `(function, args, kwargs)`, send `(True, result)` or `(False, exception)`."""
    from optimizer._tf import tensorflow

    global _announce
    _announce = connection
    _die_with_parent()
    quiet = os.open(os.devnull, os.O_WRONLY)  # TensorFlow's logs and a crash's stack dump are not the user's lines
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    tensorflow()  # imported once, before the first request
    connection.send((None, READY))
    while True:
        try:
            function, args, kwargs = connection.recv()
        except EOFError:  # the caller is gone: end this worker's own worker, if any (nothing else would)
            _worker.stop()
            return
        try:
            reply: tuple[bool, Any] = (True, function(*args, **kwargs))
        except Exception as error:
            reply = (False, _portable(error))
        try:
            connection.send(reply)
        except Exception as error:  # a result that does not pickle
            connection.send((False, RuntimeError(f"the result of {function.__name__} cannot be sent back: {error}")))


def _portable(error: Exception) -> Exception:
    """`error` if it survives pickling (its class rebuilt from its args), else a RuntimeError with its one line."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        from optimizer.tf_errors import describe

        return RuntimeError(describe(error))


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a killed parent runs no clean-up)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def resident_bytes(pid: int) -> int:
    """The resident memory of process `pid` in bytes (0 when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.Signals._value2member_map_ else str(-exitcode)
        why = " (an Abort op or a failed check in a kernel)" if name == "SIGABRT" else ""
        return f"crashed with {name}{why}"
    return f"the child process died (exit status {exitcode})"


class Worker:
    """One child process serving `call`s (see the module docstring)."""

    def __init__(self) -> None:
        self.limits = Limits()
        self._process: Any = None
        self._connection: Connection | None = None
        self._ready = False

    def start(self) -> None:
        """Start the worker if none is running."""
        if self._process is not None and self._process.is_alive():
            return
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        # Not a daemon: a batch's worker runs a worker of its own (`_die_with_parent` and `stop` end them).
        self._process = context.Process(target=_serve, args=(child,), name="optimizer-tensorflow")
        self._process.start()
        self._ready = False
        child.close()
        self._connection = parent

    def stop(self) -> None:
        """Kill the worker, if any."""
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
        if self._connection is not None:
            self._connection.close()
        self._process, self._connection = None, None

    def call(self, stage: str, function: Callable[..., Any], *args: Any, node: str | None = None, **kwargs: Any) -> Any:
        """Run `function(*args, **kwargs)` in the worker (see the module docstring)."""
        self.start()
        assert self._connection is not None and self._process is not None
        process, connection = self._process, self._connection
        last_step: str | None = None
        try:
            if not self._ready:  # the import of TensorFlow does not count against the first call's time limit
                while not connection.poll(POLL_SECONDS):
                    if not process.is_alive():
                        raise EOFError
                connection.recv()
                self._ready = True
            deadline = time.monotonic() + self.limits.seconds
            connection.send((function, args, kwargs))
            while True:
                if connection.poll(POLL_SECONDS):
                    ok, value = connection.recv()
                    if ok is not None:
                        break
                    last_step = value  # a `step` announcement; the reply is still to come
                elif not process.is_alive():
                    raise EOFError
                elif time.monotonic() > deadline:
                    self.stop()
                    cause = f"took longer than the time limit of {self.limits.seconds:g} s (--time-limit)"
                    raise ChildFailure(stage, node, cause, last_step)
                elif resident_bytes(process.pid) > self.limits.memory:
                    self.stop()
                    cause = f"used more than the memory limit of {format_size(self.limits.memory)} (--memory-limit)"
                    raise ChildFailure(stage, node, cause, last_step)
        except (EOFError, OSError):
            process.join(5)
            exitcode = process.exitcode
            self.stop()
            internal = exitcode is not None and exitcode >= 0
            raise ChildFailure(stage, node, _death(exitcode), last_step, internal=internal) from None
        if not ok:
            raise value
        return value


_worker = Worker()
atexit.register(_worker.stop)


def call(stage: str, function: Callable[..., Any], *args: Any, node: str | None = None, **kwargs: Any) -> Any:
    """Run `function(*args, **kwargs)` in this process's worker; see the module docstring."""
    return _worker.call(stage, function, *args, node=node, **kwargs)


def start() -> None:
    """Start this process's worker ahead of its first call."""
    _worker.start()


def set_limits(limits: Limits) -> None:
    """Use `limits` for the calls that follow."""
    _worker.limits = limits


def limits() -> Limits:
    """The limits calls run under now."""
    return _worker.limits
