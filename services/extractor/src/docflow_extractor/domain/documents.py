"""Reading a document's text page by page.

Parsers see untrusted bytes, so every way a parser can give up on a file is
turned into a ``DocumentError`` with the code a client can act on:
``encrypted`` when a password is needed, ``corrupt`` when the file cannot be
read.

PDFs are read with pypdf. Where pypdf finds a file or a page damaged, PDFium
(``pypdfium2``) reads it instead, from that page on. On damaged copies of the
test corpus (bench/pdf_fallback.py) PDFium read all 24 files with text
whose ``%%EOF`` marker was missing, which pypdf refuses to open, and 6 of 31
with bytes overwritten inside, where pypdf gave up on a page; it never did
worse than pypdf.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import pypdfium2
from pypdf import PasswordType, PdfReader
from pypdf.errors import LimitReachedError

from docflow_shared.errors import DocumentError
from docflow_shared.events import ContentType, ErrorCode

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    """The text of one page; ``number`` is 1-based, ``None`` for unpaginated text."""

    number: int | None
    text: str


class Document(Protocol):
    """An opened document: its page count when it has pages, and its pages in order."""

    @property
    def page_count(self) -> int | None: ...

    def pages(self) -> Iterator[Page]: ...


def _corrupt(what: str, exc: BaseException) -> DocumentError:
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, LimitReachedError | RecursionError):
        # pypdf's own resource limits (decompressed size, element counts,
        # nesting): the file is built to exhaust a parser, or far too big.
        return DocumentError(
            ErrorCode.LIMIT_EXCEEDED,
            f"{what}: it exceeds a parsing limit ({reason}); docflow does not process "
            "files built like this",
        )
    return DocumentError(
        ErrorCode.CORRUPT,
        f"{what} ({reason}); the file is damaged or not a valid PDF, "
        "export or save it again and upload the new copy",
    )


class PdfiumDocument:
    """A PDF read with PDFium, for what pypdf cannot read."""

    def __init__(self, stream: BinaryIO) -> None:
        stream.seek(0)
        try:
            self._pdf = pypdfium2.PdfDocument(stream)
            self._page_count = len(self._pdf)
        except pypdfium2.PdfiumError as exc:
            raise _corrupt("the PDF could not be opened", exc) from exc

    @property
    def page_count(self) -> int:
        return self._page_count

    def page(self, number: int) -> Page:
        try:
            page = self._pdf[number - 1]
            try:
                textpage = page.get_textpage()
                text = textpage.get_text_range()
                textpage.close()
            finally:
                page.close()
        except pypdfium2.PdfiumError as exc:
            raise _corrupt(f"page {number} of {self._page_count} could not be read", exc) from exc
        # PDFium ends lines with CR LF, pypdf with LF.
        return Page(number, text.replace("\r\n", "\n"))

    def pages(self) -> Iterator[Page]:
        for number in range(1, self._page_count + 1):
            yield self.page(number)


class PdfDocument:
    """A PDF read with pypdf, and with PDFium from the first page pypdf cannot read."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._fallback: PdfiumDocument | None = None
        # What pypdf found wrong: reported if PDFium fails on the file as well.
        self._damage: DocumentError | None = None
        # Parsers raise many exception types on hostile or damaged input
        # (PdfReadError, KeyError, ValueError, RecursionError, ...): any of
        # them means this file cannot be read, which is the document's
        # failure, not the service's.
        try:
            self._reader = PdfReader(stream)
            # Many PDFs are encrypted with an empty user password only to
            # restrict editing; those open without one.
            if self._reader.is_encrypted and self._reader.decrypt("") == PasswordType.NOT_DECRYPTED:
                raise DocumentError(
                    ErrorCode.ENCRYPTED,
                    "the PDF is protected by a password; upload a copy saved without one",
                )
            self._page_count = len(self._reader.pages)
        except (DocumentError, MemoryError):
            raise  # out of memory is the sandbox's to report, with its limit
        except Exception as exc:
            error = _corrupt("the PDF could not be opened", exc)
            if error.code is not ErrorCode.CORRUPT:
                raise error from exc
            self._fallback = self._pdfium_instead(error, exc)
            self._damage = error
            self._page_count = self._fallback.page_count

    def _pdfium_instead(self, error: DocumentError, exc: BaseException) -> PdfiumDocument:
        """PDFium, for a file pypdf found damaged; pypdf's error when PDFium fails too."""
        logger.info("pypdf: %s; reading it with PDFium instead", error.message)
        try:
            return PdfiumDocument(self._stream)
        except DocumentError:
            raise error from exc

    @property
    def page_count(self) -> int:
        return self._page_count

    def pages(self, first: int = 1) -> Iterator[Page]:
        """The pages from ``first`` (1-based) to the last."""
        for number in range(max(first, 1), self._page_count + 1):
            if self._fallback is not None:
                yield self._from_fallback(number)
                continue
            try:
                text = self._reader.pages[number - 1].extract_text()
            except MemoryError:
                raise
            except Exception as exc:
                error = _corrupt(f"page {number} of {self._page_count} could not be read", exc)
                if error.code is not ErrorCode.CORRUPT:
                    raise error from exc
                fallback = self._pdfium_instead(error, exc)
                if fallback.page_count != self._page_count:
                    raise error from exc  # the two disagree on the pages: trust neither
                self._fallback, self._damage = fallback, error
                yield self._from_fallback(number)
                continue
            yield Page(number, text or "")

    def _from_fallback(self, number: int) -> Page:
        assert self._fallback is not None
        try:
            return self._fallback.page(number)
        except DocumentError as exc:
            # Neither parser can read it; pypdf's reason usually says more.
            raise (self._damage or exc) from exc


class TextDocument:
    """Markdown or plain text: one unpaginated body of text in the given encoding."""

    page_count = None

    def __init__(self, stream: BinaryIO, charset: str | None = None) -> None:
        # UTF-8 with or without a byte-order mark unless the gateway found otherwise.
        encoding = "utf-8-sig" if charset in (None, "utf-8") else charset
        try:
            self._text = stream.read().decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise DocumentError(
                ErrorCode.UNSUPPORTED, f"the file is not valid {encoding} text ({exc})"
            ) from exc

    def pages(self) -> Iterator[Page]:
        yield Page(None, self._text)


def open_document(
    stream: BinaryIO, content_type: ContentType, charset: str | None = None
) -> Document:
    """Open a stored document of a type the gateway accepted."""
    if content_type == "application/pdf":
        return PdfDocument(stream)
    return TextDocument(stream, charset)
