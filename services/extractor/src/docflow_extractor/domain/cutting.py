"""Reading a document and cutting it into chunks, page by page, within per-document limits.

A document's text and its number of chunks are bounded: a 20 MB text file
would otherwise become some 28,000 chunks, each embedded and stored. The
limits are checked as pages arrive, before a page is cut, so a document past
them stops early with ``limit_exceeded`` naming the limit and its setting.
In the service this runs inside the parser sandbox, under its limits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from docflow_extractor.domain.chunking import Chunking, DocumentChunker, Piece
from docflow_extractor.domain.containers import ContainerLimits
from docflow_extractor.domain.documents import Page
from docflow_extractor.domain.formats import open_document
from docflow_extractor.domain.ocr import OcrDocument, OcrNeeded, OcrStarted
from docflow_shared.errors import DocumentError
from docflow_shared.events import ContentType, ErrorCode

MiB = 1024 * 1024


@dataclass(frozen=True)
class DocumentLimits:
    """What one document may become.

    The largest document of the test corpus (tests/corpus) has 148 KB of text and 362
    chunks; 10 MiB of text is a book of some 5,000 pages, about 15,000
    chunks of prose, so the chunk limit only stops text cut into unusually
    small chunks.
    """

    max_text_bytes: int = 10 * MiB
    max_chunks: int = 20_000
    # Word, PowerPoint, Excel and EPUB files: what their container may hold.
    container: ContainerLimits = field(default_factory=ContainerLimits)


class CutDocument(Protocol):
    """A document being cut: its page count, then each page's finished chunks in turn.

    ``pieces`` yields one list per page, then one more: what is left at the
    end of the document; before a page that is read by OCR, an ``OcrStarted``.
    When the OCR stage reads the pages without text (``Reading.ocr_range_pages``),
    it ends at the first such page with an ``OcrNeeded`` instead.
    """

    @property
    def page_count(self) -> int | None: ...

    def pieces(self) -> Iterator[list[Piece] | OcrStarted | OcrNeeded]: ...


class Pages(Protocol):
    """A document's pages, some of them announced by ``OcrStarted`` (``ocr.OcrDocument``)."""

    @property
    def page_count(self) -> int | None: ...

    def pages(self) -> Iterator[Page | OcrStarted | OcrNeeded]: ...


# Wraps an opened document so that its pages without text are read by OCR
# (``ocr.with_ocr``; keywords ``defer`` and ``ocr_texts`` when they are used).
WithOcr = Callable[..., Pages]


class OcrPages(Protocol):
    """A range of a PDF's pages read by OCR: each announced, then its text."""

    def pages(self) -> Iterator[OcrStarted | Page]: ...


def text_limit_error(limits: DocumentLimits) -> DocumentError:
    return DocumentError(
        ErrorCode.LIMIT_EXCEEDED,
        f"the document has more than {limits.max_text_bytes} bytes of text, the limit per "
        "document (DOCFLOW_MAX_TEXT_BYTES); split it into smaller files",
    )


def chunk_limit_error(limits: DocumentLimits) -> DocumentError:
    return DocumentError(
        ErrorCode.LIMIT_EXCEEDED,
        f"the document makes more than {limits.max_chunks} chunks, the limit per document "
        "(DOCFLOW_MAX_CHUNKS); split it into smaller files",
    )


def cut_pages(
    document: Pages, chunker: DocumentChunker, limits: DocumentLimits
) -> Iterator[list[Piece] | OcrStarted | OcrNeeded]:
    """Each page's finished chunks, then the last ones; stops at a limit with ``DocumentError``."""
    text_bytes = chunks = 0
    for page in document.pages():
        if isinstance(page, OcrStarted):
            yield page
            continue
        if isinstance(page, OcrNeeded):
            yield page
            return
        # Counted before cutting: cutting is the expensive part.
        text_bytes += len(page.text.encode("utf-8", "surrogatepass"))
        if text_bytes > limits.max_text_bytes:
            raise text_limit_error(limits)
        pieces = chunker.add(page)
        chunks += len(pieces)
        if chunks > limits.max_chunks:
            raise chunk_limit_error(limits)
        yield pieces
    pieces = chunker.finish()
    if chunks + len(pieces) > limits.max_chunks:
        raise chunk_limit_error(limits)
    yield pieces


@dataclass(frozen=True)
class _InProcessDocument:
    document: Pages
    chunker: DocumentChunker
    limits: DocumentLimits

    @property
    def page_count(self) -> int | None:
        return self.document.page_count

    def pieces(self) -> Iterator[list[Piece] | OcrStarted | OcrNeeded]:
        return cut_pages(self.document, self.chunker, self.limits)


@dataclass(frozen=True)
class InProcess:
    """Reads and cuts documents in this process: for tests and trusted files only."""

    chunking: Chunking
    limits: DocumentLimits = DocumentLimits()
    # None: no OCR (tests of the reading that do not need an OCR engine).
    ocr: WithOcr | None = None
    # The OCR stage reads the pages without text (``OcrNeeded``).
    defer: bool = False

    def __call__(
        self,
        stream: BinaryIO,
        content_type: ContentType,
        charset: str | None = None,
        *,
        ocr_texts: dict[int, str] | None = None,
    ) -> CutDocument:
        opened = open_document(stream, content_type, charset, self.limits.container)
        document: Pages = opened
        if self.ocr is not None and (self.defer or ocr_texts is not None):
            document = self.ocr(opened, stream, defer=self.defer, ocr_texts=ocr_texts)
        elif self.ocr is not None:
            document = self.ocr(opened, stream)
        return _InProcessDocument(document, self.chunking.for_document(content_type), self.limits)

    def ocr_range(self, stream: BinaryIO, first: int, last: int) -> OcrPages:
        """Pages ``first``..``last`` of a PDF that need OCR, read by OCR."""
        opened = open_document(stream, "application/pdf", None, self.limits.container)
        document = None if self.ocr is None else self.ocr(opened, stream)
        if not isinstance(document, OcrDocument):
            raise DocumentError(ErrorCode.INTERNAL, "OCR is off (DOCFLOW_OCR_LANGUAGES is '')")
        return _Range(document, first, last)


@dataclass(frozen=True)
class _Range:
    document: OcrDocument
    first: int
    last: int

    def pages(self) -> Iterator[OcrStarted | Page]:
        return self.document.read_range(self.first, self.last)
