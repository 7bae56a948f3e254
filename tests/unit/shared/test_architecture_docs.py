"""docs/events.md is the map of who publishes what; it must match the code."""

from pathlib import Path

from docflow_embedder.entrypoints import consumer as embedder_consumer
from docflow_extractor.entrypoints import consumer as extractor_consumer
from docflow_extractor.entrypoints import ocr as ocr_consumer
from docflow_gateway.entrypoints import dispatcher as webhook_dispatcher
from docflow_shared import topics
from docflow_shared.events import (
    EVENT_TYPES,
    DocumentStatusChanged,
    OcrRangeRead,
    OcrRangeRequested,
)
from docflow_status.entrypoints import consumer as status_consumer
from support.manifests import subscribers, subscriptions

WORKING_GROUPS = (
    extractor_consumer.GROUP_ID,
    extractor_consumer.RETRIED_GROUP_ID,
    extractor_consumer.OCR_DONE_GROUP_ID,
    ocr_consumer.GROUP_ID,
    embedder_consumer.GROUP_ID,
    embedder_consumer.DELETED_GROUP_ID,
    status_consumer.GROUP_ID,
    webhook_dispatcher.GROUP_ID,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "events.md"


def test_every_event_and_topic_is_on_the_map() -> None:
    text = DOC.read_text()
    for cls in (*EVENT_TYPES, DocumentStatusChanged, OcrRangeRequested, OcrRangeRead):
        row = next((line for line in text.splitlines() if f"`{cls.__name__}`" in line), None)
        assert row is not None, f"{cls.__name__} is missing from docs/events.md"
        assert f"`{cls.TOPIC}`" in row, f"{cls.__name__} is listed with the wrong topic"
    for name in (*topics.ALL, topics.STATUS, *topics.OCR):
        assert f"`{name}`" in text


def test_the_consumer_groups_on_the_map_are_the_ones_in_the_code() -> None:
    text = DOC.read_text()
    for group in (*WORKING_GROUPS, embedder_consumer.REINDEX_GROUP_ID):
        assert f"`{group}`" in text


def test_every_linked_file_exists() -> None:
    import re

    for target in re.findall(r"\]\((\.\./[^)#]+)\)", DOC.read_text()):
        assert (DOC.parent / target).resolve().is_file(), target


def test_the_lag_gauge_watches_each_services_own_group() -> None:
    assert set(topics.CONSUMERS) == set(WORKING_GROUPS)
    assert topics.CONSUMERS[status_consumer.GROUP_ID] == (
        *topics.ALL,
        *topics.REINDEX,
        topics.OCR_REQUESTED,
    )
    wiring = subscriptions()
    for group, names in topics.CONSUMERS.items():
        service = next(s for s, pairs in wiring.items() if any(g == group for g, _ in pairs))
        assert {t for g, t in wiring[service] if g == group} == set(names), group


def test_a_process_has_one_consumer_in_each_group_it_works_in() -> None:
    """A second consumer of the process joining the group would rebalance the
    first: the batches it was working on then fail to commit and are done again
    (in bench/embedder.py, an embedder started while a 117-page PDF waited
    embedded it twice)."""
    working = {
        service: [group for group, _ in found if group in topics.CONSUMERS]
        for service, found in subscribers().items()
    }
    assert {s for s, groups in working.items() if groups} == {
        "extractor",
        "embedder",
        "status",
        "ocr",
        "webhooks",
    }
    for service, groups in working.items():
        assert len(groups) == len(set(groups)), (service, groups)
