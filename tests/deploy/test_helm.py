"""deploy/helm/docflow: the chart lints, renders with its default values and with
production's, and what it renders is valid in strict mode against the
Kubernetes, Strimzi, KEDA, Gateway API and Prometheus Operator schemas
(kubeconform, offline), and agrees with the code: topics, consumer groups,
partitions, settings, the shutdown bound, Kafka security."""

from __future__ import annotations

import re

import pytest

from docflow_shared import topics
from docflow_shared.settings import ServiceSettings
from support.manifests import (
    CHART,
    SETTINGS,
    VALUES,
    Doc,
    by_name,
    documents,
    helm,
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
KAFKA_SASL = {"DOCFLOW_KAFKA_SASL_USERNAME", "DOCFLOW_KAFKA_SASL_PASSWORD"}
# The workloads scaled on lag, and the service whose groups they work in.
CONSUMERS = {
    "docflow-extractor": "extractor",
    "docflow-embedder": "embedder",
    "docflow-status-projector": "status",
    "docflow-ocr": "extractor",
    "docflow-webhooks": "gateway",
}
# A workload that runs another consumer of its service's image: its wiring's name.
WIRED_AS = {"docflow-ocr": "ocr", "docflow-webhooks": "webhooks"}
MTLS = ("kafka.securityProtocol=SSL", "kafka.tls.clientCertificates=true")


def env_of(deployment: Doc) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value", "<from secret>") for item in container.get("env", [])}


def env_items(deployment: Doc) -> dict[str, Doc]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item for item in container.get("env", [])}


def config(docs: list[Doc]) -> dict[str, str]:
    data: dict[str, str] = by_name(docs, "ConfigMap")["docflow-config"]["data"]
    return data


