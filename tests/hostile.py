"""Hostile and broken models, made from a sound seed graph: the fuzzer's and the tests' shared source.

`hostile_cases(seed_graph_def, rng, count)` yields `(kind, bytes)` pairs. Kinds:
- byte level: `truncate` (cut inside the file), `bitflip` (1-8 flipped bits), `garbage` (random bytes),
  `splice` (the head of one model and the tail of another);
- structure: `unknown-op`, `dangling-input`, `bad-port`, `duplicate-name`, `cycle`, `drop-attr`, `wrong-dtype`,
  `absurd-shape` (a constant declaring 10^12 elements), `bad-content` (tensor bytes that do not fit the shape),
  `huge-placeholder` (an input declared with 10^10 elements), `empty-name`, `self-loop`, `control-cycle`.
Every case is a model a user could hand to `optimize`; none may produce a traceback, a hang or a wrong result.

Memory bombs: `memory_bomb(kind)` (`MEMORY_BOMBS`: `ParseTensor` of a small string claiming 3.6 GB, `RaggedRange`
to 2*10^9, `AsString` 10^7 characters wide, 220 `Fill`s of 10 MB each, a zlib bomb of 1 GiB, a 200 MB string
constant), each a graph whose output `y` adds the bomb's size to the input `x`.

Function libraries: `recursive_library(kind)` (`RECURSION_KINDS`: direct, mutual, through an op name, `If`,
`While`, `Case`, a three-cycle), `call_chain(depth)`, `fan_out_tree(depth)`. Whole runs: `SCENARIOS`, each a
`Scenario` that writes its files (models, symlinks, FIFOs, `.npy`s with hostile headers, checkpoint state files
pointing out of their folder, batch inputs whose output names collide, nested `.pbtxt`) and the command line, with
the exit code and message the run must end with.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.protos import FunctionDef, GraphDef, NodeDef

Mutation = Callable[[GraphDef, np.random.Generator], None]


def _pick(graph_def: GraphDef, rng: np.random.Generator, with_inputs: bool = False) -> NodeDef:
    nodes = [node for node in graph_def.node if node.input or not with_inputs]
    return nodes[int(rng.integers(len(nodes)))]


def _unknown_op(graph_def: GraphDef, rng: np.random.Generator) -> None:
    _pick(graph_def, rng).op = f"NoSuchOp{int(rng.integers(1000))}"


def _dangling_input(graph_def: GraphDef, rng: np.random.Generator) -> None:
    _pick(graph_def, rng, with_inputs=True).input[0] = "missing/node"


def _bad_port(graph_def: GraphDef, rng: np.random.Generator) -> None:
    node = _pick(graph_def, rng, with_inputs=True)
    node.input[0] = node.input[0].split(":")[0].lstrip("^") + ":97"


def _duplicate_name(graph_def: GraphDef, rng: np.random.Generator) -> None:
    _pick(graph_def, rng).name = graph_def.node[0].name


def _cycle(graph_def: GraphDef, rng: np.random.Generator) -> None:
    first, last = graph_def.node[0], graph_def.node[len(graph_def.node) - 1]
    target = next((node for node in graph_def.node if node.input), first)
    target.input[0] = last.name


def _self_loop(graph_def: GraphDef, rng: np.random.Generator) -> None:
    node = _pick(graph_def, rng, with_inputs=True)
    node.input[0] = node.name


def _control_cycle(graph_def: GraphDef, rng: np.random.Generator) -> None:
    node = _pick(graph_def, rng, with_inputs=True)
    source = node.input[0].split(":")[0].lstrip("^")
    producer = next(item for item in graph_def.node if item.name == source)
    producer.input.append("^" + node.name)


def _drop_attr(graph_def: GraphDef, rng: np.random.Generator) -> None:
    node = next((node for node in graph_def.node if node.attr), graph_def.node[0])
    for key in list(node.attr)[: int(rng.integers(1, 3))]:
        del node.attr[key]


def _wrong_dtype(graph_def: GraphDef, rng: np.random.Generator) -> None:
    for node in graph_def.node:
        for key in ("T", "dtype"):
            if key in node.attr and rng.random() < 0.3:
                node.attr[key].type = int(rng.choice([3, 7, 10, 20, 21]))  # int32, string, bool, resource, variant


def _consts(graph_def: GraphDef) -> list[NodeDef]:
    return [node for node in graph_def.node if node.op == "Const"] or [graph_def.node[0]]


def _absurd_shape(graph_def: GraphDef, rng: np.random.Generator) -> None:
    node = _consts(graph_def)[int(rng.integers(len(_consts(graph_def))))]
    shape = node.attr["value"].tensor.tensor_shape
    del shape.dim[:]
    shape.dim.add(size=10**6)
    shape.dim.add(size=10**6)


def _bad_content(graph_def: GraphDef, rng: np.random.Generator) -> None:
    node = _consts(graph_def)[int(rng.integers(len(_consts(graph_def))))]
    tensor = node.attr["value"].tensor
    tensor.tensor_content = bytes(rng.integers(0, 256, int(rng.integers(1, 7)), dtype=np.uint8))


def _huge_placeholder(graph_def: GraphDef, rng: np.random.Generator) -> None:
    for node in graph_def.node:
        if node.op == "Placeholder":
            shape = node.attr["shape"].shape
            del shape.dim[:]
            shape.unknown_rank = False
            for _ in range(2):
                shape.dim.add(size=10**5)
            return


def _empty_name(graph_def: GraphDef, rng: np.random.Generator) -> None:
    _pick(graph_def, rng).name = ""


STRUCTURAL: dict[str, Mutation] = {
    "unknown-op": _unknown_op,
    "dangling-input": _dangling_input,
    "bad-port": _bad_port,
    "duplicate-name": _duplicate_name,
    "cycle": _cycle,
    "self-loop": _self_loop,
    "control-cycle": _control_cycle,
    "drop-attr": _drop_attr,
    "wrong-dtype": _wrong_dtype,
    "absurd-shape": _absurd_shape,
    "bad-content": _bad_content,
    "huge-placeholder": _huge_placeholder,
    "empty-name": _empty_name,
}
BYTE_LEVEL = ("truncate", "bitflip", "garbage", "splice")


def mutate_bytes(kind: str, data: bytes, other: bytes, rng: np.random.Generator) -> bytes:
    """A byte-level corruption of `data` (`other` is a second model for `splice`)."""
    if kind == "truncate":
        return data[: int(rng.integers(1, len(data)))]
    if kind == "bitflip":
        flipped = bytearray(data)
        for _ in range(int(rng.integers(1, 9))):
            position = int(rng.integers(len(flipped)))
            flipped[position] ^= 1 << int(rng.integers(8))
        return bytes(flipped)
    if kind == "garbage":
        return bytes(rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8))
    if kind == "splice":
        return data[: int(rng.integers(1, len(data)))] + other[int(rng.integers(len(other))) :]
    raise ValueError(kind)


def mutate_structure(kind: str, graph_def: GraphDef, rng: np.random.Generator) -> bytes:
    """A structural corruption of a copy of `graph_def`, serialized."""
    copy = GraphDef()
    copy.CopyFrom(graph_def)
    STRUCTURAL[kind](copy, rng)
    return copy.SerializeToString()


def hostile_cases(seeds: list[GraphDef], rng: np.random.Generator, count: int) -> Iterator[tuple[str, bytes]]:
    """`count` hostile models made from `seeds`, kinds chosen round-robin so every kind is covered."""
    kinds = list(BYTE_LEVEL) + list(STRUCTURAL)
    for index in range(count):
        kind = kinds[index % len(kinds)]
        seed = seeds[int(rng.integers(len(seeds)))]
        if kind in BYTE_LEVEL:
            other = seeds[int(rng.integers(len(seeds)))].SerializeToString()
            yield kind, mutate_bytes(kind, seed.SerializeToString(), other, rng)
        else:
            yield kind, mutate_structure(kind, seed, rng)


# ----- function libraries: recursion, deep call chains, fan-out call trees -------------------------------------

_FLOAT = 1  # DT_FLOAT


def _argument(function: FunctionDef, name: str) -> None:
    function.signature.input_arg.add(name=name, type=_FLOAT)


def _call(function: FunctionDef, name: str, callee: str, source: str, how: str = "PartitionedCall") -> str:
    """Add to `function` a node calling `callee` on `source` (`how`: a call op, `op` for the function as its op,
    or a functional op `If`/`While`/`Case` whose branch or body is `callee`); return its output's spelling."""
    node = function.node_def.add(name=name)
    if how == "op":
        node.op = callee
        node.input.append(source)
        return f"{name}:y:0"
    node.op = how
    if how == "If":
        node.input.extend(["cond", source])  # `cond` is a bool argument the caller adds
        node.attr["then_branch"].func.name = callee
        node.attr["else_branch"].func.name = callee
        node.attr["Tcond"].type = 10
    elif how == "While":
        node.input.append(source)
        node.attr["body"].func.name = callee
        node.attr["cond"].func.name = callee
        node.attr["T"].list.type.append(_FLOAT)
    elif how == "Case":
        node.input.extend(["index", source])
        node.attr["branches"].list.func.add(name=callee)
        node.attr["branches"].list.func.add(name=callee)
    else:
        node.input.append(source)
        node.attr["f"].func.name = callee
    if how != "While":
        node.attr["Tin"].list.type.append(_FLOAT)
        node.attr["Tout"].list.type.append(_FLOAT)
    return f"{name}:output:0"


