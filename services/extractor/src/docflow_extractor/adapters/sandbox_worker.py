"""The parser worker's side of the sandbox: confine the process, then read and cut one document.

Runs in a process forked from the sandbox's forkserver (pypdf and the
tokenizer already loaded). Before it is given a document, the worker shuts
itself in (``confine``): no network (a network namespace of its own), no
environment, user ``nobody`` when the service runs as root, and hard limits
on memory, CPU time, processes, open files, file size and core dumps. It is
then handed the document as an open file descriptor (it may not be able to
open the file by path), reads and cuts it, sends the chunks back and exits:
a worker never sees a second document, let alone another tenant's.

Everything crosses the pipe as length-prefixed JSON frames (never pickle):
the service reads each frame with a size cap and checks its shape, so a
worker taken over by a hostile file can at worst fail its own document.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import resource
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle
from pathlib import Path
from typing import Any, BinaryIO

from docflow_extractor.adapters.ocr_tesseract import TesseractEngine
from docflow_extractor.domain.chunking import Chunking, ChunkingPolicy, Piece
from docflow_extractor.domain.containers import ContainerLimits
from docflow_extractor.domain.cutting import DocumentLimits, Pages, cut_pages
from docflow_extractor.domain.formats import open_document
from docflow_extractor.domain.ocr import OcrDocument, OcrNeeded, OcrPolicy, OcrStarted, with_ocr
from docflow_shared.errors import DocumentError
from docflow_shared.events import ErrorCode

# The most one frame may hold, either way; the worker packs chunks into frames
# of about FRAME_TARGET_BYTES, so only a worker that misbehaves reaches it.
MAX_FRAME_BYTES = 8 * 1024 * 1024
FRAME_TARGET_BYTES = 1024 * 1024
_LOGS_PER_DOCUMENT = 100
# The worker writes no files; a page of pypdf's warnings to a log file is the most.
FILE_SIZE_LIMIT = 1024 * 1024
# Its pipe, the document and /dev/null, with room for what the parsers open.
OPEN_FILES_LIMIT = 32
_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_PR_SET_DUMPABLE = 4
_PR_SET_NO_NEW_PRIVS = 38
_NOBODY = 65534


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker is started with, sent as JSON (not pickled objects)."""

    memory_bytes: int
    cpu_s: int
    chunk_tokens: int
    chunk_overlap: int
    chunk_tokenizer: str
    max_text_bytes: int
    max_chunks: int
    container_entries: int = ContainerLimits.max_entries
    unpacked_bytes: int = ContainerLimits.max_unpacked_bytes
    sheet_cells: int = ContainerLimits.max_cells
    # OCR (domain/ocr.py): languages ('' for none), models' folder, rendering.
    ocr_languages: str = ""
    ocr_tessdata: str = ""
    ocr_dpi: int = OcrPolicy.dpi
    ocr_max_pixels: int = OcrPolicy.max_pixels
    # The OCR stage reads the pages without text: stop at the first one.
    ocr_defer: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorkerSetup:
        return cls(**json.loads(text))


def send(conn: Connection, frame: dict[str, Any]) -> None:
    conn.send_bytes(json.dumps(frame).encode())


def receive(conn: Connection) -> dict[str, Any]:
    """The next frame; ``OSError`` for one over ``MAX_FRAME_BYTES``, ``ValueError`` for bad JSON."""
    frame = json.loads(conn.recv_bytes(MAX_FRAME_BYTES))
    if not isinstance(frame, dict):
        raise ValueError("a frame must be a JSON object")
    return frame


# Built in the forkserver for the default policy (parser_warmup), so that
# workers forked from it do not load the tokenizer each time.
_chunkings: dict[ChunkingPolicy, Chunking] = {}


def chunking_for(policy: ChunkingPolicy) -> Chunking:
    if policy not in _chunkings:
        _chunkings[policy] = Chunking(policy)
    return _chunkings[policy]


