"""Settings every service shares. Only settings modules read the environment.

Each service subclasses ``ServiceSettings`` with its own fields; values come
from ``DOCFLOW_*`` environment variables, except the Kafka address, which
also answers to the conventional ``KAFKA_BOOTSTRAP_SERVERS``.
"""

from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Configuration common to the four services."""

    model_config = SettingsConfigDict(env_prefix="DOCFLOW_", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "DOCFLOW_KAFKA_BOOTSTRAP_SERVERS"),
    )
    # Root of the embedded defaults' state (blobs, SQLite, Qdrant local mode).
    data_dir: Path = Path(".docflow")
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    log_level: str = "INFO"

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap_has_port(cls, value: str) -> str:
        # Fail at start rather than on the first publish.
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    @property
    def blob_dir(self) -> Path:
        """Where the local blob store keeps uploaded files and extracted text."""
        return self.data_dir / "blobs"
