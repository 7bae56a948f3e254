from uuid import uuid4

import pytest

from docflow_shared.blobstore import BlobNotFoundError, LocalBlobStore, original_key


def test_written_blob_is_readable_under_its_key(tmp_path) -> None:
    store = LocalBlobStore(tmp_path)
    key = original_key("acme", uuid4())
    with store.writer(key) as sink:
        sink.write(b"%PDF-1.7 ...")
    with store.open(key) as source:
        assert source.read() == b"%PDF-1.7 ..."


def test_a_failed_write_leaves_nothing_behind(tmp_path) -> None:
    store = LocalBlobStore(tmp_path)
    key = original_key("acme", uuid4())
    with pytest.raises(RuntimeError), store.writer(key) as sink:  # noqa: PT012 - fails mid-write
        sink.write(b"half")
        raise RuntimeError("client went away")
    with pytest.raises(BlobNotFoundError):
        store.open(key)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/path", "a/../b", "a//b", ".hidden", ""])
def test_keys_cannot_escape_the_store(tmp_path, key) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(ValueError, match="invalid blob key"):
        store.open(key)


def test_delete_removes_the_blob_and_tolerates_a_missing_one(tmp_path) -> None:
    store = LocalBlobStore(tmp_path)
    key = original_key("acme", uuid4())
    with store.writer(key) as sink:
        sink.write(b"x")
    store.delete(key)
    store.delete(key)
    with pytest.raises(BlobNotFoundError):
        store.open(key)


async def test_the_readiness_check_fails_when_the_store_is_gone(tmp_path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    await store.check()
    (tmp_path / "blobs").rmdir()
    with pytest.raises(FileNotFoundError):
        await store.check()
