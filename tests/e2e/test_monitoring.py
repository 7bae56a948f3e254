"""Prometheus and Grafana files (deploy/prometheus, deploy/grafana) against the real
tools: promtool checks the configuration and the alert rules and runs their unit
tests; a real Prometheus (Debian's package) scrapes the running services while a
few documents go through, and every query of the Grafana dashboard returns data.
Each service serves /metrics on a port of its own (DOCFLOW_METRICS_PORT), as in
Compose and the chart, and not on its API port.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from docflow_local.processes import free_port, spawn, stop
from docflow_local.stack import Stack
from support.corpus import REPO_ROOT, expectations
from support.openai_server import EmbeddingsServer
from support.stacks import running_stack

pytestmark = pytest.mark.e2e

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "docflow.json"
ARTIFACTS = REPO_ROOT / ".artifacts" / "e2e" / "monitoring"
# Grafana's $__rate_interval is at least four scrape intervals: here, of 1 s.
RATE_INTERVAL = "30s"
# One that completes, one that fails (encrypted), one Markdown file.
FILES = ["minimal-document.pdf", "libreoffice-writer-password.pdf", "000_e21e99f4fa213ba2.md"]


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: make test installs Debian's prometheus package")
    return found


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, cwd=PROMETHEUS_DIR, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_promtool_accepts_the_configuration_and_the_rules() -> None:
    promtool = _tool("promtool")
    assert "SUCCESS" in _run(promtool, "check", "config", "prometheus.yml")
    assert "SUCCESS: 7 rules found" in _run(promtool, "check", "rules", "alerts.yml")


def test_the_alerts_fire_when_they_should() -> None:
    """promtool's unit tests of the rules (alerts_test.yml): each alert on series that
    must fire it, at the right time and with its labels and summary."""
    promtool = _tool("promtool")
    assert "SUCCESS" in _run(promtool, "test", "rules", "alerts_test.yml")


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, server: EmbeddingsServer
) -> Iterator[Stack]:
    with running_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("monitoring") / "data",
        ARTIFACTS / "logs",
        extra_env={**server.embedder_env(), "DOCFLOW_WATCHDOG_EVERY_S": "2"},
        metrics_ports=True,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus with deploy/prometheus/prometheus.yml's jobs and rules, its targets
    pointed at the running services' metrics ports, scraping every second."""
    home = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config["rule_files"]]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [stack.service(job["job_name"]).metrics_target]}]
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = spawn(
        [
            _tool("prometheus"),
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        log=home / "prometheus.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, "ready")
        jobs = len(config["scrape_configs"])  # the four services and the OCR consumer
        _wait(lambda: len(_up(url)) == jobs, "every service scraped")
        yield url
    finally:
        stop([process], 10)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(home / "prometheus.log", ARTIFACTS / "prometheus.log")


def _wait(condition: Any, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"Prometheus: not {what} after {timeout_s} s")


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _up(url: str) -> set[str]:
    return {r["metric"]["job"] for r in _query(url, "up == 1")}


@pytest.fixture(scope="module")
def documents(stack: Stack, prometheus: str) -> dict[str, str]:
    """A few documents through the system while Prometheus watches: filename → status."""
    paths = {e.path.name: e.path for e in expectations()}
    outcome: dict[str, str] = {}
    with httpx.Client(timeout=30) as http:
        urls = {}
        for name in FILES:
            answer = http.post(
                f"{stack.url('gateway')}/v1/documents?dedup=false",
                files={"file": (name, paths[name].read_bytes())},
            )
            assert answer.status_code == 202, answer.text
            urls[name] = answer.json()["documents"][0]["status_url"]
        deadline = time.monotonic() + 120
        while len(outcome) < len(urls) and time.monotonic() < deadline:
            for name, url in urls.items():
                status = http.get(url).json()["status"]
                if status in ("completed", "failed"):
                    outcome[name] = status
            time.sleep(0.5)
    # Scrapes after the last document, and a watchdog round (every 2 s here).
    time.sleep(5)
    return outcome


def test_every_dashboard_query_returns_data(prometheus: str, documents: dict[str, str]) -> None:
    assert documents == {
        "minimal-document.pdf": "completed",
        "libreoffice-writer-password.pdf": "failed",
        "000_e21e99f4fa213ba2.md": "completed",
    }
    dashboard = json.loads(DASHBOARD.read_text())
    empty, answered = [], {}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", RATE_INTERVAL)
            result = _query(prometheus, expr)
            answered[f"{panel['title']} / {target['legendFormat']}"] = len(result)
            if not result:
                empty.append(f"{panel['title']}: {expr}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "dashboard-queries.json").write_text(json.dumps(answered, indent=2) + "\n")
    assert not empty, "queries with no data:\n" + "\n".join(empty)


def test_the_figures_are_the_documents_that_went_through(
    prometheus: str, documents: dict[str, str]
) -> None:
    def value(expr: str) -> float:
        [sample] = _query(prometheus, expr)
        return float(sample["value"][1])

    # Counters as scraped (increase() misses what a series held at its first scrape).
    uploads = (
        'sum(http_requests_total{job="gateway",handler="/v1/documents",method="POST",status="2xx"})'
    )
    assert value(uploads) == len(FILES)
    # The status service projects the session's topics, so other tests' documents
    # may be counted too (at least ours are).
    assert value('sum(docflow_document_duration_seconds_count{outcome="failed"})') >= 1
    assert value('sum(docflow_document_duration_seconds_count{outcome="completed"})') >= 2
    assert value("sum(docflow_chunks_embedded_total)") > 0
    assert value('count(up{job=~"gateway|status|extractor|embedder"} == 1)') == 4


def test_metrics_are_served_on_their_own_port_only(stack: Stack, prometheus: str) -> None:
    """What lets a NetworkPolicy admit Prometheus to the metrics port alone: the
    API ports (the embedder's /internal/search above all) serve no /metrics."""
    for service in stack.services:
        assert service.metrics_port is not None
        assert service.metrics_port != service.port
        assert httpx.get(f"{service.url}/metrics", timeout=5).status_code == 404, service.name
        assert httpx.get(f"{service.url}/healthz", timeout=5).status_code == 200, service.name
        scraped = httpx.get(f"http://{service.metrics_target}/metrics", timeout=5)
        assert scraped.status_code == 200, service.name
        assert "# TYPE" in scraped.text, service.name
    targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]
    scraped_at = {t["labels"]["job"]: t["scrapeUrl"] for t in targets["activeTargets"]}
    assert scraped_at == {s.name: f"http://{s.metrics_target}/metrics" for s in stack.services}


def test_the_alert_rules_evaluate_on_the_live_metrics(prometheus: str) -> None:
    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == 7
    assert {rule["health"] for rule in rules} == {"ok"}, rules
    assert {rule["name"] for rule in rules} == {
        "DocflowDocumentsStalled",
        "DocflowDeadLettersGrowing",
        "DocflowConsumerLagHigh",
        "DocflowErrorRatioHigh",
        "DocflowUntrustedEvents",
        "DocflowWebhooksFailing",
    }
