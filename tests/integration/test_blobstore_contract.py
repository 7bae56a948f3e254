"""The blob-store port's contract, on both adapters: the local directory and S3
(a real SeaweedFS server, support/seaweedfs.py). Plus what only S3 can get wrong:
multipart uploads left behind, memory while 100 MiB stream in, the download bound.
"""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from botocore.exceptions import ClientError

from docflow_shared.blob_settings import BlobStoreSettings
from docflow_shared.blobstore import (
    BlobNotFoundError,
    BlobStore,
    BlobStoreUnavailableError,
    BlobTooLargeError,
    LocalBlobStore,
    chunks_key,
    original_key,
)
from docflow_shared.s3blobstore import PART_BYTES, S3BlobStore, S3Location, s3_client
from support.seaweedfs import S3Server

MiB = 1024 * 1024


def _prefix() -> str:
    return f"contract-{uuid4().hex[:12]}"


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    server: S3Server = request.getfixturevalue("s3_server")
    return server.store(_prefix())


@pytest.fixture
def s3(s3_server: S3Server) -> S3BlobStore:
    return s3_server.store(_prefix())


def _objects(store: S3BlobStore) -> dict[str, int]:
    listed = store.client.list_objects_v2(
        Bucket=store.location.bucket, Prefix=store.location.prefix
    )
    return {o["Key"]: o["Size"] for o in listed.get("Contents", [])}


def _unfinished_uploads(store: S3BlobStore) -> list[str]:
    listed = store.client.list_multipart_uploads(
        Bucket=store.location.bucket, Prefix=store.location.prefix
    )
    return [u["Key"] for u in listed.get("Uploads", [])]


def _write(store: BlobStore, key: str, blocks: Iterator[bytes]) -> None:
    with store.writer(key) as sink:
        for block in blocks:
            sink.write(block)


def _blocks(total: int, block: int = MiB) -> Iterator[bytes]:
    data = os.urandom(block)
    sent = 0
    while sent < total:
        piece = data[: min(block, total - sent)]
        sent += len(piece)
        yield piece


# -- the contract, on both stores ------------------------------------------------


