"""Settings of the local runner (``make run``)."""

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from docflow_shared.settings import KafkaClientSettings


class LocalSettings(KafkaClientSettings):
    """Where ``make run`` puts things; every value has an embedded default.

    With ``KAFKA_BOOTSTRAP_SERVERS`` the ``DOCFLOW_KAFKA_*`` security settings
    say how to reach that Kafka (the services get the same environment); the
    local broker is plaintext only.
    """

    model_config = SettingsConfigDict(env_prefix="DOCFLOW_", extra="ignore", frozen=True)

    # Given: use that Kafka. Not given: start a local broker from its jars.
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "DOCFLOW_KAFKA_BOOTSTRAP_SERVERS"),
    )
    data_dir: Path = Path(".docflow")
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    gateway_port: int = 8000
    status_port: int = 8001
    extractor_port: int = 8002
    embedder_port: int = 8003
    ocr_port: int = 8004
    webhooks_port: int = 8005
    topic_partitions: int = Field(default=6, ge=1)
    log_level: str = "INFO"
