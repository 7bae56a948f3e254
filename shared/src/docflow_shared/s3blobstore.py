"""The blob-store port on S3-compatible object storage (AWS S3, SeaweedFS, MinIO, Ceph).

A writer keeps the local store's promise (bytes appear at the key only when
the block succeeds; a failure leaves nothing) with S3's multipart upload: the
first full part starts an upload, each part is sent as soon as it fills (memory
holds one part, whatever the object's size), success completes the upload (or
sends a small object in one PUT) and any failure aborts it, so no object and
no stored parts remain. The calls are boto3's own: its higher-level transfer
manager and file-object writers (obstore's, say) upload on their own schedule
and give no way to abort.

Reads are downloaded to an anonymous temporary file, refused past the caller's
bound before a byte is fetched when the object says its size: readers get a
real file, the extractor hands its descriptor to the parser sandbox.

boto3 is synchronous, like the port: the gateway and the extractor call the
store from worker threads (the client is thread-safe).
"""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
from anyio import to_thread
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from docflow_shared.blobstore import (
    BlobNotFoundError,
    BlobStoreUnavailableError,
    BlobTooLargeError,
    checked_key,
)

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client
    from types_boto3_s3.type_defs import CompletedPartTypeDef

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
# S3 takes parts of 5 MiB to 5 GiB (the last may be smaller) and at most 10,000
# of them: 8 MiB parts hold objects up to 78 GiB, far past DOCFLOW_MAX_FILE_BYTES.
PART_BYTES = 8 * MiB
# How much of a download is read at a time into the temporary file.
READ_CHUNK_BYTES = 1 * MiB
# Codes S3 answers for a key that holds no object.
_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})
# Codes that say "not now" rather than "never" (besides any 5xx status).
_UNAVAILABLE = frozenset({"SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError"})


@dataclass(frozen=True)
class S3Location:
    """Where the blobs live: a bucket and a key prefix (``s3://bucket/prefix``)."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> S3Location:
        scheme, sep, rest = url.partition("://")
        bucket, _, prefix = rest.partition("/")
        if scheme != "s3" or not sep or not bucket:
            raise ValueError(f"expected s3://bucket[/prefix], got {url!r}")
        prefix = prefix.strip("/")
        if prefix:
            checked_key(prefix)  # plain path segments, as the keys below it
        return cls(bucket, f"{prefix}/" if prefix else "")


def s3_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    ca_bundle: Path | None = None,
    max_connections: int = 40,
) -> S3Client:
    """A boto3 S3 client; credentials left out come from boto3's usual chain
    (``AWS_*`` variables, a web identity token as EKS's IRSA sets, an instance role)."""
    config = Config(
        # A server of one's own (endpoint_url) is addressed by path; DNS names per
        # bucket (AWS's default) need wildcard records such servers rarely have.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=60,
        # As many connections as worker threads may call at once (anyio's 40).
        max_pool_connections=max_connections,
    )
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        verify=str(ca_bundle) if ca_bundle else None,
        config=config,
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


@contextmanager
def _unavailable_as_such(what: str) -> Iterator[None]:
    """Turn "the store cannot answer now" into ``BlobStoreUnavailableError``."""
    try:
        yield
    except (BotoConnectionError, HTTPClientError) as exc:
        raise BlobStoreUnavailableError(f"{what}: the blob store did not answer ({exc})") from exc
    except ClientError as exc:
        if _status(exc) >= 500 or _code(exc) in _UNAVAILABLE:
            raise BlobStoreUnavailableError(
                f"{what}: the blob store cannot serve now ({_code(exc) or _status(exc)})"
            ) from exc
        raise


class _Upload(io.RawIOBase):
    """What a writer's block writes to: parts sent as they fill, published or discarded."""

    def __init__(self, client: S3Client, bucket: str, name: str, part_bytes: int) -> None:
        super().__init__()
        self._client, self._bucket, self._name = client, bucket, name
        self._part_bytes = part_bytes
        # The part being filled: grows up to one part, then is filled again in
        # place for each next part (no new allocation per part).
        self._part = bytearray()
        self._filled = 0
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        with memoryview(data) as view:
            size, taken = view.nbytes, 0
            while taken < size:
                take = min(self._part_bytes - self._filled, size - taken)
                piece, end = view[taken : taken + take], self._filled + take
                if len(self._part) < end:
                    self._part += piece
                else:
                    self._part[self._filled : end] = piece
                self._filled, taken = end, taken + take
                if self._filled == self._part_bytes:
                    self._send(self._part)
                    self._filled = 0
        return size

    def _send(self, part: bytearray) -> None:
        if self._upload_id is None:
            started = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._name)
            self._upload_id = started["UploadId"]
        number = len(self._parts) + 1
        sent = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._name,
            UploadId=self._upload_id,
            PartNumber=number,
            # botocore sends a bytearray as it sends bytes (its stubs say bytes
            # only): the part is not copied; it is filled again once sent.
            Body=cast(bytes, part),
        )
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def publish(self) -> None:
        """Make the object visible: one PUT if it never filled a part, else the
        last part and the multipart upload's completion."""
        del self._part[self._filled :]  # what is left of the last part (in place)
        if self._upload_id is None:
            self._client.put_object(
                Bucket=self._bucket, Key=self._name, Body=cast(bytes, self._part)
            )
        else:
            if self._part:
                self._send(self._part)
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._name,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
            self._upload_id = None
        self._part, self._filled = bytearray(), 0

    def discard(self) -> None:
        """Drop what was written: abort the multipart upload, if one was started."""
        self._part, self._filled = bytearray(), 0
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._name, UploadId=upload_id
            )
        except Exception as exc:
            # Not the error to report (whatever failed the write is); the bucket's
            # lifecycle rule for incomplete uploads removes the parts (README).
            logger.warning("could not abort the upload of %s: %s", self._name, exc)


