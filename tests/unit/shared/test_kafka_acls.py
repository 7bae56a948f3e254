"""The ACL table (kafka_acls.py) grants what the services' wiring uses, and no more
of the commands; tests/integration/test_kafka_security.py has the broker enforce it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from docflow_shared import topics
from docflow_shared.kafka_acls import COMMANDS, GRANTS, acl_commands, strimzi_acls

SCRIPT = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.py"


@pytest.fixture(scope="module")
def wiring(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each service's broker as it runs (docs/asyncapi.py builds them)."""
    spec = importlib.util.spec_from_file_location("docflow_asyncapi_acls", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    brokers = module.brokers(tmp_path_factory.mktemp("wiring"))
    # The OCR consumer connects as the extractor's user, the webhook dispatcher
    # (the last) as the gateway's.
    users = ("gateway", "extractor", "embedder", "status", "extractor", "gateway")
    found: dict[str, list[Any]] = {}
    for user, broker in zip(users, brokers, strict=True):
        found.setdefault(user, []).append(broker)
    return found


def test_every_service_may_use_what_it_is_wired_to(wiring: dict[str, Any]) -> None:
    assert set(GRANTS) == set(wiring)
    for service, broker in ((s, b) for s, brokers in wiring.items() for b in brokers):
        grants = GRANTS[service]
        published = {publisher.topic for publisher in broker.publishers}
        assert published <= set(grants.produces), service
        for sub in broker.subscribers:
            read = {topic.name for topic in sub.topics}
            assert read <= set(grants.reads), (service, read)
            group = sub.group_id
            if group is not None:
                assert grants.groups is not None
                assert group.startswith(grants.groups), (service, group)


def test_the_wiring_uses_every_grant_but_the_non_faststream_reads(wiring: dict[str, Any]) -> None:
    # Granted and not declared in the wiring: the gateway's dead-letter indexer
    # (a plain aiokafka consumer) and its producer (declared on its own broker).
    for service, brokers in wiring.items():
        grants = GRANTS[service]
        read = {t.name for b in brokers for sub in b.subscribers for t in sub.topics}
        assert set(grants.reads) - read <= {topics.DEAD_LETTER}, service
        published = {publisher.topic for b in brokers for publisher in b.publishers}
        assert set(grants.produces) == published, service


def test_only_the_gateway_produces_commands() -> None:
    assert set(COMMANDS) == {
        topics.RETRIED,
        topics.CANCELLED,
        topics.DELETED,
        topics.REINDEX_REQUESTED,
    }
    for service, grants in GRANTS.items():
        assert bool(set(COMMANDS) & set(grants.produces)) is (service == "gateway")
    assert set(COMMANDS) <= set(GRANTS["gateway"].produces)


def test_group_prefixes_do_not_cover_another_services_groups() -> None:
    prefixes = {s: g.groups for s, g in GRANTS.items() if g.groups}
    for service, prefix in prefixes.items():
        for other, other_prefix in prefixes.items():
            if other != service:
                assert not other_prefix.startswith(prefix)
    # The lag gauge's groups are described by the status service only: every
    # group of topics.CONSUMERS it does not read itself, by its literal name.
    assert {s for s, g in GRANTS.items() if g.describes_groups} == {"status"}
    status = GRANTS["status"]
    assert status.groups is not None
    assert set(status.describes_groups) == {
        group for group in topics.CONSUMERS if not group.startswith(status.groups)
    }
    assert status.describes_groups


def test_the_kafka_acls_commands_name_each_principal_and_its_resources() -> None:
    commands = list(acl_commands())
    for service, grants in GRANTS.items():
        mine = [c for c in commands if c[c.index("--allow-principal") + 1] == grants.principal]
        writes = next(c for c in mine if "Write" in c)
        assert [writes[i + 1] for i, a in enumerate(writes) if a == "--topic"] == list(
            grants.produces
        )
        assert not any("--group" in c and "Write" in c for c in mine), service


def test_the_strimzi_acls_grant_the_same() -> None:
    for grants in GRANTS.values():
        acls = strimzi_acls(grants)
        topics_written = {
            a["resource"]["name"]
            for a in acls
            if a["resource"]["type"] == "topic" and "Write" in a["operations"]
        }
        topics_read = {
            a["resource"]["name"]
            for a in acls
            if a["resource"]["type"] == "topic" and "Read" in a["operations"]
        }
        assert topics_written == set(grants.produces)
        assert topics_read == set(grants.reads)
        groups = {
            (a["resource"]["name"], a["resource"]["patternType"], tuple(a["operations"]))
            for a in acls
            if a["resource"]["type"] == "group"
        }
        own = {(grants.groups, "prefix", ("Read",))} if grants.groups else set()
        described = {(g, "literal", ("Describe",)) for g in grants.describes_groups}
        assert groups == own | described
        # One rule per resource, so a chart lists each once.
        resources = [tuple(a["resource"].values()) for a in acls]
        assert len(resources) == len(set(resources))
