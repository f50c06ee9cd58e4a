"""The machine a benchmark ran on, for docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe_machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    import torch

    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}){mem}{gpu}, Python {platform.python_version()}, torch {torch.__version__}"


def append_section(title: str, body: str, path: str | Path = "docs/benchmarks.md") -> None:
    """Replace the section called ``title`` in docs/benchmarks.md (or append it), keeping the others."""
    path = Path(path)
    text = (
        path.read_text(encoding="utf-8")
        if path.exists()
        else "# Benchmarks\n\nEach section says the machine it ran on and the command that reproduces it.\n"
    )
    header = f"## {title}\n"
    section = header + body.rstrip() + "\n"
    if header in text:
        start = text.index(header)
        end = text.find("\n## ", start + len(header))
        text = text[:start] + section + ("" if end == -1 else text[end:])
    else:
        text = text.rstrip() + "\n\n" + section
    from medsift.io.atomic import atomic_write_text

    atomic_write_text(path, text)
