from collections.abc import Iterator
from pathlib import Path

import pytest

from support.gateway import ClientFor, gateway_clients


@pytest.fixture
def blob_root(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def client_for(tmp_path: Path) -> Iterator[ClientFor]:
    """A gateway app on a blob store and SQLite under tmp_path, started (lifespan run)."""
    yield from gateway_clients(tmp_path)
