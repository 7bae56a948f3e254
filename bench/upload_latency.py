"""Upload latency of the running gateway: POST /v1/documents of a 1 MB PDF.

Starts a real Kafka broker (from its jars) and the gateway as its own
process, with one and with two worker processes in turns, ``--rounds``
times. Every answer is a 202 given only after Kafka acknowledged the event
(acks=all). The clients (bench/clients.py, their own process, on the same
two cores) send the same 1 MB PDF, the first pages of a corpus PDF written
with pypdf, at 1, 16 and 64 concurrent clients in two ways:

- **back to back** (closed loop): each client uploads again as soon as it is
  answered. This finds the gateway's capacity (requests/s); the latency is
  then mostly queueing: by Little's law, 16 clients at R requests/s wait
  16/R seconds on average.
- **independent clients** (open loop) at random moments, offering
  ``--rate`` uploads per second in all at 16 clients and more; fewer clients
  each offer what one of 16 does (one client alone offering the whole rate
  would queue behind itself on its one connection). The latency one upload
  sees at a load the machine carries; measured for ``--independent-seconds``
  per level, so the p99 rests on a few hundred uploads.

Reports the medians over rounds of p50, p99 and requests/s per level, and
the CPU the gateway and the broker spent per upload. Writes
bench/results/upload_latency.json.

    make bench            # or: .venv/bin/python bench/upload_latency.py
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import CORPUS, ROOT, cpu_seconds, write_report
from pypdf import PdfReader, PdfWriter

from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.processes import free_port
from docflow_local.stack import Stack, services
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.topics import specs

TARGET_BYTES = 1_000_000
BOUNDARY = "docflow-bench-boundary"
GOAL_AT_16_CLIENTS = {"p50_ms": 20, "p99_ms": 100}


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


def multipart(pdf: bytes) -> bytes:
    """The upload's request body: one ``file`` part."""
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="bench.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    )
    return head.encode() + pdf + f"\r\n--{BOUNDARY}--\r\n".encode()


def clients(url: str, body: Path, clients: int, qps: float, seconds: float) -> dict[str, Any]:
    """bench/clients.py uploading ``body``, in its own process."""
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "clients.py"),
            url,
            *("--clients", str(clients), "--qps", str(qps), "--seconds", str(seconds)),
            *("--body", str(body), "--expect", "202"),
            *("--content-type", f"multipart/form-data; boundary={BOUNDARY}"),
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(f"bench/clients.py failed ({out.returncode}): {out.stderr.strip()}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def one_gateway(
    kafka: LocalKafka, home: Path, workers: int, body: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Each level in both ways against a fresh gateway with ``workers`` processes."""
    gateway = Stack(
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        data_dir=home / f"data-{workers}",
        services=services(free_port())[:1],
        log_dir=home / "logs",
        extra_env={
            "DOCFLOW_RATE_LIMIT": "100000/second",
            "DOCFLOW_LOG_LEVEL": "WARNING",
            "DOCFLOW_WORKERS": str(workers),
        },
    )
    gateway.start()
    try:
        url = f"{gateway.url('gateway')}/v1/documents?dedup=false"
        clients(url, body, 4, 0, 2)  # warm-up: connections, producer, SQLite
        measured: dict[str, Any] = {"back_to_back": {}, "independent": {}}
        for n in args.levels:
            gateway_cpu, kafka_cpu = cpu_seconds(gateway.pid("gateway")), cpu_seconds(kafka.pid)
            result = clients(url, body, n, 0, args.seconds)
            uploads = max(1, result["requests"])
            gateway_cpu = cpu_seconds(gateway.pid("gateway")) - gateway_cpu
            kafka_cpu = cpu_seconds(kafka.pid) - kafka_cpu
            result["cpu_ms_per_upload"] = round(1000 * (gateway_cpu + kafka_cpu) / uploads, 2)
            result["gateway_cpu_ms_per_upload"] = round(1000 * gateway_cpu / uploads, 2)
            measured["back_to_back"][n] = result
        for n in args.levels:
            measured["independent"][n] = clients(
                url, body, n, per_client_rate(args.rate, n), args.independent_seconds
            )
        return measured
    finally:
        gateway.stop()


def per_client_rate(rate: float, clients: int) -> float:
    """Uploads/s each independent client offers: ``rate`` in all from 16 clients on."""
    return rate / max(clients, 16)


def medians(rounds: list[dict[str, Any]], way: str, n: int) -> dict[str, float]:
    runs = [r[way][n] for r in rounds]
    keys = ["p50_ms", "p99_ms", "requests_per_s", "client_cpu_cores"]
    if way == "back_to_back":
        keys += ["cpu_ms_per_upload", "gateway_cpu_ms_per_upload"]
    return {
        **{key: round(statistics.median(run[key] for run in runs), 2) for key in keys},
        "unexpected_answers": sum(run["unexpected_answers"] for run in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="per level and way")
    parser.add_argument(
        "--levels", default="1,16,64", type=lambda s: [int(n) for n in s.split(",")]
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=40.0,
        help="uploads/s 16 or more independent clients offer in all",
    )
    parser.add_argument(
        "--independent-seconds", type=float, default=10.0, help="per level, independent clients"
    )
    args = parser.parse_args()

    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="docflow-bench-") as tmp:
        home = Path(tmp)
        pdf = one_megabyte_pdf()
        body = home / "upload.bin"
        body.write_bytes(multipart(pdf))
        with LocalKafka(
            home=home / "kafka", port=free_port(), controller_port=free_port(), libs=ensure_jars()
        ) as kafka:
            asyncio.run(ensure_topics(kafka.bootstrap_servers, specs()))
            for _ in range(args.rounds):
                for workers in runs:  # alternating, so drift hits both alike
                    runs[workers].append(one_gateway(kafka, home, workers, body, args))

    results = {
        f"gateway_workers_{workers}": {
            way: {str(n): medians(rounds, way, n) for n in args.levels}
            for way in ("back_to_back", "independent")
        }
        for workers, rounds in runs.items()
    }
    default = results["gateway_workers_1"]
    at_16 = {way: default[way].get("16") for way in ("back_to_back", "independent")}
    capacity = default["back_to_back"]["16"]["requests_per_s"] if at_16["back_to_back"] else None
    write_report(
        "upload_latency",
        {
            "pdf_bytes": len(pdf),
            "rounds": args.rounds,
            "seconds_per_level": args.seconds,
            "independent_clients_offer_uploads_per_s": args.rate,
            "independent_uploads_per_s_per_client": {
                str(n): round(per_client_rate(args.rate, n), 3) for n in args.levels
            },
            "independent_seconds_per_level": args.independent_seconds,
            "goal_at_16_clients": GOAL_AT_16_CLIENTS,
            "goal_met_at_16_clients": {
                way: figures is not None
                and figures["p50_ms"] <= GOAL_AT_16_CLIENTS["p50_ms"]
                and figures["p99_ms"] <= GOAL_AT_16_CLIENTS["p99_ms"]
                for way, figures in at_16.items()
            },
            # What 16 back-to-back clients would need for a 20 ms median.
            "uploads_per_s_for_20ms_at_16_back_to_back": 16 / 0.020,
            "capacity_uploads_per_s": capacity,
            "results": results,
            "all": {f"gateway_workers_{w}": rounds for w, rounds in runs.items()},
        },
    )


if __name__ == "__main__":
    main()
