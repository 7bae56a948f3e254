"""A Qdrant server for the tests that need one (payload indexes, aliases over HTTP,
Qdrant made unavailable in the fault suite).

In order of preference:

1. ``DOCFLOW_TEST_QDRANT_URL``: a server someone runs (it cannot be taken down);
2. ``DOCFLOW_TEST_QDRANT_BIN``: a Qdrant server binary (built from source with
   cargo, say), started here on a free port with its storage in a temporary
   folder;
3. a container from testcontainers when a Docker engine answers.

Otherwise there is none (Qdrant publishes its server as a container image and
release archives on GitHub, neither reachable without Docker or the open
internet), and those tests are skipped, saying so; the same code runs on
Qdrant's local mode in every other test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import httpx

from docflow_local.processes import free_port, spawn
from support.kafka import docker_engine_answers

QDRANT_IMAGE = "qdrant/qdrant:v1.17.0"


class QdrantServer(Protocol):
    """A running server; ``down`` and ``up`` make it unavailable and bring it back."""

    url: str

    @property
    def can_go_down(self) -> bool: ...

    def down(self) -> None: ...

    def up(self) -> None: ...


class _Given:
    """A server someone else runs."""

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def can_go_down(self) -> bool:
        return False

    def down(self) -> None:
        raise RuntimeError("a server given by DOCFLOW_TEST_QDRANT_URL is not ours to stop")

    def up(self) -> None:
        raise RuntimeError("a server given by DOCFLOW_TEST_QDRANT_URL is not ours to start")


class QdrantProcess:
    """A Qdrant server binary run here; ``down`` kills it (SIGKILL: a crash, its
    write-ahead log must bring back what it acknowledged), ``up`` starts it again on
    the same port and storage."""

    def __init__(self, binary: Path, home: Path) -> None:
        self.binary, self.home = binary, home
        self.http_port, self.grpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def can_go_down(self) -> bool:
        return True

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (benchmarks count its CPU time)."""
        return self._process.pid if self._process is not None else None

    def up(self, timeout_s: float = 60) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "QDRANT__STORAGE__STORAGE_PATH": str(self.home / "storage"),
            "QDRANT__STORAGE__SNAPSHOTS_PATH": str(self.home / "snapshots"),
            "QDRANT__SERVICE__HOST": "127.0.0.1",
            "QDRANT__SERVICE__HTTP_PORT": str(self.http_port),
            "QDRANT__SERVICE__GRPC_PORT": str(self.grpc_port),
            "QDRANT__TELEMETRY_DISABLED": "true",
            "QDRANT__SERVICE__ENABLE_STATIC_CONTENT": "false",
        }
        self._process = spawn(
            [str(self.binary)], env=env, cwd=self.home, log=self.home / "qdrant.log"
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = (self.home / "qdrant.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"qdrant exited with {self._process.returncode}:\n{log}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"qdrant not ready after {timeout_s} s")

    def down(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
        self._process = None


class _Container:
    """A container from testcontainers; ``down`` pauses it (requests hang, then time out)."""

    def __init__(self, container: object, url: str) -> None:
        self._container = container
        self.url = url

    @property
    def can_go_down(self) -> bool:
        return True

    def down(self) -> None:
        self._container.get_wrapped_container().pause()  # type: ignore[attr-defined]

    def up(self) -> None:
        self._container.get_wrapped_container().unpause()  # type: ignore[attr-defined]


@contextmanager
def running_qdrant() -> Iterator[QdrantServer | None]:
    """A Qdrant server for the duration of the block, or None where there is none."""
    given = os.environ.get("DOCFLOW_TEST_QDRANT_URL")
    binary = os.environ.get("DOCFLOW_TEST_QDRANT_BIN")
    if given:
        yield _Given(given)
    elif binary:
        home = Path(tempfile.mkdtemp(prefix="docflow-qdrant-"))
        server = QdrantProcess(Path(binary), home)
        try:
            server.up()
            yield server
        finally:
            server.down()
            shutil.rmtree(home, ignore_errors=True)
    elif docker_engine_answers():
        from testcontainers.community.qdrant import QdrantContainer

        with QdrantContainer(QDRANT_IMAGE) as container:
            yield _Container(container, f"http://{container.rest_host_address}")
    else:
        yield None


@contextmanager
def qdrant_server() -> Iterator[str | None]:
    """The URL of a Qdrant server for the duration of the block, or None."""
    with running_qdrant() as server:
        yield server.url if server is not None else None


NO_SERVER = (
    "no Qdrant server: set DOCFLOW_TEST_QDRANT_URL or DOCFLOW_TEST_QDRANT_BIN, or run a "
    "Docker engine (these checks run on Qdrant's local mode elsewhere)"
)
