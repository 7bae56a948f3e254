from pathlib import Path

import pytest
from pydantic import ValidationError

from docflow_shared.blob_settings import BlobStoreSettings
from docflow_shared.blobstore import LocalBlobStore
from docflow_shared.s3blobstore import S3BlobStore, S3Location


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("s3://docs", S3Location("docs", "")),
        ("s3://docs/", S3Location("docs", "")),
        ("s3://docs/docflow", S3Location("docs", "docflow/")),
        ("s3://docs/prod/docflow/", S3Location("docs", "prod/docflow/")),
    ],
)
def test_an_s3_url_names_the_bucket_and_the_prefix(url: str, location: S3Location) -> None:
    assert S3Location.parse(url) == location


@pytest.mark.parametrize(
    "url", ["docs", "s3://", "https://docs/x", "file:///tmp/blobs", "s3://docs/../x", "s3://b/a//b"]
)
def test_anything_else_is_refused_at_start(url: str) -> None:
    with pytest.raises(ValidationError, match="blob_url"):
        BlobStoreSettings(blob_url=url)


def test_unset_is_the_local_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCFLOW_BLOB_URL", raising=False)
    store = BlobStoreSettings().blob_store(tmp_path / "blobs")
    assert isinstance(store, LocalBlobStore)
    assert store.root == tmp_path / "blobs"


def test_an_s3_url_is_the_s3_store_and_the_secret_stays_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCFLOW_BLOB_URL", "s3://docs/docflow")
    monkeypatch.setenv("DOCFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("DOCFLOW_S3_REGION", "eu-west-1")
    monkeypatch.setenv("DOCFLOW_S3_ACCESS_KEY_ID", "docflow")
    monkeypatch.setenv("DOCFLOW_S3_SECRET_ACCESS_KEY", "very-secret-value")
    settings = BlobStoreSettings()
    assert "very-secret-value" not in repr(settings)
    store = settings.blob_store(tmp_path)
    assert isinstance(store, S3BlobStore)
    assert store.location == S3Location("docs", "docflow/")
    assert store.client.meta.region_name == "eu-west-1"
    assert store.client.meta.endpoint_url == "http://127.0.0.1:1"


def test_keys_come_in_pairs() -> None:
    with pytest.raises(ValidationError, match="both DOCFLOW_S3_ACCESS_KEY_ID"):
        BlobStoreSettings(blob_url="s3://docs", s3_access_key_id="docflow")
