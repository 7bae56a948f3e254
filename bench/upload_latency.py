"""Upload latency of the running gateway: POST /v1/documents of a 1 MB PDF.

Starts a real Kafka broker (from its jars) and the gateway as its own process
(with one and with two worker processes, one after the other),
then sends the same 1 MB PDF (the first pages of a corpus PDF, written with
pypdf) from 1, 16 and 64 concurrent clients; every answer is a 202 given only
after Kafka acknowledged the event (acks=all). Writes p50/p99 and requests/s
per level to bench/results/upload_latency.json.

The client runs in this process, on the same two cores as the gateway and
the broker; the figures include that contention.

    make bench            # or: .venv/bin/python bench/upload_latency.py
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from harness import CORPUS, write_report
from pypdf import PdfReader, PdfWriter

from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.processes import free_port
from docflow_local.stack import Stack, services
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.topics import specs

TARGET_BYTES = 1_000_000


def one_megabyte_pdf() -> bytes:
    """The first pages of the corpus' long PDF, as many as make about 1 MB."""
    reader = PdfReader(CORPUS / "pdf" / "GeoTopo-komprimiert.pdf")
    writer = PdfWriter()
    data = b""
    for page in reader.pages:
        writer.add_page(page)
        buffer = io.BytesIO()
        writer.write(buffer)
        data = buffer.getvalue()
        if len(data) >= TARGET_BYTES:
            break
    return data


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def level(url: str, pdf: bytes, clients: int, requests: int) -> dict[str, float]:
    """``requests`` uploads spread over ``clients`` concurrent connections."""
    latencies: list[float] = []
    errors = 0
    remaining = requests

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            response = await http.post(
                f"{url}/v1/documents?dedup=false", files={"file": ("bench.pdf", pdf)}
            )
            latencies.append(time.perf_counter() - started)
            if response.status_code != 202:
                errors += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
        "requests_per_s": round(len(latencies) / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=320, help="uploads per level")
    parser.add_argument("--levels", default="1,16,64", help="concurrent clients per level")
    parser.add_argument(
        "--workers", default="1,2", help="gateway worker processes to compare, one run each"
    )
    args = parser.parse_args()

    pdf = one_megabyte_pdf()
    with tempfile.TemporaryDirectory(prefix="docflow-bench-") as tmp:
        home = Path(tmp)
        with LocalKafka(
            home=home / "kafka", port=free_port(), controller_port=free_port(), libs=ensure_jars()
        ) as kafka:
            asyncio.run(ensure_topics(kafka.bootstrap_servers, specs()))
            results = {}
            for workers in args.workers.split(","):
                gateway = Stack(
                    kafka_bootstrap_servers=kafka.bootstrap_servers,
                    data_dir=home / f"data-{workers}",
                    services=services(free_port())[:1],
                    log_dir=home / "logs",
                    extra_env={
                        "DOCFLOW_RATE_LIMIT": "100000/second",
                        "DOCFLOW_LOG_LEVEL": "WARNING",
                        "DOCFLOW_WORKERS": workers,
                    },
                )
                gateway.start()
                try:
                    url = gateway.url("gateway")
                    asyncio.run(level(url, pdf, 4, 40))  # warm-up: connections, producer, SQLite
                    results[f"gateway_workers_{workers}"] = [
                        asyncio.run(level(url, pdf, int(n), args.requests))
                        for n in args.levels.split(",")
                    ]
                finally:
                    gateway.stop()

    write_report(
        "upload_latency",
        {
            "pdf_bytes": len(pdf),
            "goal_at_16_clients": {"p50_ms": 20, "p99_ms": 100},
            "runs": results,
        },
    )


if __name__ == "__main__":
    main()
