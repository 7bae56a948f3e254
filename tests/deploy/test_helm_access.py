"""Who may reach what, as the chart renders it: each service's Kafka user may only
read and write its own topics and groups (checked against the topic table of
docs/architecture.md and the services' wiring), one public host routes each
API path to the service that serves it, NetworkPolicies close the embedder's
port to all but the gateway and each metrics port to all but Prometheus, and
the Prometheus Operator objects carry the
same rules, job names and dashboard as deploy/prometheus and deploy/grafana."""

from __future__ import annotations

import importlib.util
import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from fastapi import FastAPI

from docflow_gateway.entrypoints.app import router as gateway_router
from docflow_shared import topics
from docflow_shared.kafka_acls import GRANTS, strimzi_acls
from docflow_status.entrypoints.app import router as status_router
from support.manifests import (
    ROOT,
    Doc,
    by_name,
    documents,
    kubeconform,
    of_kind,
    render,
    subscriptions,
)

pytestmark = pytest.mark.deploy

SERVICES = ("gateway", "extractor", "embedder", "status")
# Commands: what a client asks through the gateway (retry and re-drive,
# cancel, delete, reindex). No other service may write them.
COMMANDS = {topics.RETRIED, topics.CANCELLED, topics.DELETED, topics.REINDEX_REQUESTED}
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "docflow.json"
AN_ID = "0190f1de-7a3b-7c4d-8e5f-a0b1c2d3e4f5"


def user_subscriptions() -> dict[str, frozenset[tuple[str | None, str]]]:
    """Each Kafka user's (consumer group, topic) pairs: the OCR consumer connects
    as the extractor's user, the webhook dispatcher as the gateway's."""
    wiring = dict(subscriptions())
    wiring["extractor"] = wiring["extractor"] | wiring.pop("ocr")
    wiring["gateway"] = wiring["gateway"] | wiring.pop("webhooks")
    return wiring


def acls_of(docs: list[Doc]) -> dict[str, dict[tuple[str, str, str], set[str]]]:
    """Each service's KafkaUser as {(resource type, name, pattern type): operations}."""
    found: dict[str, dict[tuple[str, str, str], set[str]]] = {}
    for name, user in by_name(docs, "KafkaUser").items():
        service = name.removeprefix("docflow-")
        rules: dict[tuple[str, str, str], set[str]] = {}
        for acl in user["spec"]["authorization"]["acls"]:
            resource = acl["resource"]
            key = (resource["type"], resource["name"], resource["patternType"])
            # No wildcards; the one prefix is the service's own groups.
            assert key[2] == "literal" or key == ("group", name, "prefix"), acl
            assert acl.get("type", "allow") == "allow"
            assert "All" not in acl["operations"]
            rules.setdefault(key, set()).update(acl["operations"])
        found[service] = rules
    return found


def test_the_users_acls_are_the_table_the_secured_broker_enforces() -> None:
    """One source of truth: the rendered KafkaUsers carry kafka_acls.GRANTS, the
    table tests/integration/test_kafka_security.py applies to a real broker."""
    users = by_name(documents(render("production")), "KafkaUser")
    assert set(users) == {grants.user for grants in GRANTS.values()}
    for grants in GRANTS.values():
        rendered = users[grants.user]["spec"]["authorization"]["acls"]
        assert rendered == strimzi_acls(grants), grants.service


def _split_top_level(cell: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in cell:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()]