@pytest.mark.parametrize("size", [0, 10, PART_BYTES, 2 * PART_BYTES + 12345])
def test_a_written_blob_reads_back_byte_for_byte(store: BlobStore, size: int) -> None:
    key = original_key("acme", uuid4())
    data = os.urandom(size)
    _write(store, key, iter([data[: size // 3], data[size // 3 :]]))
    with store.open(key) as source:
        assert source.fileno() >= 0  # a real file: the parser sandbox gets its descriptor
        assert hashlib.sha256(source.read()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_nothing_is_visible_before_the_block_ends(store: BlobStore) -> None:
    key = original_key("acme", uuid4())
    with store.writer(key) as sink:
        sink.write(os.urandom(PART_BYTES + 1))  # a part is already stored (S3)
        with pytest.raises(BlobNotFoundError):
            store.open(key)
    with store.open(key) as source:
        assert len(source.read()) == PART_BYTES + 1


@pytest.mark.parametrize("size", [10, PART_BYTES + 10])
def test_a_failed_write_leaves_nothing_behind(store: BlobStore, size: int) -> None:
    key = original_key("acme", uuid4())
    with pytest.raises(RuntimeError), store.writer(key) as sink:  # noqa: PT012 - fails mid-write
        sink.write(os.urandom(size))
        raise RuntimeError("client went away")
    with pytest.raises(BlobNotFoundError):
        store.open(key)


def test_a_new_write_replaces_the_blob(store: BlobStore) -> None:
    key = chunks_key("acme", uuid4())
    _write(store, key, iter([b"first attempt\n"]))
    _write(store, key, iter([b"second\n"]))
    with store.open(key) as source:
        assert source.read() == b"second\n"


def test_delete_removes_the_blob_and_tolerates_a_missing_one(store: BlobStore) -> None:
    document = uuid4()
    original, chunks = original_key("acme", document), chunks_key("acme", document)
    _write(store, original, iter([b"%PDF-1.7"]))
    _write(store, chunks, iter([b'{"index": 0}\n']))
    for key in (original, chunks):
        store.delete(key)
        store.delete(key)
        with pytest.raises(BlobNotFoundError):
            store.open(key)


def test_a_read_past_the_bound_is_refused(store: BlobStore) -> None:
    key = original_key("acme", uuid4())
    _write(store, key, iter([b"x" * 1000]))
    with pytest.raises(BlobTooLargeError):
        store.open(key, max_bytes=999)
    with store.open(key, max_bytes=1000) as source:
        assert len(source.read()) == 1000


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/path", "a/../b", "a//b", ".hidden", ""])
def test_keys_cannot_escape_the_store(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        store.open(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        store.delete(key)


async def test_the_readiness_check_passes(store: BlobStore) -> None:
    await store.check()


# -- what only S3 can get wrong ------------------------------------------------------


def test_a_failed_multipart_upload_is_aborted(s3: S3BlobStore) -> None:
    key = original_key("acme", uuid4())
    with pytest.raises(RuntimeError), s3.writer(key) as sink:  # noqa: PT012 - fails mid-write
        for block in _blocks(2 * PART_BYTES + MiB):
            sink.write(block)
        assert _unfinished_uploads(s3) == [s3.name(key)]  # the parts are on the server
        raise RuntimeError("client went away")
    assert _unfinished_uploads(s3) == []
    assert _objects(s3) == {}


def test_a_small_blob_is_one_put_and_a_large_one_a_multipart_upload(s3: S3BlobStore) -> None:
    small, large = original_key("acme", uuid4()), original_key("acme", uuid4())
    _write(s3, small, _blocks(PART_BYTES - 1))
    _write(s3, large, _blocks(3 * PART_BYTES))
    assert _objects(s3) == {s3.name(small): PART_BYTES - 1, s3.name(large): 3 * PART_BYTES}
    head = s3.client.head_object(Bucket=s3.location.bucket, Key=s3.name(large))
    assert head["ETag"].strip('"').endswith("-3")  # three parts
    assert _unfinished_uploads(s3) == []


def test_100_mib_stream_in_with_flat_memory(s3: S3BlobStore) -> None:
    """tracemalloc counts every Python allocation (boto3's buffers included)."""
    key = original_key("acme", uuid4())
    size = 100 * MiB
    block = os.urandom(MiB)
    digest = hashlib.sha256()
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        with s3.writer(key) as sink:
            for _ in range(size // MiB):
                digest.update(block)
                sink.write(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    growth = peak - baseline
    print(f"100 MiB upload: Python allocations peaked {growth / MiB:.1f} MiB above the start")
    assert growth < 64 * MiB, f"peak grew by {growth / MiB:.1f} MiB"
    assert _objects(s3) == {s3.name(key): size}
    with s3.open(key) as source:
        read = hashlib.sha256()
        while chunk := source.read(MiB):
            read.update(chunk)
    assert read.hexdigest() == digest.hexdigest()


def test_a_read_past_the_bound_is_refused_on_the_objects_size(s3: S3BlobStore) -> None:
    key = original_key("acme", uuid4())
    _write(s3, key, _blocks(3 * MiB))
    with pytest.raises(BlobTooLargeError, match="3145728 bytes"):
        s3.open(key, max_bytes=MiB)  # refused on the object's size, before the body


def test_the_prefix_keeps_stores_apart(s3_server: S3Server) -> None:
    one, two = s3_server.store(_prefix()), s3_server.store(_prefix())
    key = original_key("acme", uuid4())
    _write(one, key, iter([b"mine"]))
    with pytest.raises(BlobNotFoundError):
        two.open(key)


async def test_an_unreachable_store_is_unavailable_not_missing(s3_server: S3Server) -> None:
    from docflow_local.processes import free_port

    client = s3_client(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region="us-east-1",
        access_key_id="nobody",
        secret_access_key="nothing-at-all",
    )
    store = S3BlobStore(client, S3Location("docflow"))
    key = original_key("acme", uuid4())
    with pytest.raises(BlobStoreUnavailableError):
        store.open(key)
    with pytest.raises(BlobStoreUnavailableError), store.writer(key) as sink:
        sink.write(b"x")
    with pytest.raises(BlobStoreUnavailableError):
        await store.check()


async def test_wrong_credentials_fail_the_readiness_check(s3_server: S3Server) -> None:
    client = s3_client(
        endpoint_url=s3_server.endpoint_url,
        region="us-east-1",
        access_key_id=s3_server.access_key_id,
        secret_access_key="not-the-secret",
    )
    with pytest.raises(ClientError) as refused:
        await S3BlobStore(client, S3Location(s3_server.bucket)).check()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_the_settings_choose_the_store(s3_server: S3Server, tmp_path: Path) -> None:
    local = BlobStoreSettings().blob_store(tmp_path)
    assert isinstance(local, LocalBlobStore)
    prefix = _prefix()
    settings = BlobStoreSettings.model_validate(
        {k.removeprefix("DOCFLOW_").lower(): v for k, v in s3_server.env(prefix).items()}
    )
    chosen = settings.blob_store(tmp_path)
    assert isinstance(chosen, S3BlobStore)
    assert chosen.location == S3Location(s3_server.bucket, f"{prefix}/")
    key = original_key("acme", uuid4())
    _write(chosen, key, iter([b"through the settings"]))
    assert _objects(chosen) == {f"{prefix}/{key}": 20}
