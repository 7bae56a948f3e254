"""Receiving an upload: multipart ``file`` parts streamed into the blob store.

The request body is parsed as it arrives (python-multipart's push parser);
each ``file`` part goes straight into the blob store in chunks while its size
is counted and its bytes inspected and hashed, so memory stays flat whatever
the file size and the size limit holds whatever ``Content-Length`` claims.
Any failure removes every blob the request stored.

An optional ``metadata`` part (a JSON object, ``docflow_shared.events.metadata``)
applies to every file of the request; it is kept in memory, at most
``UploadLimits.max_metadata_bytes``, and checked before anything is announced.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from typing import BinaryIO
from uuid import uuid4

from anyio import to_thread
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from docflow_gateway.domain.files import ReceivedFile, display_name
from docflow_shared.blobstore import BlobStore, original_key
from docflow_shared.events.metadata import MetadataError, Value, parse_metadata

logger = logging.getLogger(__name__)

FILE_FIELD = "file"
METADATA_FIELD = "metadata"
# Bytes gathered before one write to the blob store (off the event loop).
WRITE_CHUNK_BYTES = 1024 * 1024
# Non-file form fields are not used; they may not make a request unbounded.
MAX_OTHER_FIELD_BYTES = 64 * 1024


@dataclass(frozen=True)
class UploadLimits:
    max_file_bytes: int
    max_files: int
    max_metadata_bytes: int = 8192


class UploadError(Exception):
    """The request cannot be accepted as it is; nothing of it was kept."""

    status = 422
    code = "malformed-request"

    def __init__(self, detail: str, filename: str | None = None) -> None:
        super().__init__(detail)
        self.filename = filename


class NotMultipartError(UploadError):
    status = 415
    code = "not-multipart"


class FileTooLargeError(UploadError):
    status = 413
    code = "file-too-large"


class TooManyFilesError(UploadError):
    status = 413
    code = "too-many-files"


class MetadataTooLargeError(UploadError):
    status = 413
    code = "metadata-too-large"


class InvalidMetadataError(UploadError):
    status = 422
    code = "invalid-metadata"


@dataclass(frozen=True)
class Upload:
    """What a request carried: its files (stored) and its metadata (checked)."""

    files: list[ReceivedFile]
    metadata: dict[str, Value] | None = None


@dataclass
class _Part:
    """The part being parsed: its headers, then (for a file) where its bytes go."""

    headers: dict[bytes, bytes] = field(default_factory=dict)
    file: ReceivedFile | None = None
    writer: AbstractContextManager[BinaryIO] | None = None
    sink: BinaryIO | None = None
    buffer: bytearray = field(default_factory=bytearray)
    # Bytes of the file received so far (the limit is checked as they arrive).
    file_bytes: int = 0
    other_bytes: int = 0
    # The ``metadata`` part's bytes, while it is the part being parsed.
    metadata: bytearray | None = None


def _store(part: _Part, chunk: bytes) -> None:
    """In a worker thread: inspect and hash ``chunk``, then write it to the blob.

    Off the event loop both: hashlib lets go of the GIL on large inputs, so
    other requests go on while a megabyte is hashed.
    """
    if part.file is not None and chunk:
        part.file.inspector.feed(chunk)
    if part.sink is not None and chunk:
        part.sink.write(chunk)


def _boundary(content_type: str | None) -> bytes:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise NotMultipartError(
            "send the documents as multipart/form-data, one part named `file` per document"
        )
    return boundary


class _Receiver:
    """Turns the parser's callbacks into blob writes, one part at a time."""

    def __init__(self, *, tenant_id: str, blobs: BlobStore, limits: UploadLimits) -> None:
        self.tenant_id = tenant_id
        self.blobs = blobs
        self.limits = limits
        self.files: list[ReceivedFile] = []
        self.metadata: dict[str, Value] | None = None
        self._metadata_parts = 0
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()
        # Parser callbacks are synchronous; what they produce is acted on
        # (awaited) after each parser.write().
        self._events: list[tuple[str, bytes]] = []

    def callbacks(self) -> dict[str, object]:
        def data(kind: str) -> Callable[[bytes, int, int], None]:
            def on(buf: bytes, start: int, end: int) -> None:
                self._events.append((kind, bytes(buf[start:end])))

            return on

        def mark(kind: str) -> Callable[[], None]:
            def on() -> None:
                self._events.append((kind, b""))

            return on

        return {
            "on_part_begin": mark("part_begin"),
            "on_header_field": data("header_field"),
            "on_header_value": data("header_value"),
            "on_header_end": mark("header_end"),
            "on_headers_finished": mark("headers_finished"),
            "on_part_data": data("part_data"),
            "on_part_end": mark("part_end"),
        }

    async def drain(self) -> None:
        events, self._events = self._events, []
        for kind, data in events:
            if kind == "part_begin":
                self._part = _Part()
            elif kind == "header_field":
                self._header_field += data
            elif kind == "header_value":
                self._header_value += data
            elif kind == "header_end":
                name = bytes(self._header_field).lower()
                self._part.headers[name] = bytes(self._header_value)
                self._header_field.clear()
                self._header_value.clear()
            elif kind == "headers_finished":
                await self._begin_file()
            elif kind == "part_data":
                await self._data(data)
            elif kind == "part_end":
                await self._end_part()

    async def _begin_file(self) -> None:
        _, options = parse_options_header(self._part.headers.get(b"content-disposition"))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == METADATA_FIELD:
            self._metadata_parts += 1
            if self._metadata_parts > 1:
                raise InvalidMetadataError(
                    f"more than one `{METADATA_FIELD}` part; send one JSON object, "
                    "which applies to every file of the request"
                )
            self._part.metadata = bytearray()
            return
        if name != FILE_FIELD:
            return
        raw_name = options.get(b"filename")
        if raw_name is None:
            # Without a filename a part is a text field, not an uploaded file.
            raise UploadError(
                f"a `{FILE_FIELD}` part has no filename; send each document as a file"
            )
        filename = display_name(raw_name.decode("utf-8", "replace"))
        if len(self.files) >= self.limits.max_files:
            raise TooManyFilesError(
                f"at most {self.limits.max_files} files per request; "
                "send the others in further requests",
                filename,
            )
        document_id = uuid4()
        received = ReceivedFile(filename, document_id, original_key(self.tenant_id, document_id))
        self.files.append(received)
        self._part.file = received
        self._part.writer = self.blobs.writer(received.blob_key)
        self._part.sink = await to_thread.run_sync(self._part.writer.__enter__)

    async def _data(self, data: bytes) -> None:
        part = self._part
        if part.metadata is not None:
            part.metadata += data
            if len(part.metadata) > self.limits.max_metadata_bytes:
                raise MetadataTooLargeError(
                    f"the `{METADATA_FIELD}` part is larger than the limit of "
                    f"{self.limits.max_metadata_bytes} bytes"
                )
            return
        if part.file is None:
            part.other_bytes += len(data)
            if part.other_bytes > MAX_OTHER_FIELD_BYTES:
                raise UploadError(f"form fields other than `{FILE_FIELD}` are not used")
            return
        part.file_bytes += len(data)
        if part.file_bytes > self.limits.max_file_bytes:
            raise FileTooLargeError(
                f"{part.file.filename!r} is larger than the limit of "
                f"{self.limits.max_file_bytes} bytes per file",
                part.file.filename,
            )
        part.buffer += data
        if len(part.buffer) >= WRITE_CHUNK_BYTES:
            chunk, part.buffer = bytes(part.buffer), bytearray()
            await to_thread.run_sync(_store, part, chunk)

    async def _end_part(self) -> None:
        part = self._part
        if part.metadata is not None:
            try:
                self.metadata = parse_metadata(bytes(part.metadata))
            except MetadataError as exc:
                raise InvalidMetadataError(str(exc)) from None
            part.metadata = None
            return
        writer = part.writer
        if writer is None:
            return
        chunk, part.buffer = bytes(part.buffer), bytearray()

        def finish() -> None:
            try:
                _store(part, chunk)
                if part.file is not None:
                    part.file.inspector.finish()  # a container's type, off the event loop
            except BaseException as exc:
                writer.__exit__(type(exc), exc, exc.__traceback__)  # drops the partial blob
                raise
            # Closing makes the blob visible (fsync and rename).
            writer.__exit__(None, None, None)

        try:
            await to_thread.run_sync(finish)
        finally:
            part.writer, part.sink = None, None

    async def abandon(self) -> None:
        """Remove the part being written and every stored file."""
        part = self._part
        if part.writer is not None:
            writer, part.writer, part.sink = part.writer, None, None
            error = RuntimeError("upload abandoned")
            with suppress(RuntimeError):
                await to_thread.run_sync(writer.__exit__, RuntimeError, error, None)
        for received in self.files:
            await to_thread.run_sync(self.blobs.delete, received.blob_key)


