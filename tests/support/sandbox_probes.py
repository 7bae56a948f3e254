"""Stand-ins for a parser taken over by a hostile file: each runs inside a parser
worker, after it confined itself, in place of the reading (``open_sandboxed(work=...)``).

``escape`` tries what such a parser would try and reports what happened as
the text of one chunk; the others answer the service with frames no honest
worker sends.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import socket
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, BinaryIO

from docflow_extractor.adapters.sandbox_worker import MAX_FRAME_BYTES, send
from docflow_extractor.domain.chunking import Chunking
from docflow_extractor.domain.cutting import DocumentLimits


def _attempt(action: Any) -> str:
    try:
        return f"done: {action()}"
    except BaseException as exc:  # the failure is the answer
        return f"failed: {type(exc).__name__}: {exc}"


def _fork() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _thread() -> str:
    thread = threading.Thread(target=lambda: None)
    thread.start()
    thread.join()
    return "started"


def _write(path: str, size: int) -> int:
    with Path(path).open("wb") as out:
        return out.write(b"x" * size)


def _open_many(count: int) -> int:
    files = [Path(os.devnull).open("rb") for _ in range(count)]  # noqa: SIM115
    for file in files:
        file.close()
    return count


def _read(path: str) -> int:
    with Path(path).open("rb") as file:
        return len(file.read())


def escape(
    conn: Connection,
    request: dict[str, Any],
    stream: BinaryIO,
    chunking: Chunking,
    limits: DocumentLimits,
) -> None:
    """The document is a JSON object of targets: ``port`` (a listening TCP port on
    127.0.0.1), ``secret`` (a file only root may read), ``scratch`` (a writable
    directory)."""
    targets = json.loads(stream.read())
    report = {
        "environment": dict(os.environ),
        "proc_environ": _attempt(lambda: _read("/proc/self/environ")),
        "connect": _attempt(lambda: socket.create_connection(("127.0.0.1", targets["port"]), 2)),
        "fork": _attempt(_fork),
        "thread": _attempt(_thread),
        "big_file": _attempt(lambda: _write(f"{targets['scratch']}/big-{os.getpid()}", 4 << 20)),
        "open_files": _attempt(lambda: _open_many(64)),
        "secret": _attempt(lambda: _read(targets["secret"])),
        "uid": os.getuid(),
        "cpu_limit": resource.getrlimit(resource.RLIMIT_CPU),
        "core_limit": resource.getrlimit(resource.RLIMIT_CORE),
    }
    send(conn, {"opened": None})
    send(conn, {"pieces": [[json.dumps(report), None, None, 0, 0]], "page_end": True})
    send(conn, {"end": True})


def oversized_frame(conn: Connection, *_: object) -> None:
    send(conn, {"opened": None})
    conn.send_bytes(b" " * (MAX_FRAME_BYTES + 1))


class _Marker:
    """Unpickling this writes a file: what a pickle from a worker could make the service do."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (_write, (self.path, 1))


def pickled_frame(conn: Connection, request: dict[str, Any], stream: BinaryIO, *_: object) -> None:
    send(conn, {"opened": None})
    conn.send_bytes(pickle.dumps(_Marker(stream.read().decode())))


def malformed_chunk(conn: Connection, *_: object) -> None:
    send(conn, {"opened": None})
    send(conn, {"pieces": [["text", "page one", None, 0, 4]], "page_end": True})


def endless_chunks(conn: Connection, *_: object) -> None:
    send(conn, {"opened": 1})
    while True:
        send(conn, {"pieces": [["chunk", 1, 1, 0, 5]] * 100, "page_end": False})


def stalls_mid_frame(conn: Connection, *_: object) -> None:
    """Promises a frame of 1,000 bytes and sends 10: the service must not wait forever."""
    send(conn, {"opened": None})
    os.write(conn.fileno(), (1000).to_bytes(4, "big") + b"0123456789")
    time.sleep(3600)
