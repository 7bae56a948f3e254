"""Is a second PDF parser worth it? pypdf alone, PDFium (pypdfium2) alone, and
the extractor's reading (pypdf, then PDFium from the first damaged page) on
the corpus' PDFs and on damaged copies of it.

Every corpus PDF is read as is and in six damaged forms made here (with a
fixed seed): without its ``%%EOF`` marker, with 2 KiB of zeros after it, cut
at 90% and at 50% of its bytes (the cross-reference table and trailer lost,
as in an interrupted download), its ``startxref`` offset pointing nowhere, and
32 bytes overwritten inside it. For each file and
reader: did it open, how many pages gave text, how many characters. The
report counts the files only PDFium could read (what the fallback is for),
those only pypdf could, what the extractor read, and both parsers' speed on
the intact files. Writes bench/results/pdf_fallback.json.

    .venv/bin/python bench/pdf_fallback.py
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pypdfium2
from harness import CORPUS, write_report
from pypdf import PdfReader

from docflow_extractor.domain.documents import open_document
from docflow_shared.errors import DocumentError

Damage = Callable[[bytes], bytes]


def _cut(fraction: float) -> Damage:
    return lambda data: data[: int(len(data) * fraction)]


def _wrong_startxref(data: bytes) -> bytes:
    return re.sub(rb"startxref\s+\d+", b"startxref\n999999999", data)


def _overwritten(data: bytes) -> bytes:
    noise = random.Random(len(data))  # the same damage on every run
    damaged = bytearray(data)
    for _ in range(32):
        damaged[noise.randrange(len(data) // 10, len(data))] = noise.randrange(256)
    return bytes(damaged)


DAMAGES: dict[str, Damage] = {
    "intact": lambda data: data,
    "no_eof_marker": lambda data: data.replace(b"%%EOF", b""),
    "2_KiB_after_eof": lambda data: data + b"\0" * 2048,
    "cut_at_90%": _cut(0.9),
    "cut_at_50%": _cut(0.5),
    "wrong_startxref": _wrong_startxref,
    "32_bytes_overwritten": _overwritten,
}


@dataclass
class Reading:
    opened: bool
    pages_with_text: int = 0
    chars: int = 0
    seconds: float = 0.0
    error: str = ""

    @property
    def has_text(self) -> bool:
        return self.chars > 0

    @classmethod
    def of(cls, texts: list[str], started: float) -> Reading:
        """A file that opened: its pages' texts, read since ``started``."""
        return cls(
            True,
            pages_with_text=sum(1 for t in texts if t.strip()),
            chars=sum(len(t.strip()) for t in texts),
            seconds=time.perf_counter() - started,
        )


def with_pypdf(path: Path) -> Reading:
    """pypdf alone, in this process, a whole document failing on its first bad page."""
    started = time.perf_counter()
    try:
        texts = [page.extract_text() for page in PdfReader(path).pages]
    except Exception as exc:
        return Reading(False, error=type(exc).__name__, seconds=time.perf_counter() - started)
    return Reading.of(texts, started)


def with_extractor(path: Path) -> Reading:
    """The extractor's reading: pypdf then PDFium from a damaged page. Read in this
    process: the service's sandbox cuts the pages into chunks before they leave it,
    and changes nothing in what is read."""
    started = time.perf_counter()
    try:
        with path.open("rb") as stream:
            texts = [page.text for page in open_document(stream, "application/pdf").pages()]
    except DocumentError as exc:
        return Reading(False, error=exc.code.value, seconds=time.perf_counter() - started)
    return Reading.of(texts, started)


def with_pdfium(path: Path) -> Reading:
    """PDFium alone, skipping pages it cannot load."""
    started = time.perf_counter()
    try:
        document = pypdfium2.PdfDocument(str(path))
    except pypdfium2.PdfiumError as exc:
        return Reading(False, error=str(exc)[:60], seconds=time.perf_counter() - started)
    try:
        texts = []
        for index in range(len(document)):
            try:
                page = document[index]
            except pypdfium2.PdfiumError:
                continue  # counted as a page without text: the kindest reading for pdfium
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            page.close()
    finally:
        document.close()
    return Reading.of(texts, started)


def variants(folder: Path) -> Iterator[tuple[str, str, Path]]:
    for source in sorted((CORPUS / "pdf").glob("*.pdf")):
        data = source.read_bytes()
        for damage, make in DAMAGES.items():
            path = folder / f"{damage}-{source.name}"
            path.write_bytes(make(data))
            yield source.name, damage, path


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # damaged files: thousands of warnings
    rows = []
    with tempfile.TemporaryDirectory(prefix="docflow-bench-") as folder:
        for name, damage, path in variants(Path(folder)):
            pypdf, pdfium, ours = with_pypdf(path), with_pdfium(path), with_extractor(path)
            rows.append((name, damage, pypdf, pdfium, ours))

    by_damage = {}
    for damage in DAMAGES:
        these = [(n, o, p, x) for n, d, o, p, x in rows if d == damage]
        by_damage[damage] = {
            "files": len(these),
            "pypdf_text": sum(o.has_text for _, o, _, _ in these),
            "pdfium_text": sum(p.has_text for _, _, p, _ in these),
            "extractor_text": sum(x.has_text for *_, x in these),
            "only_pdfium_text": sorted(n for n, o, p, _ in these if p.has_text and not o.has_text),
            "only_pypdf_text": sorted(n for n, o, p, _ in these if o.has_text and not p.has_text),
        }
    both = [(o, p) for _, d, o, p, _ in rows if d == "intact" and o.has_text and p.has_text]
    report = {
        "pdfs": len({n for n, *_ in rows}),
        "by_damage": by_damage,
        "intact_both_read": {
            "files": len(both),
            "pypdf_chars": sum(o.chars for o, _ in both),
            "pdfium_chars": sum(p.chars for _, p in both),
            "pypdf_seconds": round(sum(o.seconds for o, _ in both), 2),
            "pdfium_seconds": round(sum(p.seconds for _, p in both), 2),
        },
        "only_pdfium_text": sum(len(v["only_pdfium_text"]) for v in by_damage.values()),
        "only_pypdf_text": sum(len(v["only_pypdf_text"]) for v in by_damage.values()),
        "variants": len(rows),
    }
    write_report("pdf_fallback", report)


if __name__ == "__main__":
    main()
