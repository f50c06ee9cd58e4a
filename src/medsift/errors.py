"""One exception type for every problem a user can fix, rendered as one clear line.

The CLI catches :class:`MedsiftError` and prints ``medsift: error: FILE:ROW: PROBLEM`` with a
non-zero exit code, never a traceback. Library code raises it; it never prints.
"""

from __future__ import annotations

from pathlib import Path


class MedsiftError(Exception):
    """A user-facing error that names the file, the row and the problem.

    ``row`` is the 1-based data row (the header is row 0 for CSV files; for CoNLL and JSONL it is
    the 1-based line number), or ``None`` when the problem concerns the file as a whole.
    """

    def __init__(self, problem: str, *, file: str | Path | None = None, row: int | None = None):
        self.problem = problem
        self.file = str(file) if file is not None else None
        self.row = row
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file if self.row is None else f"{self.file}: row {self.row}"
        elif self.row is not None:
            where = f"row {self.row}"
        return f"{where}: {self.problem}" if where else self.problem


class ConfigError(MedsiftError):
    """A configuration file or override that does not match the schema."""