def _function(library: GraphDef, name: str) -> FunctionDef:
    function = library.library.function.add()
    function.signature.name = name
    _argument(function, "x")
    function.signature.output_arg.add(name="y", type=_FLOAT)
    return function


def _negate_returning(function: FunctionDef, source: str) -> None:
    """End `function` with `y = Neg(source)`: a body that computes something."""
    node = function.node_def.add(name="neg", op="Neg")
    node.input.append(source)
    node.attr["T"].type = _FLOAT
    function.ret["y"] = "neg:y:0"


def _caller(library: GraphDef, callee: str) -> GraphDef:
    """The top-level graph: `x` (a float placeholder) -> `out`, a PartitionedCall of `callee`."""
    x = library.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = _FLOAT
    x.attr["shape"].shape.dim.add(size=2)
    call = library.node.add(name="out", op="PartitionedCall")
    call.input.append("x")
    call.attr["f"].func.name = callee
    call.attr["Tin"].list.type.append(_FLOAT)
    call.attr["Tout"].list.type.append(_FLOAT)
    return library


RECURSION_KINDS = ("direct", "mutual", "op-name", "if", "while", "case", "three-cycle")


def recursive_library(kind: str) -> GraphDef:
    """A graph calling a recursive function: `direct` (f calls f), `mutual` (f calls g calls f), `op-name` (g is
    used as f's op), `if`/`while`/`case` (f is its own branch or body), `three-cycle` (f -> g -> h -> f)."""
    graph_def = GraphDef()
    if kind in ("direct", "if", "while", "case"):
        f = _function(graph_def, "f")
        if kind in ("if", "case"):
            f.signature.input_arg.add(name="cond" if kind == "if" else "index", type=10 if kind == "if" else 3)
        how = {"direct": "PartitionedCall", "if": "If", "while": "While", "case": "Case"}[kind]
        _negate_returning(f, _call(f, "again", "f", "x", how))
        return _caller(graph_def, "f")
    names = {"mutual": ["f", "g"], "op-name": ["f", "g"], "three-cycle": ["f", "g", "h"]}[kind]
    for index, name in enumerate(names):
        function = _function(graph_def, name)
        callee = names[(index + 1) % len(names)]
        how = "op" if kind == "op-name" and name == "f" else "PartitionedCall"
        _negate_returning(function, _call(function, "call", callee, "x", how))
    return _caller(graph_def, "f")


