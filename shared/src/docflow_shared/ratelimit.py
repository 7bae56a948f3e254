"""Per-tenant request rate limit (the ``limits`` library, moving window), of the
gateway and of the status service (``DOCFLOW_RATE_LIMIT``).

By default the window lives in each replica's memory, so with N replicas a
tenant gets up to N times the configured rate. With
``DOCFLOW_RATE_LIMIT_STORAGE_URL`` (``redis://host:6379/0``) every replica
counts in one Redis, and a tenant has one budget however many replicas serve
it.

If that Redis cannot be reached the limit **fails open**: the request is
served, a warning is logged (at most once per ``RETRY_S``), and Redis is not
asked again for ``RETRY_S``, so a dead Redis costs one connection timeout per
``RETRY_S`` rather than one per request. The limit is a fairness guard
behind authentication, not an access control; failing closed would make
Redis a single point of failure of every upload and status read.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from docflow_shared.problems import Problem

log = logging.getLogger(__name__)

RETRY_S = 5.0
"""After a storage error: how long requests pass unlimited before Redis is tried again."""
_TIMEOUT_S = 0.5
"""Connecting to Redis and each command; beyond, the request passes (fail open)."""


def _storage(url: str | None) -> Storage:
    if not url:
        return MemoryStorage()
    # Checked by the settings (redis://, rediss://, redis+unix://); the
    # library names its asyncio storages async+redis://…
    if not url.startswith("async+"):
        url = "async+" + url
    storage = storage_from_string(
        url,
        implementation="redispy",  # redis-py, not coredis
        wrap_exceptions=True,  # every client error is a StorageError
        socket_timeout=_TIMEOUT_S,
        socket_connect_timeout=_TIMEOUT_S,
    )
    assert isinstance(storage, Storage)
    return storage


class TenantRateLimit:
    """Answers 429 with ``Retry-After`` once a tenant exceeds the configured rate."""

    def __init__(self, spec: str, storage_url: str | None = None) -> None:
        self.items = parse_many(spec)
        self.shared = bool(storage_url)
        self._limiter = MovingWindowRateLimiter(_storage(storage_url))
        self._skip_until = 0.0

    async def check(self, tenant_id: str) -> None:
        if time.monotonic() < self._skip_until:
            return
        try:
            await self._check(tenant_id)
        except StorageError as error:
            self._skip_until = time.monotonic() + RETRY_S
            log.warning(
                "the rate limit's storage is unreachable (%s); requests pass unlimited"
                " for %.0f s, then it is tried again",
                error.storage_error or error,
                RETRY_S,
            )

    async def _check(self, tenant_id: str) -> None:
        # A test first, so a refused request spends no budget; then each hit,
        # which is atomic in the storage: two replicas racing for the last
        # slot cannot both take it.
        for item in self.items:
            if not await self._limiter.test(item, tenant_id):
                await self._refuse(item, tenant_id)
        for item in self.items:
            if not await self._limiter.hit(item, tenant_id):
                await self._refuse(item, tenant_id)

    async def _refuse(self, item: RateLimitItem, tenant_id: str) -> None:
        stats = await self._limiter.get_window_stats(item, tenant_id)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise Problem(
            429,
            "rate-limited",
            f"tenant {tenant_id!r} sent more than {item} requests; "
            f"wait {retry_after} s (Retry-After) and send again",
            headers={"Retry-After": str(retry_after)},
        )
