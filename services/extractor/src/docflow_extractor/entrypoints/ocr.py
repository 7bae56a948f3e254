"""The OCR consumer's subscriber (``python -m docflow_extractor ocr``): ranges of a
scan's pages, read by OCR (ocr_stage.py)."""

from __future__ import annotations

from faststream.kafka import KafkaRouter
from prometheus_client import CollectorRegistry, Counter

from docflow_extractor.ocr_stage import RangeOpener, read_range
from docflow_shared import topics
from docflow_shared.blobstore import BlobStore
from docflow_shared.cancellations import Cancellations
from docflow_shared.events import OcrRangeRequested
from docflow_shared.messaging import Publish, subscriber
from docflow_shared.metrics import StageMetrics

# Its own group, so it scales on its own lag (KEDA); the extractor's user's prefix.
GROUP_ID = "docflow-extractor-ocr"


class OcrMetrics:
    """What this OCR consumer read: ranges answered and pages read by OCR."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.ranges = Counter(
            "docflow_ocr_ranges_total", "OCR ranges read and answered", registry=registry
        )
        self.pages = Counter(
            "docflow_ocr_pages_total", "Pages read by OCR (in answered ranges)", registry=registry
        )


def register_ocr(
    router: KafkaRouter,
    *,
    blobs: BlobStore,
    publish: Publish,
    open_range: RangeOpener,
    cancellations: Cancellations,
    stages: StageMetrics,
    metrics: OcrMetrics,
    max_file_bytes: int | None = None,
) -> None:
    """Subscribe the OCR consumer to the OCR ranges the extractor requests."""

    @subscriber(router, topics.OCR_REQUESTED, group_id=GROUP_ID)
    async def on_ocr_range_requested(event: OcrRangeRequested) -> None:
        """Read a range of a scan's pages by OCR and answer with their text."""
        with stages.timed("ocr"):
            pages = await read_range(
                event,
                blobs=blobs,
                publish=publish,
                open_range=open_range,
                cancellations=cancellations,
                max_file_bytes=max_file_bytes,
            )
        if pages is not None:
            metrics.ranges.inc()
            metrics.pages.inc(pages)
