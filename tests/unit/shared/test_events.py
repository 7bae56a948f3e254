import json
import re

import pytest
from pydantic import ValidationError

from docflow_shared import topics
from docflow_shared.events import (
    EVENT_TYPES,
    Chunk,
    DocumentFailed,
    DocumentProgressed,
    DocumentUploaded,
    ErrorCode,
    ErrorInfo,
    Stage,
    TextExtracted,
    parse_event,
)
from support.uploads import an_upload


def test_every_event_carries_the_envelope_on_the_wire() -> None:
    body = json.loads(an_upload().model_dump_json())
    for field in (
        "event_id",
        "event_type",
        "schema_version",
        "occurred_at",
        "document_id",
        "tenant_id",
        "correlation_id",
    ):
        assert body[field] not in (None, ""), field
    assert body["event_type"] == "docflow.document.uploaded"
    assert body["occurred_at"].endswith("Z") or "+00:00" in body["occurred_at"]


def test_parse_event_returns_the_model_named_by_event_type() -> None:
    event = an_upload()
    parsed = parse_event(event.model_dump_json())
    assert type(parsed) is DocumentUploaded
    assert parsed == event


def test_consumers_ignore_fields_added_by_a_newer_producer() -> None:
    body = json.loads(an_upload().model_dump_json())
    body["added_in_a_later_version"] = {"anything": 1}
    assert type(parse_event(json.dumps(body))) is DocumentUploaded


def test_caused_by_keeps_document_tenant_and_correlation() -> None:
    cause = an_upload()
    effect = DocumentProgressed.caused_by(cause, stage=Stage.EXTRACTING, done=0, total=3)
    assert (effect.document_id, effect.tenant_id, effect.correlation_id) == (
        cause.document_id,
        cause.tenant_id,
        cause.correlation_id,
    )
    assert effect.event_id != cause.event_id


def test_last_batch_must_say_how_many_chunks_there_are() -> None:
    with pytest.raises(ValidationError, match="chunks_total"):
        TextExtracted.caused_by(an_upload(), batch=0, chunks=[], last=True)
    done = TextExtracted.caused_by(an_upload(), batch=0, chunks=[], last=True, chunks_total=0)
    assert done.chunks_total == 0


def test_each_event_type_has_its_own_versioned_topic() -> None:
    assert sorted(cls.TOPIC for cls in EVENT_TYPES) == sorted(topics.ALL)
    for cls in EVENT_TYPES:
        assert re.fullmatch(r"docflow\.document\.[a-z]+\.v\d+", cls.TOPIC)
        event_type = cls.model_fields["event_type"].default
        assert f"{event_type}.v1" == cls.TOPIC


def test_a_failure_round_trips_with_its_reason() -> None:
    failed = DocumentFailed.caused_by(
        an_upload(),
        error=ErrorInfo(
            code=ErrorCode.ENCRYPTED,
            message="needs a password",
            stage=Stage.EXTRACTING,
            retryable=False,
        ),
    )
    parsed = parse_event(failed.model_dump_json())
    assert isinstance(parsed, DocumentFailed)
    assert parsed.error.code is ErrorCode.ENCRYPTED
    assert json.loads(failed.model_dump_json())["error"]["code"] == "encrypted"


def test_chunks_keep_page_and_offsets() -> None:
    chunk = Chunk(index=3, text="hello", page=2, char_start=10, char_end=15)
    assert Chunk.model_validate_json(chunk.model_dump_json()) == chunk