def _unshare(flags: int) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.unshare(flags) == 0)


def _isolate_network() -> str:
    """A network namespace with no interfaces but a down loopback: no socket reaches anything.

    As root the worker makes one directly; otherwise inside a new user
    namespace, where the kernel allows that (Debian and most distributions
    do). Where neither is allowed the worker keeps the service's network,
    and says so.
    """
    if _unshare(_CLONE_NEWNET):
        return "network namespace"
    if _unshare(_CLONE_NEWUSER | _CLONE_NEWNET):
        return "user and network namespace"
    return "none"


def confine(setup: WorkerSetup) -> dict[str, str]:
    """Shut this process in before it touches a document; what it could not do is reported."""
    network = _isolate_network()  # needs the privileges dropped below
    os.environ.clear()  # the service's settings (Kafka address, keys) are none of its business
    # The tokenizer must not try to start threads: the process limit forbids them.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["OMP_THREAD_LIMIT"] = "1"  # Tesseract: one thread, should it be built with OpenMP
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # nothing reaches the service's console or log files
        os.dup2(devnull, fd)
    os.close(devnull)
    libc = ctypes.CDLL(None, use_errno=True)
    # Not dumpable: /proc/self/environ (the environment it started with) and
    # the rest of /proc/self become root's; nor may anything ptrace it.
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    limits = {
        resource.RLIMIT_AS: setup.memory_bytes,
        resource.RLIMIT_CPU: setup.cpu_s,
        resource.RLIMIT_FSIZE: FILE_SIZE_LIMIT,
        resource.RLIMIT_NOFILE: OPEN_FILES_LIMIT,
        resource.RLIMIT_CORE: 0,
        # No processes nor threads. The kernel does not apply this to root,
        # which is why root's workers become nobody below.
        resource.RLIMIT_NPROC: 0,
    }
    for which, value in limits.items():
        # CPU: the soft limit sends SIGXCPU, the hard one a second later SIGKILL.
        hard = value + 1 if which == resource.RLIMIT_CPU else value
        resource.setrlimit(which, (value, hard))
    user = "unchanged"
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(_NOBODY)
        os.setuid(_NOBODY)
        user = "nobody"
    # Parsing yields the CPU to the service's own loop (Kafka heartbeats) and
    # to other services on the same cores, whatever a file makes it do.
    os.nice(10)
    return {"network": network, "user": user}


class _ForwardLogs(logging.Handler):
    """Sends the parser's log records (pypdf's warnings) to the service, a bounded number."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(logging.DEBUG)
        self.conn = conn
        self.left = _LOGS_PER_DOCUMENT

    def emit(self, record: logging.LogRecord) -> None:
        if self.left > 0:
            self.left -= 1
            send(self.conn, {"log": [record.name, record.getMessage()[:1000]]})


def _send_pieces(conn: Connection, pieces: list[Piece]) -> None:
    """One page's chunks, in frames of about ``FRAME_TARGET_BYTES``; the last ends the page."""
    frame: list[list[str | int | list[str] | None]] = []
    size = 0
    for piece in pieces:
        item = [
            piece.text,
            piece.page,
            piece.page_end,
            piece.char_start,
            piece.char_end,
            list(piece.headings),
            piece.title,
        ]
        encoded = len(json.dumps(item))
        if encoded > MAX_FRAME_BYTES // 2:
            raise DocumentError(
                ErrorCode.LIMIT_EXCEEDED,
                f"a chunk of {len(piece.text)} characters: the text has no places to cut it "
                "into chunks of reasonable size",
            )
        if frame and size + encoded > FRAME_TARGET_BYTES:
            send(conn, {"pieces": frame, "page_end": False})
            frame, size = [], 0
        frame.append(item)
        size += encoded
    send(conn, {"pieces": frame, "page_end": True})


Work = Callable[[Connection, dict[str, Any], BinaryIO, Chunking, DocumentLimits], None]
# The worker's setup, for ``read_document`` (set by ``serve`` before any work).
_setup: WorkerSetup | None = None


