"""Embedder configuration (``DOCFLOW_*`` environment variables)."""

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, AnyHttpUrl, Field, SecretStr

from docflow_shared.settings import ServiceSettings


class EmbedderSettings(ServiceSettings):
    """What the embedder needs to know."""

    port: int = Field(default=8003, ge=0, le=65535)
    # Qdrant server URL; when unset, the vectors are in an embedded store under
    # ``qdrant_path`` (one process at a time may open it), see qdrant_embedded.
    qdrant_url: AnyHttpUrl | None = None
    # The Qdrant server's API key (its service.api_key), sent with every
    # request; an https:// qdrant_url makes the connection TLS.
    qdrant_api_key: SecretStr | None = None
    qdrant_path: Path | None = None
    # The embedded store when qdrant_url is unset. edge: Qdrant Edge (Qdrant's
    # engine in process, HNSW and payload indexes, no global lock), in
    # qdrant_path/edge; the first start copies a local-mode store found there.
    # local: qdrant-client's local mode (pure Python; searches compare with
    # every point), kept for a way back.
    qdrant_embedded: Literal["edge", "local"] = "edge"
    # Texts per forward pass of the local model.
    model_batch_size: int = Field(default=16, ge=1, le=256)
    # The local model's files (its ONNX export and tokenizer); unset: where
    # `make models` puts them (.cache/models/all-minilm-l6-v2). The image sets it.
    local_model_dir: Path | None = None
    # Threads of the local model's inference engine (OpenVINO). Unset: the
    # cores this process may use (its CPU affinity, capped by a cgroup CPU
    # quota). Replicas sharing cores should split them (2 replicas on 4 cores: 2).
    embedder_threads: int | None = Field(default=None, ge=1, le=256)
    # f32: the same vectors as the numpy reference (cosine >= 0.99999). bf16:
    # OpenVINO computes in bfloat16 where the CPU has it (AVX512-BF16/AMX),
    # faster but vectors differ slightly (see docs/operations.md); f32 where not.
    embedder_precision: Literal["f32", "bf16"] = "f32"
    # Chunk batches (of any documents) one poll may hand to one model call.
    max_batches_per_call: int = Field(default=16, ge=1, le=500)
    # local: the bundled all-MiniLM-L6-v2 on the CPU. openai: OpenAI's API, or
    # any OpenAI-compatible endpoint at openai_base_url.
    embedding_backend: Literal["local", "openai"] = "local"
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DOCFLOW_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_base_url: AnyHttpUrl | None = Field(
        default=None, validation_alias=AliasChoices("DOCFLOW_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    )
    openai_model: str = "text-embedding-3-small"
    # Needed for models not in adapters/openai_embedder.py's table; for
    # text-embedding-3-* it asks the API for shorter vectors.
    openai_dimensions: int | None = Field(default=None, ge=1)
    # The openai client retries 408/409/429/5xx, timeouts and dropped
    # connections this often, with exponential backoff and Retry-After.
    openai_max_retries: int = Field(default=6, ge=0)
    openai_timeout_s: float = Field(default=60.0, gt=0)
    # Limits of one embeddings request (OpenAI's).
    openai_max_inputs: int = Field(default=2048, ge=1)
    openai_max_request_tokens: int = Field(default=300_000, ge=1)
    # Which chunks keyword search counts a term's rarity (IDF) over. collection:
    # every tenant's (Qdrant's default; any version, fast in local mode), so
    # other tenants' chunks shift a tenant's keyword scores. tenant: the
    # tenant's own (a Qdrant server 1.19 or later; local mode counts them on
    # every query, slower as the collection grows).
    keyword_idf: Literal["collection", "tenant"] = "collection"
    # Reranking of search results (off unless a URL is set): the whole URL of a
    # /rerank endpoint, its request shape (tei: Text Embeddings Inference;
    # cohere: Cohere/Jina/vLLM-style {"model","query","documents"}), the model
    # to name (cohere shape), an API key (sent as a Bearer token), how many of
    # the best results it reorders, and how long it may take (then the results
    # come unreranked, with a note).
    rerank_url: AnyHttpUrl | None = None
    rerank_api: Literal["tei", "cohere"] = "tei"
    rerank_model: str | None = None
    rerank_api_key: SecretStr | None = None
    rerank_candidates: int = Field(default=30, ge=1, le=200)
    rerank_timeout_s: float = Field(default=10.0, gt=0)

    @property
    def qdrant_local_path(self) -> Path:
        return self.qdrant_path or self.data_dir / "qdrant"
