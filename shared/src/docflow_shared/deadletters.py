"""Reading the dead-letter topic: what was kept, from where, and why.

Re-driving (``POST /v1/deadletters/redrive`` on the gateway, or
``python -m docflow_gateway redrive``) starts a new attempt of each
dead-lettered document, from the stage that gave up, once its cause is fixed.
The gateway does not read the topic per request: its dead-letter indexer
(``docflow_gateway.adapters.deadletter_indexer``) keeps an index of it, and
``Selection`` chooses from that index. ``dead_letters`` reads the whole topic
(tools and tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from docflow_shared import decoding, retries, topics
from docflow_shared.kafka_admin import read_records
from docflow_shared.kafka_security import KafkaSecurity


@dataclass(frozen=True)
class DeadLetter:
    """One message on the dead-letter topic."""

    partition: int
    offset: int
    at: datetime
    body: bytes
    headers: dict[str, str]
    # From the body's envelope, when it has one.
    document_id: UUID | None
    tenant_id: str | None

    @property
    def topic(self) -> str:
        return self.headers.get(retries.ORIGINAL_TOPIC, "?")

    @property
    def service(self) -> str:
        return self.headers.get(retries.SERVICE, "?")

    @property
    def error(self) -> str:
        return self.headers.get(retries.ERROR, "")

    @property
    def stage(self) -> str:
        return self.headers.get(retries.STAGE, "")


@dataclass(frozen=True)
class Selection:
    """Which dead letters to act on; every field given must match."""

    document_ids: Sequence[UUID] | None = None
    topic: str | None = None
    service: str | None = None
    error_contains: str | None = None
    since: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (self.document_ids is None or letter.document_id in self.document_ids)
            and (self.topic is None or letter.topic == self.topic)
            and (self.service is None or letter.service == self.service)
            and (self.error_contains is None or self.error_contains in letter.error)
            and (self.since is None or letter.at >= self.since)
        )


def _envelope(body: bytes) -> tuple[UUID | None, str | None]:
    # A dead letter is often a message nobody could read (100 KB of "[" among
    # them): it is read as bounded as any consumer reads (decoding.loads).
    try:
        data = decoding.loads(body)
        return UUID(data["document_id"]), str(data["tenant_id"])
    except (ValueError, KeyError, TypeError):
        return None, None


async def dead_letters(
    bootstrap: str, *, security: KafkaSecurity | None = None
) -> list[DeadLetter]:
    """Every message on the dead-letter topic, oldest first per partition."""
    letters = []
    for record in await read_records(bootstrap, topics.DEAD_LETTER, security=security):
        document_id, tenant_id = _envelope(record.value or b"")
        letters.append(
            DeadLetter(
                partition=record.partition,
                offset=record.offset,
                at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
                body=record.value or b"",
                headers={k: v.decode(errors="replace") for k, v in (record.headers or ())},
                document_id=document_id,
                tenant_id=tenant_id,
            )
        )
    return letters
