"""What a ZIP container or a text file holds, from its bytes: OOXML, EPUB, HTML.

A Word, PowerPoint or Excel file is a ZIP container whose
``[Content_Types].xml`` names the content type of its main part (ECMA-376
part 2); an EPUB's first entry is ``mimetype``, holding
``application/epub+zip``. The name the client gave the file plays no part.

The container is untrusted: its central directory is counted before
``zipfile`` reads it (a directory of a million entries is refused
unread), only the two small entries are read, each with a size cap, and
``[Content_Types].xml`` is parsed with defusedxml (no DTD, no entities).
Zip bombs and the like are the extractor's to refuse, in its sandbox.
"""

from __future__ import annotations

import struct
import zipfile
from typing import BinaryIO
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from docflow_shared.events import ContentType

ZIP_MAGIC = b"PK\x03\x04"
# A Word document with 10,000 pictures has about 10,000 entries; its
# extractor refuses it (DOCFLOW_MAX_CONTAINER_ENTRIES), after it is accepted.
MAX_ENTRIES_INSPECTED = 50_000
_MAX_CONTENT_TYPES_BYTES = 1024 * 1024
# End of central directory record: signature, then (at 10) entries, (12) size, (16) offset.
_END_OF_DIRECTORY = b"PK\x05\x06"
_END_RECORD_BYTES = 22
_MAX_COMMENT_BYTES = 0xFFFF

MAIN_PARTS: dict[str, ContentType] = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    ),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    ),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ),
}
EPUB_MIMETYPE = b"application/epub+zip"


def _entries(file: BinaryIO, size: int) -> int | None:
    """The entry count the end of central directory record gives; None without one."""
    start = max(0, size - _END_RECORD_BYTES - _MAX_COMMENT_BYTES)
    file.seek(start)
    tail = file.read()
    at = tail.rfind(_END_OF_DIRECTORY)
    if at < 0 or len(tail) - at < _END_RECORD_BYTES:
        return None
    (entries,) = struct.unpack_from("<H", tail, at + 10)
    return int(entries)


def _main_part(archive: zipfile.ZipFile) -> ContentType | None:
    info = archive.getinfo("[Content_Types].xml")
    if info.file_size > _MAX_CONTENT_TYPES_BYTES:
        return None
    with archive.open(info) as entry:
        types = fromstring(entry.read(_MAX_CONTENT_TYPES_BYTES + 1))
    names = set(archive.namelist())
    for override in types:
        if not str(override.tag).endswith("Override"):
            continue
        kind = MAIN_PARTS.get(override.attrib.get("ContentType", "").lower())
        if kind is not None and override.attrib.get("PartName", "").lstrip("/") in names:
            return kind
    return None


def container_type(file: BinaryIO, size: int) -> ContentType | None:
    """The type of the ZIP container in ``file``: Word, PowerPoint, Excel, EPUB, or None."""
    entries = _entries(file, size)
    # 0xFFFF: a ZIP64 directory, which may count any number of entries.
    if entries is None or entries >= min(MAX_ENTRIES_INSPECTED, 0xFFFF):
        return None
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
            if names and names[0] == "mimetype":
                info = archive.getinfo("mimetype")
                small = info.file_size <= len(EPUB_MIMETYPE) + 2
                if small and archive.read(info).strip() == EPUB_MIMETYPE:
                    return "application/epub+zip"
            if "[Content_Types].xml" in names:
                return _main_part(archive)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        RuntimeError,  # an encrypted entry
        ValueError,
        EOFError,
        OSError,
        ParseError,
        DefusedXmlException,
    ):
        return None
    return None


def is_html(start: str) -> bool:
    """Whether text starts as an HTML page does (a doctype or ``<html>``, after comments)."""
    rest = start.lstrip("\ufeff \t\r\n\f")
    while rest.startswith(("<!--", "<?xml")):
        end = rest.find("-->" if rest.startswith("<!--") else "?>")
        if end < 0:
            return False
        rest = rest[end + 3 if rest.startswith("<!--") else end + 2 :].lstrip(" \t\r\n\f")
    lowered = rest[:16].lower()
    if lowered.startswith("<!doctype html"):
        return True
    return lowered.startswith("<html") and (len(lowered) == 5 or lowered[5] in " \t\r\n\f>")
