"""Webhook delivery latency: from a document's status change to the receiver.

The system as ``make run`` runs it (gateway, status service, extractor,
embedder and the webhook dispatcher as processes on a local Kafka broker), a
receiver on this machine that verifies each delivery's signature
(``docflow_client.verify_webhook``), one endpoint registered for
``completed`` and ``progress``, and ``--documents`` short text documents
uploaded ``--per-request`` at a time. For every delivery, measured at its
arrival:

* **from the change**: the status's ``updated_at`` (when the event that
  changed it happened: the embedder's ``DocumentIndexed`` for a completion),
  so the status service's projection and the status topic are included;
* **from the snapshot**: the body's ``timestamp`` (when the status service
  published the new status), the dispatcher's own share.

Percentiles (p50, p90, p99, max) per kind. Writes bench/results/webhook_latency.json.

    .venv/bin/python bench/webhook_latency.py [--documents 60]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness import running_system, write_report

from docflow_client import Docflow, verify_webhook

WANTED = ("gateway", "status", "extractor", "embedder", "webhooks")


class Receiver:
    def __init__(self) -> None:
        self.secret = ""
        self.arrivals: list[tuple[datetime, dict[str, Any]]] = []
        self.unverified = 0
        self.ids: list[str] = []
        self.lock = threading.Lock()

    def serve(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                arrived = datetime.now(UTC)
                try:
                    payload = verify_webhook(receiver.secret, body, dict(self.headers.items()))
                except Exception:
                    with receiver.lock:
                        receiver.unverified += 1
                    self.send_response(400)
                else:
                    with receiver.lock:
                        receiver.arrivals.append((arrived, payload))
                        receiver.ids.append(self.headers.get("webhook-id", ""))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # socketserver's listen backlog is 5: concurrent deliveries past it had
            # their connection refused and retried by TCP a second later, which
            # measured the receiver, not the dispatcher.
            request_queue_size = 256

        server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def completed(self) -> int:
        with self.lock:
            return sum(p["type"] == "document.completed" for _, p in self.arrivals)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {
        "count": len(ordered),
        "p50": round(statistics.median(ordered), 3),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": round(ordered[-1], 3),
    }


def measure(receiver: Receiver) -> dict[str, Any]:
    by_kind: dict[str, dict[str, list[float]]] = {}
    for arrived, payload in receiver.arrivals:
        kind = payload["type"].removeprefix("document.")
        changed = datetime.fromisoformat(payload["data"]["updated_at"])
        published = datetime.fromisoformat(payload["timestamp"])
        found = by_kind.setdefault(kind, {"from_change_s": [], "from_snapshot_s": []})
        found["from_change_s"].append((arrived - changed).total_seconds())
        found["from_snapshot_s"].append((arrived - published).total_seconds())
    return {
        kind: {name: percentiles(values) for name, values in found.items()}
        for kind, found in by_kind.items()
    }


def run(documents: int, per_request: int) -> dict[str, Any]:
    receiver = Receiver()
    server = receiver.serve()
    try:
        with (
            running_system({}, only=WANTED) as stack,
            Docflow(stack.url("gateway"), stack.url("status")) as client,
        ):
            endpoint = client.create_webhook(
                f"http://127.0.0.1:{server.server_address[1]}/bench",
                events=["completed", "progress"],
            )
            receiver.secret = endpoint.secret
            started = time.monotonic()
            for first in range(0, documents, per_request):
                batch = [
                    (f"doc-{n}.txt", f"Document {n}: glaciers retreat in warm summers.\n".encode())
                    for n in range(first, min(documents, first + per_request))
                ]
                client.upload(*batch, dedup=False)
            while receiver.completed() < documents:
                if time.monotonic() - started > 900:
                    raise TimeoutError(f"{receiver.completed()} of {documents} completions came")
                time.sleep(0.2)
            elapsed = time.monotonic() - started
            time.sleep(2.0)  # progress deliveries still on their way
            states = [d.state for d in client.webhook_deliveries(endpoint.id, limit=500).deliveries]
    finally:
        server.shutdown()
    return {
        "documents": documents,
        "per_request": per_request,
        "seconds_to_last_completion": round(elapsed, 1),
        "deliveries": len(receiver.arrivals),
        "unverified": receiver.unverified,
        # The same webhook-id received more than once (a retry of a slow answer).
        "duplicates": len(receiver.ids) - len(set(receiver.ids)),
        "not_delivered": sum(state != "delivered" for state in states),
        "latency": measure(receiver),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=60)
    parser.add_argument("--per-request", type=int, default=10)
    args = parser.parse_args()
    report = run(args.documents, args.per_request)
    write_report("webhook_latency", report)


if __name__ == "__main__":
    main()
