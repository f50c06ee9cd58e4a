"""Reports over finished runs: one self-contained HTML page (or Markdown + PNG files) and a comparison table.

- :func:`load_run`: read a run directory (any kind) into :class:`RunData`; :func:`add_test_split` /
  :func:`add_impacts_test` attach a held-out labelled file as split ``test``;
- :func:`build_report`: the document (comparison, per-language scores, curves, calibration, confusion,
  training curves, worst errors; per-type scores and highlighted posts for impact taggers);
- :func:`write_report`: render it to ``.html`` or ``.md``;
- :func:`compare_rows` / :func:`best_per_column`: the numbers behind ``medsift compare``.
"""

from __future__ import annotations

from medsift.report.build import build_report
from medsift.report.compare import best_per_column, compare_rows
from medsift.report.document import Document, write
from medsift.report.load import ImpactTest, RunData, add_impacts_test, add_test_split, load_run

write_report = write

__all__ = [
    "Document",
    "ImpactTest",
    "RunData",
    "add_impacts_test",
    "add_test_split",
    "best_per_column",
    "build_report",
    "compare_rows",
    "load_run",
    "write_report",
]
