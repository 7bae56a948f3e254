"""Status service configuration (``DOCFLOW_*`` environment variables)."""

from typing import Literal

from pydantic import Field

from docflow_shared.settings import HttpServiceSettings


class StatusSettings(HttpServiceSettings):
    """What the status service needs to know."""

    port: int = Field(default=8001, ge=0, le=65535)
    # What this process does: all (the default: project events and serve the
    # API), api (serve the API from the database only), projector (project
    # events, announce statuses and stalls; probes and metrics only). Split,
    # the API scales on requests and the projector on consumer lag, and
    # neither waits for the other's work on its event loop.
    status_role: Literal["all", "api", "projector"] = "all"
    # SQLAlchemy async URL; the default is a SQLite file under data_dir.
    database_url: str | None = None
    # How often a status stream looks for changes (the read model may be
    # written by another replica, so it is read, not waited on).
    stream_poll_s: float = Field(default=0.5, gt=0, le=10)
    # Open status streams per tenant and process (slots.py; 429 beyond): each
    # reads the database every stream_poll_s.
    max_streams_per_tenant: int = Field(default=20, ge=1)
    # A document whose current attempt reports nothing for this long is
    # marked stalled (and announced on the status topic) until work resumes,
    # unless it waits behind others on a queue that moved in that time.
    stall_after_s: float = Field(default=300, gt=0)
    # How often the projector measures the stages' queues on Kafka (committed and
    # end offsets of each stage's consumer group; domain/queues.py), and how long
    # the API keeps the measurement it read before reading it again.
    queue_sample_s: float = Field(default=5, gt=0, le=300)
    # How far back a stage's throughput (records a second, while it had work)
    # is measured for the estimates of completion.
    queue_rate_window_s: float = Field(default=60, gt=0)
    # How often the watchdog looks, and the metrics of documents by status
    # are refreshed.
    watchdog_every_s: float = Field(default=15, gt=0)
    # How long an event of a document whose upload has not been read waits for
    # it (domain/ownership.py) before it is dead-lettered as forged or orphaned
    # (re-drivable from there).
    unowned_event_ttl_s: float = Field(default=3600, gt=0)
    # Origins whose pages may read this API from a browser (CORS): the gateway
    # serves the web page, this service its statuses and stream. make run and
    # the tests set it from the gateway's port.
    cors_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8000", "http://localhost:8000"]
    )

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'status.db'}"
