"""docs/architecture.md stays true: its module table names every package and top-level module of medsift."""

from __future__ import annotations

import pkgutil
import re
from pathlib import Path

import medsift

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def test_the_module_table_names_every_package_and_module():
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| `medsift.")]
    named = {name for row in rows for name in re.findall(r"`(medsift\.[a-z_.]+)`", row.split("|")[1])}
    modules = {
        f"medsift.{m.name}" for m in pkgutil.iter_modules(medsift.__path__) if not m.name.startswith("_")
    }
    assert modules - named == set()
    assert "medsift.batching" in named


def test_every_cited_doc_exists_and_no_doc_names_an_absolute_machine_path():
    root = DOC.parents[1]
    texts = [p.read_text(encoding="utf-8") for p in [*root.glob("docs/*.md"), root / "README.md"]]
    texts += [p.read_text(encoding="utf-8") for p in (root / "src" / "medsift").rglob("*.py")]
    cited = {name for text in texts for name in re.findall(r"(?<!shared/)docs/([a-z0-9_-]+\.md)", text)}
    assert cited and not [name for name in cited if not (root / "docs" / name).is_file()]
    for path in [*root.glob("docs/*.md"), root / "README.md"]:
        assert "/work/" not in path.read_text(encoding="utf-8"), path.name