def call_chain(depth: int) -> GraphDef:
    """`out = f0(x)`, where `f<i>(x) = -f<i+1>(x)` down to `f<depth-1>(x) = -x`: `depth` nested calls."""
    graph_def = GraphDef()
    for index in range(depth):
        function = _function(graph_def, f"f{index}")
        source = "x" if index == depth - 1 else _call(function, "call", f"f{index + 1}", "x")
        _negate_returning(function, source)
    return _caller(graph_def, "f0")


def fan_out_tree(depth: int) -> GraphDef:
    """`out = f0(x)`, where `f<i>(x) = f<i+1>(x) + f<i+1>(x)`: inlined whole it is 2^depth copies of the leaf."""
    graph_def = GraphDef()
    for index in range(depth):
        function = _function(graph_def, f"f{index}")
        if index == depth - 1:
            _negate_returning(function, "x")
            continue
        left = _call(function, "left", f"f{index + 1}", "x")
        right = _call(function, "right", f"f{index + 1}", "x")
        add = function.node_def.add(name="add", op="AddV2")
        add.input.extend([left, right])
        add.attr["T"].type = _FLOAT
        function.ret["y"] = "add:z:0"
    return _caller(graph_def, "f0")


# ----- whole runs: a model, files around it and a command line, with the exit code and message they must get ---

SMALL = (
    'node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } }'
    ' attr { key: "shape" value { shape { dim { size: 2 } } } } }\n'
    'node { name: "y" op: "Neg" input: "x" attr { key: "T" value { type: DT_FLOAT } } }\n'
)


