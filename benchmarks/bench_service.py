"""The HTTP service under a bounded local load: requests/s, p50/p99 latency, errors, server memory.

Starts ``medsift serve RUN`` on 127.0.0.1 (loopback only) in a child process, sends a fixed number of
``POST /v1/ade`` requests from N concurrent clients (httpx), and reads the server's RSS before and after.

    python benchmarks/bench_service.py --run runs/bench-ade --requests 2000 --clients 16
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import append_section, describe_machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: Path, port: int, backend: str, threads: int) -> subprocess.Popen:
    code = (
        "import torch, sys; torch.set_num_threads(int(sys.argv[1])); from medsift.cli import main; "
        "main(['serve', sys.argv[2], '--port', sys.argv[3], '--backend', sys.argv[4]])"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(threads), str(run), str(port), backend],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited with code {server.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("server did not become healthy")


# Malformed requests mixed into the load, each with the documented answer (never a 500).
MALFORMED = [
    ({"json": {"texts": [""]}}, 422),  # empty text
    ({"json": {"texts": ["x" * 50_000]}}, 422),  # longer than --max-chars
    ({"json": {"texts": ["ok"] * 1000}}, 413),  # more texts than --max-batch
    ({"json": {"texts": [42]}}, 422),  # not a string
    ({"json": {"posts": ["wrong field"]}}, 422),
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
]


async def load(
    url: str, texts: list[str], requests: int, clients: int, per_request: int, malformed_every: int = 0
):
    import httpx

    latencies: list[float] = []
    errors = 0
    malformed_answered = 0
    counter = iter(range(requests))

    async def client(c: httpx.AsyncClient) -> None:
        nonlocal errors, malformed_answered
        for i in counter:
            start = time.perf_counter()
            try:
                if malformed_every and i % malformed_every == malformed_every - 1:
                    kind, expected = MALFORMED[(i // malformed_every) % len(MALFORMED)]
                    response = await c.post(url + "/v1/ade", **kind)
                    ok = response.status_code == expected
                    malformed_answered += ok
                else:
                    batch = [texts[(i * per_request + k) % len(texts)] for k in range(per_request)]
                    response = await c.post(url + "/v1/ade", json={"texts": batch})
                    ok = response.status_code == 200
                errors += not ok
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - start)

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as c:
        start = time.perf_counter()
        await asyncio.gather(*(client(c) for _ in range(clients)))
        wall = time.perf_counter() - start
    return np.array(latencies), errors, wall, malformed_answered


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/task1"))
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--texts-per-request", type=int, default=1)
    ap.add_argument("--backend", default="torch")
    ap.add_argument(
        "--warmup",
        type=int,
        default=1000,
        help="requests before memory is first read (the allocator settles over the first ~100 model calls)",
    )
    ap.add_argument(
        "--malformed-every", type=int, default=10, help="every Nth request is malformed (0: none)"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--docs", type=Path, default=Path("docs/benchmarks.md"))
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()

    import psutil

    from medsift.io import read_ade_files

    texts = read_ade_files(sorted(args.data_dir.glob("*.csv")))["text"].head(5000).tolist()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(args.run, port, args.backend, args.threads)
    try:
        wait_healthy(url, server)
        process = psutil.Process(server.pid)
        rss_loaded = process.memory_info().rss
        asyncio.run(load(url, texts, args.warmup, args.clients, args.texts_per_request))  # warm-up
        rss_start = process.memory_info().rss
        half = args.requests // 2
        latencies, errors, wall, malformed = asyncio.run(
            load(url, texts, half, args.clients, args.texts_per_request, args.malformed_every)
        )
        rss_mid = process.memory_info().rss
        rest = asyncio.run(
            load(url, texts, args.requests - half, args.clients, args.texts_per_request, args.malformed_every)
        )
        latencies = np.concatenate([latencies, rest[0]])
        errors, wall, malformed = errors + rest[1], wall + rest[2], malformed + rest[3]
        rss_end = process.memory_info().rss
    finally:
        server.terminate()
        server.wait(timeout=30)
    p50, p99 = (float(np.percentile(latencies, q)) * 1000 for q in (50, 99))
    body = "\n".join(
        [
            f"Machine: {describe_machine()}; server with {args.threads} threads, backend {args.backend}.",
            f"Load: {args.requests} requests of {args.texts_per_request} real post(s) from {args.clients} "
            f"concurrent clients over loopback (after {args.warmup} warm-up requests); every {args.malformed_every}th request "
            f"is malformed (empty, too long, too many texts, wrong type, wrong field, broken JSON): {malformed} of "
            f"them got exactly their documented 413/422 answer. 'errors' counts every answer that was not the "
            f"documented one (200 for valid requests). RSS is read once the model is loaded, after the warm-up "
            f"(the allocator's pools grow over the first model calls, whatever their shapes), half-way and at the end.",
            "",
            "| requests/s | p50 latency (ms) | p99 latency (ms) | errors | server RSS loaded / after warm-up → half-way → end (MiB) |",
            "| ---: | ---: | ---: | ---: | ---: |",
            f"| {args.requests / wall:.1f} | {p50:.1f} | {p99:.1f} | {errors} | "
            f"{rss_loaded / 2**20:.0f} / {rss_start / 2**20:.0f} → {rss_mid / 2**20:.0f} → {rss_end / 2**20:.0f} |",
            "",
            f"Reproduce: `python benchmarks/bench_service.py --run {args.run} --requests {args.requests} "
            f"--clients {args.clients} --warmup {args.warmup} --backend {args.backend}`",
        ]
    )
    print(body)
    if not args.no_docs:
        append_section(f"HTTP service under load ({args.backend})", body, args.docs)


if __name__ == "__main__":
    main()
