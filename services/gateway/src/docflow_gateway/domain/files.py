"""Deciding what an uploaded file is, from its bytes, and naming it safely."""

from __future__ import annotations

import codecs
import hashlib
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath
from typing import BinaryIO
from uuid import UUID

from docflow_gateway.domain.sniffing import ZIP_MAGIC, container_type, is_html
from docflow_shared.events import ContentType

PDF_MAGIC = b"%PDF-"
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
TEXT_SUFFIXES = frozenset({".txt", ".text", ""})
MAX_FILENAME_CHARS = 255

# NUL and the other C0 controls except tab, newlines and form feed never occur
# in text documents; they mark binary data that happens to decode as UTF-8.
_BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f]")

SUPPORTED = (
    "PDF, Word (.docx), PowerPoint (.pptx), Excel (.xlsx), EPUB, HTML, Markdown (.md, "
    ".markdown) and text (.txt); text in UTF-8, UTF-16 or Windows-1252"
)
# Text types: the encoding found travels in the event for the extractor.
TEXT_TYPES: frozenset[ContentType] = frozenset({"text/markdown", "text/plain", "text/html"})
# How much of the start of a text file decides whether it is an HTML page.
_SNIFF_BYTES = 1024


class RejectedFileError(ValueError):
    """A file docflow will not take; names the file."""

    def __init__(self, detail: str, filename: str) -> None:
        super().__init__(detail)
        self.filename = filename


class UnsupportedFileError(RejectedFileError):
    """The file is not one docflow can process."""


class EmptyFileError(RejectedFileError):
    """The file has no bytes."""


# Text is tried as UTF-8 first (a byte-order mark allowed), then as Windows-1252,
# the usual legacy encoding of Western text: it leaves five byte values
# undefined, so most binary data still fails to decode. UTF-16 is recognised
# by its byte-order mark only.
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_TEXT_CHARSETS = ("utf-8", "cp1252")


@dataclass
class FileInspector:
    """Fed a file's bytes in order; tells its size, sha256, and its type from its bytes.

    Works on the stream as it is copied, so memory stays flat whatever the
    file size. A ZIP container (a Word, PowerPoint, Excel or EPUB file, or
    none of them) is also copied to an unnamed temporary file, whose
    directory says what it is (sniffing.py); it is gone once that is known.
    """

    size: int = 0
    _head: bytes = b""
    _start: bytes = b""
    _zip: BinaryIO | None = None
    _zip_type: ContentType | None = None
    _sha256: hashlib._Hash = field(default_factory=hashlib.sha256)
    # Encodings the bytes so far decode in, as text without binary controls.
    _decoders: dict[str, codecs.IncrementalDecoder] | None = None

    def feed(self, data: bytes) -> None:
        if self.size == 0 and data.startswith(ZIP_MAGIC):
            self._zip = tempfile.TemporaryFile()  # noqa: SIM115 - closed by finish()
        if self._zip is not None:
            self._zip.write(data)
        if len(self._start) < _SNIFF_BYTES:
            self._start += data[: _SNIFF_BYTES - len(self._start)]
        self.size += len(data)
        self._sha256.update(data)
        if len(self._head) < len(PDF_MAGIC):
            self._head += data[: len(PDF_MAGIC) - len(self._head)]
            if self._head == PDF_MAGIC:
                self._decoders = {}  # a PDF: whether it also decodes as text is moot
        if self._decoders is None:
            # The first bytes decide whether UTF-16 is a candidate.
            charsets = ("utf-16",) if data.startswith(_UTF16_BOMS) else _TEXT_CHARSETS
            self._decoders = {c: codecs.getincrementaldecoder(c)() for c in charsets}
        self._decode(data, final=False)

    def _decode(self, data: bytes, *, final: bool) -> None:
        for charset, decoder in list((self._decoders or {}).items()):
            try:
                decoded = decoder.decode(data, final=final)
            except UnicodeDecodeError:
                del self._decoders[charset]  # type: ignore[union-attr]
                continue
            if _BINARY_CONTROLS.search(decoded):
                del self._decoders[charset]  # type: ignore[union-attr]

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def charset(self) -> str | None:
        """The encoding the whole file decodes in as text, or None for binary data."""
        self._decode(b"", final=True)
        return next(iter(self._decoders or {}), None)

    def finish(self) -> None:
        """After the last byte: what a ZIP container holds is decided, its copy dropped."""
        if self._zip is not None:
            try:
                self._zip.flush()
                self._zip_type = container_type(self._zip, self.size)
            finally:
                self._zip.close()
                self._zip = None

    def content_type(self, filename: str) -> ContentType:
        """PDF by its magic bytes; Word, PowerPoint, Excel and EPUB by their container's
        content types; HTML by how its text starts; Markdown and text by name *and*
        decodable text."""
        if self.size == 0:
            raise EmptyFileError(f"{filename!r} is empty", filename)
        if self._head == PDF_MAGIC:
            return "application/pdf"
        self.finish()
        if self._zip_type is not None:
            return self._zip_type
        charset = self.charset()
        is_text = charset is not None
        if charset is not None and is_html(self._start.decode(charset, "ignore")):
            return "text/html"
        suffix = PurePosixPath(filename).suffix.lower()
        if is_text and suffix in MARKDOWN_SUFFIXES:
            return "text/markdown"
        if is_text and suffix in TEXT_SUFFIXES:
            return "text/plain"
        what = "a text file with an unsupported extension" if is_text else "binary data"
        if self._start.startswith(ZIP_MAGIC):
            what = "a ZIP container that is not a Word, PowerPoint, Excel or EPUB file"
        raise UnsupportedFileError(
            f"{filename!r} is {what}, not a supported document; docflow accepts {SUPPORTED}",
            filename,
        )


@dataclass
class ReceivedFile:
    """An uploaded file, stored under a generated key; not yet accepted."""

    filename: str
    document_id: UUID
    blob_key: str
    inspector: FileInspector = field(default_factory=FileInspector)


def display_name(raw: str | None) -> str:
    """A client-supplied filename made safe to show and log.

    Drops any directory part (POSIX or Windows), control and format
    characters, and caps the length; storage names never come from here.
    """
    name = PureWindowsPath(PurePosixPath(raw or "").name).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, suffix = name.rpartition(".")
        keep = MAX_FILENAME_CHARS - len(suffix) - 1
        name = (
            f"{stem[:keep]}.{suffix}" if dot and 0 < len(suffix) < 16 else name[:MAX_FILENAME_CHARS]
        )
    return name or "upload"
