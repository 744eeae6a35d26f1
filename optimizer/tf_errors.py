"""TensorFlow's error messages as one line that keeps TensorFlow's reason.

A run-time error's text is mostly frame: `Graph execution error:`, where the failing node was defined (a Python
traceback), `Node: 'name'`, then the kernel's message, then `[[{{node name}}]]` lines, the innermost first (a node
inside a function body, then the call that ran it). `describe` keeps what says what went wrong:

    node 'reshape' (Reshape): Input to reshape is a tensor with 10 values, but the requested shape has 12
    node 'Reshape' (Reshape) in function call 'PartitionedCall': Input to reshape is a tensor with 10 values, ...

The node is the innermost `[[...]]` frame's, else the `Node:` line's, else the error's `op`; its op type is the
`op`'s when that is the node, else found in `graph_def` (the graph that ran, function bodies included) when the
caller gives it. Of several
root errors the first is kept. An error that is not a run-time one (an import error, a converter's, Python's) keeps
its own text, its lines joined. The result is never empty and at most `limit` characters: a longer kernel message is
cut in the middle (`...`), so that both its start and its end (often the shapes or values) remain.
"""

from __future__ import annotations

import re
from typing import Any

from optimizer.protos import GraphDef

LIMIT = 500
"""The longest one-line description `describe` returns by default."""

_FRAME = re.compile(r"^\[\[(?P<body>.*)\]\]$")
_FRAME_NODE = re.compile(r"\{\{node (?P<name>[^}]+)\}\}")
_NODE_LINE = re.compile(r"^Node: '(?P<name>.*)'$")
_ROOT_ERROR = re.compile(r"^\((?P<index>\d+)\) (?:[A-Z_]+: )?(?P<rest>.*)$")
_FRAMING = (
    "Graph execution error",
    "Detected at node",
    "Traceback (most recent call last)",
    "in user code:",
    "Additional GRPC error information",
    "Function call stack:",
)
_COUNTS = re.compile(r"^\d+ (root error\(s\) found|successful operations|derived errors ignored)\.?$")


def _parse(text: str) -> tuple[list[str], list[str], str | None]:
    """The kernel message's lines, the `[[...]]` frames (innermost first) and the `Node:` name of the first error."""
    message: list[str] = []
    frames: list[str] = []
    node = None
    in_traceback = False
    for raw in text.splitlines():
        line = raw.strip()
        root = _ROOT_ERROR.match(line)
        if root and int(root.group("index")) > 0:
            break  # the first root error is the one reported
        if root:
            line = root.group("rest").strip()
        named = _NODE_LINE.match(line)
        frame = _FRAME.match(line)
        if named:
            node, in_traceback = named.group("name"), False
        elif frame:
            found = _FRAME_NODE.findall(frame.group("body"))
            frames.append(found[-1] if found else frame.group("body").strip("{} "))
        elif line.startswith(_FRAMING) or _COUNTS.match(line):
            in_traceback = line.startswith(("Detected at node", "Traceback", "in user code:"))
        elif line and not in_traceback and not line.startswith('File "'):
            message.append(line)
    return message, frames, node


def _op_type(graph_def: GraphDef | None, name: str, nested: bool) -> str | None:
    """The op of the node called `name`: in `graph_def`'s nodes unless `nested`, else (or when none is called so)
    in its function bodies, when exactly one op answers."""
    if graph_def is None:
        return None
    ops = set() if nested else {node.op for node in graph_def.node if node.name == name}
    if not ops:
        ops = {node.op for function in graph_def.library.function for node in function.node_def if node.name == name}
    return ops.pop() if len(ops) == 1 else None


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = max(limit * 2 // 3, 1)
    tail = max(limit - head - 5, 0)
    return f"{text[:head].rstrip()} ... {text[len(text) - tail :].lstrip()}" if tail else text[:limit]


def describe(error: BaseException, graph_def: GraphDef | None = None, limit: int = LIMIT) -> str:
    """One line saying why TensorFlow failed: the failing node, its op and the kernel's message (see the module
    docstring); `graph_def` is the graph that ran, used to name the op when the error does not carry it."""
    text = getattr(error, "message", None) or str(error)
    message, frames, named = _parse(text)
    op: Any = getattr(error, "op", None)
    node = frames[0] if frames else named or (op.name if op is not None else None)  # the innermost node failed
    calls = [frame for frame in frames[1:] if frame != node]
    everything = " ".join(line.strip() for line in text.splitlines() if line.strip())
    reason = " ".join(message) or everything or type(error).__name__
    if node is None:
        return _shorten(reason, limit)
    op_type = op.type if op is not None and op.name == node else _op_type(graph_def, node, nested=bool(calls))
    where = f"node {node!r}" + (f" ({op_type})" if op_type else "")
    where += "".join(f" in function call {call!r}" for call in calls)
    return f"{where}: {_shorten(reason, max(limit - len(where) - 2, 40))}"
