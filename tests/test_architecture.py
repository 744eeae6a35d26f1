"""Import directions of the tree, read with `ast` from the sources (nothing is imported).

- No import cycle among the modules of `optimizer/` and `passes/`: none among the imports run when a module is
  loaded (module level, class bodies included), and none either once the imports inside functions are counted.
  Imports under `if TYPE_CHECKING:` are for the type checker only and are not counted.
- A pass is a leaf: `passes/*` never imports `passes.*` (shared helpers live in `optimizer/`).
- The command line is on top: `optimizer.cli` and `optimizer.batch` (its batch mode, which `cli` runs) are
  imported by no other module of `optimizer/` or `passes/` but `optimizer/__main__.py`.
- The IR is at the bottom: `optimizer/ir.py` and `optimizer/printer.py` import no TensorFlow at module level and no
  pass anywhere.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("optimizer", "passes")
CLI_LAYER = frozenset({"optimizer.cli", "optimizer.batch", "optimizer.__main__"})


def _modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the packages (a package is its `__init__.py`)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str  # the dotted name as written (resolved when relative), maybe outside the tree
    where: str  # "module", "function" or "typing" (under `if TYPE_CHECKING:`)
    line: int


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith("TYPE_CHECKING")


def _imports(name: str, path: Path) -> list[Import]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(name, alias.name, where, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    module = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    module = child.module or ""
                for alias in child.names:
                    submodule = f"{module}.{alias.name}"
                    found.append(Import(name, submodule if submodule in MODULES else module, where, child.lineno))
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    visit(ast.Module(body=[statement], type_ignores=[]), "typing")
                for statement in child.orelse:
                    visit(ast.Module(body=[statement], type_ignores=[]), where)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, "function")
            else:
                visit(child, where)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), "module")
    return found


IMPORTS = [found for name, path in MODULES.items() for found in _imports(name, path)]


def _in_tree(dotted: str) -> str | None:
    """The module of the tree that importing `dotted` runs (the longest known prefix), or None."""
    while dotted and dotted not in MODULES:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def _graph(*wheres: str) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    for found in IMPORTS:
        target = _in_tree(found.imported)
        if found.where in wheres and target is not None and target != found.importer:
            graph.add_edge(found.importer, target)
    return graph


def _cycles(graph: nx.DiGraph) -> list[list[str]]:
    return [sorted(component) for component in nx.strongly_connected_components(graph) if len(component) > 1]


def test_the_reader_sees_every_module() -> None:
    assert {"optimizer", "optimizer.ir", "optimizer.cli", "passes", "passes.fold"} <= set(MODULES)
    assert any(found.where == "function" for found in IMPORTS)
    assert any(found.where == "typing" for found in IMPORTS)


def test_no_import_cycle_at_module_level() -> None:
    assert _cycles(_graph("module")) == []


def test_no_import_cycle_counting_imports_inside_functions() -> None:
    assert _cycles(_graph("module", "function")) == []


def test_a_pass_imports_no_pass() -> None:
    wrong = [
        found
        for found in IMPORTS
        if found.importer.startswith("passes.") and (found.imported == "passes" or found.imported.startswith("passes."))
    ]
    assert wrong == []


@pytest.mark.parametrize("module", ["optimizer.cli", "optimizer.batch"])
def test_the_command_line_is_imported_by_nothing(module: str) -> None:
    importers = sorted(
        {found.importer for found in IMPORTS if _in_tree(found.imported) == module} - CLI_LAYER - {module}
    )
    assert importers == []


@pytest.mark.parametrize("module", ["optimizer.ir", "optimizer.printer"])
def test_the_ir_imports_no_tensorflow_and_no_pass(module: str) -> None:
    own = [found for found in IMPORTS if found.importer == module]
    tensorflow = [
        found
        for found in own
        if found.where == "module" and (found.imported == "tensorflow" or found.imported.startswith("tensorflow."))
    ]
    passes = [found for found in own if found.imported == "passes" or found.imported.startswith("passes.")]
    assert tensorflow == [] and passes == []
