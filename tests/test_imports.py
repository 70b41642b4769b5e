"""The package structure: no import cycle between files or packages, and the layers above the
environments know an environment only through its spec (``mtopt.spec``).

Every ``import`` of an ``mtopt`` module counts, also one inside a function: a lazy import
hides a cycle from the interpreter, not from a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "mtopt"
LAYERS_WITHOUT_ENVS = ("data", "learning", "policies", "success", "evaluation", "system")
"""Packages that receive an environment's spec and never import an environment module."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The mtopt modules ``path`` imports (``from a.b import c`` counts ``a.b.c`` when that is
    a module, else ``a.b``)."""
    out: set[str] = set()
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names
            ]
        else:
            continue
        out.update(t for t in targets if t in modules and t != name)
    return out


def import_graph() -> dict[str, set[str]]:
    """``module -> the mtopt modules it imports``."""
    modules = _modules()
    return {name: _imports(path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_import_cycle_between_files():
    graph = import_graph()
    # a package's __init__ re-exporting its own modules is not a cycle between files
    for name in graph:
        graph[name] = {m for m in graph[name] if not (name + ".").startswith(m + ".")}
    assert _cycles(graph) == []


def test_no_import_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for name, targets in import_graph().items():
        edges = graph.setdefault(_package(name), set())
        edges.update(_package(t) for t in targets if _package(t) != _package(name))
    assert _cycles(graph) == []


@pytest.mark.parametrize("layer", LAYERS_WITHOUT_ENVS)
def test_layers_above_the_environments_import_none(layer):
    bad = {
        name: sorted(t for t in targets if t.startswith("mtopt.envs"))
        for name, targets in import_graph().items()
        if name.startswith(f"mtopt.{layer}")
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_checks_find_a_cycle_and_an_env_import():
    """The checks above can fail: a hand-made graph with a cycle is caught."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _package("mtopt.envs.workcell") == "mtopt.envs"
    assert "mtopt.learning.networks" in import_graph()["mtopt.learning.trainer"]
