"""Per-tenant request rate limit (the ``limits`` library, moving window, in memory),
of the gateway and of the status service (``DOCFLOW_RATE_LIMIT``).

The window lives in each replica's memory, so with N replicas a tenant gets
up to N times the configured rate; a shared store (Redis) would make it
global.
"""

from __future__ import annotations

import math
import time

from limits import parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from docflow_shared.problems import Problem


class TenantRateLimit:
    """Answers 429 with ``Retry-After`` once a tenant exceeds the configured rate."""

    def __init__(self, spec: str) -> None:
        self.items = parse_many(spec)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def check(self, tenant_id: str) -> None:
        for item in self.items:
            if not await self._limiter.test(item, tenant_id):
                stats = await self._limiter.get_window_stats(item, tenant_id)
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                raise Problem(
                    429,
                    "rate-limited",
                    f"tenant {tenant_id!r} sent more than {item} requests; "
                    f"wait {retry_after} s (Retry-After) and send again",
                    headers={"Retry-After": str(retry_after)},
                )
        for item in self.items:
            await self._limiter.hit(item, tenant_id)
