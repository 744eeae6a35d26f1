"""What the benchmark scripts share: building fixture models, running a tool on GraphDefs in a fresh process, and
checking our output.

The tools (`run_tool`), each on a GraphDef file with named input and output tensors:
- `ours`: `optimizer.load` + `optimizer.optimize` (the default pipeline) + `optimizer.save`, each also timed apart;
- `roundtrip`: the same with no pass; `protobuf`: protobuf's own parse + serialize of the file (the floor);
- `edits`: load + the default pipeline's graph edits replayed with no analysis + save (`benchmarks.edit_floor`);
- `grappler`: `tf_optimizer.OptimizeGraph` with the given optimizers (default `GRAPPLER_OPTIMIZERS`, the portable
  ones), one iteration; `optimize_for_inference`: the library call (float32 inputs).
Parsing the file is outside Grappler's and optimize_for_inference's time, as for them it is the caller's. `measure`
runs one tool over a list of jobs in one fresh process (TensorFlow, the optimizer and the modules of its default
pipeline's passes imported before any timing, as Grappler's modules are), so `rss_mib`, the process's peak RSS after
each job, is that tool's own. Verification is never timed with the tool: `verify_result` checks a written output
against its input afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optimizer.ir import Graph

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "KERAS_BACKEND": "tensorflow"}
RESULTS = ROOT / "benchmarks" / "results"
GRAPPLER_OPTIMIZERS = (
    "pruning",
    "function",
    "constfold",
    "arithmetic",
    "dependency",
    "common_subgraph_elimination",
    "shape",
    "loop",
)


@dataclass
class Job:
    """One GraphDef for a tool: its file, input and output tensor names, where to write the tool's output (None:
    ours saves to a temporary file; the others write nothing), and how much memory to warm before it runs."""

    path: str
    inputs: list[str]
    outputs: list[str]
    result: str | None = None
    warm_gib: float = 0.0  # memory to have written just before the tool runs (see `warm_memory`)


def build_fixture(script: str, out: Path, *args: str) -> None:
    """Run `fixtures/<script> OUT ARGS...`; raise with the end of its stderr when it fails."""
    command = [sys.executable, str(ROOT / "fixtures" / script), str(out), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")


def run_json(command: list[str], timeout: float | None = None) -> dict[str, Any]:
    """Run `command` in a fresh process and return the JSON object on its last stdout line; a failure or a
    timeout is returned as `{"error": ...}`, not raised."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ENV, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def write_results(out: Path, stem: str, data: Any, markdown: str) -> None:
    """Write `OUT/STEM.json` and `OUT/STEM.md` (creating `out`), and print the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown + "\n")
    print(markdown, flush=True)


def peak_rss() -> int:
    """This process's peak resident memory in bytes. `VmHWM` belongs to the process's own address space;
    `ru_maxrss` would not do: after `fork` + `exec` it keeps the parent's RSS at the fork (which may hold
    TensorFlow and the models of earlier measurements)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: the best there is


def node_names(tensors: list[str]) -> list[str]:
    """`name:port` tensor names as node names."""
    return [tensor.split(":")[0] for tensor in tensors]


def load_step_save(
    path: str, inputs: list[str], outputs: list[str], out: str | Path, step: Callable[[Graph], object], label: str
) -> tuple[Graph, dict[str, Any]]:
    """`optimizer.load` the file at `path`, `step(graph)`, `optimizer.save` to `out`, each timed: the graph and
    `load_seconds`, `{label}_seconds` (the step), `save_seconds`, `seconds` (all three) and `nodes` after."""
    import optimizer

    start = time.perf_counter()
    graph = optimizer.load(path, inputs, outputs)
    loaded = time.perf_counter()
    step(graph)
    stepped = time.perf_counter()
    optimizer.save(graph, out)
    saved = time.perf_counter()
    return graph, {
        "load_seconds": loaded - start,
        f"{label}_seconds": stepped - loaded,
        "save_seconds": saved - stepped,
        "seconds": saved - start,
        "nodes": len(graph),
    }


def _ours(job: Job, passes: bool) -> dict[str, Any]:
    import optimizer

    step = optimizer.optimize if passes else (lambda graph: None)
    with tempfile.TemporaryDirectory() as folder:
        out = job.result or Path(folder) / "out.pb"
        return load_step_save(job.path, job.inputs, job.outputs, out, step, "passes")[1]


