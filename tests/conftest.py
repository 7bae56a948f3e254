"""Fixtures shared by every tier; the tier of a test is the folder it is in."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from docflow_local.postgres import LocalPostgres
from docflow_local.processes import free_port
from docflow_shared.sql import create_engine
from docflow_status.adapters.read_model import SqlReadModel
from support.corpus import CORPUS
from support.kafka import kafka_broker
from support.qdrant import NO_SERVER, qdrant_server
from support.seaweedfs import S3Server, seaweedfs

_TIERS = ("unit", "service", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(item.fspath).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def corpus() -> Path:
    assert CORPUS.is_dir(), f"the test corpus is missing at {CORPUS} (set DOCFLOW_CORPUS_DIR)"
    return CORPUS


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka broker for the whole session (see support/kafka.py)."""
    with kafka_broker(tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 server (SeaweedFS, see support/seaweedfs.py) for the whole session;
    each user keeps to a prefix of its own in the one bucket."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="session")
def qdrant_url() -> Iterator[str]:
    """A Qdrant server's URL (see support/qdrant.py); skips the test where there is none."""
    with qdrant_server() as url:
        if url is None:
            pytest.skip(NO_SERVER)
        yield url


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL server from the machine's packages for the whole session.

    Its folder is outside pytest's (which only root may enter), so that the
    server's own user can reach it when the tests run as root.
    """
    home = Path(tempfile.mkdtemp(prefix="docflow-postgres-"))
    home.chmod(0o755)
    try:
        with LocalPostgres(home=home / "server", port=free_port(), durable=False) as server:
            yield server
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.integration),
    ]
)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, and a PostgreSQL database on the session's server."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    server: LocalPostgres = request.getfixturevalue("postgres")
    name = f"test_{uuid.uuid4().hex}"
    yield await server.create_database(name)
    await server.drop_database(name)


@pytest.fixture
async def read_model(database_url: str) -> AsyncIterator[SqlReadModel]:
    """The status read model on a fresh database of each kind."""
    model = SqlReadModel(create_engine(database_url))
    await model.migrate()
    yield model
    await model.close()
