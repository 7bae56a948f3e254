"""Reading a document's text page by page.

Parsers see untrusted bytes, so every way a parser can give up on a file is
turned into a ``DocumentError`` with the code a client can act on:
``encrypted`` when a password is needed, ``corrupt`` when the file cannot be
read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

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


class PdfDocument:
    """A PDF read with pypdf."""

    def __init__(self, stream: BinaryIO) -> None:
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
            raise _corrupt("the PDF could not be opened", exc) from exc

    @property
    def page_count(self) -> int:
        return self._page_count

    def pages(self) -> Iterator[Page]:
        for number in range(1, self._page_count + 1):
            try:
                text = self._reader.pages[number - 1].extract_text()
            except MemoryError:
                raise
            except Exception as exc:
                raise _corrupt(
                    f"page {number} of {self._page_count} could not be read", exc
                ) from exc
            yield Page(number, text or "")


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
