"""The fault-injection suite (tests/support/faults.py): a small run and the hostile
events in ``make test``, every scenario of issue 7 at full size with ``make faults``
(DOCFLOW_FAULTS=full).

Each run writes its report to .artifacts/faults/<scenario>.json; a failure lists
every document off its expected outcome, every poison message not dead-lettered
and every cross-tenant effect.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.corpus import REPO_ROOT
from support.faults import (
    OCR_SANDBOX_MEMORY_MIB,
    Fault,
    Report,
    Scenario,
    assert_held,
    run_scenario,
    write_report,
)
from support.openai_server import EmbeddingsServer, embeddings_server
from support.qdrant import NO_SERVER, running_qdrant

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO_ROOT / ".artifacts" / "faults"

SMALL = Scenario(
    "small: each service killed or stopped once, the broker restarted, all stopped "
    "with the broker paused",
    documents=16,
    upload_s=24,
    faults=(
        Fault("kill:embedder", at=4, seconds=1),
        Fault("term:extractor", at=8, seconds=1),
        Fault("kill:status", at=12, seconds=1),
        Fault("broker-restart", at=16, seconds=3),
        Fault("term:gateway", at=20, seconds=1),
        Fault("term-all-broker-paused", at=22, seconds=1),
    ),
    # Measured: 0 in a run on 2 busy cores; a few documents' steps redone may happen.
    max_redeliveries=30,
)

# Issue 20, finding 8: with auth on, acme and globex upload; mid-run, 100 KB of
# "[" on every document topic, done = 10**20, a tenant id longer than its column,
# non-numeric docflow-retries/-due-ms headers on the retry and document topics,
# and globex's forged events against acme's documents (tests/support/hostile_events.py).
HOSTILE = Scenario(
    "hostile events: poison pills, garbage headers and forged cross-tenant events mid-run",
    documents=14,
    upload_s=28,
    faults=(),
    # No fault makes work be redone; a forged event may repeat an id or a step.
    max_redeliveries=10,
    hostile=True,
)
# Past this, a hostile run's documents are stuck (they finish in seconds otherwise).
HOSTILE_DRAIN_S = 90

FULL = [
    Scenario.random(
        "services killed: extractor, embedder, status 5 times each",
        [("kill:extractor", 5, 1.0), ("kill:embedder", 5, 1.0), ("kill:status", 5, 1.0)],
        documents=200,
        upload_s=150,
        seed=7,
    ),
    Scenario.random(
        "broker stopped and restarted 3 times",
        [("broker-restart", 3, 5.0)],
        documents=200,
        upload_s=120,
        seed=8,
    ),
    Scenario(
        "broker paused (SIGSTOP) for 20 s",
        documents=200,
        upload_s=90,
        faults=(Fault("broker-pause", at=30, seconds=20),),
    ),
    Scenario.random(
        "graceful stops: each service SIGTERMed 3 times, and all with the broker paused",
        [
            ("term:extractor", 3, 1.0),
            ("term:embedder", 3, 1.0),
            ("term:status", 3, 1.0),
            ("term:gateway", 3, 1.0),
            ("term-all-broker-paused", 1, 2.0),
        ],
        documents=200,
        upload_s=150,
        seed=9,
    ),
    # Issue 22: scans read by the OCR consumer in ranges while it is killed (its
    # ranges in flight read again by the restarted one), and a hostile scan
    # failing alone in the OCR stage, within its sandbox's memory limit.
    Scenario.random(
        "OCR: the OCR consumer killed 3 times and the extractor once, with scans and a "
        "hostile scan",
        [("kill:ocr", 3, 1.0), ("kill:extractor", 1, 1.0)],
        documents=24,
        upload_s=90,
        seed=10,
        ocr=True,
    ),
    Scenario(
        "Qdrant unavailable for 30 s",
        documents=200,
        upload_s=90,
        faults=(Fault("qdrant-down", at=30, seconds=30),),
    ),
    Scenario(
        "embeddings endpoint down for 30 s",
        documents=200,
        upload_s=90,
        faults=(Fault("endpoint-down", at=30, seconds=30),),
    ),
]

# The same at full size: 200 documents of acme and globex, the same hostilities.
HOSTILE_FULL = dataclasses.replace(HOSTILE, documents=200, upload_s=120)

SCENARIOS = (
    [*FULL, HOSTILE_FULL] if os.environ.get("DOCFLOW_FAULTS") == "full" else [SMALL, HOSTILE]
)


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddingsServer]:
    with embeddings_server(dimension=8) as running:
        yield running


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name.split(":")[0] for s in SCENARIOS])
def test_nothing_is_lost_or_done_twice(
    scenario: Scenario, server: EmbeddingsServer, tmp_path: Path
) -> None:
    slug = scenario.name.split(":")[0].replace(" ", "-")
    logs = tmp_path / "logs"
    if any(f.kind == "qdrant-down" for f in scenario.faults):
        with running_qdrant() as qdrant:
            if qdrant is None or not qdrant.can_go_down:
                pytest.skip(f"{NO_SERVER}; a server we can stop and start")
            report = run_scenario(scenario, tmp_path, server, qdrant=qdrant, log_dir=logs)
    elif scenario.hostile:
        # Small: its documents finish in seconds, so longer means stuck; at full
        # size, the default drain.
        drain = HOSTILE_DRAIN_S if scenario.documents <= HOSTILE.documents else 600
        report = run_scenario(scenario, tmp_path, server, drain_timeout_s=drain, log_dir=logs)
    else:
        report = run_scenario(scenario, tmp_path, server, log_dir=logs)
    write_report([report], ARTIFACTS / f"{slug}.json")
    keep_log_tails(logs, ARTIFACTS / "logs" / slug)
    assert_held(report)
    if scenario.ocr:
        assert_hostile_scans_named_the_limit(report)


def assert_hostile_scans_named_the_limit(report: Report) -> None:
    """Each hostile scan failed on the OCR consumer's memory limit, saying so."""
    hostile = [d for d in report.documents if d["file"] == "noise-scan.pdf"]
    assert hostile, "no hostile scan was uploaded"
    limit = f"more than {OCR_SANDBOX_MEMORY_MIB} MiB of memory"
    assert all(limit in (d["error"] or "") for d in hostile), hostile


def keep_log_tails(logs: Path, kept: Path, size: int = 256 * 1024) -> None:
    """The end of each service's log, for whoever reads a failure (a poison pill
    redelivered forever writes hundreds of megabytes)."""
    shutil.rmtree(kept, ignore_errors=True)
    kept.mkdir(parents=True)
    for log in sorted(logs.glob("*.log")):
        with log.open("rb") as source:
            source.seek(max(0, log.stat().st_size - size))
            (kept / log.name).write_bytes(source.read())
