"""Deciding what an uploaded file is, from its bytes, and naming it safely."""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath

from docflow_shared.events import ContentType

PDF_MAGIC = b"%PDF-"
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
TEXT_SUFFIXES = frozenset({".txt", ".text", ""})
MAX_FILENAME_CHARS = 255

# NUL and the other C0 controls except tab, newlines and form feed never occur
# in text documents; they mark binary data that happens to decode as UTF-8.
_BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f]")

SUPPORTED = "PDF, Markdown (.md, .markdown) and UTF-8 text (.txt)"


class UnsupportedFileError(ValueError):
    """The file is not one docflow can process."""


class EmptyFileError(ValueError):
    """The file has no bytes."""


@dataclass
class FileInspector:
    """Fed a file's bytes in order; tells its size, sha256 and whether it is text.

    Works on the stream as it is copied, so nothing is read twice and memory
    stays flat whatever the file size.
    """

    size: int = 0
    _head: bytes = b""
    _sha256: hashlib._Hash = field(default_factory=hashlib.sha256)
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")()
    )
    _is_text: bool = True

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        self._sha256.update(data)
        if len(self._head) < len(PDF_MAGIC):
            self._head += data[: len(PDF_MAGIC) - len(self._head)]
        if self._is_text:
            self._check_text(data, final=False)

    def _check_text(self, data: bytes, *, final: bool) -> None:
        try:
            decoded = self._decoder.decode(data, final=final)
        except UnicodeDecodeError:
            self._is_text = False
            return
        if _BINARY_CONTROLS.search(decoded):
            self._is_text = False

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def content_type(self, filename: str) -> ContentType:
        """PDF by its magic bytes; Markdown and text by name *and* valid UTF-8."""
        if self.size == 0:
            raise EmptyFileError(f"{filename!r} is empty")
        if self._head == PDF_MAGIC:
            return "application/pdf"
        if self._is_text:
            self._check_text(b"", final=True)
        suffix = PurePosixPath(filename).suffix.lower()
        if self._is_text and suffix in MARKDOWN_SUFFIXES:
            return "text/markdown"
        if self._is_text and suffix in TEXT_SUFFIXES:
            return "text/plain"
        what = "a text file with an unsupported extension" if self._is_text else "binary data"
        raise UnsupportedFileError(
            f"{filename!r} is {what}, not a supported document; docflow accepts {SUPPORTED}"
        )


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
