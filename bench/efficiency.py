"""Pipeline efficiency and scaling: the running system against docflow's work in one process.

The corpus (tests/corpus/: its 35 PDFs and Markdown files, without the 117-page PDF),
``--copies`` times over, goes through:

- the floor: the same extraction (pypdf in its sandbox), chunking, embedding
  (the local model in the embedder's batch size) and Qdrant writes in this
  process, one document after the other, with no Kafka (bench/inprocess.py),
  the chunk batches of several documents embedded in one model call as the
  embedder service does (up to its ``max_batches_per_call``);
- the whole system (a real Kafka broker; gateway, status service, extractors
  and embedders as processes, as ``make run`` starts them) with 1 extractor
  and 1 embedder, with 2 and 2, and with 2 and 2 whose embedders run one
  OpenBLAS thread each instead of one per core (``--systems`` adds 1 and 2,
  or 1 and 1 with one thread): every file uploaded at once from a few
  concurrent clients, timed from the first upload to the end of the last
  document (``completed`` or ``failed``, as the status service recorded it).

Each round measures every configuration once, in turns; the order rotates
from round to round. Medians over ``--rounds`` are compared: efficiency is the
system's throughput over the floor's (goal at least 0.85), scaling the
throughput with more replicas over one of each. Every run starts afresh (a new
stack with its own SQLite, blobs and Qdrant; a new Qdrant server when one is
used) and only the configuration measured runs, beside the idle broker. Each
document's outcome (status, pages, chunks) is checked against the floor's for
the same file: nothing lost, nothing different.

Qdrant: a server when one can be had (``DOCFLOW_TEST_QDRANT_BIN``,
``DOCFLOW_TEST_QDRANT_URL`` or a Docker engine, as the tests find one), else
the embedded store (Qdrant Edge), where each embedder replica needs a path of
its own (one process per path); the floor uses the same kind. ``--qdrant`` chooses. Writes
bench/results/efficiency.json.

    .venv/bin/python bench/efficiency.py [--rounds 3] [--copies 3] [--qdrant auto]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocol
from harness import CORPUS, ROOT, cpu_seconds, machine_cpu_seconds, write_report
from inprocess import InProcess, Processed, corpus_documents
from prometheus_client.parser import text_string_to_metric_families

from docflow_embedder.entrypoints.consumer import GROUP_ID as EMBEDDER_GROUP
from docflow_embedder.settings import EmbedderSettings
from docflow_extractor.entrypoints.consumer import GROUP_ID as EXTRACTOR_GROUP
from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.processes import free_port
from docflow_local.stack import Service, Stack
from docflow_shared import topics
from docflow_shared.events import Stage
from docflow_shared.kafka_admin import ensure_topics
from docflow_status.entrypoints.consumer import GROUP_ID as STATUS_GROUP

GOAL_EFFICIENCY = 0.85
# Cores other processes may keep busy while a run is measured before the report
# says its figures are disturbed.
DISTURBED = 0.2
# One page, two chunks: the parser sandbox and the model, at little cost.
WARM_UP = CORPUS / "pdf" / "minimal-document.pdf"
TERMINAL = ("completed", "failed", "cancelled")
PARTITIONS = {spec.name: spec.partitions for spec in topics.specs()}
# A service is ready while its subscribers are still joining their group one
# by one, each join a rebalance; a group counts as settled once its members
# have not changed for this long.
QUIET_S = 3.0


@dataclass(frozen=True)
class Configuration:
    """How many replicas of each worker the system runs."""

    extractors: int
    embedders: int
    # OpenBLAS threads per embedder (OPENBLAS_NUM_THREADS); None: its default, one
    # per core, as the floor in this process has unless the variable is set.
    blas_threads: int | None = None

    @property
    def name(self) -> str:
        threads = f"_blas{self.blas_threads}" if self.blas_threads else ""
        return f"system_{self.extractors}x{self.embedders}{threads}"

    @property
    def label(self) -> str:
        def count(n: int, what: str) -> str:
            return f"{n} {what}{'s' if n > 1 else ''}"

        threads = f" ({count(self.blas_threads, 'BLAS thread')} each)" if self.blas_threads else ""
        return (
            f"{count(self.extractors, 'extractor')} and "
            f"{count(self.embedders, 'embedder')}{threads}"
        )


FLOOR = "floor"
ONE_OF_EACH = Configuration(1, 1)
# Two embedders with OpenBLAS' default each run 2 x cores threads: on a small
# machine they preempt each other inside every matrix product (OpenBLAS waits
# for its threads by yielding, on CPU time). With one thread each they use
# the cores as one embedder does; that shows what replicas gain where the
# threads do not contend.
SPLIT_THREADS = max(1, (os.cpu_count() or 1) // 2)
SYSTEMS = {
    c.name: c
    for c in (
        ONE_OF_EACH,
        Configuration(1, 1, blas_threads=SPLIT_THREADS),
        Configuration(1, 2),
        Configuration(2, 2),
        Configuration(2, 2, blas_threads=SPLIT_THREADS),
    )
}
DEFAULT_SYSTEMS = (ONE_OF_EACH.name, "system_2x2", f"system_2x2_blas{SPLIT_THREADS}")


@dataclass
class Run:
    """One measured pass over the documents."""

    configuration: str
    round: int
    seconds: float
    documents: int
    completed: int
    failed: int
    pages: int
    chunks: int
    # CPU seconds during the pass by process: services, broker, Qdrant server, client.
    cpu_s: dict[str, float]
    # How documents ended differently from the floor's (empty: every one the same).
    mismatches: list[str] = field(default_factory=list)
    # Over how long cpu_s was counted, when not exactly ``seconds``.
    cpu_window_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def work_cpu_s(self) -> float:
        """CPU of the pipeline itself: every process but the uploading client."""
        return sum(seconds for name, seconds in self.cpu_s.items() if name != "client")

    @property
    def cores_busy(self) -> float:
        return self.work_cpu_s / (self.cpu_window_s or self.seconds)

    def summary(self) -> dict[str, Any]:
        return {
            "configuration": self.configuration,
            "round": self.round,
            "seconds": round(self.seconds, 2),
            "documents": self.documents,
            "completed": self.completed,
            "failed": self.failed,
            "pages": self.pages,
            "chunks": self.chunks,
            "cpu_s": {name: round(seconds, 1) for name, seconds in self.cpu_s.items()},
            "cores_busy": round(self.cores_busy, 2),
            "mismatches": self.mismatches,
            **self.extra,
        }


# --- Qdrant -------------------------------------------------------------------------


@dataclass(frozen=True)
class Qdrant:
    """Where one run's vectors go: a server (``url``), or local mode (None)."""

    url: str | None
    pid: int | None = None  # of a server started here, whose CPU is counted


