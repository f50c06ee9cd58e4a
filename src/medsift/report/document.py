"""A tiny document model rendered to one self-contained HTML page or to Markdown with PNG files beside it.

Sections append blocks (headings, paragraphs, tables, figures, raw HTML); :func:`to_html` inlines figures as
base64 PNG inside ``<figure id=...>`` with a caption, and every table cell that holds a number carries
``data-metric`` and ``data-value`` (full precision) so tests and scripts can read the numbers back.
:func:`to_markdown` writes the same tables (numbers at their shown precision), each table and figure preceded
by an ``<a id="..."></a>`` anchor with the HTML element's id; highlighted cells use their ``markdown`` text.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsift.io.atomic import atomic_write_bytes, atomic_write_text


@dataclass
class Cell:
    """One table cell: ``value`` as shown; ``metric`` names a numeric cell; ``best`` marks the column's best."""

    value: Any
    metric: str | None = None
    digits: int = 4
    best: bool = False
    raw_html: str | None = None  # pre-escaped HTML (highlighted spans)
    markdown: str | None = None  # pre-escaped Markdown of the same (else Markdown shows ``text()``)

    def text(self) -> str:
        if isinstance(self.value, float):
            if math.isnan(self.value):
                return "–"
            return f"{self.value:g}" if self.digits < 0 else f"{self.value:.{self.digits}f}"
        return "" if self.value is None else str(self.value)


@dataclass
class Table:
    id: str
    columns: list[str]
    rows: list[list[Cell]]
    caption: str = ""
    row_keys: list[str] = field(default_factory=list)  # data-key of each row (language, seed, run)


@dataclass
class Figure:
    id: str
    caption: str
    png: bytes


@dataclass
class Document:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2, id: str | None = None) -> None:
        self.blocks.append(("heading", (level, text, id)))

    def para(self, text: str, css: str = "") -> None:
        self.blocks.append(("para", (text, css)))

    def table(self, table: Table) -> None:
        self.blocks.append(("table", table))

    def figure(self, figure: Figure) -> None:
        self.blocks.append(("figure", figure))

    def raw(self, html_text: str, markdown: str) -> None:
        self.blocks.append(("raw", (html_text, markdown)))


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1300px;color:#222}
h1{border-bottom:2px solid #345}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right;vertical-align:top}
th{background:#eef2f6}td.kind{white-space:nowrap}td.text,th.text{text-align:left;max-width:60em}
td.best{font-weight:bold;color:#116611;background:#eaf7ea}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figcaption{font-size:.85em;color:#555;max-width:38em}
p.note{background:#fff8e0;border-left:4px solid #e0b000;padding:.3em .8em}
mark.gold{background:#cde8ff}mark.pred{background:#ffe0b0}mark.both{background:#c8f0c8}
.post{font-family:ui-monospace,monospace;font-size:.85em;line-height:1.7;margin:.4em 0}
"""


def _table_html(t: Table) -> str:
    head = "".join(f'<th class="{_cls(c)}">{html.escape(c)}</th>' for c in t.columns)
    body = []
    for i, row in enumerate(t.rows):
        key = f' data-key="{html.escape(t.row_keys[i])}"' if i < len(t.row_keys) else ""
        cells = []
        for column, cell in zip(t.columns, row, strict=True):
            attrs = f' class="{_cls(column)}{" best" if cell.best else ""}"'
            if cell.metric is not None:
                attrs += (
                    f' data-metric="{html.escape(cell.metric)}" data-value="{html.escape(repr(cell.value))}"'
                )
            content = cell.raw_html if cell.raw_html is not None else html.escape(cell.text())
            cells.append(f"<td{attrs}>{content}{' ★' if cell.best else ''}</td>")
        body.append(f"<tr{key}>{''.join(cells)}</tr>")
    caption = f"<caption>{html.escape(t.caption)}</caption>" if t.caption else ""
    return f'<table id="{t.id}">{caption}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _cls(column: str) -> str:
    if column == "kind":
        return "text kind"
    return "text" if column in ("text", "run", "kind", "language", "post", "type", "split", "id") else "num"


def to_html(doc: Document) -> str:
    """The whole page as one string: inline CSS, inline base64 images, no external asset."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(doc.title)}</h1>",
    ]
    for kind, block in doc.blocks:
        if kind == "heading":
            level, text, id_ = block
            attr = f' id="{id_}"' if id_ else ""
            parts.append(f"<h{level}{attr}>{html.escape(text)}</h{level}>")
        elif kind == "para":
            text, css = block
            parts.append(
                f'<p class="{css}">{html.escape(text)}</p>' if css else f"<p>{html.escape(text)}</p>"
            )
        elif kind == "table":
            parts.append(_table_html(block))
        elif kind == "figure":
            data = base64.b64encode(block.png).decode("ascii")
            parts.append(
                f'<figure id="{block.id}"><img alt="{html.escape(block.caption)}" '
                f'src="data:image/png;base64,{data}"><figcaption>{html.escape(block.caption)}</figcaption></figure>'
            )
        elif kind == "raw":
            parts.append(block[0])
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def md_escape(text: str) -> str:
    """Backslash-escape the characters Markdown (and a table cell) would read as markup."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_cell(cell: Cell) -> str:
    text = cell.markdown if cell.markdown is not None else md_escape(cell.text())
    text = text.replace("\n", " ")
    return f"**{text}** ★" if cell.best else text


def to_markdown(doc: Document, path: Path) -> str:
    """Markdown with the same tables; figures are written to ``<stem>_files/<id>.png`` beside ``path``."""
    assets = path.parent / f"{path.stem}_files"
    lines = [f"# {doc.title}", ""]
    for kind, block in doc.blocks:
        if kind == "heading":
            level, text, _ = block
            lines += [f"{'#' * level} {text}", ""]
        elif kind == "para":
            lines += [("> " if block[1] else "") + block[0], ""]
        elif kind == "table":
            lines += [f'<a id="{block.id}"></a>', ""]
            if block.caption:
                lines += [f"*{block.caption}*", ""]
            lines.append("| " + " | ".join(block.columns) + " |")
            lines.append("|" + "|".join("---" for _ in block.columns) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            lines.append("")
        elif kind == "figure":
            assets.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(assets / f"{block.id}.png", block.png)
            lines += [f'<a id="{block.id}"></a>', ""]
            lines += [f"![{block.caption}]({assets.name}/{block.id}.png)", "", f"*{block.caption}*", ""]
        elif kind == "raw":
            lines += [block[1], ""]
    return "\n".join(lines)


def write(doc: Document, path: str | Path) -> Path:
    """Write ``doc`` as HTML (``.html``/``.htm``) or Markdown (anything else, e.g. ``.md``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".html", ".htm"):
        atomic_write_text(path, to_html(doc))
    else:
        atomic_write_text(path, to_markdown(doc, path))
    return path
