"""Verification: run two GraphDefs in TensorFlow on the same inputs and compare every output.

Contract
- Inputs are seeded random values that fit each input's dtype and static shape (floats uniform in [-1, 1),
  integers in [0, 3], booleans, short strings; `ranges` overrides the interval per input), unless the caller gives
  feeds for some or all inputs. An unknown dimension becomes 1, with a note. A boolean, integer or string input of
  unknown rank is fed a scalar (a flag or a size), with a note; a float input of unknown rank is not guessed (a
  wrong rank can crash TensorFlow's kernels): verification is skipped and says to give `--input-shape` or
  `--input-data`.
- Inputs that are the row splits of a ragged tensor (`optimizer.ragged_inputs`: found from the ops that consume
  them) are fed valid splits of what they split, not random integers. An input of a type no value can be made of
  (a variant, a resource, a quantized type) is not guessed: verification is not run.
- `samples` input sets are drawn (seeds `seed`, `seed + 1`, ...); each output's figures are the worst over them.
- Numbers compare as `|actual - expected| <= atol + rtol * |expected|`, per output if `tolerances` names it;
  NaN equals NaN and an infinity equals only the same infinity; a NaN or infinity on one side only is called out
  in the output's note. Non-numeric outputs (strings) compare exactly.
- For each output the report gives the largest absolute and relative error, the mean absolute error, how many
  elements fail, and the smallest `atol` (at the given `rtol`) and `rtol` (at the given `atol`) that would pass.
- A graph whose outputs need ops that touch files, the network, processes or Python
  (`foldable.outside_world_ops`) is never run: verification is skipped and says which ops.
- Random ops draw the same numbers in both graphs: unseeded ones get the same fixed seeds, keyed by node name, in
  the copies that run (`optimizer.random_ops`; the graphs given, and so the written output, keep their attrs).
  Outputs that depend on a random op no seed can make alike (one the optimized graph has and the original lacks;
  any, when the candidate is a runtime that cannot be seeded, such as the TFLite interpreter) are not compared and
  are listed in `Verification.random_outputs`; every other output is compared. The status covers the compared
  outputs only: PASSED says that each of them matches and that the listed ones were not compared; when no output
  can be compared, verification is skipped (NOT_RUN).
- A model's initializer (`optimizer.initializers.ModelInit`: a SavedModel's init op with its asset feeds, or
  `init_all_tables`) runs once in each session before the outputs, after variables are restored, as TensorFlow's
  loader runs it: the original with `init`, the candidate with `candidate_init`.
- The verdict (`Verification.status`) is `PASSED`, `FAILED` or `NOT_RUN`; a verification that compared nothing is
  never a pass. Its `skipped` gives TensorFlow's own reason (`tf_errors.describe`: the failing node, its op, the
  kernel's message) and, where inputs the user gives would let it run, `remedy` says which options to use.
- If the *original* graph cannot run on the inputs, verification is skipped with the reason, not failed. When it
  uses ops this TensorFlow does not know (custom ops), it is not run at all; when TensorFlow refuses to import it
  for another reason, `invalid_original` says why (the CLI treats that as an input error).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from optimizer import opinfo, sandbox
from optimizer._tf import tensorflow
from optimizer.foldable import outside_world_ops
from optimizer.initializers import ModelInit
from optimizer.ir import Tensor
from optimizer.protos import GraphDef
from optimizer.ragged_inputs import make_row_splits, row_splits_inputs
from optimizer.random_ops import Seeding, seed_alike, unseedable_candidate
from optimizer.session import import_graph, open_session, run_graph, session_for
from optimizer.state import state_writers
from optimizer.tf_errors import describe

__all__ = ["import_graph", "run_graph", "session_for"]  # re-exported: tests and tools run graphs from here
from optimizer.variables import VariableValues

PASSED, FAILED, NOT_RUN = "passed", "failed", "not run"
"""A verification's status: every output compared and equal; some output differs (or the candidate does not run);
nothing compared (the reason is `Verification.skipped`)."""
RTOL = 1e-4
ATOL = 1e-5
STATEFUL_CALLS = 2
"""How many times each graph runs on each input set when it writes state (see `verify_runs`)."""
INPUTS_REMEDY = (
    "give the inputs' values with --input-data NAME=FILE.npy, their shapes with --input-shape NAME:DIMS or their"
    " interval with --input-range NAME=LOW,HIGH"
)
"""How to make runnable a verification that could not make or use its random inputs (`Verification.remedy`)."""
ORIGINAL_STEP, CANDIDATE_STEP = "running the original graph", "running the candidate"
"""What `verify_runs` announces (`sandbox.step`) before running each graph."""
MAX_FEED_BYTES = 256 * 2**20
"""Random inputs larger than this are not made: verification is skipped with the reason (absurd declared shapes)."""


@dataclass(frozen=True)
class Tolerance:
    """`|actual - expected| <= atol + rtol * |expected|`."""

    rtol: float = RTOL
    atol: float = ATOL


@dataclass
class OutputCheck:
    """How one output of the candidate compares with the original (worst over all samples)."""

    name: str
    shape: list[int]
    dtype: str
    max_abs_error: float
    max_rel_error: float
    passed: bool
    note: str = ""
    mean_abs_error: float = 0.0
    elements: int = 0
    failing: int = 0
    atol_needed: float = 0.0
    rtol_needed: float = 0.0

    def worst(self, other: OutputCheck) -> OutputCheck:
        """The combination of two samples' checks of the same output: maxima, sums, the first note."""
        return OutputCheck(
            self.name,
            self.shape,
            self.dtype,
            max(self.max_abs_error, other.max_abs_error),
            max(self.max_rel_error, other.max_rel_error),
            self.passed and other.passed,
            self.note or other.note,
            max(self.mean_abs_error, other.mean_abs_error),
            self.elements + other.elements,
            self.failing + other.failing,
            max(self.atol_needed, other.atol_needed),
            max(self.rtol_needed, other.rtol_needed),
        )


