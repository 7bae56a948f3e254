"""The failure middleware: what becomes of a message whose handling raised."""

from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from docflow_shared.errors import DocumentError
from docflow_shared.events import (
    DocumentFailed,
    ErrorCode,
    Event,
    Stage,
    TextExtracted,
)
from docflow_shared.failures import FailDocumentOnError
from support.uploads import an_upload


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)


def message(body: bytes) -> SimpleNamespace:
    return SimpleNamespace(body=body)


async def test_a_document_error_fails_the_document_with_its_code_and_reason() -> None:
    publish = Recorder()
    middleware = FailDocumentOnError(publish, stage=Stage.EXTRACTING, service="extractor")
    event = an_upload()
    await middleware.fail(
        message(event.model_dump_json().encode()),
        DocumentError(ErrorCode.ENCRYPTED, "needs a password"),
    )
    [failed] = publish.events
    assert isinstance(failed, DocumentFailed)
    assert failed.document_id == event.document_id
    assert failed.correlation_id == event.correlation_id
    assert (failed.error.code, failed.error.message) == (ErrorCode.ENCRYPTED, "needs a password")
    assert failed.error.stage is Stage.EXTRACTING
    assert failed.error.retryable is False


async def test_an_unexpected_error_fails_the_document_as_internal_and_retryable() -> None:
    publish = Recorder()
    middleware = FailDocumentOnError(publish, stage=Stage.EMBEDDING, service="embedder")
    await middleware.fail(message(an_upload().model_dump_json().encode()), OSError("disk full"))
    [failed] = publish.events
    assert isinstance(failed, DocumentFailed)
    assert failed.error.code is ErrorCode.INTERNAL
    assert failed.error.retryable is True
    assert "disk full" in failed.error.message


async def test_an_event_that_cannot_be_read_fails_its_document_permanently() -> None:
    publish = Recorder()
    middleware = FailDocumentOnError(publish, stage=Stage.EMBEDDING, service="embedder")
    body = an_upload().model_dump_json().encode()
    with pytest.raises(ValidationError) as caught:
        TextExtracted.model_validate_json(body)
    await middleware.fail(message(body), caught.value)
    [failed] = publish.events
    assert isinstance(failed, DocumentFailed)
    assert failed.error.retryable is False


async def test_a_failure_reason_stays_short_enough_to_read() -> None:
    publish = Recorder()
    middleware = FailDocumentOnError(publish, stage=Stage.EMBEDDING, service="embedder")
    await middleware.fail(
        message(an_upload().model_dump_json().encode()), ValueError("x" * 100_000)
    )
    [failed] = publish.events
    assert isinstance(failed, DocumentFailed)
    assert len(failed.error.message) < 600


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"document_id": "nope"}', b"[1, 2]"])
async def test_a_message_naming_no_document_is_skipped(body: bytes) -> None:
    publish = Recorder()
    middleware = FailDocumentOnError(publish, stage=Stage.EXTRACTING, service="extractor")
    await middleware.fail(message(body), ValueError("bad"))
    assert publish.events == []


async def test_when_the_failure_cannot_be_published_the_error_propagates() -> None:
    async def broken(event: Event) -> None:
        raise ConnectionError("Kafka unreachable")

    middleware = FailDocumentOnError(broken, stage=Stage.EXTRACTING, service="extractor")
    with pytest.raises(ConnectionError):
        await middleware.fail(message(an_upload().model_dump_json().encode()), ValueError("x"))
