"""The committed AsyncAPI document is the one the code generates
(docs/architecture.md, "Event contract")."""

import importlib.util
from pathlib import Path

import yaml

SCRIPT = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.py"


def generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("docflow_asyncapi", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_asyncapi_document_is_up_to_date() -> None:
    script = generator()
    assert script.DOCUMENT.read_text() == script.document(), (
        "docs/asyncapi.yaml is out of date: run `make asyncapi` and commit it"
    )


def test_the_status_topic_is_in_it_with_its_schema() -> None:
    spec = yaml.safe_load(generator().DOCUMENT.read_text())
    channel = spec["channels"]["docflow.document.status.v1:DocumentStatusChanged"]
    assert channel["address"] == "docflow.document.status.v1"
    schema = spec["components"]["schemas"]["DocumentStatusChanged"]
    for field in ("document_id", "version", "status", "stage", "progress", "stalled", "deleted"):
        assert field in schema["properties"], field
    # Published by the status service.
    assert any(
        operation["action"] == "send"
        and operation["channel"]["$ref"].endswith("status.v1:DocumentStatusChanged")
        for operation in spec["operations"].values()
    )
