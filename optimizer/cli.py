"""The `optimize` command.

    optimize IN -o OUT [--passes LIST] ...        optimize, write, verify
    optimize --compare ORIGINAL CANDIDATE ...      verify only: do two models compute the same outputs?

Exit codes (`optimizer.exit_codes`): 0 success; 1 the optimized (or candidate) graph failed verification; 2 a usage
or input error (one line on stderr, no traceback), a model that crashes TensorFlow or exceeds --time-limit or
--memory-limit included (`optimizer.sandbox`); 3 an internal error in a pass (one line naming the pass;
`--traceback` shows it); 4 the output was written but not verified (one line on stderr says why and how to make
it verifiable).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from optimizer.exit_codes import (
    EXIT_CODES_HELP,
    EXIT_INTERNAL,
    EXIT_NOT_VERIFIED,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VERIFY_FAILED,
    worst,
)
from optimizer.sandbox import DEFAULT_SECONDS

if TYPE_CHECKING:
    from optimizer.ir import Graph
    from optimizer.manager import PassRecord
    from optimizer.report import OptimizeReport
    from optimizer.tflite import ConvertOptions
    from optimizer.variables import VariableAccount
    from optimizer.verify import Verification


BATCH_STAGES = 3
"""In a batch, each model's whole run (loading and passes, folding, verification) gets this many --time-limit."""


class _UsageFailure(Exception):
    """A usage mistake found by the command itself (exit 2)."""


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [name.strip() for name in text.split(",") if name.strip()]


def _list_passes(console: Console) -> None:
    from rich.table import Table

    from optimizer.pass_docs import options, summary
    from optimizer.registry import DEFAULT_PIPELINE, pass_names
    from optimizer.targets import TARGETS

    table = Table(title=f"Passes (default pipeline: {DEFAULT_PIPELINE})", title_justify="left")
    for column in ("pass", "what it does", "options (defaults)"):
        table.add_column(column)
    for name in pass_names():
        table.add_row(name, summary(name), options(name))
    console.print(table)
    for target in TARGETS.values():
        console.print(f"--target {target.name}: {target.pipeline} (to a fixed point)", highlight=False)
    console.print("optimize --explain PASS prints a pass's whole contract.")


def _explain(name: str, console: Console) -> None:
    """Print a pass's contract (its module docstring) and its options."""
    from optimizer.pass_docs import contract, options
    from optimizer.registry import get_pass

    cls = get_pass(name)
    console.print(f"[bold]{name}[/bold]  ({cls.__module__}.{cls.__name__})\n")
    console.print(contract(name), markup=False, highlight=False)
    console.print(f"\noptions: {options(name)}")


def _diff(path_a: str, path_b: str, console: Console) -> int:
    """Print which nodes were removed, added or changed from `path_a` to `path_b`."""
    from rich.table import Table

    from optimizer.diff import diff_graph_defs
    from optimizer.graph_io import read_graph_def

    result = diff_graph_defs(read_graph_def(path_a), read_graph_def(path_b))
    console.print(f"[bold]{path_a}[/bold] -> [bold]{path_b}[/bold]")
    for label, names in (("removed", result.removed), ("added", result.added)):
        shown = ", ".join(names[:20]) + (f", ... ({len(names) - 20} more)" if len(names) > 20 else "")
        console.print(f"{label} ({len(names)}): {shown}", markup=False, highlight=False)
    console.print(f"changed ({len(result.changed)}):", highlight=False)
    for name, what in list(result.changed.items())[:50]:
        console.print(f"  {name}: {'; '.join(what)}", markup=False, highlight=False)
    table = Table(title="Nodes by op", title_justify="left")
    for column in ("op", "a", "b", "change"):
        table.add_column(column, justify="left" if column == "op" else "right")
    for op, (count_a, count_b) in result.op_counts.items():
        if count_a != count_b:
            table.add_row(op, str(count_a), str(count_b), f"{count_b - count_a:+d}")
    console.print(table)
    return EXIT_OK


def _check_outputs(input_paths: Sequence[str], options: dict[str, Any], output: str | None) -> set[str]:
    """Fail before any work when a file this run writes cannot be written or is one it reads; return what it
    reads (`optimizer.paths`)."""
    from optimizer.paths import check_outputs, files_read

    protected = {
        read for path in input_paths for read in files_read(path, options.get("checkpoint"), options["input_data"])
    }
    reproducer = options["reproducer_dir"] if options.get("bisect") else None
    check_outputs(protected, output, options["report_json"], options.get("dump_dir"), reproducer)
    return protected


