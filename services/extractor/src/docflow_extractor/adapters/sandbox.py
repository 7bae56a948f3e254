"""Parsing untrusted documents in a worker process with memory and time limits.

Documents are read in worker processes (forked from a forkserver that has
pypdf loaded and warmed up). A worker lowers its own address-space limit
(``RLIMIT_AS``) before it touches any file and sends the pages back one at a
time; the service enforces a wall-clock limit per document and kills the
worker when it is exceeded. A worker that finished a document cleanly reads
the next one, so small files do not each pay for a process start; one that hit
a limit is never reused. A hostile file (a
decompression bomb, absurd nesting, a parse that never ends) therefore fails
its own document, ``limit_exceeded`` or ``timeout`` with the limit named,
and the service goes on with the next message.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import BinaryIO

from docflow_extractor.domain.documents import Page, open_document
from docflow_shared.errors import DocumentError
from docflow_shared.events import ContentType, ErrorCode

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
_LOGS_PER_DOCUMENT = 100

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(
    ["docflow_extractor.adapters.sandbox", "docflow_extractor.adapters.parser_warmup"]
)


@dataclass(frozen=True)
class SandboxLimits:
    """What one document may use while it is parsed."""

    memory_bytes: int = 1024 * MiB
    wall_clock_s: float = 300.0


class _ForwardLogs(logging.Handler):
    """Sends the parser's log records (pypdf's warnings) to the service, a bounded number."""

    def __init__(self, conn: Connection, most: int = 100) -> None:
        super().__init__(logging.DEBUG)
        self.conn = conn
        self.left = most

    def emit(self, record: logging.LogRecord) -> None:
        if self.left > 0:
            self.left -= 1
            self.conn.send(("log", record.name, record.getMessage()))


def _serve(conn: Connection, memory: int) -> None:
    """A worker: read documents one after the other, as the service asks.

    For each request it sends the page count, then each page, then ``end``
    (or an error). It stops when asked, when the service goes away, or after
    running out of memory (what is left of its heap is not to be trusted).
    """
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # Parsing yields the CPU to the service's own loop (Kafka heartbeats) and
    # to other services on the same cores, whatever a file makes it do.
    os.nice(10)
    logs = _ForwardLogs(conn)
    # Nothing the parser logs reaches the console; the service logs it at DEBUG.
    logging.basicConfig(level=logging.DEBUG, handlers=[logs], force=True)
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        path, content_type, charset = request
        logs.left = _LOGS_PER_DOCUMENT
        try:
            with Path(path).open("rb") as stream:
                document = open_document(stream, content_type, charset)
                conn.send(("opened", document.page_count))
                for page in document.pages():
                    conn.send(("page", page.number, page.text))
            conn.send(("end",))
        except DocumentError as exc:
            conn.send(("error", exc.code.value, exc.message))
        except MemoryError:
            conn.send(("memory",))
            return


class _Worker:
    """A worker process and the service's end of its pipe."""

    def __init__(self, memory: int) -> None:
        self.memory = memory
        self.documents = 0
        self.conn, child = _context.Pipe(duplex=True)
        self.process = _context.Process(target=_serve, args=(child, memory), daemon=True)
        self.process.start()
        child.close()

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class _Pool:
    """Idle workers, reused for the next document; a worker that failed is never reused."""

    def __init__(self, keep: int = 2, documents_per_worker: int = 200) -> None:
        self.keep = keep
        self.documents_per_worker = documents_per_worker
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def take(self, memory: int) -> _Worker:
        with self._lock:
            for worker in self._idle:
                if worker.memory == memory and worker.process.is_alive():
                    self._idle.remove(worker)
                    return worker
        return _Worker(memory)

    def give_back(self, worker: _Worker) -> None:
        worker.documents += 1
        with self._lock:
            if worker.documents < self.documents_per_worker and len(self._idle) < self.keep:
                self._idle.append(worker)
                return
        worker.stop()


_pool = _Pool()


