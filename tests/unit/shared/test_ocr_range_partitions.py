"""A scan's OCR ranges go round robin over the OCR topic's partitions
(``OcrRangeRequested.kafka_partition``), not where their keys hash: evenly over
the OCR consumers, each document from a partition its id chooses."""

from __future__ import annotations

import itertools
from collections import Counter
from uuid import UUID, uuid4

from docflow_shared.blobstore import original_key
from docflow_shared.events import DocumentProgressed, OcrRangeRequested, Stage


def request(document: UUID, index: int, count: int) -> OcrRangeRequested:
    return OcrRangeRequested(
        document_id=document,
        tenant_id="t1",
        correlation_id="c",
        content_type="application/pdf",
        blob_key=original_key("t1", document),
        first=index + 1,
        last=index + 1,
        page_count=count,
        range_index=index,
        range_count=count,
    )


def partitions(document: UUID, count: int, partitions: int) -> list[int | None]:
    return [request(document, i, count).kafka_partition(partitions) for i in range(count)]


def test_a_scans_ranges_spread_evenly_over_the_partitions() -> None:
    for _ in range(200):
        d = uuid4()
        # 4 ranges, 2 partitions (2 OCR consumers): 2 and 2, never 1 and 3.
        assert sorted(Counter(partitions(d, 4, 2)).values()) == [2, 2]
        # 10 ranges over 6: each partition gets 1 or 2; consecutive ranges differ.
        spread = partitions(d, 10, 6)
        assert sorted(Counter(spread).values()) == [1, 1, 2, 2, 2, 2]
        assert all(a != b for a, b in itertools.pairwise(spread))


def test_documents_start_on_different_partitions_and_a_range_sent_again_goes_where_it_went() -> (
    None
):
    first = Counter(partitions(uuid4(), 1, 6)[0] for _ in range(600))
    assert set(first) == set(range(6))
    assert min(first.values()) > 50  # about 100 each
    d = uuid4()
    assert partitions(d, 5, 6) == partitions(d, 5, 6)
    assert partitions(d, 5, 6)[0] == d.int % 6


def test_other_events_leave_the_partition_to_the_keys_hash() -> None:
    progress = DocumentProgressed(
        document_id=uuid4(), tenant_id="t1", correlation_id="c", stage=Stage.EXTRACTING, done=0
    )
    assert progress.kafka_partition(6) is None
    assert request(uuid4(), 0, 1).kafka_partition(0) is None