def read_document(
    conn: Connection,
    request: dict[str, Any],
    stream: BinaryIO,
    chunking: Chunking,
    limits: DocumentLimits,
) -> None:
    """Read and cut the document: ``opened``, then each page's chunks (each page read
    by OCR announced by ``ocr``), then ``end``; with ``ocr_defer``, ``ocr_needed`` at
    the first page that needs OCR ends it. With ``ocr_range`` [first, last]: each page
    of the range that needs OCR, announced by ``ocr`` and sent by ``ocr_text``."""
    content_type, charset = request["content_type"], request["charset"]
    setup = _setup
    document = open_document(stream, content_type, charset, limits.container)
    pages: Pages = document
    ocr_range, texts = request.get("ocr_range"), request.get("ocr_texts")
    if setup is not None and setup.ocr_languages and setup.ocr_tessdata:
        policy = OcrPolicy(setup.ocr_languages, setup.ocr_dpi, setup.ocr_max_pixels)
        languages, tessdata = setup.ocr_languages, Path(setup.ocr_tessdata)
        pages = with_ocr(
            document,
            stream,
            policy,
            lambda: TesseractEngine(languages, tessdata),
            defer=setup.ocr_defer,
            ocr_texts=None if texts is None else {int(n): str(t) for n, t in texts},
        )
    send(conn, {"opened": document.page_count})
    if ocr_range is not None:
        _send_ocr_range(conn, pages, int(ocr_range[0]), int(ocr_range[1]), limits)
        return
    for pieces in cut_pages(pages, chunking.for_document(content_type), limits):
        if isinstance(pieces, OcrStarted):
            send(conn, {"ocr": pieces.page})
        elif isinstance(pieces, OcrNeeded):
            send(conn, {"ocr_needed": pieces.page})
        else:
            _send_pieces(conn, pieces)
    send(conn, {"end": True})


def _send_ocr_range(
    conn: Connection, pages: Pages, first: int, last: int, limits: DocumentLimits
) -> None:
    if not isinstance(pages, OcrDocument):
        raise DocumentError(ErrorCode.INTERNAL, "OCR is off, or the document is not a PDF")
    for page in pages.read_range(first, last):
        if isinstance(page, OcrStarted):
            send(conn, {"ocr": page.page})
        else:
            send(conn, {"ocr_text": [page.number, page.text[: limits.max_text_bytes]]})
    send(conn, {"end": True})


def serve(conn: Connection, setup_json: str, work: Work = read_document) -> None:
    """A worker: confine itself, say ``ready``, read one document, exit.

    ``work`` is the reading itself; tests put probes there, to try what a
    parser taken over by a hostile file could do.
    """
    global _setup
    setup = _setup = WorkerSetup.from_json(setup_json)
    policy = ChunkingPolicy(setup.chunk_tokens, setup.chunk_overlap, setup.chunk_tokenizer)
    chunking = chunking_for(policy)  # before confining: it may read a tokenizer file
    container = ContainerLimits(setup.container_entries, setup.unpacked_bytes, setup.sheet_cells)
    limits = DocumentLimits(setup.max_text_bytes, setup.max_chunks, container)
    send(conn, {"ready": confine(setup)})
    logs = _ForwardLogs(conn)
    # Nothing the parser logs reaches the console; the service logs it at DEBUG.
    logging.basicConfig(level=logging.DEBUG, handlers=[logs], force=True)
    try:
        request = receive(conn)
        fd = recv_handle(conn)
    except (EOFError, OSError):
        return  # the service went away, or had nothing for this worker after all
    try:
        with os.fdopen(fd, "rb") as stream:
            stream.seek(0)
            work(conn, request, stream, chunking, limits)
    except DocumentError as exc:
        send(conn, {"error": [exc.code.value, exc.message]})
    except MemoryError:
        send(conn, {"memory": True})
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
