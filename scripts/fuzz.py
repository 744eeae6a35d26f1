"""Fuzz the `optimize` command with mutations of real models and count how each run ends.

    .venv/bin/python scripts/fuzz.py                      # quick: 300 cases
    .venv/bin/python scripts/fuzz.py --long --jobs 2      # long: 10,000 cases
    .venv/bin/python scripts/fuzz.py --cases N [--seed S] [--jobs N] [--timeout S] [--json report.json]
    .venv/bin/python scripts/fuzz.py --case 1234 --save DIR   # write one case's files and command line into DIR

Seeds: `fixtures/small_cnn.pb`, a spread of the small graphs of the shared corpus (`../shared/corpus/tf2onnx-cases`,
skipped when absent) and the function-library generators of `tests/hostile.py` (recursive libraries, call chains,
fan-out call trees). Case `i` of seed `S` is drawn from `numpy.random.default_rng([S, i])` alone, so `--case i
--seed S` rebuilds it anywhere. Mutation kinds (round-robin over the cases):
- byte level: `tests/hostile.py`'s `truncate`, `bitflip`, `garbage`, `splice`, plus `insert-bytes`,
  `delete-bytes`, `repeat-bytes`, `varint-bomb` (a length or tag overwritten with 0xff bytes) and `pbtxt-bytes`
  (the text format, damaged);
- structure: `tests/hostile.py`'s `STRUCTURAL` kinds, plus `op-swap`, `drop-input`, `dup-input`, `rewire`,
  `control-edge`, `dtype-swap`, `attr-shape` (huge or negative dims in shape attrs), `const-shape` (a constant's
  `tensor_shape`), `content-length` (`tensor_content` cut or grown), `int-attr`, `string-attr`, `drop-node`,
  `dup-node`, `device`, `versions`, `function-edit` (library functions renamed, dropped, retyped, rewired),
  `recursion` (a library function made to call itself, or a recursive library grafted on), `graft-calls` (a call
  chain or fan-out tree grafted onto a real graph);
- `options`: the seed unchanged, the command line varied;
- `scenario`: a whole crafted run of `tests/hostile.py`'s `SCENARIOS` (every 50th case), checked against its
  expected exit code and message.
About a third of the mutated cases also vary the command line: `--passes`, `--inputs`/`--outputs`,
`--input-shape`, a small `--time-limit`, `--memory-limit`, `.pbtxt` or `.tflite` output, `--no-verify`,
`--verify-samples`, `--fixed-point`, `--max-rewrites`, `--keep-going`, `--report-json`, `--input-range`.

Each case runs through `optimizer.cli.main` in a fuzz worker process that handles cases one after another (its
`optimizer.sandbox` worker, where TensorFlow runs the graph, is reused across cases), with `--time-limit` and
`--memory-limit` on the command line, an address-space limit on the fuzz worker and a watch on its resident
memory. A worker that dies, stops answering within `--timeout` or outgrows its memory is replaced, and its case is
a crash, a hang or a memory blow-up. Outcomes:
- `clean error`: exit 2 with one line on stderr (`optimize: error: ...`; passes' one-line warnings such as
  `fold: kept ...` may come before it) naming the model (or, when the command line was varied, one line), nothing
  written;
- `correct`: exit 0, written, verification passed (or skipped when asked); `not verified`: exit 4, written, one
  line on stderr saying why;
- `tflite differs`: exit 1 with `.tflite` output, nothing written: the TFLite model (TensorFlow's converter and
  interpreter) does not reproduce TensorFlow's outputs on the mutated graph, and verification refused it;
- bugs: `wrong result` (exit 1 on a GraphDef output: a rewrite changed the results), `internal error` (exit 3),
  `traceback`, `crash`, `hang`, `memory blow-up`,
  `messy error` (any other ending, or an error of more than one line), `input changed`, `stray file` (a file left
  that the run was not asked to write, or an output written on failure), `leak` (the secret planted next to the
  case folder found in an output).
Progress goes to stderr every `--progress` seconds; the summary is a table of mutation kind x outcome. The exit
code is 0 only when no case is a bug.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import logging
import multiprocessing
import os
import resource
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LONG_CASES = 10_000
QUICK_CASES = 300
BUGS = (
    "wrong result",
    "internal error",
    "traceback",
    "crash",
    "hang",
    "memory blow-up",
    "messy error",
    "input changed",
    "stray file",
    "leak",
    "native output",
)
OK = ("clean error", "correct", "not verified", "tflite differs")
CORPUS = ROOT.parent / "shared" / "corpus" / "tf2onnx-cases"
MAX_SEED_NODES = 300
"""Corpus graphs with more nodes than this are not seeds: cases stay fast."""
CORPUS_SEEDS = 60
"""How many corpus graphs (a spread over the sorted list, plus every small one with a function library)."""
SCENARIO_EVERY = 50
TIME_LIMIT = "20"
MEMORY_LIMIT = "1536M"
WORKER_ADDRESS_SPACE = 10 * 2**30
"""RLIMIT_AS of a fuzz worker (inherited by its TensorFlow child): TensorFlow maps about 2-3 GiB on import."""
WORKER_RESIDENT = 3 * 2**30
"""A fuzz worker (the CLI's own process) above this resident size is killed: a memory blow-up."""
FIRST_CASE_SLACK = 90.0
"""The first case of a worker also loads the seeds and imports TensorFlow twice (the CLI and its child)."""


# ----- seeds ---------------------------------------------------------------------------------------------------


@dataclass
class Seed:
    name: str
    data: bytes
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def load_seeds(corpus: Path = CORPUS, count: int = CORPUS_SEEDS) -> list[Seed]:
    """The fixture, a spread of small corpus graphs (none when the corpus is absent) and generated libraries."""
    from optimizer.protos import GraphDef
    from tests import hostile

    seeds = [Seed("small_cnn", (ROOT / "fixtures" / "small_cnn.pb").read_bytes(), ["images"], ["probabilities"])]
    if corpus.is_dir():
        small: list[Seed] = []
        with_library: list[Seed] = []
        for case in sorted(corpus.iterdir()):
            graph, meta = case / "graph.pb", case / "case.json"
            if not graph.is_file() or graph.stat().st_size > 256 * 1024:
                continue
            try:
                info = json.loads(meta.read_text()) if meta.is_file() else {}
                graph_def = GraphDef.FromString(graph.read_bytes())
            except Exception:  # a seed we cannot read is not a seed
                continue
            if len(graph_def.node) > MAX_SEED_NODES:
                continue
            seed = Seed(case.name, graph.read_bytes(), list(info.get("inputs", [])), list(info.get("outputs", [])))
            (with_library if graph_def.library.function else small).append(seed)
        step = max(1, len(small) // max(1, count))
        seeds += small[::step][:count] + with_library[: count // 3]
    for kind in hostile.RECURSION_KINDS[:3]:
        seeds.append(Seed(f"recursive-{kind}", hostile.recursive_library(kind).SerializeToString(), ["x"], ["out"]))
    for depth in (3, 12):
        seeds.append(Seed(f"call-chain-{depth}", hostile.call_chain(depth).SerializeToString(), ["x"], ["out"]))
    for depth in (4, 9):
        seeds.append(Seed(f"fan-out-{depth}", hostile.fan_out_tree(depth).SerializeToString(), ["x"], ["out"]))
    return seeds


# ----- mutations -----------------------------------------------------------------------------------------------

REAL_OPS = (
    "Identity",
    "Const",
    "Placeholder",
    "AddV2",
    "Mul",
    "MatMul",
    "Conv2D",
    "Relu",
    "Reshape",
    "Shape",
    "Fill",
    "Tile",
    "Range",
    "Cast",
    "ConcatV2",
    "Switch",
    "Merge",
    "Enter",
    "Exit",
    "NextIteration",
    "While",
    "If",
    "PartitionedCall",
    "StatefulPartitionedCall",
    "NoOp",
    "Abort",
    "Assert",
    "Print",
    "RandomUniform",
    "VarHandleOp",
    "ReadVariableOp",
    "Unpack",
    "Pack",
    "Squeeze",
    "ExpandDims",
    "StridedSlice",
    "Transpose",
    "Softmax",
    "AsString",
    "ParseTensor",
    "StringJoin",
    "DecodeRaw",
    "Where",
    "TensorListReserve",
    "BroadcastTo",
    "Gather",
    "GatherV2",
    "FusedBatchNormV3",
    "BiasAdd",
    "Sum",
    "Mean",
    "Bitcast",
    "Unique",
    "TopKV2",
    "QuantizeV2",
)
DTYPES = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 14, 17, 19, 20, 21, 23, 101, 107, 120, 999, -1)
HUGE_DIMS = (-1, -2, -7, 0, 2**31, 2**40, 2**62, 10**12, 3)
SHAPE_ATTRS = ("shape", "_output_shapes", "element_shape", "output_shapes", "shapes", "dtype")
INT_VALUES = (-1, -(2**31), 2**31, 2**62, 0, 7, 1000000)
STRINGS = (b"", b"NCHW", b"XYZW", b"SAME", b"NONSENSE", b"\xff\xfe", b"../../etc/passwd", b"x" * 4096)


def _node(graph_def: Any, rng: Any, with_inputs: bool = False) -> Any:
    nodes = [node for node in graph_def.node if node.input or not with_inputs] or list(graph_def.node)
    return nodes[int(rng.integers(len(nodes)))] if nodes else graph_def.node.add(name="lonely", op="NoOp")


def _tensor_name(graph_def: Any, rng: Any) -> str:
    node = _node(graph_def, rng)
    port = int(rng.choice([0, 0, 0, 1, 2, 9]))
    return node.name if port == 0 else f"{node.name}:{port}"


def _op_swap(graph_def: Any, rng: Any) -> None:
    ops = list(REAL_OPS) + [node.op for node in graph_def.node]
    _node(graph_def, rng).op = ops[int(rng.integers(len(ops)))]


def _drop_input(graph_def: Any, rng: Any) -> None:
    node = _node(graph_def, rng, with_inputs=True)
    if node.input:
        del node.input[int(rng.integers(len(node.input)))]


def _dup_input(graph_def: Any, rng: Any) -> None:
    node = _node(graph_def, rng, with_inputs=True)
    node.input.append(node.input[int(rng.integers(len(node.input)))] if node.input else graph_def.node[0].name)


def _rewire(graph_def: Any, rng: Any) -> None:
    for _ in range(int(rng.integers(1, 4))):
        node = _node(graph_def, rng, with_inputs=True)
        if node.input:
            node.input[int(rng.integers(len(node.input)))] = _tensor_name(graph_def, rng)


def _control_edge(graph_def: Any, rng: Any) -> None:
    for _ in range(int(rng.integers(1, 4))):
        _node(graph_def, rng).input.append("^" + _node(graph_def, rng).name)


def _dtype_swap(graph_def: Any, rng: Any) -> None:
    typed = [(node, key) for node in graph_def.node for key, value in node.attr.items() if value.HasField("type")]
    for _ in range(int(rng.integers(1, 3))):
        if typed:
            node, key = typed[int(rng.integers(len(typed)))]
            node.attr[key].type = int(rng.choice(DTYPES))


def _bad_shape(shape: Any, rng: Any) -> None:
    del shape.dim[:]
    shape.unknown_rank = bool(rng.random() < 0.1)
    for _ in range(int(rng.integers(0, 5))):
        shape.dim.add(size=int(rng.choice(HUGE_DIMS)))


def _attr_shape(graph_def: Any, rng: Any) -> None:
    shaped = [node for node in graph_def.node if any(key in node.attr for key in SHAPE_ATTRS)] or list(graph_def.node)
    node = shaped[int(rng.integers(len(shaped)))]
    key = next((key for key in SHAPE_ATTRS if key in node.attr), "shape")
    value = node.attr[key]
    if value.HasField("list"):
        for shape in value.list.shape:
            _bad_shape(shape, rng)
        if not value.list.shape:
            _bad_shape(value.list.shape.add(), rng)
    else:
        _bad_shape(value.shape, rng)


def _constants(graph_def: Any) -> list[Any]:
    return [node for node in graph_def.node if node.op == "Const" and "value" in node.attr] or [graph_def.node[0]]


def _const_shape(graph_def: Any, rng: Any) -> None:
    constants = _constants(graph_def)
    _bad_shape(constants[int(rng.integers(len(constants)))].attr["value"].tensor.tensor_shape, rng)


def _content_length(graph_def: Any, rng: Any) -> None:
    constants = _constants(graph_def)
    tensor = constants[int(rng.integers(len(constants)))].attr["value"].tensor
    content = tensor.tensor_content
    choice = int(rng.integers(4))
    if choice == 0:
        tensor.tensor_content = content[: int(rng.integers(len(content) + 1))]
    elif choice == 1:
        tensor.tensor_content = content + bytes(int(rng.integers(1, 64)))
    elif choice == 2:
        tensor.tensor_content = b""
        tensor.float_val.extend([1.0] * int(rng.integers(1, 50)))
    else:
        tensor.string_val.extend([b"\xff" * int(rng.integers(1, 100))])


def _int_attr(graph_def: Any, rng: Any) -> None:
    found = [
        (node, key)
        for node in graph_def.node
        for key, value in node.attr.items()
        if value.WhichOneof("value") in ("i", "list")
    ]
    for _ in range(int(rng.integers(1, 3))):
        if not found:
            return
        node, key = found[int(rng.integers(len(found)))]
        value = node.attr[key]
        if value.HasField("list"):
            if value.list.i:
                value.list.i[int(rng.integers(len(value.list.i)))] = int(rng.choice(INT_VALUES))
            else:
                value.list.i.extend([int(rng.choice(INT_VALUES))] * int(rng.integers(1, 5)))
        else:
            value.i = int(rng.choice(INT_VALUES))


def _string_attr(graph_def: Any, rng: Any) -> None:
    found = [(node, key) for node in graph_def.node for key, value in node.attr.items() if value.HasField("s")]
    node, key = found[int(rng.integers(len(found)))] if found else (_node(graph_def, rng), "data_format")
    node.attr[key].s = STRINGS[int(rng.integers(len(STRINGS)))]


def _drop_node(graph_def: Any, rng: Any) -> None:
    if len(graph_def.node) > 1:
        del graph_def.node[int(rng.integers(len(graph_def.node)))]


def _dup_node(graph_def: Any, rng: Any) -> None:
    copy = graph_def.node.add()
    copy.CopyFrom(_node(graph_def, rng))
    if rng.random() < 0.7:
        copy.name += "_dup"


def _device(graph_def: Any, rng: Any) -> None:
    devices = ("/job:evil/device:GPU:99", "/device:TPU:0", "garbage!!", "/cpu:0", "/device:CPU:" + "9" * 30)
    _node(graph_def, rng).device = devices[int(rng.integers(len(devices)))]


def _versions(graph_def: Any, rng: Any) -> None:
    graph_def.versions.producer = int(rng.choice([-5, 0, 10**6, 2**31 - 1]))
    graph_def.versions.min_consumer = int(rng.choice([0, 10**6, 2**31 - 1]))
    if rng.random() < 0.5:
        graph_def.versions.bad_consumers.append(int(rng.integers(0, 3000)))


def _function_edit(graph_def: Any, rng: Any) -> None:
    library = graph_def.library
    if not library.function:
        call = _node(graph_def, rng)
        call.op = "PartitionedCall"
        call.attr["f"].func.name = "no_such_function"
        return
    function = library.function[int(rng.integers(len(library.function)))]
    choice = int(rng.integers(7))
    if choice == 0:
        function.signature.name += "_renamed"
    elif choice == 1:
        del library.function[int(rng.integers(len(library.function)))]
    elif choice == 2 and function.signature.input_arg:
        function.signature.input_arg[0].type = int(rng.choice(DTYPES))
    elif choice == 3 and function.node_def:
        node = function.node_def[int(rng.integers(len(function.node_def)))]
        node.input.append(str(rng.choice(["missing:y:0", "x", node.name + ":output:0", "^" + node.name])))
    elif choice == 4:
        for key in list(function.ret):
            function.ret[key] = str(rng.choice(["nowhere:y:0", "x", ""]))
    elif choice == 5 and function.signature.output_arg:
        del function.signature.output_arg[:]
    else:
        copy = library.function.add()
        copy.CopyFrom(function)  # the same function twice


def _recursion(graph_def: Any, rng: Any) -> None:
    from tests import hostile

    library = graph_def.library
    if library.function and rng.random() < 0.5:
        function = library.function[int(rng.integers(len(library.function)))]
        callers = [node for node in function.node_def if "f" in node.attr or "body" in node.attr]
        if callers:
            node = callers[int(rng.integers(len(callers)))]
            node.attr["f" if "f" in node.attr else "body"].func.name = function.signature.name
            return
        node = function.node_def.add(name="again", op=function.signature.name)
        node.input.extend(arg.name for arg in function.signature.input_arg)
        return
    kind = hostile.RECURSION_KINDS[int(rng.integers(len(hostile.RECURSION_KINDS)))]
    _graft(graph_def, hostile.recursive_library(kind))


def _graft(graph_def: Any, other: Any) -> None:
    """Add `other`'s library and its nodes (renamed with a `graft/` prefix) to `graph_def`."""
    names = {node.name for node in other.node}
    for node in other.node:
        copy = graph_def.node.add()
        copy.CopyFrom(node)
        copy.name = "graft/" + node.name
        for index, name in enumerate(copy.input):
            bare = name.lstrip("^").split(":")[0]
            if bare in names:
                copy.input[index] = name.replace(bare, "graft/" + bare, 1)
    known = {function.signature.name for function in graph_def.library.function}
    for function in other.library.function:
        if function.signature.name not in known:
            graph_def.library.function.add().CopyFrom(function)


def _graft_calls(graph_def: Any, rng: Any) -> None:
    from tests import hostile

    other = (
        hostile.call_chain(int(rng.integers(2, 60)))
        if rng.random() < 0.5
        else hostile.fan_out_tree(int(rng.integers(2, 14)))
    )
    _graft(graph_def, other)


def _structural() -> dict[str, Any]:
    from tests import hostile

    return {
        **hostile.STRUCTURAL,
        "op-swap": _op_swap,
        "drop-input": _drop_input,
        "dup-input": _dup_input,
        "rewire": _rewire,
        "control-edge": _control_edge,
        "dtype-swap": _dtype_swap,
        "attr-shape": _attr_shape,
        "const-shape": _const_shape,
        "content-length": _content_length,
        "int-attr": _int_attr,
        "string-attr": _string_attr,
        "drop-node": _drop_node,
        "dup-node": _dup_node,
        "device": _device,
        "versions": _versions,
        "function-edit": _function_edit,
        "recursion": _recursion,
        "graft-calls": _graft_calls,
    }


MORE_BYTE_LEVEL = ("insert-bytes", "delete-bytes", "repeat-bytes", "varint-bomb", "pbtxt-bytes")


def _mutate_bytes(kind: str, data: bytes, rng: Any) -> bytes:
    size = max(1, len(data))
    at = int(rng.integers(size))
    if kind == "insert-bytes":
        return data[:at] + bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype="uint8")) + data[at:]
    if kind == "delete-bytes":
        return data[:at] + data[at + int(rng.integers(1, 64)) :]
    if kind == "repeat-bytes":
        return data[:at] + data[at : at + int(rng.integers(1, 256))] * int(rng.integers(2, 50)) + data[at:]
    if kind == "varint-bomb":
        return data[:at] + b"\xff" * int(rng.integers(1, 11)) + b"\x7f" + data[at + 1 :]
    if kind == "pbtxt-bytes":
        text = bytearray(data)
        for _ in range(int(rng.integers(1, 6))):
            spot = int(rng.integers(max(1, len(text))))
            choice = int(rng.integers(4))
            if choice == 0:
                text[spot : spot + 1] = bytes([int(rng.choice(list(b'{}":\\ 0-9eE\n\x00\xff')))])
            elif choice == 1:
                del text[spot : spot + int(rng.integers(1, 40))]
            elif choice == 2:
                text[spot:spot] = b"{" * int(rng.integers(1, 200))
            else:
                text[spot:spot] = b" size: -99999999999999999999 "
        return bytes(text)
    raise ValueError(kind)