class SandboxedDocument:
    """A document parsed in a worker process; pages arrive as the worker reads them.

    Blocking calls (``open``, iterating ``pages``) are meant to run in a
    thread, as the handler already does for parsing. A worker that finished a
    document cleanly (its pages, or an error it reported) reads the next one;
    one that hit a limit, or whose document was abandoned half-read, is
    stopped.
    """

    def __init__(
        self,
        stream: BinaryIO,
        content_type: ContentType,
        charset: str | None,
        limits: SandboxLimits,
    ) -> None:
        self._limits = limits
        self._deadline = time.monotonic() + limits.wall_clock_s
        self._spooled: str | None = None
        path = _path_of(stream)
        if path is None:
            # Not a file on disk (a future object store): spool it for the worker.
            with tempfile.NamedTemporaryFile(prefix="docflow-sandbox-", delete=False) as spool:
                shutil.copyfileobj(stream, spool)
            path = self._spooled = spool.name
        self._worker: _Worker | None = _pool.take(limits.memory_bytes)
        # Which process reads this document (a worker reads several in turn).
        self.worker_pid = self._worker.process.pid
        try:
            self._worker.conn.send((path, content_type, charset))
            message = self._receive()
        except BaseException:
            self.close()
            raise
        if message[0] != "opened":
            self.close()
            raise DocumentError(ErrorCode.INTERNAL, f"the parser worker said {message[0]!r}")
        self._page_count: int | None = message[1]

    @property
    def page_count(self) -> int | None:
        return self._page_count

    def pages(self) -> Iterator[Page]:
        try:
            while (message := self._receive())[0] == "page":
                yield Page(message[1], message[2])
            self._release()  # "end": the worker is ready for another document
        finally:
            self.close()

    def _receive(self) -> tuple:  # type: ignore[type-arg]
        assert self._worker is not None
        conn = self._worker.conn
        while True:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0 or not conn.poll(remaining):
                self.close()
                raise DocumentError(
                    ErrorCode.TIMEOUT,
                    f"reading the document took longer than {self._limits.wall_clock_s:g} s, "
                    "the limit per document; split it into smaller files",
                )
            try:
                message: tuple = conn.recv()  # type: ignore[type-arg]
            except (EOFError, OSError):  # the worker is gone (or never started)
                message = ("died",)
            if message[0] != "log":
                break
            logger.debug("parser (%s): %s", message[1], message[2])
        if message[0] == "error":
            self._release()  # the worker reported the failure and reads on
            raise DocumentError(ErrorCode(message[1]), message[2])
        if message[0] == "died":
            self._worker.process.join(5)
            code = self._worker.process.exitcode
            self.close()
            if code is None or code >= 0:
                raise DocumentError(
                    ErrorCode.INTERNAL,
                    f"the parser worker stopped unexpectedly (exit code {code}); "
                    "retry the document",
                )
            message = ("memory", f"killed by signal {-code}")
        if message[0] == "memory":
            self.close()
            how = message[1] if len(message) > 1 else "it ran out of memory"
            raise DocumentError(
                ErrorCode.LIMIT_EXCEEDED,
                f"reading the document needed more than {self._limits.memory_bytes // MiB} MiB "
                f"of memory, the limit per document (the parser was stopped: {how})",
            )
        return message

    def _release(self) -> None:
        if self._worker is not None:
            _pool.give_back(self._worker)
            self._worker = None

    def close(self) -> None:
        """Stop a worker still busy with this document, and remove any spooled copy."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        if self._spooled:
            Path(self._spooled).unlink(missing_ok=True)
            self._spooled = None


def _path_of(stream: BinaryIO) -> str | None:
    name = getattr(stream, "name", None)
    return name if isinstance(name, str) and Path(name).is_file() else None


def open_sandboxed(
    stream: BinaryIO,
    content_type: ContentType,
    charset: str | None = None,
    limits: SandboxLimits | None = None,
) -> SandboxedDocument:
    """Open a stored document in a worker process under ``limits``."""
    return SandboxedDocument(stream, content_type, charset, limits or SandboxLimits())
