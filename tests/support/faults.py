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
3. wait until every accepted document is terminal, or the deadline, then until
   every consumer group has read everything;
4. report: each document's expected and actual outcome (``completed``, or
   ``failed`` with the code its file must fail with), lost (documents that did
   not reach their expected outcome: must be 0), duplicate and missing Qdrant
   points (beyond or short of each completed document's chunks: must be 0),
   whether the read model equals a replay of the topics (must), redeliveries
   seen (events published twice, and progress steps announced twice: work
   done again; at most the scenario's bound), the consumer groups' lag (must
   be 0), and the seconds from the end of the last fault to the last document
   finishing.

A hostile scenario (``Scenario.hostile``) runs with authentication on and two
tenants, and publishes poison pills, garbage headers and forged cross-tenant
events mid-run (``support.hostile_events``): every poison must be on the
dead-letter topic, and no tenant's documents, vectors or search may show any
effect of the other tenant's forgeries.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from qdrant_client import QdrantClient

from docflow_embedder.adapters.embedded import open_embedded
from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.processes import free_port
from docflow_local.stack import Service, Stack, services
from docflow_shared import topics
from docflow_shared.auth import hash_key
from docflow_shared.events import DocumentProgressed, Event, ReindexEvent, parse_event
from docflow_shared.kafka_admin import ensure_topics, partitions_of, read_records
from docflow_shared.retries import retry_group
from docflow_shared.sql import create_engine
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.adapters.replay import replay
from docflow_status.domain.projection import evolve
from support import hostile as hostile_pdf
from support import hostile_events
from support.corpus import expectations
from support.hostile_events import ACME_SECRET, FORGED_TEXT, GLOBEX_SECRET, Hostile
from support.openai_server import EmbeddingsServer
from support.qdrant import QdrantServer
from support.scans import scan

# Small documents of the corpus that complete (so "terminal" means done work),
# and one that must fail (encrypted): each document's outcome is asserted.
FILES = [
    "000_e21e99f4fa213ba2.md",
    "001_1dec86223de1c3fb.md",
    "002_33ffed5cb8b9fff7.md",
    "minimal-document.pdf",
    "002-trivial-libre-office-writer.pdf",
    "libreoffice-writer-password.pdf",
]
# A hostile scenario's uploads: each tenant's own ledger (its secret word in
# every chunk, so that a leak is seen), corpus files, and for acme one that fails.
TENANT_FILES = {
    "acme": [
        "acme-ledger.md",
        "000_e21e99f4fa213ba2.md",
        "minimal-document.pdf",
        "libreoffice-writer-password.pdf",
    ],
    "globex": [
        "globex-ledger.md",
        "001_1dec86223de1c3fb.md",
        "002-trivial-libre-office-writer.pdf",
    ],
}
API_KEYS = {"acme": "acme-key", "globex": "globex-key"}
# An OCR scenario's uploads (``Scenario.ocr``): multi-page scans (support.scans,
# read by the OCR consumer range by range), text files, and a hostile scan that
# must fail alone in the OCR stage, within its sandbox's memory limit.
OCR_FILES = [
    "scan-4.pdf",
    "000_e21e99f4fa213ba2.md",
    "minimal-document.pdf",
    "scan-3.pdf",
    "001_1dec86223de1c3fb.md",
    "noise-scan.pdf",
    "002-trivial-libre-office-writer.pdf",
    "002_33ffed5cb8b9fff7.md",
]
# The OCR consumer's sandbox in an OCR scenario: a scan's page needs about 320 MiB
# (Tesseract at 300 dpi), the hostile scan's noise far more.
OCR_SANDBOX_MEMORY_MIB = 384
# Pages per OCR range in an OCR scenario: a 4-page scan is two ranges.
OCR_RANGE_PAGES = 2
TERMINAL = {"completed", "failed", "cancelled"}
# DOCFLOW_SHUTDOWN_TIMEOUT_S of the services under test (25 s by default; less
# here so that a scenario with graceful stops stays short).
SHUTDOWN_BOUND_S = 8.0
# What the interpreter may add to the bound (the deadline's exit is immediate).
SHUTDOWN_SLACK_S = 3.0
# Redeliveries a fault may cause at most, by default: a killed or stopped stage
# redoes the work it had in flight (a few documents' progress steps).
REDELIVERIES_PER_FAULT = 20
# How long every consumer group may take to read everything once the documents
# are terminal.
CATCH_UP_S = 60.0


def expected_outcome(name: str) -> str:
    """``completed``, or ``failed:<code>`` for a file that must fail with that code."""
    if name.endswith("-ledger.md") or name.startswith("scan-"):
        return "completed"
    if name == "noise-scan.pdf":
        return "failed:limit_exceeded"
    found = {e.path.name: e for e in expectations()}[name]
    return found.status if found.error_code is None else f"{found.status}:{found.error_code}"


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
    # Redeliveries seen at most; None: REDELIVERIES_PER_FAULT for each fault.
    max_redeliveries: int | None = None
    # Two tenants (auth on), and hostile events published mid-run.
    hostile: bool = False
    # Scans and a hostile scan (OCR_FILES) through the OCR consumer.
    ocr: bool = False

    @property
    def redeliveries_bound(self) -> int:
        if self.max_redeliveries is not None:
            return self.max_redeliveries
        return REDELIVERIES_PER_FAULT * len(self.faults)

    @classmethod
    def random(
        cls,
        name: str,
        kinds: list[tuple[str, int, float]],
        *,
        documents: int,
        upload_s: float,
        seed: int,
        ocr: bool = False,
    ) -> Scenario:
        """``kinds``: (kind, how many times, seconds each), at random moments of the upload."""
        rng = random.Random(seed)
        faults = [
            Fault(kind, round(rng.uniform(0.1, 0.9) * upload_s, 1), seconds)
            for kind, times, seconds in kinds
            for _ in range(times)
        ]
        return cls(name, documents, upload_s, tuple(sorted(faults, key=lambda f: f.at)), ocr=ocr)


@dataclass
class Report:
    scenario: str
    documents_accepted: int = 0
    reached_terminal: int = 0
    # Accepted documents that did not reach their expected outcome (stuck, or
    # another outcome than their file's): must be 0.
    lost: int = 0
    stuck: int = 0
    duplicate_points: int = 0
    # Points short of a completed document's chunks (its own tenant's).
    missing_points: int = 0
    read_model_equals_replay: bool = False
    redeliveries_seen: int = 0
    redeliveries_bound: int = 0
    drain_s_after_last_fault: float = 0.0
    uploads_refused: int = 0
    faults: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    expected_outcomes: dict[str, int] = field(default_factory=dict)
    # Each document: id, tenant, file, expected and actual outcome (``missing``:
    # the status service does not know it, ``unreachable``: it did not answer).
    documents: list[dict[str, Any]] = field(default_factory=list)
    # Those not at their expected outcome, in words.
    not_as_expected: list[str] = field(default_factory=list)
    # Graceful stops (term:…): the longest each service took from SIGTERM to
    # exit (None: it had to be SIGKILLed), and the bound it must keep.
    shutdown_s: dict[str, float | None] = field(default_factory=dict)
    shutdown_bound_s: float = SHUTDOWN_BOUND_S
    projector_caught_up: bool = False
    # Messages not yet read by each consumer group at the end (must all be 0:
    # nothing blocks a partition).
    consumers_lag: dict[str, int] = field(default_factory=dict)
    # Up to 5 documents whose live status differs from the replay, and how.
    replay_differences: list[str] = field(default_factory=list)
    # Hostile scenarios: each poison pill and forged event, and who dead-lettered it.
    poison: list[dict[str, Any]] = field(default_factory=list)
    poison_not_dead_lettered: list[str] = field(default_factory=list)
    # Every message on the dead-letter topic, ours or not.
    dead_letter_topic_messages: int = 0
    forged: list[dict[str, Any]] = field(default_factory=list)
    cross_tenant_effects: list[str] = field(default_factory=list)

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


@dataclass(frozen=True)
class Planned:
    """One upload: whose, which file, and the outcome it must reach."""

    tenant: str | None  # None: authentication off (the default tenant)
    name: str
    data: bytes
    expected: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": API_KEYS[self.tenant]} if self.tenant else {}


@dataclass(frozen=True)
class Sent:
    """An accepted upload."""

    planned: Planned
    url: str

    @property
    def id(self) -> UUID:
        return UUID(self.url.rsplit("/", 1)[-1])


def plan(scenario: Scenario) -> list[Planned]:
    """What the scenario uploads, in order: FILES in turn, or for a hostile
    scenario each tenant's files in turn, tenants alternating."""
    paths = {e.path.name: e.path for e in expectations()}

    def planned(tenant: str | None, name: str) -> Planned:
        if name.endswith("-ledger.md"):
            secret = ACME_SECRET if name.startswith("acme") else GLOBEX_SECRET
            data = hostile_events.secret_markdown(secret, 1)
        elif name.startswith("scan-"):
            data = scan(int(name.removeprefix("scan-").removesuffix(".pdf")))
        elif name == "noise-scan.pdf":
            data = noise_scan()
        else:
            data = paths[name].read_bytes()
        return Planned(tenant, name, data, expected_outcome(name))

    if not scenario.hostile:
        files = OCR_FILES if scenario.ocr else FILES
        return [planned(None, files[n % len(files)]) for n in range(scenario.documents)]
    tenants = sorted(TENANT_FILES)
    out = []
    for n in range(scenario.documents):
        tenant = tenants[n % len(tenants)]
        files = TENANT_FILES[tenant]
        out.append(planned(tenant, files[(n // len(tenants)) % len(files)]))
    return out


class Uploads:
    """A client uploading documents at a steady pace, in a thread."""

    def __init__(self, gateway: str, planned: list[Planned], scenario: Scenario) -> None:
        self.gateway, self.planned, self.scenario = gateway, planned, scenario
        self.sent: list[Sent] = []
        self.refused = 0
        self.errors: list[BaseException] = []

    def start(self, started: float) -> threading.Thread:
        def go() -> None:
            try:
                with httpx.Client(timeout=30) as http:
                    n_docs = len(self.planned)
                    for n, planned in enumerate(self.planned):
                        due = started + n * self.scenario.upload_s / n_docs
                        time.sleep(max(0.0, due - time.monotonic()))
                        url = _upload(http, self.gateway, planned, started + 600)
                        if url is None:
                            self.refused += 1
                        else:
                            self.sent.append(Sent(planned, url))
            except BaseException as exc:  # reported by the caller
                self.errors.append(exc)

        thread = threading.Thread(target=go, daemon=True)
        thread.start()
        return thread

    def of(self, tenant: str, name: str | None = None) -> list[Sent]:
        """Accepted uploads of ``tenant`` (of file ``name``), oldest first."""
        return [
            s
            for s in list(self.sent)
            if s.planned.tenant == tenant and (name is None or s.planned.name == name)
        ]


def _upload(http: httpx.Client, gateway: str, planned: Planned, deadline: float) -> str | None:
    """Upload like a well-behaved client: a 503 is retried after Retry-After."""
    while time.monotonic() < deadline:
        try:
            answer = http.post(
                f"{gateway}/v1/documents?dedup=false",
                files={"file": (planned.name, planned.data)},
                headers=planned.headers,
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


def _statuses(http: httpx.Client, sent: list[Sent]) -> dict[UUID, dict[str, Any] | None]:
    """Each document's status; None where the status service answered 404."""
    found: dict[UUID, dict[str, Any] | None] = {}
    for s in sent:
        try:
            answer = http.get(s.url, headers=s.planned.headers)
            # Polling hundreds of documents meets the status service's rate
            # limit (DOCFLOW_RATE_LIMIT): wait as it says, as a client should.
            for _ in range(5):
                if answer.status_code != 429:
                    break
                wait = answer.headers.get("Retry-After", "1")
                time.sleep(min(5.0, float(wait)) if wait.isdigit() else 1.0)
                answer = http.get(s.url, headers=s.planned.headers)
        except httpx.TransportError:
            continue  # the status service is restarting
        if answer.status_code == 200:
            found[s.id] = answer.json()
        elif answer.status_code == 404:
            found[s.id] = None
    return found


def outcome(status: dict[str, Any] | None) -> str:
    """``completed``, ``failed:<code>``, ``processing`` …; ``missing`` for a 404."""
    if status is None:
        return "missing"
    if status["status"] == "failed":
        return f"failed:{(status.get('error') or {}).get('code')}"
    return str(status["status"])


def _terminal(status: dict[str, Any] | None) -> bool:
    return status is not None and status["status"] in TERMINAL


class Hostilities:
    """A hostile scenario's events, published on the main thread at fractions of
    the upload (targets: documents accepted by then)."""

    def __init__(self, bootstrap: str, uploads: Uploads, scenario: Scenario) -> None:
        self.bootstrap, self.uploads, self.scenario = bootstrap, uploads, scenario
        self.published: list[Hostile] = []
        self.skipped: list[str] = []
        # Each victim's status just before it was aimed at (a forged deletion may
        # leave none to read its chunk count from afterwards).
        self.before: dict[UUID, dict[str, Any]] = {}

    def run(self, started: float) -> None:
        # The forgeries first, each on a system that still works (so that its own
        # effect shows), then the poison, with a third of the uploads still to come.
        steps: list[tuple[float, Callable[[], list[Hostile]]]] = [
            (0.3, self._claims),
            (0.45, self._deletions),
            # Waits for acme's next upload that must complete (up to four uploads).
            (0.5, self._cancel),
            (0.6, hostile_events.poison_pills),
        ]
        for fraction, make in steps:
            time.sleep(max(0.0, started + fraction * self.scenario.upload_s - time.monotonic()))
            messages = make()
            self._note_victims(messages)
            hostile_events.publish(self.bootstrap, messages)
            self.published += messages

    def _note_victims(self, messages: list[Hostile]) -> None:
        victims = {m.victim for m in messages if m.victim is not None}
        aimed = [s for s in list(self.uploads.sent) if s.id in victims]
        with httpx.Client(timeout=30) as http:
            for document_id, status in _statuses(http, aimed).items():
                if status is not None:
                    # Before the first forgery aimed at it: a forged batch changes
                    # the chunk count the read model shows.
                    self.before.setdefault(document_id, status)

    def _claims(self) -> list[Hostile]:
        """Globex reads acme's ledger (a retry, an upload); globex claims acme's chunks."""
        ledgers = self.uploads.of("acme", "acme-ledger.md")
        globex = self.uploads.of("globex")
        acme = self.uploads.of("acme", "000_e21e99f4fa213ba2.md")
        out = []
        if ledgers and globex:
            out.append(hostile_events.forged_retry(globex[0].id, ledgers[0].id))
        if ledgers:
            out.append(hostile_events.forged_upload(ledgers[0].id))
        if acme:
            out.append(hostile_events.forged_chunks(acme[0].id))
        if len(out) < 3:
            self.skipped.append(f"claims: only {len(out)} of 3 had documents to aim at")
        return out

    def _deletions(self) -> list[Hostile]:
        """Globex deletes the acme document it claimed, and acme's ledger."""
        acme = self.uploads.of("acme", "000_e21e99f4fa213ba2.md")
        ledgers = self.uploads.of("acme", "acme-ledger.md")
        out = [hostile_events.forged_delete(s[0].id) for s in (acme, ledgers) if s]
        if len(out) < 2:
            self.skipped.append(f"deletions: only {len(out)} of 2 had documents to aim at")
        return out

    def _cancel(self) -> list[Hostile]:
        """Globex cancels acme's next document that must complete, as soon as it is
        accepted (so that it is still in flight)."""

        def acme() -> list[Sent]:
            return [s for s in self.uploads.of("acme") if s.planned.expected == "completed"]

        known = len(acme())
        deadline = time.monotonic() + 4 * self.scenario.upload_s / self.scenario.documents
        while len(acme()) == known and time.monotonic() < deadline:
            time.sleep(0.05)
        if len(acme()) == known:
            self.skipped.append("cancel: no acme document accepted to aim at")
            return []
        return [hostile_events.forged_cancel(acme()[-1].id)]


def _stack_env(scenario: Scenario) -> dict[str, str]:
    if scenario.ocr:
        return {"DOCFLOW_OCR_RANGE_PAGES": str(OCR_RANGE_PAGES)}
    if not scenario.hostile:
        return {}
    return {
        "DOCFLOW_AUTH_ENABLED": "true",
        "DOCFLOW_API_KEYS": json.dumps(
            {tenant: [hash_key(key)] for tenant, key in API_KEYS.items()}
        ),
    }


def run_scenario(
    scenario: Scenario,
    home: Path,
    server: EmbeddingsServer,
    *,
    qdrant: QdrantServer | None = None,
    drain_timeout_s: float = 600,
    log_dir: Path | None = None,
) -> Report:
    """Run ``scenario`` on a fresh system under ``home`` (vectors in Qdrant's local mode,
    or on ``qdrant``; the services' logs in ``log_dir``, else under ``home``); the
    report says what held."""
    report = Report(scenario.name, redeliveries_bound=scenario.redeliveries_bound)
    kafka = LocalKafka(
        home=home / "kafka", port=free_port(), controller_port=free_port(), libs=ensure_jars()
    )
    kafka.start()
    stack = Stack(
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        data_dir=home / "data",
        services=_services(scenario),
        log_dir=log_dir or home / "logs",
        extra_env={
            **server.embedder_env("fault-embedder"),
            "DOCFLOW_OPENAI_MAX_RETRIES": "0",
            "DOCFLOW_RETRY_DELAYS_S": "[2, 10, 30]",
            "DOCFLOW_PUBLISH_TIMEOUT_S": "3",
            "DOCFLOW_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_BOUND_S),
            **({"DOCFLOW_QDRANT_URL": qdrant.url} if qdrant is not None else {}),
            **_stack_env(scenario),
        },
    )
    try:
        asyncio.run(ensure_topics(kafka.bootstrap_servers, topics.specs()))
        stack.start()
        faults = Faults(kafka, stack, server, qdrant)
        uploads = Uploads(stack.url("gateway"), plan(scenario), scenario)
        hostilities = Hostilities(kafka.bootstrap_servers, uploads, scenario)
        with httpx.Client(timeout=30) as http:
            started = time.monotonic()
            uploader = uploads.start(started)
            faults.run(scenario.faults, started)
            if scenario.hostile:
                hostilities.run(started)
            uploader.join()
            if uploads.errors:
                raise uploads.errors[0]
            sent = uploads.sent
            report.uploads_refused = uploads.refused
            report.faults = faults.done + hostilities.skipped
            report.shutdown_s = faults.shutdown_s
            report.documents_accepted = len(sent)
            deadline = time.monotonic() + drain_timeout_s
            seen: dict[UUID, dict[str, Any]] = dict(hostilities.before)
            while True:
                statuses = _statuses(http, sent)
                seen.update({k: v for k, v in statuses.items() if v is not None})
                terminal = [s for s in statuses.values() if _terminal(s)]
                if len(terminal) == len(sent) or time.monotonic() > deadline:
                    break
                time.sleep(1)
            drained = time.monotonic()
            report.reached_terminal = len(terminal)
            report.drain_s_after_last_fault = round(drained - (faults.ended_at or started), 1)
            # Terminal is not the end of the events: work redone after a crash may
            # still announce progress. Judge once every consumer has read everything.
            report.consumers_lag = _consumers_lag(kafka.bootstrap_servers, scenario.hostile)
            report.projector_caught_up = report.consumers_lag.get("docflow-status") == 0
            statuses = _statuses(http, sent)
            seen.update({k: v for k, v in statuses.items() if v is not None})
            for document_id, status in hostilities.before.items():
                if status.get("chunks_total") is not None:
                    seen[document_id] = status  # what a forgery may have changed since
            _judge_outcomes(report, sent, statuses)
            if scenario.hostile:
                report.cross_tenant_effects += _search_leaks(http, stack.url("gateway"))
        ids = {s.id for s in sent}
        report.redeliveries_seen = _repeated_event_ids(kafka.bootstrap_servers, ids)
        if scenario.hostile:
            _judge_hostilities(
                report, kafka.bootstrap_servers, hostilities.published, hostilities.before
            )
        stack.stop()
        report.replay_differences = asyncio.run(
            _replay_differences(kafka.bootstrap_servers, home, ids)
        )
        report.read_model_equals_replay = not report.replay_differences
        if scenario.hostile:
            report.cross_tenant_effects += asyncio.run(_read_model_effects(home, sent))
        vectors = (
            QdrantClient(url=qdrant.url)
            if qdrant is not None
            else open_embedded(home / "data" / "qdrant")
        )
        try:
            points = _points(vectors)
        finally:
            vectors.close()
        report.duplicate_points, report.missing_points, effects = _check_points(
            points, sent, statuses, seen
        )
        if scenario.hostile:
            report.cross_tenant_effects += effects
    finally:
        stack.stop()
        kafka.stop()
    return report


def _services(scenario: Scenario) -> list[Service]:
    """The services on free ports; in an OCR scenario, the OCR consumer's sandbox
    at OCR_SANDBOX_MEMORY_MIB."""
    chosen = services(free_port(), free_port(), free_port(), free_port())
    if not scenario.ocr:
        return chosen
    limited = (("DOCFLOW_SANDBOX_MEMORY_MIB", str(OCR_SANDBOX_MEMORY_MIB)),)
    return [replace(s, env=limited) if s.name == "ocr" else s for s in chosen]


def noise_scan() -> bytes:
    """A hostile scan: a page 30 inches square without a text layer, filled by 4000 ×
    4000 pixels of noise (16 MB, incompressible), which Tesseract reads with far
    more memory than a page of text."""
    side, points = 4000, 30 * 72
    pixels = zlib.compress(random.Random(4000).randbytes(side * side), 1)
    return hostile_pdf.pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R "
            b"/Resources << /XObject << /Im1 5 0 R >> >> >>" % (points, points),
            4: hostile_pdf.stream(b"q %d 0 0 %d 0 0 cm /Im1 Do Q" % (points, points)),
            5: hostile_pdf.stream(
                pixels,
                b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
                b"/BitsPerComponent 8 /Filter /FlateDecode" % (side, side),
            ),
        }
    )


def _judge_outcomes(
    report: Report, sent: list[Sent], statuses: dict[UUID, dict[str, Any] | None]
) -> None:
    for s in sent:
        got = outcome(statuses[s.id]) if s.id in statuses else "unreachable"
        report.documents.append(
            {
                "id": str(s.id),
                "tenant": s.planned.tenant,
                "file": s.planned.name,
                "expected": s.planned.expected,
                "outcome": got,
                "chunks_total": (statuses.get(s.id) or {}).get("chunks_total"),
                "error": ((statuses.get(s.id) or {}).get("error") or {}).get("message"),
            }
        )
        if got != s.planned.expected:
            status = statuses.get(s.id)
            message = f" ({status['message']})" if status else ""
            report.not_as_expected.append(
                f"{s.id} ({s.planned.tenant or 'default'}, {s.planned.name}): "
                f"expected {s.planned.expected}, got {got}{message}"
            )
    report.lost = len(report.not_as_expected)
    report.stuck = sum(1 for d in report.documents if d["outcome"].split(":")[0] not in TERMINAL)
    report.outcomes = _counts(d["outcome"] for d in report.documents)
    report.expected_outcomes = _counts(d["expected"] for d in report.documents)


def _counts(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))


def _consumers_lag(bootstrap: str, with_retries: bool) -> dict[str, int]:
    """Each consumer group's lag, waited for (up to CATCH_UP_S) to be 0; the retry
    groups too where messages were put on the retry topics on purpose."""
    groups: dict[str, tuple[str, ...]] = dict(topics.CONSUMERS)
    if with_retries:
        main_group = {
            "extractor": "docflow-extractor",
            "embedder": "docflow-embedder",
            "ocr": "docflow-extractor-ocr",
        }
        for service in topics.RETRYING_SERVICES:
            for level in range(topics.RETRY_LEVELS):
                groups[retry_group(main_group[service], level)] = (
                    topics.retry_topic(service, level),
                )
    return asyncio.run(_lag_until_zero(bootstrap, groups, CATCH_UP_S))


async def _lag_until_zero(
    bootstrap: str, groups: dict[str, tuple[str, ...]], timeout_s: float
) -> dict[str, int]:
    """``consumer_lag`` of every group, on one admin client and one consumer, until
    all are 0 or ``timeout_s`` passed."""
    read = sorted({topic for names in groups.values() for topic in names})
    partitions = await partitions_of(bootstrap, read)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    try:
        await consumer.start()
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                ends = await consumer.end_offsets(partitions)
                lag = {}
                for group, names in groups.items():
                    mine = [tp for tp in partitions if tp.topic in names]
                    committed = await admin.list_consumer_group_offsets(group, partitions=mine)
                    lag[group] = sum(
                        ends[tp] - max(0, done.offset if (done := committed.get(tp)) else 0)
                        for tp in mine
                    )
                if not any(lag.values()) or time.monotonic() > deadline:
                    return lag
                await asyncio.sleep(1)
        finally:
            await consumer.stop()
    finally:
        await admin.close()


def _repeated_event_ids(bootstrap: str, ids: set[UUID]) -> int:
    """Redeliveries seen: events published twice (the same id), and work done twice
    (a stage announcing the same progress step of an attempt again, which is
    what a message handled again after a crash or a broker failure shows)."""
    seen: dict[object, int] = {}
    for topic in topics.ALL:
        for record in asyncio.run(read_records(bootstrap, topic)):
            try:
                event = parse_event(record.value or b"")
            except (ValueError, RecursionError):  # a poison pill of a hostile scenario
                continue
            if event.document_id not in ids:
                continue
            seen[event.event_id] = seen.get(event.event_id, 0) + 1
            if isinstance(event, DocumentProgressed):
                # "OCR page n" is a step of its own (the OCR consumer's), apart
                # from the extractor's n-1 pages read.
                step = (
                    event.document_id,
                    event.attempt,
                    event.stage,
                    event.done,
                    event.ocr_page,
                    event.ocr_from,
                )
                seen[step] = seen.get(step, 0) + 1
    return sum(n - 1 for n in seen.values() if n > 1)


async def _replay_differences(bootstrap: str, home: Path, ids: set[UUID]) -> list[str]:
    """Documents whose live status differs from a replay of the topics into a fresh
    read model (the service's own fold and repository)."""
    live = SqlReadModel(create_engine(f"sqlite+aiosqlite:///{home / 'data' / 'status.db'}"))
    fresh = SqlReadModel(create_engine(f"sqlite+aiosqlite:///{home / 'replayed.db'}"))
    await fresh.migrate()

    async def apply(events: list[Event | ReindexEvent]) -> None:
        await fresh.apply_all([e for e in events if isinstance(e, Event)], evolve)

    try:
        try:
            await replay(bootstrap, topics.ALL, apply)
        except Exception as exc:  # a poison pill the replay cannot get past
            return [f"the replay failed: {type(exc).__name__}: {str(exc)[:300]}"]
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


def _points(client: QdrantClient) -> list[dict[str, Any]]:
    """Every point's payload in the active collection."""
    collection = client.get_aliases().aliases[0].collection_name
    payloads: list[dict[str, Any]] = []
    after: Any = None
    while True:
        found, after = client.scroll(
            collection, limit=1000, offset=after, with_payload=True, with_vectors=False
        )
        payloads += [dict(p.payload or {}) for p in found]
        if after is None:
            return payloads


def _check_points(
    points: list[dict[str, Any]],
    sent: list[Sent],
    statuses: dict[UUID, dict[str, Any] | None],
    seen: dict[UUID, dict[str, Any]],
) -> tuple[int, int, list[str]]:
    """Duplicate points (beyond a completed document's chunks), missing points (short
    of them, counting only its own tenant's), and cross-tenant effects: points of a
    document under another tenant, a tenant's secret in another's points, a document
    that should be complete and lost its own tenant's points."""
    by_document: dict[str, list[dict[str, Any]]] = {}
    for point in points:
        by_document.setdefault(str(point.get("document_id")), []).append(point)
    duplicate = missing = 0
    effects: list[str] = []
    owners = {str(s.id): s for s in sent}
    for s in sent:
        mine = by_document.get(str(s.id), [])
        own = [p for p in mine if p.get("tenant_id") == (s.planned.tenant or p.get("tenant_id"))]
        status = statuses.get(s.id)
        if status is not None and status["status"] == "completed":
            duplicate += max(0, len(mine) - (status["chunks_total"] or 0))
        expected_total = (seen.get(s.id) or {}).get("chunks_total")
        # Completed, or gone from the status service: a cancelled or stuck
        # document is reported as such, not by its points.
        gone_or_done = status is None or status["status"] == "completed"
        if s.planned.expected == "completed" and expected_total is not None and gone_or_done:
            short = max(0, expected_total - len(own))
            missing += short
            if short and s.planned.tenant is not None:
                effects.append(
                    f"{s.planned.tenant}'s document {s.id} ({s.planned.name}) has "
                    f"{len(own)} of its {expected_total} points"
                )
    for document, found in by_document.items():
        owner = owners.get(document)
        if owner is None or owner.planned.tenant is None:
            continue
        foreign = [p for p in found if p.get("tenant_id") != owner.planned.tenant]
        if foreign:
            tenants = sorted({str(p.get("tenant_id")) for p in foreign})
            effects.append(
                f"{owner.planned.tenant}'s document {document} ({owner.planned.name}) has "
                f"{len(foreign)} points under tenant {', '.join(tenants)}"
            )
    if any(s.planned.tenant for s in sent):
        effects += _leaked_secrets(points, owners)
    return duplicate, missing, effects


def _leaked_secrets(points: list[dict[str, Any]], owners: dict[str, Sent]) -> list[str]:
    leaks: dict[str, int] = {}
    for point in points:
        tenant, text = point.get("tenant_id"), str(point.get("text", ""))
        for secret, owner in ((ACME_SECRET, "acme"), (GLOBEX_SECRET, "globex")):
            if secret in text and tenant != owner:
                document = str(point.get("document_id"))
                known = owners.get(document)
                where = f"{known.planned.name}, " if known else "not uploaded, "
                key = f"{owner}'s text in a point of tenant {tenant} (document {document}: {where}"
                leaks[key] = leaks.get(key, 0) + 1
        if FORGED_TEXT in text and tenant != "globex":
            key = f"globex's forged chunk in a point of tenant {tenant} ({point.get('document_id')}"
            leaks[key] = leaks.get(key, 0) + 1
    return [f"{key}{n} points)" for key, n in leaks.items()]


def _search_leaks(http: httpx.Client, gateway: str) -> list[str]:
    """Each tenant searches for the other's secret words: none of them may come back."""
    leaks = []
    for tenant, secrets in (("globex", (ACME_SECRET,)), ("acme", (GLOBEX_SECRET, FORGED_TEXT))):
        for secret in secrets:
            answer = http.get(
                f"{gateway}/v1/search",
                params={"q": secret, "limit": 50},
                headers={"X-API-Key": API_KEYS[tenant]},
            )
            if answer.status_code != 200:
                leaks.append(f"{tenant}'s search for {secret!r}: HTTP {answer.status_code}")
                continue
            hits = [h for h in answer.json()["results"] if secret in h["text"]]
            if hits:
                documents = sorted({h["document_id"] for h in hits})
                leaks.append(
                    f"{tenant}'s search for {secret!r} returned {len(hits)} chunks of the "
                    f"other tenant's text (documents {', '.join(documents)})"
                )
    return leaks


async def _read_model_effects(home: Path, sent: list[Sent]) -> list[str]:
    """Documents whose live read-model row names another tenant, or says deleted."""
    live = SqlReadModel(create_engine(f"sqlite+aiosqlite:///{home / 'data' / 'status.db'}"))
    try:
        states = {s.id: s for s in await live.everything()}
    finally:
        await live.close()
    effects = []
    for s in sent:
        state = states.get(s.id)
        if state is None:
            effects.append(f"{s.planned.tenant}'s document {s.id}: not in the read model")
        elif state.tenant_id != s.planned.tenant:
            effects.append(
                f"{s.planned.tenant}'s document {s.id}: the read model says tenant "
                f"{state.tenant_id}"
            )
        elif state.deleted_at is not None:
            effects.append(f"{s.planned.tenant}'s document {s.id}: deleted in the read model")
    return effects


def _judge_hostilities(
    report: Report,
    bootstrap: str,
    published: list[Hostile],
    before: dict[UUID, dict[str, Any]],
) -> None:
    found, report.dead_letter_topic_messages = hostile_events.dead_lettered(bootstrap, published)
    for message in published:
        entry = {
            "name": message.name,
            "topic": message.topic,
            "marker": message.marker,
            "dead_lettered_by": found[message.marker],
        }
        if message.kind == "poison":
            report.poison.append(entry)
            if not found[message.marker]:
                report.poison_not_dead_lettered.append(f"{message.name} (marker {message.marker})")
        else:
            aimed_at = before.get(message.victim) if message.victim is not None else None
            report.forged.append(
                {
                    **entry,
                    "victim": str(message.victim) if message.victim else None,
                    "victim_before": outcome(aimed_at) if aimed_at is not None else "unknown",
                }
            )
            victim = next((d for d in report.documents if d["id"] == str(message.victim)), None)
            if victim is None:
                continue
            if victim["outcome"] != victim["expected"]:
                report.cross_tenant_effects.append(
                    f"after the forged {message.name}: {victim['tenant']}'s document is "
                    f"{victim['outcome']} (expected {victim['expected']})"
                )
            elif (
                aimed_at is not None
                and aimed_at["status"] == "completed"
                and victim["chunks_total"] != aimed_at["chunks_total"]
            ):
                report.cross_tenant_effects.append(
                    f"after the forged {message.name}: {victim['tenant']}'s document "
                    f"shows {victim['chunks_total']} chunks (was {aimed_at['chunks_total']})"
                )


def write_report(reports: list[Report], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([r.as_dict() for r in reports], indent=2) + "\n")


Check = Callable[[Report], None]


def problems(report: Report) -> list[str]:
    """What did not hold, in words (empty: everything held)."""
    out: list[str] = []
    if report.documents_accepted == 0:
        out.append("no document was accepted")
    if report.not_as_expected:
        out.append(
            f"{report.lost} of {report.documents_accepted} documents did not reach their "
            f"expected outcome ({report.stuck} stuck):\n    "
            + "\n    ".join(report.not_as_expected)
        )
    if report.duplicate_points:
        out.append(f"{report.duplicate_points} duplicate points in Qdrant")
    if report.missing_points:
        out.append(f"{report.missing_points} points missing from completed documents")
    if report.redeliveries_seen > report.redeliveries_bound:
        out.append(
            f"{report.redeliveries_seen} redeliveries seen, more than the scenario's bound "
            f"of {report.redeliveries_bound}"
        )
    behind = {group: lag for group, lag in report.consumers_lag.items() if lag}
    if behind:
        out.append(f"consumer groups still behind after {CATCH_UP_S:g} s: {behind}")
    if not report.read_model_equals_replay:
        out.append(
            "the read model differs from a replay of the topics:\n    "
            + "\n    ".join(report.replay_differences)
        )
    if report.poison_not_dead_lettered:
        out.append(
            f"{len(report.poison_not_dead_lettered)} of {len(report.poison)} poison messages "
            "not on the dead-letter topic:\n    " + "\n    ".join(report.poison_not_dead_lettered)
        )
    if report.cross_tenant_effects:
        out.append(
            f"{len(report.cross_tenant_effects)} cross-tenant effects:\n    "
            + "\n    ".join(report.cross_tenant_effects)
        )
    for service, seconds in report.shutdown_s.items():
        if seconds is None:
            out.append(f"{service} did not exit on SIGTERM")
        elif seconds > report.shutdown_bound_s + SHUTDOWN_SLACK_S:
            out.append(
                f"{service} took {seconds} s to exit on SIGTERM (bound {report.shutdown_bound_s} s)"
            )
    return out


def assert_held(report: Report) -> None:
    """What must hold after any scenario."""
    failed = problems(report)
    assert not failed, f"{report.scenario}:\n- " + "\n- ".join(failed)
