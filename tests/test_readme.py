"""The documentation's promises: the README's commands exist, its links resolve and it stays short; the
examples of docs/ run as written; the benchmark tables are the committed results."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from optimizer._tf import tensorflow
from optimizer.graph_io import read_graph_def
from optimizer.registry import unregister_pass
from optimizer.verify import run_graph

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
EXTENDING = (DOCS / "extending.md").read_text()
DEBUGGING = (DOCS / "debugging.md").read_text()
BENCHMARKS = (DOCS / "benchmarks.md").read_text()


def python_block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", EXTENDING, flags=re.S)
    (block,) = [block for block in blocks if marker in block]
    return block


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    before = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(before)
    unregister_pass("fold-double-negation")


def test_the_custom_pass_example_runs_and_is_under_15_lines(in_tmp: Path) -> None:
    tf = tensorflow()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [3], name="x")
        tf.add(tf.negative(tf.negative(x)), 1.0, name="y")
    (in_tmp / "model.pb").write_bytes(graph.as_graph_def().SerializeToString())
    block = python_block('@function_pass("fold-double-negation")')
    pass_lines = block.split("\n\ngraph = ")[0].strip().splitlines()
    assert len(pass_lines) < 15
    exec(compile(block, "docs/extending.md", "exec"), {})
    optimized = read_graph_def(in_tmp / "model.opt.pb")
    assert "Neg" not in {node.op for node in optimized.node}
    feed = {"x:0": np.array([1.0, -2.0, 3.0], np.float32)}
    assert np.array_equal(run_graph(optimized, feed, ["y:0"])[0], [2.0, -1.0, 4.0])


def test_readme_names_the_commands_ci_runs() -> None:
    assert "bash scripts/test.sh" in README
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/setup.sh && .venv/bin/optimize fixtures/" in README


def test_the_tf2_example_runs_a_frozen_graph_as_a_session_would(in_tmp: Path) -> None:
    tf = tensorflow()
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, 224, 224, 3], name="images")
        tf.nn.softmax(tf.reduce_mean(images, axis=[1, 2]) * 2.0 + 0.5, name="probabilities")
    (in_tmp / "frozen.pb").write_bytes(graph.as_graph_def().SerializeToString())
    namespace: dict[str, object] = {}
    exec(compile(python_block("optimizer.as_function(graph)"), "docs/extending.md", "exec"), namespace)
    expected = run_graph(
        graph.as_graph_def(), {"images:0": np.zeros((1, 224, 224, 3), np.float32)}, ["probabilities:0"]
    )
    np.testing.assert_allclose(namespace["probabilities"].numpy(), expected[0])  # type: ignore[attr-defined]


def test_the_benchmark_tables_are_the_committed_results() -> None:
    import scripts.doc_benchmarks as splice

    assert splice.spliced(BENCHMARKS) == BENCHMARKS, "run scripts/doc_benchmarks.py after benchmarks/all.py"
    changed = splice.spliced(BENCHMARKS.replace("| synthetic | 10,000 nodes |", "| synthetic | 9 nodes |", 1))
    assert changed == BENCHMARKS
    stale = BENCHMARKS.replace(
        "Time per node at 1M / at 100k:", "Time per node at 1M / at 100k: 9.99.\n\nTime per node at 1M / at 100k:", 1
    )
    assert stale != BENCHMARKS and splice.spliced(stale) == BENCHMARKS  # every note line after a table is replaced


def test_the_readme_headline_rows_are_the_summarys() -> None:
    import scripts.doc_benchmarks as splice

    assert splice.with_headline(README) == README, "run scripts/doc_benchmarks.py after benchmarks/all.py"
    rows = splice.headline().splitlines()[2:]
    assert len(rows) == 3 and all(row in BENCHMARKS for row in rows)


def test_the_print_after_change_example_is_what_the_command_prints(capsys: pytest.CaptureFixture[str]) -> None:
    from optimizer.cli import main

    blocks = re.findall(r"\n```\n(.*?)\n```", DEBUGGING, flags=re.S)
    (block,) = [block for block in blocks if "after identity" in block]
    source = str(ROOT / "tests" / "golden" / "identity" / "control_inputs.pbtxt")
    args = [source, "--inputs", "x", "--outputs", "y:0", "--passes", "identity", "--print-after-change", "--no-verify"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert block in printed


def test_the_readme_is_a_front_door_of_at_most_200_lines() -> None:
    assert len(README.splitlines()) <= 200


def _anchors(text: str) -> set[str]:
    """The anchors of a markdown page: its headings as GitHub spells them, and explicit `<a id>`s."""
    anchors = set(re.findall(r'<a id="([^"]+)"', text))
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    for heading in re.findall(r"^#+ (.+)$", text, flags=re.M):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return anchors


PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    text = page.read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", re.sub(r"```.*?```", "", text, flags=re.S))
    for link in links:
        if re.match(r"[a-z]+://", link):
            continue
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.name}: {link} names no file"
        if anchor:
            assert anchor in _anchors(path.read_text()), f"{page.name}: {link} names no heading of {path.name}"


def test_the_docs_pages_are_linked_from_the_readme() -> None:
    for page in DOCS.glob("*.md"):
        assert f"](docs/{page.name})" in README, f"README.md does not link docs/{page.name}"
