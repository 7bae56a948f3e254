from collections.abc import Iterator
from pathlib import Path

import pytest

from support.gateway import ClientFor, gateway_clients


@pytest.fixture
def blob_root(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def client_for(tmp_path: Path, database_url: str) -> Iterator[ClientFor]:
    """A gateway app on a blob store under tmp_path and a fresh database of each kind."""
    yield from gateway_clients(tmp_path, database_url)