async def receive_files(
    body: AsyncIterator[bytes],
    content_type: str | None,
    *,
    tenant_id: str,
    blobs: BlobStore,
    limits: UploadLimits,
) -> list[ReceivedFile]:
    """Store every ``file`` part of a multipart body; on any error keep none of them.

    Raises an ``UploadError`` subclass naming the problem (and the file, when
    one is to blame).
    """
    upload = await receive_upload(
        body, content_type, tenant_id=tenant_id, blobs=blobs, limits=limits
    )
    return upload.files


async def receive_upload(
    body: AsyncIterator[bytes],
    content_type: str | None,
    *,
    tenant_id: str,
    blobs: BlobStore,
    limits: UploadLimits,
) -> Upload:
    """``receive_files``, with the request's ``metadata`` part (checked) if it has one."""
    receiver = _Receiver(tenant_id=tenant_id, blobs=blobs, limits=limits)
    parser = MultipartParser(_boundary(content_type), receiver.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in body:
            if not chunk:
                continue
            try:
                parser.write(chunk)
            except MultipartParseError as exc:
                raise UploadError(f"the multipart body is malformed: {exc}") from exc
            await receiver.drain()
        try:
            parser.finalize()
        except MultipartParseError as exc:
            raise UploadError(f"the multipart body is malformed: {exc}") from exc
        await receiver.drain()
        if parser.state != MultipartState.END:
            raise UploadError("the multipart body ended before its closing boundary")
    except BaseException:
        await receiver.abandon()
        raise
    if not receiver.files:
        raise UploadError(f"no `{FILE_FIELD}` part: send each document as a part named `file`")
    return Upload(receiver.files, receiver.metadata)
