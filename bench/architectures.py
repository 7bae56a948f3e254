"""docflow against the architectures it replaces, on the same documents and cores.

The baselines (bench/baselines/) do per document exactly what docflow's
extractor and embedder do (bench/inprocess.py); only what carries the work
differs:

- docflow: a Kafka broker and the four services as processes (``make run``);
- celery: a FastAPI upload app queueing a Celery task on Redis (Debian's
  redis-server, broker and result backend), a prefork worker with one
  process per CPU;
- background_tasks: one FastAPI process that answers the upload and then
  processes the document itself (``BackgroundTasks``).

Each round starts each architecture in turn, fresh and alone on the machine,
warms it up with a small document per CPU (sent at once, so that each of
Celery's pool processes loads its model), uploads a probe document five times
one after the other ("idle" upload latency), then uploads the document set
(the corpus' PDFs and Markdown files, ``--copies`` times) from ``--clients`` concurrent
clients. While the set is processed one more client uploads the probe every
``--probe-interval`` seconds ("busy" upload latency: the answer's time while
the architecture is working). When every document is completed or failed,
the architecture is stopped and the next one started.

Measured per round: each upload's time to its 202; each document's time from
its upload to its end, the end stamped by whoever did the work (docflow: the
embedder's DocumentIndexed, as the status service reports it; the baselines:
the task when it returns), all on this machine's clock; the set's wall time
(first upload to last end) as documents/min, pages/s and chunks/s; the CPU
seconds of the architecture's processes. What became of each document is
checked against the same documents processed one at a time in this process
(completed or failed, pages, chunks); a document that never ends is reported
lost. The observer polls every ``POLL_S`` with one cheap read (docflow: the
status service's counts, and while documents are running whether any of them
is from the set; Celery: one MGET of the result keys; the BackgroundTasks app:
its list of statuses).

Every process runs OpenBLAS with its own default threads (one per core) unless
``--openblas-threads`` says how many: docflow has one embedder process, Celery
one model per pool process, the BackgroundTasks app one model called from as
many threads as documents are being embedded.

Writes bench/results/architectures.json: per architecture the medians over
rounds and their ratios to docflow's (value / docflow's value), every
round's figures, the exact commands and settings.

    .venv/bin/python bench/architectures.py [--rounds 2] [--copies 1] [--clients 16]
        [--probe-interval 1.0] [--openblas-threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import redis
from celery.backends.base import KeyValueStoreBackend
from harness import CORPUS, ROOT, cpu_seconds, write_report
from inprocess import CONTENT_TYPES, InProcess, Processed, corpus_documents

from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.processes import free_port, spawn, stop, tail
from docflow_local.stack import Stack, services
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.topics import specs

# One page, two chunks: the warm-up.
SMALL = CORPUS / "pdf" / "minimal-document.pdf"
# The upload-latency probes: a PDF like any other to upload, then the least
# work to process (the parser finds a password and the document fails), so
# that probing adds next to nothing to what is measured alongside it.
PROBE = CORPUS / "pdf" / "libreoffice-writer-password.pdf"
IDLE_PROBES = 5
# CPU seconds of other processes during a round above which it is reported as
# contended (on a quiet machine they stay under one).
CONTENDED_CPU_S = 5.0
POLL_S = 0.5
BENCH = ROOT / "bench"

ARCHITECTURES = ("docflow", "celery", "background_tasks")


@dataclass(frozen=True)
class Upload:
    filename: str
    # Wall-clock time (time.time()) the request was sent: the baselines and
    # docflow stamp their ends on the same clock.
    sent_at: float
    latency_s: float
    status_code: int
    document_id: str | None


@dataclass(frozen=True)
class Outcome:
    """A document that reached its end."""

    status: str  # completed | failed
    finished_at: float
    pages: int
    chunks: int


_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds every core of the machine has spent busy since boot (/proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ready(url: str, timeout_s: float, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until ``url`` answers 200; fail with the end of ``log`` if the process exits."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as http:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{log.stem} exited with {process.returncode}:\n{tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                if http.get(url).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready after {timeout_s}s:\n{tail(log)}")
            time.sleep(0.25)


class Architecture(ABC):
    """One way of carrying the work: started alone, fed uploads, watched, stopped."""

    name: str

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        # Environment of every process it starts (beyond this one's).
        self.env = env
        self.home = home
        self.logs = home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def pids(self) -> list[int]:
        """The processes whose trees do the work (for CPU seconds)."""

    @property
    @abstractmethod
    def upload_url(self) -> str: ...

    @abstractmethod
    def document_id(self, answer: dict[str, Any]) -> str: ...

    @abstractmethod
    async def ended(self, http: httpx.AsyncClient, ids: set[str], sent_before: float) -> bool:
        """Whether every one of ``ids`` has ended: the observer's cheap read.

        ``ids`` are every document uploaded before ``sent_before`` (wall clock);
        documents uploaded since may be running still.
        """

    @abstractmethod
    async def outcomes(self, http: httpx.AsyncClient, ids: set[str]) -> dict[str, Outcome]:
        """Those of ``ids`` that ended, and how (read once, at the end)."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """How it runs: the exact commands and settings."""


class Docflow(Architecture):
    name = "docflow"
    ENV: ClassVar[dict[str, str]] = {
        # The gateway's per-tenant limit (100/s) is for the public; every
        # upload here is one tenant's.
        "DOCFLOW_RATE_LIMIT": "100000/second",
        "DOCFLOW_LOG_LEVEL": "WARNING",
    }

    def start(self) -> None:
        self.kafka = LocalKafka(
            home=self.home / "kafka",
            port=free_port(),
            controller_port=free_port(),
            libs=ensure_jars(),
        )
        self.kafka.start()
        try:
            asyncio.run(ensure_topics(self.kafka.bootstrap_servers, specs()))
            self.stack = Stack(
                kafka_bootstrap_servers=self.kafka.bootstrap_servers,
                data_dir=self.home / "data",
                services=services(free_port(), free_port(), free_port(), free_port()),
                log_dir=self.logs,
                extra_env=self.ENV | self.env,
            )
            self.stack.start()
        except BaseException:
            self.kafka.stop()
            raise

    def stop(self) -> None:
        self.stack.stop()
        self.kafka.stop()

    def pids(self) -> list[int]:
        return [self.kafka.pid] + [
            self.stack.pid(s) for s in ("gateway", "status", "extractor", "embedder")
        ]

    @property
    def upload_url(self) -> str:
        return f"{self.stack.url('gateway')}/v1/documents?dedup=false"

    def document_id(self, answer: dict[str, Any]) -> str:
        document_id: str = answer["documents"][0]["id"]
        return document_id

    async def ended(self, http: httpx.AsyncClient, ids: set[str], sent_before: float) -> bool:
        # Fresh each round, the read model holds only this round's documents.
        status = self.stack.url("status")
        counts = (await http.get(f"{status}/v1/documents/counts")).json()
        if counts["total"] < len(ids):
            return False  # not every upload is in the read model yet
        if counts["pending"] + counts["processing"] == 0:
            return True
        # Some are running: are any of them from before ``sent_before``? The
        # gateway stamps a document's creation as it accepts it, on this clock.
        before = datetime.fromtimestamp(sent_before, UTC).isoformat()
        for unfinished in ("pending", "processing"):
            page = await http.get(
                f"{status}/v1/documents",
                params={"status": unfinished, "created_before": before, "limit": 1},
            )
            if page.json()["documents"]:
                return False
        return True

    async def outcomes(self, http: httpx.AsyncClient, ids: set[str]) -> dict[str, Outcome]:
        found: dict[str, Outcome] = {}
        cursor: str | None = None
        while True:
            page = (
                await http.get(
                    f"{self.stack.url('status')}/v1/documents",
                    params={"limit": 500} | ({"cursor": cursor} if cursor else {}),
                )
            ).json()
            for d in page["documents"]:
                if d["id"] in ids and d["status"] in ("completed", "failed", "cancelled"):
                    found[d["id"]] = Outcome(
                        status=d["status"],
                        finished_at=datetime.fromisoformat(d["completed_at"]).timestamp(),
                        pages=d["pages"] or 0,
                        chunks=d["chunks_total"] or 0,
                    )
            cursor = page["next_cursor"]
            if cursor is None:
                return found

    def settings(self) -> dict[str, Any]:
        return {
            "processes": "Kafka broker (KRaft, 512 MiB heap) and the four services, "
            "each one process, as `make run` starts them (gateway: 1 worker)",
            "command": [f"{sys.executable} -m docflow_{s}" for s in ("gateway", "status")]
            + [f"{sys.executable} -m docflow_{s}" for s in ("extractor", "embedder")],
            "env": self.ENV | self.env,
            "defaults": "every other DOCFLOW_* setting at its default (embedder: model "
            "batch 16, up to 16 chunk batches per model call; SQLite read model; "
            "Qdrant local mode)",
        }


class _Baseline(Architecture):
    """A baseline's processes, started from the repository root with bench on PYTHONPATH."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        super().__init__(home, env)
        self.port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.env |= {"PYTHONPATH": str(BENCH), "BASELINE_DATA_DIR": str(self.home / "data")}

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        process = spawn(args, env=os.environ | self.env, cwd=ROOT, log=self.logs / f"{name}.log")
        self.processes[name] = process
        return process

    def _uvicorn(self, app: str) -> list[str]:
        # Warnings only: docflow's services log no line per request either.
        return [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]

    def stop(self) -> None:
        # Redis last: the web app and the worker talk to it as they stop.
        stop([p for name, p in self.processes.items() if name != "redis"], timeout_s=30)
        stop([p for name, p in self.processes.items() if name == "redis"], timeout_s=30)
        self.processes.clear()

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes.values()]

    @property
    def upload_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/documents"

    def document_id(self, answer: dict[str, Any]) -> str:
        document_id: str = answer["id"]
        return document_id

    def _command(self, args: list[str]) -> str:
        env = " ".join(f"{k}={v}" for k, v in self.env.items())
        return f"cd {ROOT} && {env} " + " ".join(args)