def _verify_keywords(options: dict[str, Any]) -> dict[str, Any]:
    from optimizer.verify_options import verify_keywords

    return verify_keywords(
        options["verify_samples"],
        options["seed"],
        options["rtol"],
        options["atol"],
        options["tolerance"],
        options["input_data"],
        options["input_range"],
    )


def _check_verify_options(keywords: dict[str, Any] | None, graph: Graph) -> None:
    """Refuse --input-data, --input-range and --tolerance settings that do not fit `graph`'s interface (exit 2)."""
    if keywords is None:
        return
    from optimizer._tf import tensorflow
    from optimizer.shapes import StaticShapes
    from optimizer.verify_options import check_against

    inputs: dict[str, tuple[Any, Any]] = {str(tensor): (None, None) for tensor in graph.inputs}
    if keywords["feeds"]:  # shapes and dtypes only matter to given arrays (inference costs a graph import)
        shapes = StaticShapes.of(graph)
        for tensor in graph.inputs:
            dtype = shapes.dtype(tensor)
            inputs[str(tensor)] = (shapes.shape(tensor), None if dtype is None else tensorflow().as_dtype(dtype))
    check_against(keywords, inputs, [str(tensor) for tensor in graph.outputs])


def _refuse_python_ops(graph: Graph, where: str) -> None:
    """A graph whose outputs call back into Python (`tf.py_function`) runs only in the process that built it."""
    from optimizer.errors import OptimizerError
    from optimizer.foldable import PYTHON_OPS, python_ops

    bodies = (node for function in graph.library.function for node in function.node_def)
    if not graph.nodes_of(PYTHON_OPS) and not any(node.op in PYTHON_OPS for node in bodies):
        return  # the common case, without writing the graph out
    found = python_ops(graph.to_graph_def(), [str(tensor) for tensor in graph.outputs])
    if found:
        raise OptimizerError(
            f"the graph calls Python ({', '.join(found)}: tf.py_function or tf.numpy_function), which exists only"
            " in the process that built it; the graph cannot run anywhere else",
            where,
        )


def _verdict_code(verification: Verification | None, written: str | None, announce: bool = True) -> int:
    """The exit code a verification gives (None: --no-verify); of a verification that compared nothing,
    `announce` prints one line on stderr saying why and how to make it runnable."""
    if verification is None:
        return EXIT_OK
    if verification.failed:
        return EXIT_VERIFY_FAILED
    if verification.passed:
        return EXIT_OK
    if not announce:
        return EXIT_NOT_VERIFIED
    what = f"{written} written but not verified" if written else "not verified"
    how = f"to verify, {verification.remedy}" if verification.remedy else "--no-verify skips the check"
    click.echo(f"optimize: warning: {what}: {verification.skipped or 'no output was compared'}; {how}", err=True)
    return EXIT_NOT_VERIFIED


def _write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        from optimizer.graph_io import write_atomic

        write_atomic(path, (json.dumps(data, indent=2, default=float) + "\n").encode())


def _compare(original_path: str, candidate_path: str, options: dict[str, Any], console: Console) -> int:
    """Verify that `candidate_path` computes what `original_path` computes, on the original's interface."""
    from optimizer.api import load
    from optimizer.report import render_verification
    from optimizer.tables import table_words
    from optimizer.verify import verify

    _check_outputs([original_path, candidate_path], options, None)
    keywords = _verify_keywords(options)
    model = {key: options[key] for key in ("checkpoint", "signature", "tag")}  # they describe the original
    original = load(  # --input-shape fixes the original's inputs, and so the shapes of the random inputs
        original_path,
        _names(options["inputs"]),
        _names(options["outputs"]),
        input_shapes=options["input_shapes"],
        **model,
    )
    names = [str(tensor) for tensor in original.inputs], [str(tensor) for tensor in original.outputs]
    candidate = load(candidate_path, *names)
    _check_verify_options(keywords, original)
    _refuse_python_ops(original, original_path)
    _refuse_python_ops(candidate, candidate_path)
    if not options["quiet"]:
        console.print(f"[bold]{original_path}[/bold] vs [bold]{candidate_path}[/bold]")
    with console.status("comparing...", spinner="dots"):
        result = _verified(
            lambda: verify(
                original.to_graph_def(),
                candidate.to_graph_def(),
                original.inputs,
                original.outputs,
                **keywords,
                variables=original.variables,
                init=original.init,
                candidate_init=candidate.init,
                words=table_words(candidate),
            ),
            original.outputs,
            original_path,
        )
    if not options["quiet"]:
        render_verification(result, console)
    _write_json(options["report_json"], {"original": original_path, "candidate": candidate_path, **result.to_dict()})
    return _verdict_code(result, None)


