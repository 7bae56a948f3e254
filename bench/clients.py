"""HTTP clients that call a URL the way independent clients do, and their latencies.

Each client keeps one HTTP/1.1 connection open (connecting again when the
server closed it while it was idle). With ``--qps`` it sends its
request after a random pause (exponential, mean 1/qps): independent
progress bars or uploaders, not a synchronized burst. Open loop: a slow
answer does not slow the clients down, it queues, and the latency is
measured from when the request was due. With ``--qps 0`` each client sends
its next request as soon as the last one was answered (closed loop: the
server's capacity). A request is a prebuilt byte string written to the
socket, so the client's own cost stays far below the server's; run it as
its own process.

    .venv/bin/python bench/clients.py URL --clients 50 --qps 10 --seconds 15
    .venv/bin/python bench/clients.py URL --clients 16 --qps 0 --seconds 5 \\
        --body upload.bin --content-type 'multipart/form-data; boundary=b' --expect 202

Prints JSON: requests, requests/s, p50/p99/max in ms, answers other than --expect.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from pathlib import Path
from urllib.parse import urlsplit


def request_bytes(url: str, body: bytes | None, content_type: str | None) -> bytes:
    """The whole HTTP/1.1 request: a GET, or a POST of ``body``."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    if body is None:
        return f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: */*\r\n\r\n".encode()
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: */*\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> bytes:
    """Send ``request`` and read its answer; its status line (empty if the server
    had closed the connection)."""
    writer.write(request)
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status_line


async def client(
    url: str,
    request: bytes,
    qps: float,
    until: float,
    expect: str,
    latencies: list[float],
    failures: list[str],
) -> None:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    rng = random.Random()
    next_at = time.perf_counter() + (rng.expovariate(qps) if qps else 0.0)
    try:
        while next_at < until:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            # Measured from when the request was due: time spent waiting for
            # this connection's previous answer counts too.
            due = next_at
            try:
                status_line = await exchange(reader, writer, request)
            except (ConnectionError, asyncio.IncompleteReadError):
                status_line = b""
            if not status_line:
                # The server closed the connection while it was idle (its
                # keep-alive timeout): connect again, as an HTTP client would;
                # the time it takes counts.
                writer.close()
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                status_line = await exchange(reader, writer, request)
            answered = time.perf_counter()
            latencies.append(answered - due)
            status = status_line.split()[1].decode() if status_line else "closed"
            if status != expect:
                failures.append(status)
            next_at = due + rng.expovariate(qps) if qps else answered
    finally:
        writer.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def call(
    url: str,
    clients: int,
    qps: float,
    seconds: float,
    *,
    body: bytes | None = None,
    content_type: str | None = None,
    expect: str = "200",
) -> dict[str, object]:
    latencies: list[float] = []
    failures: list[str] = []
    request = request_bytes(url, body, content_type)
    until = time.perf_counter() + seconds
    cpu = time.process_time()
    await asyncio.gather(
        *(client(url, request, qps, until, expect, latencies, failures) for _ in range(clients))
    )
    return {
        # The client's own share of the machine.
        "client_cpu_cores": round((time.process_time() - cpu) / seconds, 2),
        "clients": clients,
        "per_client_qps": qps or None,
        "arrivals": "independent (exponential pauses)" if qps else "closed loop (back to back)",
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / seconds, 1),
        "unexpected_answers": len(failures),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        "max_ms": round(1000 * max(latencies), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--qps", type=float, default=10.0, help="requests per second per client; 0: back to back"
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--body", type=Path, help="POST this file's bytes (else GET)")
    parser.add_argument("--content-type")
    parser.add_argument("--expect", default="200", help="the status code of a good answer")
    args = parser.parse_args()
    body = args.body.read_bytes() if args.body else None
    result = asyncio.run(
        call(
            args.url,
            args.clients,
            args.qps,
            args.seconds,
            body=body,
            content_type=args.content_type,
            expect=args.expect,
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
