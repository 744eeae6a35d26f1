"""Hypothesis properties over generated graphs (`tests/strategies.py`).

- lifting then lowering changes nothing;
- every built-in pass, and the default pipeline: the optimized graph computes the same outputs as the original,
  a run that reports `changed=False` left the GraphDef as it was, and a second run changes nothing; random ops
  are seeded alike, so every output is compared;
- a verification never reports as passed an output it did not compare (random outputs against a runtime that
  cannot be seeded), nor a verification that compared nothing.
The example count comes from the hypothesis profile in `tests/conftest.py` (`ci`: 200, derandomized).
"""

from __future__ import annotations

import pytest
from hypothesis import event, given, settings

import optimizer
from optimizer.graph_io import serialized_chunks
from optimizer.library import referenced_library
from optimizer.protos import GraphDef
from optimizer.registry import BUILTIN_PASSES
from optimizer.variables import variable_leftovers
from optimizer.verify import NOT_RUN, PASSED, session_for, verify, verify_runs
from tests.strategies import GeneratedGraph, GraphWithVariables, graphs, graphs_with_variables

# Each built-in pass alone, and None: the default pipeline as `optimize` runs it (to a fixed point).
PIPELINES = [name for name in optimizer.pass_names() if name in BUILTIN_PASSES] + [None]


def program_size(graph_def: GraphDef) -> int:
    """Nodes of the graph plus those of the library functions it calls: inlining a branch (`fold`) moves nodes
    from the library into the graph, so this, not the graph's node count alone, is what no pass may grow."""
    called = referenced_library(graph_def.node, graph_def.library)
    return len(graph_def.node) + sum(len(function.node_def) for function in called.function)


@given(graphs())
def test_lift_then_lower_is_the_identity(generated: GeneratedGraph) -> None:
    lowered = optimizer.Graph.from_graph_def(generated.copy()).to_graph_def()
    assert lowered == generated.graph_def
    assert b"".join(serialized_chunks(lowered, "pb")) == generated.graph_def.SerializeToString(deterministic=True)
    declared = generated.lift()
    assert declared.to_graph_def() == generated.graph_def
    assert [str(tensor) for tensor in declared.outputs] == list(generated.outputs)


@pytest.mark.parametrize("pipeline", PIPELINES, ids=[name or "default" for name in PIPELINES])
@given(generated=graphs())
def test_pipeline_preserves_outputs_and_is_idempotent(pipeline: str | None, generated: GeneratedGraph) -> None:
    graph = generated.lift()
    first = optimizer.optimize(graph, pipeline)
    optimized = graph.to_graph_def()
    event(f"changed: {first.changed}")  # shown by --hypothesis-show-statistics: the property is not vacuous
    if not first.changed:
        assert optimized == generated.graph_def
    assert program_size(optimized) <= program_size(generated.graph_def)

    second = optimizer.optimize(graph, pipeline)
    assert not second.changed, [record for record in second.records if record.changed]
    assert graph.to_graph_def() == optimized

    result = verify(generated.graph_def, optimized, generated.input_tensors, generated.output_tensors)
    event(f"random ops seeded: {result.random_seeded > 0}")
    assert result.skipped is None, result.skipped
    assert result.random_outputs == []  # every pass keeps each random op matchable, so every output is compared
    assert [check.name for check in result.outputs] == list(generated.outputs)
    assert result.status == PASSED, [check for check in result.outputs if not check.passed]


@pytest.mark.parametrize("pipeline", PIPELINES, ids=[name or "default" for name in PIPELINES])
@settings(max_examples=max(settings().max_examples // 4, 10))
@given(model=graphs_with_variables())
def test_pipelines_verify_on_graphs_with_variables(pipeline: str | None, model: GraphWithVariables) -> None:
    """A model with its weights in variables: every pass alone (the candidate keeps variables, restored with the
    same values as the original's) and the default pipeline (which freezes them) verify."""
    graph = model.generated.lift()
    graph.variables = model.variable_values()
    optimizer.optimize(graph, pipeline)
    optimized = graph.to_graph_def()
    event(f"variables: {len(model.values)}, left: {len(variable_leftovers(optimized)) > 0}")
    result = verify(
        model.generated.graph_def,
        optimized,
        model.generated.input_tensors,
        model.generated.output_tensors,
        variables=model.variable_values(),
    )
    assert result.status == PASSED, result.skipped or [check for check in result.outputs if not check.passed]


@given(generated=graphs())
def test_a_verification_never_calls_passed_what_it_did_not_compare(generated: GeneratedGraph) -> None:
    """Against a runtime that cannot be seeded (here: the graph in a second, unseeded session), the outputs reached
    by random ops are not compared, every other one is and matches; with none compared, it did not pass."""
    fetches = list(generated.outputs)
    with session_for(generated.graph_def) as session:
        result = verify_runs(
            generated.graph_def,
            lambda feeds: list(session.run(fetches, feed_dict=feeds)),
            "a second session",
            generated.input_tensors,
            generated.output_tensors,
        )
    event(f"outputs not compared: {len(result.random_outputs)} of {len(fetches)}")
    compared = [name for name in fetches if name not in result.random_outputs]
    assert [check.name for check in result.outputs] == compared
    if compared:
        assert result.status == PASSED, [check for check in result.outputs if not check.passed]
    else:
        assert result.status == NOT_RUN and result.skipped and not result.passed and not result.failed
    assert result.passed == (result.skipped is None and bool(result.outputs) and all(c.passed for c in result.outputs))