@dataclass
class Verification:
    """The comparison of every output, or the reason it was skipped (and, when the user can help, `remedy`);
    `random_outputs` were not compared (they depend on random ops that could not be seeded alike), and
    `random_seeded` random ops were seeded alike."""

    outputs: list[OutputCheck] = field(default_factory=list)
    skipped: str | None = None
    remedy: str = ""
    invalid_original: str | None = None
    notes: list[str] = field(default_factory=list)
    seed: int = 0
    samples: int = 1
    calls: int = 1
    failing_feeds: dict[str, np.ndarray] | None = None
    random_seeded: int = 0
    random_outputs: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """`PASSED` only when outputs were compared and all are equal (`random_outputs` were not: they are listed);
        `NOT_RUN` when nothing was compared."""
        if self.skipped is not None or not self.outputs:
            return NOT_RUN
        return PASSED if all(check.passed for check in self.outputs) else FAILED

    @property
    def passed(self) -> bool:
        """True only when outputs were compared and all are equal (a skipped verification did not pass)."""
        return self.status == PASSED

    @property
    def failed(self) -> bool:
        """True when some output was compared and differs, or the candidate failed to run."""
        return self.status == FAILED

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("failing_feeds")
        data["status"] = self.status
        data["passed"] = self.passed
        return data


def random_value(
    dtype: Any,
    shape: Sequence[int],
    rng: np.random.Generator,
    value_range: tuple[float, float] | None = None,
    words: Sequence[bytes] = (),
) -> np.ndarray:
    """A random array of TF `dtype` and `shape`: floats in [-1, 1), integers in [0, 3], bools, strings (drawn from
    `words` and one word not among them, when given); `value_range` (low, high) overrides the interval of numbers."""
    tf = tensorflow()
    dtype = tf.as_dtype(dtype)
    low, high = value_range or ((-1.0, 1.0) if dtype.is_floating or dtype.is_complex else (0, 3))
    if dtype.is_floating:
        return rng.uniform(low, high, size=shape).astype(dtype.as_numpy_dtype)
    if dtype.is_complex:
        real, imaginary = rng.uniform(low, high, size=(2, *shape))
        return (real + 1j * imaginary).astype(dtype.as_numpy_dtype)
    if dtype.is_integer:  # an interval wider than the dtype (`--input-range x=-1e30,1`) is cut to its bounds
        bounds, wide = np.iinfo(dtype.as_numpy_dtype), np.iinfo(np.int64)
        least, most = max(int(bounds.min), int(wide.min)), min(int(bounds.max), int(wide.max))
        low, high = (min(max(int(value), least), most) for value in (low, high))
        drawn = rng.integers(low, max(low, high), size=shape, endpoint=True)  # as integers(low, high + 1) draws
        return drawn.astype(dtype.as_numpy_dtype)
    if dtype.is_bool:
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype == tf.string and words:
        choices = np.array([*words, b"~" * (max(map(len, words)) + 1)], dtype=object)  # the last is no key
        return choices[rng.integers(0, len(choices), size=shape)].astype(bytes)
    if dtype == tf.string:
        return np.array([b"s%d" % value for value in rng.integers(0, 100, size=int(np.prod(shape)))]).reshape(shape)
    raise ValueError(f"cannot make random values of type {dtype.name}")


