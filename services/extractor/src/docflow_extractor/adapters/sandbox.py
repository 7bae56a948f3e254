"""Parsing untrusted documents in a worker process with memory and time limits.

Each document is opened in its own process (forked from a forkserver that has
pypdf loaded already, so a start costs milliseconds). The worker lowers its
own address-space limit (``RLIMIT_AS``) before it touches the file and sends
the pages back one at a time; the service enforces a wall-clock limit for the
whole document and kills the worker when it is exceeded. A hostile file (a
decompression bomb, absurd nesting, a parse that never ends) therefore fails
its own document, ``limit_exceeded`` or ``timeout`` with the limit named,
and the service goes on with the next message.
"""

from __future__ import annotations

import logging
import multiprocessing
import resource
import shutil
import tempfile
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


def _work(
    conn: Connection, path: str, content_type: ContentType, charset: str | None, memory: int
) -> None:
    """The worker: open the document, send its page count, then each page."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # Nothing the parser logs reaches the console; the service logs it at DEBUG.
    logging.basicConfig(level=logging.DEBUG, handlers=[_ForwardLogs(conn)], force=True)
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
    finally:
        conn.close()


class SandboxedDocument:
    """A document parsed in a worker process; pages arrive as the worker reads them.

    Blocking calls (``open``, iterating ``pages``) are meant to run in a
    thread, as the handler already does for parsing.
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
        receive, send = _context.Pipe(duplex=False)
        self._conn = receive
        self._process = _context.Process(
            target=_work,
            args=(send, path, content_type, charset, limits.memory_bytes),
            daemon=True,
        )
        self._process.start()
        send.close()
        try:
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
        finally:
            self.close()

    def _receive(self) -> tuple:  # type: ignore[type-arg]
        remaining = self._deadline - time.monotonic()
        if remaining <= 0 or not self._conn.poll(remaining):
            self.close()
            raise DocumentError(
                ErrorCode.TIMEOUT,
                f"reading the document took longer than {self._limits.wall_clock_s:g} s, "
                "the limit per document; split it into smaller files",
            )
        try:
            message: tuple = self._conn.recv()  # type: ignore[type-arg]
        except EOFError:
            message = ("died",)
        if message[0] == "log":
            logger.debug("parser (%s): %s", message[1], message[2])
            return self._receive()
        if message[0] == "error":
            self.close()
            raise DocumentError(ErrorCode(message[1]), message[2])
        if message[0] == "died":
            self.close()
            code = self._process.exitcode
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

    def close(self) -> None:
        """Stop the worker (if it still runs) and remove any spooled copy."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join(5)
        self._conn.close()
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
