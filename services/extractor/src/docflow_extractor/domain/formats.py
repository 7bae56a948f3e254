"""Opening a stored document of any type the gateway accepts, with the reader of its type."""

from __future__ import annotations

from typing import BinaryIO

from docflow_extractor.domain import documents
from docflow_extractor.domain.containers import ContainerLimits
from docflow_extractor.domain.documents import Document
from docflow_extractor.domain.office import (
    DOCX,
    EPUB,
    HTML,
    PPTX,
    XLSX,
    EpubDocument,
    PresentationDocument,
    docx_document,
    html_document,
)
from docflow_extractor.domain.sheets import WorkbookDocument
from docflow_shared.events import ContentType


def open_document(
    stream: BinaryIO,
    content_type: ContentType,
    charset: str | None = None,
    limits: ContainerLimits | None = None,
) -> Document:
    """Open a stored document: PDF and text as they are, the others converted to Markdown."""
    limits = limits or ContainerLimits()
    if content_type == DOCX:
        return docx_document(stream, limits)
    if content_type == PPTX:
        return PresentationDocument(stream, limits)
    if content_type == XLSX:
        return WorkbookDocument(stream, limits)
    if content_type == EPUB:
        return EpubDocument(stream, limits)
    if content_type == HTML:
        return html_document(stream, charset)
    return documents.open_document(stream, content_type, charset)