def can_make(dtype: Any) -> bool:
    """Whether `random_value` makes values of TF `dtype` (not variants, resources or quantized types)."""
    dtype = tensorflow().as_dtype(dtype)
    return bool(dtype.is_floating or dtype.is_complex or dtype.is_integer or dtype.is_bool or dtype.name == "string")


@dataclass(frozen=True)
class InputSpec:
    """What random values an input takes: its name, TF dtype and the shape fed (dynamic dimensions as 1); `dims`
    is the static shape (None where dynamic)."""

    name: str
    dtype: Any
    shape: tuple[int, ...]
    note: str = ""
    dims: tuple[int | None, ...] = ()


def input_specs(graph_def: GraphDef, inputs: Sequence[Tensor]) -> list[InputSpec]:
    """Dtype and static shape of each input, from TensorFlow's shape inference over `graph_def`."""
    graph = import_graph(graph_def, [tensor.node for tensor in inputs])
    specs = []
    for tensor in inputs:
        static = graph.get_tensor_by_name(str(tensor))
        if not can_make(static.dtype.base_dtype):
            raise ValueError(f"input {tensor} is a {static.dtype.base_dtype.name}, of which no value can be made up")
        if static.shape.rank is None:
            dtype = static.dtype.base_dtype
            if dtype.is_floating or dtype.is_complex:
                raise ValueError(f"input {tensor} has unknown rank: give --input-shape or --input-data to verify")
            specs.append(InputSpec(str(tensor), dtype, (), f"{tensor}: unknown rank, fed a scalar"))
            continue
        dims = static.shape.as_list()
        shape = tuple(1 if dim is None else dim for dim in dims)
        size = float(np.prod([float(dim) for dim in shape])) * max(static.dtype.base_dtype.size, 1)
        if size > MAX_FEED_BYTES:
            raise ValueError(f"input {tensor} of shape {list(shape)} would need {size / 2**20:.0f} MiB of random data")
        note = f"{tensor}: dynamic dimensions fed as 1 (shape {list(shape)})" if None in dims else ""
        specs.append(InputSpec(str(tensor), static.dtype.base_dtype, shape, note, tuple(dims)))
    return specs


def draw_feeds(
    specs: Sequence[InputSpec],
    seed: int,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    words: Sequence[bytes] = (),
) -> dict[str, np.ndarray]:
    """One seeded random value per input spec (strings from `words`, when given: see `random_value`)."""
    rng = np.random.default_rng(seed)
    return {spec.name: random_value(spec.dtype, spec.shape, rng, _lookup(ranges, spec.name), words) for spec in specs}


