"""The baselines' configuration (``BASELINE_*`` environment variables)."""

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class BaselineSettings(BaseSettings):
    """Where the baselines keep their state, and where Redis is."""

    model_config = SettingsConfigDict(env_prefix="BASELINE_")

    # Broker and result backend of the Celery baseline.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Uploaded files, blobs and Qdrant local-mode paths.
    data_dir: Path = Path(".baseline")

    @property
    def uploads(self) -> Path:
        """Where the web apps store uploaded files (a shared volume or S3 in production)."""
        return self.data_dir / "uploads"
