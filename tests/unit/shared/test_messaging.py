from faststream.kafka import KafkaMessage, TestKafkaBroker

from docflow_shared import topics
from docflow_shared.events import DocumentCancelled, DocumentDeleted, DocumentUploaded
from docflow_shared.messaging import KafkaEventPublisher, cloudevent_headers, make_broker
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


async def test_cancellations_and_deletions_are_keyed_by_tenant_and_document() -> None:
    # Their topics are compacted: a key naming the document alone would let a
    # record under another tenant supersede this tenant's.
    broker = make_broker("127.0.0.1:1", service="test")
    publish = KafkaEventPublisher(
        broker, source="/test", produces=[DocumentCancelled, DocumentDeleted, DocumentUploaded]
    )
    keys: list[bytes] = []

    @broker.subscriber(*topics.STOPS, topics.UPLOADED, group_id="keys")
    async def collect(message: KafkaMessage) -> None:
        keys.append(message.raw_message.key)

    upload = an_upload()
    document = upload.document_id
    async with TestKafkaBroker(broker):
        await publish(DocumentCancelled.caused_by(upload))
        await publish(DocumentDeleted.caused_by(upload))
        await publish(upload)
    assert keys == [f"{upload.tenant_id}/{document}".encode()] * 2 + [str(document).encode()]
