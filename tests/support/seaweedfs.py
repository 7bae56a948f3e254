"""A real S3 server for the tests: SeaweedFS's ``weed mini`` (master, volume
server, filer and S3 gateway in one process), built from the Go module proxy by
``make seaweedfs`` (deploy/seaweedfs/go.mod) into .cache/go/bin/weed.

It runs on free ports in a temporary folder, with one identity from an S3
config file (its keys made here) and one bucket created through the S3 API.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from docflow_local.processes import free_port, spawn, stop, tail
from docflow_shared.s3blobstore import S3BlobStore, S3Location, s3_client
from support.corpus import REPO_ROOT

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

logger = logging.getLogger(__name__)

WEED = REPO_ROOT / ".cache" / "go" / "bin" / "weed"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    """Where the server answers, the credentials it accepts and its bucket."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    bucket: str

    def client(self) -> S3Client:
        return s3_client(
            endpoint_url=self.endpoint_url,
            region=REGION,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
        )

    def store(self, prefix: str) -> S3BlobStore:
        """docflow's S3 store on this server, under ``prefix`` of the bucket."""
        return S3BlobStore(self.client(), S3Location.parse(f"s3://{self.bucket}/{prefix}"))

    def env(self, prefix: str) -> dict[str, str]:
        """The settings that put a service's blobs under ``prefix`` of the bucket."""
        return {
            "DOCFLOW_BLOB_URL": f"s3://{self.bucket}/{prefix}",
            "DOCFLOW_S3_ENDPOINT_URL": self.endpoint_url,
            "DOCFLOW_S3_REGION": REGION,
            "DOCFLOW_S3_ACCESS_KEY_ID": self.access_key_id,
            "DOCFLOW_S3_SECRET_ACCESS_KEY": self.secret_access_key,
        }


def _identity_config(access_key_id: str, secret_access_key: str) -> str:
    """SeaweedFS's static S3 identities: one user that may do everything."""
    return json.dumps(
        {
            "identities": [
                {
                    "name": "docflow",
                    "credentials": [{"accessKey": access_key_id, "secretKey": secret_access_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
    )


def _wait_until_ready(
    server: S3Server, alive: Callable[[], bool], log: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    client = server.client()
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"weed mini exited:\n{tail(log)}")
        try:
            httpx.get(f"{server.endpoint_url}/healthz", timeout=2).raise_for_status()
            client.create_bucket(Bucket=server.bucket)
            return
        except Exception as exc:  # not up yet: the S3 gateway starts last
            last = exc
            time.sleep(0.5)
    raise RuntimeError(f"SeaweedFS not ready after {timeout_s}s ({last}):\n{tail(log)}")


@contextmanager
def seaweedfs(workdir: Path, *, timeout_s: float = 120.0) -> Iterator[S3Server]:
    """A running SeaweedFS with an S3 endpoint and an empty bucket, stopped at the end."""
    if not WEED.is_file():
        raise RuntimeError(f"no SeaweedFS binary at {WEED}: run `make seaweedfs` (Go needed)")
    data, log = workdir / "data", workdir / "weed.log"
    data.mkdir(parents=True, exist_ok=True)
    access_key_id, secret_access_key = f"docflow{secrets.token_hex(6)}", secrets.token_hex(20)
    config = workdir / "s3.json"
    config.write_text(_identity_config(access_key_id, secret_access_key))
    config.chmod(0o600)
    s3_port = free_port()
    ports = {
        "master.port": free_port(),
        "master.port.grpc": free_port(),
        "volume.port": free_port(),
        "volume.port.grpc": free_port(),
        "filer.port": free_port(),
        "filer.port.grpc": free_port(),
        "s3.port": s3_port,
        "s3.port.grpc": free_port(),
        # mini serves its admin server even without the UI (and on a second,
        # legacy port unless told not to).
        "admin.port": free_port(),
        "admin.port.grpc": free_port(),
        "admin.port.legacy": 0,
    }
    args = [
        str(WEED),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        # Only the S3 gateway (and what it stands on): no WebDAV, admin UI,
        # Iceberg or Lance endpoints, no telemetry.
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        f"-s3.config={config}",
        "-s3.autoCreateBucket=false",
    ]
    process = spawn(args, cwd=workdir, log=log, env={"PATH": "/usr/bin:/bin", "HOME": str(workdir)})
    server = S3Server(f"http://127.0.0.1:{s3_port}", access_key_id, secret_access_key, "docflow")
    try:
        _wait_until_ready(server, lambda: process.poll() is None, log, timeout_s)
        logger.info("SeaweedFS S3 at %s (log %s)", server.endpoint_url, log)
        yield server
    finally:
        with suppress(Exception):
            stop([process], timeout_s=15)
