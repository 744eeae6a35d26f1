"""Hypothesis strategies: random, valid, runnable TensorFlow GraphDefs with their inputs and outputs.

`graphs()` builds a random DAG with `tf.compat.v1` inside a fresh `tf.Graph`: float32 values of one shape
(`SHAPE`) flow through element-wise unary and binary ops, forwarding ops (Identity chains, IdentityN, StopGradient,
Snapshot), `Cast` round trips, constants, `PlaceholderWithDefault`, control dependencies, `NoOp` groups,
`CheckNumerics`, `Assert` (raw, or guarded by `tf.debugging.Assert`), `MatMul`, `Conv2D` and
`DepthwiseConv2dNative` with `BiasAdd` (through `Reshape`), `FusedBatchNormV3`, `Transpose`, `ConcatV2` with `Split`
or `StridedSlice`, keep-dims reductions with `ExpandDims`/`Squeeze`, v1 `tf.cond` (Switch/Merge) and v2 `tf.cond`
(`If`/`StatelessIf` with branch functions) on constant, placeholder, defaulted or computed predicates, and stateful
random ops (`RANDOM_STEPS`, mostly unseeded; one inside a called `tf.function`). Values that are never chosen as
outputs make dead branches.

Every graph runs: the generator tracks a bound on each value's magnitude and squashes a value with `Tanh` before
it could overflow, so `CheckNumerics` never fires, and each `Assert` checks a bound that holds by construction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

import optimizer
from optimizer._tf import tensorflow
from optimizer.ir import Tensor
from optimizer.protos import GraphDef
from optimizer.variables import VariableSpec, VariableValues

tf = tensorflow()

SHAPE = (2, 3)
BOUND_LIMIT = 1e4  # a value that could grow past this is squashed by Tanh first

UNARY_OPS: dict[str, Callable[[Any], Any]] = {
    "Relu": lambda x: tf.raw_ops.Relu(features=x),
    "Tanh": lambda x: tf.raw_ops.Tanh(x=x),
    "Neg": lambda x: tf.raw_ops.Neg(x=x),
    "Square": lambda x: tf.raw_ops.Square(x=x),
    "Identity": lambda x: tf.raw_ops.Identity(input=x),
    "StopGradient": lambda x: tf.raw_ops.StopGradient(input=x),
    "Snapshot": lambda x: tf.raw_ops.Snapshot(input=x),
    "Sigmoid": lambda x: tf.raw_ops.Sigmoid(x=x),
    "Abs": lambda x: tf.raw_ops.Abs(x=x),
    "Cast": lambda x: tf.raw_ops.Cast(x=tf.raw_ops.Cast(x=x, DstT=tf.float64), DstT=tf.float32),
}
BINARY_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "Add": lambda x, y: tf.raw_ops.Add(x=x, y=y),
    "AddV2": lambda x, y: tf.raw_ops.AddV2(x=x, y=y),
    "Sub": lambda x, y: tf.raw_ops.Sub(x=x, y=y),
    "Mul": lambda x, y: tf.raw_ops.Mul(x=x, y=y),
    "Maximum": lambda x, y: tf.raw_ops.Maximum(x=x, y=y),
    "Minimum": lambda x, y: tf.raw_ops.Minimum(x=x, y=y),
}
REDUCTIONS: dict[str, Callable[[Any], Any]] = {
    "Sum": lambda x: tf.raw_ops.Sum(input=x, axis=[1], keep_dims=True),
    "Mean": lambda x: tf.raw_ops.Mean(input=x, axis=[1], keep_dims=True),
    "Max": lambda x: tf.raw_ops.Max(input=x, axis=[1], keep_dims=True),
}


def _unary_bound(op: str, bound: float) -> float:
    return 1.0 if op in ("Tanh", "Sigmoid") else bound * bound if op == "Square" else bound


def _binary_bound(op: str, left: float, right: float) -> float:
    return left * right if op == "Mul" else max(left, right) if op in ("Maximum", "Minimum") else left + right


@dataclass(frozen=True)
class GeneratedGraph:
    """A generated GraphDef with its interface as `name:port` strings (inputs in feed order)."""

    graph_def: GraphDef
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def input_tensors(self) -> list[Tensor]:
        return [Tensor.parse(name) for name in self.inputs]

    @property
    def output_tensors(self) -> list[Tensor]:
        return [Tensor.parse(name) for name in self.outputs]

    def copy(self) -> GraphDef:
        """A fresh copy of the GraphDef (lifting consumes the one it is given)."""
        graph_def = GraphDef()
        graph_def.CopyFrom(self.graph_def)
        return graph_def

    def lift(self) -> optimizer.Graph:
        """A new IR Graph of a copy of the GraphDef, with the inputs and outputs declared."""
        return optimizer.Graph.from_graph_def(self.copy(), self.input_tensors, self.output_tensors)


@contextlib.contextmanager
def v1_control_flow() -> Iterator[None]:
    """Build `tf.cond` as Switch/Merge (TF1 control flow) inside the block; restore the setting after."""
    was_v2 = tf.compat.v1.control_flow_v2_enabled()
    tf.compat.v1.disable_control_flow_v2()
    try:
        yield
    finally:
        if was_v2:
            tf.compat.v1.enable_control_flow_v2()


class _Builder:
    """The state of one generated graph: the pool of float values (tensor, magnitude bound) and the inputs."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw
        self.pool: list[tuple[Any, float]] = []
        self.inputs: list[Any] = []

    def pick(self) -> tuple[Any, float]:
        """A value of the pool: counted from the oldest or from the newest (which makes deep chains)."""
        index = self.draw(st.integers(0, len(self.pool) - 1))
        return self.pool[-1 - index if self.draw(st.booleans()) else index]

    def add(self, tensor: Any, bound: float) -> None:
        if bound > BOUND_LIMIT:
            tensor, bound = tf.raw_ops.Tanh(x=tensor), 1.0
        self.pool.append((tensor, bound))

    def constant(self) -> tuple[Any, float]:
        value = self.draw(st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]))
        array = np.full(SHAPE, value, dtype=np.float32)
        if self.draw(st.booleans()):
            array = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE) / 4.0 - value
        return tf.constant(array), float(np.abs(array).max())

    # ----- one step each: append to the pool -------------------------------------------------------------------

    def step_unary(self) -> None:
        op = self.draw(st.sampled_from(sorted(UNARY_OPS)))
        value, bound = self.pick()
        self.add(UNARY_OPS[op](value), _unary_bound(op, bound))

    def step_binary(self) -> None:
        op = self.draw(st.sampled_from(sorted(BINARY_OPS)))
        (left, left_bound), (right, right_bound) = self.pick(), self.pick()
        self.add(BINARY_OPS[op](left, right), _binary_bound(op, left_bound, right_bound))

    def step_constant(self) -> None:
        self.add(*self.constant())

    def step_identity_chain(self) -> None:
        value, bound = self.pick()
        for _ in range(self.draw(st.integers(1, 3))):
            value = tf.identity(value)
        self.add(value, bound)

    def step_identity_n(self) -> None:
        picked = [self.pick() for _ in range(self.draw(st.integers(1, 3)))]
        outputs = tf.raw_ops.IdentityN(input=[value for value, _ in picked])
        for output, (_, bound) in zip(outputs, picked, strict=True):
            self.add(output, bound)

    def step_default(self) -> None:
        """A PlaceholderWithDefault over a constant or a computed value; sometimes a declared (fed) input."""
        default, bound = self.constant() if self.draw(st.booleans()) else self.pick()
        value = tf.raw_ops.PlaceholderWithDefault(input=default, shape=SHAPE)
        if self.draw(st.booleans()):
            self.inputs.append(value)
            bound = max(bound, 1.0)
        self.add(value, bound)

    def step_check_numerics(self) -> None:
        value, bound = self.pick()
        self.add(tf.raw_ops.CheckNumerics(tensor=value, message="generated check"), bound)

    def _assert(self) -> Any:
        """An Assert that holds: |x| <= 2 * bound + 1 for a value x of the pool."""
        value, bound = self.pick()
        condition = tf.reduce_all(tf.abs(value) <= 2.0 * bound + 1.0)
        if self.draw(st.booleans()):
            return tf.raw_ops.Assert(condition=condition, data=[value])
        guarded = tf.debugging.Assert(condition, [value])
        guarded.mark_used()  # silence tf_should_use: a dangling check is deliberate
        return guarded

    def step_assert(self) -> None:
        """A value that waits for an Assert through a control edge (or a dangling Assert)."""
        check = self._assert()
        if self.draw(st.booleans()):
            value, bound = self.pick()
            with tf.control_dependencies([check]):
                self.add(tf.identity(value), bound)

    def step_control_dependency(self) -> None:
        """An op with control inputs from other values, a NoOp group, or a check."""
        kind = self.draw(st.sampled_from(["value", "group", "assert"]))
        if kind == "value":
            dependencies = [self.pick()[0].op for _ in range(self.draw(st.integers(1, 2)))]
        elif kind == "group":
            dependencies = [tf.group(*[self.pick()[0] for _ in range(self.draw(st.integers(0, 2)))])]
        else:
            dependencies = [self._assert()]
        with tf.control_dependencies(dependencies):
            if self.draw(st.booleans()):
                self.step_unary()
            else:
                self.step_constant()

    def _predicate(self) -> Any:
        kind = self.draw(st.sampled_from(["constant", "placeholder", "default", "computed"]))
        if kind == "constant":
            return tf.constant(self.draw(st.booleans()))
        if kind == "placeholder":
            predicate = tf.compat.v1.placeholder(tf.bool, [], name="predicate")
            self.inputs.append(predicate)
            return predicate
        if kind == "default":
            return tf.raw_ops.PlaceholderWithDefault(input=tf.constant(self.draw(st.booleans())), shape=[])
        value, _ = self.pick()
        return tf.raw_ops.Greater(x=tf.reduce_sum(value), y=tf.constant(0.0))

    def _branch(self, count: int) -> tuple[Callable[[], list[Any]], list[float]]:
        """A branch body over `count` values captured from the pool (some adding an in-branch constant), and
        the bounds of its results."""
        picked = [self.pick() for _ in range(count)]
        ops = [self.draw(st.sampled_from(["Tanh", "Neg", "Identity", "AddConst", "Relu"])) for _ in picked]

        def body() -> list[Any]:
            return [
                tf.raw_ops.AddV2(x=value, y=tf.constant(1.0)) if op == "AddConst" else UNARY_OPS[op](value)
                for (value, _), op in zip(picked, ops, strict=True)
            ]

        return body, [_unary_bound(op, bound) + 1.0 for (_, bound), op in zip(picked, ops, strict=True)]

    def _weights(self, shape: tuple[int, ...]) -> tuple[Any, float]:
        """A constant of `shape` with small random values, and the sum of their magnitudes' bound."""
        seed = self.draw(st.integers(0, 2**16))
        array = np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape).astype(np.float32)
        return tf.constant(array), float(np.abs(array).sum())

    def step_matmul(self) -> None:
        """x @ W with W [3, 3]: MatMul keeps the shape."""
        value, bound = self.pick()
        weights, total = self._weights((SHAPE[1], SHAPE[1]))
        self.add(tf.raw_ops.MatMul(a=value, b=weights), bound * total)

    def step_convolution(self) -> None:
        """Reshape to NHWC [1, 2, 3, 1], Conv2D or DepthwiseConv2dNative (SAME), optional BiasAdd, reshape back."""
        value, bound = self.pick()
        image = tf.raw_ops.Reshape(tensor=value, shape=[1, *SHAPE, 1])
        kernel, total = self._weights((2, 2, 1, 1))
        if self.draw(st.booleans()):
            image = tf.raw_ops.Conv2D(input=image, filter=kernel, strides=[1, 1, 1, 1], padding="SAME")
        else:
            image = tf.raw_ops.DepthwiseConv2dNative(input=image, filter=kernel, strides=[1, 1, 1, 1], padding="SAME")
        bound *= total
        if self.draw(st.booleans()):
            image = tf.raw_ops.BiasAdd(value=image, bias=tf.constant([0.5]))
            bound += 0.5
        self.add(tf.raw_ops.Reshape(tensor=image, shape=SHAPE), bound)

    def step_batch_norm(self) -> None:
        """FusedBatchNormV3 in inference mode over [1, 1, 2, 3] (channels last, C = 3)."""
        value, bound = self.pick()
        rng = np.random.default_rng(self.draw(st.integers(0, 2**16)))
        scale, offset, mean = (rng.uniform(-1.0, 1.0, 3).astype(np.float32) for _ in range(3))
        variance = rng.uniform(0.5, 1.5, 3).astype(np.float32)
        normalized = tf.raw_ops.FusedBatchNormV3(
            x=tf.raw_ops.Reshape(tensor=value, shape=[1, 1, *SHAPE]),
            scale=scale,
            offset=offset,
            mean=mean,
            variance=variance,
            is_training=False,
        ).y
        self.add(tf.raw_ops.Reshape(tensor=normalized, shape=SHAPE), 2.0 * (bound + 1.0) + 1.0)

    def step_transpose(self) -> None:
        """Transpose to [3, 2], then back, or reshaped to [2, 3] (a different function: both are fine)."""
        value, bound = self.pick()
        flipped = tf.raw_ops.Transpose(x=value, perm=[1, 0])
        if self.draw(st.booleans()):
            self.add(tf.raw_ops.Transpose(x=flipped, perm=[1, 0]), bound)
        else:
            self.add(tf.raw_ops.Reshape(tensor=flipped, shape=SHAPE), bound)

    def step_concat_split(self) -> None:
        """ConcatV2 of two values to [2, 6], then Split back into halves or a StridedSlice of every other column."""
        (left, left_bound), (right, right_bound) = self.pick(), self.pick()
        joined = tf.raw_ops.ConcatV2(values=[left, right], axis=1)
        bound = max(left_bound, right_bound)
        if self.draw(st.booleans()):
            for half in tf.raw_ops.Split(axis=1, value=joined, num_split=2):
                self.add(half, bound)
        else:
            self.add(joined[:, ::2], bound)

    def step_reduction(self) -> None:
        """A keep-dims reduction over the last axis, broadcast back onto a value, through ExpandDims/Squeeze."""
        op = self.draw(st.sampled_from(sorted(REDUCTIONS)))
        value, bound = self.pick()
        reduced = REDUCTIONS[op](value)
        reduced = tf.raw_ops.Squeeze(input=tf.raw_ops.ExpandDims(input=reduced, axis=0), axis=[0])
        other, other_bound = self.pick()
        self.add(tf.raw_ops.AddV2(x=reduced, y=other), SHAPE[1] * bound + other_bound)

    def step_functional_if(self) -> None:
        """A v2 `tf.cond`: an If/StatelessIf node with branch functions in the library."""
        predicate = self._predicate()
        (then_body, then_bounds), (else_body, else_bounds) = self._branch(1), self._branch(1)
        results = tf.cond(predicate, then_body, else_body)
        for result, then_bound, else_bound in zip(results, then_bounds, else_bounds, strict=True):
            self.add(result, max(then_bound, else_bound))

    def step_cond(self) -> None:
        """A v1 `tf.cond`: Switch/Merge, pivot Identities and control edges into branch constants."""
        predicate = self._predicate()
        count = self.draw(st.integers(1, 2))
        (then_body, then_bounds), (else_body, else_bounds) = self._branch(count), self._branch(count)
        with v1_control_flow():
            results = tf.compat.v1.cond(predicate, then_body, else_body, strict=True)
        for result, then_bound, else_bound in zip(results, then_bounds, else_bounds, strict=True):
            self.add(result, max(then_bound, else_bound))

    def step_random(self) -> None:
        """A stateful random op on a value's path, unseeded (a fresh draw in every session) or with an op seed:
        dropout in training mode (RandomUniform), TruncatedNormal, RandomStandardNormal, ParameterizedTruncatedNormal
        or RandomPoissonV2 noise, RandomShuffle of the rows, Multinomial samples or RandomUniformInt as floats."""
        kind = self.draw(st.sampled_from(sorted(RANDOM_STEPS)))
        seed = self.draw(st.sampled_from([None, None, 7]))
        value, bound = self.pick()
        self.add(*RANDOM_STEPS[kind](value, bound, seed))

    def step_random_function(self) -> None:
        """A `tf.function` call (StatefulPartitionedCall) whose body adds unseeded uniform noise: `inline` renames
        its random op `<call>/random_uniform/RandomUniform`."""
        value, bound = self.pick()

        @tf.function
        def noisy(tensor: Any) -> Any:
            return tensor + tf.random.uniform(SHAPE)

        self.add(noisy(value), bound + 1.0)