def table_writers() -> dict[str, set[str]]:
    """Topic -> the services that produce it, from the table in docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("### Topics, producers and consumers", 1)[1].split("\n\n| topic", 1)[1]
    rows = [line for line in section.split("\n\n", 1)[0].splitlines() if line.startswith("| `")]
    writers: dict[str, set[str]] = {}
    for row in rows:
        topic_cell, _event, produced, _consumed = [c.strip() for c in row.strip("|").split(" | ")]
        names = re.findall(r"`([^`]+)`", topic_cell)
        stem = names[0].rsplit(".", 2)[0]
        names = [stem + name if name.startswith(".") else name for name in names]
        taken: set[str] = set()
        for producer in _split_top_level(produced):
            service, _, qualifier = producer.partition(" (")
            assert service in SERVICES, (row, service)
            qualifier = qualifier.rstrip(")")
            if names == ["docflow.retry.<service>.<n>.v1"]:
                # The gateway's webhook dispatcher parks on the "webhooks" retry topics.
                parker = "webhooks" if qualifier.startswith("webhooks") else service
                mine = {topics.retry_topic(parker, n) for n in range(topics.RETRY_LEVELS)}
                if "OCR consumer" in qualifier:  # its own retry topics, the extractor's user
                    mine |= {topics.retry_topic("ocr", n) for n in range(topics.RETRY_LEVELS)}
            elif qualifier == "the rest":
                mine = set(names) - taken
            elif any(f".{qualifier}." in name for name in names):
                mine = {name for name in names if f".{qualifier}." in name}
            else:
                mine = set(names)
            taken |= mine
            for name in mine:
                writers.setdefault(name, set()).add(service)
    return writers


def test_the_generated_kafka_file_is_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "kafka_access", ROOT / "deploy" / "helm" / "kafka_access.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.OUTPUT.read_text() == module.document(), "run `make chart-files`"


def test_each_user_writes_what_the_topic_table_says_it_produces() -> None:
    acls = acls_of(documents(render("production")))
    assert set(acls) == set(SERVICES)
    writers = table_writers()
    assert set(writers) == {spec.name for spec in topics.specs()}
    for service, rules in acls.items():
        written = {
            name for (kind, name, _), ops in rules.items() if kind == "topic" and "Write" in ops
        }
        assert written == {t for t, who in writers.items() if service in who}, service
    for command in COMMANDS:
        assert {
            s
            for s, rules in acls.items()
            if "Write" in rules.get(("topic", command, "literal"), ())
        } == {"gateway"}, command


def test_each_user_reads_only_its_subscriptions_in_its_own_groups() -> None:
    acls = acls_of(documents(render("production")))
    wiring = user_subscriptions()
    prefixes = {
        service: {name for (kind, name, pattern) in rules if (kind, pattern) == ("group", "prefix")}
        for service, rules in acls.items()
    }
    for service, rules in acls.items():
        read = {name for (kind, name, _), ops in rules.items() if kind == "topic" and "Read" in ops}
        expected = {topic for _, topic in wiring[service]}
        if service == "gateway":
            expected.add(topics.DEAD_LETTER)  # GET /v1/deadletters, re-drives
        assert read == expected, service
        # The groups it joins: those that start with docflow-<service>, which
        # covers every group it is wired to and no other service's.
        joined = {
            (name, pattern)
            for (kind, name, pattern), ops in rules.items()
            if kind == "group" and "Read" in ops
        }
        wired = {group for group, _ in wiring[service] if group}
        assert joined == ({(f"docflow-{service}", "prefix")} if wired else set()), service
        for other, groups in wiring.items():
            for group, _ in groups:
                if group:
                    covered = any(group.startswith(prefix) for prefix in prefixes[service])
                    assert covered is (other == service), (service, group)
        # Only the status service looks at other groups' offsets (its lag
        # gauge), each by its name.
        described = {
            name
            for (kind, name, pattern), ops in rules.items()
            if kind == "group" and ops == {"Describe"} and pattern == "literal"
        }
        others = {g for g in topics.CONSUMERS if not g.startswith(f"docflow-{service}")}
        assert described == (others if service == "status" else set()), service


def route(http_route: Doc, method: str, path: str) -> str:
    """Where the HTTPRoute sends a request: Gateway API's precedence (the longest
    matching path, then a match that names the method); a RegularExpression
    match ahead of every PathPrefix one (Gateway API leaves that order to the
    implementation: the chart's comment says so)."""
    elements = [p for p in path.split("/") if p]
    best: tuple[int, int, str] | None = None
    for rule in http_route["spec"]["rules"]:
        for match in rule["matches"]:
            if match.get("method", method) != method:
                continue
            if match["path"]["type"] == "RegularExpression":
                if not re.fullmatch(match["path"]["value"], path):
                    continue
                rank = (10_000, "method" in match)
            else:
                assert match["path"]["type"] == "PathPrefix"
                prefix = [p for p in match["path"]["value"].split("/") if p]
                if elements[: len(prefix)] != prefix:
                    continue
                rank = (len(match["path"]["value"].rstrip("/")), "method" in match)
            if best is None or rank > best[:2]:
                (backend,) = rule["backendRefs"]
                best = (*rank, backend["name"])
    assert best is not None, (method, path)
    return best[2]


def api_routes() -> list[tuple[str, str, str]]:
    """(method, concrete path, the Service that serves it) for every API route."""
    found = [("GET", "/", "docflow-gateway")]  # the web page
    for router, service in ((gateway_router, "docflow-gateway"), (status_router, "docflow-status")):
        app = FastAPI()
        app.include_router(router)
        for template, operations in app.openapi()["paths"].items():
            path = re.sub(r"\{[^}]+\}", AN_ID, template)
            found += [(method.upper(), path, service) for method in sorted(operations)]
    return found


def test_one_public_host_routes_each_request_to_the_service_that_serves_it() -> None:
    docs = documents(render("production"))
    (http_route,) = of_kind(docs, "HTTPRoute")
    public = urlsplit(
        by_name(docs, "ConfigMap")["docflow-config"]["data"]["DOCFLOW_STATUS_PUBLIC_URL"]
    )
    assert public.scheme == "https"
    assert http_route["spec"]["hostnames"] == [public.hostname]
    routes = api_routes()
    assert ("GET", f"/v1/documents/{AN_ID}", "docflow-status") in routes
    assert ("DELETE", f"/v1/documents/{AN_ID}", "docflow-gateway") in routes
    assert ("GET", f"/v1/documents/{AN_ID}/stream", "docflow-status") in routes
    for method, path, service in routes:
        assert route(http_route, method, path) == service, (method, path)
    services = by_name(docs, "Service")
    for rule in http_route["spec"]["rules"]:
        for backend in rule["backendRefs"]:
            assert backend["port"] in {
                p["port"] for p in services[backend["name"]]["spec"]["ports"]
            }
    # The CORS origin the status service allows is the same host.
    allowed = json.loads(
        by_name(docs, "ConfigMap")["docflow-config"]["data"]["DOCFLOW_CORS_ORIGINS"]
    )
    assert allowed == [f"{public.scheme}://{public.netloc}"]


def test_the_ingress_sends_the_status_service_only_paths_it_alone_serves() -> None:
    docs = documents(render("production"))
    (ingress,) = of_kind(docs, "Ingress")
    (rule,) = ingress["spec"]["rules"]  # no statusHost: the HTTPRoute routes by method
    assert rule["host"] == "docflow.example.com"
    routes = api_routes()
    for item in rule["http"]["paths"]:
        backend = item["backend"]["service"]["name"]
        if item["pathType"] == "Exact":
            served = {service for _, path, service in routes if path == item["path"]}
            assert served == {backend}, item
        else:
            assert (item["path"], backend) == ("/", "docflow-gateway")


def ingress_rules(policy: Doc, port: int) -> list[Doc]:
    return [r for r in policy["spec"]["ingress"] if port in {p["port"] for p in r["ports"]}]


def ports_of(deployment: Doc) -> dict[str, int]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def test_only_the_gateway_reaches_the_embedders_port() -> None:
    """Its port (/internal/search) from the gateway's pods and nothing else, not
    even Prometheus, which scrapes the metrics port (and only that)."""
    docs = documents(render("production"))
    policies = by_name(docs, "NetworkPolicy")
    deployments = by_name(docs, "Deployment")
    embedder = policies["docflow-embedder"]
    embedder_pod = deployments["docflow-embedder"]["spec"]["template"]["metadata"]["labels"]
    assert embedder["spec"]["podSelector"]["matchLabels"].items() <= embedder_pod.items()
    assert embedder["spec"]["policyTypes"] == ["Ingress"]
    rules = embedder["spec"]["ingress"]
    assert rules
    assert all(rule.get("from") for rule in rules), "no rule open to every pod"
    assert ports_of(deployments["docflow-embedder"]) == {"http": 8003, "metrics": 9003}
    pods = []
    for rule in ingress_rules(embedder, 8003):
        assert [p["port"] for p in rule["ports"]] == [8003]
        for peer in rule["from"]:
            assert set(peer) == {"podSelector"}, peer
            pods.append(peer)
    selected = {
        name
        for name, d in deployments.items()
        for peer in pods
        if peer["podSelector"]["matchLabels"].items()
        <= d["spec"]["template"]["metadata"]["labels"].items()
    }
    assert selected == {"docflow-gateway"}


def test_only_prometheus_reaches_the_metrics_ports_and_they_alone() -> None:
    """Every workload serves /metrics on a port of its own (DOCFLOW_METRICS_PORT):
    its policy admits Prometheus' namespace there, and nowhere else."""
    docs = documents(render("production"))
    policies = by_name(docs, "NetworkPolicy")
    prometheus = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    for name, deployment in by_name(docs, "Deployment").items():
        ports = ports_of(deployment)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["DOCFLOW_METRICS_PORT"] == str(ports["metrics"]), name
        assert ports["metrics"] != ports["http"], name
        policy = policies[name]
        rules = policy["spec"]["ingress"]
        assert [r["from"] for r in ingress_rules(policy, ports["metrics"])] == [prometheus], name
        for rule in ingress_rules(policy, ports["http"]):
            assert rule.get("from") != prometheus, name
            assert ports["metrics"] not in {p["port"] for p in rule["ports"]}, name
        assert all(
            {p["port"] for p in r["ports"]} <= {ports["http"], ports["metrics"]} for r in rules
        ), name
        if name in {"docflow-extractor", "docflow-status-projector"}:
            assert not ingress_rules(policy, ports["http"]), name  # no caller at all


def test_only_the_services_reach_kafka_postgresql_and_qdrant() -> None:
    docs = documents(render("production"))
    policies = by_name(docs, "NetworkPolicy")
    deployments = by_name(docs, "Deployment")
    labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}
    expected_ports = {
        "kafka": {9093},
        "postgresql": {5432},
        "qdrant": {6333, 6334},
        "redis": {6379},
    }
    for dependency, ports in expected_ports.items():
        policy = policies[f"docflow-{dependency}-clients"]
        (rule,) = policy["spec"]["ingress"]
        assert {p["port"] for p in rule["ports"]} == ports
        pod_peers = [p for p in rule["from"] if "podSelector" in p]
        (docflow,) = pod_peers
        # It selects every docflow pod and no pod of the dependency itself.
        assert all(
            docflow["podSelector"]["matchLabels"].items() <= pod.items() for pod in labels.values()
        )
        assert (
            not policy["spec"]["podSelector"]["matchLabels"].items()
            <= docflow["podSelector"]["matchLabels"].items()
        )
        others = [p for p in rule["from"] if "podSelector" not in p]
        assert others == (
            [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}}]
            if dependency == "kafka"
            else []
        )