def _change_hooks(
    options: dict[str, Any], console: Console, protected: set[str]
) -> list[Callable[[PassRecord, Graph], None]]:
    """`--dump-dir`: write the graph's textual form (`optimizer.printer`) after each pass that changed it (never over
    an input); `--print-after-change`: print it."""
    from optimizer.errors import OptimizerError
    from optimizer.graph_io import write_atomic
    from optimizer.paths import check_writable

    hooks: list[Callable[[PassRecord, Graph], None]] = []
    if options["dump_dir"]:
        folder = options["dump_dir"]
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as error:
            raise OptimizerError(f"--dump-dir: cannot make the folder: {error.strerror or error}", folder) from error
        counter = iter(range(1, 10**6))

        def dump(record: PassRecord, graph: Graph) -> None:
            path = os.path.join(folder, f"{next(counter):03d}-{record.name.split('{')[0]}.txt")
            check_writable(path, protected, "--dump-dir")
            write_atomic(path, (str(graph) + "\n").encode())

        hooks.append(dump)
    if options["print_after_change"]:

        def show(record: PassRecord, graph: Graph) -> None:
            console.print(f"// ----- after {record.name} (round {record.iteration}) -----", highlight=False)
            console.print(str(graph), markup=False, highlight=False)

        hooks.append(show)
    return hooks


def _variable_account(graph: Graph) -> VariableAccount | None:
    """Where the loaded variables went (None for a model without values); taken before verification runs."""
    from optimizer.variables import is_variable_node

    if graph.variables is None:
        return None
    return graph.variables.account(node.name for node in graph.nodes() if is_variable_node(node.proto))


def _writes_tflite(options: dict[str, Any]) -> bool:
    """Whether the output is a `.tflite` model (`-o model.tflite`, or `--format tflite`)."""
    output, fmt = options["output_path"], options["fmt"]
    if fmt is not None:
        return bool(fmt == "tflite")
    return output is not None and output.lower().endswith(".tflite")


def _tflite_options(options: dict[str, Any], to_tflite: bool) -> ConvertOptions | None:
    """The converter options the command line asks for (None when not writing `.tflite`); misuse is exit 2."""
    from optimizer.tflite import ConvertOptions

    flags = {name: bool(options.get(name)) for name in ("float16", "dynamic_range", "select_tf_ops")}
    asked = [name for name, on in flags.items() if on] + (
        ["compare_converter"] if options.get("compare_converter") else []
    )
    if not to_tflite:
        if asked:
            raise _UsageFailure(f"--{asked[0].replace('_', '-')} applies to .tflite output (-o model.tflite)")
        return None
    if flags["float16"] and flags["dynamic_range"]:
        raise _UsageFailure("--float16 and --dynamic-range are two quantizations: choose one")
    return ConvertOptions(**flags)


def _to_tflite(
    input_path: str,
    graph: Graph,
    original: Graph | None,
    convert_options: ConvertOptions | None,
    report: OptimizeReport,
    options: dict[str, Any],
    console: Console,
) -> bytes | None:
    """Convert the optimized graph (`-o model.tflite`) and, with --compare-converter, the unoptimized model with
    TensorFlow alone; put the figures in the report. A rejected graph is an input error (exit 2)."""
    import dataclasses

    from optimizer.tflite import convert, operator_count
    from optimizer.tflite_baseline import convert_without_optimizing
    from optimizer.tflite_report import TfliteFigures

    if convert_options is None:
        return None
    with console.status("converting to TFLite...", spinner="dots"), _named(input_path):
        model = convert(graph, convert_options)
    report.tflite = TfliteFigures(len(model), operator_count(model), dataclasses.asdict(convert_options))
    if options.get("compare_converter") and original is not None:
        with console.status("converting with TensorFlow alone...", spinner="dots"), _named(input_path):
            report.tflite.baseline = convert_without_optimizing(
                input_path, original, convert_options, signature=options["signature"], tag=options["tag"]
            )
    return model


