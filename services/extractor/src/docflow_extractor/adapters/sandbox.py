"""Reading and cutting untrusted documents in confined worker processes.

Each document is read by a worker process of its own, forked from a
forkserver that has pypdf and the tokenizer loaded and warmed up. The worker
confines itself before it is given the document
(``sandbox_worker.confine``: no network, no environment, user ``nobody``
under root, hard limits on memory, CPU time, processes, open files, file
size and core dumps), reads and cuts it, and exits; it never reads a second
document, so nothing of one tenant's file can reach another's. The next
worker is started while the current document is read, so the start is not
paid in line.

The service enforces a wall-clock limit per document and kills the worker
when it is exceeded, and reads the worker's answers as JSON frames with a
size cap, checking each: a worker taken over by a hostile file can fail its
own document and nothing else. A decompression bomb, absurd nesting or a
parse that never ends fails with ``limit_exceeded`` or ``timeout`` naming
the limit, and the service goes on with the next message.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from multiprocessing.reduction import send_handle
from typing import Any, BinaryIO

from docflow_extractor.adapters.sandbox_worker import (
    MAX_FRAME_BYTES,
    Work,
    WorkerSetup,
    read_document,
    receive,
    send,
    serve,
)
from docflow_extractor.domain.chunking import ChunkingPolicy, Piece, piece_from_frame
from docflow_extractor.domain.cutting import DocumentLimits, chunk_limit_error
from docflow_extractor.domain.documents import Page
from docflow_extractor.domain.ocr import OcrNeeded, OcrPolicy, OcrStarted
from docflow_shared.errors import DocumentError
from docflow_shared.events import ContentType, ErrorCode

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
_LOGS_PER_DOCUMENT = 100
_MESSAGE_CHARS = 1000

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(
    [
        # A program started as a script (a benchmark, a tool) is imported once
        # here; otherwise every worker would run its imports again before it
        # starts. ``python -m docflow_extractor`` is never imported again.
        "__main__",
        "docflow_extractor.adapters.sandbox_worker",
        "docflow_extractor.adapters.parser_warmup",
    ]
)


@dataclass(frozen=True)
class SandboxLimits:
    """What one document may use while it is parsed and cut."""

    memory_bytes: int = 1024 * MiB
    wall_clock_s: float = 300.0
    # CPU time; by default the wall-clock limit, which a busy machine reaches first.
    cpu_s: int | None = None

    @property
    def cpu_seconds(self) -> int:
        return self.cpu_s or max(1, math.ceil(self.wall_clock_s))


class _Worker:
    """A worker process for one document, and the service's end of its pipe."""

    def __init__(self, setup: str, work: Work = read_document) -> None:
        self.setup = setup
        self.conn, child = _context.Pipe(duplex=True)
        self.process = _context.Process(target=serve, args=(child, setup, work), daemon=True)
        self.process.start()
        child.close()
        self.out_of_time = False
        self._clock: threading.Timer | None = None

    def start_clock(self, seconds: float) -> None:
        """Kill the worker after ``seconds`` from now (a clock started before is
        replaced), even if the service is stuck reading a frame."""
        if self._clock is not None:
            self._clock.cancel()
        self._clock = threading.Timer(seconds, self._time_is_up)
        self._clock.daemon = True
        self._clock.start()

    def _time_is_up(self) -> None:
        self.out_of_time = True
        self.process.kill()

    def stop(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class _Spares:
    """Workers started ahead of time, each to read one document, never a second."""

    def __init__(self, keep: int = 1) -> None:
        self.keep = keep
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def take(self, setup: str) -> _Worker:
        """A started worker for ``setup``; another one starts (and confines itself)
        for the next document while this one is read."""
        with self._lock:
            mine = next((w for w in self._idle if w.setup == setup), None)
            others = [w for w in self._idle if w is not mine]
            self._idle = []
        for worker in others:
            worker.stop()
        if mine is None or not mine.process.is_alive():
            if mine is not None:
                mine.stop()
            mine = _Worker(setup)
        spare = _Worker(setup)
        with self._lock:
            kept = len(self._idle) < self.keep
            if kept:
                self._idle.append(spare)
        if not kept:
            spare.stop()
        return mine


_spares = _Spares()

# How long a worker may take to start and confine itself, before any document
# byte reaches it (its own bound, apart from the document's DOCFLOW_SANDBOX_TIMEOUT_S).
STARTUP_TIMEOUT_S = 60.0
_unconfined_warned: set[str] = set()


def _warn_if_unconfined(confinement: object) -> None:
    if not isinstance(confinement, dict):
        return
    for what, how in confinement.items():
        if how in ("none", "unchanged") and what not in _unconfined_warned:
            _unconfined_warned.add(what)
            logger.warning("the parser sandbox runs without %s isolation here", what)


class SandboxedDocument:
    """A document read and cut in a worker process; chunks arrive page by page.

    Blocking calls (``open``, iterating ``pieces``) are meant to run in a
    thread, as the handler does. The worker is stopped when the document is
    done, failed or abandoned.
    """

    def __init__(
        self,
        stream: BinaryIO,
        content_type: ContentType,
        charset: str | None,
        limits: SandboxLimits,
        setup: WorkerSetup,
        work: Work = read_document,
        request: dict[str, Any] | None = None,
    ) -> None:
        self._limits = limits
        # What the limits bound, for the messages: a document, or a range of OCR pages.
        pages = (request or {}).get("ocr_range")
        self._read = f"pages {pages[0]}-{pages[1]} by OCR" if pages else "the document"
        self._per = "OCR range" if pages else "document"
        self._max_chunks = setup.max_chunks
        self._chunks = 0
        self._logs = _LOGS_PER_DOCUMENT
        self._worker: _Worker | None = (
            _spares.take(setup.to_json())
            if work is read_document
            else _Worker(setup.to_json(), work)
        )
        # Which process reads this document (a new one for each document).
        self.worker_pid = self._worker.process.pid
        # Starting and confining a process is not the document's doing, and
        # takes longer on a busy machine: it has its own bound, and the
        # document's time starts once the worker is ready for it.
        self._deadline = time.monotonic() + STARTUP_TIMEOUT_S
        self._worker.start_clock(STARTUP_TIMEOUT_S)
        try:
            ready = self._receive().get("ready")
            self._deadline = time.monotonic() + limits.wall_clock_s
            self._worker.start_clock(limits.wall_clock_s)
            _warn_if_unconfined(ready)
            request = {"content_type": content_type, "charset": charset, **(request or {})}
            self._hand_over(stream, request)
            count = self._receive().get("opened", "missing")
            if count is not None and not isinstance(count, int):
                raise self._malformed(f"page count {str(count)[:40]!r}")
        except BaseException:
            self.close()
            raise
        self._page_count: int | None = count

    def _hand_over(self, stream: BinaryIO, request: dict[str, Any]) -> None:
        """Send the request as JSON and the file as an open descriptor (the worker,
        as ``nobody``, may not be allowed to open it by path)."""
        assert self._worker is not None
        send(self._worker.conn, request)
        try:
            fileno = stream.fileno()
        except (AttributeError, OSError):  # not a file on disk: spool it for the worker
            with tempfile.TemporaryFile(prefix="docflow-sandbox-") as spool:
                shutil.copyfileobj(stream, spool)
                spool.flush()
                send_handle(self._worker.conn, spool.fileno(), self.worker_pid)
            return
        send_handle(self._worker.conn, fileno, self.worker_pid)

    @property
    def page_count(self) -> int | None:
        return self._page_count

    def _page_number(self, frame: dict[str, Any], key: str) -> int:
        number = frame[key][0] if key == "ocr_text" else frame[key]
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise self._malformed(f"a page number {str(number)[:40]!r}")
        return number

    def pages(self) -> Iterator[OcrStarted | Page]:
        """A range of pages read by OCR (``open_ocr_range``): each announced, then its text."""
        try:
            while "end" not in (frame := self._receive()):
                if "ocr" in frame:
                    yield OcrStarted(self._page_number(frame, "ocr"))
                    continue
                item = frame.get("ocr_text")
                if not isinstance(item, list) or len(item) != 2 or not isinstance(item[1], str):
                    raise self._malformed(f"a frame with {sorted(frame)[:5]}")
                yield Page(self._page_number(frame, "ocr_text"), item[1])
        finally:
            self.close()

    def pieces(self) -> Iterator[list[Piece] | OcrStarted | OcrNeeded]:
        """Each page's chunks, then the last ones (see ``CutDocument``)."""
        try:
            page: list[Piece] = []
            while "end" not in (frame := self._receive()):
                if "ocr" in frame:
                    yield OcrStarted(self._page_number(frame, "ocr"))
                    continue
                if "ocr_needed" in frame:
                    yield OcrNeeded(self._page_number(frame, "ocr_needed"))
                    return
                items, page_end = frame.get("pieces"), frame.get("page_end")
                if not isinstance(items, list) or not isinstance(page_end, bool):
                    raise self._malformed(f"a frame with {sorted(frame)[:5]}")
                self._chunks += len(items)
                if self._chunks > self._max_chunks:
                    raise chunk_limit_error(DocumentLimits(max_chunks=self._max_chunks))
                try:
                    page.extend(piece_from_frame(item) for item in items)
                except (TypeError, ValueError) as exc:
                    raise self._malformed(str(exc)) from None
                if page_end:
                    yield page
                    page = []
        finally:
            self.close()

    def _malformed(self, what: str) -> DocumentError:
        self.close()
        return DocumentError(
            ErrorCode.INTERNAL,
            f"the parser worker sent a malformed message ({what}) and was stopped; "
            "the file may be built to take over the parser",
        )

    def _receive(self) -> dict[str, Any]:
        """The worker's next frame that is not a log record; its failures as ``DocumentError``."""
        assert self._worker is not None
        conn = self._worker.conn
        while True:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0 or not conn.poll(remaining):
                self.close()
                raise self._timeout()
            try:
                frame = receive(conn)
            except (EOFError, ConnectionError):  # the worker is gone (or never started)
                raise self._died() from None
            except OSError as exc:
                if str(exc) != "bad message length":  # gone in the middle of a frame
                    raise self._died() from None
                # A frame over the cap: only its length was read, never its body.
                self.close()
                raise DocumentError(
                    ErrorCode.LIMIT_EXCEEDED,
                    f"the parser worker sent a message of more than {MAX_FRAME_BYTES // MiB} MiB, "
                    "the limit, and was stopped; the file may be built to take over the parser",
                ) from None
            except ValueError as exc:
                raise self._malformed(f"not JSON: {exc}") from None
            if "log" not in frame:
                break
            if self._logs > 0:
                self._logs -= 1
                logger.debug("parser: %s", str(frame["log"])[:_MESSAGE_CHARS])
        if "error" in frame:
            self.close()
            try:
                code, message = ErrorCode(frame["error"][0]), str(frame["error"][1])
            except (ValueError, TypeError, IndexError, KeyError):
                raise self._malformed("an error without a known code") from None
            raise DocumentError(code, message[:_MESSAGE_CHARS])
        if "memory" in frame:
            self.close()
            raise self._out_of_memory("it ran out of memory")
        return frame

    def _timeout(self) -> DocumentError:
        return DocumentError(
            ErrorCode.TIMEOUT,
            f"reading {self._read} took longer than {self._limits.wall_clock_s:g} s, the "
            f"limit per {self._per} (DOCFLOW_SANDBOX_TIMEOUT_S); split it into smaller files",
        )

    def _out_of_memory(self, how: str) -> DocumentError:
        return DocumentError(
            ErrorCode.LIMIT_EXCEEDED,
            f"reading {self._read} needed more than {self._limits.memory_bytes // MiB} MiB of "
            f"memory, the limit per {self._per} (DOCFLOW_SANDBOX_MEMORY_MIB; the parser was "
            f"stopped: {how})",
        )

    def _died(self) -> DocumentError:
        assert self._worker is not None
        worker = self._worker
        worker.process.join(5)
        code = worker.process.exitcode
        self.close()
        if worker.out_of_time:
            return self._timeout()
        if code == -signal.SIGXCPU:
            return DocumentError(
                ErrorCode.TIMEOUT,
                f"reading {self._read} used more than {self._limits.cpu_seconds} s of CPU "
                f"time, the limit per {self._per}; split it into smaller files",
            )
        if code is None or code >= 0:
            return DocumentError(
                ErrorCode.INTERNAL,
                f"the parser worker stopped unexpectedly (exit code {code}); retry the document",
            )
        return self._out_of_memory(f"killed by signal {-code}")

    def close(self) -> None:
        """Stop the worker of this document, if it still runs."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None


def open_sandboxed(
    stream: BinaryIO,
    content_type: ContentType,
    charset: str | None = None,
    limits: SandboxLimits | None = None,
    *,
    chunking: ChunkingPolicy | None = None,
    document_limits: DocumentLimits | None = None,
    ocr: OcrPolicy | None = None,
    tessdata: str = "",
    work: Work = read_document,
    ocr_defer: bool = False,
    ocr_texts: dict[int, str] | None = None,
    ocr_range: tuple[int, int] | None = None,
) -> SandboxedDocument:
    """Read and cut a stored document in a worker process under ``limits``.

    ``ocr``: how pages without text are read by OCR, with Tesseract's models
    in ``tessdata``; ``None`` (or no ``tessdata``): not at all.

    ``ocr_defer``: stop at the first page that needs OCR (the OCR stage reads
    it); ``ocr_texts``: the OCR stage's text of those pages (``OcrDocument``);
    ``ocr_range``: read those pages from first to last by OCR (``pages``).

    ``work`` replaces the reading (tests: probes of what a parser taken over
    by a hostile file could do from inside the worker).
    """
    limits = limits or SandboxLimits()
    chunking = chunking or ChunkingPolicy()
    document_limits = document_limits or DocumentLimits()
    setup = WorkerSetup(
        memory_bytes=limits.memory_bytes,
        cpu_s=limits.cpu_seconds,
        chunk_tokens=chunking.tokens,
        chunk_overlap=chunking.overlap,
        chunk_tokenizer=chunking.tokenizer,
        max_text_bytes=document_limits.max_text_bytes,
        max_chunks=document_limits.max_chunks,
        container_entries=document_limits.container.max_entries,
        unpacked_bytes=document_limits.container.max_unpacked_bytes,
        sheet_cells=document_limits.container.max_cells,
    )
    if ocr is not None and ocr.enabled and tessdata:
        setup = replace(
            setup,
            ocr_languages=ocr.languages,
            ocr_tessdata=tessdata,
            ocr_dpi=ocr.dpi,
            ocr_max_pixels=ocr.max_pixels,
            ocr_defer=ocr_defer,
        )
    request: dict[str, Any] = {"ocr_range": ocr_range}
    if ocr_texts is not None:
        request["ocr_texts"] = [[number, text] for number, text in ocr_texts.items()]
    return SandboxedDocument(stream, content_type, charset, limits, setup, work, request)
