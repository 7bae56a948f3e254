"""Settings every service shares. Only settings modules read the environment.

Each service subclasses ``ServiceSettings`` with its own fields; values come
from ``DOCFLOW_*`` environment variables, except the Kafka address, which
also answers to the conventional ``KAFKA_BOOTSTRAP_SERVERS``.
"""

import re
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    NonNegativeFloat,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from docflow_shared.auth import TENANT_PATTERN, Authenticator
from docflow_shared.blob_settings import BlobStoreSettings
from docflow_shared.blobstore import BlobStore
from docflow_shared.kafka_security import KafkaSecurity, Mechanism, Protocol


class KafkaClientSettings(BaseSettings):
    """How to reach Kafka securely (``DOCFLOW_KAFKA_*``); plaintext by default.

    Checked at start (``kafka_security.KafkaSecurity``): a combination that
    cannot work is a validation error naming the variables, never plaintext.
    """

    model_config = SettingsConfigDict(env_prefix="DOCFLOW_", extra="ignore", frozen=True)

    kafka_security_protocol: Protocol = "PLAINTEXT"
    kafka_sasl_mechanism: Mechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_check_hostname: bool = True

    @property
    def kafka_security(self) -> KafkaSecurity:
        """The settings above as one checked value (``kafka_security.py``)."""
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
            ssl_check_hostname=self.kafka_ssl_check_hostname,
        )

    @field_validator(
        "kafka_sasl_mechanism",
        "kafka_sasl_username",
        "kafka_sasl_password",
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # A chart or Compose file that renders an unset value as "" means none.
        return None if value == "" else value

    @model_validator(mode="after")
    def _kafka_security_holds(self) -> "KafkaClientSettings":
        self.kafka_security  # noqa: B018 (raises what does not hold)
        return self


class ServiceSettings(KafkaClientSettings, BlobStoreSettings):
    """Configuration common to the four services (Kafka's security above, the
    blob store's in blob_settings.py)."""

    model_config = SettingsConfigDict(env_prefix="DOCFLOW_", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "DOCFLOW_KAFKA_BOOTSTRAP_SERVERS"),
    )
    # Root of the embedded defaults' state (blobs, SQLite, Qdrant local mode).
    data_dir: Path = Path(".docflow")
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    # /metrics on a port of its own (probes.metrics_server), so that a network
    # policy can let Prometheus reach it and nothing else, and the service's
    # own port only its callers. Unset: /metrics on ``port``.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    log_level: str = "INFO"
    # text: one line per record (a terminal); json: one JSON object per line,
    # with the document, correlation and trace ids (containers).
    log_format: Literal["text", "json"] = "text"
    # Delays before each retry of a message whose handling met a transient
    # error (retries.py); as many retries as delays, at most 3. [] disables them.
    retry_delays_s: list[NonNegativeFloat] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0], max_length=3
    )
    # A message whose handling keeps failing for a reason of its own (not an
    # outage, which is waited out) comes back this many times, then it goes to
    # the dead-letter topic so its partition moves on (redeliveries.py).
    max_redeliveries: int = Field(default=5, ge=0, le=1000)
    # On SIGTERM the process exits within this long, even with Kafka not
    # answering (shutdown.py); in-flight messages get most of it to finish.
    # Keep it below Kubernetes' terminationGracePeriodSeconds (30 s by default).
    shutdown_timeout_s: float = Field(default=25.0, ge=5.0)
    # The credential one service presents to another's internal routes (the
    # gateway to the embedder's /internal/search), compared in constant time
    # (auth.py). Unset, those routes refuse every request. make run and the
    # tests generate one; in Kubernetes it comes from the docflow-secrets Secret.
    internal_token: SecretStr | None = Field(default=None, min_length=16)

    @property
    def handler_grace_s(self) -> float:
        """How long in-flight handlers may finish on shutdown before they are abandoned
        (uncommitted): the bound less time to close the clients."""
        return self.shutdown_timeout_s - 5.0

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap_has_port(cls, value: str) -> str:
        # Fail at start rather than on the first publish.
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _empty_port_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _metrics_port_is_its_own(self) -> "ServiceSettings":
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError(
                f"DOCFLOW_METRICS_PORT={self.metrics_port} is DOCFLOW_PORT: give metrics "
                "another port, or leave it unset to serve /metrics on DOCFLOW_PORT"
            )
        return self

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """Where /metrics is served apart from the API (None: on the API's port)."""
        return (self.host, self.metrics_port) if self.metrics_port is not None else None

    @property
    def internal_token_value(self) -> str | None:
        """The internal token in clear, for the one place that sends or checks it."""
        return self.internal_token.get_secret_value() if self.internal_token else None

    @property
    def blob_dir(self) -> Path:
        """Where the local blob store keeps uploaded files and extracted text."""
        return self.data_dir / "blobs"

    def blobs(self) -> BlobStore:
        """The blob store: the local directory, or S3 when ``DOCFLOW_BLOB_URL`` is set."""
        return self.blob_store(self.blob_dir)


class HttpServiceSettings(ServiceSettings):
    """Settings of the services with a public API (gateway, status): who may call."""

    # Off for local use: every request then belongs to ``default_tenant``.
    auth_enabled: bool = False
    # Tenant -> hashes of its API keys, as JSON:
    # DOCFLOW_API_KEYS='{"acme": ["sha256:<hex>"]}' (python -m docflow_shared.auth new)
    api_keys: dict[str, list[str]] = Field(default_factory=dict)
    default_tenant: str = Field(default="default", pattern=TENANT_PATTERN)
    # Per tenant and replica, in the `limits` notation ("100/second",
    # "20/second;1000/hour"): the gateway's uploads and document operations,
    # every request to the status service (ratelimit.py; 429 beyond).
    rate_limit: str = "100/second"
    # Where the rate limit counts (ratelimit.py): unset = each replica's
    # memory; redis://host:6379/0 (or rediss://) = one budget per tenant
    # shared by every replica; an unreachable Redis fails open (logged).
    rate_limit_storage_url: str | None = None
    # The largest request body of a JSON route (guards.py; 413 beyond); an
    # upload's files are limited by the gateway's max_file_bytes instead.
    max_json_bytes: int = Field(default=1024 * 1024, ge=1024)
    # What one connection may cost (server.py): a request header over this
    # size is answered 431, one not complete in this long 408; a body from
    # which nothing arrives for this long has its connection closed.
    max_header_bytes: int = Field(default=64 * 1024, ge=8 * 1024)
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_idle_timeout_s: float = Field(default=30.0, gt=0)
    # Connections and requests at once (uvicorn's limit_concurrency; 503
    # beyond), and how long an idle keep-alive connection stays open.
    max_connections: int = Field(default=1000, ge=1)
    keep_alive_s: int = Field(default=5, ge=1)

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _storage_is_redis(cls, value: str | None) -> str | None:
        schemes = ("redis://", "rediss://", "redis+unix://")
        if value and not value.removeprefix("async+").startswith(schemes):
            raise ValueError(
                f"the rate limit's storage URL must start with one of {', '.join(schemes)}"
            )
        return value or None

    @field_validator("api_keys")
    @classmethod
    def _tenants_are_names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        pattern = re.compile(TENANT_PATTERN)
        for tenant in value:
            if not pattern.match(tenant):
                raise ValueError(f"tenant {tenant!r} must match {TENANT_PATTERN}")
        return value

    def authenticator(self) -> Authenticator:
        return Authenticator(
            enabled=self.auth_enabled, default_tenant=self.default_tenant, keys=self.api_keys
        )