def _verify_baseline(
    report: OptimizeReport, before: Any, graph: Graph, keywords: dict[str, Any], input_path: str
) -> None:
    """Check TensorFlow alone's `.tflite` against the original too (it does not decide the exit code)."""
    from optimizer.tflite import verify_tflite

    baseline = report.tflite.baseline if report.tflite is not None else None
    if baseline is None or baseline.model is None:
        return
    model, by_keys = baseline.model, baseline.from_saved_model
    baseline.verification = _verified(
        lambda: verify_tflite(before, model, graph.inputs, graph.outputs, **keywords, by_signature_keys=by_keys),
        graph.outputs,
        input_path,
    )


QUANTIZED_TOLERANCES = {"float16": (1e-2, 1e-3), "dynamic_range": (1e-1, 1e-2)}
"""rtol, atol for a model with float16 weights, or int8 weights and dynamically quantized activations, when
--rtol/--atol keep their defaults: float32 tolerances would fail every quantized model."""


def _loosen_for_quantization(keywords: dict[str, Any], convert_options: ConvertOptions | None) -> str | None:
    """Use `QUANTIZED_TOLERANCES` for a quantized model where the user left --rtol/--atol at their defaults."""
    from optimizer.verify import ATOL, RTOL

    if convert_options is None or (keywords["rtol"], keywords["atol"]) != (RTOL, ATOL):
        return None
    scheme = "float16" if convert_options.float16 else "dynamic_range" if convert_options.dynamic_range else None
    if scheme is None:
        return None
    keywords["rtol"], keywords["atol"] = QUANTIZED_TOLERANCES[scheme]
    flag = scheme.replace("_", "-")
    return f"quantized weights (--{flag}): compared with rtol {keywords['rtol']:g}, atol {keywords['atol']:g}"


@contextlib.contextmanager
def _named(input_path: str) -> Iterator[None]:
    """Name the model in the line of a child's crash, timeout or memory blow-up (an input error, exit 2)."""
    from optimizer.errors import OptimizerError
    from optimizer.sandbox import ChildFailure

    try:
        yield
    except ChildFailure as failure:
        raise OptimizerError(str(failure), input_path) from None


@contextlib.contextmanager
def _pass_errors_named(input_path: str) -> Iterator[None]:
    """Name the model in the line of a pass that refused it (a user error, exit 2), as every input error does."""
    from optimizer.errors import PassError

    try:
        yield
    except PassError as error:
        if not error.user_error:
            raise
        raise PassError(f"{input_path}: {error}", user_error=True) from error


def _verified(run: Callable[[], Verification], outputs: Sequence[Any], original_path: str) -> Verification:
    """`run()`'s verification. When its child process crashes, runs out of time or of memory: while the candidate
    ran, the candidate failed (exit 1); otherwise the original is at fault, an input error naming `original_path`
    (one line, exit 2)."""
    from optimizer.errors import OptimizerError
    from optimizer.sandbox import ChildFailure
    from optimizer.verify import CANDIDATE_STEP, Verification, failed_checks

    try:
        return run()
    except ChildFailure as failure:
        if failure.step != CANDIDATE_STEP:
            raise OptimizerError(str(failure), original_path) from None
        message = f"the candidate made TensorFlow fail: {failure}"
        return Verification(outputs=failed_checks(map(str, outputs), message))


