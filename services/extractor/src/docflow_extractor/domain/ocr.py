"""OCR for PDF pages without a text layer: render the page with PDFium, read the picture.

A page is OCR'd only when its text layer is (nearly) empty: fewer than
``OcrPolicy.min_text_chars`` letters and digits (by default 16, so a scan
with nothing but a page number or a date stamp in its text layer is still
read, while any page with a line of real text is never OCR'd). Where OCR
finds words, they replace the few characters of the layer; where it finds
none, the layer's text stays.

The page is rendered in grey at ``dpi`` (300 by default, what Tesseract is
trained for), downscaled where that would make more than ``max_pixels``: a
page 30 inches wide is read at a lower resolution rather than refused, and
the memory of one page stays bounded whatever size the PDF claims. An image
inside the page that PDFium cannot decode within the sandbox's memory limit
(a decompression bomb) ends the document with ``limit_exceeded`` naming that
limit, as any other parse that runs out of memory.

Before each page it reads, the document yields ``OcrStarted``: the
extractor reports "OCR page n of N", since one page takes seconds.

OCR as a stage of its own (``DOCFLOW_OCR_RANGE_PAGES``, docs/architecture.md,
"OCR"): the extractor's first reading stops at the first page that needs OCR
(``OcrNeeded``); ``ocr_range`` reads a range of pages in the OCR consumer's
sandbox; the extractor's second reading takes the pages' OCR text from
``ocr_texts`` instead of reading them itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import pypdfium2

from docflow_extractor.domain.documents import Document, Page, PdfDocument
from docflow_shared.errors import DocumentError
from docflow_shared.events import ErrorCode

_WORD_CHARS = re.compile(r"[^\W_]", re.UNICODE)


@dataclass(frozen=True)
class OcrPolicy:
    """Which pages are OCR'd and how they are rendered; ``languages`` empty: no OCR."""

    # Tesseract language packs joined by '+', e.g. "eng+deu".
    languages: str = "eng"
    dpi: int = 300
    # 25 million pixels: an A3 page at 300 dpi is 17.4 million.
    max_pixels: int = 25_000_000
    min_text_chars: int = 16

    @property
    def enabled(self) -> bool:
        return bool(self.languages)

    def needs_ocr(self, text: str) -> bool:
        """Whether a page with this text layer is read by OCR: (nearly) no text in it."""
        return len(_WORD_CHARS.findall(text, 0, 100_000)) < self.min_text_chars


@dataclass(frozen=True)
class OcrStarted:
    """The page ``page`` (1-based) is being read by OCR, which takes a while."""

    page: int


@dataclass(frozen=True)
class OcrNeeded:
    """Page ``page`` (1-based) needs OCR, which the OCR stage does: this reading stops."""

    page: int


@dataclass(frozen=True)
class GreyPicture:
    """A rendered page: 8-bit grey pixels, ``stride`` bytes a row."""

    width: int
    height: int
    stride: int
    pixels: bytes


class OcrEngine(Protocol):
    """Reads the text in a picture of a page; '' when it finds none."""

    def read(self, picture: GreyPicture) -> str: ...


def render_scale(width_pt: float, height_pt: float, policy: OcrPolicy) -> float:
    """PDFium's scale (pixels per point): ``dpi``, less where it would pass ``max_pixels``."""
    scale = policy.dpi / 72
    area = max(width_pt, 1.0) * max(height_pt, 1.0)
    if area * scale * scale > policy.max_pixels:
        scale = math.sqrt(policy.max_pixels / area)
    return scale


def render(pdf: pypdfium2.PdfDocument, number: int, policy: OcrPolicy) -> GreyPicture:
    """Page ``number`` of ``pdf`` as a grey picture, within ``policy.max_pixels``."""
    page = pdf[number - 1]
    try:
        width, height = page.get_size()
        scale = render_scale(width, height, policy)
        bitmap = page.render(scale=scale, grayscale=True)
        try:
            if bitmap.n_channels != 1:
                raise pypdfium2.PdfiumError(f"a rendering with {bitmap.n_channels} channels")
            return GreyPicture(
                bitmap.width, bitmap.height, bitmap.stride, bytes(memoryview(bitmap.buffer))
            )
        finally:
            bitmap.close()
    finally:
        page.close()


class OcrDocument:
    """A PDF whose pages without a text layer are read by OCR; the others as they are."""

    def __init__(
        self,
        document: Document,
        stream: BinaryIO,
        policy: OcrPolicy,
        engine: Callable[[], OcrEngine],
        *,
        defer: bool = False,
        ocr_texts: dict[int, str] | None = None,
    ) -> None:
        # defer: stop at the first page that needs OCR (``OcrNeeded``); ocr_texts:
        # the OCR stage's text of those pages, used instead of reading them here.
        self._defer = defer
        self._ocr_texts = ocr_texts
        self._document = document
        self._stream = stream
        self._policy = policy
        self._new_engine = engine
        self._engine: OcrEngine | None = None
        self._pdf: pypdfium2.PdfDocument | None = None

    @property
    def page_count(self) -> int | None:
        return self._document.page_count

    def pages(self) -> Iterator[Page | OcrStarted | OcrNeeded]:
        for page in self._document.pages():
            if page.number is None or not self._policy.needs_ocr(page.text):
                yield page
                continue
            if self._ocr_texts is not None:
                text = self._ocr_texts.get(page.number, "").strip()
            elif self._defer:
                yield OcrNeeded(page.number)
                return
            else:
                yield OcrStarted(page.number)
                text = self._read(page.number).strip()
            yield Page(page.number, text) if text else page

    def read_range(self, first: int, last: int) -> Iterator[OcrStarted | Page]:
        """Pages ``first``..``last`` that need OCR, each announced and then read.

        The pages with a text layer are skipped: the extractor reads those itself.
        """
        assert isinstance(self._document, PdfDocument)
        for page in self._document.pages(first):
            if page.number is None or page.number > last:
                return
            if self._policy.needs_ocr(page.text):
                yield OcrStarted(page.number)
                yield Page(page.number, self._read(page.number).strip())

    def _read(self, number: int) -> str:
        try:
            if self._pdf is None:
                self._stream.seek(0)
                self._pdf = pypdfium2.PdfDocument(self._stream)
            picture = render(self._pdf, number, self._policy)
        except pypdfium2.PdfiumError as exc:
            raise DocumentError(
                ErrorCode.CORRUPT,
                f"page {number} has no text layer and could not be rendered for OCR ({exc}); "
                "the file is damaged, export or save it again and upload the new copy",
            ) from exc
        if self._engine is None:
            self._engine = self._new_engine()
        return self._engine.read(picture)


def with_ocr(
    document: Document,
    stream: BinaryIO,
    policy: OcrPolicy,
    engine: Callable[[], OcrEngine],
    *,
    defer: bool = False,
    ocr_texts: dict[int, str] | None = None,
) -> Document | OcrDocument:
    """``document``, its pages without text read by OCR where it is a PDF and OCR is on
    (``defer``, ``ocr_texts``: see ``OcrDocument``)."""
    if not policy.enabled or not isinstance(document, PdfDocument):
        return document
    return OcrDocument(document, stream, policy, engine, defer=defer, ocr_texts=ocr_texts)
