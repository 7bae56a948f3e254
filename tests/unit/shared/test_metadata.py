"""An upload's metadata: what is accepted, what is refused and why, and the filter terms."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest
from pydantic import ValidationError

from docflow_shared.events import DocumentUploaded, TextExtracted, parse_event
from docflow_shared.events.metadata import (
    MAX_ENCODED_BYTES,
    MAX_KEYS,
    MAX_LIST_ITEMS,
    MetadataError,
    metadata_terms,
    parse_filter,
    parse_metadata,
    terms_text,
)

pytestmark = pytest.mark.unit


def test_a_flat_object_of_scalars_and_lists_is_kept_as_sent() -> None:
    sent = {"project": "apollo", "year": 2024, "score": 0.5, "draft": False, "tags": ["a", 1]}
    assert parse_metadata(json.dumps(sent)) == sent
    # Booleans stay booleans (not 0/1), numbers stay numbers.
    assert parse_metadata(b'{"x": true, "n": 1}') == {"x": True, "n": 1}
    assert parse_metadata(b"{}") == {}


@pytest.mark.parametrize(
    ("sent", "named"),
    [
        (b'["a"]', "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"{not json", "not valid JSON"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": Infinity}', "Infinity is not a JSON number"),
        (b'{"a": null}', "null is not a value"),
        (b'{"a": {"b": 1}}', "nested too deep"),
        (b'{"a": [[1]]}', "nested too deep"),
        (b'{"a": [{"b": 1}]}', "nested too deep"),
        (b'{"a b": 1}', "key 'a b' is not allowed"),
        (b'{"1a": 1}', "key '1a' is not allowed"),
        (b'{"": 1}', "key '' is not allowed"),
        (b'{"a=b": 1}', "key 'a=b' is not allowed"),
        (b'{"a": "line\\nbreak"}', "control characters"),
        (json.dumps({"k" * 65: 1}).encode(), "is not allowed"),
        (json.dumps({"a": "x" * 1025}).encode(), "longer than 1024"),
        (json.dumps({f"k{i}": i for i in range(MAX_KEYS + 1)}).encode(), "at most 64"),
        (json.dumps({"a": list(range(MAX_LIST_ITEMS + 1))}).encode(), "at most 64"),
    ],
)
def test_what_is_refused_is_named(sent: bytes, named: str) -> None:
    with pytest.raises(MetadataError, match=named.replace("[", r"\[")):
        parse_metadata(sent)


def test_a_deeply_nested_document_is_refused_without_recursing_forever() -> None:
    with pytest.raises(MetadataError):
        parse_metadata(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}")


def test_the_encoded_size_is_bounded_in_every_event() -> None:
    big = {f"k{i}": "x" * 1024 for i in range(MAX_KEYS)}  # about 66 KB
    with pytest.raises(MetadataError, match=f"at most {MAX_ENCODED_BYTES}"):
        parse_metadata(json.dumps(big))


def _uploaded(metadata: object) -> dict[str, object]:
    return {
        "event_type": "docflow.document.uploaded",
        "document_id": str(uuid4()),
        "tenant_id": "acme",
        "correlation_id": "c",
        "filename": "a.txt",
        "content_type": "text/plain",
        "size_bytes": 1,
        "sha256": "0" * 64,
        "blob_key": "acme/x/original",
        "metadata": metadata,
    }


def test_events_check_metadata_again_on_the_way_in() -> None:
    ok = parse_event(json.dumps(_uploaded({"a": [1, "b"]})))
    assert isinstance(ok, DocumentUploaded)
    assert ok.metadata == {"a": [1, "b"]}
    # A forged or broken event with nested metadata is unreadable (dead-lettered).
    with pytest.raises(ValidationError, match="nested too deep"):
        parse_event(json.dumps(_uploaded({"a": {"b": 1}})))
    # Older events have none.
    old = _uploaded(None)
    del old["metadata"]
    assert parse_event(json.dumps(old)).metadata is None  # type: ignore[attr-defined]


def test_chunks_carry_the_facts_of_the_upload() -> None:
    uploaded = DocumentUploaded.model_validate(_uploaded({"team": "red"}))
    batch = TextExtracted.caused_by(
        uploaded, batch=0, chunks=[], last=True, chunks_total=0, document=uploaded.facts
    )
    again = parse_event(batch.model_dump_json())
    assert isinstance(again, TextExtracted)
    assert again.document is not None
    assert (again.document.filename, again.document.metadata) == ("a.txt", {"team": "red"})
    assert again.document.uploaded_at == uploaded.occurred_at


def test_terms_spell_numbers_and_booleans_as_json() -> None:
    metadata = {"year": 2024, "draft": True, "tags": ["x", "y", "x"], "r": 1.5}
    assert metadata_terms(metadata) == ["year=2024", "draft=true", "tags=x", "tags=y", "r=1.5"]
    assert terms_text(metadata) == "\nyear=2024\ndraft=true\ntags=x\ntags=y\nr=1.5\n"
    assert terms_text({}) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("year=2024", ("year", "year=2024")), ("a=b=c", ("a", "a=b=c")), ("k=", ("k", "k="))],
)
def test_filters_are_key_equals_value(text: str, expected: tuple[str, str]) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize("text", ["noequals", "=v", "bad key=v", "k=a\nb"])
def test_malformed_filters_are_refused(text: str) -> None:
    with pytest.raises(MetadataError):
        parse_filter(text)
