"""`fold-batch-norms`: fold batch normalization, and any per-channel affine tail, into the weights and one bias of
the convolution or matmul before it.

Contract
- A layer is a `Conv2D`, `DepthwiseConv2dNative`, `Conv3D` or `MatMul` whose weights (input 1) are a `Const` that
  only this layer reads (every data consumer of the `Const` is checked; a weight shared with another node is never
  changed) and that is not a graph input or output; float32 or float64; convolutions in `NHWC`/`NDHWC` (channels
  last) or `NCHW`/`NCDHW` (channels first); a `MatMul` whose input 0 is the data (`transpose_b` understood).
- Its tail is the longest chain after it in which every value but the last has exactly one consumer, no control
  consumer and is not a graph output, and every step is affine per output channel:
  `BiasAdd(v, b)`; `Add`/`AddV2(v, b)` or `(b, v)`; `Sub(v, b)` or `Sub(b, v)`; `Mul(v, s)` or `(s, v)`;
  `RealDiv(v, s)`; and `FusedBatchNorm`/`V2`/`V3` in inference mode (`is_training` false: a training-mode batch
  norm normalizes with the batch's statistics, which no constant can fold) whose outputs 1..5 nothing reads.
  Operands are constants (`Const`, or a small constant subgraph such as Keras 3's `Rsqrt(var + eps) * gamma`,
  computed with numpy) that broadcast along the channel axis only: shape `[C]`, `[1, 1, 1, C]`, `[C, 1, 1]`
  for channels first, or a scalar; so the rank-1 or broadcastable scales of decomposed batch norm match, in
  either operand order, `Add` as well as `AddV2`.
- With the tail computing `v -> v * s + b` per channel (a batch norm contributes `s = gamma / sqrt(var + eps)` and
  `b = beta - mean * s`), the fold is
      w' = w * gamma / sqrt(var + eps)              (per output channel: `w * s`)
      b' = (b - mean) * gamma / sqrt(var + eps) + beta   (in general: the tail applied to the old bias)
  computed in float64 and stored in the layer's dtype. The weight `Const` is updated in place (name kept); the
  last node of the tail becomes `BiasAdd(layer, b')` under its own name, so a graph output keeps its name; when
  `b'` is zero, the last node is forwarded to the layer instead (an `Identity` if it
  is a graph output). The new bias `Const` keeps the control inputs of the constants it replaces (its frame).
  A depthwise filter `[H, W, Cin, M]` scales output channel `c * M + m` by `s[c * M + m]`.
- A tail that is already one `BiasAdd` of a `Const` is left as it is.
- An inference-mode `FusedBatchNorm*` that cannot be folded (its input is no foldable layer: a concat, a shared
  weight, an activation) becomes `Mul(x, s)` and an `AddV2` of `b` under the batch norm's name, with `s` and `b` as
  above, shaped for its data format: no `FusedBatchNorm*` stays in an inference graph. Half-precision batch norms
  and those whose side outputs are read stay as they are.
- What the fold leaves unused (the tail's intermediate nodes, the batch-norm constants and their `Rsqrt`
  subgraphs) is removed; nothing else is. Prerequisite: `identity` (weights read through an `Identity` are not
  matched).
"""

from __future__ import annotations

from dataclasses import dataclass

from optimizer import Graph, Pass, PassContext
from optimizer.layer_folding import BATCH_NORM_OPS, LAYER_OPS, decompose_batch_norm, fold_into_layer


@dataclass(frozen=True)
class FoldBatchNorms(Pass):
    """Fold batch norms and per-channel affine tails into the preceding layer; see the module docstring."""

    name = "fold-batch-norms"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        for name in graph.nodes_of(LAYER_OPS):
            if name in graph and graph.op(name) in LAYER_OPS:
                fold_into_layer(graph, ctx, name)
        for name in graph.nodes_of(BATCH_NORM_OPS):
            if name in graph and graph.op(name) in BATCH_NORM_OPS:
                decompose_batch_norm(graph, ctx, name)