def random_feeds(
    graph_def: GraphDef,
    inputs: Sequence[Tensor],
    seed: int = 0,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Seeded random feeds for `inputs` of `graph_def`, and notes on dimensions that had to be guessed."""
    specs = input_specs(graph_def, inputs)
    return draw_feeds(specs, seed, ranges), [spec.note for spec in specs if spec.note]


def _lookup(table: Mapping[str, Any] | None, name: str) -> Any:
    """`table[name]` for a `node:port` name, accepting a key written as plain `node` for port 0."""
    if not table:
        return None
    if name in table:
        return table[name]
    node, _, port = name.rpartition(":")
    return table.get(node) if port == "0" else None


def _one_sided(want: np.ndarray, got: np.ndarray) -> str:
    notes = []
    for label, test in (("NaN", np.isnan), ("Inf", np.isinf)):
        only_got = int(np.sum(test(got) & ~test(want)))
        only_want = int(np.sum(test(want) & ~test(got)))
        if only_got:
            notes.append(f"{label} in the candidate only at {only_got} element(s)")
        if only_want:
            notes.append(f"{label} in the original only at {only_want} element(s)")
    return "; ".join(notes)


def compare(name: str, expected: Any, actual: Any, rtol: float = RTOL, atol: float = ATOL) -> OutputCheck:
    """Compare one output; see the module docstring for the rule and the figures."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    shape, dtype, size = list(expected.shape), str(expected.dtype), int(expected.size)
    if expected.shape != actual.shape:
        note = f"shape {list(actual.shape)} != {shape}"
        return OutputCheck(name, shape, dtype, np.inf, np.inf, False, note, np.inf, size, size, np.inf, np.inf)
    if expected.dtype != actual.dtype:
        note = f"dtype {actual.dtype} != {dtype}"
        return OutputCheck(name, shape, dtype, np.inf, np.inf, False, note, np.inf, size, size, np.inf, np.inf)
    if not (np.issubdtype(expected.dtype, np.number) or expected.dtype == bool):
        failing = int(np.sum(expected != actual)) if size else 0
        error = 0.0 if failing == 0 else np.inf
        return OutputCheck(name, shape, dtype, error, error, failing == 0, "", error, size, failing, error, error)
    if size == 0:
        return OutputCheck(name, shape, dtype, 0.0, 0.0, True)
    wide = np.complex128 if np.iscomplexobj(expected) else np.float64
    want, got = expected.astype(wide), actual.astype(wide)
    same = (want == got) | (np.isnan(want) & np.isnan(got))
    magnitude = np.abs(want)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        errors = np.where(same, 0.0, np.abs(got - want))
        errors = np.where(np.isnan(errors), np.inf, errors)
        relatives = np.where(same, 0.0, errors / np.maximum(magnitude, np.finfo(np.float64).tiny))
        ok = same | (np.isfinite(errors) & (errors <= atol + rtol * magnitude))
        finite_magnitude = np.where(np.isfinite(magnitude), magnitude, 0.0)
        atol_needed = float(np.max(np.maximum(errors - rtol * finite_magnitude, 0.0)))
        excess = np.maximum(errors - atol, 0.0) / np.maximum(magnitude, 1e-300)
        rtol_needed = float(np.max(np.where(same, 0.0, excess)))
    failing = int(np.sum(~ok))
    return OutputCheck(
        name,
        shape,
        dtype,
        float(errors.max()),
        float(relatives.max()),
        failing == 0,
        _one_sided(want, got) if failing else "",
        float(errors.mean()),
        size,
        failing,
        atol_needed,
        rtol_needed,
    )


def failed_checks(names: Iterable[str], message: str) -> list[OutputCheck]:
    """The checks of outputs `names` when the candidate did not run (`message` says why): each one failed."""
    return [OutputCheck(name, [], "", np.inf, np.inf, False, message) for name in names]


class CandidateError(Exception):
    """The candidate could not be prepared to run (its message says why)."""


def verify(
    original: GraphDef,
    candidate: GraphDef,
    inputs: Sequence[Tensor],
    outputs: Sequence[Tensor],
    candidate_init: ModelInit | None = None,
    **options: Any,
) -> Verification:
    """Run `original` and `candidate` on the same inputs and compare each declared output (the options are
    `verify_runs`'s; `candidate_init` runs first in the candidate's session). The candidate is imported when
    first run, so an original that cannot run is reported first. Both run in the limited child process
    (`optimizer.sandbox`, stage `verification`): when it crashes or exceeds a limit, `sandbox.ChildFailure` is
    raised, its `step` `ORIGINAL_STEP` or `CANDIDATE_STEP` saying which graph was running."""
    return sandbox.call("verification", _verify_here, original, candidate, inputs, outputs, candidate_init, **options)


def _verify_here(
    original: GraphDef,
    candidate: GraphDef,
    inputs: Sequence[Tensor],
    outputs: Sequence[Tensor],
    candidate_init: ModelInit | None = None,
    **options: Any,
) -> Verification:
    """`verify`, in this process."""
    fetches = [str(tensor) for tensor in outputs]
    variables: VariableValues | None = options.get("variables")
    if state_writers(candidate, fetches):
        options.setdefault("calls", STATEFUL_CALLS)
    seeding = seed_alike(original, candidate, fetches)
    seeded_candidate = seeding.candidate or candidate
    with contextlib.ExitStack() as stack:
        sessions: list[Any] = []

        def run_candidate(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            if not sessions:  # not entered as a context: the original's session is the default one
                # Restoring variables adds ops to the graph: then every node is wrapped (see `import_graph`).
                wrapped = _run_nodes(fetches, feeds) | (candidate_init.session_nodes() if candidate_init else set())
                session = open_session(seeded_candidate, wrapped if variables is None else None)
                sessions.append(session)
                stack.callback(session.close)
                if variables is not None:
                    try:
                        variables.assign_all(session)
                    except Exception as error:
                        raise CandidateError(
                            f"its variables cannot be restored: {describe(error, candidate)}"
                        ) from error
                if candidate_init is not None:
                    candidate_init.run(session)
            try:
                return list(sessions[0].run(fetches, feed_dict=feeds))
            except Exception as error:  # described here, where the candidate's graph names the failing node's op
                raise RuntimeError(describe(error, candidate)) from error

        return verify_runs(
            seeding.original, run_candidate, "the optimized graph", inputs, outputs, seeding=seeding, **options
        )


def verify_runs(
    original: GraphDef,
    run_candidate: Callable[[dict[str, np.ndarray]], list[np.ndarray]],
    candidate_name: str,
    inputs: Sequence[Tensor],
    outputs: Sequence[Tensor],
    *,
    seed: int = 0,
    rtol: float = RTOL,
    atol: float = ATOL,
    feeds: Mapping[str, np.ndarray] | None = None,
    samples: int = 1,
    tolerances: Mapping[str, Tolerance] | None = None,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    variables: VariableValues | None = None,
    calls: int | None = None,
    seeding: Seeding | None = None,
    init: ModelInit | None = None,
    words: Sequence[bytes] = (),
) -> Verification:
    """Run `original` in TensorFlow and `run_candidate(feeds) -> outputs` (any runtime: a session, the TFLite
    interpreter) on the same inputs and compare each declared output.

    `feeds` fixes some or all inputs (by `name:port`); the rest are random, `samples` times. `tolerances` and
    `ranges` are keyed by output and input names (`node` or `node:port`). `variables` (a loaded checkpoint's
    values) are assigned to the original's variables first, so it runs as its session would after a restore (and
    `verify` assigns them to the candidate's variables of the same names); then `init` (the original's
    initializer) runs. Random strings are drawn from `words` when given (a vocabulary's keys,
    `optimizer.tables.table_words`: otherwise no random string would be found in a lookup table).
    `seeding` says which random ops `original` and the candidate have seeded alike (`random_ops.seed_alike`); None
    means a candidate that cannot be seeded: outputs that depend on random ops are then not compared.

    A graph that writes state (`optimizer.state.state_writers`: a counter, a queue) gives different numbers on a
    second run, so both graphs then run `calls` times (default `STATEFUL_CALLS`, else once) on each input set,
    from the state restored at the start, and every call is compared: an update the candidate lost shows."""
    result = Verification(seed=seed, samples=samples)
    fetches = [str(tensor) for tensor in outputs]
    if not fetches:
        result.skipped = "the graph declares no outputs"
        return result
    custom = unknown_ops(original)
    if custom:
        result.skipped = f"the graph uses ops this TensorFlow does not know ({', '.join(custom)}), so it is not run"
        return result
    worldly = outside_world_ops(original, fetches)
    if worldly:
        result.skipped = (
            f"the graph has ops that touch files, the network or processes ({', '.join(worldly)}), so it is not run"
        )
        return result
    seeding = seeding or unseedable_candidate(original, fetches)
    result.random_seeded, result.random_outputs = seeding.seeded, list(seeding.random_outputs)
    compared = [index for index, name in enumerate(fetches) if name not in seeding.random_outputs]
    given = dict(feeds or {})
    missing = [tensor for tensor in inputs if str(tensor) not in given]
    try:  # restoring variables adds ops to the graph: then every node is wrapped (see `import_graph`)
        wrapped = _run_nodes(fetches, [*given, *(str(tensor) for tensor in inputs)]) if variables is None else None
        if wrapped is not None and init is not None:
            wrapped |= init.session_nodes()
        session = open_session(original, wrapped)
    except Exception as error:
        result.invalid_original = describe(error, original)
        result.skipped = f"the original graph does not import: {result.invalid_original}"
        return result
    checks: list[OutputCheck] | None = None
    with session:
        if variables is not None:
            try:
                variables.assign_all(session)
            except Exception as error:
                result.skipped = f"cannot restore the original graph's variables: {describe(error, original)}"
                return result
        if init is not None:
            try:
                init.run(session)
            except Exception as error:
                result.skipped = f"the original graph's initializer does not run: {describe(error, original)}"
                return result
        try:
            specs = input_specs(original, missing)
        except Exception as error:
            result.skipped = f"cannot make inputs for the original graph: {describe(error, original)}"
            result.remedy = INPUTS_REMEDY
            return result
        splits_of = row_splits_inputs(original, [str(tensor) for tensor in inputs])
        lengths = {spec.name: spec.dims[0] if spec.dims else None for spec in specs}
        result.notes = [spec.note for spec in specs if spec.note and spec.name not in splits_of]
        result.notes += [f"{name}: row splits of {of}, made valid" for name, of in splits_of.items() if name in lengths]
        result.notes += _random_notes(seeding)
        if not compared:
            result.skipped = f"every output is random: {seeding.reason}"
            return result
        writers = state_writers(original, fetches)
        if calls is None:
            calls = STATEFUL_CALLS if writers else 1
        if calls > 1:
            shown = ", ".join(writers[:3]) + (f" and {len(writers) - 3} more" if len(writers) > 3 else "")
            result.notes.append(
                f"the graph writes state ({shown or 'the optimized graph'}): each graph ran {calls} times on each "
                "input set from the same restored state, and every call was compared"
            )
        result.calls = calls
        for sample, call in itertools.product(range(samples if missing else 1), range(calls)):
            if call == 0:  # every call of a sample is fed the same values, drawn once
                sample_feeds = {**given, **draw_feeds(specs, seed + sample, ranges, words)}
                sample_feeds = make_row_splits(sample_feeds, splits_of, lengths, seed + sample, list(given))
            sandbox.step(ORIGINAL_STEP)
            try:
                expected = session.run(fetches, feed_dict=sample_feeds)
            except Exception as error:  # any TF failure of the original means we cannot judge the candidate
                when = f" (call {call + 1})" if call else ""
                result.skipped = f"the original graph does not run on these inputs{when}: {describe(error, original)}"
                result.remedy = INPUTS_REMEDY
                return result
            sandbox.step(CANDIDATE_STEP)
            try:
                actual = run_candidate(sample_feeds)
            except Exception as error:
                message = f"{candidate_name} fails to run{f' (call {call + 1})' if call else ''}: {describe(error)}"
                result.outputs = failed_checks([fetches[index] for index in compared], message)
                result.failing_feeds = sample_feeds
                return result
            sample_checks = []
            if len(actual) != len(fetches):
                raise ValueError(f"{candidate_name} gave {len(actual)} outputs for {len(fetches)}")
            for index in compared:
                name, want, got = fetches[index], expected[index], actual[index]
                tolerance = _lookup(tolerances, name) or Tolerance(rtol, atol)
                sample_checks.append(compare(name, want, got, tolerance.rtol, tolerance.atol))
            if call and checks is not None:  # a difference that only a repeated call shows: a lost update
                for check, before in zip(sample_checks, checks, strict=True):
                    if not check.passed and before.passed and not check.note:
                        check.note = f"differs from call {call + 1} on"
            if not all(check.passed for check in sample_checks) and result.failing_feeds is None:
                result.failing_feeds = sample_feeds
            checks = (
                sample_checks if checks is None else [a.worst(b) for a, b in zip(checks, sample_checks, strict=True)]
            )
    result.outputs = checks or []
    return result


def _random_notes(seeding: Seeding) -> list[str]:
    notes = []
    if seeding.seeded:
        ops = "random op" if seeding.seeded == 1 else "random ops"
        notes.append(f"seeded {seeding.seeded} {ops} alike in both graphs (the written graph keeps its seeds)")
    if seeding.random_outputs:
        notes.append(f"not compared, random: {', '.join(seeding.random_outputs)}: {seeding.reason}")
    return notes


def _run_nodes(fetches: Iterable[str], feeds: Iterable[str]) -> set[str]:
    """The nodes a session fetches and feeds (tensor names `node:port`)."""
    return {Tensor.parse(name).node for name in [*fetches, *feeds]}


def unknown_ops(graph_def: GraphDef) -> list[str]:
    """Ops of `graph_def` (function bodies included) that are neither registered nor library functions."""
    functions = {function.signature.name for function in graph_def.library.function}
    ops = {node.op for node in graph_def.node}
    ops.update(node.op for function in graph_def.library.function for node in function.node_def)
    return sorted(op for op in ops if op not in functions and opinfo.op_def(op) is None)