RANDOM_STEPS: dict[str, Callable[[Any, float, int | None], tuple[Any, float]]] = {
    "dropout": lambda x, bound, seed: (tf.compat.v1.nn.dropout(x, rate=0.5, seed=seed), 2.0 * bound),
    "truncated_normal": lambda x, bound, seed: (x + tf.random.truncated_normal(SHAPE, seed=seed), bound + 2.0),
    "normal": lambda x, bound, seed: (x + tf.random.normal(SHAPE, seed=seed), bound + 8.0),
    "parameterized": lambda x, bound, seed: (
        x
        * tf.raw_ops.ParameterizedTruncatedNormal(
            shape=[SHAPE[0] * SHAPE[1]], means=0.0, stdevs=1.0, minvals=-1.0, maxvals=1.0, seed=seed or 0
        )[0],
        bound,
    ),
    "poisson": lambda x, bound, seed: (x + tf.random.poisson(SHAPE, 1.0, seed=seed), bound + 30.0),
    "shuffle": lambda x, bound, seed: (tf.random.shuffle(x, seed=seed), bound),
    "multinomial": lambda x, bound, seed: (
        tf.cast(tf.random.categorical(tf.tanh(x), SHAPE[1], seed=seed), tf.float32),
        float(SHAPE[1] - 1),
    ),
    "uniform_int": lambda x, bound, seed: (
        x + tf.cast(tf.random.uniform(SHAPE, 0, 5, dtype=tf.int32, seed=seed), tf.float32),
        bound + 4.0,
    ),
}
"""Random steps: a value and its bound -> (the value through a random op, its bound)."""