@dataclass(frozen=True)
class Scenario:
    """A hostile run: `make(folder)` writes the files into `folder` and returns the arguments of `optimize`
    (run in `folder`); the run must exit with `code`, and on an error print one line holding `message`.
    `writes` are the only files the run may add (on success)."""

    name: str
    make: Callable[[Path], list[str]]
    code: int
    message: str = ""
    writes: tuple[str, ...] = ()


PASS_WARNING = re.compile(r"^(?!optimize:)[a-z][a-z0-9-]*: ")
"""A pass's warning (`fold: kept 3 node(s) ...`): one line each, which may come before a run's verdict."""


def verdict(stderr: str) -> tuple[list[str], str]:
    """The lines of `stderr` that are not passes' warnings, and the last line ("" when there is none)."""
    lines = [line for line in stderr.splitlines() if not PASS_WARNING.match(line)]
    return lines, lines[-1] if lines else ""


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under `folder`: a file's digest, a link's target, or its kind (to see what a run changed)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = "link -> " + os.readlink(path)
        elif path.is_fifo():
            found[key] = "fifo"
        elif path.is_dir():
            found[key] = "folder"
        elif path.is_file():
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[key] = "other"
    return found


MEMORY_BOMBS = ("parse-tensor", "ragged-range", "as-string", "fills", "zlib", "big-string")


def memory_bomb(kind: str) -> GraphDef:
    """A graph `y = x + size(bomb)` whose constant part allocates gigabytes when evaluated (see `MEMORY_BOMBS`)."""
    import zlib

    import tensorflow as tf

    from optimizer.protos import TensorProto

    if kind == "parse-tensor":  # written as NodeDefs: building it in TensorFlow would run it (shape inference)
        claim = TensorProto(dtype=tf.float32.as_datatype_enum)
        for size in (30_000, 30_000):
            claim.tensor_shape.dim.add(size=size)
        bomb = tf.compat.v1.GraphDef(node=_parse_tensor_bomb(claim.SerializeToString()))
        bomb.versions.CopyFrom(tf.Graph().as_graph_def().versions)
        return bomb
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [], name="x")
        if kind == "ragged-range":
            starts, limits = tf.constant([0], tf.int64), tf.constant([2_000_000_000], tf.int64)
            _, values = tf.raw_ops.RaggedRange(starts=starts, limits=limits, deltas=tf.constant([1], tf.int64))
            value = tf.cast(tf.size(values), tf.float32)
        elif kind == "as-string":
            text = tf.raw_ops.AsString(input=tf.range(1000.0), width=10_000_000)
            value = tf.cast(tf.reduce_sum(tf.strings.length(text)), tf.float32)
        elif kind == "fills":
            value = tf.add_n([tf.reduce_sum(x + tf.fill([2_500_000], tf.constant(float(i)) + 1.0)) for i in range(220)])
        elif kind == "zlib":
            bomb = tf.constant(zlib.compress(b"\0" * 2**30, 9))
            text = tf.raw_ops.DecodeCompressed(bytes=bomb, compression_type="ZLIB")
            value = tf.cast(tf.strings.length(text), tf.float32)
        elif kind == "big-string":
            value = tf.cast(tf.strings.length(tf.constant(b"s" * 200_000_000)), tf.float32)
        else:
            raise ValueError(kind)
        tf.identity(x + value, name="y")
    return graph.as_graph_def()


def _parse_tensor_bomb(serialized: bytes) -> list[NodeDef]:
    """`y = x + Sum(ParseTensor(serialized), Range(0, Rank(parsed), 1))` as NodeDefs."""
    import tensorflow as tf

    def node(name: str, op: str, *inputs: str, **attrs: Any) -> NodeDef:
        made = NodeDef(name=name, op=op, input=list(inputs))
        for key, value in attrs.items():
            made.attr[key].CopyFrom(tf.compat.v1.AttrValue(**value))
        return made

    def const(name: str, value: Any, dtype: Any) -> NodeDef:
        return node(
            name, "Const", dtype={"type": dtype.as_datatype_enum}, value={"tensor": tf.make_tensor_proto(value, dtype)}
        )

    f32, i32 = {"type": tf.float32.as_datatype_enum}, {"type": tf.int32.as_datatype_enum}
    return [
        node("x", "Placeholder", dtype=f32, shape={"shape": tf.TensorShape([]).as_proto()}),
        const("serialized", serialized, tf.string),
        node("parsed", "ParseTensor", "serialized", out_type=f32),
        node("rank", "Rank", "parsed", T=f32),
        const("zero", 0, tf.int32),
        const("one", 1, tf.int32),
        node("axes", "Range", "zero", "rank", "one", Tidx=i32),
        node("sum", "Sum", "parsed", "axes", T=f32, Tidx=i32, keep_dims={"b": False}),
        node("add", "AddV2", "x", "sum", T=f32),
        node("y", "Identity", "add", T=f32),
    ]


