"""Extractor configuration (``DOCFLOW_*`` environment variables)."""

from pydantic import Field

from docflow_extractor.adapters.sandbox import SandboxLimits
from docflow_extractor.domain.chunking import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_CHUNKS,
    ChunkBatcher,
    ChunkingPolicy,
)
from docflow_shared.settings import ServiceSettings


class ExtractorSettings(ServiceSettings):
    """What the extractor needs to know."""

    port: int = Field(default=8002, ge=0, le=65535)
    chunk_size: int = Field(default=ChunkingPolicy.size, ge=16)
    chunk_overlap: int = Field(default=ChunkingPolicy.overlap, ge=0)
    batch_max_chunks: int = Field(default=DEFAULT_BATCH_CHUNKS, ge=1)
    # Kafka's default message limit is 1 MiB; stay well below it.
    batch_max_bytes: int = Field(default=DEFAULT_BATCH_BYTES, ge=16 * 1024, le=768 * 1024)
    # How many progress events a long document reports while being read.
    progress_steps: int = Field(default=20, ge=1)
    # What parsing one document may use (the worker process is stopped past it).
    sandbox_memory_mib: int = Field(default=1024, ge=64)
    sandbox_timeout_s: float = Field(default=300.0, gt=0)

    @property
    def sandbox(self) -> SandboxLimits:
        return SandboxLimits(
            memory_bytes=self.sandbox_memory_mib * 1024 * 1024,
            wall_clock_s=self.sandbox_timeout_s,
        )

    @property
    def chunking(self) -> ChunkingPolicy:
        return ChunkingPolicy(size=self.chunk_size, overlap=self.chunk_overlap)

    def batcher(self) -> ChunkBatcher:
        return ChunkBatcher(max_chunks=self.batch_max_chunks, max_bytes=self.batch_max_bytes)
