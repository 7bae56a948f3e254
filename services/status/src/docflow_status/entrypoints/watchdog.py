"""The status service's background loop: announce stalls, refresh the document gauges."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from docflow_shared.events import Status
from docflow_status.handlers import Watchdog

logger = logging.getLogger(__name__)

Census = Callable[[], Awaitable[tuple[dict[Status, int], int]]]
Lag = Callable[[], Awaitable[dict[str, int]]]
LAG_TIMEOUT_S = 10.0


class WatchdogMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.documents = Gauge(
            "docflow_documents",
            "Documents by status (deleted ones not counted), all tenants",
            ["status"],
            registry=registry,
        )
        self.stalled = Gauge(
            "docflow_documents_stalled",
            "Unfinished documents with no progress for longer than DOCFLOW_STALL_AFTER_S",
            registry=registry,
        )
        self.lag = Gauge(
            "docflow_consumer_lag_messages",
            "Messages a service's consumer group has not committed yet, on the topics it "
            "reads (topics.CONSUMERS); every status replica reports it: use max by (group)",
            ["group"],
            registry=registry,
        )
        self.announced = Counter(
            "docflow_stalls_announced",
            "Stalls this replica announced on docflow.document.stalled.v1",
            registry=registry,
        )


async def run_watchdog(
    watchdog: Watchdog,
    census: Census,
    metrics: WatchdogMetrics,
    *,
    every_s: float,
    lag: Lag | None = None,
) -> None:
    """Sweep every ``every_s`` seconds until cancelled; an error is logged, not fatal.
    Each round also refreshes the gauges (documents by status, consumer ``lag``)."""
    while True:
        try:
            stalls = await watchdog.sweep()
            for stall in stalls:
                logger.warning(
                    "document %s stalled: no progress while %s since %s",
                    stall.document_id,
                    stall.stage.value,
                    stall.since.isoformat(timespec="seconds"),
                )
            metrics.announced.inc(len(stalls))
            if watchdog.unowned is not None:
                given_up = await watchdog.unowned.sweep()
                if given_up:
                    logger.warning(
                        "%d events waited %.0f s for their document's upload; dead-lettered",
                        given_up,
                        watchdog.unowned.ttl_s,
                    )
            by_status, stalled = await census()
            for status, count in by_status.items():
                metrics.documents.labels(status.value).set(count)
            metrics.stalled.set(stalled)
            if lag is not None:
                # Bounded: a broker that does not answer must not hold up the sweeps.
                for group, behind in (await asyncio.wait_for(lag(), LAG_TIMEOUT_S)).items():
                    metrics.lag.labels(group).set(behind)
        except Exception:  # the database or Kafka is away: try again next round
            logger.exception("watchdog sweep failed")
        await asyncio.sleep(every_s)
