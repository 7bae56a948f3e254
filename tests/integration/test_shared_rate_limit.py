"""The per-tenant rate limit counted in a real Redis (DOCFLOW_RATE_LIMIT_STORAGE_URL):
one budget for every replica, and what happens when Redis is gone."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

import docflow_shared.ratelimit as ratelimit
from docflow_local.processes import free_port
from docflow_shared.problems import Problem
from docflow_shared.ratelimit import TenantRateLimit
from support.gateway import Recorder, gateway_clients
from support.redis import RedisServer, redis_server


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    home = tmp_path / "redis"
    home.mkdir()
    with redis_server(home, free_port()) as server:
        yield server


async def _admitted(limits: list[TenantRateLimit], tenant: str, requests: int) -> int:
    """How many of ``requests`` pass, sent in turn to each of ``limits``."""
    passed = 0
    for i in range(requests):
        try:
            await limits[i % len(limits)].check(tenant)
            passed += 1
        except Problem as problem:
            if problem.status != 429:
                raise
    return passed


async def test_two_replicas_on_one_redis_share_one_budget(redis: RedisServer) -> None:
    replicas = [TenantRateLimit("5/minute", redis.url) for _ in range(2)]
    assert await _admitted(replicas, "acme", 12) == 5
    # Each tenant has its own budget, shared too.
    assert await _admitted(replicas, "globex", 12) == 5
    # The control: in memory, each replica counts alone (twice the budget).
    alone = [TenantRateLimit("5/minute") for _ in range(2)]
    assert await _admitted(alone, "acme", 12) == 10


async def test_the_async_scheme_is_accepted_too(redis: RedisServer) -> None:
    first = TenantRateLimit("3/minute", redis.url)
    second = TenantRateLimit("3/minute", "async+" + redis.url)
    assert await _admitted([first, second], "acme", 6) == 3


async def test_an_unreachable_redis_fails_open_with_a_warning_then_counts_again(
    redis: RedisServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "RETRY_S", 1.0)
    limit = TenantRateLimit("2/minute", redis.url)
    assert await _admitted([limit], "acme", 3) == 2
    redis.stop()
    with caplog.at_level(logging.WARNING, logger="docflow_shared.ratelimit"):
        started = time.monotonic()
        assert await _admitted([limit], "acme", 20) == 20
        elapsed = time.monotonic() - started
    # One attempt at Redis, then no more until RETRY_S: one warning, and fast.
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1, caplog.text
    assert elapsed < 1.0
    # Redis back (empty: its data was not saved): counted again after RETRY_S.
    redis.start()
    await asyncio.sleep(1.1)
    assert await _admitted([limit], "acme", 4) == 2


def test_two_gateway_replicas_on_one_redis_answer_429_past_one_budget(
    tmp_path: Path, redis: RedisServer
) -> None:
    with ExitStack() as stack:
        clients = []
        for name in ("a", "b"):  # two apps, each with its own limiter
            (tmp_path / name).mkdir()
            make = stack.enter_context(contextmanager(gateway_clients)(tmp_path / name))
            clients.append(
                make(
                    tmp_path / name / "blobs",
                    Recorder(),
                    rate_limit="3/minute",
                    rate_limit_storage_url=redis.url,
                )
            )
        codes = [
            clients[i % 2]
            .post("/v1/documents", files={"file": (f"{i}.txt", f"{i}".encode())})
            .status_code
            for i in range(6)
        ]
    assert codes == [202, 202, 202, 429, 429, 429]


def test_a_storage_url_that_is_not_redis_is_refused_at_start() -> None:
    from docflow_gateway.settings import GatewaySettings

    with pytest.raises(ValueError, match="redis://"):
        GatewaySettings(rate_limit_storage_url="memcached://127.0.0.1:11211")
