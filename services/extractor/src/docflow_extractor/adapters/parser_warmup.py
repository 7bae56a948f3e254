"""Imported by the sandbox's forkserver only: reads and cuts one small PDF once,
so that what pypdf loads lazily on first use (text extraction, font tables)
and the default chunking's tokenizer are loaded before any worker is forked,
instead of again in every worker (each worker reads one document only).

Every text codec is imported here too: a worker runs as ``nobody`` when the
service runs as root, and may then be unable to read Python's own files,
so what a parser would import lazily (pypdf and PDFium decode text with
codecs looked up by name) must already be loaded."""

from __future__ import annotations

import contextlib
import encodings
import importlib
import io
import pkgutil
import zlib

from docflow_extractor.adapters.sandbox_worker import chunking_for
from docflow_extractor.domain.chunking import ChunkingPolicy
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


def _import_codecs() -> None:
    for module in pkgutil.iter_modules(encodings.__path__):
        # Some are for Windows only (mbcs, oem) and refuse to load elsewhere.
        with contextlib.suppress(ImportError):
            importlib.import_module(f"encodings.{module.name}")


def _warm_up() -> None:
    _import_codecs()
    chunker = chunking_for(ChunkingPolicy()).for_document("application/pdf")
    for page in open_document(io.BytesIO(_one_page_pdf()), "application/pdf").pages():
        assert "warm up" in page.text
        chunker.add(page)
    assert chunker.finish()


_warm_up()
