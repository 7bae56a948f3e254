"""docs/events.md is the map of who publishes what; it must match the code."""

from pathlib import Path

from docflow_embedder.entrypoints import consumer as embedder_consumer
from docflow_extractor.entrypoints import consumer as extractor_consumer
from docflow_shared import topics
from docflow_shared.events import EVENT_TYPES, DocumentStatusChanged
from docflow_status.entrypoints import consumer as status_consumer

DOC = Path(__file__).resolve().parents[3] / "docs" / "events.md"


def test_every_event_and_topic_is_on_the_map() -> None:
    text = DOC.read_text()
    for cls in (*EVENT_TYPES, DocumentStatusChanged):
        row = next((line for line in text.splitlines() if f"`{cls.__name__}`" in line), None)
        assert row is not None, f"{cls.__name__} is missing from docs/events.md"
        assert f"`{cls.TOPIC}`" in row, f"{cls.__name__} is listed with the wrong topic"
    for name in (*topics.ALL, topics.STATUS):
        assert f"`{name}`" in text


def test_the_consumer_groups_on_the_map_are_the_ones_in_the_code() -> None:
    text = DOC.read_text()
    for group in (
        extractor_consumer.GROUP_ID,
        embedder_consumer.GROUP_ID,
        status_consumer.GROUP_ID,
    ):
        assert f"`{group}`" in text


def test_every_linked_file_exists() -> None:
    import re

    for target in re.findall(r"\]\((\.\./[^)#]+)\)", DOC.read_text()):
        assert (DOC.parent / target).resolve().is_file(), target


def test_the_lag_gauge_watches_each_services_own_group() -> None:
    assert set(topics.CONSUMERS) == {
        extractor_consumer.GROUP_ID,
        embedder_consumer.GROUP_ID,
        status_consumer.GROUP_ID,
    }
    assert topics.CONSUMERS[status_consumer.GROUP_ID] == (*topics.ALL, *topics.REINDEX)
