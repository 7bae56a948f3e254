"""Imported by the sandbox's forkserver only: reads one small PDF once, so that
what pypdf loads lazily on first use (text extraction, font tables) is loaded
before any worker is forked, instead of again in every worker."""

from __future__ import annotations

import io
import zlib

from docflow_extractor.domain.documents import open_document


def _one_page_pdf() -> bytes:
    content = zlib.compress(b"BT /F1 12 Tf 72 720 Td (warm up) Tj ET")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content)
        + content
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _warm_up() -> None:
    for page in open_document(io.BytesIO(_one_page_pdf()), "application/pdf").pages():
        assert "warm up" in page.text


_warm_up()
