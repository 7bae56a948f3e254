"""Each tenant's open status streams are capped, and its requests rate limited
(issue 20, finding 5)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

from docflow_shared.problems import Problem
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.entrypoints.app import StatusApi, create_app
from docflow_status.entrypoints.slots import StreamSlots
from docflow_status.settings import StatusSettings


async def forever() -> AsyncIterator[int]:
    n = 0
    while True:
        yield n
        n += 1
        await asyncio.sleep(0)


async def test_a_stream_over_the_tenants_cap_is_429_with_retry_after() -> None:
    slots = StreamSlots(per_tenant=2)
    held = [slots.hold("acme", forever()) for _ in range(2)]
    with pytest.raises(Problem) as refused:
        slots.hold("acme", forever())
    assert refused.value.status == 429
    assert refused.value.headers["Retry-After"].isdigit()
    # Another tenant has its own slots.
    slots.hold("globex", forever())
    assert len(held) == 2


async def test_a_slot_is_free_again_once_its_stream_ends_or_is_cancelled() -> None:
    slots = StreamSlots(per_tenant=1)
    stream = slots.hold("acme", forever())
    assert await anext(stream) == 0

    async def read_all() -> None:
        async for _ in stream:
            await asyncio.sleep(1)

    reader = asyncio.create_task(read_all())
    await asyncio.sleep(0)
    reader.cancel()  # the client left
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert slots.open["acme"] == 0
    again = slots.hold("acme", forever())
    await anext(again)
    await again.aclose()  # the stream ended
    assert slots.open["acme"] == 0


async def test_a_stream_dropped_before_it_started_frees_its_slot() -> None:
    slots = StreamSlots(per_tenant=1)
    slots.hold("acme", forever())  # never iterated, dropped
    gc.collect()
    slots.hold("acme", forever())


async def test_the_status_api_rate_limits_each_tenant(read_model: SqlReadModel) -> None:
    api = StatusApi(
        settings=StatusSettings(default_tenant="t1", rate_limit="3/minute"),
        documents=read_model,
        checks={},
        registry=CollectorRegistry(),
    )
    transport = httpx.ASGITransport(app=create_app(api))
    async with httpx.AsyncClient(transport=transport, base_url="http://status") as http:
        answers = [await http.get("/v1/documents/counts") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["code"] == "rate-limited"
    assert int(answers[-1].headers["Retry-After"]) >= 1
