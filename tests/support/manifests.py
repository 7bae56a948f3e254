"""What the deployment tests compare deploy/ with: the tools that render and
validate it (helm and kubeconform, installed by ``make deploy-tools``), and the
facts of the code it must agree with (consumer groups and their topics,
settings' variable names)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import tempfile
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from docflow_embedder.settings import EmbedderSettings
from docflow_extractor.settings import ExtractorSettings
from docflow_gateway.settings import GatewaySettings
from docflow_status.settings import StatusSettings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "docflow"
# The values files the chart is rendered with: its defaults, and production's
# (every optional part on).
VALUES = {"default": None, "production": ROOT / "deploy" / "helm" / "values-production.yaml"}
BIN = ROOT / ".cache" / "go" / "bin"
SCHEMAS = ROOT / ".cache" / "deploy-schemas"

SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "extractor": ExtractorSettings,
    "embedder": EmbedderSettings,
    "status": StatusSettings,
}

Doc = dict[str, Any]


def tool(name: str) -> Path:
    path = BIN / name
    assert path.is_file(), f"{path} is missing: run `make deploy-tools`"
    return path


def locations() -> dict[str, Any]:
    path = SCHEMAS / "locations.json"
    assert path.is_file(), f"{path} is missing: run `make deploy-tools`"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def helm(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("helm"), *args], capture_output=True, text=True, check=False, cwd=ROOT
    )


@cache
def render(values: str, *sets: str) -> str:
    """``helm template`` of the chart with one of ``VALUES`` (and ``--set``s), as YAML."""
    command: list[str | Path] = ["template", "docflow", CHART, "--namespace", "docflow"]
    if VALUES[values] is not None:
        command += ["-f", str(VALUES[values])]
    for item in sets:
        command += ["--set", item]
    result = helm(*command)
    assert result.returncode == 0, result.stderr
    return result.stdout


def documents(text: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kubeconform(text: str) -> subprocess.CompletedProcess[str]:
    """kubeconform in strict mode on ``text`` (read from standard input), offline."""
    where = locations()
    command: list[str | Path] = [
        tool("kubeconform"),
        "-strict",
        "-summary",
        "-kubernetes-version",
        where["kubernetes_version"],
    ]
    for location in where["schema_locations"]:
        command += ["-schema-location", location]
    return subprocess.run(command, input=text, capture_output=True, text=True, check=False)


def of_kind(docs: Iterable[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def by_name(docs: Iterable[Doc], kind: str) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for doc in of_kind(docs, kind)}


def service_of(deployment: Doc) -> str:
    """Which service a Deployment runs, from its image (docflow-status:…,
    registry.example.com/docflow/status:…)."""
    image: str = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    name = image.rsplit("/", 1)[-1].split(":", 1)[0]
    return name.removeprefix("docflow-")


def variables(settings: type[BaseSettings]) -> set[str]:
    """Every environment variable a settings class reads."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {str(choice) for choice in alias.choices}
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add((prefix + name).upper())
    return names


@cache
def subscribers() -> dict[str, list[tuple[str | None, tuple[str, ...]]]]:
    """Each service's subscribers (one Kafka consumer each) as (consumer group,
    topics), from its real wiring: the brokers docs/asyncapi.py builds (as the
    services build them, nothing started)."""
    spec = importlib.util.spec_from_file_location("docflow_asyncapi", ROOT / "docs" / "asyncapi.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found: dict[str, list[tuple[str | None, tuple[str, ...]]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for broker in module.brokers(Path(scratch)):
            service = broker.config.client_id.removeprefix("docflow-")
            found[service] = [
                (subscriber.group_id, tuple(subscriber.topic_names))
                for subscriber in broker.subscribers
            ]
    return found


def subscriptions() -> dict[str, frozenset[tuple[str | None, str]]]:
    """Each service's (consumer group, topic) pairs."""
    return {
        service: frozenset((group, topic) for group, names in found for topic in names)
        for service, found in subscribers().items()
    }
