"""The running gateway and status service (separate processes) on a real Kafka
broker, with authentication on: streaming limits, tenants, idempotency, dedup, and
Schemathesis (every check) against both services' OpenAPI documents.

The module runs once on each blob store (the local folder, then S3); the
gateway's peak memory while a 100 MiB file streams in is written to
.artifacts/e2e/gateway.json (local) and gateway-s3.json (S3).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from docflow_local.stack import Stack
from docflow_shared.auth import hash_key
from support.corpus import REPO_ROOT
from support.stacks import BlobPlace, running_stack
from support.waiting import wait_until

ARTIFACTS = REPO_ROOT / ".artifacts" / "e2e"
SCHEMATHESIS = Path(__file__).with_name("schemathesis")
MiB = 1024 * 1024
ACME = {"Authorization": "Bearer acme-key"}
GLOBEX = {"X-API-Key": "globex-key"}


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, blobs: BlobPlace
) -> Iterator[Stack]:
    with running_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("gateway-api") / "data",
        ARTIFACTS / "logs" / "gateway-api" / blobs.kind,
        blobs=blobs,
        # The embedder answers searches; no extractor: nothing here needs reading.
        only=["gateway", "status", "embedder"],
        extra_env={
            "DOCFLOW_AUTH_ENABLED": "true",
            "DOCFLOW_API_KEYS": json.dumps(
                {"acme": [hash_key("acme-key")], "globex": [hash_key("globex-key")]}
            ),
        },
    ) as running:
        yield running


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


def _multipart_stream(filename: str, head: bytes, size: int) -> tuple[Iterator[bytes], str]:
    """A multipart body with one file of ``size`` bytes, generated as it is sent
    (chunked transfer encoding: no Content-Length for the server to trust)."""
    boundary = "docflow-test-boundary"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n'
        ).encode()
        yield head
        block = os.urandom(MiB)
        remaining = size - len(head)
        while remaining > 0:
            yield block[: min(MiB, remaining)]
            remaining -= MiB
        yield f"\r\n--{boundary}--\r\n".encode()

    return body(), f"multipart/form-data; boundary={boundary}"


def test_a_100_mib_file_streams_in_with_flat_memory(
    stack: Stack, http: httpx.Client, blobs: BlobPlace
) -> None:
    gateway = stack.url("gateway")
    warm = http.post(
        f"{gateway}/v1/documents", files={"file": ("warm.md", b"# warm-up\n")}, headers=ACME
    )
    assert warm.status_code == 202
    before = _peak_rss_bytes(stack.pid("gateway"))

    size = 100 * MiB
    body, content_type = _multipart_stream("big.pdf", b"%PDF-1.7\n", size)
    response = http.post(
        f"{gateway}/v1/documents",
        content=body,
        headers={**ACME, "Content-Type": content_type},
    )
    assert response.status_code == 202, response.text
    [doc] = response.json()["documents"]
    assert doc["size_bytes"] == size
    assert doc["content_type"] == "application/pdf"
    assert blobs.stored(stack)[f"acme/{doc['id']}/original"] == size

    after = _peak_rss_bytes(stack.pid("gateway"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = "gateway.json" if blobs.s3 is None else f"gateway-{blobs.kind}.json"
    (ARTIFACTS / name).write_text(
        json.dumps(
            {"upload_bytes": size, "peak_rss_before": before, "peak_rss_after": after}, indent=2
        )
    )
    # Flat: the peak grows by a small fraction of the file, not by the file.
    assert after - before < 32 * MiB, f"peak RSS grew by {(after - before) / MiB:.1f} MiB"


def test_one_byte_over_the_limit_is_413_and_nothing_is_kept(
    stack: Stack, http: httpx.Client, blobs: BlobPlace
) -> None:
    before = blobs.stored(stack)
    body, content_type = _multipart_stream("huge.pdf", b"%PDF-1.7\n", 100 * MiB + 1)
    response = http.post(
        f"{stack.url('gateway')}/v1/documents",
        content=body,
        headers={**ACME, "Content-Type": content_type},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "file-too-large"
    assert response.json()["file"] == "huge.pdf"
    assert blobs.stored(stack) == before  # nor an unfinished multipart upload, on S3


def test_each_tenant_sees_only_its_own_documents(stack: Stack, http: httpx.Client) -> None:
    gateway, status = stack.url("gateway"), stack.url("status")
    anonymous = http.post(f"{gateway}/v1/documents", files={"file": ("a.md", b"# A\n")})
    assert anonymous.status_code == 401

    accepted = http.post(
        f"{gateway}/v1/documents", files={"file": ("acme.md", b"# Acme only\n")}, headers=ACME
    )
    assert accepted.status_code == 202
    url = accepted.json()["documents"][0]["status_url"]
    assert url.startswith(status)

    wait_until(lambda: http.get(url, headers=ACME).status_code == 200, timeout_s=30)
    assert http.get(url, headers=ACME).json()["filename"] == "acme.md"
    hidden = http.get(url, headers=GLOBEX)
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "document-not-found"
    assert http.get(url).status_code == 401


def test_repeats_create_nothing_new(stack: Stack, http: httpx.Client) -> None:
    gateway = f"{stack.url('gateway')}/v1/documents"
    files = {"file": ("notes.md", b"# Notes\n\nidempotent\n")}
    keyed = {**GLOBEX, "Idempotency-Key": "globex-upload-1"}
    first = http.post(gateway, files=files, headers=keyed)
    again = http.post(gateway, files=files, headers=keyed)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"

    clash = http.post(gateway, files={"file": ("other.md", b"# Other\n")}, headers=keyed)
    assert clash.status_code == 409

    # Same bytes, no key: the content index points at the existing document.
    same = http.post(gateway, files={"file": ("copy.md", files["file"][1])}, headers=GLOBEX)
    [dup] = same.json()["documents"]
    assert dup["status"] == "duplicate"
    assert dup["id"] == first.json()["documents"][0]["id"]


def _schemathesis(
    url: str, config: Path, report: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Schemathesis with every check, as a separate process against a running service."""
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(config),
            "run",
            f"{url}/openapi.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: {ACME['Authorization']}",
            "--workers",
            "1",
            "--continue-on-failure",
            "--seed",
            "20261122",
            "--report",
            "junit",
            "--report-dir",
            str(report),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=report,
        env={**os.environ, **env},
    )


def _conformance(name: str, url: str, **env: str) -> None:
    report = ARTIFACTS / "schemathesis" / name
    report.mkdir(parents=True, exist_ok=True)
    run = _schemathesis(url, SCHEMATHESIS / f"{name}.toml", report, env)
    (report / "output.txt").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout


def test_the_gateway_conforms_to_its_openapi(stack: Stack, blobs: BlobPlace) -> None:
    if blobs.s3 is not None:
        pytest.skip("checked once, on the local store: the blob store is behind one port")
    _conformance("gateway", stack.url("gateway"))


def test_the_status_service_conforms_to_its_openapi(
    stack: Stack, http: httpx.Client, blobs: BlobPlace
) -> None:
    if blobs.s3 is not None:
        pytest.skip("the status service keeps no blobs: checked once, on the local store")
    accepted = http.post(
        f"{stack.url('gateway')}/v1/documents",
        files={"file": ("schema.md", b"# For the status checks\n")},
        headers=ACME,
    )
    document = accepted.json()["documents"][0]
    wait_until(
        lambda: http.get(document["status_url"], headers=ACME).status_code == 200, timeout_s=30
    )
    _conformance("status", stack.url("status"), DOCFLOW_DOCUMENT_ID=document["id"])