class S3BlobStore:
    """Blobs as objects under a prefix of one bucket."""

    def __init__(
        self, client: S3Client, location: S3Location, *, part_bytes: int = PART_BYTES
    ) -> None:
        if part_bytes < 5 * MiB:
            raise ValueError("S3 parts are at least 5 MiB")
        self.client = client
        self.location = location
        self.part_bytes = part_bytes

    def name(self, key: str) -> str:
        """The object key of a blob key (under the store's prefix)."""
        return self.location.prefix + checked_key(key)

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        upload = _Upload(self.client, self.location.bucket, self.name(key), self.part_bytes)
        try:
            with _unavailable_as_such(f"storing {key}"):
                yield cast(BinaryIO, upload)
                upload.publish()
        except BaseException:
            upload.discard()
            raise

    def open(self, key: str, *, max_bytes: int | None = None) -> BinaryIO:
        name = self.name(key)
        with _unavailable_as_such(f"reading {key}"):
            try:
                response = self.client.get_object(Bucket=self.location.bucket, Key=name)
            except ClientError as exc:
                if _code(exc) in _NOT_FOUND:
                    raise BlobNotFoundError(key) from None
                raise
            body = response["Body"]
            try:
                size = response.get("ContentLength", 0)
                if max_bytes is not None and size > max_bytes:
                    raise BlobTooLargeError(f"{key} has {size} bytes, more than {max_bytes}")
                return _spooled(body, key, max_bytes)
            finally:
                body.close()

    def delete(self, key: str) -> None:
        with _unavailable_as_such(f"deleting {key}"):
            self.client.delete_object(Bucket=self.location.bucket, Key=self.name(key))

    async def check(self) -> None:
        """Readiness: raises unless the bucket answers to these credentials."""

        def probe() -> None:
            with _unavailable_as_such("checking the bucket"):
                self.client.head_bucket(Bucket=self.location.bucket)

        await to_thread.run_sync(probe)


def _spooled(body: Any, key: str, max_bytes: int | None) -> BinaryIO:
    """The body copied into a temporary file (gone when closed), at its start."""
    spool = tempfile.TemporaryFile(prefix="docflow-blob-")  # noqa: SIM115 - returned open
    try:
        copied = 0
        while chunk := body.read(READ_CHUNK_BYTES):
            copied += len(chunk)
            if max_bytes is not None and copied > max_bytes:
                raise BlobTooLargeError(f"{key} has more than {max_bytes} bytes")
            spool.write(chunk)
        spool.flush()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return cast(BinaryIO, spool)
