"""Wires the extractor: Kafka subscriber and publisher, blob store (local or S3), probes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from docflow_extractor.adapters.ocr_tesseract import find_tessdata, missing_languages
from docflow_extractor.adapters.sandbox import open_sandboxed
from docflow_extractor.adapters.sandbox_ocr import open_ocr_range
from docflow_extractor.domain.chunking import Chunking
from docflow_extractor.entrypoints.consumer import register
from docflow_extractor.entrypoints.ocr import FailRangeOnError, OcrMetrics, register_ocr
from docflow_extractor.handlers import Reading
from docflow_extractor.ocr_stage import RangeOpener
from docflow_extractor.settings import ExtractorSettings
from docflow_shared.blobstore import BlobStore
from docflow_shared.cancellations import Cancellations, follow_cancellations
from docflow_shared.events import (
    DocumentFailed,
    DocumentProgressed,
    DocumentRetrying,
    OcrRangeRead,
    OcrRangeRequested,
    Stage,
    TextExtracted,
)
from docflow_shared.failures import FailDocumentOnError
from docflow_shared.kafka_admin import PartitionCounts
from docflow_shared.messaging import KafkaEventPublisher
from docflow_shared.metrics import RejectedEvents, RetryMetrics, StageMetrics
from docflow_shared.probes import kafka_check
from docflow_shared.retries import Parking
from docflow_shared.serving import consumer_app, service_broker

SERVICE = "extractor"


def reading_for(settings: ExtractorSettings) -> Reading:
    """How the service reads documents: read and cut in the sandbox, sent in batches."""
    # A tokenizer that cannot be loaded fails here, at start-up, rather than in
    # every worker; the workers load their own, so this copy is dropped.
    Chunking(settings.chunking_policy())
    return Reading(
        new_batcher=settings.batcher,
        progress_steps=settings.progress_steps,
        max_file_bytes=settings.max_file_bytes,
        # Untrusted files are parsed and cut in a confined worker process, one per document.
        opener=partial(
            open_sandboxed,
            limits=settings.sandbox,
            chunking=settings.chunking_policy(),
            document_limits=settings.document_limits,
            ocr=settings.ocr,
            tessdata=ocr_models(settings),
            ocr_defer=settings.ocr_range_pages > 0,
        ),
        ocr_range_pages=settings.ocr_range_pages if settings.ocr_languages else 0,
    )


def ocr_models(settings: ExtractorSettings) -> str:
    """The folder of the OCR language models; refuses to start when a configured one is missing."""
    if not settings.ocr_languages:
        return ""
    tessdata = find_tessdata(settings.ocr_tessdata)
    if missing := missing_languages(settings.ocr_languages, tessdata):
        packages = " ".join(f"tesseract-ocr-{lang.replace('_', '-')}" for lang in missing)
        raise ValueError(
            f"DOCFLOW_OCR_LANGUAGES={settings.ocr_languages}: no OCR model for "
            f"{', '.join(missing)} in {tessdata or '/usr/share/tesseract-ocr/*/tessdata'} "
            f"(install Debian's {packages}, or set DOCFLOW_OCR_LANGUAGES='' to turn OCR off)"
        )
    return str(tessdata)


@dataclass(frozen=True)
class Ports:
    """The extractor's adapters: where uploaded files and extracted text are kept,
    and how documents are read (the parser, in its sandbox: ``reading_for``)."""

    blobs: BlobStore
    reading: Reading


def wire(
    broker: KafkaBroker,
    ports: Ports,
    settings: ExtractorSettings,
    registry: CollectorRegistry | None = None,
    partition_counts: PartitionCounts | None = None,
) -> None:
    """Attach the extractor's publisher, failure middleware and subscriber to ``broker``
    (its metrics to ``registry``).

    The same wiring runs on a real broker and on FastStream's ``TestKafkaBroker``.
    """
    registry = registry or CollectorRegistry()
    publish = KafkaEventPublisher(
        broker,
        source=f"/docflow/{SERVICE}",
        produces=[
            DocumentProgressed,
            TextExtracted,
            DocumentFailed,
            DocumentRetrying,
            OcrRangeRequested,
        ],
        # A scan's OCR ranges round robin over their topic's partitions.
        partition_counts=partition_counts,
    )
    parking = Parking(
        broker,
        service=SERVICE,
        delays_s=settings.retry_delays_s,
        max_redeliveries=settings.max_redeliveries,
        metrics=RetryMetrics(registry, Stage.EXTRACTING.value),
    )
    # Scoped to this service's subscribers: a handler error fails its document
    # (or, if transient, parks its message for a retry).
    router = FailDocumentOnError(
        publish,
        stage=Stage.EXTRACTING,
        service=SERVICE,
        parking=parking,
        rejected=RejectedEvents(registry, SERVICE),
    ).router()
    cancellations = Cancellations()
    register(
        router,
        blobs=ports.blobs,
        publish=publish,
        reading=ports.reading,
        cancellations=cancellations,
        stages=StageMetrics(registry, Stage.EXTRACTING.value),
        parking=parking,
    )
    broker.include_router(router)
    follow_cancellations(broker, cancellations)


def bootstrap(settings: ExtractorSettings | None = None) -> AsgiFastStream:
    """The extractor app: consumer plus /healthz, /readyz and /metrics."""
    settings = settings or ExtractorSettings()
    registry = CollectorRegistry()
    broker = service_broker(settings, service=SERVICE, registry=registry)
    blobs = settings.blobs()
    counts = PartitionCounts(settings.kafka_bootstrap_servers, security=settings.kafka_security)
    wire(broker, Ports(blobs, reading_for(settings)), settings, registry, counts)
    return consumer_app(
        broker,
        service=SERVICE,
        registry=registry,
        checks={"kafka": kafka_check(broker), "blob_store": blobs.check},
        metrics_at=settings.metrics_address,
    )


def bootstrap_ocr(settings: ExtractorSettings | None = None) -> AsgiFastStream:
    """The OCR consumer (``python -m docflow_extractor ocr``): ranges of scans' pages
    read by OCR in the sandbox (ocr_stage.py), plus /healthz, /readyz and /metrics."""
    settings = settings or ExtractorSettings()
    if not settings.ocr_languages:
        raise ValueError("the OCR consumer needs DOCFLOW_OCR_LANGUAGES (it is '')")
    registry = CollectorRegistry()
    broker = service_broker(settings, service="ocr", registry=registry)
    blobs = settings.blobs()
    wire_ocr(
        broker,
        blobs,
        partial(
            open_ocr_range, limits=settings.sandbox, ocr=settings.ocr, tessdata=ocr_models(settings)
        ),
        settings,
        registry,
    )
    return consumer_app(
        broker,
        service="ocr",
        registry=registry,
        checks={"kafka": kafka_check(broker), "blob_store": blobs.check},
        metrics_at=settings.metrics_address,
    )


def wire_ocr(
    broker: KafkaBroker,
    blobs: BlobStore,
    open_range: RangeOpener,
    settings: ExtractorSettings,
    registry: CollectorRegistry | None = None,
) -> None:
    """Attach the OCR consumer's publisher, failure middleware and subscriber to ``broker``.

    A range that fails fails its document (``extracting``) and is answered as
    failed, so the extractor drops the attempt's other answers. A transient
    error parks the range on the OCR consumer's own retry topics
    (``docflow.retry.ocr.<n>.v1``), so an OCR consumer reads it again.
    """
    registry = registry or CollectorRegistry()
    publish = KafkaEventPublisher(
        broker,
        source="/docflow/ocr",
        produces=[DocumentProgressed, OcrRangeRead, DocumentFailed, DocumentRetrying],
    )
    parking = Parking(
        broker,
        service="ocr",
        delays_s=settings.retry_delays_s,
        max_redeliveries=settings.max_redeliveries,
        metrics=RetryMetrics(registry, Stage.EXTRACTING.value),
    )
    router = FailRangeOnError(
        publish,
        stage=Stage.EXTRACTING,
        service="ocr",
        parking=parking,
        rejected=RejectedEvents(registry, "ocr"),
    ).router()
    cancellations = Cancellations()
    register_ocr(
        router,
        blobs=blobs,
        publish=publish,
        open_range=open_range,
        cancellations=cancellations,
        stages=StageMetrics(registry, "ocr"),
        metrics=OcrMetrics(registry),
        max_file_bytes=settings.max_file_bytes,
        parking=parking,
    )
    broker.include_router(router)
    follow_cancellations(broker, cancellations)
