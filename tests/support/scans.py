"""Multi-page PDFs built from the corpus' scanned pages (and a text page), for the OCR stage."""

from __future__ import annotations

import io
from pathlib import Path

from pypdf import PdfReader, PdfWriter

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
SCANS = (CORPUS / "scanned" / "linn.pdf", CORPUS / "scanned" / "c02-22.pdf")
TEXT_PAGE = CORPUS / "pdf" / "crazyones-pdfa.pdf"


def scan(pages: int, *, text_first: bool = False) -> bytes:
    """A PDF of ``pages`` pages: the corpus' two scans in turn (none with a text
    layer); with ``text_first``, a page with a text layer before them."""
    writer = PdfWriter()
    if text_first:
        writer.add_page(PdfReader(TEXT_PAGE).pages[0])
    for number in range(pages):
        writer.add_page(PdfReader(SCANS[number % 2]).pages[0])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