# ----- cases ---------------------------------------------------------------------------------------------------


@dataclass
class Case:
    index: int
    kind: str
    seed: str
    model: str = ""
    data: bytes = b""
    args: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)  # which options were varied (for the summary)
    writes: set[str] = field(default_factory=set)  # files a success may add
    scenario: int | None = None


def kinds() -> list[str]:
    from tests import hostile

    return [*hostile.BYTE_LEVEL, *MORE_BYTE_LEVEL, *_structural(), "options"]


def _vary_options(case: Case, seed: Seed, graph_names: list[str], rng: Any, always: bool) -> None:
    from optimizer.registry import pass_names

    output, extras = "out.pb", []
    chosen = set()
    if always or rng.random() < 0.35:
        menu = [
            "passes",
            "inputs",
            "outputs",
            "input-shape",
            "time-limit",
            "memory-limit",
            "pbtxt",
            "tflite",
            "no-verify",
            "verify-samples",
            "fixed-point",
            "max-rewrites",
            "keep-going",
            "report-json",
            "input-range",
        ]
        weights = [3, 2, 2, 2, 1, 1, 2, 0.6, 1, 1, 1, 1, 1, 2, 1]
        total = sum(weights)
        for _ in range(int(rng.integers(1, 4))):
            chosen.add(str(rng.choice(menu, p=[weight / total for weight in weights])))
    names = graph_names or ["x"]

    def name() -> str:
        pick = int(rng.integers(10))
        if pick < 6 and seed.inputs + seed.outputs:
            pool = seed.inputs + seed.outputs
            return pool[int(rng.integers(len(pool)))]
        if pick < 9:
            return names[int(rng.integers(len(names)))]
        return str(rng.choice(["nosuch", "x:99", "", ":", "^a", "a:-1", "a,b"]))

    if "passes" in chosen:
        passes = pass_names()
        picked = [str(item) for item in rng.choice(passes, int(rng.integers(0, 6)))]
        extras += ["--passes", ",".join(picked)]
    if "inputs" in chosen:
        extras += ["--inputs", ",".join(name() for _ in range(int(rng.integers(1, 3))))]
    if "outputs" in chosen:
        extras += ["--outputs", ",".join(name() for _ in range(int(rng.integers(1, 3))))]
    if "input-shape" in chosen:
        dims = ",".join(
            str(int(rng.choice([-1, 0, 1, 2, 3, 16, 2**31, 10**9]))) for _ in range(int(rng.integers(0, 5)))
        )
        extras += ["--input-shape", f"{name().split(':')[0]}:{dims}"]
    if "time-limit" in chosen:
        extras += ["--time-limit", str(rng.choice(["0.05", "0.5", "2"]))]
    if "memory-limit" in chosen:
        extras += ["--memory-limit", str(rng.choice(["700M", "1G", "1G", "12K", "0", "lots"]))]
    if "pbtxt" in chosen:
        output = "out.pbtxt"
    if "tflite" in chosen:
        output = "out.tflite"
    if "no-verify" in chosen:
        extras.append("--no-verify")
    if "verify-samples" in chosen:
        extras += ["--verify-samples", str(rng.choice(["2", "3"]))]
    if "fixed-point" in chosen:
        extras.append("--fixed-point")
    if "max-rewrites" in chosen:
        extras += ["--max-rewrites", str(int(rng.integers(0, 20)))]
    if "keep-going" in chosen:
        extras.append("--keep-going")
    if "report-json" in chosen:
        extras += ["--report-json", "report.json"]
        case.writes.add("report.json")
    if "input-range" in chosen:
        low, high = sorted(float(value) for value in rng.choice([-1e30, -5.0, 0.0, 1.0, 3.0, 1e30], 2))
        extras += ["--input-range", f"{name().split(':')[0]}={low:g},{high:g}"]
    case.writes.add(output)
    limits = []
    if "time-limit" not in chosen:
        limits += ["--time-limit", TIME_LIMIT]
    if "memory-limit" not in chosen:
        limits += ["--memory-limit", MEMORY_LIMIT]
    case.args = [case.model, "-o", output, *limits, *extras]
    case.options = sorted(chosen)