def _tests_support() -> None:
    """Make the tests' helpers importable (tests/support finds Qdrant servers)."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))


def qdrant_kind(choice: str) -> tuple[str, str]:
    """``server`` or ``local``, and where the server comes from."""
    if choice == "local":
        return (
            "local",
            "the embedded store (Qdrant Edge): a path per embedder replica and the floor",
        )
    given = os.environ.get("DOCFLOW_TEST_QDRANT_URL")
    binary = os.environ.get("DOCFLOW_TEST_QDRANT_BIN")
    if binary and not given:
        return "server", f"DOCFLOW_TEST_QDRANT_BIN={binary}: a fresh server for every run"
    if given:
        # Not ours to restart: its collection grows from run to run.
        return "server", f"DOCFLOW_TEST_QDRANT_URL={given}: one server for every run"
    _tests_support()
    from support.kafka import docker_engine_answers

    if docker_engine_answers():
        return "server", "a container (testcontainers): a fresh one for every run"
    if choice == "server":
        raise SystemExit("no Qdrant server: set DOCFLOW_TEST_QDRANT_BIN or DOCFLOW_TEST_QDRANT_URL")
    return (
        "local",
        "the embedded store, Qdrant Edge (no server found): a path per replica and the floor",
    )


@contextmanager
def fresh_qdrant(kind: str) -> Iterator[Qdrant]:
    """A Qdrant for one run: a server started for it (or the one given), or the embedded store."""
    if kind == "local":
        yield Qdrant(None)
        return
    _tests_support()
    from support.qdrant import running_qdrant

    with running_qdrant() as server:
        if server is None:
            raise RuntimeError("the Qdrant server found at the start is gone")
        yield Qdrant(server.url, getattr(server, "pid", None))


# --- CPU ----------------------------------------------------------------------------

Probes = dict[str, Callable[[], float]]


def process_probes(pids: dict[str, int], qdrant: Qdrant) -> Probes:
    """CPU-time readers for processes (and their children) by name."""
    probes: Probes = {name: partial(cpu_seconds, pid) for name, pid in pids.items()}
    if qdrant.pid is not None:
        probes["qdrant_server"] = partial(cpu_seconds, qdrant.pid)
    return probes


def read(probes: Probes) -> dict[str, float]:
    return {name: probe() for name, probe in probes.items()}


def spent(before: dict[str, float], probes: Probes) -> dict[str, float]:
    now = read(probes)
    return {name: now[name] - before[name] for name in before}


def others(machine_before: float, ours: dict[str, float], seconds: float) -> float:
    """Cores other processes kept busy meanwhile (another benchmark, say): what the
    machine used beyond ``ours``; near 0 on a quiet machine."""
    return round(max(0.0, machine_cpu_seconds() - machine_before - sum(ours.values())) / seconds, 2)


# --- the floor ----------------------------------------------------------------------


def run_floor(
    home: Path, files: list[Path], qdrant: Qdrant, kafka_pid: int, number: int
) -> tuple[Run, list[Processed]]:
    """The documents one after the other in this process; their outcomes."""
    floor = InProcess(home, qdrant_url=qdrant.url)
    asyncio.run(floor.process(WARM_UP))  # the sandbox's first worker, the model's first call

    async def every() -> list[Processed]:
        batches_per_call = EmbedderSettings().max_batches_per_call  # as the service batches
        return await floor.process_all(files, batches_per_call=batches_per_call)

    probes = {"floor": floor.cpu, **process_probes({"kafka": kafka_pid}, qdrant)}
    before, machine = read(probes), machine_cpu_seconds()
    started = time.perf_counter()
    outcomes = asyncio.run(every())
    seconds = time.perf_counter() - started
    cpu = spent(before, probes)
    elsewhere = others(machine, cpu, seconds)
    idle_broker = cpu.pop("kafka")  # not part of the floor's work; shown to be small
    run = Run(
        configuration=FLOOR,
        round=number,
        seconds=seconds,
        documents=len(outcomes),
        completed=sum(o.failed is None for o in outcomes),
        failed=sum(o.failed is not None for o in outcomes),
        pages=sum(o.pages for o in outcomes),
        chunks=sum(o.chunks for o in outcomes),
        cpu_s=cpu,
        extra={"idle_broker_cpu_s": round(idle_broker, 1), "others_cores_busy": elsewhere},
    )
    return run, outcomes


# --- the system ---------------------------------------------------------------------


def system_services(config: Configuration, qdrant: Qdrant, data_dir: Path) -> list[Service]:
    """The four services, the workers as ``config`` says (``extractor``, ``extractor-2``, …),
    and one OCR consumer."""

    def embedder_env(n: int) -> tuple[tuple[str, str], ...]:
        threads = (
            (("OPENBLAS_NUM_THREADS", str(config.blas_threads)),) if config.blas_threads else ()
        )
        if qdrant.url:
            return (("DOCFLOW_QDRANT_URL", qdrant.url), *threads)
        # Local mode: one process per path. A document's chunk batches share a
        # partition, so one replica stores all of them (and can count them).
        return (("DOCFLOW_QDRANT_PATH", str(data_dir / f"qdrant-{n}")), *threads)

    def named(name: str, n: int) -> str:
        return name if n == 1 else f"{name}-{n}"

    return [
        Service("gateway", "docflow_gateway", free_port()),
        Service("status", "docflow_status", free_port()),
        *(
            Service(named("extractor", n), "docflow_extractor", free_port())
            for n in range(1, config.extractors + 1)
        ),
        *(
            Service(named("embedder", n), "docflow_embedder", free_port(), embedder_env(n))
            for n in range(1, config.embedders + 1)
        ),
        # The extractor's OCR consumer (the corpus' scans), one in every configuration.
        Service("ocr", "docflow_extractor", free_port(), args=("ocr",)),
    ]


# Each group's members, each with the partitions it holds, by topic.
Members = dict[str, frozenset[tuple[str, tuple[tuple[str, tuple[int, ...]], ...]]]]


async def describe_groups(
    admin: AIOKafkaAdminClient, want: dict[str, tuple[str, int]]
) -> Members | None:
    """The groups' members, if every group in ``want`` ({group: (topic, replicas)}) is
    stable, with that many members sharing every partition of the topic; else None."""
    found: Members = {}
    for group, (topic, replicas) in want.items():
        # One group per request: aiokafka 0.14 reads a v3 answer without its
        # authorized_operations field, which misreads every group after the first.
        [response] = await admin.describe_consumer_groups([group])
        [(_error, _group, state, _type, _protocol, members, *_)] = response.groups
        held = set()
        for member_id, _client, _host, _metadata, assignment, *_ in members:
            partitions = (
                ConsumerProtocol.ASSIGNMENT.decode(assignment).assignment if assignment else []
            )
            held.add((member_id, tuple(sorted((t, tuple(sorted(p))) for t, p in partitions))))
        of_topic = [p for _, held_by in held for t, p in held_by if t == topic and p]
        if (
            state != "Stable"
            or len(of_topic) != replicas
            or sum(map(len, of_topic)) != PARTITIONS[topic]
        ):
            return None
        found[group] = frozenset(held)
    return found


async def consumer_groups(
    bootstrap: str, want: dict[str, tuple[str, int]], *, settle_s: float = 0.0
) -> Members | None:
    """The groups' members now; with ``settle_s``, once they have been complete and
    unchanged for ``QUIET_S`` (raises ``TimeoutError`` after ``settle_s``)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        members = await describe_groups(admin, want)
        deadline = time.monotonic() + settle_s
        since, last = time.monotonic(), members
        while settle_s:
            if members is not None and members == last and time.monotonic() - since >= QUIET_S:
                break
            if members != last:
                since, last = time.monotonic(), members
            if time.monotonic() > deadline:
                raise TimeoutError(f"consumer groups not settled after {settle_s} s: {want}")
            await asyncio.sleep(0.25)
            members = await describe_groups(admin, want)
        return members
    finally:
        await admin.close()


