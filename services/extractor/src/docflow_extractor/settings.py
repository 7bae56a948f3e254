"""Extractor configuration (``DOCFLOW_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field, model_validator

from docflow_extractor.adapters.sandbox import SandboxLimits
from docflow_extractor.domain.chunking import (
    BUNDLED_TOKENIZER,
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_CHUNKS,
    ChunkBatcher,
    ChunkingPolicy,
)
from docflow_extractor.domain.containers import ContainerLimits
from docflow_extractor.domain.cutting import DocumentLimits
from docflow_extractor.domain.ocr import OcrPolicy
from docflow_shared.settings import ServiceSettings


class ExtractorSettings(ServiceSettings):
    """What the extractor needs to know."""

    port: int = Field(default=8002, ge=0, le=65535)
    # Chunk size and overlap in tokens of ``chunk_tokenizer``, which should be
    # the embedding model's (see ChunkingPolicy).
    chunk_tokens: int = Field(default=ChunkingPolicy.tokens, ge=8)
    chunk_overlap_tokens: int = Field(default=ChunkingPolicy.overlap, ge=0)
    chunk_tokenizer: str = BUNDLED_TOKENIZER
    batch_max_chunks: int = Field(default=DEFAULT_BATCH_CHUNKS, ge=1)
    # Kafka's default message limit is 1 MiB; stay well below it.
    batch_max_bytes: int = Field(default=DEFAULT_BATCH_BYTES, ge=16 * 1024, le=768 * 1024)
    # How many progress events a long document reports while being read.
    progress_steps: int = Field(default=20, ge=1)
    # What parsing one document may use (the worker process is stopped past it).
    sandbox_memory_mib: int = Field(default=1024, ge=64)
    sandbox_timeout_s: float = Field(default=300.0, gt=0)
    # What one document may become (it fails ``limit_exceeded`` past either).
    max_text_bytes: int = Field(default=DocumentLimits.max_text_bytes, ge=1024)
    max_chunks: int = Field(default=DocumentLimits.max_chunks, ge=1)
    # What a Word, PowerPoint, Excel or EPUB file's ZIP container may hold
    # (domain/containers.py; it fails ``limit_exceeded`` past any).
    max_container_entries: int = Field(default=ContainerLimits.max_entries, ge=1)
    max_unpacked_bytes: int = Field(default=ContainerLimits.max_unpacked_bytes, ge=1024)
    max_sheet_cells: int = Field(default=ContainerLimits.max_cells, ge=1)
    # The gateway's upload limit (the same variable): a stored file larger than
    # this is not read, nor downloaded from S3 (it fails ``limit_exceeded``).
    max_file_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    # OCR of PDF pages without a text layer (domain/ocr.py): Tesseract's language
    # packs joined by '+' ("eng+deu"; each a Debian tesseract-ocr-* package), ''
    # for no OCR; the folder of their models (default: Debian's); the rendering.
    ocr_languages: str = Field(default=OcrPolicy.languages, pattern=r"^([a-z_]+(\+[a-z_]+)*)?$")
    ocr_tessdata: str | None = None
    ocr_dpi: int = Field(default=OcrPolicy.dpi, ge=50, le=1200)
    ocr_max_pixels: int = Field(default=OcrPolicy.max_pixels, ge=1_000_000, le=200_000_000)
    # OCR as a stage of its own (ocr_stage.py): a scan's pages go to the OCR
    # consumer (``python -m docflow_extractor ocr``) in ranges of this many pages,
    # spread over its replicas; 0: the extractor reads them by OCR itself.
    ocr_range_pages: int = Field(default=8, ge=0, le=10_000)

    @property
    def sandbox(self) -> SandboxLimits:
        return SandboxLimits(
            memory_bytes=self.sandbox_memory_mib * 1024 * 1024,
            wall_clock_s=self.sandbox_timeout_s,
        )

    @property
    def ocr(self) -> OcrPolicy:
        return OcrPolicy(self.ocr_languages, self.ocr_dpi, self.ocr_max_pixels)

    @property
    def document_limits(self) -> DocumentLimits:
        return DocumentLimits(
            max_text_bytes=self.max_text_bytes,
            max_chunks=self.max_chunks,
            container=ContainerLimits(
                max_entries=self.max_container_entries,
                max_unpacked_bytes=self.max_unpacked_bytes,
                max_cells=self.max_sheet_cells,
            ),
        )

    @model_validator(mode="after")
    def _chunking_makes_sense(self) -> ExtractorSettings:
        self.chunking_policy()  # refuses nonsense at start-up, naming the setting
        return self

    def chunking_policy(self) -> ChunkingPolicy:
        return ChunkingPolicy(
            tokens=self.chunk_tokens,
            overlap=self.chunk_overlap_tokens,
            tokenizer=self.chunk_tokenizer,
        )

    def batcher(self) -> ChunkBatcher:
        return ChunkBatcher(max_chunks=self.batch_max_chunks, max_bytes=self.batch_max_bytes)