def make_case(index: int, base_seed: int, seeds: list[Seed], scenarios: int) -> Case:
    """Case `index`: drawn from `default_rng([base_seed, index])` alone."""
    import numpy as np
    from google.protobuf import text_format

    from optimizer.protos import GraphDef
    from tests import hostile

    rng = np.random.default_rng([base_seed, index])
    if scenarios and index % SCENARIO_EVERY == SCENARIO_EVERY - 1:
        number = (index // SCENARIO_EVERY) % scenarios
        return Case(index, "scenario", f"scenario-{number}", scenario=number)
    all_kinds = kinds()
    kind = all_kinds[index % len(all_kinds)]
    seed = seeds[int(rng.integers(len(seeds)))]
    case = Case(index, kind, seed.name, model="model.pb")
    graph_def = GraphDef.FromString(seed.data)
    names = [node.name for node in graph_def.node]
    if kind in hostile.BYTE_LEVEL:
        other = seeds[int(rng.integers(len(seeds)))].data
        case.data = hostile.mutate_bytes(kind, seed.data, other, rng)
    elif kind == "pbtxt-bytes":
        case.model = "model.pbtxt"
        case.data = _mutate_bytes(kind, text_format.MessageToString(graph_def).encode(), rng)
    elif kind in MORE_BYTE_LEVEL:
        case.data = _mutate_bytes(kind, seed.data, rng)
    elif kind == "options":
        case.data = seed.data
    else:
        if graph_def.node:
            _structural()[kind](graph_def, rng)
        if rng.random() < 0.15:
            case.model = "model.pbtxt"
            case.data = text_format.MessageToString(graph_def).encode()
        else:
            case.data = graph_def.SerializeToString()
    _vary_options(case, seed, names, rng, always=kind == "options")
    return case


# ----- running one case in a fuzz worker ----------------------------------------------------------------------


def _empty(folder: Path) -> None:
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def classify(code: int, out: str, err: str, model: str, varied: bool) -> str:
    """The outcome of an ordinary case from its exit code and printed text (see the module docstring)."""
    from tests.hostile import verdict

    if "Traceback (most recent call last)" in out + err:
        return "traceback"
    lines, _ = verdict(err)  # passes' warnings (`fold: kept ...`) may come before the verdict
    if code == 2:
        named = model in err or varied
        return (
            "clean error" if len(lines) == 1 and lines[0].startswith("optimize: error: ") and named else "messy error"
        )
    if code == 0:
        done = "verification: outputs match" in out or "verification: skipped (--no-verify)" in out
        return "correct" if done else "messy error"
    if code == 4:
        warned = [line for line in lines if line.startswith("optimize: warning: ")]
        return "not verified" if len(warned) == 1 and "verification: not run" in out else "messy error"
    return {1: "wrong result", 3: "internal error"}.get(code, "messy error")


def run_case(case: Case, folder: Path, secret: str) -> tuple[str, str]:
    """Run `case` in `folder` (the current directory, emptied first); return (outcome, detail)."""
    from optimizer.cli import main
    from tests import hostile

    _empty(folder)
    expected = None
    if case.scenario is not None:
        scenario = hostile.SCENARIOS[case.scenario]
        case.seed = scenario.name
        case.args = scenario.make(folder)
        case.writes = set(scenario.writes)
        expected = scenario
    else:
        (folder / case.model).write_bytes(case.data)
    before = hostile.snapshot(folder)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(case.args))
    except BaseException as error:  # a traceback reaching the user is what we hunt
        return "traceback", f"{type(error).__name__}: {error}"[:500]
    stdout, stderr = out.getvalue(), err.getvalue()
    detail = f"exit {code}: {stderr.strip()[:400]}"
    after = hostile.snapshot(folder)
    if any(after.get(name) != digest for name, digest in before.items()):
        return "input changed", detail
    added = set(after) - set(before)
    if expected is not None:
        if code != expected.code or (expected.message and expected.message not in stderr):
            return "messy error", f"expected exit {expected.code} with {expected.message!r}; got {detail}"
        outcome = {0: "correct", 2: "clean error", 4: "not verified"}.get(code, "messy error")
        if outcome == "clean error" and len(hostile.verdict(stderr)[0]) != 1:
            outcome = "messy error"
    else:
        outcome = classify(code, stdout, stderr, case.model, bool(case.options))
        if outcome == "wrong result" and "the TFLite model failed verification" in stdout:
            outcome = "tflite differs"  # TFLite's converter or runtime disagrees with TensorFlow: refused, unwritten
    allowed = case.writes if code in (0, 4) else set()
    if outcome in OK and added - allowed:
        return "stray file", f"{sorted(added - allowed)}; {detail}"
    outputs = case.writes - {"report.json"}
    if outcome in OK and code in (0, 4) and outputs and not outputs & set(after):
        return "messy error", f"exit {code} but nothing written; {detail}"
    if outcome in OK and secret in stdout:  # stderr may quote a file the command line named (the secret itself)
        return "leak", detail
    for name in added:
        path = folder / name
        if path.is_file() and not path.is_symlink() and secret.encode() in path.read_bytes():
            return "leak", f"{name}; {detail}"
    return outcome, detail