async def upload(
    http: httpx.AsyncClient, gateway: str, files: list[Path], clients: int
) -> dict[str, Path]:
    """Every file, one per request, from ``clients`` concurrent clients; id → file."""
    waiting = [(path, path.read_bytes()) for path in reversed(files)]
    uploaded: dict[str, Path] = {}

    async def client() -> None:
        while waiting:
            path, data = waiting.pop()
            response = await http.post(
                f"{gateway}/v1/documents",
                params={"dedup": "false"},  # the set repeats its files
                files=[("file", (path.name, data))],
            )
            response.raise_for_status()
            [document] = response.json()["documents"]
            uploaded[document["id"]] = path

    await asyncio.gather(*(client() for _ in range(clients)))
    return uploaded


async def all_ended(http: httpx.AsyncClient, status: str, count: int, timeout_s: float) -> None:
    """Wait until ``count`` documents are completed, failed or cancelled (the counts
    endpoint: one cheap query however many documents there are)."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = (await http.get(f"{status}/v1/documents/counts")).raise_for_status().json()
        ended = sum(counts[s] for s in TERMINAL)
        if ended >= count:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{ended} of {count} documents ended after {timeout_s} s")
        await asyncio.sleep(0.2)


async def statuses(http: httpx.AsyncClient, status: str) -> dict[str, dict[str, Any]]:
    """Every document the status service knows, by id."""
    found: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = (await http.get(f"{status}/v1/documents", params=params)).raise_for_status().json()
        found.update((d["id"], d) for d in page["documents"])
        if not (cursor := page["next_cursor"]):
            return found


async def handled(http: httpx.AsyncClient, worker: Service, stage: Stage) -> float:
    """Messages a worker has handled so far (its stage-duration histogram's count)."""
    text = (await http.get(f"{worker.url}/metrics")).raise_for_status().text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "docflow_stage_duration_seconds_count"
        and sample.labels.get("stage") == stage.value
    )


