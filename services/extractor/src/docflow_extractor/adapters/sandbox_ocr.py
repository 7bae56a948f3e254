"""A range of a PDF's pages read by OCR in a sandbox worker (the OCR consumer's reading)."""

from __future__ import annotations

from typing import BinaryIO

from docflow_extractor.adapters.sandbox import SandboxedDocument, SandboxLimits, open_sandboxed
from docflow_extractor.domain.ocr import OcrPolicy


def open_ocr_range(
    stream: BinaryIO,
    first: int,
    last: int,
    *,
    limits: SandboxLimits,
    ocr: OcrPolicy,
    tessdata: str,
) -> SandboxedDocument:
    """Read pages ``first``..``last`` of a PDF that need OCR in a worker of their own,
    under ``limits`` (DOCFLOW_SANDBOX_TIMEOUT_S then bounds a range, not a document);
    iterate ``SandboxedDocument.pages``."""
    return open_sandboxed(
        stream,
        "application/pdf",
        None,
        limits,
        ocr=ocr,
        tessdata=tessdata,
        ocr_range=(first, last),
    )
