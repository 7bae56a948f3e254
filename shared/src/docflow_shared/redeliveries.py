"""How many times in a row this process failed to handle each message.

A message whose handling raises is not committed and comes again
(``AckPolicy.NACK_ON_ERROR``). That is right for an outage (the database, the
broker), which ends; but a message that fails for a reason of its own, and
that the failure middleware could not deal with, would come back forever and
hold its partition. The consumers count here the failures of each message
(by topic, partition and offset); past ``limit`` redeliveries they
dead-letter it and go on (failures.py, batches.py). Outages are never
counted: those messages wait for the dependency, however long it takes.

The count is kept in memory only: after a restart or a rebalance a poison
message gets ``limit`` more deliveries, which only delays its dead letter.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol


class Origin(Protocol):
    """Where a message was read (``retries.Origin``)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


# The default of DOCFLOW_MAX_REDELIVERIES.
DEFAULT_MAX_REDELIVERIES = 5

# Messages tracked at most: a partition holds at most one failing message at a
# time per consumer, so this is far more than the live ones.
_TRACKED = 10_000


class Redeliveries:
    """Consecutive failures per message; ``limit`` redeliveries are allowed."""

    def __init__(self, limit: int = DEFAULT_MAX_REDELIVERIES) -> None:
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        self.limit = limit
        self._failures: OrderedDict[tuple[str, int, int], int] = OrderedDict()

    def failed(self, origin: Origin) -> int:
        """Record one more failure of the message at ``origin``; returns how many in a row."""
        key = (origin.topic, origin.partition, origin.offset)
        count = self._failures.pop(key, 0) + 1
        self._failures[key] = count
        while len(self._failures) > _TRACKED:
            self._failures.popitem(last=False)
        return count

    def exhausted(self, origin: Origin) -> bool:
        """Record a failure; True when the message was redelivered ``limit`` times
        already (and must not be again)."""
        return self.failed(origin) > self.limit

    def forget(self, origin: Origin | None) -> None:
        """The message at ``origin`` was handled (or given up): start again from 0."""
        if origin is not None:
            self._failures.pop((origin.topic, origin.partition, origin.offset), None)
