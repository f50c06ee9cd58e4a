"""Render a medsift report in headless Chromium and save a PNG screenshot (checks the page really renders).

    python scripts/screenshot_report.py REPORT.html OUT.png [--width 1400] [--height 3000] [--max-mb 1.5]

Needs Debian's ``chromium`` (``make browser``, or ``apt-get install -y chromium``). Network features are switched off: the page
is self-contained, so it must render with nothing but the file. A screenshot above ``--max-mb`` is
downscaled with Pillow (when installed) until it fits.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--hide-scrollbars",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def screenshot(report: Path, out: Path, width: int = 1400, height: int = 3000, timeout: int = 120) -> Path:
    """Screenshot ``report`` into ``out`` with headless Chromium; raises RuntimeError when nothing is written."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise RuntimeError("chromium not found: apt-get install -y chromium")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:  # a throwaway profile: nothing leaks between runs
        cmd = [
            browser,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={out.resolve()}",
            f"--window-size={width},{height}",
            report.resolve().as_uri(),
        ]
        subprocess.run(cmd, check=False, capture_output=True, timeout=timeout)
    if not out.exists() or out.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot for {report}")
    return out


def shrink(path: Path, max_bytes: int) -> None:
    """Downscale (then quantise) the PNG until it is under ``max_bytes``; a no-op without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        return
    scale = 1.0
    while path.stat().st_size > max_bytes and scale > 0.3:
        scale *= 0.8
        with Image.open(path) as img:
            small = img.convert("RGB").resize(
                (int(img.width * scale), int(img.height * scale)), Image.LANCZOS
            )
            small = small.quantize(colors=256)
        small.save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--max-mb", type=float, default=1.5)
    args = parser.parse_args(argv)
    try:
        screenshot(args.report, args.out, args.width, args.height)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"screenshot_report: {exc}", file=sys.stderr)
        return 1
    shrink(args.out, int(args.max_mb * 1024 * 1024))
    print(f"{args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
