"""Benchmark: how many /api/v3/ticker/price requests per second the sandbox exchange serves.

The sandbox runs as its own process (``python -m mystic_trading.sandbox``, one uvicorn worker,
httptools, uvloop) on a free loopback port with a budget no run can reach. A separate client
process drives ``GET /api/v3/ticker/price?symbol=BTCUSDT`` over keep-alive connections with raw
asyncio streams (no HTTP library on the client's hot path, so the client is not the
bottleneck) for a bounded time, and reports throughput and latency percentiles.

    python bench/sandbox.py            # ~5 s
    python bench/sandbox.py --quick    # ~1 s
    python bench/sandbox.py --json     # one JSON object on stdout

Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time

PATH = "/api/v3/ticker/price?symbol=BTCUSDT"
HOST = "127.0.0.1"


async def _connection(port: int, deadline: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection(HOST, port)
    request = f"GET {PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    done = 0
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            found = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if found is None or not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected answer: {head[:200]!r}")
            await reader.readexactly(int(found.group(1)))
            latencies.append(time.perf_counter() - t0)
            done += 1
    finally:
        writer.close()
        await writer.wait_closed()
    return done


async def _drive(port: int, seconds: float, connections: int) -> dict[str, float]:
    latencies: list[float] = []
    # warm-up: first answers build the minute's 1s candles
    await _connection(port, time.perf_counter() + 0.2, [])
    start = time.perf_counter()
    deadline = start + seconds
    counts = await asyncio.gather(
        *(_connection(port, deadline, latencies) for _ in range(connections))
    )
    elapsed = time.perf_counter() - start
    latencies.sort()
    n = sum(counts)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": n,
        "seconds": round(elapsed, 3),
        "req_per_s": round(n / elapsed, 1),
        "p50_ms": round(pct(0.50), 3),
        "p99_ms": round(pct(0.99), 3),
        "connections": connections,
    }


def client_main(port: int, seconds: float, connections: int) -> None:
    """Run in the client process: drive the server, print one JSON line."""
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        result = runner.run(_drive(port, seconds, connections))
    sys.stdout.write(json.dumps(result) + "\n")


def start_sandbox() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mystic_trading.sandbox", "--port", "0",
         "--weight-limit", "1000000000", "--log-level", "warning"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    found = re.search(r"url=http://127\.0\.0\.1:(\d+)", line)
    if found is None:
        proc.kill()
        raise SystemExit(f"sandbox did not start: {line!r}")
    return proc, int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 1 s instead of 5 s")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--client", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    seconds = args.seconds or (1.0 if args.quick else 5.0)
    if args.client is not None:
        client_main(args.client, seconds, args.connections)
        return 0

    server, port = start_sandbox()
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--client", str(port), "--seconds", str(seconds),
             "--connections", str(args.connections)],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stderr is not None:
            server.stderr.close()
    result = json.loads(out.stdout)
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    rows = [
        ("endpoint", f"GET {PATH}"),
        ("connections", str(result["connections"])),
        ("duration", f"{result['seconds']:.2f} s"),
        ("requests", str(result["requests"])),
        ("throughput", f"{result['req_per_s']:.0f} req/s"),
        ("latency p50", f"{result['p50_ms']:.3f} ms"),
        ("latency p99", f"{result['p99_ms']:.3f} ms"),
    ]
    width = max(len(k) for k, _ in rows)
    sys.stdout.write("sandbox exchange, one uvicorn worker (httptools, uvloop)\n")
    for key, value in rows:
        sys.stdout.write(f"  {key:<{width}}  {value}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
