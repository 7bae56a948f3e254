"""How good is the status service's estimate of completion (issue 23)?

Starts the running system as ``make run`` does (a Kafka broker and the
services as separate processes), sends ``--documents`` short text documents
at once (in requests of 100 files), then reads the tenant's listing every
``--every`` seconds until all are finished, keeping every estimate shown
(``estimated_completion_at``) with the moment it was read, and the queue
positions. Each estimate is then compared with the document's actual
``completed_at``: the error in seconds, and relative to the time that was
left when it was read. Reports the median and p90 of both, how many of the
readings of unfinished documents had an estimate, and whether the queue
positions fell. Writes bench/results/eta_accuracy.json.

    .venv/bin/python bench/eta_accuracy.py --documents 300
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from harness import RESULTS, running_system, write_report

WORDS = [
    "river",
    "stone",
    "cloud",
    "maple",
    "orbit",
    "lantern",
    "quartz",
    "meadow",
    "signal",
    "harbor",
    "copper",
    "violet",
    "thunder",
    "saffron",
    "glacier",
    "walnut",
]


def short_document(n: int) -> bytes:
    """A few sentences, different for each ``n`` (so none is a duplicate): one chunk."""
    words = [WORDS[(n * 7 + i * 3) % len(WORDS)] for i in range(60)]
    return (f"# Note {n}\n\n" + " ".join(words) + f". Number {n}.\n").encode()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def upload(http: httpx.Client, gateway: str, first: int, count: int) -> list[str]:
    files = [
        ("file", (f"note-{n}.md", short_document(n), "text/markdown"))
        for n in range(first, first + count)
    ]
    response = http.post(f"{gateway}/v1/documents", files=files)
    response.raise_for_status()
    return [str(d["id"]) for d in response.json()["documents"]]


def listing(http: httpx.Client, status_url: str) -> list[dict[str, Any]]:
    """Every document of the tenant (newest first, pages of 500)."""
    documents: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        body = http.get(f"{status_url}/v1/documents", params=params).json()
        documents += body["documents"]
        cursor = body["next_cursor"]
        if not cursor:
            return documents


def summary(errors: list[float]) -> dict[str, float | None]:
    if not errors:
        return {"median": None, "p90": None}
    return {"median": round(statistics.median(errors), 2), "p90": round(percentile(errors, 0.9), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between readings")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    readings: list[tuple[datetime, str, str | None, int | None]] = []
    finished: dict[str, dict[str, Any]] = {}
    with (
        running_system({"DOCFLOW_RATE_LIMIT": "1000/second"}) as stack,
        httpx.Client(timeout=120) as http,
    ):
        gateway, status_url = stack.url("gateway"), stack.url("status")
        # Warm up: the model, the workers, the consumer groups.
        [warm] = upload(http, gateway, -1, 1)
        while http.get(f"{status_url}/v1/documents/{warm}").json()["status"] not in (
            "completed",
            "failed",
        ):
            time.sleep(0.5)
        sent_at = datetime.now(UTC)
        ids: list[str] = []
        for first in range(0, args.documents, 100):
            ids += upload(http, gateway, first, min(100, args.documents - first))
        mine = set(ids)
        deadline = time.monotonic() + args.timeout
        while len(finished) < len(mine) and time.monotonic() < deadline:
            read_at = datetime.now(UTC)
            for doc in listing(http, status_url):
                if doc["id"] not in mine:
                    continue
                if doc["status"] in ("completed", "failed", "cancelled"):
                    finished[doc["id"]] = doc
                    continue
                readings.append(
                    (
                        read_at,
                        doc["id"],
                        doc["estimated_completion_at"],
                        doc["queue_position"],
                    )
                )
            time.sleep(args.every)

    completed = {
        d: datetime.fromisoformat(doc["completed_at"])
        for d, doc in finished.items()
        if doc["status"] == "completed" and doc["completed_at"]
    }
    absolute: list[float] = []
    relative: list[float] = []
    # Estimated time left over actual time left (1 is exact; above: too late),
    # in the first and the second half of the drain.
    ratios: tuple[list[float], list[float]] = ([], [])
    first_estimates: dict[str, float] = {}
    with_estimate = 0
    last_done = max(completed.values()) if completed else sent_at
    half = sent_at + (last_done - sent_at) / 2
    for read_at, d, eta, _ in readings:
        if eta is None or d not in completed:
            continue
        with_estimate += 1
        actual = completed[d]
        error = abs((datetime.fromisoformat(eta) - actual).total_seconds())
        absolute.append(error)
        left = (actual - read_at).total_seconds()
        if left > 1:
            relative.append(error / left)
            estimated_left = (datetime.fromisoformat(eta) - read_at).total_seconds()
            ratios[read_at >= half].append(estimated_left / left)
        first_estimates.setdefault(d, error)
    positions = [p for _, _, _, p in readings if p is not None]
    report: dict[str, Any] = {
        "documents": args.documents,
        "completed": len(completed),
        "failed_or_cancelled": len(finished) - len(completed),
        "drain_s": round((last_done - sent_at).total_seconds(), 1),
        "readings_of_unfinished": len(readings),
        "readings_with_estimate": with_estimate,
        "share_with_estimate": round(with_estimate / len(readings), 3) if readings else None,
        "abs_error_s": summary(absolute),
        "relative_error": summary(relative),
        "first_estimate_abs_error_s": summary(list(first_estimates.values())),
        "estimated_over_actual_time_left_median": {
            "first_half": round(statistics.median(ratios[0]), 2) if ratios[0] else None,
            "second_half": round(statistics.median(ratios[1]), 2) if ratios[1] else None,
        },
        "queue_position_max": max(positions) if positions else None,
        "reading_every_s": args.every,
    }
    write_report("eta_accuracy", report)
    # Every reading, for a closer look (not in the summary).
    (RESULTS / "eta_accuracy_readings.json").write_text(
        json.dumps(
            {
                "sent_at": sent_at.isoformat(),
                "completed": {d: at.isoformat() for d, at in completed.items()},
                "readings": [
                    [read_at.isoformat(), d, eta, position]
                    for read_at, d, eta, position in readings
                ],
            }
        )
    )


if __name__ == "__main__":
    main()