def _worker(connection: Connection, base: str, base_seed: int, corpus: str, corpus_seeds: int) -> None:
    """A fuzz worker: receive case numbers, run them one after another, send (index, kind, ...) back."""
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_ADDRESS_SPACE, WORKER_ADDRESS_SPACE))
    from tests import hostile

    secret = "fuzz-secret-" + secrets.token_hex(16)
    (Path(base) / hostile.SECRET_NAME).write_text(secret)
    folder = Path(base) / "run"
    folder.mkdir(exist_ok=True)
    os.chdir(folder)  # the CLI's TensorFlow child starts here too: this folder is emptied, never removed
    native = open(Path(base) / "native.log", "w+b")  # noqa: SIM115 - what native code prints on fd 1 and 2
    os.dup2(native.fileno(), 1)
    os.dup2(native.fileno(), 2)
    seeds = load_seeds(Path(corpus), corpus_seeds)
    while True:
        try:
            index = connection.recv()
        except EOFError:
            return
        if index is None:
            return
        start = time.perf_counter()
        try:
            case = make_case(index, base_seed, seeds, len(hostile.SCENARIOS))
        except Exception as error:
            connection.send((index, "generator", "", [], "messy error", f"fuzz.py cannot make it: {error!r}", 0.0))
            continue
        os.chdir(folder)
        for handler in logging.root.handlers[:]:  # as in a fresh process: a case's logging setup is not the next's
            logging.root.removeHandler(handler)
        logging.root.setLevel(logging.WARNING)
        mark = native.seek(0, os.SEEK_END)
        outcome, detail = run_case(case, folder, secret)
        native.seek(mark)
        printed = native.read(2000).decode(errors="replace").strip()
        if printed and outcome in OK:  # the user's terminal gets lines beside the one line: TensorFlow's logs
            outcome, detail = "native output", f"{printed.splitlines()[0][:300]}; {detail}"
        seconds = time.perf_counter() - start
        connection.send((index, case.kind, case.seed, case.options, outcome, detail, seconds))