MEMORY_BOMB_ENDINGS = {
    # folding keeps what it cannot afford; the model itself needs 3.6 GB, and runs within the limits
    "parse-tensor": (0, ""),
    # the original graph cannot allocate 16 GB: written, not verified
    "ragged-range": (4, "the original graph does not run on these inputs"),
    # TensorFlow aborts on a 10 GB allocation, in folding's child and then in verification's: the model is at fault
    "as-string": (2, "verification (running the original graph): crashed with SIGABRT"),
    # each Fill is under max-bytes, together they pass max-growth: most are kept, the run ends well
    "fills": (0, ""),
    "zlib": (0, ""),
    "big-string": (0, ""),
}
"""How each memory bomb's run must end: exit code and the message of its one line."""


def _small(folder: Path, name: str = "model.pbtxt") -> str:
    (folder / name).write_text(SMALL)
    return name


def _binary(folder: Path, graph_def: GraphDef, name: str = "model.pb") -> str:
    (folder / name).write_bytes(graph_def.SerializeToString())
    return name


def _npy_with_header(header: bytes, payload: bytes = b"") -> bytes:
    """A `.npy` (version 2) with this header dict text, padded as numpy pads it."""
    header += b" " * (63 - (len(header) + 12) % 64) + b"\n"
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header + payload


def _fifo(folder: Path, name: str) -> str:
    os.mkfifo(folder / name)
    return name


def nested_pbtxt(depth: int) -> str:
    """A text GraphDef whose one attr nests `depth` function attrs: parsers that recurse run out of stack."""
    opening = 'func { name: "f" attr { key: "a" value { ' * depth
    return f'node {{ name: "x" op: "Const" attr {{ key: "value" value {{ {opening}{"} } }" * depth} }} }} }}\n'


def _checkpoint_outside(folder: Path, relative: bool) -> list[str]:
    """A model folder whose `checkpoint` state file names a checkpoint outside it (written with TensorFlow)."""
    from optimizer._tf import tensorflow

    tf = tensorflow()
    outside = folder / "elsewhere"
    prefix = tf.train.Checkpoint(v=tf.Variable([1.0, 2.0])).write(str(outside / "secret"))
    model = folder / "model"
    model.mkdir()
    target = "../elsewhere/secret" if relative else prefix
    (model / "checkpoint").write_text(f'model_checkpoint_path: "{target}"\n')
    _small(model)
    return ["model/model.pbtxt", "--checkpoint", "model", "-o", "out.pb"]


def _batch_collision(folder: Path) -> list[str]:
    for sub in ("a/b", "c/b"):
        (folder / sub).mkdir(parents=True)
        _small(folder / sub, "m.pbtxt")
    _small(folder, "b_m.pbtxt")
    return ["a/b/m.pbtxt", "c/b/m.pbtxt", "b_m.pbtxt", "-o", "out/"]


def _linked(folder: Path, target: str, link: str) -> str:
    os.symlink(target, folder / link)
    return link


def _memory_bomb_run(kind: str) -> Callable[[Path], list[str]]:
    return lambda folder: [_binary(folder, memory_bomb(kind)), "-o", "out.pb"]


def _recursive_run(kind: str) -> Callable[[Path], list[str]]:
    return lambda folder: [_binary(folder, recursive_library(kind)), "-o", "out.pb"]


def _placeholder_run(dtype: str) -> Callable[[Path], list[str]]:
    text = SMALL.replace("DT_FLOAT", dtype).replace('op: "Neg"', 'op: "Identity"')
    return lambda folder: [_write(folder / "model.pbtxt", text.encode()), "-o", "out.pb"]


def _empty_folder_run(folder: Path) -> list[str]:
    (folder / "m").mkdir()
    return ["m", "-o", "out.pb"]


