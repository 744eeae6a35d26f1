"""What freezing buys, measured: size on disk, load time, first inference and peak memory, before and after.

    .venv/bin/python benchmarks/freezing.py [--small] [--models A,B] [--repeat N] [--work DIR] [--out DIR]

The models are built by the project's fixture scripts (random weights, nothing is downloaded) into `--work`
(default: a temporary folder, removed afterwards; a given folder is reused):
- `tf_keras_MobileNetV2`, `tf_keras_ResNet50`: tf_keras applications in TF1 graph mode, trained one step with Adam
  (`fixtures/keras_applications.py --flavours tf_keras_trained`): a training meta graph plus a checkpoint that
  holds the Adam slots and the step counter;
- `keras3_MobileNetV2`, `keras3_ResNet50`: Keras 3 applications saved as TF2 SavedModels (same script);
- `bn_cond_v1`: the TF1 training graph with batch-norm updates inside `tf.cond`s, Adam, a global step, summaries
  and a saver (`fixtures/tf1_models.py`).
`--small` builds MobileNetV2 at alpha 0.35 and 96x96 (both flavours) plus `bn_cond_v1`, for a quick check.

Each model is loaded with `optimizer.load` and optimized with the default pipeline when it freezes, else with
`inline,freeze,strip,identity,fold,fold-batch-norms,arith,cse,prune` (to a fixed point), written as a frozen
GraphDef and converted to TFLite with `optimizer.tflite.convert`. Then, for each form, `--repeat` fresh Python
processes (default 3) each import TensorFlow, load the model, and run one batch (batch size 1; boolean inputs such
as `is_training` are fed False), reporting the time to load, the time of the first inference, and the peak
resident memory of the process (`VmHWM`), also above what `import tensorflow` alone took:
- original: the meta graph imported and the checkpoint restored in a TF1 session, or `tf.saved_model.load` and
  the serving signature;
- frozen, session: the GraphDef imported into a TF1 session;
- frozen, as_function: the GraphDef as a TF2 concrete function (`optimizer.as_function`, no session);
- TFLite: `tf.lite.Interpreter`.
Every form's outputs are compared with the original's on the same batch. Figures are medians over the repeats.
Writes `freezing.md` (the tables of docs/benchmarks.md) and `freezing.json` (every run) into `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import ENV, build_fixture, peak_rss  # noqa: E402

FREEZING_PIPELINE = "inline,freeze,strip,identity,fold,fold-batch-norms,arith,cse,prune"
MODELS = ("tf_keras_MobileNetV2", "tf_keras_ResNet50", "keras3_MobileNetV2", "keras3_ResNet50", "bn_cond_v1")
SMALL_MODELS = ("tf_keras_MobileNetV2", "keras3_MobileNetV2", "bn_cond_v1")
FORMS = ("original", "frozen_session", "frozen_function", "tflite")
FORM_LABELS = {
    "frozen_session": "frozen `.pb`, TF1 session",
    "frozen_function": "frozen `.pb`, `optimizer.as_function`",
    "tflite": "TFLite, `tf.lite.Interpreter`",
}
MIB = 2**20
RATIOS = ("bytes", "load_and_first_seconds", "peak_rss", "peak_rss_over_import")


# ----- the measuring process: import TensorFlow, load one form of one model, run one batch --------------------------


def _load_checkpoint(spec: dict[str, Any], tf: Any, feeds: list[np.ndarray]) -> Any:
    graph = tf.Graph()
    with graph.as_default():
        saver = tf.compat.v1.train.import_meta_graph(spec["meta_graph"], clear_devices=True)
        session = tf.compat.v1.Session(graph=graph)
        saver.restore(session, spec["checkpoint"])
    feed_dict = dict(zip(spec["inputs"], feeds, strict=True))
    return lambda: session.run(spec["outputs"], feed_dict)


def _load_saved_model(spec: dict[str, Any], tf: Any, feeds: list[np.ndarray]) -> Any:
    signature = tf.saved_model.load(spec["saved_model"]).signatures["serving_default"]
    keys = sorted(signature.structured_input_signature[1])  # optimizer.load orders a signature's inputs by key
    arguments = {key: tf.constant(value) for key, value in zip(keys, feeds, strict=True)}
    return lambda: [value.numpy() for _, value in sorted(signature(**arguments).items())]


def _load_frozen_session(spec: dict[str, Any], tf: Any, feeds: list[np.ndarray]) -> Any:
    graph_def = tf.compat.v1.GraphDef.FromString(Path(spec["frozen"]).read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    session = tf.compat.v1.Session(graph=graph)
    feed_dict = dict(zip(spec["inputs"], feeds, strict=True))
    return lambda: session.run(spec["outputs"], feed_dict)


def _load_frozen_function(spec: dict[str, Any], tf: Any, feeds: list[np.ndarray]) -> Any:
    from optimizer import Tensor, as_function

    graph_def = tf.compat.v1.GraphDef.FromString(Path(spec["frozen"]).read_bytes())
    run = as_function(graph_def, [Tensor.parse(n) for n in spec["inputs"]], [Tensor.parse(n) for n in spec["outputs"]])
    arguments = [tf.constant(value) for value in feeds]
    return lambda: [value.numpy() for value in run(*arguments)]


def _load_tflite(spec: dict[str, Any], tf: Any, feeds: list[np.ndarray]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "tf.lite.Interpreter is deprecated": it is the one TensorFlow ships
        interpreter = tf.lite.Interpreter(model_path=spec["tflite"])
    inputs = interpreter.get_input_details()
    for detail, value in zip(inputs, feeds, strict=True):
        if list(detail["shape"]) != list(value.shape):
            interpreter.resize_tensor_input(detail["index"], list(value.shape))
    interpreter.allocate_tensors()

    def run() -> list[np.ndarray]:
        for detail, value in zip(inputs, feeds, strict=True):
            interpreter.set_tensor(detail["index"], value.astype(detail["dtype"]))
        interpreter.invoke()
        return [np.array(interpreter.get_tensor(detail["index"])) for detail in interpreter.get_output_details()]

    return run


LOADERS = {
    "checkpoint": _load_checkpoint,
    "saved_model": _load_saved_model,
    "frozen_session": _load_frozen_session,
    "frozen_function": _load_frozen_function,
    "tflite": _load_tflite,
}


def measure(spec_path: str) -> int:
    """The child process: writes timings, memory and the outputs where the spec says."""
    started = time.perf_counter()
    spec = json.loads(Path(spec_path).read_text())
    import tensorflow as tf

    imported = time.perf_counter()
    rss_import = peak_rss()
    batch = np.load(spec["feeds"])
    feeds = [batch[f"arr_{index}"] for index in range(len(spec["inputs"]))]
    run = LOADERS[spec["loader"]](spec, tf, feeds)
    loaded = time.perf_counter()
    outputs = run()
    done = time.perf_counter()
    np.savez(spec["outputs_file"], *[np.asarray(value) for value in outputs])
    result = {
        "import_seconds": imported - started,
        "load_seconds": loaded - imported,
        "first_inference_seconds": done - loaded,
        "peak_rss": peak_rss(),
        "peak_rss_after_import": rss_import,
    }
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


# ----- the driver ---------------------------------------------------------------------------------------------------


@dataclass
class Model:
    """One benchmarked model: where its original lives, its interface, and what we made of it."""

    name: str
    description: str
    original: dict[str, str]  # loader-specific paths: meta_graph + checkpoint, or saved_model
    original_files: list[Path]
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    parameters: int | None = None


def build_model(name: str, work: Path, small: bool) -> Model:
    """Build (or reuse, in `work`) fixture model `name`; return where its files are."""
    size = " (alpha 0.35, 96x96)" if small else ""
    if name == "bn_cond_v1":
        folder = work / "tf1" / name
        if not (folder / "reference.json").exists():
            build_fixture("tf1_models.py", work / "tf1", name)
        files = [folder / "model.ckpt-3.meta", folder / "model.ckpt-3.index", *folder.glob("model.ckpt-3.data-*")]
        original = {"meta_graph": str(files[0]), "checkpoint": str(folder / "model.ckpt-3")}
        description = "TF1 training graph, batch norm updates in `tf.cond`s, Adam, 3 steps"
        return Model(name, description, original, files, ["x:0", "is_training:0"], ["probabilities:0"])
    flavour, application = name.split("_", 1) if name.startswith("keras3") else ("tf_keras", name[len("tf_keras_") :])
    built = "tf_keras_trained" if flavour == "tf_keras" else "keras3"
    folder = work / "applications" / f"{built}_{application}"
    if not (folder / "info.json").exists():
        build_fixture(
            "keras_applications.py", work / "applications", application, "--flavours", built, *(["--small"] * small)
        )
    info = json.loads((folder / "info.json").read_text())
    if flavour == "tf_keras":
        interface = json.loads((folder / "interface.json").read_text())
        original = {"meta_graph": str(folder / "model.meta"), "checkpoint": str(folder / "model")}
        files = [path for path in folder.iterdir() if path.name.startswith("model.")]
        description = f"tf_keras {application}{size}, TF1 graph mode, trained 1 step with Adam"
        return Model(name, description, original, files, interface["inputs"], interface["outputs"], info["parameters"])
    saved_model = folder / "saved_model"
    files = [path for path in saved_model.rglob("*") if path.is_file()]
    description = f"Keras 3 {application}{size}, TF2 SavedModel"
    return Model(name, description, {"saved_model": str(saved_model)}, files, parameters=info["parameters"])


def optimize_model(model: Model, out: Path) -> dict[str, Any]:
    """Load, freeze and optimize; write the frozen `.pb`, the `.tflite` and the feeds; return what it did."""
    import optimizer
    from optimizer.tflite import ConversionError, convert
    from optimizer.variables import is_variable_node, variable_leftovers
    from optimizer.verify import draw_feeds, input_specs

    path = model.original.get("saved_model") or model.original["meta_graph"]
    graph = optimizer.load(path, model.inputs or None, model.outputs or None)
    model.inputs, model.outputs = [str(t) for t in graph.inputs], [str(t) for t in graph.outputs]
    pipeline = optimizer.DEFAULT_PIPELINE
    if "freeze" not in [name.split("{")[0] for name in pipeline.split(",")]:
        pipeline = FREEZING_PIPELINE
    started = time.perf_counter()
    run = optimizer.optimize(graph, pipeline, fixed_point=True)
    seconds = time.perf_counter() - started
    assert graph.variables is not None
    account = graph.variables.account(node.name for node in graph.nodes() if is_variable_node(node.proto))
    leftovers = variable_leftovers(graph.to_graph_def())
    if leftovers:
        raise RuntimeError(f"{model.name}: not frozen: {leftovers[:3]}")
    frozen = out / f"{model.name}.pb"
    optimizer.save(graph, frozen)
    tflite: str | None = str(out / f"{model.name}.tflite")
    conversion_error = None
    try:
        Path(str(tflite)).write_bytes(convert(graph))
    except ConversionError as error:
        tflite, conversion_error = None, str(error)
    graph_def = graph.to_graph_def()
    feeds = draw_feeds(input_specs(graph_def, graph.inputs), seed=0)
    batch = [np.zeros_like(feeds[name]) if feeds[name].dtype == bool else feeds[name] for name in model.inputs]
    np.savez(out / f"{model.name}.feeds.npz", *batch)  # `arr_0`, `arr_1`, ... in the order of the inputs
    return {
        "pipeline": pipeline,
        "optimize_seconds": seconds,
        "nodes_before": run.nodes_before,
        "nodes_after": run.nodes_after,
        "variables": account.to_dict(),
        "frozen": str(frozen),
        "tflite": tflite,
        "tflite_error": conversion_error,
    }


def write_spec(model: Model, form: str, made: dict[str, Any], out: Path, attempt: int = 0) -> Path:
    """The measuring process's instructions for one run of one form of `model`; returns the spec's path."""
    loader = form if form != "original" else ("saved_model" if "saved_model" in model.original else "checkpoint")
    stem = out / f"{model.name}.{form}.{attempt}"
    spec = {
        **model.original,
        "loader": loader,
        "frozen": made["frozen"],
        "tflite": made["tflite"],
        "inputs": model.inputs,
        "outputs": model.outputs,
        "feeds": str(out / f"{model.name}.feeds.npz"),
        "outputs_file": f"{stem}.outputs.npz",
        "result": f"{stem}.result.json",
    }
    path = Path(f"{stem}.spec.json")
    path.write_text(json.dumps(spec))
    return path


def run_form(model: Model, form: str, made: dict[str, Any], out: Path, repeat: int) -> dict[str, Any]:
    """Measure one form of `model` in `repeat` fresh processes; the first run's outputs are kept."""
    runs = []
    for attempt in range(repeat):
        spec = write_spec(model, form, made, out, attempt)
        command = [sys.executable, __file__, "--measure", str(spec)]
        result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=900, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{model.name} {form}: the measuring process failed:\n{result.stderr[-3000:]}")
        runs.append(json.loads(Path(json.loads(spec.read_text())["result"]).read_text()))
    return {"runs": runs, "outputs": f"{out / model.name}.{form}.0.outputs.npz"}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(run[key] for run in runs))


