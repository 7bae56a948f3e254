"""Where the gateway and the extractor keep blobs: a local directory or S3.

``DOCFLOW_BLOB_URL`` unset keeps them under ``DOCFLOW_DATA_DIR`` (the embedded
default, one machine); ``s3://bucket/prefix`` puts them in an S3-compatible
object store that every replica shares (README, "Object storage").
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from docflow_shared.blobstore import BlobStore, LocalBlobStore


class BlobStoreSettings(BaseSettings):
    """The blob store's settings (``DOCFLOW_BLOB_URL``, ``DOCFLOW_S3_*``)."""

    model_config = SettingsConfigDict(env_prefix="DOCFLOW_", extra="ignore", frozen=True)

    # Unset: the local directory; s3://bucket or s3://bucket/prefix: object storage.
    blob_url: str | None = None
    # An S3-compatible server's address (https://minio.example:9000); unset for AWS.
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    # Both or neither; neither: boto3's own chain (AWS_* variables, IRSA, instance role).
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    # A PEM file of the CA that signed the endpoint's certificate (a private CA).
    s3_ca_bundle: Path | None = None

    @field_validator("blob_url")
    @classmethod
    def _is_an_s3_url(cls, value: str | None) -> str | None:
        if value:
            from docflow_shared.s3blobstore import S3Location

            S3Location.parse(value)  # fails at start, naming what it expected
        return value or None

    @model_validator(mode="after")
    def _keys_come_in_pairs(self) -> BlobStoreSettings:
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError(
                "set both DOCFLOW_S3_ACCESS_KEY_ID and DOCFLOW_S3_SECRET_ACCESS_KEY, or neither"
            )
        return self

    def blob_store(self, local_root: Path) -> BlobStore:
        """The configured store; ``local_root`` is the directory of the local one."""
        if self.blob_url is None:
            return LocalBlobStore(local_root)
        # Imported here: a service on the local store needs no S3 client.
        from docflow_shared.s3blobstore import S3BlobStore, S3Location, s3_client

        client = s3_client(
            endpoint_url=self.s3_endpoint_url,
            region=self.s3_region,
            access_key_id=self.s3_access_key_id,
            secret_access_key=(
                self.s3_secret_access_key.get_secret_value() if self.s3_secret_access_key else None
            ),
            ca_bundle=self.s3_ca_bundle,
        )
        return S3BlobStore(client, S3Location.parse(self.blob_url))