STEPS = [
    "unary",
    "unary",
    "binary",
    "binary",
    "constant",
    "identity_chain",
    "identity_n",
    "default",
    "check_numerics",
    "assert",
    "control_dependency",
    "cond",
    "matmul",
    "convolution",
    "batch_norm",
    "transpose",
    "concat_split",
    "reduction",
    "functional_if",
    "random",
    "random_function",
]


@st.composite
def graphs(draw: Callable[[st.SearchStrategy[Any]], Any], max_steps: int = 12) -> GeneratedGraph:
    """A random runnable GraphDef over float32 `SHAPE` placeholders, with its inputs and 1-3 outputs."""
    graph = tf.Graph()
    with graph.as_default():
        builder = _Builder(draw)
        for index in range(draw(st.integers(1, 3))):
            placeholder = tf.compat.v1.placeholder(tf.float32, SHAPE, name=f"x{index}")
            builder.inputs.append(placeholder)
            builder.pool.append((placeholder, 1.0))
        first_computed = len(builder.pool)
        for _ in range(draw(st.integers(1, max_steps))):
            getattr(builder, "step_" + draw(st.sampled_from(STEPS)))()
        if len(builder.pool) == first_computed:
            builder.step_unary()
        candidates = [tensor.name for tensor, _ in builder.pool[first_computed:]]
        # Mostly computed values; now and then a graph input itself is an output.
        if draw(st.integers(0, 9)) == 0:
            candidates += [tensor.name for tensor, _ in builder.pool[:first_computed]]
        outputs = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=3, unique=True))
        inputs = [tensor.name for tensor in builder.inputs]
    return GeneratedGraph(graph.as_graph_def(), tuple(inputs), tuple(outputs))


