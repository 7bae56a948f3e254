"""Measuring the stages' queues (the projector) and reading the measurement (the API).

The projector asks Kafka every ``DOCFLOW_QUEUE_SAMPLE_S`` where each stage's
consumer group is on its input topic (``QueueSampler``) and writes the view to
the read model; the API reads it from there at most every
``DOCFLOW_QUEUE_SAMPLE_S`` (``CachedQueues``), never Kafka per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from aiokafka import TopicPartition

from docflow_status.domain.queues import INPUTS, PartitionQueue, QueueView

logger = logging.getLogger(__name__)

Positions = Callable[[Mapping[str, str]], Awaitable[dict[TopicPartition, tuple[int, int]]]]
"""Reads (committed, end) offsets of each input topic's partitions for its group."""


class QueueStore(Protocol):
    async def save_queues(
        self,
        partitions: Mapping[tuple[str, int], PartitionQueue],
        rates: Mapping[str, float | None],
        at: datetime,
    ) -> None: ...

    async def load_view(self) -> QueueView: ...


@dataclass(frozen=True)
class _Sample:
    at: datetime
    committed: int
    backlog: int


class QueueSampler:
    """Keeps the last ``window`` of each input topic's offsets; measures its group's
    rate over the latest stretch in which it had work all along."""

    def __init__(self, positions: Positions, store: QueueStore, *, window: timedelta) -> None:
        self._positions = positions
        self._store = store
        self.window = window
        self._samples: dict[str, deque[_Sample]] = {}
        self._rates: dict[str, float | None] = {}
        self.partitions: dict[tuple[str, int], PartitionQueue] = {}
        self.measured_at: datetime | None = None

    async def sample(self, now: datetime | None = None) -> None:
        """Measure once, and write the view for the API."""
        now = now or datetime.now(UTC)
        if not self.partitions:
            # After a restart: when each partition last moved is not forgotten
            # (else every document waiting behind a backlog would look stalled).
            self.partitions = dict((await self._store.load_view()).partitions)
        positions = await self._positions(INPUTS)
        partitions: dict[tuple[str, int], PartitionQueue] = {}
        for tp, (committed, end) in positions.items():
            before = self.partitions.get((tp.topic, tp.partition))
            moved = before is not None and committed > before.committed
            partitions[(tp.topic, tp.partition)] = PartitionQueue(
                committed,
                end,
                now if moved else (before.moved_at if before is not None else None),
            )
        self.partitions, self.measured_at = partitions, now
        for topic in INPUTS:
            mine = [q for (t, _), q in partitions.items() if t == topic]
            samples = self._samples.setdefault(topic, deque())
            samples.append(
                _Sample(now, sum(q.committed for q in mine), sum(q.backlog for q in mine))
            )
            while samples and now - samples[0].at > self.window:
                samples.popleft()
            self._rates[topic] = _busy_rate(samples, self._rates.get(topic))
        await self._store.save_queues(partitions, dict(self._rates), now)

    def view(self) -> QueueView:
        """What the watchdog needs (no documents' records)."""
        return QueueView(measured_at=self.measured_at, partitions=dict(self.partitions))


def _busy_rate(samples: deque[_Sample], before: float | None) -> float | None:
    """Records a second the group committed over the latest run of intervals in which
    it had work from start to end (so it was never idle for want of records); the rate
    measured before when there is no such interval. An interval that ends with
    nothing waiting says only that the group was at least that fast."""
    end = len(samples) - 1
    while end > 0 and samples[end].backlog == 0:
        end -= 1
    start = end
    while start > 0 and samples[start - 1].backlog > 0:
        start -= 1
    if start == end:
        return before
    first, last = samples[start], samples[end]
    seconds = (last.at - first.at).total_seconds()
    return (last.committed - first.committed) / seconds if seconds > 0 else before


async def run_sampler(sampler: QueueSampler, *, every_s: float, timeout_s: float = 10.0) -> None:
    """Sample every ``every_s`` seconds until cancelled; an error is logged, not fatal."""
    while True:
        try:
            await asyncio.wait_for(sampler.sample(), timeout_s)
        except Exception:  # Kafka or the database is away: try again next round
            logger.exception("measuring the queues failed")
        await asyncio.sleep(every_s)


class CachedQueues:
    """The API's view of the queues, read from the read model at most every ``ttl_s``."""

    def __init__(self, store: QueueStore, *, ttl_s: float) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._view = QueueView()
        self._read_at = -float("inf")
        self._lock = asyncio.Lock()

    async def view(self) -> QueueView:
        if time.monotonic() - self._read_at < self._ttl_s:
            return self._view
        async with self._lock:
            if time.monotonic() - self._read_at >= self._ttl_s:
                try:
                    self._view = await self._store.load_view()
                except Exception:  # the database is away: no estimates until it is back
                    logger.exception("reading the queues failed")
                    self._view = QueueView()
                self._read_at = time.monotonic()
        return self._view
