from docflow_shared.messaging import cloudevent_headers
from support.uploads import an_upload


def test_cloudevent_headers_describe_the_event_without_our_code() -> None:
    event = an_upload()
    headers = cloudevent_headers(event, "/docflow/gateway")
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_id"] == str(event.event_id)
    assert headers["ce_type"] == "docflow.document.uploaded"
    assert headers["ce_source"] == "/docflow/gateway"
    assert headers["ce_time"] == event.occurred_at.isoformat()
    assert headers["ce_subject"] == str(event.document_id)
    assert headers["content-type"] == "application/json"
