"""The stages a document can wait for (``DocumentState.waiting_for``, the queue
position's ``queue_stage``; domain/queues.py)."""

from __future__ import annotations

from enum import StrEnum


class QueueStage(StrEnum):
    """A stage a document can wait for, in the order it gets there: the extractor,
    the OCR consumer (a scan's pages without a text layer), the embedder."""

    EXTRACTING = "extracting"
    OCR = "ocr"
    EMBEDDING = "embedding"