def run_tool(tool: str, job: Job, optimizers: tuple[str, ...] = GRAPPLER_OPTIMIZERS) -> dict[str, Any]:
    """Run `tool` (see the module docstring) on `job` in this process: `seconds`, `nodes` after, and for `ours`
    `load_seconds`, `passes_seconds`, `save_seconds`."""
    if tool in ("ours", "roundtrip"):
        return _ours(job, passes=tool == "ours")
    if tool == "edits":
        from benchmarks.edit_floor import edit_floor

        with tempfile.TemporaryDirectory() as folder:
            return edit_floor(job.path, job.inputs, job.outputs, job.result or str(Path(folder) / "out.pb"))
    from optimizer.protos import GraphDef

    data = Path(job.path).read_bytes()
    start = time.perf_counter()
    graph_def = GraphDef()
    graph_def.ParseFromString(data)
    if tool == "protobuf":
        graph_def.SerializeToString()
        return {"seconds": time.perf_counter() - start, "nodes": len(graph_def.node)}
    if tool == "grappler":
        from tensorflow.core.protobuf import config_pb2, meta_graph_pb2, rewriter_config_pb2
        from tensorflow.python.grappler import tf_optimizer

        meta_graph = meta_graph_pb2.MetaGraphDef()
        meta_graph.graph_def.CopyFrom(graph_def)
        meta_graph.collection_def["train_op"].node_list.value.extend(node_names(job.outputs))
        config = config_pb2.ConfigProto()
        rewrite = config.graph_options.rewrite_options
        rewrite.optimizers.extend(optimizers)
        rewrite.min_graph_nodes = -1
        rewrite.meta_optimizer_iterations = rewriter_config_pb2.RewriterConfig.ONE
        start = time.perf_counter()
        result = tf_optimizer.OptimizeGraph(config, meta_graph)
    elif tool == "optimize_for_inference":
        import tensorflow as tf
        from tensorflow.python.tools import optimize_for_inference_lib

        start = time.perf_counter()
        result = optimize_for_inference_lib.optimize_for_inference(
            graph_def, node_names(job.inputs), node_names(job.outputs), tf.float32.as_datatype_enum
        )
    else:
        raise ValueError(f"unknown tool {tool!r}")
    seconds = time.perf_counter() - start
    if job.result is not None:
        Path(job.result).write_bytes(result.SerializeToString())
    return {"seconds": seconds, "nodes": len(result.node)}


def warm_memory(gib: float) -> None:
    """Have `gib` GiB written once, by a short-lived process, just before a measurement. This machine is a virtual
    machine whose host backs guest memory on first touch (about 9 µs a fresh 4 KiB page: 20 s for 8 GiB) and takes
    freed memory back within a minute; without this, whichever tool grows into fresh memory pays the host's cost,
    not its own. A separate process, so that the tool's own peak RSS stays its own."""
    code = f"bytearray(b'\\x01') * {int(gib * 2**30)}"
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV)


def worker(tool: str, jobs: list[Job], optimizers: tuple[str, ...]) -> list[dict[str, Any]]:
    """Run `tool` on every job in this process; a job that fails is reported as `{"error": ...}`, not raised."""
    from optimizer._tf import tensorflow

    tensorflow()  # imported before any timing, for every tool alike
    from optimizer.pipeline import Pipeline
    from optimizer.registry import DEFAULT_PIPELINE

    Pipeline.of(DEFAULT_PIPELINE)  # imports `optimizer` and the modules of the passes, which load on first use

    figures = []
    for job in jobs:
        try:
            if job.warm_gib:
                warm_memory(job.warm_gib)
            done = run_tool(tool, job, optimizers)
        except Exception as error:
            done = {"error": f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"}
        figures.append({**done, "rss_mib": peak_rss() / 2**20})
    return figures


def measure(
    tool: str, jobs: list[Job], optimizers: tuple[str, ...] = GRAPPLER_OPTIMIZERS, timeout: float = 1800
) -> list[dict[str, Any]]:
    """`worker` in a fresh process: each job's figures, with `rss_mib` the process's peak after it. A process that
    fails or times out gives every job its error."""
    with tempfile.TemporaryDirectory() as folder:
        listing = Path(folder) / "jobs.json"
        listing.write_text(json.dumps([asdict(job) for job in jobs]))
        command = [sys.executable, __file__, tool, str(listing), "--optimizers", ",".join(optimizers)]
        done = run_json(command, timeout)
    return [dict(done) for _ in jobs] if "error" in done else list(done["figures"])


def verify_result(job: Job) -> dict[str, Any]:
    """Compare `job.result` with `job.path` on random inputs (`optimizer.verify`, seed 0): `verified` (outputs
    equal and nothing skipped) and `verify_seconds`."""
    from optimizer import Tensor
    from optimizer.graph_io import read_graph_def
    from optimizer.verify import verify

    assert job.result is not None
    start = time.perf_counter()
    check = verify(
        read_graph_def(job.path),
        read_graph_def(job.result),
        [Tensor.parse(name) for name in job.inputs],
        [Tensor.parse(name) for name in job.outputs],
        seed=0,
    )
    return {"verified": check.passed and not check.skipped, "verify_seconds": time.perf_counter() - start}


def _main() -> int:
    parser = argparse.ArgumentParser(description="Run one benchmark tool over jobs in this process (see measure).")
    parser.add_argument("tool")
    parser.add_argument("jobs", type=Path)
    parser.add_argument("--optimizers", default=",".join(GRAPPLER_OPTIMIZERS))
    args = parser.parse_args()
    jobs = [Job(**job) for job in json.loads(args.jobs.read_text())]
    print(json.dumps({"figures": worker(args.tool, jobs, tuple(args.optimizers.split(",")))}))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(_main())