SCENARIOS: list[Scenario] = [
    *(
        Scenario(
            f"memory-bomb-{kind}",
            _memory_bomb_run(kind),
            MEMORY_BOMB_ENDINGS[kind][0],
            MEMORY_BOMB_ENDINGS[kind][1],
            ("out.pb",) if MEMORY_BOMB_ENDINGS[kind][0] in (0, 4) else (),
        )
        for kind in MEMORY_BOMBS
    ),
    *(
        Scenario(
            f"recursive-{kind}",
            _recursive_run(kind),
            2,
            "the function library is recursive (f -> ",
        )
        for kind in RECURSION_KINDS
    ),
    Scenario(
        "call-chain-3000", lambda f: [_binary(f, call_chain(3000)), "-o", "out.pb", "--no-verify"], 0, "", ("out.pb",)
    ),
    Scenario("call-chain-100", lambda f: [_binary(f, call_chain(100)), "-o", "out.pb"], 0, "", ("out.pb",)),
    Scenario("fan-out-40", lambda f: [_binary(f, fan_out_tree(40)), "-o", "out.pb", "--no-verify"], 0, "", ("out.pb",)),
    Scenario("output-is-input", lambda f: [_small(f), "-o", "model.pbtxt"], 2, "would overwrite an input"),
    Scenario(
        "output-links-to-input",
        lambda f: [_small(f), "-o", _linked(f, "model.pbtxt", "out.pbtxt")],
        2,
        "would overwrite an input",
    ),
    Scenario(
        "report-json-is-input",
        lambda f: [_small(f), "-o", "out.pb", "--report-json", "model.pbtxt"],
        2,
        "would overwrite an input",
    ),
    Scenario(
        "report-json-links-to-input",
        lambda f: [_small(f), "-o", "out.pb", "--report-json", _linked(f, "model.pbtxt", "r.json")],
        2,
        "would overwrite an input",
    ),
    Scenario(
        "output-over-input-data",
        lambda f: [
            _small(f),
            "--input-data",
            "x="
            + _write(
                f / "x.npy", _npy_with_header(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", bytes(8))
            ),
            "-o",
            "x.npy",
        ],
        2,
        "would overwrite an input",
    ),
    Scenario("output-dev-null", lambda f: [_small(f), "-o", "/dev/null"], 2, "it is a character device"),
    Scenario("model-fifo", lambda f: [_fifo(f, "model.pb"), "-o", "out.pb"], 2, "is a named pipe (FIFO)"),
    Scenario("model-dev-zero", lambda f: ["/dev/zero", "-o", "out.pb"], 2, "is a character device"),
    Scenario(
        "input-data-fifo",
        lambda f: [_small(f), "--input-data", "x=" + _fifo(f, "x.npy"), "-o", "out.pb"],
        2,
        "is a named pipe (FIFO)",
    ),
    Scenario(
        "input-data-dev-zero",
        lambda f: [_small(f), "--input-data", "x=/dev/zero", "-o", "out.pb"],
        2,
        "character device",
    ),
    Scenario("checkpoint-state-absolute", lambda f: _checkpoint_outside(f, relative=False), 2, "outside its folder"),
    Scenario("checkpoint-state-climbs", lambda f: _checkpoint_outside(f, relative=True), 2, "outside its folder"),
    Scenario("batch-collision", _batch_collision, 2, "batch outputs collide"),
    Scenario(
        "batch-output-is-input",
        lambda f: [_small(f, "a.pbtxt"), _small(f, "b.pbtxt"), "-o", "./", "--format", "pbtxt"],
        2,
        "would overwrite an input",
    ),
    Scenario(
        "dump-dir-is-a-file",
        lambda f: [_small(f), "-o", "out.pb", "--dump-dir", _write(f / "notes.txt", b"notes")],
        2,
        "--dump-dir must be a folder",
    ),
    Scenario(
        "nested-pbtxt",
        lambda f: [_write(f / "deep.pbtxt", nested_pbtxt(5000).encode()), "-o", "out.pb"],
        2,
        "too deeply",
    ),
    Scenario(
        "npy-huge-header",
        lambda f: [
            _small(f),
            "--input-data",
            "x="
            + _write(
                f / "x.npy",
                _npy_with_header(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }" + b" " * 200_000),
            ),
            "-o",
            "out.pb",
        ],
        2,
        "not a readable .npy file",
    ),
    Scenario(
        "npy-huge-shape",
        lambda f: [
            _small(f),
            "--input-data",
            "x="
            + _write(
                f / "x.npy",
                _npy_with_header(
                    b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 1000), }", bytes(16)
                ),
            ),
            "-o",
            "out.pb",
        ],
        2,
        "declares shape [100000, 100000, 1000]",
    ),
    Scenario("input-range-inf", lambda f: [_small(f), "--input-range", "x=inf,1", "-o", "out.pb"], 2, "finite"),
    Scenario("input-range-to-inf", lambda f: [_small(f), "--input-range", "x=0,inf", "-o", "out.pb"], 2, "finite"),
    *(
        Scenario(
            f"placeholder-{dtype.lower()}",
            _placeholder_run(dtype),
            4,  # written, not verified (issue 18): no value of such a type can be made up
            f"is a {dtype[3:].lower()}, of which no value can be made up",
            ("out.pb",),
        )
        for dtype in ("DT_VARIANT", "DT_QINT8")
    ),
]


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return path.name


