"""The import graph of ``src/musegen``, read from the source with ``ast`` (nothing is imported).

What counts as an edge ``a -> b`` (both modules of musegen):

* **module level**: an ``import`` / ``from ... import`` outside any function: at the top of
  the file, or inside a class body, ``try``, ``with`` or ``if``, and also those under
  ``if TYPE_CHECKING:`` (they never run, but two modules that name each other's types are
  one unit all the same, and type checkers follow them). These may form no cycle
  (:func:`test_no_import_cycle`).
* **in a function**: imports inside a function body run at call time, after every module
  has loaded; they are how a heavy or upward import is put off, so the cycle test leaves
  them out. The layering tests count them: a deferred import is a dependency all the same.

``from pkg import name`` is an edge to ``pkg.name`` where that is a module (a file or a
package), else to ``pkg`` (whose ``__init__`` defines ``name``); relative imports are resolved
against the importing module's package.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "musegen"

# Module-level edges of cycles that are on their way out, left out of the cycle check until
# then (each with the work that removes it). Nothing else may close a cycle.
ALLOWED_CYCLE_EDGES: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    deferred: bool  # inside a function body


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    out = {}
    for path in sorted((SRC / ROOT).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = module_files()


def _imports(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it is deferred (see the module docstring)."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def visit(node: ast.AST, deferred: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((node, deferred))
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            deferred = True
        for child in ast.iter_child_nodes(node):
            visit(child, deferred)

    visit(tree, False)
    return found


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module name a ``from`` import reads from."""
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    base = package.split(".")
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _target(name: str) -> str | None:
    """``name`` or the nearest enclosing module of musegen (None outside musegen)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def edges_of(module: str) -> list[Edge]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    out = []
    for node, deferred in _imports(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = _resolve(module, node)
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        for name in names:
            target = _target(name) if name.split(".")[0] == ROOT else None
            if target is None or target == module:
                continue  # outside musegen, or itself
            out.append(Edge(module, target, node.lineno, deferred))
    return out


EDGES = [e for m in MODULES for e in edges_of(m)]


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def module_level_graph(allowed: dict[tuple[str, str], str]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for e in EDGES:
        if not e.deferred and (e.source, e.target) not in allowed:
            graph[e.source].add(e.target)
    return graph


def test_the_walk_finds_the_package() -> None:
    assert {"musegen", "musegen.models.transformer", "musegen.cli.main"} <= set(MODULES)
    assert any(e.source == "musegen.models.transformer" and not e.deferred for e in EDGES)


def test_no_import_cycle() -> None:
    """No cycle of module-level imports (the allow-list aside)."""
    cycles = strongly_connected(module_level_graph(ALLOWED_CYCLE_EDGES))
    lines = []
    for component in cycles:
        members = set(component)
        inner = sorted(
            {
                f"{e.source}:{e.line} -> {e.target}"
                for e in EDGES
                if not e.deferred and {e.source, e.target} <= members
            }
        )
        lines.append(" <-> ".join(component) + ": " + "; ".join(inner))
    assert not cycles, "import cycles:\n" + "\n".join(lines)


LAYERS_BELOW = ("musegen.metrics", "musegen.sampling", "musegen.compose")
LAYERS_ABOVE = ("musegen.evaluate", "musegen.cli")


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize("below", LAYERS_BELOW)
def test_lower_layers_import_nothing_from_evaluate_or_cli(below: str) -> None:
    """Doors open one way (docs: DESIGN.md): metrics, sampling and compose serve evaluate and
    the CLI, never the reverse; deferred imports count."""
    wrong = [
        f"{e.source}:{e.line} -> {e.target}"
        for e in EDGES
        if _inside(e.source, below) and any(_inside(e.target, above) for above in LAYERS_ABOVE)
    ]
    assert not wrong, "\n".join(wrong)


def test_the_package_imports_nothing_from_benchmarks() -> None:
    """``benchmarks/`` is harness code beside the package (time budgets, published figures):
    ``src/musegen`` never imports it, deferred or not."""
    found = []
    for module, path in MODULES.items():
        for node, _ in _imports(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            found += [f"{module}:{node.lineno}" for n in names if n.split(".")[0] == "benchmarks"]
    assert not found


def test_the_cpu_fast_path_reads_only_the_exported_weights() -> None:
    """``musegen.models.cpu`` knows no model class: the transformer hands it a plain view of
    its weights (``Transformer.export_for_decoding``); deferred imports count."""
    wrong = [
        f"{e.source}:{e.line} -> {e.target}"
        for e in EDGES
        if _inside(e.source, "musegen.models.cpu")
        and _inside(e.target, "musegen")
        and not _inside(e.target, "musegen.models.cpu")
        and e.target not in ("musegen", "musegen.errors", "musegen.utils")
    ]
    assert not wrong, "\n".join(wrong)


def test_resolution_of_relative_and_from_imports() -> None:
    """The resolver on a few shapes of import (on real module names, parsed from a string)."""
    tree = ast.parse(
        "from . import base\nfrom .base import ModelConfig\nfrom .. import errors\n"
        "import musegen.models.lstm\nfrom musegen.models import transformer\n"
        "def f():\n    from musegen.io import midi\n"
    )
    module = "musegen.models.coconet"
    resolved = []
    for node, deferred in _imports(tree):
        if isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            name = f"{base}.{node.names[0].name}"
            resolved.append((_target(name if name in MODULES else base), deferred))
        else:
            resolved.append((_target(node.names[0].name), deferred))
    assert resolved == [
        ("musegen.models.base", False),
        ("musegen.models.base", False),
        ("musegen.errors", False),
        ("musegen.models.lstm", False),
        ("musegen.models.transformer", False),
        ("musegen.io.midi", True),
    ]