class CeleryOnRedis(_Baseline):
    name = "celery"

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        super().__init__(home, env)
        self.redis_port = free_port()
        self.env["BASELINE_REDIS_URL"] = f"redis://127.0.0.1:{self.redis_port}/0"
        self.redis_args = [
            "redis-server",
            "--port",
            str(self.redis_port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.home),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        # Celery's defaults: prefork, one pool process per CPU (said explicitly).
        self.worker_args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "baselines.celery_app",
            "worker",
            "--pool=prefork",
            f"--concurrency={os.cpu_count()}",
        ]
        self.web_args = self._uvicorn("baselines.celery_web:app")
        self.results = redis.Redis(port=self.redis_port)

    def start(self) -> None:
        self._spawn("redis", self.redis_args)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.results.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"redis-server did not answer:\n{tail(self.logs / 'redis.log')}"
                    ) from None
                time.sleep(0.1)
        # Ready when it takes the warm-up document (a worker has no port to ask).
        self._spawn("worker", self.worker_args)
        web = self._spawn("web", self.web_args)
        try:
            _ready(f"http://127.0.0.1:{self.port}/openapi.json", 120, web, self.logs / "web.log")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        super().stop()
        self.results.close()

    def _keys(self, ids: set[str]) -> tuple[list[str], list[bytes]]:
        ordered = sorted(ids)
        # Where Celery's Redis backend keeps a task's result.
        return ordered, [f"{KeyValueStoreBackend.task_keyprefix}{i}".encode() for i in ordered]

    async def _results(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        ordered, keys = self._keys(ids)
        values = await asyncio.to_thread(self.results.mget, keys)
        return {i: json.loads(v) for i, v in zip(ordered, values, strict=True) if v is not None}

    async def ended(self, http: httpx.AsyncClient, ids: set[str], sent_before: float) -> bool:
        # Results are written only when a task has ended (SUCCESS or FAILURE).
        return len(await self._results(ids)) == len(ids)

    async def outcomes(self, http: httpx.AsyncClient, ids: set[str]) -> dict[str, Outcome]:
        found: dict[str, Outcome] = {}
        for i, meta in (await self._results(ids)).items():
            if meta["status"] == "SUCCESS":
                result = meta["result"]
                found[i] = Outcome(
                    status="failed" if result["failed"] else "completed",
                    finished_at=result["finished_at"],
                    pages=result["pages"],
                    chunks=result["chunks"],
                )
            else:  # the task raised: nothing says when or how far it got
                done = datetime.fromisoformat(meta["date_done"]).timestamp()
                found[i] = Outcome(status="failed", finished_at=done, pages=0, chunks=0)
        return found

    def settings(self) -> dict[str, Any]:
        return {
            "redis": " ".join(a or '""' for a in self.redis_args),
            "worker": self._command(self.worker_args),
            "web": self._command(self.web_args),
            "celery": "every other setting at Celery's default: prefetch multiplier 4, "
            "acks on receipt (acks_late off), JSON serializer, no max tasks per child; "
            "each pool process loads its own model, sandbox and Qdrant local-mode path "
            "on its first task",
        }


class Background(_Baseline):
    name = "background_tasks"

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        super().__init__(home, env)
        self.web_args = self._uvicorn("baselines.background_app:app")

    def start(self) -> None:
        web = self._spawn("web", self.web_args)
        try:
            _ready(f"http://127.0.0.1:{self.port}/v1/documents", 120, web, self.logs / "web.log")
        except BaseException:
            self.stop()
            raise

    async def _statuses(self, http: httpx.AsyncClient) -> list[dict[str, Any]]:
        statuses: list[dict[str, Any]] = (await http.get(self.upload_url)).json()
        return statuses

    async def ended(self, http: httpx.AsyncClient, ids: set[str], sent_before: float) -> bool:
        ended = {
            s["id"] for s in await self._statuses(http) if s["status"] in ("completed", "failed")
        }
        return ids <= ended

    async def outcomes(self, http: httpx.AsyncClient, ids: set[str]) -> dict[str, Outcome]:
        return {
            s["id"]: Outcome(
                status=s["status"],
                finished_at=s["finished_at"],
                pages=s.get("pages", 0),
                chunks=s.get("chunks", 0),
            )
            for s in await self._statuses(http)
            if s["id"] in ids and s["status"] in ("completed", "failed")
        }

    def settings(self) -> dict[str, Any]:
        return {
            "web": self._command(self.web_args),
            "processing": "in the web process, after each answer (Starlette's "
            "BackgroundTasks); one pipeline (model, sandbox, Qdrant local mode) loaded "
            "at start-up; statuses in a dict in memory",
        }


KINDS: dict[str, type[Architecture]] = {
    "docflow": Docflow,
    "celery": CeleryOnRedis,
    "background_tasks": Background,
}


@dataclass
class Client:
    """The uploads of one round, sent to one architecture."""

    architecture: Architecture
    http: httpx.AsyncClient
    bodies: dict[Path, bytes]
    uploaded: set[str] = field(default_factory=set)

    async def upload(self, path: Path) -> Upload:
        sent_at = time.time()
        started = time.perf_counter()
        try:
            response = await self.http.post(
                self.architecture.upload_url,
                files={"file": (path.name, self.bodies[path], CONTENT_TYPES[path.suffix])},
            )
        except httpx.TransportError:  # no answer at all: reported as status 0
            return Upload(path.name, sent_at, time.perf_counter() - started, 0, None)
        latency = time.perf_counter() - started
        document_id = (
            self.architecture.document_id(response.json()) if response.status_code == 202 else None
        )
        if document_id:
            self.uploaded.add(document_id)
        return Upload(path.name, sent_at, latency, response.status_code, document_id)

    async def all_ended(self, deadline: float) -> bool:
        """Wait until every document uploaded so far has ended; False at ``deadline``."""
        return await self.wait(set(self.uploaded), time.time(), deadline)

    async def wait(self, ids: set[str], sent_before: float, deadline: float) -> bool:
        """Wait until ``ids``, sent before ``sent_before``, have ended; False at ``deadline``."""
        while not await self.architecture.ended(self.http, ids, sent_before):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True


async def measure(
    architecture: Architecture, documents: list[Path], args: argparse.Namespace
) -> dict[str, Any]:
    """One round on one running architecture: what was sent, when it all ended."""
    bodies = {p: p.read_bytes() for p in {*documents, SMALL, PROBE}}
    # The uploading clients, the prober and the observer.
    limits = httpx.Limits(max_connections=args.clients + 2)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        client = Client(architecture, http, bodies)
        deadline = time.monotonic() + args.timeout
        # The model, parser sandbox and Qdrant of every worker process (Celery's
        # load on their first task), consumer groups, connections.
        await asyncio.gather(*(client.upload(SMALL) for _ in range(os.cpu_count() or 1)))
        if not await client.all_ended(deadline):
            raise RuntimeError(f"{architecture.name}: the warm-up documents did not end")
        idle = [await client.upload(PROBE) for _ in range(IDLE_PROBES)]
        await client.all_ended(deadline)

        load = os.getloadavg()[0]
        busy_machine = machine_busy_s()
        cpu = cpu_seconds(*architecture.pids())
        own_cpu = time.process_time()
        waiting = iter(documents)
        uploads: list[Upload] = []

        async def uploader() -> None:
            for path in waiting:  # shared: each client takes the next document
                uploads.append(await client.upload(path))

        started = time.perf_counter()
        await asyncio.gather(*(uploader() for _ in range(args.clients)))
        upload_s = time.perf_counter() - started

        busy: list[Upload] = []
        ended = asyncio.Event()
        the_set, sent_before = set(client.uploaded), time.time()

        async def prober() -> None:
            while not ended.is_set():
                probe = await client.upload(PROBE)
                busy.append(probe)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        ended.wait(), max(0.0, args.probe_interval - probe.latency_s)
                    )

        async def observer() -> bool:
            """Until the set has ended (the probes sent meanwhile may not have)."""
            try:
                return await client.wait(the_set, sent_before, deadline)
            finally:
                ended.set()

        _, complete = await asyncio.gather(prober(), observer())
        # Then the probes too; none is sent any more.
        complete = complete and await client.all_ended(deadline)
        seen_s = time.perf_counter() - started
        cpu = cpu_seconds(*architecture.pids()) - cpu
        own_cpu = time.process_time() - own_cpu
        busy_machine = machine_busy_s() - busy_machine
        outcomes = await architecture.outcomes(http, client.uploaded)
    return {
        "uploads": uploads,
        "idle": idle,
        "busy": busy,
        "outcomes": outcomes,
        "complete": complete,
        "upload_s": upload_s,
        "seen_all_ended_s": seen_s,
        "cpu_s": cpu,
        "observer_cpu_s": own_cpu,
        # What else ran on the machine meanwhile (other benchmarks share it?).
        "others_cpu_s": max(0.0, busy_machine - cpu - own_cpu),
        "load_at_start": load,
    }


