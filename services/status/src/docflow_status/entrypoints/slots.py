"""A cap on each tenant's open status streams (issue 20, finding 5).

Each stream reads the database every ``DOCFLOW_STREAM_POLL_S``: 500 streams
of one tenant were 1,000 queries a second. Past ``DOCFLOW_MAX_STREAMS_PER_TENANT``
open streams in this process, a new one is answered 429 with ``Retry-After``.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import AsyncIterator
from typing import TypeVar

from docflow_shared.problems import Problem

Item = TypeVar("Item")

# A stream is usually closed by a page being reloaded or left: by then the
# slot is free again.
RETRY_AFTER_S = 5


class StreamSlots:
    """Counts each tenant's open streams, at most ``per_tenant``."""

    def __init__(self, per_tenant: int) -> None:
        self.per_tenant = per_tenant
        self.open: Counter[str] = Counter()

    def hold(self, tenant: str, stream: AsyncIterator[Item]) -> AsyncIterator[Item]:
        """``stream``, holding one of ``tenant``'s slots until it ends, fails, is
        cancelled (the client left) or is dropped unstarted; 429 when none is free."""
        if self.open[tenant] >= self.per_tenant:
            raise Problem(
                429,
                "too-many-streams",
                f"tenant {tenant!r} has {self.open[tenant]} status streams open, the most "
                f"allowed (DOCFLOW_MAX_STREAMS_PER_TENANT); close one, or wait "
                f"{RETRY_AFTER_S} s (Retry-After)",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.open[tenant] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.open[tenant] -= 1
                if self.open[tenant] <= 0:
                    del self.open[tenant]

        async def held() -> AsyncIterator[Item]:
            try:
                async for item in stream:
                    yield item
            finally:
                release()

        wrapped = held()
        # A response dropped before its stream started never runs the finally.
        weakref.finalize(wrapped, release)
        return wrapped
