"""OCR as a stage of its own, through the running system: a scan's pages read by
two OCR consumer processes range by range, then cut by the extractor; and a scan
cancelled while it is being read by OCR."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest

from docflow_local.stack import Stack
from docflow_shared import topics
from docflow_shared.events import OcrRangeRead, OcrRangeRequested, TextExtracted
from docflow_shared.kafka_admin import partitions_of, read_records, read_topic
from support.corpus import REPO_ROOT
from support.scans import scan
from support.stacks import readable_events, running_stack
from support.waiting import wait_until

PAGES = 10


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("ocr-stage") / "data",
        REPO_ROOT / ".artifacts" / "e2e" / "logs" / "ocr-stage",
        # A range a page: ten ranges over the topic's six partitions, which the
        # group's two members share three and three.
        extra_env={"DOCFLOW_OCR_RANGE_PAGES": "1"},
        ocr_replicas=2,
    ) as running:
        yield running


def _upload(http: httpx.Client, stack: Stack, data: bytes) -> dict[str, Any]:
    response = http.post(f"{stack.url('gateway')}/v1/documents", files={"file": ("scan.pdf", data)})
    assert response.status_code == 202, response.text
    document: dict[str, Any] = response.json()["documents"][0]
    return document


def _until(
    http: httpx.Client,
    document: dict[str, Any],
    condition: Any,
    what: str,
    messages: list[str] | None = None,
) -> Any:
    """The document's status once ``condition`` holds (each message seen meanwhile
    appended to ``messages``)."""

    def probe() -> dict[str, Any] | None:
        response = http.get(document["status_url"])
        status = response.json() if response.status_code == 200 else None
        if status is not None and messages is not None and status["message"] not in messages[-1:]:
            messages.append(status["message"])
        return status if status is not None and condition(status) else None

    return wait_until(probe, timeout_s=400, interval_s=0.2, what=what)


def _ranges_read(http: httpx.Client, stack: Stack, name: str) -> float:
    text = http.get(f"{stack.url(name)}/metrics").text
    found = re.search(r"^docflow_ocr_ranges_total (\S+)$", text, re.MULTILINE)
    assert found, f"{name} shows no docflow_ocr_ranges_total"
    return float(found.group(1))


def _of(stack: Stack, topic: str, document_id: str) -> list[Any]:
    values = asyncio.run(read_topic(stack.kafka_bootstrap_servers, topic))
    if topic == topics.OCR_DONE:
        events: list[Any] = [OcrRangeRead.model_validate_json(v) for v in values]
    else:
        events = readable_events(values)
    return [e for e in events if str(e.document_id) == document_id]


def _range_partitions(stack: Stack, document_id: str) -> dict[int, int]:
    """Where the scan's ranges were written on the OCR topic: partition by range."""
    records = asyncio.run(read_records(stack.kafka_bootstrap_servers, topics.OCR_REQUESTED))
    return {
        OcrRangeRequested.model_validate_json(r.value).range_index: r.partition
        for r in records
        if r.key and r.key.startswith(f"{document_id}:".encode())
    }


def test_a_scan_is_read_by_two_ocr_consumers_and_completes_with_its_chunks(
    stack: Stack, http: httpx.Client
) -> None:
    document = _upload(http, stack, scan(PAGES))
    messages: list[str] = []
    done = _until(
        http,
        document,
        lambda s: s["status"] in ("completed", "failed"),
        "the scan is indexed",
        messages,
    )
    assert done["status"] == "completed", done
    # The status API showed the OCR consumers' progress, page by page.
    read = [
        int(m.group(1))
        for m in (re.fullmatch(rf"Extracting text: OCR page (\d+) of {PAGES}", x) for x in messages)
        if m
    ]
    assert read, messages
    assert all(1 <= n <= PAGES for n in read), messages
    assert done["pages"] == PAGES
    # Its ranges went round robin over the topic's partitions (from one its id
    # chooses): 10 over 6, so every partition has 1 or 2, the even ones (one
    # consumer's, aiokafka's round-robin assignor) as many as the odd ones.
    count = len(asyncio.run(partitions_of(stack.kafka_bootstrap_servers, [topics.OCR_REQUESTED])))
    landed = _range_partitions(stack, document["id"])
    assert landed == {i: (UUID(document["id"]).int + i) % count for i in range(PAGES)}
    # Both OCR consumers read ranges of it.
    assert _ranges_read(http, stack, "ocr") > 0
    assert _ranges_read(http, stack, "ocr-2") > 0
    # At least once: a range read again (a rebalance when the second consumer
    # joined) is answered again, and the assembly keeps one answer per range.
    answers = {a.range_index: a for a in _of(stack, topics.OCR_DONE, document["id"])}
    assert sorted(p.number for a in answers.values() for p in a.pages) == list(range(1, PAGES + 1))
    batches = {
        e.batch: e
        for e in _of(stack, topics.EXTRACTED, document["id"])
        if isinstance(e, TextExtracted)
    }
    chunks = [c for _, b in sorted(batches.items()) for c in b.chunks]
    assert [c.index for c in chunks] == list(range(done["chunks_total"]))
    assert done["chunks_embedded"] == done["chunks_total"]
    text = " ".join(" ".join(c.text for c in chunks).split())
    # linn.pdf on the odd pages, c02-22.pdf on the even ones, in page order.
    assert text.count("LinnSequencer is a state") == PAGES // 2
    assert text.count("tip-toeing along a path") == PAGES // 2
    assert [c.page for c in chunks] == sorted(c.page for c in chunks)


def test_a_scan_cancelled_during_ocr_stops(stack: Stack, http: httpx.Client) -> None:
    pages = 16
    document = _upload(http, stack, scan(pages))
    _until(http, document, lambda s: "OCR page" in s["message"], "OCR under way")
    cancel = http.post(f"{stack.url('gateway')}/v1/documents/{document['id']}/cancel")
    assert cancel.status_code == 202, cancel.text
    _until(http, document, lambda s: s["status"] == "cancelled", "cancelled")
    # What was under way when the cancellation came ends; nothing is put together.
    wait_until(lambda: not _ocr_busy(stack), timeout_s=120, what="the OCR consumers idle")
    read = _of(stack, topics.OCR_DONE, document["id"])
    assert len(read) < pages
    assert not [
        e for e in _of(stack, topics.EXTRACTED, document["id"]) if isinstance(e, TextExtracted)
    ]


def _ocr_busy(stack: Stack) -> bool:
    """Whether the OCR consumers are still at work (their count of handled ranges moves)."""
    with httpx.Client(timeout=5) as client:
        before = [_handled(client, stack, n) for n in ("ocr", "ocr-2")]
        time.sleep(3)
        return before != [_handled(client, stack, n) for n in ("ocr", "ocr-2")]


def _handled(client: httpx.Client, stack: Stack, name: str) -> str:
    text = client.get(f"{stack.url(name)}/metrics").text
    found = re.search(
        r"^docflow_stage_duration_seconds_count\{stage=\"ocr\"\} (\S+)$", text, re.MULTILINE
    )
    return found.group(1) if found else ""
