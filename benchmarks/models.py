"""Keras applications: our default pipeline beside Grappler and optimize_for_inference (nodes, time, memory).

    .venv/bin/python benchmarks/models.py [--names MobileNetV2,ResNet50,...] [--out benchmarks/results]

Every model is a Keras 3 application with every weight randomized (`fixtures/keras_applications.py`), frozen by
TensorFlow's own `convert_variables_to_constants_v2` from its SavedModel signature: that frozen GraphDef is the
common input of the three tools, in the same run, each in a fresh process (`benchmarks.common.measure`: ours is load
+ default pipeline + save; Grappler runs its portable optimizers). `run` gives per model and tool: nodes after, wall
time, peak RSS, how many `Mul`/`Add`/`AddV2`/`Sub` by a constant sit directly after a convolution or matmul (what
batch-norm folding should remove), and for us whether the outputs still equal the frozen graph's (checked untimed).
`markdown` renders docs/benchmarks.md's table; `main` writes `models.md` and `models.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import RESULTS, Job, build_fixture, measure, run_json, verify_result, write_results  # noqa: E402

NAMES = ("MobileNetV2", "ResNet50", "InceptionV3", "EfficientNetB0", "DenseNet121")
TOOLS = ("ours", "grappler", "optimize_for_inference")
CONVOLUTIONS = {"Conv2D", "DepthwiseConv2dNative", "Conv3D", "MatMul", "BiasAdd"}
ARITHMETIC = {"Mul", "Add", "AddV2", "Sub"}


def tf_frozen(saved_model: Path) -> tuple[Any, list[str], list[str]]:
    """TensorFlow's own freezing of the serving signature: GraphDef, input and output tensor names."""
    import tensorflow as tf
    from tensorflow.python.framework import convert_to_constants

    loaded = tf.saved_model.load(str(saved_model))  # kept alive: the signature reads its variables
    frozen = convert_to_constants.convert_variables_to_constants_v2(loaded.signatures["serving_default"])
    inputs = [tensor.name for tensor in frozen.inputs if tensor.dtype != tf.resource]
    return frozen.graph.as_graph_def(), inputs, [tensor.name for tensor in frozen.outputs]


def constant_arithmetic_after_weights(graph_def: Any) -> int:
    """`Mul`/`Add`/`AddV2`/`Sub` with a `Const` operand reading a convolution, matmul or its bias directly."""
    ops = {node.name: node.op for node in graph_def.node}
    count = 0
    for node in graph_def.node:
        if node.op not in ARITHMETIC:
            continue
        sources = [name.split(":")[0].lstrip("^") for name in node.input if not name.startswith("^")]
        if any(ops.get(name) == "Const" for name in sources) and any(ops.get(n) in CONVOLUTIONS for n in sources):
            count += 1
    return count


def run_model(name: str, folder: Path) -> dict[str, Any]:
    """Build, freeze and measure one model in `folder`: `model`, `frozen_nodes` and each tool's figures."""
    from optimizer.graph_io import read_graph_def

    build_fixture("keras_applications.py", folder, name, "--flavours", "keras3")
    frozen = folder / f"{name}.pb"
    saved_model = folder / f"keras3_{name}" / "saved_model"
    interface = run_json([sys.executable, __file__, "--freeze", str(saved_model), str(frozen)])
    row: dict[str, Any] = {"model": name, "frozen_nodes": interface.get("nodes")}
    if "error" in interface:
        return {**row, **{tool: interface for tool in TOOLS}}
    source = Job(str(frozen), interface["inputs"], interface["outputs"])
    for tool in TOOLS:
        result = folder / f"{name}.{tool}.pb"
        job = replace(source, result=str(result))
        row[tool] = figures = measure(tool, [job])[0]
        if "error" not in figures:
            figures["constant_arithmetic_after_weights"] = constant_arithmetic_after_weights(read_graph_def(result))
            if tool == "ours":
                figures.update(verify_result(job))
    return row


def run(names: list[str]) -> list[dict[str, Any]]:
    """One row per model (see `run_model`); the models are built in a temporary folder."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            rows.append(run_model(name, Path(folder)))
            print(f"models: {name} done", file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The docs/benchmarks.md table of `run`'s rows."""

    def cells(row: dict[str, Any], key: str, fmt: str = "{}", sep: str = " / ") -> str:
        return sep.join("-" if key not in row[tool] else fmt.format(row[tool][key]) for tool in TOOLS)

    lines = [
        "| model (Keras 3, random weights) | frozen by TF | ours | Grappler | optimize_for_inference "
        "| time ours / Grappler / ofi (s) | peak RSS ours / Grappler / ofi (MiB) "
        "| const Mul/Add after conv: ours / Grappler / ofi | outputs equal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['frozen_nodes']} | {cells(row, 'nodes', sep=' | ')} "
            f"| {cells(row, 'seconds', '{:.2f}')} | {cells(row, 'rss_mib', '{:.0f}')} "
            f"| {cells(row, 'constant_arithmetic_after_weights')} "
            f"| {'yes' if row['ours'].get('verified') else 'NO'} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--freeze", nargs=2, metavar=("SAVED_MODEL", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--names", default=",".join(NAMES))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.freeze:
        graph_def, inputs, outputs = tf_frozen(Path(args.freeze[0]))
        Path(args.freeze[1]).write_bytes(graph_def.SerializeToString())
        print(json.dumps({"inputs": inputs, "outputs": outputs, "nodes": len(graph_def.node)}))
        return 0
    rows = run(args.names.split(","))
    write_results(args.out, "models", rows, markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