# ----- the driver ----------------------------------------------------------------------------------------------


@dataclass
class Slot:
    number: int
    base: str
    process: Any = None
    connection: Any = None
    index: int | None = None
    started: float = 0.0
    fresh: bool = True


def _start(slot: Slot, args: argparse.Namespace) -> None:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    shutil.rmtree(slot.base, ignore_errors=True)
    os.makedirs(slot.base)
    slot.process = context.Process(
        target=_worker,
        args=(child, slot.base, args.seed, str(args.corpus), args.corpus_seeds),
        name=f"fuzz-{slot.number}",
    )
    slot.process.start()
    child.close()
    slot.connection, slot.index, slot.fresh = parent, None, True


def _kill(slot: Slot) -> None:
    if slot.process is not None and slot.process.is_alive():
        slot.process.kill()  # its TensorFlow child dies with it (PR_SET_PDEATHSIG)
    if slot.process is not None:
        slot.process.join(10)
    if slot.connection is not None:
        slot.connection.close()
    slot.process = slot.connection = None


def run(args: argparse.Namespace, indices: list[int]) -> dict[int, dict[str, Any]]:
    """Run the cases `indices` on `args.jobs` workers; return each case's record."""
    from optimizer.sandbox import resident_bytes
    from tests import hostile

    results: dict[int, dict[str, Any]] = {}
    pending = list(reversed(indices))
    top = Path(tempfile.mkdtemp(prefix="fuzz-"))
    slots = [Slot(number, str(top / f"w{number}")) for number in range(max(1, args.jobs))]
    start = last_report = time.monotonic()
    seeds = load_seeds(args.corpus, args.corpus_seeds)

    def record(index: int, outcome: str, detail: str, seconds: float, **known: Any) -> None:
        if not known:  # the worker died with it: rebuild the case here to name its kind
            case = make_case(index, args.seed, seeds, len(hostile.SCENARIOS))
            known = {"kind": case.kind, "seed": case.seed, "options": case.options}
        results[index] = {**known, "outcome": outcome, "detail": detail, "seconds": round(seconds, 3)}
        if outcome in BUGS:
            print(
                f"BUG case {index} ({known['kind']}, {known['seed']}, {known['options']}): {outcome}: {detail}",
                file=sys.stderr,
                flush=True,
            )

    try:
        while pending or any(slot.index is not None for slot in slots):
            for slot in slots:
                if slot.process is None:
                    _start(slot, args)
                if slot.index is None and pending:
                    slot.index = pending.pop()
                    slot.started = time.monotonic()
                    slot.connection.send(slot.index)
            busy = [slot for slot in slots if slot.index is not None]
            ready = wait([slot.connection for slot in busy], timeout=0.5)
            now = time.monotonic()
            for slot in busy:
                assert slot.index is not None
                if slot.connection in ready:
                    try:
                        index, kind, seed, options, outcome, detail, seconds = slot.connection.recv()
                    except (EOFError, OSError):
                        slot.process.join(5)
                        code = slot.process.exitcode
                        record(slot.index, "crash", f"fuzz worker died (exit status {code})", now - slot.started)
                        _kill(slot)
                        continue
                    record(index, outcome, detail, seconds, kind=kind, seed=seed, options=options)
                    slot.index, slot.fresh = None, False
                elif now - slot.started > args.timeout + (FIRST_CASE_SLACK if slot.fresh else 0.0):
                    record(slot.index, "hang", f"no answer within {args.timeout:g} s", now - slot.started)
                    _kill(slot)
                elif resident_bytes(slot.process.pid) > WORKER_RESIDENT:
                    record(slot.index, "memory blow-up", "the CLI's own process outgrew 3 GiB", now - slot.started)
                    _kill(slot)
            if args.progress and now - last_report > args.progress:
                last_report = now
                done, elapsed = len(results), now - start
                bugs = sum(1 for item in results.values() if item["outcome"] in BUGS)
                rate = done / elapsed if elapsed else 0.0
                eta = (len(indices) - done) / rate if rate else 0.0
                print(
                    f"[{done}/{len(indices)}] {elapsed:.0f} s, {rate:.2f} cases/s, {bugs} bugs, eta {eta:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        for slot in slots:
            if slot.connection is not None and slot.index is None:
                with contextlib.suppress(OSError):
                    slot.connection.send(None)
            if slot.process is not None:
                slot.process.join(10)
            _kill(slot)
        shutil.rmtree(top, ignore_errors=True)
    return results


def summary(results: dict[int, dict[str, Any]], seconds: float, seed_count: int) -> str:
    outcomes = [*OK, *BUGS]
    seen = [name for name in outcomes if any(item["outcome"] == name for item in results.values())]
    table: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for item in results.values():
        table[item["kind"]][item["outcome"]] += 1
    width = max([len(kind) for kind in table] + [5])
    lines = [
        f"{len(results)} cases in {seconds:.0f} s ({len(results) / max(seconds, 1e-9):.2f}/s) from {seed_count} seeds"
    ]
    lines.append(" ".join([f"{'kind':<{width}}", *(f"{name:>{max(len(name), 5)}}" for name in seen), "total"]))
    for kind in sorted(table):
        cells = [f"{table[kind][name]:>{max(len(name), 5)}}" for name in seen]
        lines.append(" ".join([f"{kind:<{width}}", *cells, f"{sum(table[kind].values()):>5}"]))
    totals = collections.Counter(item["outcome"] for item in results.values())
    lines.append(
        " ".join(
            [f"{'total':<{width}}", *(f"{totals[name]:>{max(len(name), 5)}}" for name in seen), f"{len(results):>5}"]
        )
    )
    varied = collections.Counter(option for item in results.values() for option in item["options"])
    if varied:
        lines.append("options varied: " + ", ".join(f"{name} {count}" for name, count in sorted(varied.items())))
    return "\n".join(lines)


def save(case_index: int, args: argparse.Namespace, folder: Path) -> None:
    """Write case `case_index`'s model and command line into `folder` (a scenario: its name)."""
    from tests import hostile

    case = make_case(case_index, args.seed, load_seeds(args.corpus, args.corpus_seeds), len(hostile.SCENARIOS))
    folder.mkdir(parents=True, exist_ok=True)
    if case.scenario is not None:
        line = f"scenario {hostile.SCENARIOS[case.scenario].name} of tests/hostile.py"
    else:
        (folder / case.model).write_bytes(case.data)
        line = (
            "cd "
            + str(folder)
            + " && optimize "
            + " ".join(repr(arg) if not arg or " " in arg else arg for arg in case.args)
        )
    (folder / "command.txt").write_text(line + "\n")
    print(f"case {case_index} ({case.kind}, seed {case.seed}): {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=QUICK_CASES, help=f"how many cases (default {QUICK_CASES})")
    parser.add_argument("--long", action="store_true", help=f"the long mode: {LONG_CASES:,} cases")
    parser.add_argument("--first", type=int, default=0, help="number of the first case (to resume a run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="fuzz workers in parallel")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds one case may take (default 180)")
    parser.add_argument("--progress", type=float, default=30.0, help="seconds between progress lines (0: none)")
    parser.add_argument("--json", type=Path, help="write every case's record and the counts here")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="folder of <case>/graph.pb seeds")
    parser.add_argument("--corpus-seeds", type=int, default=CORPUS_SEEDS)
    parser.add_argument("--case", type=int, help="with --save: write this case's files instead of running")
    parser.add_argument("--save", type=Path, help="folder for --case")
    args = parser.parse_args(argv)
    if args.case is not None:
        save(args.case, args, args.save or Path(f"fuzz-case-{args.case}"))
        return 0
    count = LONG_CASES if args.long else args.cases
    start = time.monotonic()
    results = run(args, list(range(args.first, args.first + count)))
    seconds = time.monotonic() - start
    print(summary(results, seconds, len(load_seeds(args.corpus, args.corpus_seeds))))
    bugs = {index: item for index, item in sorted(results.items()) if item["outcome"] in BUGS}
    for index, item in bugs.items():
        print(
            f"BUG case {index} ({item['kind']}, {item['seed']}, {item['options']}): {item['outcome']}: {item['detail']}"
        )
    if args.json:
        counts = collections.Counter(item["outcome"] for item in results.values())
        report = {
            "cases": len(results),
            "seconds": round(seconds, 1),
            "seed": args.seed,
            "counts": dict(counts),
            "bugs": len(bugs),
            "results": {str(index): item for index, item in sorted(results.items())},
        }
        args.json.write_text(json.dumps(report, indent=1))
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