def summarise(
    raw: dict[str, Any], reference: dict[str, Processed]
) -> tuple[dict[str, Any], list[str]]:
    """One round's figures, and what went wrong (documents lost, outcomes not as expected)."""
    uploads: list[Upload] = raw["uploads"]
    outcomes: dict[str, Outcome] = raw["outcomes"]
    problems = [
        f"upload of {u.filename} answered {u.status_code}" for u in uploads if u.status_code != 202
    ]
    ends: list[float] = []
    to_completed: list[float] = []
    pages = chunks = completed = failed = 0
    for u in uploads:
        if u.document_id is None:
            continue
        outcome = outcomes.get(u.document_id)
        if outcome is None:
            problems.append(f"{u.filename} ({u.document_id}) never ended: lost")
            continue
        ends.append(outcome.finished_at)
        expected = reference[u.filename]
        got = (outcome.status, outcome.pages, outcome.chunks)
        want = (
            ("failed", 0, 0) if expected.failed else ("completed", expected.pages, expected.chunks)
        )
        if got != want:
            problems.append(f"{u.filename} ({u.document_id}): {got}, expected {want}")
        if outcome.status == "completed":
            completed += 1
            pages += outcome.pages
            chunks += outcome.chunks
            to_completed.append(outcome.finished_at - u.sent_at)
        else:
            failed += 1
    first_sent = min(u.sent_at for u in uploads)
    wall = max(ends) - first_sent if ends else float("nan")
    # Probes answered while documents of the set were still being processed.
    busy = [p.latency_s for p in raw["busy"] if ends and p.sent_at < max(ends)]
    busy_lost = [
        p.document_id
        for p in raw["busy"] + raw["idle"]
        if p.document_id and p.document_id not in outcomes
    ]
    problems += [f"probe document {i} never ended: lost" for i in busy_lost]
    if raw["others_cpu_s"] > CONTENDED_CPU_S:
        problems.append(
            f"other processes used {raw['others_cpu_s']:.1f} CPU-s meanwhile: the figures "
            "are not of this architecture alone on the machine"
        )
    latencies = [u.latency_s for u in uploads]
    figures = {
        "upload_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "upload_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "uploads_per_s": round(len(uploads) / raw["upload_s"], 1),
        "time_to_completed_p50_s": round(percentile(to_completed, 0.5), 2),
        "time_to_completed_p99_s": round(percentile(to_completed, 0.99), 2),
        "wall_s": round(wall, 2),
        "docs_per_min": round(len(ends) / wall * 60, 1),
        "pages_per_s": round(pages / wall, 2),
        "chunks_per_s": round(chunks / wall, 1),
        "idle_upload_p50_ms": round(percentile([p.latency_s for p in raw["idle"]], 0.5) * 1000, 1),
        "busy_upload_p50_ms": round(percentile(busy, 0.5) * 1000, 1) if busy else None,
        "busy_upload_p99_ms": round(percentile(busy, 0.99) * 1000, 1) if busy else None,
        "busy_probes": len(busy),
        "cpu_s": round(raw["cpu_s"], 1),
        "observer_cpu_s": round(raw["observer_cpu_s"], 2),
        "others_cpu_s": round(raw["others_cpu_s"], 1),
        "load_at_start": round(raw["load_at_start"], 2),
        "seen_all_ended_s": round(raw["seen_all_ended_s"], 2),
        "completed": completed,
        "failed": failed,
        "pages": pages,
        "chunks": chunks,
    }
    return figures, problems