async def warm_up(http: httpx.AsyncClient, stack: Stack, clients: int) -> int:
    """Small documents until every worker replica has handled one (the ids, so the
    partitions, are the gateway's to choose); how many were sent."""
    workers = [
        (s, Stage.EXTRACTING if s.module == "docflow_extractor" else Stage.EMBEDDING)
        for s in stack.services
        # Not the OCR consumer (args "ocr"): small documents never reach it.
        if s.module in ("docflow_extractor", "docflow_embedder") and not s.args
    ]
    sent = 0
    while True:
        idle = [s for s, stage in workers if not await handled(http, s, stage)]
        if not idle:
            return sent
        if sent >= 20 * len(workers):
            raise RuntimeError(f"no warm-up document reached {[s.name for s in idle]}")
        batch = 2 * len(idle)
        await upload(http, stack.url("gateway"), [WARM_UP] * batch, clients)
        sent += batch
        await all_ended(http, stack.url("status"), sent, timeout_s=300)


def differences(
    uploaded: dict[str, Path], seen: dict[str, dict[str, Any]], floor: dict[str, Processed]
) -> list[str]:
    """How documents ended differently from the floor's for the same file."""
    found = []
    for document_id, path in uploaded.items():
        expected, got = floor[path.name], seen.get(document_id)
        want = ("failed" if expected.failed else "completed", expected.chunks, expected.pages)
        if got is None:
            found.append(f"{path.name} {document_id}: unknown to the status service")
        elif (outcome := (got["status"], got["chunks_total"] or 0, got["pages"] or 0)) != want:
            found.append(
                f"{path.name} {document_id}: {outcome} (status, chunks, pages), the floor {want}"
            )
    return found