def mounted_at(deployment: Doc, path: str) -> Doc:
    """The volume whose mount holds ``path``."""
    pod = deployment["spec"]["template"]["spec"]
    (mount,) = [
        m
        for m in pod["containers"][0]["volumeMounts"]
        if path.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    return volume


@pytest.mark.parametrize("values", VALUES)
def test_helm_lint_passes(values: str) -> None:
    args = ["lint", CHART, "--strict", "--namespace", "docflow"]
    if VALUES[values] is not None:
        args += ["-f", str(VALUES[values])]
    result = helm(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", VALUES)
def test_the_rendered_chart_is_valid_in_strict_mode(values: str) -> None:
    text = render(values)
    result = kubeconform(text)
    print(f"{values}: {result.stdout.strip()}")
    assert result.returncode == 0, result.stdout + result.stderr
    found = SUMMARY.search(result.stdout)
    assert found, result.stdout
    resources, valid, invalid, errors, skipped = map(int, found.groups())
    # Skipped would mean a kind without a schema: every kind is checked.
    assert (invalid, errors, skipped) == (0, 0, 0), result.stdout
    assert resources == valid == len(documents(text))


def test_production_renders_every_part() -> None:
    kinds = {doc["kind"] for doc in documents(render("production"))}
    assert kinds >= {
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ScaledObject",
        "TriggerAuthentication",
        "KafkaTopic",
        "KafkaUser",
        "Ingress",
        "HTTPRoute",
        "NetworkPolicy",
        "ServiceMonitor",
        "PrometheusRule",
    }
    assert "PersistentVolumeClaim" not in kinds  # blobs are in object storage
    default = {doc["kind"] for doc in documents(render("default"))}
    assert not default & {"KafkaUser", "NetworkPolicy", "ServiceMonitor", "Ingress", "HTTPRoute"}


def test_kubeconform_rejects_what_the_schemas_forbid() -> None:
    """The schemas are real and strict: an unknown field in a Deployment and in each
    operator's kind, and a wrong type, are each reported."""
    text = render("production")
    broken = (
        text.replace(
            "terminationGracePeriodSeconds: 40",
            "terminationGracePeriodSeconds: 40\n      graceSeconds: 1",
            1,
        )
        .replace("  maxReplicaCount: 6", "  maxReplicaCount: 6\n  maxReplicas: 6", 1)
        .replace("  partitions: 6", "  partitions: 6\n  partition: 6", 1)
        .replace("    type: simple", "    type: simple\n    superUser: true", 1)
        .replace("  secretTargetRef:", "  secretTargets: []\n  secretTargetRef:", 1)
        .replace("  hostnames:", "  hostname: docflow.example.com\n  hostnames:", 1)
        .replace("  jobLabel: docflow.dev/job", "  jobLabel: docflow.dev/job\n  job: docflow", 1)
        .replace("  minReplicas: 2", "  minReplicas: two", 1)
    )
    result = kubeconform(broken)
    assert result.returncode != 0
    found = SUMMARY.search(result.stdout)
    assert found, result.stdout
    assert int(found.group(3)) == 8, result.stdout
    for kind in (
        "Deployment",
        "ScaledObject",
        "KafkaTopic",
        "KafkaUser",
        "TriggerAuthentication",
        "HTTPRoute",
        "ServiceMonitor",
        "HorizontalPodAutoscaler",
    ):
        assert f"- {kind} " in result.stdout, (kind, result.stdout)


@pytest.mark.parametrize("values", VALUES)
def test_every_topic_is_a_strimzi_v1_kafka_topic_as_topics_specs_says(values: str) -> None:
    declared_topics = of_kind(documents(render(values)), "KafkaTopic")
    assert {doc["apiVersion"] for doc in declared_topics} == {"kafka.strimzi.io/v1"}
    kafka_topics = {doc["spec"]["topicName"]: doc["spec"] for doc in declared_topics}
    specs = {spec.name: spec for spec in topics.specs()}
    named = {*topics.ALL, *topics.REINDEX, *topics.RETRY, topics.DEAD_LETTER, topics.STATUS}
    assert named <= set(specs)
    assert set(kafka_topics) == set(specs), "run `make chart-files`"
    for name, spec in specs.items():
        declared = kafka_topics[name]
        assert declared["partitions"] == spec.partitions, name
        for key, value in spec.config.items():
            assert str(declared["config"].get(key)) == value, (name, key)
        # acks=all must be satisfiable: never more in-sync copies than copies.
        min_isr = int(declared["config"]["min.insync.replicas"])
        assert 1 <= min_isr <= declared["replicas"], name
    if values == "production":
        assert {spec["replicas"] for spec in kafka_topics.values()} == {3}


def test_impossible_sizes_are_refused_at_render_time() -> None:
    too_many = helm("template", "docflow", CHART, "--set", "extractor.autoscaling.maxReplicas=7")
    assert too_many.returncode != 0
    assert "more than the topics' partitions" in too_many.stderr
    isr = helm("template", "docflow", CHART, "--set", "kafka.strimzi.topics.minInsyncReplicas=2")
    assert isr.returncode != 0
    assert "minInsyncReplicas is more than replicas" in isr.stderr


@pytest.mark.parametrize("values", VALUES)
def test_each_consumer_scales_on_its_real_groups_within_the_partitions(values: str) -> None:
    docs = documents(render(values))
    deployments = by_name(docs, "Deployment")
    partitions = {
        doc["spec"]["topicName"]: doc["spec"]["partitions"] for doc in of_kind(docs, "KafkaTopic")
    }
    wiring = subscriptions()
    scaled = {so["spec"]["scaleTargetRef"]["name"]: so for so in of_kind(docs, "ScaledObject")}
    assert set(scaled) == set(CONSUMERS), "every consumer has a ScaledObject"
    for name, scaled_object in scaled.items():
        assert service_of(deployments[name]) == CONSUMERS[name]
        service = WIRED_AS.get(name, CONSUMERS[name])
        triggers = scaled_object["spec"]["triggers"]
        for trigger in triggers:
            assert trigger["type"] == "kafka"
            meta = trigger["metadata"]
            pair = (meta["consumerGroup"], meta["topic"])
            assert pair in wiring[service], f"{service} has no consumer {pair}"
            assert scaled_object["spec"]["maxReplicaCount"] <= partitions[meta["topic"]], pair
            assert meta["offsetResetPolicy"] == "earliest"  # auto_offset_reset in messaging.py
            assert meta["bootstrapServersFromEnv"] == "KAFKA_BOOTSTRAP_SERVERS"
        # Every topic the service's working groups read has a trigger.
        assert {(t["metadata"]["consumerGroup"], t["metadata"]["topic"]) for t in triggers} == {
            (g, topic) for g, topic in wiring[service] if g in topics.CONSUMERS
        }
    assert env_of(deployments["docflow-status-projector"])["DOCFLOW_STATUS_ROLE"] == "projector"


def test_the_lag_scaler_authenticates_as_the_service_it_scales() -> None:
    docs = documents(render("production"))
    deployments = by_name(docs, "Deployment")
    auths = by_name(docs, "TriggerAuthentication")
    users = by_name(docs, "KafkaUser")
    for name, scaled_object in by_name(docs, "ScaledObject").items():
        env = env_items(deployments[name])
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]["name"]
        for trigger in scaled_object["spec"]["triggers"]:
            assert trigger["metadata"]["sasl"] == "scram_sha512"
            assert trigger["metadata"]["tls"] == "enable"
            auth = auths[trigger["authenticationRef"]["name"]]["spec"]
            secrets = {ref["parameter"]: ref for ref in auth["secretTargetRef"]}
            password = env["DOCFLOW_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
            assert (secrets["password"]["name"], secrets["password"]["key"]) == (
                password["name"],
                password["key"],
            )
            assert password["name"] in users  # the KafkaUser's own Secret
            assert auth["env"] == [
                {
                    "parameter": "username",
                    "name": "DOCFLOW_KAFKA_SASL_USERNAME",
                    "containerName": container,
                }
            ]
            assert env["DOCFLOW_KAFKA_SASL_USERNAME"]["value"] == password["name"]
            ca = mounted_at(deployments[name], env["DOCFLOW_KAFKA_SSL_CAFILE"]["value"])
            assert secrets["ca"]["name"] == ca["secret"]["secretName"]


@pytest.mark.parametrize("values", VALUES)
def test_configuration_sets_only_real_settings(values: str) -> None:
    docs = documents(render(values))
    every = set().union(*(variables(settings) for settings in SETTINGS.values()))
    unknown = set(config(docs)) - every
    assert not unknown, f"not a setting of any service: {sorted(unknown)}"
    for name, deployment in by_name(docs, "Deployment").items():
        own = variables(SETTINGS[service_of(deployment)])
        for variable in env_of(deployment):
            assert variable in own or not variable.startswith(("DOCFLOW_", "KAFKA_")), (
                name,
                variable,
            )


def test_every_deployment_connects_to_kafka_securely_when_asked() -> None:
    """SASL_SSL (production): each Deployment has its own user's credentials and
    the CA; mutual TLS: its certificate and key; plaintext (default): nothing."""
    docs = documents(render("production"))
    settings = config(docs)
    assert settings["DOCFLOW_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert settings["DOCFLOW_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    users = by_name(docs, "KafkaUser")
    assert {u["spec"]["authentication"]["type"] for u in users.values()} == {"scram-sha-512"}
    for name, deployment in by_name(docs, "Deployment").items():
        env = env_items(deployment)
        assert {*KAFKA_SASL, "DOCFLOW_KAFKA_SSL_CAFILE"} <= set(env), name
        user = env["DOCFLOW_KAFKA_SASL_USERNAME"]["value"]
        assert user == f"docflow-{service_of(deployment)}", name
        assert env["DOCFLOW_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": user,
            "key": "password",
        }
        ca = mounted_at(deployment, env["DOCFLOW_KAFKA_SSL_CAFILE"]["value"])
        assert ca["secret"]["secretName"] == "docflow-cluster-ca-cert"
    plain = documents(render("default"))
    assert config(plain)["DOCFLOW_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    for deployment in of_kind(plain, "Deployment"):
        assert not any(v.startswith("DOCFLOW_KAFKA_S") for v in env_of(deployment))
    assert not of_kind(plain, "TriggerAuthentication")
    mtls = documents(render("production", *MTLS, "kafka.strimzi.users.authentication=tls"))
    assert "DOCFLOW_KAFKA_SASL_MECHANISM" not in config(mtls)
    for deployment in of_kind(mtls, "Deployment"):
        env = env_of(deployment)
        assert not KAFKA_SASL & set(env)
        user = f"docflow-{service_of(deployment)}"
        for variable in ("DOCFLOW_KAFKA_SSL_CERTFILE", "DOCFLOW_KAFKA_SSL_KEYFILE"):
            assert mounted_at(deployment, env[variable])["secret"]["secretName"] == user
    for auth in of_kind(mtls, "TriggerAuthentication"):
        assert {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]} == {
            "ca",
            "cert",
            "key",
        }


@pytest.mark.parametrize("values", VALUES)
def test_deployments_probe_stop_and_size_as_the_services_need(values: str) -> None:
    docs = documents(render(values))
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
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        pause = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        assert pod["terminationGracePeriodSeconds"] > pause + shutdown_s, name
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)
        assert pod["securityContext"]["runAsNonRoot"] is True
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert [s for s in services.values() if s["spec"]["selector"].items() <= labels.items()], (
            name
        )
        port = container["ports"][0]["containerPort"]
        assert env_of(deployment)["DOCFLOW_PORT"] == str(port)
        assert [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ], name
        # No claim on a shared volume: scratch space only.
        assert all("persistentVolumeClaim" not in v for v in pod["volumes"]), name
    hpa_targets = {
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")
    }
    assert hpa_targets == {"docflow-gateway", "docflow-status-api"}
    assert env_of(deployments["docflow-status-api"])["DOCFLOW_STATUS_ROLE"] == "api"


def test_production_keeps_its_state_in_servers_over_tls() -> None:
    docs = documents(render("production"))
    settings = config(docs)
    deployments = by_name(docs, "Deployment")
    # Qdrant's local mode is one process's: replicas need the server, here over TLS with a key.
    assert settings["DOCFLOW_QDRANT_URL"].startswith("https://")
    assert "DOCFLOW_QDRANT_PATH" not in settings
    key = env_items(deployments["docflow-embedder"])["DOCFLOW_QDRANT_API_KEY"]
    assert key["valueFrom"]["secretKeyRef"]["name"] == "docflow-qdrant"
    # Blobs in S3, credentials from a Secret, for the two services that touch them.
    assert settings["DOCFLOW_BLOB_URL"] == "s3://docflow-production/blobs"
    for name in ("docflow-gateway", "docflow-extractor"):
        env = env_items(deployments[name])
        for variable in ("DOCFLOW_S3_ACCESS_KEY_ID", "DOCFLOW_S3_SECRET_ACCESS_KEY"):
            assert env[variable]["valueFrom"]["secretKeyRef"]["name"] == "docflow-s3", name
    # PostgreSQL from the Secret, its CA mounted where asyncpg looks (PGSSLROOTCERT).
    for name in ("docflow-gateway", "docflow-status-api", "docflow-status-projector"):
        env = env_items(deployments[name])
        assert env["DOCFLOW_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "docflow-secrets"
        volume = mounted_at(deployments[name], env["PGSSLROOTCERT"]["value"])
        assert volume["secret"]["secretName"] == "docflow-postgresql-ca"
    assert settings["DOCFLOW_EMBEDDING_BACKEND"] == "openai"
    assert settings["DOCFLOW_CHUNK_TOKENIZER"] == f"tiktoken:{settings['DOCFLOW_OPENAI_MODEL']}"
    assert settings["DOCFLOW_AUTH_ENABLED"] == "true"
    assert not of_kind(docs, "Secret"), "production's Secrets are made out of band"


def test_a_private_s3_ca_is_mounted_for_the_services_that_touch_blobs() -> None:
    sets = ("s3.endpointUrl=https://s3.storage.svc:8333", "s3.caSecret=docflow-s3-ca")
    docs = documents(render("production", *sets))
    assert config(docs)["DOCFLOW_S3_ENDPOINT_URL"] == "https://s3.storage.svc:8333"
    for name, deployment in by_name(docs, "Deployment").items():
        env = env_items(deployment)
        # The webhook dispatcher runs the gateway's image but reads no blob.
        if service_of(deployment) not in {"gateway", "extractor"} or name == "docflow-webhooks":
            assert "DOCFLOW_S3_CA_BUNDLE" not in env, name
            continue
        path = env["DOCFLOW_S3_CA_BUNDLE"]["value"]
        assert path.endswith("/ca.crt"), name
        assert mounted_at(deployment, path)["secret"]["secretName"] == "docflow-s3-ca", name
    assert "DOCFLOW_S3_CA_BUNDLE" not in set().union(
        *(env_items(d) for d in of_kind(documents(render("production")), "Deployment"))
    )
    valid = kubeconform(render("production", *sets))
    assert valid.returncode == 0, valid.stdout


@pytest.mark.parametrize(
    ("limit", "threads"), [("1", "1"), ("2", "2"), ("3500m", "3"), ("500m", "1")]
)
def test_the_embedders_blas_threads_follow_its_cpu_limit(limit: str, threads: str) -> None:
    docs = documents(render("default", f"embedder.resources.limits.cpu={limit}"))
    env = env_of(by_name(docs, "Deployment")["docflow-embedder"])
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == threads


def test_the_rate_limit_is_shared_in_redis_when_a_secret_names_its_url() -> None:
    """Production: the gateway and the status API (the two that limit tenants'
    rates) read DOCFLOW_RATE_LIMIT_STORAGE_URL from the Secret, no other
    workload does; by default no replica gets it (each counts alone)."""
    limited = {"docflow-gateway", "docflow-status-api"}
    docs = documents(render("production"))
    assert "DOCFLOW_RATE_LIMIT_STORAGE_URL" not in config(docs)  # never in the ConfigMap
    for name, deployment in by_name(docs, "Deployment").items():
        env = env_items(deployment)
        if name not in limited:
            assert "DOCFLOW_RATE_LIMIT_STORAGE_URL" not in env, name
            continue
        assert env["DOCFLOW_RATE_LIMIT_STORAGE_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "docflow-secrets",
            "key": "rate-limit-storage-url",
        }, name
    other = documents(render("default", "rateLimit.storageUrlSecret=docflow-redis"))
    refs = {
        name: env_items(d)["DOCFLOW_RATE_LIMIT_STORAGE_URL"]["valueFrom"]["secretKeyRef"]["name"]
        for name, d in by_name(other, "Deployment").items()
        if "DOCFLOW_RATE_LIMIT_STORAGE_URL" in env_items(d)
    }
    assert refs == dict.fromkeys(limited, "docflow-redis")
    for deployment in of_kind(documents(render("default")), "Deployment"):
        assert "DOCFLOW_RATE_LIMIT_STORAGE_URL" not in env_of(deployment)


def test_the_brokers_host_names_are_checked_unless_turned_off_with_tls() -> None:
    production = config(documents(render("production")))
    assert production["DOCFLOW_KAFKA_SSL_CHECK_HOSTNAME"] == "true"
    off = config(documents(render("production", "kafka.tls.checkHostname=false")))
    assert off["DOCFLOW_KAFKA_SSL_CHECK_HOSTNAME"] == "false"
    # The services read it as the setting (a bool), as they would at start.
    assert (
        ServiceSettings.model_validate(
            {
                "kafka_security_protocol": "SSL",
                "kafka_ssl_check_hostname": off["DOCFLOW_KAFKA_SSL_CHECK_HOSTNAME"],
            }
        ).kafka_ssl_check_hostname
        is False
    )
    assert "DOCFLOW_KAFKA_SSL_CHECK_HOSTNAME" not in config(documents(render("default")))
    # Without TLS there is no host name to check: refused, as the services would.
    plain = helm("template", "docflow", CHART, "--set", "kafka.tls.checkHostname=false")
    assert plain.returncode != 0
    assert "kafka.tls.checkHostname=false needs TLS" in plain.stderr