async def in_one_process(
    home: Path, files: list[Path]
) -> tuple[dict[str, Processed], dict[str, float]]:
    """Each distinct document processed once, one after the other, in this process:
    what became of each, the wall time and the CPU seconds."""
    pipeline = InProcess(home)
    await pipeline.process(SMALL)  # the model, the parser sandbox
    cpu = pipeline.cpu()
    started = time.perf_counter()
    done = {path.name: await pipeline.process(path) for path in files}
    wall = time.perf_counter() - started
    return done, {"wall_s": round(wall, 2), "cpu_s": round(pipeline.cpu() - cpu, 1)}


def rounds_of(args: argparse.Namespace) -> Iterator[tuple[int, str]]:
    for number in range(args.rounds):
        for name in ARCHITECTURES:
            yield number, name


# Figures whose medians over rounds are compared with docflow's.
COMPARED = (
    "upload_p50_ms",
    "upload_p99_ms",
    "uploads_per_s",
    "time_to_completed_p50_s",
    "time_to_completed_p99_s",
    "docs_per_min",
    "pages_per_s",
    "chunks_per_s",
    "wall_s",
    "idle_upload_p50_ms",
    "busy_upload_p50_ms",
    "busy_upload_p99_ms",
    "cpu_s",
)


NOTES = {
    "ratio_to_docflow": "the architecture's median / docflow's median: above 1 is longer "
    "for times and CPU, more for rates",
    "upload_*": "the set's uploads, from --clients concurrent clients: time from sending "
    "the request to the 202; uploads_per_s = uploads / time until the last 202",
    "time_to_completed_*": "completed documents of the set: from sending the upload to the "
    "end stamped by what did the work (docflow: DocumentIndexed; the baselines: the task "
    "as it returns)",
    "wall_s": "first upload of the set sent to the last document's end (completed or "
    "failed); docs_per_min, pages_per_s and chunks_per_s divide by it",
    "idle_upload_p50_ms": "the probe uploaded 5 times one after the other before the set",
    "busy_upload_*": "the probe uploaded by one more client every --probe-interval s "
    "while documents of the set were still being processed",
    "cpu_s": "CPU seconds of the architecture's processes and their descendants from the "
    "set's first upload until every document (set and probes) ended; docflow's include "
    "the Kafka broker, Celery's the Redis server and the web app",
    "observer_cpu_s": "this benchmark's own process (clients and observer) meanwhile",
    "others_cpu_s": "every other process on the machine meanwhile: above a few seconds, "
    "something else competed for the cores",
    "seen_all_ended_s": "from the set's first upload until the observer saw every "
    "document and probe ended (it polls every 0.5 s)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--copies", type=int, default=1, help="times the corpus is uploaded")
    parser.add_argument("--clients", type=int, default=16, help="concurrent uploading clients")
    parser.add_argument(
        "--probe-interval", type=float, default=1.0, help="seconds between busy-upload probes"
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds a round may take to end every document"
    )
    parser.add_argument(
        "--openblas-threads",
        type=int,
        help="OPENBLAS_NUM_THREADS of every process the architectures start (default: "
        "OpenBLAS's own, one thread per core in each process)",
    )
    args = parser.parse_args()
    env = {"OPENBLAS_NUM_THREADS": str(args.openblas_threads)} if args.openblas_threads else {}
    # Kafka is asked whether it is up until it answers; each refusal is an error log.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    documents = corpus_documents(args.copies)
    distinct = corpus_documents(1)
    began = time.perf_counter()
    figures: dict[str, list[dict[str, Any]]] = {name: [] for name in ARCHITECTURES}
    problems: dict[str, list[str]] = {name: [] for name in ARCHITECTURES}
    settings: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="docflow-bench-") as tmp:
        home = Path(tmp)
        reference, alone = asyncio.run(in_one_process(home / "reference", distinct))
        for number, name in rounds_of(args):
            architecture = KINDS[name](home / f"round-{number}" / name, dict(env))
            print(f"round {number + 1}/{args.rounds}: {name}", file=sys.stderr, flush=True)
            architecture.start()
            try:
                raw = asyncio.run(measure(architecture, documents, args))
            finally:
                architecture.stop()
            round_figures, round_problems = summarise(raw, reference)
            figures[name].append(round_figures)
            problems[name] += [f"round {number + 1}: {p}" for p in round_problems]
            settings[name] = architecture.settings()
            print(json.dumps(round_figures), file=sys.stderr, flush=True)

    def median(name: str, key: str) -> float | None:
        values = [f[key] for f in figures[name] if f[key] is not None]
        return round(statistics.median(values), 2) if values else None

    medians = {name: {key: median(name, key) for key in COMPARED} for name in ARCHITECTURES}
    expected = [reference[p.name] for p in documents]
    report: dict[str, Any] = {
        "documents": {
            "set": f"the corpus' PDFs and Markdown files without the 117-page PDF, "
            f"{args.copies} time(s)",
            "uploads": len(documents),
            "expected_completed": sum(not r.failed for r in expected),
            "expected_failed": sum(bool(r.failed) for r in expected),
            "pages": sum(r.pages for r in expected),
            "chunks": sum(r.chunks for r in expected),
        },
        "clients": args.clients,
        "rounds": args.rounds,
        # Each process that embeds runs the model's matrix products on this many threads.
        "openblas_threads": args.openblas_threads
        or "OpenBLAS's default: one per core, per process",
        "probe": {
            "document": PROBE.name,
            "idle": f"{IDLE_PROBES} uploads one after the other before the set",
            "busy": f"one upload every {args.probe_interval} s while the set is processed "
            "(counted while any document of the set had not ended)",
        },
        "in_one_process": {
            "what": "the distinct documents one after the other in the benchmark's process, "
            "no queue, no HTTP (bench/inprocess.py), OpenBLAS as this process was started: "
            "the outcomes expected",
            **alone,
            "docs_per_min": round(len(distinct) / alone["wall_s"] * 60, 1),
        },
        "medians": medians,
        "ratio_to_docflow": {
            name: {
                key: (
                    round(medians[name][key] / medians["docflow"][key], 2)  # type: ignore[operator]
                    if medians[name][key] is not None and medians["docflow"][key]
                    else None
                )
                for key in COMPARED
            }
            for name in ARCHITECTURES
            if name != "docflow"
        },
        "problems": problems,
        "notes": NOTES,
        "settings": settings,
        "all_rounds": figures,
        "took_s": round(time.perf_counter() - began, 1),
    }
    write_report("architectures", report)
    print(table(medians), file=sys.stderr)


def table(medians: dict[str, dict[str, float | None]]) -> str:
    """The medians side by side, with each baseline's ratio to docflow."""
    lines = [f"{'median over rounds':26}" + "".join(f"{n:>22}" for n in ARCHITECTURES)]
    for key in COMPARED:
        cells = []
        for name in ARCHITECTURES:
            value, base = medians[name][key], medians["docflow"][key]
            ratio = f" ({value / base:.2f}x)" if name != "docflow" and value and base else ""
            cells.append(f"{value}{ratio}".rjust(22))
        lines.append(f"{key:26}" + "".join(cells))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
