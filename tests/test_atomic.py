"""Atomic outputs: whole or absent, and readable like any file the user creates."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from medsift.io.atomic import atomic_write, atomic_write_text


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_output_gets_the_mode_the_umask_gives(tmp_path: Path, mask: int):
    old = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "out.csv", "id,predicted_label\n")
        plain = tmp_path / "plain.csv"
        plain.write_text("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "out.csv").stat().st_mode)
    assert mode == 0o666 & ~mask == stat.S_IMODE(plain.stat().st_mode)


def test_failed_write_leaves_neither_file_nor_temporary(tmp_path: Path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
