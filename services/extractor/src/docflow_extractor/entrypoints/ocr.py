"""The OCR consumer's subscriber (``python -m docflow_extractor ocr``): ranges of a
scan's pages, read by OCR (ocr_stage.py)."""

from __future__ import annotations

from faststream.kafka import KafkaRouter
from prometheus_client import CollectorRegistry, Counter

from docflow_extractor.ocr_stage import RangeOpener, read_range
from docflow_shared import decoding, topics
from docflow_shared.blobstore import BlobStore
from docflow_shared.cancellations import Cancellations
from docflow_shared.errors import UntrustedEvent
from docflow_shared.events import OcrRangeRead, OcrRangeRequested, Stage
from docflow_shared.failures import FailDocumentOnError
from docflow_shared.messaging import Publish, subscriber
from docflow_shared.metrics import RejectedEvents, StageMetrics
from docflow_shared.retries import Origin, Parking, register_retries

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


class FailRangeOnError(FailDocumentOnError):
    """``FailDocumentOnError`` for OCR ranges: a range that failed its document for
    good is also answered as failed (``OcrRangeRead.failed``), so the extractor
    drops the attempt's other answers instead of waiting for this one forever."""

    def __init__(
        self,
        publish: Publish,
        *,
        stage: Stage,
        service: str,
        parking: Parking | None = None,
        rejected: RejectedEvents | None = None,
    ) -> None:
        super().__init__(publish, stage=stage, service=service, parking=parking, rejected=rejected)
        self._answer = publish

    async def fail_body(self, body: bytes, exc: Exception, origin: Origin | None = None) -> bool:
        ended = await super().fail_body(body, exc, origin)
        if ended and not isinstance(exc, UntrustedEvent):
            try:
                request = decoding.read(OcrRangeRequested.model_validate_json, body)
            except ValueError:
                return ended  # not a range: nothing was asked for
            await self._answer(
                OcrRangeRead.caused_by(
                    request,
                    range_index=request.range_index,
                    range_count=request.range_count,
                    pages=[],
                    failed=True,
                )
            )
        return ended


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
    parking: Parking | None = None,
) -> None:
    """Subscribe the OCR consumer to the OCR ranges the extractor requests (and, with
    ``parking``, to its retry topics: ranges whose reading met a transient error)."""

    async def read(event: OcrRangeRequested) -> None:
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

    @subscriber(router, topics.OCR_REQUESTED, group_id=GROUP_ID)
    async def on_ocr_range_requested(event: OcrRangeRequested) -> None:
        """Read a range of a scan's pages by OCR and answer with their text."""
        await read(event)

    if parking is not None:

        async def parked(body: bytes) -> None:
            await read(OcrRangeRequested.model_validate_json(body))

        register_retries(
            router, parking=parking, group_id=GROUP_ID, handlers={topics.OCR_REQUESTED: parked}
        )
