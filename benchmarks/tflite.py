"""The `tflite` target against TensorFlow alone: does the model convert, how large is it, how many operators does
it run, how fast does it run, and does it compute what the original computes.

    .venv/bin/python benchmarks/tflite.py [--small] [--models A,B] [--repeat N] [--work DIR] [--out DIR]

The models are built by the project's fixture scripts (random weights, nothing is downloaded) into `--work`
(default: a temporary folder, removed afterwards; a given folder is reused):
- `keras3_MobileNetV2`: Keras 3 MobileNetV2, a TF2 SavedModel (`fixtures/keras_applications.py`);
- `tf_keras_MobileNetV2`: tf_keras MobileNetV2 in TF1 graph mode, its batch norms in `If`s on the Keras learning
  phase, a meta graph plus checkpoint (same script);
- `bn_cond_v1`, `bn_cond_v2`: TF1 training graphs, batch-norm updates inside `tf.cond`s (v1 `Switch`/`Merge` with
  ref variables; v2 `If` capturing resource variables), Adam, summaries, a saver (`fixtures/tf1_models.py`);
- `tf_keras_graph_mode`: a small tf_keras model trained in TF1 graph mode, with the learning phase (same script);
- `tf1_saved_model`: a TF1 SavedModel with a `tf.cond` on a training flag (same script);
- `keras3_saved_model`: a Keras 3 MLP with batch norm, a TF2 SavedModel (`fixtures/keras_models.py`);
- `keras3_rnn`: Keras 3 Embedding -> GRU -> Dense, a `While` loop (same script), loaded with its batch fixed to
  1 (`--input-shape serving_default_tokens:1,6`; `from_saved_model` takes the SavedModel as saved);
- `rnn_v1`: a TF1 RNN in a v1 `while_loop` (`fixtures/tf1_models.py`).
`--small` builds the MobileNetV2s at alpha 0.35 and 96x96 (otherwise alpha 1.0, 224x224).

For each model, in one process: "this tool" is `optimizer.load` + `optimizer.optimize(graph, target="tflite")` +
`optimizer.tflite.convert`; "TensorFlow alone" is `optimizer.tflite_baseline.convert_without_optimizing` (a
SavedModel through `TFLiteConverter.from_saved_model`; a checkpointed TF1 graph frozen by
`convert_variables_to_constants`, then converted). Both with the converter's defaults (float32, builtins only).
Each model that converts is checked against the original run in TensorFlow (`verify_tflite`, 3 random input sets,
rtol 1e-4, atol 1e-5; boolean inputs such as `is_training` fed False) and timed in `tf.lite.Interpreter` (one
thread): `--repeat` invocations (default 200) after 10 warm-up ones, in alternating blocks of 20 for the two
models, reported as the median. Writes `tflite.md` (the table of docs/tflite.md) and `tflite.json` into `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import ENV, build_fixture  # noqa: E402

MODELS = (
    "keras3_MobileNetV2",
    "tf_keras_MobileNetV2",
    "bn_cond_v1",
    "bn_cond_v2",
    "tf_keras_graph_mode",
    "tf1_saved_model",
    "keras3_saved_model",
    "keras3_rnn",
    "rnn_v1",
)
DESCRIPTIONS = {
    "keras3_MobileNetV2": "Keras 3 application, TF2 SavedModel",
    "tf_keras_MobileNetV2": "tf_keras application, TF1 graph mode, learning phase",
    "bn_cond_v1": "TF1 training graph, batch-norm updates in v1 conds",
    "bn_cond_v2": "TF1 training graph, batch-norm updates in v2 `If`s",
    "tf_keras_graph_mode": "tf_keras model trained in TF1 graph mode",
    "tf1_saved_model": "TF1 SavedModel, `tf.cond` on a training flag",
    "keras3_saved_model": "Keras 3 MLP, TF2 SavedModel",
    "keras3_rnn": "Keras 3 GRU (`While`), batch 1",
    "rnn_v1": "TF1 RNN, v1 `while_loop`",
}
BLOCK = 20
WARMUP = 10


@dataclass
class Model:
    """Where a model lives and how to load it."""

    name: str
    path: Path
    inputs: list[str] | None = None
    outputs: list[str] | None = None
    input_shapes: list[str] = field(default_factory=list)


@dataclass
class Conversion:
    """One conversion's figures: the model's size and operators, or why there is none; its check and latency."""

    converts: bool
    seconds: float
    bytes: int | None = None
    operators: int | None = None
    error: str | None = None
    matches: bool | None = None
    max_abs_error: float | None = None
    latency_ms: float | None = None


def build_models(names: list[str], work: Path, small: bool) -> dict[str, Model]:
    """Build what `names` need with the fixture scripts (skipping what `work` already holds)."""
    applications = [name for name in names if name.endswith("_MobileNetV2")]
    tf1 = [name for name in names if name in ("bn_cond_v1", "bn_cond_v2", "tf_keras_graph_mode", "tf1_saved_model")]
    tf1 += [name for name in names if name == "rnn_v1"]
    keras = [name for name in names if name in ("keras3_saved_model", "keras3_rnn")]
    folder = work / ("applications-small" if small else "applications")
    missing = [name for name in applications if not (folder / name / "info.json").exists()]
    if missing:
        flavours = ",".join(sorted({name.removesuffix("_MobileNetV2") for name in missing}))
        build_fixture(
            "keras_applications.py", folder, *(["--small"] if small else ["MobileNetV2"]), "--flavours", flavours
        )
    for script, chosen in (("tf1_models.py", tf1), ("keras_models.py", keras)):
        todo = [name for name in chosen if not (work / name / "reference.json").exists()]
        if todo:
            build_fixture(script, work, *todo)
    models: dict[str, Model] = {}
    for name in names:
        if name == "keras3_MobileNetV2":
            models[name] = Model(name, folder / name / "saved_model")
        elif name == "tf_keras_MobileNetV2":
            interface = json.loads((folder / name / "interface.json").read_text())
            models[name] = Model(name, folder / name / "model.meta", interface["inputs"], interface["outputs"])
        else:
            info = json.loads((work / name / "reference.json").read_text())["info"]
            if "saved_model" in info:
                shapes = ["serving_default_tokens:1,6"] if name == "keras3_rnn" else []
                models[name] = Model(name, work / name / info["saved_model"], input_shapes=shapes)
            else:
                inputs = [tensor.removesuffix(":0") for tensor in info["inputs"]]
                models[name] = Model(name, work / name / info["meta_graph"], inputs, info["outputs"])
    return models


def _interpreter(model: bytes) -> Any:
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter(model_content=model, num_threads=1)


def _ready(model: bytes, seed: int = 0) -> Any:
    """An interpreter with random inputs set (dynamic dimensions as 1, booleans False), ready to invoke."""
    interpreter = _interpreter(model)
    rng = np.random.default_rng(seed)
    for detail in interpreter.get_input_details():
        shape = [1 if dim < 0 else int(dim) for dim in detail["shape_signature"]]
        if list(detail["shape"]) != shape:
            interpreter.resize_tensor_input(detail["index"], shape)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        shape, dtype = list(detail["shape"]), np.dtype(detail["dtype"])
        if dtype == np.bool_:
            value = np.zeros(shape, bool)
        elif dtype.kind in "iu":
            value = rng.integers(0, 3, shape).astype(dtype)
        else:
            value = rng.uniform(-1, 1, shape).astype(dtype)
        interpreter.set_tensor(detail["index"], value)
    return interpreter


def latencies(models: list[bytes], repeat: int) -> list[float]:
    """Median milliseconds per invocation of each model, timed in alternating blocks in this process."""
    interpreters = [_ready(model) for model in models]
    for interpreter in interpreters:
        for _ in range(WARMUP):
            interpreter.invoke()
    times: list[list[float]] = [[] for _ in models]
    while len(times[0]) < repeat:
        for interpreter, measured in zip(interpreters, times, strict=True):
            for _ in range(BLOCK):
                start = time.perf_counter()
                interpreter.invoke()
                measured.append(time.perf_counter() - start)
    return [statistics.median(measured) * 1000 for measured in times]


def _check(original: Any, model: bytes, graph: Any, by_signature_keys: bool) -> tuple[bool, float]:
    from optimizer.tflite import verify_tflite

    feeds = {str(tensor): np.array(False) for tensor in graph.inputs if "is_training" in str(tensor)}
    result = verify_tflite(
        original.to_graph_def(),
        model,
        graph.inputs,
        graph.outputs,
        variables=original.variables,
        feeds=feeds,
        samples=3,
        by_signature_keys=by_signature_keys,
    )
    worst = max((check.max_abs_error for check in result.outputs), default=float("nan"))
    return bool(result.passed and not result.skipped), float(worst)


def measure(model: Model, repeat: int) -> dict[str, Any]:
    """Both conversions of one model, checked and timed."""
    import optimizer
    from optimizer.tflite import ConversionError, convert, operator_count
    from optimizer.tflite_baseline import convert_without_optimizing

    original = optimizer.load(model.path, model.inputs, model.outputs, input_shapes=model.input_shapes or None)
    start = time.perf_counter()
    graph = original.copy()
    report = optimizer.optimize(graph, target="tflite")
    try:
        converted = convert(graph)
        ours_model: bytes | None = converted
        ours = Conversion(True, time.perf_counter() - start, len(converted), operator_count(converted))
    except ConversionError as error:
        ours_model, ours = None, Conversion(False, time.perf_counter() - start, error=str(error))
    start = time.perf_counter()
    baseline = convert_without_optimizing(model.path, original)
    theirs = Conversion(
        baseline.model is not None, time.perf_counter() - start, baseline.size, baseline.operators, baseline.error
    )
    if ours_model is not None:
        ours.matches, ours.max_abs_error = _check(original, ours_model, original, False)
    if baseline.model is not None:
        theirs.matches, theirs.max_abs_error = _check(original, baseline.model, original, baseline.from_saved_model)
    timed = [candidate for candidate in (ours_model, baseline.model) if candidate is not None]
    if timed:
        measured = iter(latencies(timed, repeat))
        if ours_model is not None:
            ours.latency_ms = next(measured)
        if baseline.model is not None:
            theirs.latency_ms = next(measured)
    return {
        "model": model.name,
        "what": DESCRIPTIONS.get(model.name, ""),
        "nodes": [report.nodes_before, report.nodes_after],
        "input_shapes": model.input_shapes,
        "ours": asdict(ours),
        "tensorflow_alone": asdict(theirs) | {"how": baseline.how},
    }


def _size(count: int | None) -> str:
    if count is None:
        return "-"
    if count < 1024**2:
        return f"{count / 1024:.1f} KiB"
    return f"{count / 1024**2:.2f} MiB"


def _short(error: str | None, limit: int = 90) -> str:
    text = (error or "").replace("the TFLite converter rejected the graph: ", "").replace("|", "/")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cell(conversion: dict[str, Any]) -> tuple[str, str, str, str]:
    if not conversion["converts"]:
        return ("rejected", "-", "-", "-")
    matches = conversion["matches"]
    verdict = "yes" if matches else f"**no** (max abs err {conversion['max_abs_error']:.2g})"
    micros = None if conversion["latency_ms"] is None else conversion["latency_ms"] * 1000
    latency = "-" if micros is None else f"{micros:.0f}" if micros >= 100 else f"{micros:.3g}"
    return (_size(conversion["bytes"]), str(conversion["operators"]), latency, verdict)


def markdown(results: list[dict[str, Any]], header: str) -> str:
    lines = [
        header,
        "",
        "| model | what it is | TFLite size: this tool / TF alone | operators | latency (µs, median) "
        "| outputs match the original |",
        "|---|---|---:|---:|---:|---|",
    ]
    for result in results:
        ours, theirs = _cell(result["ours"]), _cell(result["tensorflow_alone"])
        lines.append(
            f"| {result['model']} | {result['what']} | {ours[0]} / {theirs[0]} | {ours[1]} / {theirs[1]} "
            f"| {ours[2]} / {theirs[2]} | {ours[3]} / {theirs[3]} |"
        )
    rejected = [result for result in results if not result["tensorflow_alone"]["converts"]]
    if rejected:
        lines += ["", "What TensorFlow alone's conversion says where it fails:", ""]
        for result in rejected:
            how = result["tensorflow_alone"]["how"]
            lines.append(f"- {result['model']} ({how}): `{_short(result['tensorflow_alone']['error'], 200)}`")
    failed = [result for result in results if not result["ours"]["converts"]]
    for result in failed:
        lines.append(f"- this tool, {result['model']}: `{_short(result['ours']['error'], 200)}`")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="MobileNetV2 at alpha 0.35, 96x96")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--repeat", type=int, default=200, help="timed invocations per model (median reported)")
    parser.add_argument("--work", type=Path, help="where the models are built (kept); default: a temporary folder")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="where results go")
    args = parser.parse_args()
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; known: {', '.join(MODELS)}")
    os.environ.update({key: ENV[key] for key in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES", "KERAS_BACKEND")})
    work = args.work or Path(tempfile.mkdtemp(prefix="tflite-benchmark-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        models = build_models(names, work, args.small)
        results = []
        for name in names:
            print(f"measuring {name}...", flush=True)
            results.append(measure(models[name], args.repeat))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    import tensorflow as tf

    size = "alpha 0.35, 96x96" if args.small else "alpha 1.0, 224x224"
    header = (
        f"TFLite: {len(results)} models built by the fixture scripts (random weights; MobileNetV2 {size}), "
        f"TensorFlow {tf.__version__}, {platform.machine()} CPU ({os.cpu_count()} cores), one run of "
        f"`benchmarks/tflite.py`. Each cell: this tool (`--target tflite`, then `tf.lite.TFLiteConverter`) / "
        f"TensorFlow alone (`from_saved_model`, or `convert_variables_to_constants` then the converter). Latency: "
        f"median of {args.repeat} `tf.lite.Interpreter` invocations (1 thread, batch 1), both models timed in "
        f"alternating blocks in the same process. Outputs checked against the original model in TensorFlow on 3 "
        f"random input sets (rtol 1e-4, atol 1e-5)."
    )
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "-small" if args.small else ""
    (args.out / f"tflite{suffix}.md").write_text(markdown(results, header))
    record = {"tensorflow": tf.__version__, "small": args.small, "repeat": args.repeat, "results": results}
    (args.out / f"tflite{suffix}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(markdown(results, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
