"""The gateway's upload path (the app, in process) on the S3 store of a real
SeaweedFS: what it keeps, dedups and leaves behind when an upload fails."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from docflow_gateway.entrypoints.multipart import FileTooLargeError, UploadLimits, receive_files
from docflow_local.processes import free_port
from docflow_shared.s3blobstore import PART_BYTES, S3BlobStore, S3Location, s3_client
from support.gateway import PDF, ClientFor, Recorder, gateway_clients
from support.seaweedfs import S3Server

MiB = 1024 * 1024
BOUNDARY = "s3-test-boundary"


@pytest.fixture
def client_for(tmp_path: Path) -> Iterator[ClientFor]:
    yield from gateway_clients(tmp_path)


@pytest.fixture
def s3(s3_server: S3Server) -> S3BlobStore:
    return s3_server.store(f"gateway-{uuid4().hex[:12]}")


def _kept(store: S3BlobStore) -> dict[str, int]:
    """Objects and unfinished multipart uploads under the store's prefix."""
    bucket, prefix = store.location.bucket, store.location.prefix
    objects = store.client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    uploads = store.client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    kept = {o["Key"].removeprefix(prefix): o["Size"] for o in objects}
    kept |= {f"unfinished {u['Key']}": -1 for u in uploads.get("Uploads", [])}
    return kept


def test_an_upload_is_stored_with_its_sha256_and_the_same_bytes_are_a_duplicate(
    tmp_path: Path, client_for: ClientFor, s3: S3BlobStore
) -> None:
    client = client_for(tmp_path, Recorder(), blobs=s3)
    data = PDF + os.urandom(PART_BYTES + MiB)  # two parts
    first = client.post("/v1/documents", files={"file": ("big.pdf", data)})
    assert first.status_code == 202, first.text
    [doc] = first.json()["documents"]
    assert doc["sha256"] == hashlib.sha256(data).hexdigest()
    key = f"default/{doc['id']}/original"
    assert _kept(s3) == {key: len(data)}
    with s3.open(key) as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == doc["sha256"]

    again = client.post("/v1/documents", files={"file": ("copy.pdf", data)})
    [dup] = again.json()["documents"]
    assert (dup["status"], dup["id"]) == ("duplicate", doc["id"])
    assert _kept(s3) == {key: len(data)}  # the second copy was removed


async def _streamed(files: dict[str, int]) -> AsyncIterator[bytes]:
    """A multipart body of PDFs of the given sizes, arriving 1 MiB at a time."""
    block = os.urandom(MiB)
    for name, size in files.items():
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{name}"\r\nContent-Type: application/pdf\r\n\r\n'
        ).encode() + PDF
        left = size - len(PDF)
        while left > 0:
            yield block[: min(MiB, left)]
            left -= MiB
        yield b"\r\n"
    yield f"--{BOUNDARY}--\r\n".encode()


async def test_a_file_over_the_limit_leaves_no_object_and_no_unfinished_upload(
    s3: S3BlobStore,
) -> None:
    """The gateway's receiving code as a request streams in (the HTTP test client
    would hand it the body at once)."""
    limit = 2 * PART_BYTES  # two parts are on the server when the limit is crossed
    with pytest.raises(FileTooLargeError):
        await receive_files(
            _streamed({"small.pdf": 100, "huge.pdf": limit + 1}),
            f"multipart/form-data; boundary={BOUNDARY}",
            tenant_id="acme",
            blobs=s3,
            limits=UploadLimits(max_file_bytes=limit, max_files=10),
        )
    assert _kept(s3) == {}  # the upload aborted, the request's first file removed


def test_when_kafka_does_not_acknowledge_nothing_is_kept(
    tmp_path: Path, client_for: ClientFor, s3: S3BlobStore
) -> None:
    client = client_for(tmp_path, Recorder(fail=True), blobs=s3)
    response = client.post("/v1/documents", files={"file": ("report.pdf", PDF)})
    assert response.status_code == 503
    assert _kept(s3) == {}


def test_an_unreachable_store_is_a_503_that_does_not_name_it(
    tmp_path: Path, client_for: ClientFor
) -> None:
    port = free_port()
    client = s3_client(
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        access_key_id="nobody",
        secret_access_key="nothing-at-all",
    )
    down = S3BlobStore(client, S3Location("docflow"))
    publish = Recorder()
    response = client_for(tmp_path, publish, blobs=down).post(
        "/v1/documents", files={"file": ("report.pdf", PDF)}
    )
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    body = response.json()
    assert body["code"] == "unavailable"
    assert "blob store" in body["detail"]
    assert str(port) not in response.text
    assert publish.events == []
