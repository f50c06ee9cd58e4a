"""Atomic output files: write to a temporary file beside the target, then rename.

A run killed half-way never leaves a truncated file that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from medsift.errors import MedsiftError


@contextlib.contextmanager
def atomic_write(
    path: str | Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = ""
) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success fsync and rename it over ``path``."""
    path = Path(path)
    fd, tmp = _open_temporary(path)
    binary = "b" in mode
    try:
        with os.fdopen(
            fd, mode, encoding=None if binary else encoding, newline=None if binary else newline
        ) as fh:
            yield fh
            fh.flush()
            # mkstemp creates 0600 files; an output must get the mode any new file gets (umask)
            os.fchmod(fh.fileno(), 0o666 & ~current_umask())
            os.fsync(fh.fileno())
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise _cannot_write(path, exc) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_writable(path: str | Path) -> None:
    """Refuse, before any work, an output path no file can be written to (a folder, or under a file)."""
    path = Path(path)
    if path.is_dir():
        raise MedsiftError("is a folder; expected a file name to write", file=path)
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise MedsiftError(f"cannot write here: {parent} is a file, not a folder", file=path)


def prepare_output(path: str | Path) -> None:
    """Before any work: refuse an output that cannot be written, and make its folder (as a write would)."""
    path = Path(path)
    check_writable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise MedsiftError(f"cannot write: no permission to write in {path.parent}", file=path)


def _open_temporary(path: Path) -> tuple[int, str]:
    check_writable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _cannot_write(path, exc) from None


def _cannot_write(path: Path, exc: OSError) -> MedsiftError:
    """An OS error on an output as one line naming the output (not the temporary file beside it)."""
    return MedsiftError(f"cannot write: {exc.strerror or exc}", file=path)


def current_umask() -> int:
    # the umask can only be read by setting it; set it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_write(path) as fh:
        fh.write(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def write_json(path: str | Path, data: Any) -> None:
    """``data`` as indented UTF-8 JSON, written atomically (NumPy floats written as floats)."""
    import json

    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=float) + "\n")


def read_json(path: str | Path) -> Any:
    import json

    return json.loads(Path(path).read_text(encoding="utf-8"))