def run_system(
    kafka: LocalKafka,
    home: Path,
    config: Configuration,
    files: list[Path],
    qdrant: Qdrant,
    floor: dict[str, Processed],
    number: int,
    clients: int,
) -> Run:
    """A fresh stack of ``config``, warmed up, then every file uploaded at once."""
    data_dir = home / "data"
    stack = Stack(
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        data_dir=data_dir,
        services=system_services(config, qdrant, data_dir),
        log_dir=home / "logs",
        extra_env={"DOCFLOW_LOG_LEVEL": "WARNING", "DOCFLOW_RATE_LIMIT": "100000/second"},
    )
    began = time.perf_counter()
    stack.start()
    ready_s = time.perf_counter() - began
    try:
        run = asyncio.run(measure(stack, kafka, config, files, qdrant, floor, number, clients))
        run.extra["ready_s"] = round(ready_s, 1)  # from starting the processes
        return run
    finally:
        stack.stop()


async def measure(
    stack: Stack,
    kafka: LocalKafka,
    config: Configuration,
    files: list[Path],
    qdrant: Qdrant,
    floor: dict[str, Processed],
    number: int,
    clients: int,
) -> Run:
    groups = {
        EXTRACTOR_GROUP: (topics.UPLOADED, config.extractors),
        EMBEDDER_GROUP: (topics.EXTRACTED, config.embedders),
        STATUS_GROUP: (topics.UPLOADED, 1),
    }
    gateway, status = stack.url("gateway"), stack.url("status")
    async with httpx.AsyncClient(timeout=120) as http:
        # Warm-up documents may meet the groups' first rebalances (and be handled
        # twice: at least once); measured ones must not.
        warmed_at = time.perf_counter()
        warm_ups = await warm_up(http, stack, clients)
        settled_at = time.perf_counter()
        members = await consumer_groups(kafka.bootstrap_servers, groups, settle_s=120)
        setup = {
            "warm_up_s": round(settled_at - warmed_at, 1),
            "settle_s": round(time.perf_counter() - settled_at, 1),
        }

        pids = {s.name: stack.pid(s.name) for s in stack.services}
        probes = {
            **process_probes({**pids, "kafka": kafka.pid}, qdrant),
            "client": time.process_time,
        }
        before, machine = read(probes), machine_cpu_seconds()
        started_at, started = time.time(), time.perf_counter()
        uploaded = await upload(http, gateway, files, clients)
        uploads_s = time.perf_counter() - started
        await all_ended(http, status, warm_ups + len(files), timeout_s=max(600, 10 * len(files)))
        polled_s = time.perf_counter() - started
        cpu = spent(before, probes)
        elsewhere = others(machine, cpu, polled_s)
        seen = await statuses(http, status)
    after = await consumer_groups(kafka.bootstrap_servers, groups)

    ours = [seen[d] for d in uploaded if d in seen]
    # The end of the last document as the status service recorded it, not when a poll saw it.
    ended = max(datetime.fromisoformat(d["completed_at"] or d["updated_at"]) for d in ours)
    return Run(
        configuration=config.name,
        round=number,
        seconds=ended.timestamp() - started_at,
        documents=len(uploaded),
        completed=sum(d["status"] == "completed" for d in ours),
        failed=sum(d["status"] == "failed" for d in ours),
        pages=sum(d["pages"] or 0 for d in ours),
        chunks=sum(d["chunks_total"] or 0 for d in ours),
        cpu_s=cpu,
        mismatches=differences(uploaded, seen, floor),
        # Counted until a poll saw the end, a moment after it.
        cpu_window_s=polled_s,
        extra={
            "uploads_s": round(uploads_s, 2),
            "seen_by_polling_s": round(polled_s, 2),
            "others_cores_busy": elsewhere,
            "warm_up_documents": warm_ups,
            **setup,
            # A rebalance while measuring re-delivers work (at least once): flagged.
            "consumer_groups_unchanged": after == members,
        },
    )


