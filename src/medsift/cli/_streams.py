"""``-`` for standard input and output, and the checks every command runs on its paths before any work.

medsift's readers and writers take paths (they stream, validate by row and write atomically), so ``-`` is
bridged through a private temporary folder: standard input is spooled to a file there first, and an output
named ``-`` is written there and copied to standard output once it is complete (never half a file). Errors
that name the temporary files are renamed to ``<stdin>`` / ``<stdout>``.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from medsift.errors import MedsiftError
from medsift.io.atomic import prepare_output

STDIO = Path("-")


def _suffix_of_stream(head: bytes, task: str = "ade") -> str:
    """``.jsonl``/``.json`` when the stream starts like JSON, else ``.csv`` (the official files); for impact
    taggers, a stream whose first line names no ``tokens`` column is plain text, one post per line."""
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if start.startswith(b"["):
        return ".json"
    if start.startswith(b"{"):
        return ".jsonl"
    if task == "impacts" and b"tokens" not in start.split(b"\n", 1)[0]:
        return ".txt"
    return ".csv"


def spool_stdin(folder: Path, task: str = "ade") -> Path:
    """Copy standard input into ``folder`` (block by block: any size) and return the file."""
    source = sys.stdin.buffer
    head = source.read(4096)
    path = folder / f"stdin{_suffix_of_stream(head, task)}"
    with open(path, "wb") as fh:
        fh.write(head)
        shutil.copyfileobj(source, fh, 1 << 20)
    return path


def spool_posts() -> list[str]:
    """Posts from standard input, one per non-blank line (the rules of ``medsift.io.read_posts``)."""
    from medsift.io import read_posts

    with tempfile.TemporaryDirectory(prefix="medsift-") as tmp:
        path = Path(tmp) / "stdin.txt"
        with open(path, "wb") as fh:
            shutil.copyfileobj(sys.stdin.buffer, fh, 1 << 20)
        try:
            return read_posts(path)[1]
        except MedsiftError as exc:
            raise MedsiftError(exc.problem, file="<stdin>", row=exc.row) from None


def refuse_same_file(inputs: list[Path], outputs: dict[str, Path | None]) -> None:
    """An output may not be an input (it would be overwritten before or while it is read), nor another output."""
    seen: dict[Path, str] = {}
    resolved_inputs = {_resolved(p) for p in inputs if p != STDIO}
    for flag, path in outputs.items():
        if path is None or path == STDIO:
            continue
        key = _resolved(path)
        if key in resolved_inputs:
            raise MedsiftError(f"{flag} is the input file; write the output to another file", file=path)
        if key in seen:
            raise MedsiftError(f"{flag} and {seen[key]} are the same file", file=path)
        seen[key] = flag
        prepare_output(path)


def prepare_output_dir(path: Path) -> None:
    """Before any work: an output folder (a run to create) must be a folder that can be made and written."""
    import os

    if not path.exists():
        prepare_output(path)  # makes its parents: they must be folders one can write in
    elif not path.is_dir():
        raise MedsiftError("exists and is not a folder; expected a folder to create", file=path)
    elif not os.access(path, os.W_OK | os.X_OK):
        raise MedsiftError("cannot write: no permission to write in this folder", file=path)


def _resolved(path: Path) -> Path:
    try:
        return path.expanduser().resolve()
    except OSError:
        return path.absolute()


@contextlib.contextmanager
def stdio_paths(input_path: Path, output: Path, task: str = "ade") -> Iterator[tuple[Path, Path]]:
    """(input, output) as real paths: ``-`` becomes a temporary file, copied to standard output at the end."""
    if input_path != STDIO and output != STDIO:
        yield input_path, output
        return
    with tempfile.TemporaryDirectory(prefix="medsift-") as tmp:
        folder = Path(tmp)
        real_in = spool_stdin(folder, task) if input_path == STDIO else input_path
        real_out = folder / "stdout.csv" if output == STDIO else output  # the submission CSV
        names = {}
        if input_path == STDIO:
            names[str(real_in)] = "<stdin>"
        if output == STDIO:
            names[str(real_out)] = "<stdout>"
        try:
            yield real_in, real_out
        except MedsiftError as exc:
            if exc.file in names:
                raise MedsiftError(exc.problem, file=names[exc.file], row=exc.row) from None
            raise
        if output == STDIO:
            sys.stdout.flush()
            with open(real_out, "rb") as fh:
                shutil.copyfileobj(fh, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()
