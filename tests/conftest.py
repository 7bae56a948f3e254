"""Fixtures shared by every tier; the tier of a test is the folder it is in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from docflow_shared.sql import create_engine
from docflow_status.adapters.read_model import SqlReadModel
from support.corpus import CORPUS
from support.kafka import kafka_broker

_TIERS = ("unit", "service", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(item.fspath).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def corpus() -> Path:
    assert CORPUS.is_dir(), f"the shared corpus is missing at {CORPUS} (set DOCFLOW_CORPUS_DIR)"
    return CORPUS


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka broker for the whole session (see support/kafka.py)."""
    with kafka_broker(tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


@pytest.fixture
async def read_model(tmp_path: Path) -> AsyncIterator[SqlReadModel]:
    """The status read model on a fresh SQLite file."""
    model = SqlReadModel(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'status.db'}"))
    await model.create_schema()
    yield model
    await model.engine.dispose()
