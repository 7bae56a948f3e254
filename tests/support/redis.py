"""A real Redis server (Debian's redis-server, `make redis`) on a free port."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from docflow_local.processes import spawn, stop, tail


class RedisServer:
    """redis-server on ``port`` with its files under ``home``; start() and stop() at will."""

    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is missing: make redis"
        log = self.home / "redis.log"
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.home)]
        self._process = spawn([binary, *args, "--save", "", "--appendonly", "no"], log=log)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self._process.poll() is not None:
                        raise RuntimeError(f"redis-server did not answer:\n{tail(log)}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self._process is not None:
            stop([self._process], timeout_s=10)
            self._process = None


@contextlib.contextmanager
def redis_server(home: Path, port: int) -> Iterator[RedisServer]:
    server = RedisServer(home, port)
    server.start()
    try:
        yield server
    finally:
        server.stop()
