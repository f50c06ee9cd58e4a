"""The CLI stays thin: no function over 100 lines, no drawing, no private scoring tables, no run-kind strings
worked out again (the registry, :mod:`medsift.kinds`, knows the kinds)."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[1] / "src" / "medsift" / "cli"


def _modules():
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in sorted(CLI.glob("*.py"))]


def test_no_cli_function_is_over_100_lines():
    long = [
        f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 100
    ]
    assert not long, long


def test_the_cli_draws_nothing_and_reads_no_private_scoring_table():
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] == "matplotlib" for n in names), f"{path.name}:{node.lineno}"
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                owner = node.value.id if isinstance(node.value, ast.Name) else ""
                assert owner.endswith(("_cli", "scoring")) is False, (
                    f"{path.name}:{node.lineno} {owner}.{node.attr}"
                )


def test_the_cli_names_no_trainer_or_predictor_by_string():
    for path, tree in _modules():
        strings = [
            n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]
        assert not [s for s in strings if s.startswith("medsift.") and ":" in s], path.name