def _optimize(input_path: str, options: dict[str, Any], console: Console) -> int:
    from optimizer.api import load, optimize
    from optimizer.errors import OptimizerError
    from optimizer.graph_io import output_format, write_atomic, write_graph_def
    from optimizer.loading import model_bytes
    from optimizer.registry import DEFAULT_PIPELINE
    from optimizer.report import OptimizeReport, render
    from optimizer.tables import table_words
    from optimizer.targets import get_target
    from optimizer.tflite import verify_tflite
    from optimizer.verify import verify

    output_path, fmt = options["output_path"], options["fmt"]
    to_tflite = _writes_tflite(options)
    convert_options = _tflite_options(options, to_tflite)
    target = options.get("target") or ("tflite" if to_tflite and options["passes"] is None else None)
    if target is not None and options["passes"] is not None:
        raise _UsageFailure("--target and --passes both give a pipeline: choose one")
    preset = get_target(target) if target is not None else None
    passes = preset.pipeline if preset else DEFAULT_PIPELINE if options["passes"] is None else options["passes"]
    keywords = _verify_keywords(options) if options["verify"] else None
    tolerance_note = _loosen_for_quantization(keywords, convert_options) if keywords is not None else None
    if output_path is not None and not to_tflite:
        output_format(output_path, fmt)  # a bad --format fails before any work
    protected = _check_outputs([input_path], options, output_path)
    with console.status(f"loading {input_path}...", spinner="dots"):
        graph = load(
            input_path,
            _names(options["inputs"]),
            _names(options["outputs"]),
            input_shapes=options["input_shapes"],
            checkpoint=options["checkpoint"],
            signature=options["signature"],
            tag=options["tag"],
        )
    _refuse_python_ops(graph, input_path)
    _check_verify_options(keywords, graph)
    original = graph.copy() if keywords is not None or options.get("compare_converter") else None
    if original is not None and keywords is not None:
        keywords["variables"] = original.variables  # the original runs with its checkpoint restored
        keywords["init"] = original.init  # and its initializer run (a SavedModel's init op, its assets fed)
    with console.status("optimizing...", spinner="dots") as status, _pass_errors_named(input_path):
        run = optimize(
            graph,
            None if preset else passes,
            target=preset,
            fixed_point=options["fixed_point"] or options["passes"] is None,
            max_rewrites=options["max_rewrites"],
            keep_going=options["keep_going"],
            after_change=_change_hooks(options, console, protected),
            before_pass=[
                lambda name, rounds: status.update(f"optimizing: {name} (round {rounds}, {len(graph)} nodes)")
            ],
        )
    optimized = graph.to_graph_def()
    if keywords is not None:
        keywords["words"] = table_words(graph)  # random strings that hit the tables' keys
    report = OptimizeReport(
        input_path=input_path,
        output_path=output_path,
        inputs=[str(tensor) for tensor in graph.inputs],
        outputs=[str(tensor) for tensor in graph.outputs],
        run=run,
        bytes_before=model_bytes(input_path),
        variables=_variable_account(graph),
        initializers=list(graph.init.nodes) if graph.init and not to_tflite else [],  # a .tflite runs its own
    )
    model = _to_tflite(input_path, graph, original, convert_options, report, options, console)
    if original is not None and keywords is not None:
        with console.status("verifying...", spinner="dots"):
            before = original.to_graph_def()
            if model is not None:
                tflite = model
                report.verification = _verified(
                    lambda: verify_tflite(before, tflite, graph.inputs, graph.outputs, **keywords),
                    graph.outputs,
                    input_path,
                )
                _verify_baseline(report, before, graph, keywords, input_path)
            else:
                init = graph.init
                report.verification = _verified(
                    lambda: verify(before, optimized, graph.inputs, graph.outputs, candidate_init=init, **keywords),
                    graph.outputs,
                    input_path,
                )
        if tolerance_note is not None:
            report.notes.append(tolerance_note)
    if report.verification is not None and report.verification.invalid_original:
        raise OptimizerError(f"TensorFlow cannot import it: {report.verification.invalid_original}", input_path)
    failed = report.verification is not None and report.verification.failed
    if output_path is not None:
        if failed:
            what = "TFLite model" if model is not None else "optimized graph"
            report.notes.append(f"{output_path} was not written: the {what} failed verification")
        elif model is not None:
            write_atomic(output_path, model)
            report.bytes_after = len(model)
        else:
            report.bytes_after = write_graph_def(optimized, output_path, fmt)
    if failed and options["bisect"] and original is not None and keywords is not None:
        from optimizer.bisect import bisect

        with console.status("bisecting...", spinner="dots"):
            found = bisect(
                original, passes, rounds=run.iterations, reproducer_dir=options["reproducer_dir"], **keywords
            )
        report.notes.append(found.summary())
        if found.reproducer is not None:
            report.notes.append(f"reproducer written to {found.reproducer}/ (run reproduce.sh there)")
    if not options["quiet"]:
        render(report, console)
    _write_json(options["report_json"], report.to_dict())
    written = output_path if output_path and not failed else None
    return _verdict_code(report.verification, written, announce=not options.get("in_batch"))  # a batch: its table


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.argument("paths", metavar="INPUT", nargs=-1, type=click.Path(dir_okay=True))
@click.option(
    "-o", "--output", "output_path", metavar="OUT", help="Write the result here: .pb, .pbtxt, or .tflite (converted)."
)
@click.option("--passes", metavar="LIST", help="Pipeline, e.g. 'strip,identity,prune'; '' runs none.")
@click.option("--target", metavar="NAME", help="A preset pipeline for a consumer: tflite (default for .tflite output).")
@click.option("--float16", is_flag=True, help=".tflite: store weights as float16.")
@click.option("--dynamic-range", is_flag=True, help=".tflite: dynamic-range quantization (int8 weights).")
@click.option("--select-tf-ops", is_flag=True, help=".tflite: allow TensorFlow ops the TFLite builtins lack (Flex).")
@click.option(
    "--compare-converter", is_flag=True, help=".tflite: also convert the unoptimized model with TensorFlow alone."
)
@click.option("--inputs", metavar="A,B", help="Graph inputs (node or node:port); default: the placeholders.")
@click.option("--outputs", metavar="C,D", help="Graph outputs (node or node:port); default: the sinks.")
@click.option(
    "--input-shape",
    "input_shapes",
    multiple=True,
    metavar="NAME:DIMS",
    help="Fix a placeholder's shape, e.g. images:1,224,224,3 (repeatable; -1 keeps a dimension dynamic).",
)
@click.option("--checkpoint", metavar="PREFIX", help="Variable values for a GraphDef or .meta (default: latest).")
@click.option("--signature", metavar="NAME", help="SavedModel signature to load (default: serving_default).")
@click.option("--tag", metavar="TAGS", help="SavedModel meta graph tags, comma-separated (default: serve).")
@click.option(
    "--format", "fmt", type=click.Choice(["pb", "pbtxt", "tflite"]), help="Output format (default: -o's extension)."
)
@click.option("--report-json", metavar="FILE", help="Also write the report as JSON.")
@click.option("--fixed-point", is_flag=True, help="Repeat --passes until nothing changes (the default pipeline does).")
@click.option(
    "--max-rewrites", type=click.IntRange(min=0), metavar="K", help="Stop the passes after K rewrites (debugging)."
)
@click.option("--compare", is_flag=True, help="Verify only: optimize --compare ORIGINAL CANDIDATE.")
@click.option("--verify/--no-verify", default=True, show_default=True, help="Run both graphs and compare outputs.")
@click.option("--verify-samples", default=1, show_default=True, metavar="N", help="Random input sets to compare.")
@click.option("--seed", default=0, show_default=True, help="Seed for the random verification inputs.")
@click.option("--rtol", default=1e-4, show_default=True, help="Relative tolerance: |a-b| <= atol + rtol*|b|.")
@click.option("--atol", default=1e-5, show_default=True, help="Absolute tolerance.")
@click.option("--tolerance", multiple=True, metavar="NAME=RTOL,ATOL", help="Tolerance for one output (repeatable).")
@click.option("--input-data", multiple=True, metavar="NAME=FILE.npy", help="Feed this value (repeatable).")
@click.option("--input-range", multiple=True, metavar="NAME=LOW,HIGH", help="Random values' interval (repeatable).")
@click.option("--bisect", is_flag=True, help="On a failed verification, find the first bad pass and rewrite.")
@click.option("--reproducer-dir", default="optimize-reproducer", show_default=True, help="Where --bisect writes.")
@click.option("--keep-going", is_flag=True, help="Roll back a pass that fails and go on (default: stop).")
@click.option(
    "--dump-dir",
    metavar="DIR",
    help="Write the graph after each pass that changed it, one line per node (NNN-PASS.txt; not loadable: -o writes"
    " the model).",
)
@click.option(
    "--print-after-change", is_flag=True, help="Print the graph after each pass that changed it, one line per node."
)
@click.option("--diff", is_flag=True, help="Show what differs: optimize --diff A B.")
@click.option("--jobs", default=1, show_default=True, metavar="N", help="Batch mode: models optimized at once.")
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Wall-time limit of each stage's TensorFlow work (fold, verification), run in a child process; in a "
    f"batch, each model's whole run gets {BATCH_STAGES}x this.",
)
@click.option(
    "--memory-limit",
    metavar="SIZE",
    help="Memory limit of that child process, such as 4G or 512M (default: 3/4 of physical memory).",
)
@click.option("--list-passes", is_flag=True, help="List the known passes and exit.")
@click.option("--explain", metavar="PASS", help="Print a pass's contract and exit.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and warnings (the exit code tells the result).")
@click.option("-v", "--verbose", count=True, help="Log what passes do (-vv: why patterns did not match).")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the full traceback of an internal error.")
def command(paths: tuple[str, ...], **options: Any) -> int:
    """Optimize a TensorFlow model: optimize INPUT -o OUT [--passes LIST]."""
    # Piped output (logs, CI) gets wide tables instead of truncated names.
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
    if options["verbose"]:
        level = logging.DEBUG if options["verbose"] > 1 else logging.INFO
        logging.basicConfig(level=level, format="%(name)s: %(message)s")
    if options["list_passes"]:
        _list_passes(console)
        return EXIT_OK
    if options["explain"]:
        _explain(options["explain"], console)
        return EXIT_OK
    if options["diff"]:
        if len(paths) != 2:
            raise _UsageFailure("--diff takes two models: A B")
        return _diff(paths[0], paths[1], console)
    if options["compare"]:
        if len(paths) != 2:
            raise _UsageFailure("--compare takes two models: ORIGINAL CANDIDATE")
        _set_limits(options)
        return _compare(paths[0], paths[1], options, console)
    if not paths:
        raise _UsageFailure("give an INPUT model (see optimize --help)")
    _set_limits(options)
    output = options["output_path"]
    if len(paths) > 1 or (output is not None and (output.endswith(os.sep) or os.path.isdir(output))):
        return _batch(paths, options, console)
    return _optimize(paths[0], options, console)


