"""A real Apache Kafka broker (KRaft, one node) from its Maven jars, no Docker.

``ensure_jars`` fetches the broker pinned in ``deploy/kafka/pom.xml`` with
``mvn dependency:copy-dependencies``; ``LocalKafka`` formats storage, starts
``kafka.Kafka`` and returns only once the broker answers metadata requests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from docflow_local.maven import MavenMissing, copy_dependencies
from docflow_local.processes import port_is_free, spawn, stop, tail

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[4]
KAFKA_DEPLOY = REPO_ROOT / "deploy" / "kafka"
DEFAULT_LIBS = REPO_ROOT / ".cache" / "kafka" / "libs"


class KafkaStartError(RuntimeError):
    """The broker did not come up; the message carries the end of its log."""


def ensure_jars(libs: Path = DEFAULT_LIBS, pom: Path = KAFKA_DEPLOY / "pom.xml") -> Path:
    """The broker's jars, fetched with Maven unless already there for this pom."""
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    stamp = libs / ".pom-sha256"
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return libs
    logger.info("fetching Kafka jars with Maven into %s", libs)
    try:
        staging = copy_dependencies(pom, libs.with_name(libs.name + ".partial"))
    except MavenMissing as exc:
        raise KafkaStartError(str(exc)) from exc
    (staging / ".pom-sha256").write_text(digest)
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    return libs


def _cluster_id() -> str:
    # Kafka cluster ids are 16 random bytes in URL-safe base64 without padding.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


async def _answers(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except (KafkaError, OSError):
        return False
    finally:
        await admin.close()


@dataclass
class LocalKafka:
    """One broker+controller node with its data under ``home``."""

    home: Path
    port: int = 9092
    controller_port: int = 9093
    libs: Path = DEFAULT_LIBS
    heap: str = "512m"
    # Appended to deploy/kafka/server.properties (a later key wins): the
    # secured-Kafka tests add listeners, TLS, SASL and the authorizer.
    extra_properties: dict[str, str] = field(default_factory=dict)
    # Given to the storage tool's `format` (e.g. `--add-scram` users).
    format_args: list[str] = field(default_factory=list)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The broker's process id (while it runs)."""
        if self._process is None:
            raise RuntimeError("the broker is not running")
        return self._process.pid

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    def tool(self, main: str, *args: str) -> list[str]:
        """The command line of one of Kafka's tools (``main``, a class) on the broker's jars."""
        return self._java(main, *args)

    def _java(self, main: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise KafkaStartError("Java 17+ is needed to run the Kafka broker; install a JDK")
        return [
            java,
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            f"-Dkafka.logs.dir={self.home}",
            f"-Dlog4j2.configurationFile={KAFKA_DEPLOY / 'log4j2.yaml'}",
            "-cp",
            f"{self.libs}/*",
            main,
            *args,
        ]

    def _write_config(self) -> Path:
        config = self.home / "server.properties"
        template = Template((KAFKA_DEPLOY / "server.properties").read_text())
        extra = "".join(f"\n{key}={value}" for key, value in self.extra_properties.items())
        config.write_text(
            template.substitute(
                port=self.port,
                controller_port=self.controller_port,
                log_dirs=self.home / "data",
            )
            + extra
        )
        return config

    def _format(self, config: Path, cluster_id: str) -> None:
        # "--cluster-id=" keeps an id that starts with "-" from reading as an option.
        formatted = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster_id}",
                "-c",
                str(config),
                *self.format_args,
            ),
            capture_output=True,
            text=True,
        )
        if formatted.returncode != 0:
            raise KafkaStartError(
                f"formatting Kafka storage in {self.home} failed:\n"
                f"{formatted.stdout}{formatted.stderr}"
            )

    def start(self, timeout_s: float = 120.0) -> None:
        """Format storage on first use, start the broker, wait until it answers."""
        for port in (self.port, self.controller_port):
            if not port_is_free(port):
                raise KafkaStartError(
                    f"port {port} is in use; stop what listens there or choose other ports"
                )
        self.home.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        if not (self.home / "data" / "meta.properties").exists():
            self._format(config, _cluster_id())
        self._process = spawn(self._java("kafka.Kafka", str(config)), log=self.home / "stdout.log")
        deadline = time.monotonic() + timeout_s
        while not asyncio.run(_answers(self.bootstrap_servers)):
            if self._process.poll() is not None:
                raise KafkaStartError(
                    f"Kafka exited with {self._process.returncode}:\n{tail(self.log_file)}"
                    f"\n{tail(self.home / 'stdout.log')}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise KafkaStartError(
                    f"Kafka did not answer in {timeout_s}s:\n{tail(self.log_file)}"
                )
            time.sleep(0.5)
        logger.info("Kafka %s is up (data in %s)", self.bootstrap_servers, self.home)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Controlled shutdown (SIGTERM), then SIGKILL if it takes too long."""
        if self._process is not None:
            stop([self._process], timeout_s)
            self._process = None

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
