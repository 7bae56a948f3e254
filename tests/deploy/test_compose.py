"""docker-compose.yml, without a Docker engine: valid against the Compose
Specification's schema (the one docker compose's loader, compose-go, embeds;
fetched by ``make deploy-tools``), and right by docflow's own rules: health
checks, start order, settings, volumes, object storage, the monitoring
profile, the images."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema_rs
import pytest
import yaml

from support.manifests import ROOT, SETTINGS, locations, variables

pytestmark = pytest.mark.deploy

COMPOSE = ROOT / "docker-compose.yml"
# The four services, the extractor's OCR consumer and the gateway's webhook
# dispatcher, by their compose names: their images.
IMAGES = {name: name for name in SETTINGS} | {"ocr": "extractor", "webhooks": "gateway"}
DOCFLOW = set(IMAGES)
ONE_SHOT = {"topics"}
MONITORING = {"prometheus", "grafana"}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # anchors and merges resolved
    return data


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(open(locations()["compose_schema"]).read())  # noqa: PTH123, SIM115
    validator = jsonschema_rs.validator_for(schema)
    return [
        f"{'/'.join(map(str, e.instance_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_the_file_is_valid_against_the_compose_specification() -> None:
    assert schema_errors(compose()) == []


@pytest.mark.parametrize(
    ("service", "key", "value"),
    [
        ("gateway", "healthcheck", {"test": ["CMD", "true"], "retrys": 3}),
        ("status", "depends_on", {"postgres": {"condition": "service_ready"}}),
        ("kafka", "ports", "9092:9092"),
        ("postgres", "healthcheck", {"test": ["CMD", "true"], "interval": 5}),
    ],
)
def test_the_schema_check_rejects_what_compose_would(service: str, key: str, value: Any) -> None:
    broken = compose()
    broken["services"][service][key] = value
    errors = schema_errors(broken)
    assert errors
    assert all(error.startswith(f"services/{service}") for error in errors), errors


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def test_each_docflow_service_sets_only_its_settings_and_is_built_for_itself() -> None:
    services = compose()["services"]
    assert set(services) >= DOCFLOW | ONE_SHOT | MONITORING | {
        "kafka",
        "postgres",
        "qdrant",
        "seaweedfs",
        "redis",
    }
    for name in DOCFLOW:
        service = services[name]
        assert service["build"]["args"]["SERVICE"] == IMAGES[name]
        known = variables(SETTINGS[IMAGES[name]])
        unknown = set(environment(service)) - known
        assert not unknown, f"{name}: not its settings: {sorted(unknown)}"


def test_every_long_running_service_has_a_health_check_that_matches_its_port() -> None:
    services = compose()["services"]
    for name, service in services.items():
        if name in ONE_SHOT:
            assert "healthcheck" not in service
            continue
        assert "healthcheck" in service, f"{name} has no health check"
        assert service["healthcheck"]["test"], name
    for name in DOCFLOW:
        port = environment(services[name])["DOCFLOW_PORT"]
        test = " ".join(services[name]["healthcheck"]["test"])
        # Readiness (dependencies reachable) decides when dependents start.
        assert f"127.0.0.1:{port}/readyz" in test, name


def test_start_order_waits_for_health_and_for_the_topics() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for needed, how in service.get("depends_on", {}).items():
            assert needed in services, f"{name} depends on unknown {needed}"
            condition = how["condition"]
            if needed in ONE_SHOT:
                assert condition == "service_completed_successfully", (name, needed)
            else:
                assert condition == "service_healthy", (name, needed)
                assert "healthcheck" in services[needed], needed
            # A service outside the monitoring profile never waits for one inside it.
            if not service.get("profiles"):
                assert not services[needed].get("profiles"), (name, needed)
    for name in DOCFLOW:
        assert "topics" in services[name]["depends_on"], name
    topics = services["topics"]
    assert "docflow_shared.kafka_admin" in topics["command"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_volumes_configs_and_mounted_files_exist() -> None:
    data = compose()
    named = set(data.get("volumes", {}))
    used = set()
    for name, service in data["services"].items():
        for mount in service.get("volumes", []):
            source, target = mount.split(":")[:2]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in named, f"{name} uses undeclared volume {source}"
                used.add(source)
            assert target.startswith("/")
        for config in service.get("configs", []):
            assert config["source"] in data["configs"], name
    assert named == used, f"declared but unused: {named - used}"


def test_blobs_are_in_object_storage_not_a_shared_volume() -> None:
    services = compose()["services"]
    store = services["seaweedfs"]
    assert store["image"].startswith("chrislusf/seaweedfs:")
    assert "-bucket=docflow" in store["command"]
    admin = environment(store)
    for name in ("gateway", "extractor", "ocr"):
        service = services[name]
        assert "volumes" not in service, f"{name} keeps files outside object storage"
        env = environment(service)
        assert env["DOCFLOW_BLOB_URL"].startswith("s3://docflow/"), name
        assert env["DOCFLOW_S3_ENDPOINT_URL"] == "http://seaweedfs:8333", name
        # The services present the key pair the server was started with.
        assert env["DOCFLOW_S3_ACCESS_KEY_ID"] == admin["AWS_ACCESS_KEY_ID"], name
        assert env["DOCFLOW_S3_SECRET_ACCESS_KEY"] == admin["AWS_SECRET_ACCESS_KEY"], name
        assert service["depends_on"]["seaweedfs"]["condition"] == "service_healthy", name
    for name in DOCFLOW - {"gateway", "extractor", "ocr"}:
        assert "DOCFLOW_BLOB_URL" not in environment(services[name]), name


def test_every_replica_counts_the_rate_limit_in_the_one_redis() -> None:
    """The gateway and the status service (the two that limit tenants' rates) share
    one Redis, with the password the server requires; the others get no URL."""
    services = compose()["services"]
    redis = services["redis"]
    assert redis["image"].startswith("redis:")
    command = redis["command"]
    password = command[command.index("--requirepass") + 1]
    assert password
    # The health check's redis-cli authenticates with the same password.
    assert environment(redis)["REDISCLI_AUTH"] == password
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name in ("gateway", "status"):
        service = services[name]
        url = environment(service)["DOCFLOW_RATE_LIMIT_STORAGE_URL"]
        assert url == f"redis://:{password}@redis:6379/0", name
        assert service["depends_on"]["redis"]["condition"] == "service_healthy", name
    for name in DOCFLOW - {"gateway", "status"}:
        assert "DOCFLOW_RATE_LIMIT_STORAGE_URL" not in environment(services[name]), name


def test_the_parts_are_the_production_kinds() -> None:
    services = compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in environment(kafka)["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert environment(services["embedder"])["DOCFLOW_QDRANT_URL"].startswith("http://qdrant:")
    for name in ("gateway", "status"):
        assert environment(services[name])["DOCFLOW_DATABASE_URL"].startswith(
            "postgresql+asyncpg://docflow:docflow@postgres:5432/"
        ), name


def test_monitoring_is_a_profile_and_scrapes_the_services_by_their_names() -> None:
    services = compose()["services"]
    for name, service in services.items():
        assert (service.get("profiles") == ["monitoring"]) == (name in MONITORING), name
    mounts = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    for path in (
        "./deploy/prometheus/prometheus.yml",
        "./deploy/prometheus/alerts.yml",
        "./deploy/grafana/provisioning",
        "./deploy/grafana/dashboards",
    ):
        assert path in mounts, path
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target
        for job in scrape["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    # Each service's metrics port, never its API port (which serves no /metrics).
    ports = {name: environment(services[name])["DOCFLOW_METRICS_PORT"] for name in DOCFLOW}
    assert targets == {f"{name}:{port}" for name, port in ports.items()}
    for name in DOCFLOW:
        assert ports[name] != environment(services[name])["DOCFLOW_PORT"], name
        assert "ports" not in services[name] or ports[name] not in str(services[name]["ports"])
    # The dashboards provider reads where the compose file mounts them.
    providers = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards"
    paths = {
        provider["options"]["path"]
        for file in providers.glob("*.y*ml")
        for provider in yaml.safe_load(file.read_text())["providers"]
    }
    assert paths == {"/var/lib/grafana/dashboards"}


def test_the_images_run_as_a_numeric_non_root_user_with_their_own_command() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    final = dockerfile.rsplit("\nFROM ", 1)[1]
    (user,) = re.findall(r"^USER (\S+)$", final, re.M)
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    assert "--no-dev" in dockerfile
    for name in SETTINGS:
        project = (ROOT / "services" / name / "pyproject.toml").read_text()
        assert f'docflow-{name} = "docflow_{name}.__main__:main"' in project, name
    # Kubernetes runs the same user.
    k8s = (ROOT / "deploy" / "helm" / "docflow" / "templates" / "workloads.yaml").read_text()
    assert f"runAsUser: {uid}" in k8s