def _set_limits(options: dict[str, Any]) -> None:
    """Apply --time-limit and --memory-limit to the child that runs TensorFlow, and start it (its import of
    TensorFlow overlaps loading the model)."""
    from optimizer import sandbox

    memory = sandbox.Limits().memory
    if options["memory_limit"] is not None:
        try:
            memory = sandbox.parse_size(options["memory_limit"])
        except ValueError as error:
            raise _UsageFailure(f"--memory-limit: {error}") from None
    sandbox.set_limits(sandbox.Limits(options["time_limit"], memory))
    sandbox.start()


def _batch_work(task: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    """Optimize one model of a batch, quietly; return its exit code, error line and report (a worker process)."""
    import tempfile

    from optimizer.errors import OptimizerError, PassError

    path, output, options = task
    _set_limits(options)  # in a spawned batch process, this module's limits start from the defaults
    with tempfile.TemporaryDirectory() as folder:
        report_path = os.path.join(folder, "report.json")
        settings = {**options, "output_path": output, "report_json": report_path, "quiet": True, "in_batch": True}
        try:
            code, error = _optimize(path, settings, Console(quiet=True)), ""
        except (OptimizerError, _UsageFailure) as failure:
            code, error = EXIT_USAGE, str(failure)
        except PassError as failure:
            code, error = (EXIT_USAGE if failure.user_error else EXIT_INTERNAL), str(failure)
        report = json.loads(Path(report_path).read_text()) if os.path.exists(report_path) else None
    return {"code": code, "error": error, "report": report}


def _batch(paths: Sequence[str], options: dict[str, Any], console: Console) -> int:
    """Optimize every model into the output folder, `--jobs` at a time; print a summary; exit with the worst code."""
    from rich.table import Table

    from optimizer import sandbox
    from optimizer.batch import output_paths, run_batch
    from optimizer.paths import check_not_input

    folder = options["output_path"]
    if folder is None:
        raise _UsageFailure("several INPUTs need -o OUTDIR/ (a folder)")
    extension = options["fmt"] or "pb"
    tasks = [(path, out, options) for path, out in zip(paths, output_paths(paths, folder, extension), strict=True)]
    protected = _check_outputs(paths, {**options, "report_json": None}, None)
    for _, out, _ in tasks:
        check_not_input(out, protected)  # no model's output is another model's input
    os.makedirs(folder, exist_ok=True)
    limits = sandbox.Limits(BATCH_STAGES * options["time_limit"], sandbox.limits().memory)
    results = run_batch(_batch_work, tasks, options["jobs"], lambda task: task[0], console, limits)
    table = Table(title=f"Batch: {len(paths)} models -> {folder}", title_justify="left")
    for column in ("model", "nodes", "time", "verification", "result"):
        table.add_column(column, justify="right" if column in ("nodes", "time") else "left")
    for (path, out, _), result in zip(tasks, results, strict=True):
        report = result.get("report") or {}
        run = report.get("run") or {}
        seconds = sum(record["seconds"] for record in run.get("records", []))
        verification = report.get("verification") or {}
        status = verification.get("status")
        checked = {"passed": "match", "failed": "DIFFER", "not run": "not run"}.get(str(status), "-")
        outcome = {
            EXIT_OK: f"[green]ok[/green] {out}",
            EXIT_VERIFY_FAILED: "[red]verification failed[/red]",
            EXIT_NOT_VERIFIED: f"[yellow]not verified[/yellow] {out}: {verification.get('skipped')}",
        }.get(result["code"], f"[red]error[/red] {result.get('error', '')}")
        nodes = f"{run['nodes_before']} -> {run['nodes_after']}" if run else "-"
        table.add_row(path, nodes, f"{seconds:.2f} s" if run else "-", checked, outcome)
    codes = [result["code"] for result in results]
    counts = {
        "ok": codes.count(EXIT_OK),
        "not verified": codes.count(EXIT_NOT_VERIFIED),
        "failed verification": codes.count(EXIT_VERIFY_FAILED),
        "errors": len(codes) - sum(codes.count(code) for code in (EXIT_OK, EXIT_NOT_VERIFIED, EXIT_VERIFY_FAILED)),
    }
    if not options["quiet"]:
        console.print(table)
        console.print(", ".join(f"{count} {label}" for label, count in counts.items()), highlight=False)
    return worst(codes)


def _write_crash_report(error: BaseException, args: Sequence[str]) -> str:
    """Write what reproduces an internal error (command line, versions, traceback); return the file's path."""
    import platform
    import tempfile
    import time
    import traceback
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    tf_version = sys.modules["tensorflow"].__version__ if "tensorflow" in sys.modules else "not loaded"
    lines = [
        "optimize crash report",
        f"command: optimize {shlex.join(args)}",
        f"working directory: {os.getcwd()}",
        f"python {platform.python_version()}, tensorflow {tf_version}, "
        f"tf-graph-optimizer {installed('tf-graph-optimizer')}, networkx {installed('networkx')}, "
        f"protobuf {installed('protobuf')}",
        "",
        *traceback.format_exception(error),
    ]
    name = f"optimize-crash-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    for folder in (os.getcwd(), tempfile.gettempdir()):
        path = os.path.join(folder, name)
        try:
            with open(path, "w") as stream:
                stream.write("\n".join(lines))
            return path
        except OSError:
            continue
    return "(could not be written)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the command and map every failure to its exit code and one line on stderr."""
    from optimizer.errors import OptimizerError, PassError

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = command.main(args=args, prog_name="optimize", standalone_mode=False)
    except click.exceptions.Exit as done:
        code = done.exit_code
    except (click.UsageError, _UsageFailure) as error:
        message = error.format_message() if isinstance(error, click.UsageError) else str(error)
        click.echo(f"optimize: error: {message}", err=True)
        code = EXIT_USAGE
    except click.Abort:
        click.echo("optimize: aborted", err=True)
        code = EXIT_USAGE
    except OptimizerError as error:
        click.echo(f"optimize: error: {error}", err=True)
        code = EXIT_USAGE
    except PassError as error:
        if "--traceback" in args:
            raise
        hint = "" if error.user_error else f" (an internal error; details: {_write_crash_report(error, args)})"
        click.echo(f"optimize: error: {error}{hint}", err=True)
        code = EXIT_USAGE if error.user_error else EXIT_INTERNAL
    if argv is None:
        sys.exit(code)
    return int(code or 0)
