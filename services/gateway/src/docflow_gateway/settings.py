"""Gateway configuration (``DOCFLOW_*`` environment variables)."""

from pydantic import AnyHttpUrl, Field, model_validator

from docflow_shared.events.envelope import MAX_INT32
from docflow_shared.events.metadata import MAX_ENCODED_BYTES
from docflow_shared.settings import HttpServiceSettings

MiB = 1024 * 1024


class GatewaySettings(HttpServiceSettings):
    """What the upload API needs to know."""

    port: int = Field(default=8000, ge=0, le=65535)
    # Where clients reach the status service; status links are built on it.
    status_public_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8001")
    # Where the gateway itself reaches the status service (document operations
    # check the document's status first); the public URL when not set.
    status_internal_url: AnyHttpUrl | None = None
    # Where the gateway reaches the embedder, which embeds search queries with
    # its model and searches the vectors (an internal port, like /metrics).
    embedder_internal_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8003")
    # SQLAlchemy async URL of the gateway's records (idempotency keys, content
    # index); the default is a SQLite file under data_dir. Replicas share one
    # PostgreSQL database.
    database_url: str | None = None
    # Counted on the bytes as they arrive. At most what DocumentUploaded's
    # size_bytes may hold (and the read model's INTEGER column): a larger file
    # could be stored but never announced.
    max_file_bytes: int = Field(default=100 * MiB, ge=1, le=MAX_INT32)
    max_files_per_request: int = Field(default=100, ge=1)
    # The size of an upload's `metadata` part (a JSON object, as sent), at most
    # what any event may carry.
    max_metadata_bytes: int = Field(default=8 * 1024, ge=2, le=MAX_ENCODED_BYTES)
    # A file whose bytes the tenant already uploaded points at that document
    # (per request: ?dedup=false).
    dedup: bool = True
    # Worker processes serving the API (each with its own Kafka producer).
    workers: int = Field(default=1, ge=1)
    # Tenants that may start operations over every tenant's data (re-embedding);
    # with authentication off, every caller may.
    admin_tenants: list[str] = Field(default_factory=list)
    # How long an upload waits for Kafka's acknowledgement before answering 503.
    publish_timeout_s: float = Field(default=10.0, gt=0)
    # How long GET /v1/deadletters and re-drive wait for the dead-letter index
    # to reach the topic's end (adapters/deadletter_indexer.py); then they
    # answer from the index as it is.
    deadletter_index_wait_s: float = Field(default=5.0, ge=0, le=60)
    # Webhooks (adapters/egress.py). Outbound requests reach only public
    # addresses; these CIDRs, addresses or host names besides (a receiver on
    # the cluster's network, 127.0.0.1 for make run and the tests).
    webhook_allowed_networks: list[str] = Field(default_factory=list, max_length=1000)
    # One request to an endpoint, all of it (connect, send, answer).
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # At most this much of an endpoint's answer is read.
    webhook_max_response_bytes: int = Field(default=64 * 1024, ge=1024, le=MiB)
    # Endpoints a tenant may register.
    webhook_max_endpoints: int = Field(default=20, ge=1, le=1000)
    # The dispatcher: deliveries in flight at once (requests to endpoints and
    # their rows), over the status records of a poll, documents concurrently.
    webhook_concurrency: int = Field(default=16, ge=1, le=1000)
    # A first attempt (off the status topic) waits this long at most for its
    # answer; a slower endpoint is retried off the retry topics with the
    # whole webhook_timeout_s, so it holds the status topic this long at most.
    webhook_first_attempt_timeout_s: float = Field(default=3.0, gt=0, le=120)
    # How long the dispatcher may reuse a tenant's endpoints (and secrets) as it
    # read them: a deletion or a rotation is in effect within this (0: read them
    # for every poll).
    webhook_endpoint_cache_s: float = Field(default=10.0, ge=0, le=3600)
    # After POST /v1/webhooks/{id}/secret, deliveries are signed with the old
    # secret too for this long (0: the new one only, at once).
    webhook_secret_overlap_s: float = Field(default=24 * 3600.0, ge=0, le=30 * 24 * 3600.0)
    # Delivery rows last attempted longer ago are pruned by the dispatcher
    # (those waiting for a retry or a re-drive stay).
    webhook_delivery_retention_days: float = Field(default=30.0, gt=0, le=3650)

    @model_validator(mode="after")
    def _one_metrics_server(self) -> "GatewaySettings":
        # Each worker process has its own metrics; they cannot share one port.
        if self.metrics_port is not None and self.workers > 1:
            raise ValueError(
                "DOCFLOW_METRICS_PORT needs DOCFLOW_WORKERS=1 (each worker process "
                "has its own metrics): scale with replicas, or leave it unset"
            )
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'gateway.db'}"