# ----- more whole runs: malformed files, option abuse, hostile checkpoints and SavedModels, huge shapes, secrets ---

SECRET_NAME = "secret.txt"
"""Planted by the runner next to the model's folder (`../secret.txt` from the run): no output may ever hold it."""


def _graph_def_bytes() -> bytes:
    from google.protobuf import text_format

    return text_format.Parse(SMALL, GraphDef()).SerializeToString()


def _checkpoint(folder: Path, damage: str) -> list[str]:
    """A model with a checkpoint in its folder, damaged: `index` truncated, `data` shard missing, `state` garbage."""
    from optimizer._tf import tensorflow

    tf = tensorflow()
    prefix = tf.train.Checkpoint(v=tf.Variable([1.0, 2.0])).write(str(folder / "ckpt" / "model"))
    if damage == "index":
        index = Path(prefix + ".index")
        index.write_bytes(index.read_bytes()[:20])
    elif damage == "data":
        for shard in (folder / "ckpt").glob("model.data-*"):
            shard.unlink()
    else:
        (folder / "ckpt" / "checkpoint").write_bytes(b"\xff\xfe not a state file {{{")
    _small(folder)
    return ["model.pbtxt", "--checkpoint", "ckpt" if damage == "state" else prefix, "-o", "out.pb"]


def _saved_model(folder: Path, content: bytes | None) -> list[str]:
    (folder / "sm").mkdir()
    if content is not None:
        _write(folder / "sm" / "saved_model.pb", content)
    return ["sm", "-o", "out.pb"]


def _with_small(*args: str) -> Callable[[Path], list[str]]:
    return lambda folder: [_small(folder), *args]


SHORT_CONTENT = (
    'node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } }'
    ' attr { key: "shape" value { shape { dim { size: 4 } } } } }\n'
    'node { name: "s" op: "Const" attr { key: "dtype" value { type: DT_INT32 } } attr { key: "value" value { tensor {'
    ' dtype: DT_INT32 tensor_shape { dim { size: 2 } } tensor_content: "\\002\\000\\000\\000" } } } }\n'
    'node { name: "y" op: "Reshape" input: "x" input: "s" attr { key: "T" value { type: DT_FLOAT } }'
    ' attr { key: "Tshape" value { type: DT_INT32 } } }\n'
)
"""A `Reshape` whose shape constant holds 4 bytes for its 2 int32s: TensorFlow refuses the import (and its C++ log
complains on stderr, unless silenced)."""

