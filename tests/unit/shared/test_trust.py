"""Checking an event before acting on it: the claim check belongs to the event's
tenant and document, the tenant id is well formed; and what the failure
middleware does with an event that does not hold up."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from docflow_shared.blobstore import chunks_key, original_key
from docflow_shared.errors import UntrustedEvent
from docflow_shared.events import DocumentUploaded, Event, Stage
from docflow_shared.failures import FailDocumentOnError
from docflow_shared.metrics import RejectedEvents
from docflow_shared.trust import check_claim, check_tenant
from support.uploads import an_upload


def with_key(event: DocumentUploaded, key: str) -> DocumentUploaded:
    return event.model_copy(update={"blob_key": key})


def test_the_key_the_gateway_derives_passes() -> None:
    check_claim(an_upload("acme"))


@pytest.mark.parametrize(
    "key",
    [
        "acme/{document}/original",  # another tenant's copy of the same id
        "globex/{other}/original",  # another document of the same tenant
        "globex/{document}/chunks.jsonl",  # not the original
        "globex/{document}/original/",
        "globex/../acme/{document}/original",
    ],
)
def test_a_key_that_is_not_derived_from_the_tenant_and_document_is_refused(key: str) -> None:
    event = an_upload("globex")
    forged = with_key(event, key.format(document=event.document_id, other=uuid.uuid4()))
    with pytest.raises(UntrustedEvent) as caught:
        check_claim(forged)
    assert caught.value.reason == "blob_key"


@pytest.mark.parametrize("tenant", ["", "acme/..", "a b", "acme\n", "x" * 65, "é"])
def test_a_malformed_tenant_id_is_refused(tenant: str) -> None:
    event = an_upload().model_copy(update={"tenant_id": tenant})
    with pytest.raises(UntrustedEvent) as caught:
        check_tenant(event)
    assert caught.value.reason == "tenant_id"
    # Even with a key derived from it.
    derived = event.model_copy(update={"blob_key": original_key(tenant, event.document_id)})
    with pytest.raises(UntrustedEvent):
        check_claim(derived)


def test_the_keys_of_a_document_are_its_tenants() -> None:
    document = uuid.uuid4()
    assert original_key("acme", document) != original_key("globex", document)
    assert chunks_key("acme", document).startswith("acme/")


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.dead: list[tuple[bytes, Any, str, str]] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    async def dead_letter(self, body: bytes, origin: Any, reason: str, stage: str) -> None:
        self.dead.append((body, origin, reason, stage))


async def test_an_untrusted_event_is_dead_lettered_and_counted_and_fails_no_document() -> None:
    recorder = Recorder()
    registry = CollectorRegistry()
    middleware = FailDocumentOnError(
        recorder,
        stage=Stage.EXTRACTING,
        service="extractor",
        parking=recorder,  # type: ignore[arg-type]  # the dead-letter half of Parking
        rejected=RejectedEvents(registry, "extractor"),
    )
    body = an_upload("globex").model_dump_json().encode()
    await middleware.fail(SimpleNamespace(body=body), UntrustedEvent("blob_key", "not yours"))
    assert recorder.events == []
    [(dead_body, _, reason, stage)] = recorder.dead
    assert (dead_body, stage) == (body, "extracting")
    assert "untrusted" in reason
    assert "not yours" in reason
    labels = {"service": "extractor", "reason": "blob_key"}
    assert registry.get_sample_value("docflow_events_rejected_total", labels) == 1