def _max_difference(a: str, b: str) -> float:
    with np.load(a) as left, np.load(b) as right:
        return max(
            float(np.max(np.abs(left[key].astype(np.float64) - right[key].astype(np.float64)), initial=0.0))
            for key in left.files
        )


def summarize(models: list[Model], results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model and form, with medians, sizes and ratios to the original."""
    rows = []
    for model in models:
        made = results[model.name]
        base: dict[str, Any] = {}
        for form in FORMS:
            if form not in made["forms"]:
                continue
            runs = made["forms"][form]["runs"]
            if form == "original":
                size = sum(path.stat().st_size for path in model.original_files)
            else:
                size = Path(made["frozen"] if form.startswith("frozen") else made["tflite"]).stat().st_size
            row: dict[str, Any] = {
                "model": model.name,
                "form": form,
                "bytes": size,
                "load_seconds": _median(runs, "load_seconds"),
                "first_inference_seconds": _median(runs, "first_inference_seconds"),
                "peak_rss": _median(runs, "peak_rss"),
                "peak_rss_over_import": _median(
                    [{"over": run["peak_rss"] - run["peak_rss_after_import"]} for run in runs], "over"
                ),
                "max_abs_difference": _max_difference(
                    made["forms"]["original"]["outputs"], made["forms"][form]["outputs"]
                ),
            }
            row["load_and_first_seconds"] = row["load_seconds"] + row["first_inference_seconds"]
            if form == "original":
                base = row
            for key in RATIOS:
                row[f"{key}_ratio"] = row[key] / base[key] if base.get(key) else None
            rows.append(row)
    return rows


def _bytes(count: float) -> str:
    for unit, scale in (("MiB", MIB), ("KiB", 1024)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count:.0f} B"


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def markdown(models: list[Model], results: dict[str, dict[str, Any]], rows: list[dict[str, Any]], repeat: int) -> str:
    import tensorflow as tf

    pipelines = sorted({results[model.name]["pipeline"] for model in models})
    imports = [
        run["import_seconds"] for made in results.values() for form in made["forms"].values() for run in form["runs"]
    ]
    base_rss = [
        run["peak_rss_after_import"]
        for made in results.values()
        for form in made["forms"].values()
        for run in form["runs"]
    ]
    lines = [
        f"Freezing: {len(models)} models built by the fixture scripts (random weights), TensorFlow {tf.__version__}, "
        f"CPU ({os.cpu_count()} cores), one run of `benchmarks/freezing.py`; pipeline `{', '.join(pipelines)}` to a "
        f"fixed point. Times and memory: median of {repeat} fresh processes per row, each importing TensorFlow, "
        'loading the model and running one batch of 1; "over import" is the peak RSS above what `import '
        f"tensorflow` alone took (median {statistics.median(imports):.1f} s and "
        f"{statistics.median(base_rss) / MIB:.0f} MiB, not counted in the times). `as_function`'s load includes "
        "importing the `optimizer` package. Ratios (x) are to the original: 0.25 is a quarter of it.",
        "",
        "| model | form | on disk | x | load + 1st inference (s) | x | peak RSS (MiB) | x | over import (MiB) | x "
        "| max abs diff |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        model = next(model for model in models if model.name == row["model"])
        if row["form"] == "original":
            label = "checkpoint + meta graph, TF1 session" if "checkpoint" in model.original else "SavedModel"
        else:
            label = FORM_LABELS[row["form"]]
        first = row["form"] == "original"
        ratios = {key: "" if first else _ratio(row[f"{key}_ratio"]) for key in RATIOS}
        lines.append(
            f"| {row['model'] if first else ''} | {label} | {_bytes(row['bytes'])} | {ratios['bytes']} "
            f"| {_seconds(row['load_seconds'])} + {_seconds(row['first_inference_seconds'])} "
            f"| {ratios['load_and_first_seconds']} "
            f"| {row['peak_rss'] / MIB:.0f} | {ratios['peak_rss']} "
            f"| {row['peak_rss_over_import'] / MIB:.0f} | {ratios['peak_rss_over_import']} "
            f"| {'' if first else format(row['max_abs_difference'], '.1e')} |"
        )
    lines += [
        "",
        "| model | what it is | parameters | variables in the source | frozen into constants | not carried over "
        "(optimizer slots / step counters / other) | nodes before -> after |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for model in models:
        made = results[model.name]
        variables = made["variables"]
        kinds = variables["not_carried_over"]["by_kind"]
        parts = " / ".join(
            _bytes(kinds[kind]["bytes"]) if kind in kinds else "0"
            for kind in ("optimizer slots", "step counters", "other training-only state")
        )
        dropped = variables["not_carried_over"]
        lines.append(
            f"| {model.name} | {model.description} | {model.parameters or ''} "
            f"| {variables['stored']['count']} ({_bytes(variables['stored']['bytes'])}) "
            f"| {variables['frozen']['count']} ({_bytes(variables['frozen']['bytes'])}) "
            f"| {dropped['count']}: {_bytes(dropped['bytes'])} ({parts}) "
            f"| {made['nodes_before']} -> {made['nodes_after']} |"
        )
    failures = [f"{name}: {made['tflite_error']}" for name, made in results.items() if made["tflite_error"]]
    lines += ["", *[f"TFLite conversion failed: {failure}" for failure in failures]]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help=f"comma-separated, from {', '.join(MODELS)} (default: all)")
    parser.add_argument("--small", action="store_true", help="small MobileNetV2s and bn_cond_v1, for a quick check")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per form (default 3)")
    parser.add_argument("--work", type=Path, help="where models are built and kept (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure)
    names = args.models.split(",") if args.models else list(SMALL_MODELS if args.small else MODELS)
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; known: {', '.join(MODELS)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="freezing-"))
    try:
        results: dict[str, dict[str, Any]] = {}
        models: list[Model] = []
        for name in names:
            print(f"{name}: building", flush=True)
            model = build_model(name, work, args.small)
            made_folder = work / "made"
            made_folder.mkdir(parents=True, exist_ok=True)
            print(f"{name}: optimizing and converting", flush=True)
            made = optimize_model(model, made_folder)
            made["forms"] = {}
            for form in FORMS:
                if form == "tflite" and made["tflite"] is None:
                    continue
                print(f"{name}: measuring {form}", flush=True)
                made["forms"][form] = run_form(model, form, made, made_folder, args.repeat)
            results[name], models = made, [*models, model]
        rows = summarize(models, results)
        table = markdown(models, results, rows, args.repeat)
        args.out.mkdir(parents=True, exist_ok=True)
        suffix = "-small" if args.small else ""
        record = {"repeat": args.repeat, "small": args.small, "models": results, "rows": rows}
        (args.out / f"freezing{suffix}.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
        (args.out / f"freezing{suffix}.md").write_text(table)
        print(table)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
