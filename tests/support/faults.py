"""Fault injection: documents through the running system while its parts are killed,
its broker stopped or paused, or its embeddings endpoint down; then the checks
Kafka's own system tests make: acknowledged − finished = ∅, and more.

One run (``run_scenario``):

1. its own Kafka broker (so it can be stopped) and the four services as
   processes, the embedder on an OpenAI-compatible test server (so the
   endpoint can be taken down);
2. documents uploaded at a steady pace (a client that retries a 503 after a
   second, as the gateway asks); meanwhile the scenario's faults, at random
   moments (seeded);
3. wait until every accepted document is terminal, or the deadline;
4. report: accepted, terminal, lost (accepted but not terminal: must be 0),
   duplicate Qdrant points (points beyond each completed document's chunks:
   must be 0), whether the read model equals a replay of the topics (must),
   redeliveries seen (events published twice, and progress steps announced
   twice: work done again), and the seconds from the end of the last fault to the last
   document finishing.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from qdrant_client import QdrantClient, models

from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.processes import free_port
from docflow_local.stack import Stack, services
from docflow_shared import topics
from docflow_shared.events import DocumentProgressed, Event, ReindexEvent, parse_event
from docflow_shared.kafka_admin import consumer_lag, ensure_topics, read_records
from docflow_shared.sql import create_engine
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.adapters.replay import replay
from docflow_status.domain.projection import evolve
from support.corpus import expectations
from support.openai_server import EmbeddingsServer
from support.qdrant import QdrantServer

# Small documents of the corpus that complete (so "terminal" means done work).
FILES = [
    "000_e21e99f4fa213ba2.md",
    "001_1dec86223de1c3fb.md",
    "002_33ffed5cb8b9fff7.md",
    "minimal-document.pdf",
    "002-trivial-libre-office-writer.pdf",
]
TERMINAL = {"completed", "failed", "cancelled"}
# DOCFLOW_SHUTDOWN_TIMEOUT_S of the services under test (25 s by default; less
# here so that a scenario with graceful stops stays short).
SHUTDOWN_BOUND_S = 8.0
# What the interpreter may add to the bound (the deadline's exit is immediate).
SHUTDOWN_SLACK_S = 3.0


@dataclass(frozen=True)
class Fault:
    """One fault at ``at`` seconds after the first upload."""

    # kill:<service> (SIGKILL) | term:<service> (SIGTERM: a graceful stop) |
    # broker-restart | broker-pause | endpoint-down |
    # term-all-broker-paused (every service SIGTERMed while the broker is paused) |
    # qdrant-down (the Qdrant server killed, started again after ``seconds``)
    kind: str
    at: float
    seconds: float = 0.0  # how long it lasts (pause, outage, down time of a killed service)


@dataclass(frozen=True)
class Scenario:
    name: str
    documents: int
    upload_s: float  # spread the uploads over this long
    faults: tuple[Fault, ...]

    @classmethod
    def random(
        cls,
        name: str,
        kinds: list[tuple[str, int, float]],
        *,
        documents: int,
        upload_s: float,
        seed: int,
    ) -> Scenario:
        """``kinds``: (kind, how many times, seconds each), at random moments of the upload."""
        rng = random.Random(seed)
        faults = [
            Fault(kind, round(rng.uniform(0.1, 0.9) * upload_s, 1), seconds)
            for kind, times, seconds in kinds
            for _ in range(times)
        ]
        return cls(name, documents, upload_s, tuple(sorted(faults, key=lambda f: f.at)))


@dataclass
class Report:
    scenario: str
    documents_accepted: int = 0
    reached_terminal: int = 0
    lost: int = 0
    duplicate_points: int = 0
    read_model_equals_replay: bool = False
    redeliveries_seen: int = 0
    drain_s_after_last_fault: float = 0.0
    uploads_refused: int = 0
    faults: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    # Graceful stops (term:…): the longest each service took from SIGTERM to
    # exit (None: it had to be SIGKILLed), and the bound it must keep.
    shutdown_s: dict[str, float | None] = field(default_factory=dict)
    shutdown_bound_s: float = SHUTDOWN_BOUND_S
    projector_caught_up: bool = False
    # Up to 5 documents whose live status differs from the replay, and how.
    replay_differences: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    """Carries out a scenario's faults on a running system.

    On the main thread: processes are started with PR_SET_PDEATHSIG, which
    Linux ties to the *thread* that started them, so a broker or service
    restarted from a helper thread would be stopped when that thread ends.
    """

    def __init__(
        self,
        kafka: LocalKafka,
        stack: Stack,
        server: EmbeddingsServer,
        qdrant: QdrantServer | None = None,
    ) -> None:
        self.kafka, self.stack, self.server, self.qdrant = kafka, stack, server, qdrant
        self.done: list[str] = []
        self.ended_at = 0.0
        self.shutdown_s: dict[str, float | None] = {}

    def run(self, faults: tuple[Fault, ...], started: float) -> None:
        for fault in faults:
            time.sleep(max(0.0, started + fault.at - time.monotonic()))
            self._inject(fault)
            self.done.append(f"{fault.kind}@{fault.at}s")
        self.ended_at = time.monotonic()

    def _inject(self, fault: Fault) -> None:
        if fault.kind.startswith("kill:"):
            name = fault.kind.split(":", 1)[1]
            self.stack.kill(name, signal.SIGKILL)
            time.sleep(fault.seconds)
            self.stack.restart(name)
        elif fault.kind.startswith("term:"):
            name = fault.kind.split(":", 1)[1]
            self._terminate([name])
            time.sleep(fault.seconds)
            self.stack.restart(name)
        elif fault.kind == "term-all-broker-paused":
            os.kill(self.kafka.pid, signal.SIGSTOP)
            try:
                time.sleep(1)
                self._terminate([s.name for s in self.stack.services])
            finally:
                os.kill(self.kafka.pid, signal.SIGCONT)
            time.sleep(fault.seconds)
            self.stack.start()
        elif fault.kind == "qdrant-down":
            if self.qdrant is None:
                raise ValueError("a qdrant-down fault needs a Qdrant server")
            self.qdrant.down()
            time.sleep(fault.seconds)
            self.qdrant.up()
        elif fault.kind == "broker-restart":
            self.kafka.stop()
            time.sleep(fault.seconds)
            self.kafka.start()
        elif fault.kind == "broker-pause":
            os.kill(self.kafka.pid, signal.SIGSTOP)
            time.sleep(fault.seconds)
            os.kill(self.kafka.pid, signal.SIGCONT)
        elif fault.kind == "endpoint-down":
            self.server.script[:] = ["500"] * 1_000_000
            time.sleep(fault.seconds)
            self.server.script.clear()
        else:
            raise ValueError(f"unknown fault {fault.kind}")

    def _terminate(self, names: list[str]) -> None:
        took = self.stack.terminate(names, SHUTDOWN_BOUND_S + 30)
        for name, seconds in took.items():
            before = self.shutdown_s.get(name, 0.0)
            slowest = None if seconds is None or before is None else max(before, seconds)
            self.shutdown_s[name] = slowest


class Uploads:
    """A client uploading documents at a steady pace, in a thread."""

    def __init__(self, gateway: str, files: list[Path], scenario: Scenario) -> None:
        self.gateway, self.files, self.scenario = gateway, files, scenario
        self.urls: list[str] = []
        self.refused = 0
        self.errors: list[BaseException] = []

    def start(self, started: float) -> threading.Thread:
        def go() -> None:
            try:
                with httpx.Client(timeout=30) as http:
                    n_docs = self.scenario.documents
                    for n in range(n_docs):
                        due = started + n * self.scenario.upload_s / n_docs
                        time.sleep(max(0.0, due - time.monotonic()))
                        path = self.files[n % len(self.files)]
                        url = _upload(http, self.gateway, path, started + 600)
                        if url is None:
                            self.refused += 1
                        else:
                            self.urls.append(url)
            except BaseException as exc:  # reported by the caller
                self.errors.append(exc)

        thread = threading.Thread(target=go, daemon=True)
        thread.start()
        return thread


def _upload(http: httpx.Client, gateway: str, path: Path, deadline: float) -> str | None:
    """Upload like a well-behaved client: a 503 is retried after Retry-After."""
    while time.monotonic() < deadline:
        try:
            answer = http.post(
                f"{gateway}/v1/documents?dedup=false",
                files={"file": (path.name, path.read_bytes())},
            )
        except httpx.TransportError:
            time.sleep(1)  # the gateway itself is restarting
            continue
        if answer.status_code == 202:
            status_url: str = answer.json()["documents"][0]["status_url"]
            return status_url
        if answer.status_code != 503:
            raise AssertionError(f"upload refused: {answer.status_code} {answer.text}")
        time.sleep(1)
    return None


def _statuses(http: httpx.Client, urls: list[str]) -> dict[str, dict[str, Any]]:
    found = {}
    for url in urls:
        try:
            answer = http.get(url)
        except httpx.TransportError:
            continue  # the status service is restarting
        if answer.status_code == 200:
            found[url] = answer.json()
    return found


def run_scenario(
    scenario: Scenario,
    home: Path,
    server: EmbeddingsServer,
    *,
    qdrant: QdrantServer | None = None,
    drain_timeout_s: float = 600,
) -> Report:
    """Run ``scenario`` on a fresh system under ``home`` (vectors in Qdrant's local mode,
    or on ``qdrant``); the report says what held."""
    report = Report(scenario.name)
    paths = {e.path.name: e.path for e in expectations()}
    files = [paths[name] for name in FILES]
    kafka = LocalKafka(
        home=home / "kafka", port=free_port(), controller_port=free_port(), libs=ensure_jars()
    )
    kafka.start()
    stack = Stack(
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        data_dir=home / "data",
        services=services(free_port(), free_port(), free_port(), free_port()),
        log_dir=home / "logs",
        extra_env={
            **server.embedder_env("fault-embedder"),
            "DOCFLOW_OPENAI_MAX_RETRIES": "0",
            "DOCFLOW_RETRY_DELAYS_S": "[2, 10, 30]",
            "DOCFLOW_PUBLISH_TIMEOUT_S": "3",
            "DOCFLOW_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_BOUND_S),
            **({"DOCFLOW_QDRANT_URL": qdrant.url} if qdrant is not None else {}),
        },
    )
    try:
        asyncio.run(ensure_topics(kafka.bootstrap_servers, topics.specs()))
        stack.start()
        faults = Faults(kafka, stack, server, qdrant)
        uploads = Uploads(stack.url("gateway"), files, scenario)
        with httpx.Client(timeout=30) as http:
            started = time.monotonic()
            uploader = uploads.start(started)
            faults.run(scenario.faults, started)
            uploader.join()
            if uploads.errors:
                raise uploads.errors[0]
            urls = uploads.urls
            report.uploads_refused = uploads.refused
            report.faults = faults.done
            report.shutdown_s = faults.shutdown_s
            report.documents_accepted = len(urls)
            deadline = time.monotonic() + drain_timeout_s
            while True:
                statuses = _statuses(http, urls)
                terminal = [s for s in statuses.values() if s["status"] in TERMINAL]
                if len(terminal) == len(urls) or time.monotonic() > deadline:
                    break
                time.sleep(1)
            drained = time.monotonic()
            report.reached_terminal = len(terminal)
            report.lost = len(urls) - len(terminal)
            report.drain_s_after_last_fault = round(drained - (faults.ended_at or started), 1)
            report.outcomes = {
                k: sum(1 for s in statuses.values() if s["status"] == k) for k in sorted(TERMINAL)
            }
        ids = {UUID(url.rsplit("/", 1)[-1]) for url in urls}
        report.redeliveries_seen = _repeated_event_ids(kafka.bootstrap_servers, ids)
        # Terminal is not the end of the events: work redone after a crash may
        # still announce progress. Compare once the projector has read everything.
        report.projector_caught_up = _caught_up(kafka.bootstrap_servers)
        stack.stop()
        report.replay_differences = asyncio.run(
            _replay_differences(kafka.bootstrap_servers, home, ids)
        )
        report.read_model_equals_replay = not report.replay_differences
        vectors = (
            QdrantClient(url=qdrant.url)
            if qdrant is not None
            else QdrantClient(path=str(home / "data" / "qdrant"))
        )
        report.duplicate_points = _duplicate_points(vectors, statuses)
    finally:
        stack.stop()
        kafka.stop()
    return report


def _repeated_event_ids(bootstrap: str, ids: set[UUID]) -> int:
    """Redeliveries seen: events published twice (the same id), and work done twice
    (a stage announcing the same progress step of an attempt again, which is
    what a message handled again after a crash or a broker failure shows)."""
    seen: dict[object, int] = {}
    for topic in topics.ALL:
        for record in asyncio.run(read_records(bootstrap, topic)):
            try:
                event = parse_event(record.value or b"")
            except ValueError:
                continue
            if event.document_id not in ids:
                continue
            seen[event.event_id] = seen.get(event.event_id, 0) + 1
            if isinstance(event, DocumentProgressed):
                step = (event.document_id, event.attempt, event.stage, event.done)
                seen[step] = seen.get(step, 0) + 1
    return sum(n - 1 for n in seen.values() if n > 1)


def _caught_up(bootstrap: str, timeout_s: float = 120) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if asyncio.run(consumer_lag(bootstrap, "docflow-status", topics.ALL)) == 0:
            return True
        time.sleep(1)
    return False


async def _replay_differences(bootstrap: str, home: Path, ids: set[UUID]) -> list[str]:
    """Documents whose live status differs from a replay of the topics into a fresh
    read model (the service's own fold and repository)."""
    live = SqlReadModel(create_engine(f"sqlite+aiosqlite:///{home / 'data' / 'status.db'}"))
    fresh = SqlReadModel(create_engine(f"sqlite+aiosqlite:///{home / 'replayed.db'}"))
    await fresh.migrate()

    async def apply(events: list[Event | ReindexEvent]) -> None:
        await fresh.apply_all([e for e in events if isinstance(e, Event)], evolve)

    try:
        await replay(bootstrap, topics.ALL, apply)
        ours = {s.id: s for s in await live.everything() if s.id in ids}
        again = {s.id: s for s in await fresh.everything() if s.id in ids}
        differences = []
        for document_id in sorted(ids):
            a, b = ours.get(document_id), again.get(document_id)
            if a == b:
                continue
            if a is None or b is None:
                differences.append(f"{document_id}: live {a is not None}, replay {b is not None}")
                continue
            fields = [
                f"{name}: live {getattr(a, name)!r} replay {getattr(b, name)!r}"
                for name in vars(a)
                if getattr(a, name) != getattr(b, name)
            ]
            differences.append(f"{document_id}: " + "; ".join(fields))
        return differences[:5]
    finally:
        await live.close()
        await fresh.close()


def _duplicate_points(client: QdrantClient, statuses: dict[str, dict[str, Any]]) -> int:
    try:
        collection = client.get_aliases().aliases[0].collection_name
        extra = 0
        for status in statuses.values():
            if status["status"] != "completed":
                continue
            count = client.count(
                collection,
                count_filter=models.Filter(
                    must=[
                        models.FieldCondition(
                            key="document_id", match=models.MatchValue(value=status["id"])
                        )
                    ]
                ),
                exact=True,
            ).count
            extra += max(0, count - (status["chunks_total"] or 0))
        return extra
    finally:
        client.close()


def write_report(reports: list[Report], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([r.as_dict() for r in reports], indent=2) + "\n")


Check = Callable[[Report], None]


def assert_held(report: Report) -> None:
    """What must hold after any scenario."""
    assert report.documents_accepted > 0, report
    assert report.lost == 0, report
    assert report.duplicate_points == 0, report
    assert report.read_model_equals_replay, report
    for service, seconds in report.shutdown_s.items():
        assert seconds is not None, f"{service} did not exit on SIGTERM: {report}"
        assert seconds <= report.shutdown_bound_s + SHUTDOWN_SLACK_S, (service, report)