# --- the report ---------------------------------------------------------------------


def figures(runs: list[Run]) -> dict[str, Any]:
    """Medians of one configuration's runs."""
    seconds = statistics.median(r.seconds for r in runs)
    cpu = statistics.median(r.work_cpu_s for r in runs)
    work = runs[0]
    return {
        "runs": len(runs),
        "seconds": round(seconds, 2),
        "documents_per_min": round(work.documents / seconds * 60, 1),
        "pages_per_s": round(work.pages / seconds, 2),
        "chunks_per_s": round(work.chunks / seconds, 1),
        "cpu_s": round(cpu, 1),
        "cpu_s_by_process": {
            name: round(statistics.median(r.cpu_s.get(name, 0.0) for r in runs), 1)
            for name in runs[0].cpu_s
        },
        "cpu_s_per_document": round(cpu / work.documents, 3),
        "cores_busy": round(statistics.median(r.cores_busy for r in runs), 2),
        "others_cores_busy": round(
            statistics.median(r.extra["others_cores_busy"] for r in runs), 2
        ),
    }


def ceiling(configurations: dict[str, dict[str, Any]], cpus: int) -> dict[str, Any]:
    """The most documents a minute ``cpus`` cores could take at the least CPU per
    document any configuration spent, and how near the best one came."""
    cheapest = min(configurations, key=lambda n: configurations[n]["cpu_s_per_document"])
    best = max(configurations, key=lambda n: configurations[n]["documents_per_min"])
    most = cpus / configurations[cheapest]["cpu_s_per_document"] * 60
    reached = configurations[best]["documents_per_min"]
    return {
        "cpu_s_per_document": configurations[cheapest]["cpu_s_per_document"],
        "at": cheapest,
        "documents_per_min": round(most, 1),
        "best": best,
        "best_documents_per_min": reached,
        "best_share": round(reached / most, 2),
    }


