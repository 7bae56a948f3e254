"""The four services (and the extractor's OCR consumer, the gateway's webhook
dispatcher) as separate processes, as ``make run`` and the e2e tests run them."""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from docflow_local.processes import free_port, spawn, stop, tail

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    port: int
    # Settings of this process only (e.g. DOCFLOW_STATUS_ROLE of a split status service).
    env: tuple[tuple[str, str], ...] = ()
    # /metrics on a port of its own (DOCFLOW_METRICS_PORT); None: on ``port``.
    metrics_port: int | None = None
    # Arguments after ``python -m module`` (the extractor's ``ocr``).
    args: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_target(self) -> str:
        """host:port where Prometheus scrapes its /metrics."""
        return f"127.0.0.1:{self.metrics_port or self.port}"


def services(
    gateway: int = 8000,
    status: int = 8001,
    extractor: int = 8002,
    embedder: int = 8003,
    ocr: int | None = None,
    webhooks: int | None = None,
) -> list[Service]:
    """The four services on the given ports (docs/architecture.md, "Services and
    ports"), then the extractor's OCR consumer and the gateway's webhook dispatcher
    (``ocr``, ``webhooks``: their ports, by default free ones)."""
    return [
        Service("gateway", "docflow_gateway", gateway),
        Service("status", "docflow_status", status),
        Service("extractor", "docflow_extractor", extractor),
        Service("embedder", "docflow_embedder", embedder),
        Service("ocr", "docflow_extractor", free_port() if ocr is None else ocr, args=("ocr",)),
        Service(
            "webhooks",
            "docflow_gateway",
            free_port() if webhooks is None else webhooks,
            args=("webhooks",),
        ),
    ]


class StackStartError(RuntimeError):
    """A service did not become ready; the message carries the end of its log."""


@dataclass
class Stack:
    """Starts every service with a shared environment and waits until each is ready."""

    kafka_bootstrap_servers: str
    data_dir: Path
    services: list[Service] = field(default_factory=services)
    # Where each service's output goes; None means this process's stdout.
    log_dir: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # The gateway's credential for the embedder's internal search, new for each
    # stack unless the environment sets one (DOCFLOW_INTERNAL_TOKEN).
    internal_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)

    def url(self, name: str) -> str:
        return next(s.url for s in self.services if s.name == name)

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    def _env(self, service: Service) -> dict[str, str]:
        status = next((s for s in self.services if s.name == "status"), None)
        embedder = next((s for s in self.services if s.name == "embedder"), None)
        gateway = next((s for s in self.services if s.name == "gateway"), None)
        # The gateway's web page reads the status service from the browser.
        page_origins = (
            {"DOCFLOW_CORS_ORIGINS": json.dumps([gateway.url, f"http://localhost:{gateway.port}"])}
            if gateway
            else {}
        )
        return {
            **page_origins,
            "DOCFLOW_INTERNAL_TOKEN": self.internal_token,
            # Webhooks to receivers on this machine (the gateway checks the URL
            # at registration, the dispatcher at each delivery); the environment
            # may say otherwise.
            "DOCFLOW_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8", "::1/128"]',
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "DOCFLOW_DATA_DIR": str(self.data_dir),
            "DOCFLOW_PORT": str(service.port),
            **({"DOCFLOW_METRICS_PORT": str(service.metrics_port)} if service.metrics_port else {}),
            **({"DOCFLOW_STATUS_PUBLIC_URL": status.url} if status else {}),
            **({"DOCFLOW_EMBEDDER_INTERNAL_URL": embedder.url} if embedder else {}),
            **self.extra_env,
            **dict(service.env),
        }

    def log_file(self, name: str) -> Path | None:
        return self.log_dir / f"{name}.log" if self.log_dir else None

    def start(self, timeout_s: float = 120.0) -> None:
        """Start all services, then wait for each ``/readyz`` to answer 200."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for service in self.services:
            self._spawn(service)
        self._wait_ready(list(self.services), timeout_s)

    def restart(self, name: str, timeout_s: float = 120.0) -> None:
        """Start one service again (after it was killed), and wait until it is ready."""
        service = next(s for s in self.services if s.name == name)
        self._spawn(service)
        self._wait_ready([service], timeout_s)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one service (SIGKILL by default: no chance to clean up)."""
        process = self._processes[name]
        process.send_signal(sig)
        if sig == signal.SIGKILL:
            process.wait()

    def terminate(self, names: list[str], timeout_s: float) -> dict[str, float | None]:
        """SIGTERM the services ``names`` at once and wait for them: the seconds each
        took to exit (None: still running after ``timeout_s``, then SIGKILLed)."""
        started = time.monotonic()
        left = {name: self._processes[name] for name in names}
        for process in left.values():
            process.send_signal(signal.SIGTERM)
        took: dict[str, float | None] = {}
        while left:
            for name, process in list(left.items()):
                if process.poll() is not None:
                    took[name] = round(time.monotonic() - started, 2)
                    del left[name]
            if left and time.monotonic() - started > timeout_s:
                for name, process in left.items():
                    process.kill()
                    process.wait()
                    took[name] = None
                break
            time.sleep(0.05)
        return took

    def _spawn(self, service: Service) -> None:
        self._processes[service.name] = spawn(
            [sys.executable, "-m", service.module, *service.args],
            env=self._env(service),
            log=self.log_file(service.name),
        )

    def _wait_ready(self, waiting: list[Service], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while waiting:
                for service in list(waiting):
                    process = self._processes[service.name]
                    if process.poll() is not None:
                        self.stop()
                        raise StackStartError(
                            self._why(service, f"exited with {process.returncode}")
                        )
                    try:
                        if client.get(f"{service.url}/readyz").status_code == 200:
                            waiting.remove(service)
                    except httpx.TransportError:
                        pass
                if waiting and time.monotonic() > deadline:
                    self.stop()
                    names = ", ".join(s.name for s in waiting)
                    raise StackStartError(f"not ready after {timeout_s}s: {names}")
                if waiting:
                    time.sleep(0.25)

    def _why(self, service: Service, what: str) -> str:
        log = self.log_file(service.name)
        return f"{service.name} {what}" + (f":\n{tail(log)}" if log else "")

    def pid(self, name: str) -> int:
        return self._processes[name].pid

    def dead(self) -> list[str]:
        """Services whose process has exited."""
        return [name for name, p in self._processes.items() if p.poll() is not None]

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM every service (they finish in-flight work), SIGKILL stragglers."""
        stop(list(self._processes.values()), timeout_s)
        self._processes.clear()

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
