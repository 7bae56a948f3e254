"""The status service's end-to-end histogram: each document attempt that ends is
observed once, by its events' own times, however often its events arrive."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from docflow_shared.events import Event
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.domain.projection import evolve
from docflow_status.entrypoints.metrics import ProjectionMetrics
from docflow_status.handlers import project_events
from support.histories import failed_while_extracting, retry_of, successful

pytestmark = pytest.mark.unit


async def _nothing(_: object) -> None:
    return None


async def _project(
    events: list[Event], read_model: SqlReadModel, metrics: ProjectionMetrics
) -> None:
    await project_events(
        events, read_model=read_model, announce=_nothing, finished=metrics.observe_finished
    )


def _count(registry: CollectorRegistry, outcome: str) -> float:
    value = registry.get_sample_value(
        "docflow_document_duration_seconds_count", {"outcome": outcome}
    )
    return value or 0.0


async def test_a_finished_document_is_observed_once(read_model: SqlReadModel) -> None:
    registry = CollectorRegistry()
    metrics = ProjectionMetrics(registry)
    history = successful()
    await _project(history[:3], read_model, metrics)
    assert _count(registry, "completed") == 0
    await _project(history, read_model, metrics)  # redelivered
    await _project(history[-1:], read_model, metrics)  # again
    assert _count(registry, "completed") == 1
    seconds = registry.get_sample_value(
        "docflow_document_duration_seconds_sum", {"outcome": "completed"}
    )
    assert seconds == (history[-1].occurred_at - history[0].occurred_at).total_seconds()


async def test_a_retried_document_ends_twice(read_model: SqlReadModel) -> None:
    registry = CollectorRegistry()
    metrics = ProjectionMetrics(registry)
    failed = failed_while_extracting()
    document_id = failed[0].document_id
    await _project(failed, read_model, metrics)
    assert _count(registry, "failed") == 1
    projected = await read_model.apply_all([retry_of(document_id, 100.0)], evolve)
    assert projected.finished == []  # the retry starts it again: not an end