MORE_SCENARIOS: list[Scenario] = [
    Scenario("empty-pb", lambda f: [_write(f / "model.pb", b""), "-o", "out.pb"], 2, "file is empty"),
    Scenario(
        "random-pb",
        lambda f: [_write(f / "model.pb", bytes(range(256)) * 8), "-o", "out.pb"],
        2,
        "truncated or corrupt",
    ),
    Scenario(
        "truncated-pb",
        lambda f: [_write(f / "model.pb", _graph_def_bytes()[:-7]), "-o", "out.pb"],
        2,
        "truncated or corrupt",
    ),
    Scenario(
        "pbtxt-syntax", lambda f: [_write(f / "m.pbtxt", b"node { name: "), "-o", "out.pb"], 2, "not a text GraphDef"
    ),
    Scenario(
        "pbtxt-unknown-field",
        lambda f: [_write(f / "m.pbtxt", b"nodes { }"), "-o", "out.pb"],
        2,
        'has no field named "nodes"',
    ),
    Scenario(
        "pbtxt-binary-garbage",
        lambda f: [_write(f / "m.pbtxt", b"\xff\x00\xfe" * 50), "-o", "out.pb"],
        2,
        "truncated or corrupt",
    ),
    Scenario("missing-model", lambda f: ["nothing.pb", "-o", "out.pb"], 2, "No such file"),
    Scenario("empty-folder-model", _empty_folder_run, 2, "is a folder"),
    Scenario("model-is-the-secret", lambda f: ["../" + SECRET_NAME, "-o", "out.pb"], 2, "not a text GraphDef"),
    Scenario(
        "model-links-to-secret",
        lambda f: [_linked(f, "../" + SECRET_NAME, "m.pb"), "-o", "out.pb"],
        2,
        "not a text GraphDef",
    ),
    Scenario(
        "input-data-is-the-secret",
        _with_small("--input-data", "x=../" + SECRET_NAME, "-o", "out.pb"),
        2,
        "not a readable .npy file",
    ),
    Scenario("unknown-pass", _with_small("--passes", "nosuch", "-o", "out.pb"), 2, "unknown pass 'nosuch'"),
    Scenario("empty-pass-list", _with_small("--passes", ",,", "-o", "out.pb"), 2, "cannot read element"),
    Scenario("unknown-format", _with_small("--format", "xml", "-o", "out.pb"), 2, "'xml' is not one of"),
    Scenario("unknown-target", _with_small("--target", "toaster", "-o", "out.pb"), 2, "unknown target"),
    Scenario(
        "negative-samples",
        _with_small("--verify-samples", "-1", "-o", "out.pb"),
        2,
        "--verify-samples must be at least 1",
    ),
    Scenario("nan-rtol", _with_small("--rtol", "nan", "-o", "out.pb"), 2, "must be a finite number"),
    Scenario("zero-jobs", _with_small("--jobs", "0", "-o", "out.pb"), 0, "", ("out.pb",)),
    Scenario(
        "unknown-output-node", _with_small("--outputs", "nosuch", "-o", "out.pb"), 2, "output 'nosuch' names no node"
    ),
    Scenario(
        "unknown-input-node", _with_small("--inputs", "nosuch", "-o", "out.pb"), 2, "input 'nosuch' names no node"
    ),
    Scenario("bad-input-shape", _with_small("--input-shape", "x=a,b", "-o", "out.pb"), 2, "write name:dims"),
    Scenario(
        "signature-on-graph-def",
        _with_small("--signature", "serving_default", "-o", "out.pb"),
        2,
        "apply only to SavedModel",
    ),
    Scenario(
        "missing-checkpoint", _with_small("--checkpoint", "nowhere/model", "-o", "out.pb"), 2, "no checkpoint here"
    ),
    Scenario(
        "report-json-in-missing-folder", _with_small("-o", "out.pb", "--report-json", "no/r.json"), 2, "does not exist"
    ),
    Scenario("output-in-missing-folder", _with_small("-o", "no/out.pb"), 2, "does not exist"),
    Scenario("output-is-the-input-folder", lambda f: [_small(f), "-o", "."], 0, "", ("model.pb",)),
    Scenario(
        "dump-dir-is-the-input",
        _with_small("-o", "out.pb", "--dump-dir", "model.pbtxt"),
        2,
        "--dump-dir must be a folder",
    ),
    Scenario("explain-unknown-pass", lambda f: ["--explain", "nosuch"], 2, "unknown pass 'nosuch'"),
    Scenario("checkpoint-truncated-index", lambda f: _checkpoint(f, "index"), 2, "not a readable checkpoint"),
    Scenario("unread-checkpoint-missing-shard", lambda f: _checkpoint(f, "data"), 0, "", ("out.pb",)),
    Scenario("unread-checkpoint-state-garbage", lambda f: _checkpoint(f, "state"), 0, "", ("out.pb",)),
    Scenario("saved-model-random", lambda f: _saved_model(f, bytes(range(256)) * 4), 2, "the SavedModel is corrupt"),
    Scenario("saved-model-empty-file", lambda f: _saved_model(f, b""), 2, "has no meta graph tagged 'serve'"),
    Scenario("saved-model-no-file", lambda f: _saved_model(f, None), 2, "is a folder"),
    Scenario(
        "placeholder-huge-shape",
        lambda f: [
            _write(f / "m.pbtxt", SMALL.replace("size: 2", "size: 1000000000000").encode()),
            "-o",
            "out.pb",
        ],
        4,  # written, not verified: no random input that large is made
        "would need",
        ("out.pb",),
    ),
    Scenario("fan-out-60", lambda f: [_binary(f, fan_out_tree(60)), "-o", "out.pb", "--no-verify"], 0, "", ("out.pb",)),
    Scenario(  # found by scripts/fuzz.py: TensorFlow's C++ log printed "Input size was 4 and expected 8" lines too
        "constant-content-too-short",
        lambda f: [_write(f / "m.pbtxt", SHORT_CONTENT.encode()), "-o", "out.pb"],
        2,
        "constant 's' holds 4 bytes of content where its shape [2] needs 8",
    ),
]
SCENARIOS.extend(MORE_SCENARIOS)