def statement(report: dict[str, Any], cpus: int) -> str:
    """What the figures say about the design and about this machine, in words."""
    by = report["configurations"]
    floor, one = by[FLOOR], by.get(ONE_OF_EACH.name)
    if one is None:
        return "The system with one extractor and one embedder was not measured."
    efficiency = report["efficiency"][ONE_OF_EACH.name]
    embedding = sum(s for name, s in one["cpu_s_by_process"].items() if name.startswith("embedder"))
    words = [
        f"One extractor and one embedder reach {efficiency} of the floor's throughput "
        f"({'meets' if efficiency >= GOAL_EFFICIENCY else 'misses'} the goal of "
        f"{GOAL_EFFICIENCY}), with {one['cpu_s_per_document']} CPU-s per document against "
        f"the floor's {floor['cpu_s_per_document']} (broker, gateway and status service "
        f"included; the embedder alone {round(100 * embedding / one['cpu_s'])} % of it).",
        f"The floor keeps {floor['cores_busy']} of {cpus} cores busy, the system "
        f"{one['cores_busy']}.",
    ]
    if efficiency > 1:
        why = []
        if one["cores_busy"] > 1.1 * floor["cores_busy"]:
            why.append("extraction and embedding run at once, in their own processes")
        if one["cpu_s_per_document"] < floor["cpu_s_per_document"]:
            why.append("it spends less CPU per document than the floor")
        if why:
            words.append(f"It is faster than the floor: {'; '.join(why)}.")
    for name, ratio in report["scaling"].items():
        more = by[name]
        words.append(
            f"{SYSTEMS[name].label}: {ratio}x the throughput of one of each, "
            f"{more['cores_busy']} cores busy, {more['cpu_s_per_document']} CPU-s per document."
        )
    split, default = by.get(f"system_2x2_blas{SPLIT_THREADS}"), by.get("system_2x2")
    if split and default:
        contended = default["cpu_s_per_document"] > 1.15 * split["cpu_s_per_document"]
        words.append(
            f"Two embedders with {SPLIT_THREADS} BLAS thread(s) each spend "
            f"{split['cpu_s_per_document']} CPU-s per document, with OpenBLAS' default "
            f"{default['cpu_s_per_document']}: "
            + (
                "the default's threads (cores x replicas) contend for the cores."
                if contended
                else "their threads' contention costs little here."
            )
        )
    bound = report["more_replicas_can_gain_at_most"]
    words.append(
        f"One replica of each keeps {one['cores_busy']} of {cpus} cores busy, so at its CPU "
        f"per document more replicas can gain at most {bound}x on this machine."
    )
    ceiling = report["machine_ceiling"]
    best_busy = report["configurations"][ceiling["best"]]["cores_busy"]
    busiest = report["others_cores_busy_at_most"]
    if ceiling["best_share"] >= 0.85:
        verdict = "here the machine is the limit, not the design; only more cores would help."
    elif busiest > DISTURBED:
        verdict = f"other processes had part of the cores meanwhile (up to {busiest})."
    else:
        verdict = f"it kept {best_busy} of {cpus} cores busy, so the cores are not the only limit."
    words.append(
        f"At the least CPU per document measured ({ceiling['cpu_s_per_document']} CPU-s, "
        f"{ceiling['at']}), {cpus} cores can take at most {ceiling['documents_per_min']} "
        f"documents/min; the best configuration, {ceiling['best']}, reached "
        f"{ceiling['best_documents_per_min']} ({ceiling['best_share']} of it): {verdict}"
    )
    if busiest > DISTURBED:
        words.append(
            f"Other processes kept up to {busiest} of the {cpus} cores busy during the "
            "measured runs: these figures are disturbed; measure on a quiet machine."
        )
    return " ".join(words)


