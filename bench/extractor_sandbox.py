"""The parser sandbox's cost: pages/s reading the shared corpus' PDFs in the
sandbox (a worker process per document) against bare pypdf in-process.

Both read every page's text of every corpus PDF that opens; the two ways
alternate, three rounds each, and the medians are compared. Writes
bench/results/extractor_sandbox.json.

    .venv/bin/python bench/extractor_sandbox.py
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from harness import CORPUS, write_report

from docflow_extractor.adapters.sandbox import open_sandboxed
from docflow_extractor.domain.documents import open_document
from docflow_shared.errors import DocumentError

ROUNDS = 3


def read_all(paths: list[Path], sandboxed: bool) -> tuple[int, float]:
    pages = 0
    started = time.perf_counter()
    for path in paths:
        with path.open("rb") as stream:
            try:
                document = (
                    open_sandboxed(stream, "application/pdf")
                    if sandboxed
                    else open_document(stream, "application/pdf")
                )
                pages += sum(1 for _ in document.pages())
            except DocumentError:
                pass  # encrypted or damaged: the same for both
    return pages, time.perf_counter() - started


def main() -> None:
    paths = sorted((CORPUS / "pdf").glob("*.pdf"))
    read_all(paths[:3], sandboxed=True)  # start the forkserver once, outside the timing
    bare: list[float] = []
    sandbox: list[float] = []
    pages = 0
    for _ in range(ROUNDS):
        pages, seconds = read_all(paths, sandboxed=False)
        bare.append(pages / seconds)
        pages, seconds = read_all(paths, sandboxed=True)
        sandbox.append(pages / seconds)
    report = {
        "pdfs": len(paths),
        "pages_per_round": pages,
        "bare_pypdf_pages_per_s": round(statistics.median(bare), 1),
        "sandboxed_pages_per_s": round(statistics.median(sandbox), 1),
        "ratio": round(statistics.median(sandbox) / statistics.median(bare), 3),
        "goal_ratio": 0.9,
        "rounds": ROUNDS,
    }
    write_report("extractor_sandbox", report)


if __name__ == "__main__":
    main()
