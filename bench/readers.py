"""Readers that poll a URL the way independent clients do, and their latencies.

Each reader keeps one HTTP/1.1 connection open and GETs the URL after a
random pause (exponential, mean 1/qps): independent progress bars, not a
synchronized burst. Open loop: a slow answer does not slow the readers
down, it queues. The client is a few lines over asyncio streams, so its own
cost stays far below the server's; run it as its own process.

    .venv/bin/python bench/readers.py URL --readers 50 --qps 10 --seconds 15

Prints JSON: requests, requests/s, p50/p99/max in ms, answers other than 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from urllib.parse import urlsplit


async def reader(
    url: str, qps: float, until: float, latencies: list[float], failures: list[str]
) -> None:
    parts = urlsplit(url)
    request = (
        f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: */*\r\n\r\n"
    ).encode()
    reader_, writer = await asyncio.open_connection(parts.hostname, parts.port)
    rng = random.Random()
    next_at = time.perf_counter() + rng.expovariate(qps)
    try:
        while next_at < until:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            # Measured from when the request was due: time spent waiting for
            # this connection's previous answer counts too.
            due = next_at
            writer.write(request)
            status_line = await reader_.readline()
            length = 0
            while (line := await reader_.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader_.readexactly(length)
            latencies.append(time.perf_counter() - due)
            status = status_line.split()[1].decode() if status_line else "closed"
            if status != "200":
                failures.append(status)
            next_at = due + rng.expovariate(qps)
    finally:
        writer.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def poll(url: str, readers: int, qps: float, seconds: float) -> dict[str, object]:
    latencies: list[float] = []
    failures: list[str] = []
    until = time.perf_counter() + seconds
    cpu = time.process_time()
    await asyncio.gather(*(reader(url, qps, until, latencies, failures) for _ in range(readers)))
    return {
        # The client's own share of the machine.
        "client_cpu_cores": round((time.process_time() - cpu) / seconds, 2),
        "readers": readers,
        "per_reader_qps": qps,
        "arrivals": "independent (exponential pauses)",
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / seconds, 1),
        "not_200": len(failures),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        "max_ms": round(1000 * max(latencies), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--qps", type=float, default=10.0, help="requests per second per reader")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(poll(args.url, args.readers, args.qps, args.seconds))))


if __name__ == "__main__":
    main()
