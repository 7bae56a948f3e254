"""Who may do what on Kafka: one principal per service, its topics and groups.

The data here is the one place the ACLs are written down, derived from
``topics.py`` and the services' wiring (docs/architecture.md, "Topics,
producers and consumers"; a unit test checks it against every publisher and
subscriber the services declare). The secured-Kafka tests apply it with
``kafka-acls`` (``acl_commands``); ``strimzi_acls`` gives a Strimzi
``KafkaUser``'s ACLs, and MSK's ``kafka-acls.sh`` takes ``acl_commands``.

* Each service authenticates as ``docflow-<service>`` (the SASL user name, or
  the CN of its client certificate) and may write only the topics it
  produces and read only those it consumes.
* Only the gateway may produce the commands (retry and re-drive, cancel,
  delete, re-embed): ``COMMANDS``.
* Consumer groups: each service's groups all start with ``docflow-<service>``
  (``docflow-extractor-retried``, ``docflow-embedder-retry-0`` ...), so each
  gets that prefix. The status service may also describe the other groups of
  ``topics.CONSUMERS`` (literal names): its consumer-lag gauge reads their
  committed offsets.
* Replays and dead-letter reads use no group: reading the topic suffices.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from docflow_shared import topics

COMMANDS: tuple[str, ...] = (
    topics.RETRIED,
    topics.CANCELLED,
    topics.DELETED,
    topics.REINDEX_REQUESTED,
)
"""The operations people ask for through the gateway; no other service writes them."""


def retry_topics(service: str) -> tuple[str, ...]:
    """The retry topics ``service`` parks messages on and reads back."""
    return tuple(topics.retry_topic(service, level) for level in range(topics.RETRY_LEVELS))


@dataclass(frozen=True)
class Grants:
    """What one service's principal may do."""

    service: str
    produces: tuple[str, ...]
    reads: tuple[str, ...]
    # The consumer groups it joins: every group whose id starts with this.
    groups: str | None = None
    # The groups whose offsets it may read without joining (the lag gauge),
    # and the topics it does not read whose end offsets it needs for that.
    describes_groups: tuple[str, ...] = ()
    describes_topics: tuple[str, ...] = ()

    @property
    def user(self) -> str:
        """The SASL user name, and the CN of the service's client certificate."""
        return principal_name(self.service)

    @property
    def principal(self) -> str:
        return f"User:{self.user}"


def principal_name(service: str) -> str:
    return f"docflow-{service}"


GRANTS: dict[str, Grants] = {
    "gateway": Grants(
        "gateway",
        # Its webhook dispatcher (same image and user, its own Deployment) parks
        # deliveries on its retry topics and keeps those it gives up on; the
        # gateway re-drives one onto the first retry topic.
        produces=(topics.UPLOADED, *COMMANDS, *topics.WEBHOOKS_RETRY, topics.DEAD_LETTER),
        # Its dead-letter indexer (GET /v1/deadletters, re-drive) reads them, no
        # group; the dispatcher reads the status topic and its retry topics.
        reads=(topics.DEAD_LETTER, topics.STATUS, *topics.WEBHOOKS_RETRY),
        groups=principal_name("gateway"),
    ),
    "extractor": Grants(
        "extractor",
        produces=(
            topics.PROGRESSED,
            topics.EXTRACTED,
            topics.FAILED,
            topics.RETRYING,
            topics.DEAD_LETTER,
            *retry_topics("extractor"),
            # Its OCR consumer (same image and user, its own Deployment) reads
            # the requests and answers, and parks ranges on retry topics of its
            # own; the extractor asks and reads the answers.
            *topics.OCR,
            *retry_topics("ocr"),
        ),
        # Cancellations and deletions: every replica follows them, no group.
        reads=(
            topics.UPLOADED,
            topics.RETRIED,
            topics.CANCELLED,
            topics.DELETED,
            *retry_topics("extractor"),
            *topics.OCR,
            *retry_topics("ocr"),
        ),
        groups=principal_name("extractor"),
    ),
    "embedder": Grants(
        "embedder",
        produces=(
            topics.PROGRESSED,
            topics.INDEXED,
            topics.FAILED,
            topics.RETRYING,
            topics.DEAD_LETTER,
            topics.REINDEX_ADVANCED,
            topics.REINDEX_COMPLETED,
            topics.REINDEX_FAILED,
            *retry_topics("embedder"),
        ),
        reads=(
            topics.EXTRACTED,
            topics.CANCELLED,
            topics.DELETED,
            topics.REINDEX_REQUESTED,
            topics.REINDEX_ADVANCED,
            *retry_topics("embedder"),
        ),
        groups=principal_name("embedder"),
    ),
    "status": Grants(
        "status",
        produces=(topics.STALLED, topics.STATUS, topics.DEAD_LETTER),
        # The projection, and `rebuild`'s replay of the same topics; the OCR ranges'
        # places, for how long a scan waits for OCR.
        reads=(*topics.ALL, *topics.REINDEX, topics.OCR_REQUESTED),
        groups=principal_name("status"),
        describes_groups=tuple(
            group for group in topics.CONSUMERS if not group.startswith(principal_name("status"))
        ),
        describes_topics=tuple(
            dict.fromkeys(
                topic
                for read in topics.CONSUMERS.values()
                for topic in read
                if topic not in (*topics.ALL, *topics.REINDEX, topics.OCR_REQUESTED)
            )
        ),
    ),
}


