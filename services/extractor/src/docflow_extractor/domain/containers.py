"""Opening an untrusted ZIP container (Word, PowerPoint, Excel, EPUB) within limits.

Before any format library reads a container, every entry is checked:
the number of entries, the total of the entries' declared sizes, and then
each entry is inflated once: zipfile stops an entry at its declared size
and checks its checksum, so one that holds more than it declares (a zip
bomb that lies in its headers) fails at its declared size (``corrupt``). XML parts may not
declare a DTD: OOXML forbids one (ECMA-376 part 2, the Open Packaging
Conventions), and an EPUB's may not declare entities, which is how entity
expansion ("billion laughs") works. Each failure is ``limit_exceeded``
naming the limit and its setting.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from docflow_shared.errors import DocumentError
from docflow_shared.events import ErrorCode

MiB = 1024 * 1024
_READ_BYTES = MiB
# The start of an XML part, where a document type declaration would be.
_PROLOGUE_BYTES = 4096
_ENCRYPTED = 0x1  # general purpose flag bit 0


@dataclass(frozen=True)
class ContainerLimits:
    """What one container (its entries, their sizes, a workbook's cells) may hold.

    The corpus' containers have at most 56 entries and 1 MiB unpacked; a
    PowerPoint deck of 400 slides with pictures has some 2,000 entries.
    Every part of a PowerPoint file is held in memory while it is read, so
    the unpacked size stays well inside the sandbox's memory limit.
    """

    max_entries: int = 5000
    max_unpacked_bytes: int = 256 * MiB
    # 200,000 cells are about 10,000 chunks of table: half the chunk limit.
    max_cells: int = 200_000


def _limit(message: str) -> DocumentError:
    return DocumentError(ErrorCode.LIMIT_EXCEEDED, message)


def _too_big(limits: ContainerLimits) -> DocumentError:
    return _limit(
        f"the container unpacks to more than {limits.max_unpacked_bytes} bytes, the limit "
        "per document (DOCFLOW_MAX_UNPACKED_BYTES); docflow does not read files built like this"
    )


def corrupt_container(what: str, exc: BaseException) -> DocumentError:
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return DocumentError(
        ErrorCode.CORRUPT,
        f"{what} ({reason}); the file is damaged or not what it claims to be, "
        "save it again and upload the new copy",
    )


def _read_through(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Inflate the entry once: zipfile stops at its declared size and checks its
    checksum, so an entry that holds more than it declares fails here."""
    with archive.open(info) as entry:
        while entry.read(_READ_BYTES):
            pass


def _check_prologue(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, epub: bool) -> None:
    with archive.open(info) as entry:
        head = entry.read(_PROLOGUE_BYTES)
    if b"<!ENTITY" in head or (not epub and b"<!DOCTYPE" in head):
        what = "entities" if epub else "a document type (DTD)"
        raise _limit(
            f"the part {info.filename!r} declares {what}, which docflow does not expand "
            "(XML entity expansion)"
        )


def open_container(
    stream: BinaryIO, limits: ContainerLimits, *, epub: bool = False
) -> zipfile.ZipFile:
    """The container, once every entry was found within ``limits``; ``DocumentError`` otherwise."""
    stream.seek(0)
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise corrupt_container("the file could not be opened as a ZIP container", exc) from exc
    entries = archive.infolist()
    if len(entries) > limits.max_entries:
        raise _limit(
            f"the container has {len(entries)} entries, more than the limit of "
            f"{limits.max_entries} per document (DOCFLOW_MAX_CONTAINER_ENTRIES)"
        )
    if sum(info.file_size for info in entries) > limits.max_unpacked_bytes:
        raise _too_big(limits)
    try:
        for info in entries:
            if info.flag_bits & _ENCRYPTED:
                raise DocumentError(
                    ErrorCode.ENCRYPTED,
                    "the container is protected by a password; upload a copy saved without one",
                )
            if info.is_dir():
                continue
            _read_through(archive, info)
            if info.filename.lower().endswith((".xml", ".rels", ".opf", ".xhtml", ".ncx")):
                _check_prologue(archive, info, epub=epub)
    except DocumentError:
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        NotImplementedError,
        ValueError,
        EOFError,
        OSError,
    ) as exc:
        # A bad checksum, an unknown compression method, a cut-off entry.
        raise corrupt_container("an entry of the container could not be read", exc) from exc
    return archive
