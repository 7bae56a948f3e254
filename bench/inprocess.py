"""docflow's work on one document in this process, with no Kafka: the floor.

The same code the services run, called directly: the extractor's handler
(parsing in its sandbox, chunking, batching) and the embedder's handler (the
local model in the embedder's batch size, writes to Qdrant local mode). The
pipeline-efficiency benchmark compares the running system with this, and the
architectures docflow replaces (bench/baselines/) are built on it, so every
comparison does the same work per document.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from uuid import UUID, uuid4

from harness import CORPUS, cpu_seconds
from qdrant_client import QdrantClient

from docflow_embedder.adapters.embedded import open_embedded
from docflow_embedder.adapters.qdrant import QdrantVectorStore, collection_name
from docflow_embedder.bootstrap import embedder_for
from docflow_embedder.handlers import embed_batches, embed_chunks
from docflow_embedder.settings import EmbedderSettings
from docflow_extractor.bootstrap import reading_for
from docflow_extractor.handlers import extract_document
from docflow_extractor.settings import ExtractorSettings
from docflow_shared.blobstore import LocalBlobStore, original_key
from docflow_shared.errors import DocumentError
from docflow_shared.events import DocumentUploaded, Event, TextExtracted

CONTENT_TYPES = {".pdf": "application/pdf", ".md": "text/markdown", ".txt": "text/plain"}

# The long PDF (117 pages, 362 chunks) has its own benchmark (bench/pipelining.py);
# in a set repeated to hundreds of documents it would be most of the work.
LONG_PDF = "GeoTopo-komprimiert.pdf"


def corpus_documents(copies: int = 1, *, long_pdf: bool = False) -> list[Path]:
    """The corpus' PDFs and Markdown files (not scanned/ nor office/), ``copies`` times over."""
    files = sorted((CORPUS / "pdf").glob("*.pdf")) + sorted((CORPUS / "markdown").glob("*.md"))
    files = [f for f in files if long_pdf or f.name != LONG_PDF]
    return files * copies


def sandbox_as_the_extractor_runs_it() -> None:
    """Fork the parser sandbox's workers as the extractor service does: from a
    forkserver that preloads the sandbox's modules only, not this program's.

    The sandbox preloads ``__main__`` in its forkserver (adapters/sandbox.py), so a
    script's imports are not run again in every worker. The extractor runs as
    ``python -m docflow_extractor``, a ``__main__`` that multiprocessing never
    imports again; a benchmark script is imported, and with it the embedder, its
    model runtime and Qdrant. Every worker forked from that costs about 1.5 CPU-s
    more (measured: 3 CPU-s every second document), which made the floor spend
    2.29 CPU-s a document against the system's 0.53. Named as a module's
    ``__main__``, the script is not imported by the forkserver nor by its workers
    (the workers run the sandbox's functions, never the script's).
    """
    main = sys.modules["__main__"]
    if getattr(main, "__spec__", None) is None:
        main.__spec__ = ModuleSpec("__main__", None)


@dataclass(frozen=True)
class Processed:
    """What became of one document."""

    pages: int
    chunks: int
    # None when it was processed; else why not (an encrypted or damaged PDF).
    failed: str | None = None


class InProcess:
    """Extraction, chunking, embedding and Qdrant writes of one document at a time."""

    def __init__(self, home: Path, *, qdrant_url: str | None = None) -> None:
        """State under ``home``; vectors in the embedded store there (Qdrant Edge, as the
        embedder's default), or in the server at ``qdrant_url``; with the payload
        indexes the embedder makes on both."""
        sandbox_as_the_extractor_runs_it()
        self.blobs = LocalBlobStore(home / "blobs")
        # One process: pages without a text layer are OCR'd in its own reading, as
        # the extractor does with the OCR stage off (no OCR consumer to ask).
        self.reading = reading_for(ExtractorSettings(data_dir=home, ocr_range_pages=0))
        settings = EmbedderSettings(data_dir=home)
        self.embedder = embedder_for(settings)  # the service's own model and engine
        dimension = self.embedder.dimension
        self.vectors = QdrantVectorStore(
            QdrantClient(url=qdrant_url) if qdrant_url else open_embedded(home / "qdrant"),
            collection_name(self.embedder.model, dimension),
            dimension,
            index_payload=True,
        )

    def store(self, path: Path, document_id: UUID | None = None) -> DocumentUploaded:
        """``path`` put in the blob store, and the upload event the gateway would send."""
        document_id = document_id or uuid4()
        event = DocumentUploaded(
            document_id=document_id,
            tenant_id="bench",
            correlation_id=str(document_id),
            filename=path.name,
            content_type=CONTENT_TYPES[path.suffix],
            size_bytes=path.stat().st_size,
            sha256="0" * 64,
            blob_key=original_key("bench", document_id),
            charset=None if path.suffix == ".pdf" else "utf-8",
        )
        with self.blobs.writer(event.blob_key) as out:
            out.write(path.read_bytes())
        return event

    async def extract(self, event: DocumentUploaded) -> list[TextExtracted]:
        """The extractor's handler: the document's chunk batches, in order."""
        batches: list[TextExtracted] = []

        async def keep(published: Event) -> None:
            if isinstance(published, TextExtracted):
                batches.append(published)

        await extract_document(event, blobs=self.blobs, publish=keep, reading=self.reading)
        return batches

    async def embed(self, batches: list[TextExtracted]) -> None:
        """The embedder's handler on each batch: vectors written to Qdrant."""

        async def ignore(published: Event) -> None:
            pass

        for batch in batches:
            await embed_chunks(batch, embedder=self.embedder, vectors=self.vectors, publish=ignore)

    async def process(self, path: Path, document_id: UUID | None = None) -> Processed:
        """The whole pipeline for one document, as the services would run it."""
        try:
            batches = await self.extract(self.store(path, document_id))
        except DocumentError as error:  # what the extractor turns into a failed status
            return Processed(pages=0, chunks=0, failed=f"{type(error).__name__}: {error}")
        await self.embed(batches)
        pages = next((b.pages or 0 for b in batches if b.last), 0)
        return Processed(pages=pages, chunks=sum(len(b.chunks) for b in batches))

    async def process_all(self, paths: list[Path], *, batches_per_call: int) -> list[Processed]:
        """Every document in turn, embedded as the embedder service embeds: the chunk
        batches of several documents in one model call, up to ``batches_per_call``
        (the service's ``max_batches_per_call``), so the floor batches as well as the
        system does."""

        async def ignore(published: Event) -> None:
            pass

        outcomes: list[Processed] = []
        pending: list[TextExtracted] = []
        for path in paths:
            try:
                batches = await self.extract(self.store(path))
            except DocumentError as error:
                outcomes.append(Processed(0, 0, failed=f"{type(error).__name__}: {error}"))
                continue
            pages = next((b.pages or 0 for b in batches if b.last), 0)
            outcomes.append(Processed(pages=pages, chunks=sum(len(b.chunks) for b in batches)))
            pending += batches
            while len(pending) >= batches_per_call:
                call, pending = pending[:batches_per_call], pending[batches_per_call:]
                await embed_batches(
                    call, embedder=self.embedder, vectors=self.vectors, publish=ignore
                )
        if pending:
            await embed_batches(
                pending, embedder=self.embedder, vectors=self.vectors, publish=ignore
            )
        return outcomes

    def cpu(self) -> float:
        """CPU seconds of this process and of its parser sandbox (forkserver and workers)."""
        from multiprocessing import forkserver

        sandbox = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
        return time.process_time() + (cpu_seconds(sandbox) if sandbox else 0.0)