@dataclass(frozen=True)
class GraphWithVariables:
    """A generated graph some of whose float constants are variables, and the values those variables hold."""

    generated: GeneratedGraph
    values: dict[str, np.ndarray]

    def variable_values(self) -> VariableValues:
        specs = {
            name: VariableSpec(int(tf.as_dtype(value.dtype).as_datatype_enum), value.shape)
            for name, value in self.values.items()
        }
        return VariableValues("generated", specs, lambda name: self.values[name])


def _to_variable(graph_def: GraphDef, index: int, resource: bool) -> tuple[str, np.ndarray]:
    """Make the constant `graph_def.node[index]` a read of a new variable holding its value (a `VarHandleOp` and a
    `ReadVariableOp`, or a ref `VariableV2` and an `Identity`); the read keeps the constant's name and control
    inputs, so no consumer changes. Returns the variable's name and value."""
    node = graph_def.node[index]
    value = tf.make_ndarray(node.attr["value"].tensor)
    dtype, shape = node.attr["dtype"], tf.TensorShape(value.shape).as_proto()
    variable = graph_def.node.add(name=f"{node.name}/variable", op="VarHandleOp" if resource else "VariableV2")
    variable.attr["dtype"].CopyFrom(dtype)
    variable.attr["shape"].shape.CopyFrom(shape)
    variable.attr["shared_name"].s = variable.name.encode() if resource else b""
    controls = [text for text in node.input if text.startswith("^")]
    node.ClearField("attr")
    del node.input[:]
    node.input.extend([variable.name, *controls])
    if resource:
        node.op = "ReadVariableOp"
        node.attr["dtype"].CopyFrom(dtype)
    else:
        node.op = "Identity"
        node.attr["T"].CopyFrom(dtype)
    return variable.name, value


@st.composite
def graphs_with_variables(draw: Callable[[st.SearchStrategy[Any]], Any]) -> GraphWithVariables:
    """A generated graph (`graphs()`) in which each float32 constant of the top-level graph becomes, by a draw, a
    resource variable, a ref variable or stays a constant: a model as a checkpoint holds it, before freezing."""
    generated = draw(graphs())
    graph_def = generated.copy()
    values = {}
    constants = [
        index
        for index, node in enumerate(graph_def.node)
        if node.op == "Const" and node.attr["dtype"].type == tf.float32.as_datatype_enum
    ]
    for index in constants:
        kind = draw(st.sampled_from(["constant", "resource", "ref"]))
        if kind != "constant":
            name, value = _to_variable(graph_def, index, resource=kind == "resource")
            values[name] = value
    return GraphWithVariables(GeneratedGraph(graph_def, generated.inputs, generated.outputs), values)
