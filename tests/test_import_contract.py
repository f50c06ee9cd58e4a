"""The house plan holds: imports between medsift's parts point one way, down the layers docs/architecture.md states.

A *unit* is a subpackage or a top-level module of ``medsift`` (``medsift.ade``, ``medsift.runs``); the package root
``medsift`` (``__version__``, ``medsift.train`` / ``medsift.load``) is a unit too. Every import counts, a lazy one
inside a function included: a cycle hidden in a function body is still a cycle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "medsift"
DOC = ROOT / "docs" / "architecture.md"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    parts = module.split(".")
    return "medsift" if len(parts) == 1 else f"medsift.{parts[1]}"


def _imported(path: Path, module: str) -> list[tuple[str, int]]:
    """(module imported, line) for every import of a medsift module in ``path``, at any depth."""
    out = []
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, node.lineno))
    return [(t, line) for t, line in out if t == "medsift" or t.startswith("medsift.")]


def import_edges() -> dict[tuple[str, str], list[str]]:
    """(importing unit, imported unit) -> where (``file:line``), between different units."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        for target, line in _imported(path, module):
            a, b = _unit(module), _unit(target)
            if a != b:
                edges.setdefault((a, b), []).append(f"{path.relative_to(ROOT)}:{line}")
    return edges


def stated_layers() -> list[tuple[str, list[str]]]:
    """The layer table of docs/architecture.md (section "Layers"), bottom layer first."""
    text = DOC.read_text(encoding="utf-8").split("## Layers", 1)[1].split("\n## ", 1)[0]
    layers = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].isdigit():
            layers.append((cells[1], re.findall(r"`(medsift(?:\.[a-z_]+)?)`", cells[2])))
    return layers


def _units() -> set[str]:
    found = {"medsift"}
    for path in SRC.iterdir():
        if path.name.startswith(("_", ".")):
            continue
        if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists()):
            found.add(f"medsift.{path.stem}")
    return found


def _cycles(edges) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_units():
    edges = import_edges()
    cycles = _cycles(edges)
    detail = [
        f"{a} -> {b}: {where[0]}"
        for cycle in cycles
        for (a, b), where in edges.items()
        if {a, b} <= set(cycle)
    ]
    assert not cycles, "import cycles:\n" + "\n".join(detail)


def test_the_doc_states_every_unit_in_exactly_one_layer():
    named = [unit for _layer, units in stated_layers() for unit in units]
    assert len(named) == len(set(named)), "a unit is named in two layers"
    assert set(named) == _units()


def test_imports_point_down_the_stated_layers():
    level = {unit: k for k, (_layer, units) in enumerate(stated_layers()) for unit in units}
    upward = [
        f"{a} (layer {level[a]}) imports {b} (layer {level[b]}): {where[0]}"
        for (a, b), where in sorted(import_edges().items())
        if level[b] > level[a]
    ]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("unit", ["medsift.decision"])
def test_the_decision_layer_loads_no_model(unit):
    """Pure functions on probabilities: no torch, transformers or onnxruntime, no model package."""
    heavy = ("torch", "transformers", "onnxruntime", "peft")
    folder = SRC / unit.split(".")[1]
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in heavy, (
                    f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
                )
                assert not name.startswith(
                    ("medsift.ade", "medsift.impacts", "medsift.llm", "medsift.runtime")
                ), f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
