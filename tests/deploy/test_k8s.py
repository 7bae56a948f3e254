"""deploy/k8s: every overlay renders (kustomize), is valid against the Kubernetes,
KEDA and Strimzi schemas in strict mode (kubeconform, offline), and agrees with
the code: topics, consumer groups, partitions, settings, shutdown bound."""

from __future__ import annotations

import re

import pytest

from docflow_shared import topics
from docflow_shared.settings import ServiceSettings
from support.manifests import (
    K8S,
    OVERLAYS,
    SETTINGS,
    Doc,
    by_name,
    documents,
    kubeconform,
    of_kind,
    render,
    service_of,
    subscriptions,
    variables,
)

pytestmark = pytest.mark.deploy

SUMMARY = re.compile(
    r"Summary: (\d+) resources? found .* "
    r"Valid: (\d+), Invalid: (\d+), Errors: (\d+), Skipped: (\d+)"
)
# The consumers scaled on lag, and the group of their main work, the first
# trigger (the retry groups wait for due times, docflow-embedder-reindex runs
# one long operation).
CONSUMERS = {"extractor": "docflow-extractor", "embedder": "docflow-embedder"}
PROJECTOR_GROUP = "docflow-status"


def test_there_are_dev_and_production_overlays() -> None:
    assert {"dev", "production"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlay_is_valid_in_strict_mode(overlay: str) -> None:
    text = render(overlay)
    result = kubeconform(text)
    print(f"{overlay}: {result.stdout.strip()}")
    assert result.returncode == 0, result.stdout + result.stderr
    found = SUMMARY.search(result.stdout)
    assert found, result.stdout
    resources, valid, invalid, errors, skipped = map(int, found.groups())
    # Skipped would mean a kind without a schema: every kind is checked.
    assert (invalid, errors, skipped) == (0, 0, 0), result.stdout
    assert resources == valid == len(documents(text))
    assert {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"} <= {
        doc["kind"] for doc in documents(text)
    }


def test_the_production_secret_template_is_valid() -> None:
    text = (K8S / "overlays" / "production" / "secret.template.yaml").read_text()
    result = kubeconform(text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid: 1, Invalid: 0, Errors: 0, Skipped: 0" in result.stdout


def test_kubeconform_rejects_what_the_schemas_forbid() -> None:
    """The schemas are real and strict: an unknown field in a Deployment, a KEDA
    ScaledObject and a Strimzi KafkaTopic, and a wrong type, are each reported."""
    text = render("production")
    broken = (
        text.replace(
            "terminationGracePeriodSeconds: 40",
            "terminationGracePeriodSeconds: 40\n      graceSeconds: 1",
            1,
        )
        .replace("  maxReplicaCount: 6", "  maxReplicaCount: 6\n  maxReplicas: 6", 1)
        .replace("  partitions: 6", "  partitions: 6\n  partition: 6", 1)
        .replace("  minReplicas: 2", "  minReplicas: two", 1)
    )
    result = kubeconform(broken)
    assert result.returncode != 0
    found = SUMMARY.search(result.stdout)
    assert found, result.stdout
    assert int(found.group(3)) == 4, result.stdout
    for kind in ("Deployment", "ScaledObject", "KafkaTopic", "HorizontalPodAutoscaler"):
        assert f"- {kind} " in result.stdout, (kind, result.stdout)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_topic_is_a_kafka_topic_as_topics_specs_says(overlay: str) -> None:
    kafka_topics = {
        doc["spec"].get("topicName", doc["metadata"]["name"]): doc["spec"]
        for doc in of_kind(documents(render(overlay)), "KafkaTopic")
    }
    specs = {spec.name: spec for spec in topics.specs()}
    named = {*topics.ALL, *topics.REINDEX, *topics.RETRY, topics.DEAD_LETTER, topics.STATUS}
    assert named <= set(specs)
    assert set(kafka_topics) == set(specs), "run `make k8s-topics`"
    for name, spec in specs.items():
        declared = kafka_topics[name]
        assert declared["partitions"] == spec.partitions, name
        for key, value in spec.config.items():
            assert str(declared["config"].get(key)) == value, (name, key)
        # acks=all must be satisfiable: never more in-sync copies than copies.
        min_isr = int(declared["config"].get("min.insync.replicas", 1))
        assert 1 <= min_isr <= declared["replicas"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_consumer_scales_on_its_real_groups_within_the_partitions(overlay: str) -> None:
    docs = documents(render(overlay))
    deployments = by_name(docs, "Deployment")
    partitions = {
        doc["spec"].get("topicName", doc["metadata"]["name"]): doc["spec"]["partitions"]
        for doc in of_kind(docs, "KafkaTopic")
    }
    wiring = subscriptions()
    scaled: dict[str, Doc] = {}
    for scaled_object in of_kind(docs, "ScaledObject"):
        target = deployments[scaled_object["spec"]["scaleTargetRef"]["name"]]
        service = service_of(target)
        scaled[target["metadata"]["name"]] = scaled_object
        triggers = scaled_object["spec"]["triggers"]
        assert triggers
        for trigger in triggers:
            assert trigger["type"] == "kafka"
            meta = trigger["metadata"]
            pair = (meta["consumerGroup"], meta["topic"])
            assert pair in wiring[service], f"{service} has no consumer {pair}"
            assert scaled_object["spec"]["maxReplicaCount"] <= partitions[meta["topic"]], pair
            assert meta["offsetResetPolicy"] == "earliest"  # auto_offset_reset in messaging.py
        # Every topic the service's working groups read has a trigger.
        assert {(t["metadata"]["consumerGroup"], t["metadata"]["topic"]) for t in triggers} == {
            (g, topic) for g, topic in wiring[service] if g in topics.CONSUMERS
        }
    by_service = {service_of(deployments[name]): so for name, so in scaled.items()}
    assert set(by_service) == {"extractor", "embedder", "status"}
    for service, group in CONSUMERS.items():
        assert by_service[service]["spec"]["triggers"][0]["metadata"]["consumerGroup"] == group
    projector = by_service["status"]
    assert projector["spec"]["triggers"][0]["metadata"]["consumerGroup"] == PROJECTOR_GROUP
    projector_env = env_of(deployments[projector["spec"]["scaleTargetRef"]["name"]])
    assert projector_env["DOCFLOW_STATUS_ROLE"] == "projector"


def env_of(deployment: Doc) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value", "<from secret>") for item in container.get("env", [])}


def config(docs: list[Doc]) -> dict[str, str]:
    (config_map,) = of_kind(docs, "ConfigMap")
    assert config_map["metadata"]["name"].startswith("docflow-config")
    data: dict[str, str] = config_map["data"]
    return data


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configuration_sets_only_real_settings(overlay: str) -> None:
    docs = documents(render(overlay))
    every = set().union(*(variables(settings) for settings in SETTINGS.values()))
    unknown = set(config(docs)) - every
    assert not unknown, f"not a setting of any service: {sorted(unknown)}"
    # A Deployment's own variables are its service's settings (or BLAS threads).
    for name, deployment in by_name(docs, "Deployment").items():
        own = variables(SETTINGS[service_of(deployment)])
        for variable in env_of(deployment):
            assert variable in own or not variable.startswith(("DOCFLOW_", "KAFKA_")), (
                name,
                variable,
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployments_probe_stop_and_size_as_the_services_need(overlay: str) -> None:
    docs = documents(render(overlay))
    settings = config(docs)
    shutdown_s = float(
        settings.get(
            "DOCFLOW_SHUTDOWN_TIMEOUT_S", ServiceSettings.model_fields["shutdown_timeout_s"].default
        )
    )
    services = by_name(docs, "Service")
    budgets = of_kind(docs, "PodDisruptionBudget")
    deployments = by_name(docs, "Deployment")
    assert {service_of(d) for d in deployments.values()} == set(SETTINGS)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        # Liveness is the process alone; readiness asks the dependencies.
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        pause = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        assert pod["terminationGracePeriodSeconds"] > pause + shutdown_s, name
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)
        assert pod["securityContext"]["runAsNonRoot"] is True
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selects = [s for s in services.values() if s["spec"]["selector"].items() <= labels.items()]
        assert selects, f"no Service for {name}"
        port = container["ports"][0]["containerPort"]
        assert env_of(deployment)["DOCFLOW_PORT"] == str(port)
        assert [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ], f"no PodDisruptionBudget for {name}"
    hpa_targets = {
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")
    }
    assert {service_of(deployments[n]) for n in hpa_targets} == {"gateway", "status"}
    assert all(
        env_of(deployments[n]).get("DOCFLOW_STATUS_ROLE", "api") == "api"
        for n in hpa_targets
        if "status" in n
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_shared_state_lives_in_servers_and_a_read_write_many_volume(overlay: str) -> None:
    docs = documents(render(overlay))
    settings = config(docs)
    # Qdrant's local mode is one process's: replicas need the server.
    assert settings["DOCFLOW_QDRANT_URL"].startswith("http")
    assert "DOCFLOW_QDRANT_PATH" not in settings
    deployments = by_name(docs, "Deployment")
    for deployment in deployments.values():
        service = service_of(deployment)
        env = env_of(deployment)
        if service in ("gateway", "status"):
            # SQLite files cannot be shared by replicas: PostgreSQL from the Secret.
            assert env["DOCFLOW_DATABASE_URL"] == "<from secret>"
    (claim,) = of_kind(docs, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    mounting = set()
    for deployment in deployments.values():
        pod = deployment["spec"]["template"]["spec"]
        volumes = {
            v["name"]
            for v in pod.get("volumes", [])
            if v.get("persistentVolumeClaim", {}).get("claimName") == claim["metadata"]["name"]
        }
        mounts = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] in volumes]
        if mounts:
            assert mounts[0]["mountPath"] == "/data/blobs"  # DOCFLOW_DATA_DIR=/data (Dockerfile)
            mounting.add(service_of(deployment))
    assert mounting == {"gateway", "extractor"}


def test_production_uses_postgresql_qdrant_server_and_openai() -> None:
    docs = documents(render("production"))
    settings = config(docs)
    assert settings["DOCFLOW_EMBEDDING_BACKEND"] == "openai"
    assert settings["DOCFLOW_CHUNK_TOKENIZER"] == f"tiktoken:{settings['DOCFLOW_OPENAI_MODEL']}"
    assert settings["DOCFLOW_AUTH_ENABLED"] == "true"
    assert not of_kind(docs, "Secret"), "production's Secret is made out of band"
    template = documents((K8S / "overlays" / "production" / "secret.template.yaml").read_text())
    values = template[0]["stringData"]
    for key in ("gateway-database-url", "status-database-url"):
        assert values[key].startswith("postgresql+asyncpg://")
    assert all(doc["spec"]["replicas"] == 3 for doc in of_kind(docs, "KafkaTopic"))
