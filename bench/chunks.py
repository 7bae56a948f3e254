"""How full the chunks are, whether any cuts a word, and what cutting costs: before and after.

Every corpus file that has text without OCR (tests/corpus: PDFs, Markdown,
Word, PowerPoint, Excel, EPUB, HTML) is read once; its pages are then cut by
two chunkers in the same run:

- **before**: ``domain/chunking.py`` as it was at ``--before`` (default
  7a9b11a, before issue 24's chunk rules), loaded from git;
- **after**: the chunker of this tree (``packing.py``'s rules).

For each: tokens per chunk (the local model's tokenizer, the budget's unit)
over every chunk and over the chunks of *short documents* (a whole text
under 25 budgets, so every file but the long PDFs), as median, quartiles
and deciles; how many chunk boundaries fall inside a word (no white space on
either side); and how many chunks carry a title and a heading path. Speed:
the seconds to cut all the pages (reading excluded), and GeoTopo alone,
medians of ``--rounds`` alternating rounds. Writes bench/results/chunks.json.

    .venv/bin/python bench/chunks.py
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import CORPUS, ROOT, write_report

from docflow_extractor.domain.chunking import Chunking, _bundled_tokenizer
from docflow_extractor.domain.documents import Page
from docflow_extractor.domain.formats import open_document
from docflow_extractor.domain.office import DOCX, EPUB, HTML, PPTX, XLSX
from docflow_shared.errors import DocumentError

TYPES = {
    ".pdf": "application/pdf",
    ".md": "text/markdown",
    ".docx": DOCX,
    ".pptx": PPTX,
    ".xlsx": XLSX,
    ".epub": EPUB,
    ".html": HTML,
}
CHUNKING = "services/extractor/src/docflow_extractor/domain/chunking.py"
LONG_PDF = "GeoTopo-komprimiert.pdf"
SHORT_BUDGETS = 25


def old_chunking(ref: str) -> Any:
    """The chunking module as it was at ``ref`` (it imports only what is still there)."""
    source = subprocess.run(
        ["git", "show", f"{ref}:{CHUNKING}"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "chunking_before.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("chunking_before", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["chunking_before"] = module
    spec.loader.exec_module(module)
    return module


def documents() -> dict[str, tuple[str, list[Page]]]:
    """Each corpus file with text: its type and pages."""
    found: dict[str, tuple[str, list[Page]]] = {}
    for path in sorted(CORPUS.rglob("*")):
        kind = TYPES.get(path.suffix)
        if kind is None or path.parent.name == "scanned":
            continue
        try:
            with path.open("rb") as stream:
                pages = list(open_document(stream, kind).pages())
        except DocumentError:
            continue  # encrypted or damaged: no text to cut
        if any(page.text.strip() for page in pages):
            found[path.name] = (kind, pages)
    return found


def cut(chunking: Any, kind: str, pages: list[Page]) -> list[Any]:
    chunker = chunking.for_document(kind)
    pieces = [piece for page in pages for piece in chunker.add(page)]
    return pieces + chunker.finish()


def _inside_word(text: str, at: int) -> bool:
    return 0 < at < len(text) and not text[at - 1].isspace() and not text[at].isspace()


def words_cut(pages: list[Page], pieces: list[Any]) -> int:
    """Chunk boundaries with no white space on either side (offsets in their pages)."""
    text = {page.number: page.text for page in pages}
    return sum(
        _inside_word(text[p.page], p.char_start) + _inside_word(text[p.page_end], p.char_end)
        for p in pieces
    )


def spread(values: list[int]) -> dict[str, float]:
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    quartiles = statistics.quantiles(values, n=4, method="inclusive")
    return {
        "chunks": len(values),
        "median": statistics.median(values),
        "mean": round(statistics.fmean(values), 1),
        "p10": round(deciles[0], 1),
        "p25": round(quartiles[0], 1),
        "p75": round(quartiles[2], 1),
        "p90": round(deciles[8], 1),
        "min": min(values),
        "max": max(values),
    }


def seconds(chunking: Any, docs: dict[str, tuple[str, list[Page]]]) -> float:
    started = time.perf_counter()
    for kind, pages in docs.values():
        cut(chunking, kind, pages)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="7a9b11a", help="git commit of the old chunker")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tokenizer = _bundled_tokenizer()
    docs = documents()
    chunkings = {"before": old_chunking(args.before).Chunking(), "after": Chunking()}
    budget = chunkings["after"].policy.tokens

    def tokens(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    short = {
        name
        for name, (_, pages) in docs.items()
        if tokens("\n".join(p.text for p in pages)) < SHORT_BUDGETS * budget
    }
    results: dict[str, Any] = {}
    for name, chunking in chunkings.items():
        all_tokens: list[int] = []
        short_tokens: list[int] = []
        cut_words = titled = with_headings = 0
        per_document: dict[str, float] = {}
        for filename, (kind, pages) in docs.items():
            pieces = cut(chunking, kind, pages)
            counts = [tokens(p.text) for p in pieces]
            all_tokens += counts
            if filename in short:
                short_tokens += counts
            per_document[filename] = statistics.median(counts) if counts else 0
            cut_words += words_cut(pages, pieces)
            titled += sum(1 for p in pieces if getattr(p, "title", None))
            with_headings += sum(1 for p in pieces if getattr(p, "headings", ()))
        results[name] = {
            "all": spread(all_tokens),
            "short_documents": spread(short_tokens),
            "median_per_document": per_document,
            "boundaries_inside_a_word": cut_words,
            "chunks_with_a_title_from_the_text": titled,
            "chunks_with_a_heading_path": with_headings,
        }
    # Speed: cutting only (pages read above), alternating rounds.
    timings: dict[str, list[float]] = {name: [] for name in chunkings}
    long_only = {LONG_PDF: docs[LONG_PDF]} if LONG_PDF in docs else {}
    long_timings: dict[str, list[float]] = {name: [] for name in chunkings}
    for _ in range(args.rounds):
        for name, chunking in chunkings.items():
            timings[name].append(seconds(chunking, docs))
            if long_only:
                long_timings[name].append(seconds(chunking, long_only))
    for name in chunkings:
        results[name]["seconds_all"] = round(statistics.median(timings[name]), 3)
        if long_only:
            results[name]["seconds_long_pdf"] = round(statistics.median(long_timings[name]), 3)
    write_report(
        "chunks",
        {
            "budget_tokens": budget,
            "overlap_tokens": chunkings["after"].policy.overlap,
            "before_commit": args.before,
            "documents": len(docs),
            "short_documents": len(short),
            "short_rule": f"whole text is under {SHORT_BUDGETS * budget} tokens",
            "rounds": args.rounds,
            "chunkings": results,
            "speed_ratio_after_vs_before": round(
                results["before"]["seconds_all"] / results["after"]["seconds_all"], 3
            ),
        },
    )


if __name__ == "__main__":
    main()