def jobs_selected(text: str) -> set[str]:
    """The job names PromQL selects in ``text`` (job="x", job=~"a|b")."""
    found: set[str] = set()
    for value in re.findall(r'job=~?\\?"([^"\\]+)\\?"', text):
        found |= set(value.split("|"))
    return found


def test_the_prometheus_rule_is_alerts_yml() -> None:
    docs = documents(render("production"))
    (rule,) = of_kind(docs, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text())


def test_the_service_monitor_gives_the_job_names_the_alerts_and_dashboard_select() -> None:
    docs = documents(render("production"))
    (monitor,) = of_kind(docs, "ServiceMonitor")
    label = monitor["spec"]["jobLabel"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [
        s for s in of_kind(docs, "Service") if selector.items() <= s["metadata"]["labels"].items()
    ]
    assert len(selected) == len(of_kind(docs, "Deployment"))  # every service is scraped
    jobs = {s["metadata"]["labels"][label] for s in selected}
    # The OCR consumer and the webhook dispatcher: a job of their own each.
    assert jobs == {*SERVICES, "ocr", "webhooks"}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == {"metrics"}
    assert {e["path"] for e in monitor["spec"]["endpoints"]} == {"/metrics"}
    deployments = of_kind(docs, "Deployment")
    for service in selected:
        (metrics,) = [p for p in service["spec"]["ports"] if p["name"] == "metrics"]
        # Its target is the metrics port of the pods it selects.
        pods = [
            d
            for d in deployments
            if service["spec"]["selector"].items()
            <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert pods
        for pod in pods:
            assert metrics["targetPort"] == "metrics"
            assert ports_of(pod)["metrics"] == metrics["port"]
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert {job["job_name"] for job in prometheus["scrape_configs"]} == jobs
    # The alerts group by job (their unit test's series name the jobs they
    # expect); the dashboard selects by job.
    in_alert_tests = jobs_selected((ALERTS.parent / "alerts_test.yml").read_text())
    selected_by_dashboard = jobs_selected(DASHBOARD.read_text())
    assert "by (job)" in ALERTS.read_text()
    assert in_alert_tests
    assert selected_by_dashboard
    assert in_alert_tests | selected_by_dashboard <= jobs


def test_the_dashboard_ships_as_a_configmap_with_a_datasource_variable() -> None:
    docs = documents(render("production"))
    config_map = by_name(docs, "ConfigMap")["docflow-dashboard"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard: dict[str, Any] = json.loads(config_map["data"]["docflow.json"])
    assert dashboard == json.loads(DASHBOARD.read_text())
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    uids = set(re.findall(r'"uid": "([^"]*)"', DASHBOARD.read_text())) - {dashboard["uid"]}
    assert uids == {"${" + variable["name"] + "}"}


def test_without_an_httproute_the_ingress_can_give_the_status_api_its_own_host() -> None:
    sets = ("gatewayApi.enabled=false", "ingress.statusHost=status.example.com")
    docs = documents(render("production", *sets))
    assert not of_kind(docs, "HTTPRoute")
    data = by_name(docs, "ConfigMap")["docflow-config"]["data"]
    status_url = urlsplit(data["DOCFLOW_STATUS_PUBLIC_URL"])
    assert status_url.hostname == "status.example.com"
    # The web page on the public host may still read it (CORS).
    assert json.loads(data["DOCFLOW_CORS_ORIGINS"]) == ["https://docflow.example.com"]
    (ingress,) = of_kind(docs, "Ingress")
    rules = {rule["host"]: rule["http"]["paths"] for rule in ingress["spec"]["rules"]}
    (everything,) = rules["status.example.com"]
    assert (everything["path"], everything["pathType"]) == ("/", "Prefix")
    assert everything["backend"]["service"]["name"] == "docflow-status"
    assert ingress["spec"]["tls"][0]["hosts"] == ["docflow.example.com", "status.example.com"]
    valid = kubeconform(render("production", *sets))
    assert valid.returncode == 0, valid.stdout


def test_the_webhook_dispatcher_reaches_the_internet_but_not_the_private_ranges() -> None:
    """It sends requests to URLs tenants chose: its egress is DNS, this namespace's
    pods (Kafka, PostgreSQL) and public addresses; the private, loopback and
    link-local ranges (the cluster, the nodes, the metadata service) are out
    unless ``extraTo`` lets a peer in. No other workload's egress is restricted."""
    docs = documents(render("production"))
    policies = by_name(docs, "NetworkPolicy")
    egress = {n: p for n, p in policies.items() if "Egress" in p["spec"]["policyTypes"]}
    assert set(egress) == {"docflow-webhooks-egress"}
    policy = egress["docflow-webhooks-egress"]
    pod = by_name(docs, "Deployment")["docflow-webhooks"]["spec"]["template"]["metadata"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["labels"].items()
    dns, namespace, internet = policy["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert namespace == {"to": [{"podSelector": {}}]}
    blocks = {peer["ipBlock"]["cidr"]: set(peer["ipBlock"]["except"]) for peer in internet["to"]}
    assert set(blocks) == {"0.0.0.0/0", "::/0"}
    private = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8"}
    assert private <= blocks["0.0.0.0/0"]
    assert {"fc00::/7", "fe80::/10", "::1/128"} <= blocks["::/0"]
    extra = {"ipBlock": {"cidr": "10.20.0.0/16"}}
    allowed = documents(
        render("production", "networkPolicy.webhooksEgress.extraTo[0].ipBlock.cidr=10.20.0.0/16")
    )
    (_, namespace, _) = by_name(allowed, "NetworkPolicy")["docflow-webhooks-egress"]["spec"][
        "egress"
    ]
    assert namespace["to"] == [{"podSelector": {}}, extra]
