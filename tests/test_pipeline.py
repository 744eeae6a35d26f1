"""Pipeline strings: parsing, typed options, canonical printing, errors."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from optimizer import OptimizerError, Pass, PassContext, Pipeline, register_pass
from optimizer.ir import Graph
from optimizer.registry import get_pass, unregister_pass


@dataclass(frozen=True)
class Tunable(Pass):
    """A pass with one option of each type."""

    name = "tunable"
    max_bytes: int = 1024
    ratio: float = 0.5
    strict: bool = False
    mode: str = "fast"
    limit: int | None = None

    def run(self, graph: Graph, ctx: PassContext) -> None:
        return None


@pytest.fixture(autouse=True)
def tunable() -> Iterator[None]:
    register_pass(Tunable)
    yield
    unregister_pass("tunable")


def test_only_a_pass_given_options_has_its_annotations_evaluated(monkeypatch: pytest.MonkeyPatch) -> None:
    evaluated: list[type] = []
    real = typing.get_type_hints

    def counting(cls: type) -> dict[str, Any]:
        evaluated.append(cls)
        return real(cls)

    monkeypatch.setattr(typing, "get_type_hints", counting)
    assert Pipeline.parse("tunable,prune,cse").passes == (Tunable(), get_pass("prune")(), get_pass("cse")())
    assert evaluated == []  # building a pass with no option is `cls()`, however many times a run parses it
    assert Pipeline.parse("prune,tunable{ratio=0.125}").passes[1] == Tunable(ratio=0.125) and evaluated == [Tunable]


def test_options_are_converted_to_field_types() -> None:
    (step,) = Pipeline.parse("tunable{max-bytes=7, ratio=0.25, strict=true, mode=slow, limit=3}")
    assert step == Tunable(max_bytes=7, ratio=0.25, strict=True, mode="slow", limit=3)


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("", ""),
        ("strip,identity,prune", "strip,identity,prune"),
        (" strip , prune ", "strip,prune"),
        ("tunable{max-bytes=1024}", "tunable"),
        ("tunable{strict=1,max-bytes=9},prune", "tunable{max-bytes=9,strict=true},prune"),
    ],
)
def test_pipelines_print_back_canonically_and_reparse_equal(text: str, canonical: str) -> None:
    pipeline = Pipeline.parse(text)
    assert str(pipeline) == canonical
    assert Pipeline.parse(str(pipeline)) == pipeline


@pytest.mark.parametrize(
    "text, message",
    [
        ("nosuchpass", "unknown pass 'nosuchpass'; known passes: "),
        ("tunable{colour=red}", "has no option 'colour'; its options: max-bytes, ratio, strict, mode, limit"),
        ("tunable{max-bytes=lots}", "'lots' is not a valid non-negative int"),
        ("tunable{max-bytes=-5}", "'-5' is not a valid non-negative int"),
        ("tunable{strict=maybe}", "'maybe' is not a valid bool"),
        ("tunable{max-bytes}", "must be written key=value"),
        ("tunable{max-bytes=1", "unbalanced"),
        ("strip,,prune", "cannot read element ''"),
    ],
)
def test_bad_pipelines_raise_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(OptimizerError, match=None) as caught:
        Pipeline.parse(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