def report_of(
    runs: list[Run], args: argparse.Namespace, qdrant: tuple[str, str], took_s: float
) -> dict[str, Any]:
    by: dict[str, list[Run]] = {}
    for run in runs:
        by.setdefault(run.configuration, []).append(run)
    configurations = {name: figures(rs) for name, rs in by.items()}
    floor_s = configurations[FLOOR]["seconds"]
    floor_by_round = {r.round: r.seconds for r in by[FLOOR]}
    systems = [name for name in configurations if name != FLOOR]
    efficiency = {name: round(floor_s / configurations[name]["seconds"], 3) for name in systems}
    one = configurations.get(ONE_OF_EACH.name)
    cpus = os.cpu_count() or 1
    work = by[FLOOR][0]
    report: dict[str, Any] = {
        "goal_efficiency": GOAL_EFFICIENCY,
        # Throughput over the floor's: the floor's median seconds over the system's.
        "efficiency": efficiency,
        "efficiency_goal_met": {name: e >= GOAL_EFFICIENCY for name, e in efficiency.items()},
        # Each run against the floor of its own round.
        "efficiency_by_round": {
            name: [round(floor_by_round[r.round] / r.seconds, 3) for r in by[name]]
            for name in systems
        },
        # Throughput over that of one extractor and one embedder.
        "scaling": {
            name: round(one["seconds"] / configurations[name]["seconds"], 3)
            for name in systems
            if one is not None and name != ONE_OF_EACH.name
        },
        "more_replicas_can_gain_at_most": round(cpus / one["cores_busy"], 2) if one else None,
        "machine_ceiling": ceiling(configurations, cpus),
        "configurations": configurations,
        "work_per_run": {
            "documents": work.documents,
            "completed": work.completed,
            "failed": work.failed,
            "pages": work.pages,
            "chunks": work.chunks,
            "copies_of_the_corpus": args.copies,
        },
        "qdrant": {"kind": qdrant[0], "how": qdrant[1]},
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "OpenBLAS' default: one per core")
        + " in the floor and in embedders whose configuration does not say",
        "rounds": args.rounds,
        "upload_clients": args.clients,
        "nothing_lost": all(not r.mismatches for r in runs)
        and all(r.documents == work.documents for r in runs),
        "no_rebalance_while_measuring": all(
            r.extra.get("consumer_groups_unchanged", True) for r in runs
        ),
        # Cores other processes kept busy during the measured runs: above
        # DISTURBED the figures say more about them than about docflow.
        "others_cores_busy_at_most": max(r.extra["others_cores_busy"] for r in runs),
        "wall_clock_s": round(took_s),
        "runs": [r.summary() for r in runs],
    }
    report["statement"] = statement(report, cpus)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--copies", type=int, default=3, help="times the corpus is repeated")
    parser.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help=f"configurations measured beside the floor, of {', '.join(SYSTEMS)}",
    )
    parser.add_argument("--qdrant", choices=("auto", "server", "local"), default="auto")
    parser.add_argument("--clients", type=int, default=4, help="concurrent uploading clients")
    args = parser.parse_args()

    began = time.monotonic()
    kind = qdrant_kind(args.qdrant)
    files = corpus_documents(args.copies)
    order = [FLOOR, *(SYSTEMS[name].name for name in args.systems.split(","))]
    runs: list[Run] = []
    outcomes: dict[str, Processed] = {}
    with tempfile.TemporaryDirectory(prefix="docflow-bench-") as tmp:
        home = Path(tmp)
        with LocalKafka(
            home=home / "kafka", port=free_port(), controller_port=free_port(), libs=ensure_jars()
        ) as kafka:
            asyncio.run(ensure_topics(kafka.bootstrap_servers, topics.specs()))
            for number in range(1, args.rounds + 1):
                # Rotated, so that no configuration always follows the same one.
                # Round 1 starts with the floor, whose outcomes the systems' are checked against.
                turn = (number - 1) % len(order)
                for name in order[turn:] + order[:turn]:
                    where = home / f"round-{number}" / name
                    with fresh_qdrant(kind[0]) as qdrant:
                        if name == FLOOR:
                            run, done = run_floor(where, files, qdrant, kafka.pid, number)
                            outcomes.update((p.name, o) for p, o in zip(files, done, strict=True))
                        else:
                            config = SYSTEMS[name]
                            run = run_system(
                                kafka, where, config, files, qdrant, outcomes, number, args.clients
                            )
                    runs.append(run)
                    print(
                        f"round {number}, {name}: {run.seconds:.1f} s, {run.work_cpu_s:.0f} CPU-s, "
                        f"{len(run.mismatches)} documents unlike the floor's",
                        flush=True,
                    )
    write_report("efficiency", report_of(runs, args, kind, time.monotonic() - began))


if __name__ == "__main__":
    main()
