"""Embedder configuration (``DOCFLOW_*`` environment variables)."""

from pathlib import Path

from pydantic import AnyHttpUrl, Field

from docflow_shared.settings import ServiceSettings


class EmbedderSettings(ServiceSettings):
    """What the embedder needs to know."""

    port: int = Field(default=8003, ge=0, le=65535)
    # Qdrant server URL; when unset, Qdrant runs in local mode under
    # ``qdrant_path`` (one process at a time may open a local-mode path).
    qdrant_url: AnyHttpUrl | None = None
    qdrant_path: Path | None = None
    # Texts per forward pass of the local model.
    model_batch_size: int = Field(default=16, ge=1, le=256)

    @property
    def qdrant_local_path(self) -> Path:
        return self.qdrant_path or self.data_dir / "qdrant"
