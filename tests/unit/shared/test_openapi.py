"""The committed OpenAPI documents are the ones the services' apps generate
(docs/architecture.md, "HTTP contract"); the Python client follows them."""

import importlib.util
import json
from pathlib import Path

import pytest

from docflow_client import AsyncDocflow

SCRIPT = Path(__file__).resolve().parents[3] / "docs" / "openapi.py"

pytestmark = pytest.mark.unit


def generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("docflow_openapi", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_openapi_documents_are_up_to_date() -> None:
    script = generator()
    for path, text in script.documents().items():
        assert path.exists(), f"{path} is missing: run `make openapi` and commit it"
        assert path.read_text() == text, (
            f"{path.name} is out of date: run `make openapi` and commit it"
        )


def test_the_client_has_a_method_for_every_operation() -> None:
    # Each operation of both documents, by its method and path, and the
    # client's method that calls it.
    calls = {
        ("gateway", "post", "/v1/documents"): "upload",
        ("gateway", "get", "/v1/search"): "search",
        ("gateway", "post", "/v1/reindex"): "reindex",
        ("gateway", "post", "/v1/documents/{document_id}/retry"): "retry",
        ("gateway", "post", "/v1/documents/{document_id}/cancel"): "cancel",
        ("gateway", "delete", "/v1/documents/{document_id}"): "delete",
        ("gateway", "get", "/v1/documents/{document_id}/chunks"): "chunks",
        ("gateway", "get", "/v1/deadletters"): "dead_letters",
        ("gateway", "post", "/v1/deadletters/redrive"): "redrive",
        ("gateway", "post", "/v1/webhooks"): "create_webhook",
        ("gateway", "get", "/v1/webhooks"): "webhooks",
        ("gateway", "get", "/v1/webhooks/{webhook_id}"): "webhook",
        ("gateway", "delete", "/v1/webhooks/{webhook_id}"): "delete_webhook",
        ("gateway", "post", "/v1/webhooks/{webhook_id}/secret"): "rotate_webhook_secret",
        ("gateway", "get", "/v1/webhooks/{webhook_id}/deliveries"): "webhook_deliveries",
        (
            "gateway",
            "post",
            "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redrive",
        ): "redrive_webhook_delivery",
        ("status", "get", "/v1/documents"): "documents",
        ("status", "get", "/v1/documents/counts"): "counts",
        ("status", "get", "/v1/documents/stream"): "stream",
        ("status", "get", "/v1/documents/{document_id}"): "status",
        ("status", "get", "/v1/documents/{document_id}/events"): "timeline",
        ("status", "get", "/v1/documents/{document_id}/stream"): "stream",
        ("status", "get", "/v1/reindex/{reindex_id}"): "reindex_status",
    }
    operations = set()
    for service in ("gateway", "status"):
        spec = json.loads((SCRIPT.parent / "openapi" / f"{service}.json").read_text())
        for path, methods in spec["paths"].items():
            if path.startswith("/v1/"):
                operations |= {(service, method, path) for method in methods}
    assert operations == set(calls), "an operation the client does not know (or no more)"
    assert all(callable(getattr(AsyncDocflow, name)) for name in calls.values())
