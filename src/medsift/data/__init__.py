"""A small bundled sample so that demos and tests run without the official data.

Files (see ``LICENSES.md`` beside them for attribution):

- ``ade_sample.csv`` (+ ``ade_sample_train.csv`` / ``ade_sample_test.csv``, an 80/20 stratified split):
  Task 1 columns; 240 English PsyTAR sentences (label = PsyTAR's ADR column, 30 % positive) and the
  160 KEEPHA-Ja Japanese pseudo-tweets.
- ``impacts_sample.csv`` (+ ``_train`` / ``_test``): 300 PsyTAR sentences in Task 7 columns, with entity
  types ADR, WD, SSI and DI (not the official two types, on purpose).

Regenerate with ``python scripts/make_sample.py``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from medsift.errors import MedsiftError

SAMPLE_FILES = (
    "ade_sample.csv",
    "ade_sample_train.csv",
    "ade_sample_test.csv",
    "impacts_sample.csv",
    "impacts_sample_train.csv",
    "impacts_sample_test.csv",
    "LICENSES.md",
)


def sample_path(name: str) -> Path:
    """The path of a bundled sample file, e.g. ``sample_path("ade_sample_train.csv")``.

    ``name`` may omit ``.csv``. An unknown name raises :class:`MedsiftError` listing the known ones.
    """
    candidates = [name] if name.endswith((".csv", ".md")) else [name, f"{name}.csv"]
    for candidate in candidates:
        if candidate in SAMPLE_FILES:
            # The package is installed from a folder (not a zip), so the traversable is a real path.
            path = Path(str(resources.files("medsift.data") / candidate))
            if path.is_file():
                return path
            raise MedsiftError("bundled sample file is missing from the installation", file=path)
    raise MedsiftError(f"no bundled sample named {name!r}; known: {', '.join(SAMPLE_FILES)}")
