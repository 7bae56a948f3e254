"""Fetches the JSON schemas that validate deploy/k8s and docker-compose.yml, offline
after the first run, from package registries only:

- Kubernetes' own kinds: the ``kubernetes-validate`` package on PyPI ships the
  schemas of every Kubernetes minor version; one version's strict set is
  unpacked, with its ``$id``s dropped and its references made relative, so
  that kubeconform resolves them from files.
- KEDA's ``ScaledObject``: the CRD in KEDA's Go module
  (``config/crd/bases``), turned into a strict JSON schema the way
  kubeconform's openapi2jsonschema.py does (objects closed to unknown fields).
- Strimzi's ``KafkaTopic``: no registry ships Strimzi's CRDs (it is a Java
  project whose jars carry none), so the schema is kept in the repository
  (deploy/k8s/schemas/), written from Strimzi's KafkaTopic reference.
- The Compose file: the Compose Specification's schema in compose-go's Go
  module, the loader docker compose itself validates with.

Writes ``locations.json`` in the output folder: the kubeconform
``-schema-location`` templates of the downloaded schemas (Strimzi's, in
deploy/k8s/schemas, is added by the test), the Kubernetes version, and the
compose schema.

    make deploy-tools      (runs this with the versions pinned in the Makefile)
"""

from __future__ import annotations

import argparse
import json
import os
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
    parser.add_argument("--compose-go", default="github.com/compose-spec/compose-go/v2@v2.16.2")
    args = parser.parse_args()
    out: Path = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)

    kubernetes = kubernetes_schemas(args.pip, args.kubernetes_schemas, args.kubernetes_version, out)
    keda = go_module_dir(args.keda) / "config" / "crd" / "bases"
    crds = out / "crds" / args.keda.rpartition("@")[2]
    crd_schemas([keda / "keda.sh_scaledobjects.yaml"], crds)
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
            "compose": args.compose_go,
        },
    }
    (out / "locations.json").write_text(json.dumps(locations, indent=2) + "\n")
    print(f"schemas in {out}: Kubernetes {args.kubernetes_version}, KEDA, Compose")


if __name__ == "__main__":
    main()
