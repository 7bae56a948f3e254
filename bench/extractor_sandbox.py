"""The extractor's speed against bare pypdf: pages/s on the corpus' PDFs.

Three ways read every page of every corpus PDF that opens: bare pypdf in
this process; the sandbox alone (pages read and cut into chunks by a
confined worker process, one per document); and the
extractor's handler as the service runs it (sandbox, token-aware chunking,
the chunk log, batches handed to a publisher that keeps them; no Kafka).
The three alternate, three rounds each, and medians are compared; the goal
is the extractor at 0.9 of bare pypdf or better. Writes
bench/results/extractor_sandbox.json.

    .venv/bin/python bench/extractor_sandbox.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from harness import CORPUS, stored_pdf, write_report

from docflow_extractor.adapters.sandbox import open_sandboxed
from docflow_extractor.bootstrap import reading_for
from docflow_extractor.domain.documents import open_document
from docflow_extractor.handlers import Reading, extract_document
from docflow_extractor.settings import ExtractorSettings
from docflow_shared.blobstore import LocalBlobStore
from docflow_shared.errors import DocumentError
from docflow_shared.events import DocumentUploaded, Event


def read_all(paths: list[Path], sandboxed: bool) -> tuple[int, float]:
    pages = 0
    started = time.perf_counter()
    for path in paths:
        with path.open("rb") as stream:
            try:
                if sandboxed:
                    # The worker reads and cuts: one list of chunks per page, then the last.
                    cut = open_sandboxed(stream, "application/pdf").pieces()
                    pages += sum(1 for _ in cut) - 1
                else:
                    pages += sum(1 for _ in open_document(stream, "application/pdf").pages())
            except DocumentError:
                pass  # encrypted or damaged: the same for both
    return pages, time.perf_counter() - started


async def _keep(event: Event) -> None:
    pass


def extract_all(uploads: list[DocumentUploaded], blobs: LocalBlobStore, reading: Reading) -> float:
    """Seconds for the extractor's handler to read and chunk every upload."""

    async def run() -> None:
        for event in uploads:
            # An encrypted or damaged file fails its document, as in the service.
            with contextlib.suppress(DocumentError):
                await extract_document(event, blobs=blobs, publish=_keep, reading=reading)

    started = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    paths = sorted((CORPUS / "pdf").glob("*.pdf"))
    with tempfile.TemporaryDirectory(prefix="docflow-bench-") as tmp:
        blobs = LocalBlobStore(Path(tmp) / "blobs")
        uploads = [stored_pdf(blobs, path, n) for n, path in enumerate(paths)]
        reading = reading_for(ExtractorSettings(data_dir=Path(tmp)))
        read_all(paths[:3], sandboxed=True)  # start the forkserver once, outside the timing
        bare: list[float] = []
        sandbox: list[float] = []
        extractor: list[float] = []
        pages = 0
        for _ in range(rounds):
            pages, seconds = read_all(paths, sandboxed=False)
            bare.append(pages / seconds)
            pages, seconds = read_all(paths, sandboxed=True)
            sandbox.append(pages / seconds)
            extractor.append(pages / extract_all(uploads, blobs, reading))
    report = {
        "pdfs": len(paths),
        "pages_per_round": pages,
        "bare_pypdf_pages_per_s": round(statistics.median(bare), 1),
        "sandbox_only_pages_per_s": round(statistics.median(sandbox), 1),
        "extractor_pages_per_s": round(statistics.median(extractor), 1),
        "sandbox_only_ratio": round(statistics.median(sandbox) / statistics.median(bare), 3),
        "ratio": round(statistics.median(extractor) / statistics.median(bare), 3),
        "goal_ratio": 0.9,
        "rounds": rounds,
    }
    write_report("extractor_sandbox", report)


if __name__ == "__main__":
    main()
