"""Pipeline strings: `a,b{option=value,other=1},c`, parsed once into configured pass instances.

Grammar: elements separated by commas; an element is a pass name optionally followed by `{k=v,...}`.
Option names are kebab-case (`max-bytes` sets the field `max_bytes`); values are converted to the field's
type (int, float, bool as true/false, str; numbers must be finite and not negative: every numeric option is a
count, a size or a limit). `str(Pipeline)` prints the canonical form, which parses back to
an equal pipeline. The empty string is the empty pipeline.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from optimizer.errors import OptimizerError
from optimizer.pass_base import Pass
from optimizer.registry import get_pass

_ELEMENT = re.compile(r"^\s*(?P<name>[A-Za-z0-9_.-]+)\s*(?:\{(?P<options>[^{}]*)\})?\s*$")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise OptimizerError(f"pipeline {text!r}: unbalanced '}}'")
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth:
        raise OptimizerError(f"pipeline {text!r}: unbalanced '{{'")
    parts.append(text[start:])
    return parts


def _convert(value: str, annotation: Any, where: str) -> Any:
    kind = annotation if isinstance(annotation, type) else None
    optional = typing.get_args(annotation)
    if kind is None and optional:
        if value.lower() in {"none", ""} and type(None) in optional:
            return None
        kind = next((arg for arg in optional if arg is not type(None)), str)
    try:
        if kind is bool:
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
            raise ValueError(value)
        if kind in (int, float):
            number = kind(value)
            if not 0 <= number < float("inf"):
                raise ValueError(value)
            return number
    except ValueError as error:
        kind_name = f"non-negative {kind.__name__}" if kind in (int, float) else kind.__name__ if kind else "value"
        raise OptimizerError(f"{where}: {value!r} is not a valid {kind_name}") from error
    return value


def build_pass(name: str, options: dict[str, str]) -> Pass:
    """Instantiate the pass `name` with string `options` converted to its fields' types."""
    cls = get_pass(name)
    if not options:
        return cls()
    hints = typing.get_type_hints(cls)  # evaluates every annotation of the class: only when there is an option
    fields = {option.name: option for option in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in options.items():
        field_name = key.replace("-", "_")
        if field_name not in fields:
            known = ", ".join(option.replace("_", "-") for option in fields) or "none"
            raise OptimizerError(f"pass {name!r} has no option {key!r}; its options: {known}")
        kwargs[field_name] = _convert(value.strip(), hints.get(field_name, str), f"{name}{{{key}}}")
    return cls(**kwargs)


@dataclass(frozen=True)
class Pipeline:
    """An ordered sequence of configured passes."""

    passes: tuple[Pass, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Pipeline:
        """Parse a pipeline string; errors name the offending element."""
        if not text.strip():
            return cls(())
        passes = []
        for element in _split_top_level(text):
            match = _ELEMENT.match(element)
            if match is None:
                raise OptimizerError(f"pipeline {text!r}: cannot read element {element.strip()!r}")
            options: dict[str, str] = {}
            for item in filter(str.strip, (match["options"] or "").split(",")):
                key, equals, value = item.partition("=")
                if not equals or not key.strip():
                    raise OptimizerError(f"pipeline {text!r}: option {item.strip()!r} must be written key=value")
                options[key.strip()] = value
            passes.append(build_pass(match["name"], options))
        return cls(tuple(passes))

    @classmethod
    def of(cls, spec: str | Sequence[Pass] | Pipeline) -> Pipeline:
        """Accept a pipeline string, a sequence of pass instances, or a Pipeline."""
        if isinstance(spec, Pipeline):
            return spec
        if isinstance(spec, str):
            return cls.parse(spec)
        return cls(tuple(spec))

    def __iter__(self) -> Iterator[Pass]:
        return iter(self.passes)

    def __len__(self) -> int:
        return len(self.passes)

    def __str__(self) -> str:
        return ",".join(str(step) for step in self.passes)