def acl_commands() -> Iterator[list[str]]:
    """``kafka-acls`` arguments (after ``--bootstrap-server ...``) that grant
    ``GRANTS``, a few invocations per service."""
    prefixed = ["--resource-pattern-type", "prefixed"]
    for grants in GRANTS.values():
        allow = ["--add", "--allow-principal", grants.principal]
        writes = [arg for topic in grants.produces for arg in ("--topic", topic)]
        reads = [arg for topic in grants.reads for arg in ("--topic", topic)]
        yield [*allow, "--operation", "Write", "--operation", "Describe", *writes]
        yield [*allow, "--operation", "Read", "--operation", "Describe", *reads]
        if grants.groups:
            yield [*allow, *prefixed, "--operation", "Read", "--group", grants.groups]
        if grants.describes_groups:
            described = [arg for group in grants.describes_groups for arg in ("--group", group)]
            yield [*allow, "--operation", "Describe", *described]
        if grants.describes_topics:
            described = [arg for topic in grants.describes_topics for arg in ("--topic", topic)]
            yield [*allow, "--operation", "Describe", *described]


def strimzi_acls(grants: Grants) -> list[dict[str, Any]]:
    """``grants`` as a Strimzi ``KafkaUser``'s ``spec.authorization.acls``
    (``type: simple``, host ``*``), one rule per resource, for the Helm chart
    (deploy/helm/kafka_access.py) and any manifest that declares the users."""
    operations: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for topic in grants.produces:
        operations["topic", topic, "literal"] |= {"Write", "Describe"}
    for topic in grants.reads:
        operations["topic", topic, "literal"] |= {"Read", "Describe"}
    if grants.groups:
        operations["group", grants.groups, "prefix"] |= {"Read"}
    for group in grants.describes_groups:
        operations["group", group, "literal"] |= {"Describe"}
    for topic in grants.describes_topics:
        operations["topic", topic, "literal"] |= {"Describe"}
    return [
        {
            "resource": {"type": kind, "name": name, "patternType": pattern},
            "operations": sorted(ops),
        }
        for (kind, name, pattern), ops in sorted(operations.items())
    ]


def main() -> None:
    """``python -m docflow_shared.kafka_acls``: the ``kafka-acls.sh`` commands that
    grant docflow's ACLs (give them ``--bootstrap-server`` and, for a secured
    cluster, ``--command-config``)."""
    for args in acl_commands():
        print("kafka-acls.sh --bootstrap-server $BOOTSTRAP " + " ".join(args))


if __name__ == "__main__":
    main()
