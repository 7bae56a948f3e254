"""A PostgreSQL server from the machine's own packages (Debian's ``postgresql``).

Tests and benchmarks start one with its data in a folder of their own; it
listens on 127.0.0.1 only and trusts local connections. PostgreSQL refuses
to run as root, so under root the server runs as the ``postgres`` user the
Debian package creates, and the folder is handed to that user.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from docflow_local.processes import port_is_free, spawn, tail

logger = logging.getLogger(__name__)

SUPERUSER = "docflow"


class PostgresStartError(RuntimeError):
    """The server could not be started; the message says why."""


def _bin_dir() -> Path:
    """Where ``initdb`` and ``postgres`` are: Debian keeps them out of PATH."""
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if installed:
        return installed[-1].parent
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise PostgresStartError(
        "PostgreSQL is not installed; on Debian: apt-get install postgresql (make test does it)"
    )


def _answers(bin_dir: Path, port: int) -> bool:
    ready = subprocess.run(
        [str(bin_dir / "pg_isready"), "--host=127.0.0.1", f"--port={port}", "--timeout=2"],
        capture_output=True,
    )
    return ready.returncode == 0


@dataclass
class LocalPostgres:
    """One server with its data under ``home``; ``durable=False`` trades crash safety for speed."""

    home: Path
    port: int = 5432
    durable: bool = True
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def server_user(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def dsn(self, database: str = "postgres") -> str:
        """A libpq/asyncpg connection string."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy async URL, as ``DOCFLOW_DATABASE_URL`` takes it."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run_as_server_user(self, args: list[str]) -> None:
        done = subprocess.run(args, capture_output=True, text=True, user=self.server_user)
        if done.returncode != 0:
            raise PostgresStartError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def start(self, timeout_s: float = 60.0) -> None:
        """Create the cluster on first use, start the server, wait until it answers."""
        if not port_is_free(self.port):
            raise PostgresStartError(f"port {self.port} is in use; choose another port")
        bin_dir = _bin_dir()
        data = self.home / "data"
        self.home.mkdir(parents=True, exist_ok=True)
        if self.server_user:
            shutil.chown(self.home, self.server_user)
            self.home.chmod(0o755)
        if not (data / "PG_VERSION").exists():
            self._run_as_server_user(
                [
                    str(bin_dir / "initdb"),
                    f"--pgdata={data}",
                    f"--username={SUPERUSER}",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ]
            )
        settings = ["listen_addresses=127.0.0.1", f"unix_socket_directories={self.home}"]
        if not self.durable:
            settings += ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]
        log = self.home / "postgres.log"
        self._process = spawn(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                *(arg for setting in settings for arg in ("-c", setting)),
            ],
            log=log,
            user=self.server_user,
        )
        deadline = time.monotonic() + timeout_s
        while not _answers(bin_dir, self.port):
            if self._process.poll() is not None:
                raise PostgresStartError(
                    f"PostgreSQL exited with {self._process.returncode}:\n{tail(log)}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise PostgresStartError(f"PostgreSQL did not answer in {timeout_s}s:\n{tail(log)}")
            time.sleep(0.2)
        logger.info("PostgreSQL is up on 127.0.0.1:%d (data in %s)", self.port, data)

    async def create_database(self, name: str) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        import asyncpg

        connection = await asyncpg.connect(self.dsn())
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.url(name)

    async def drop_database(self, name: str) -> None:
        import asyncpg

        connection = await asyncpg.connect(self.dsn())
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Fast shutdown (SIGINT: clients are disconnected), then SIGKILL if it hangs."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
