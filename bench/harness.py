"""What every benchmark in bench/ shares: where the corpus is, and how results are written."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

# First: importing the embedder sets OpenBLAS's options before numpy loads,
# so that what is measured in this process runs as the service does.
import docflow_embedder  # noqa: F401
from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.processes import free_port
from docflow_local.stack import Stack, services
from docflow_shared.blobstore import BlobStore, original_key
from docflow_shared.events import DocumentUploaded
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.topics import specs

ROOT = Path(__file__).resolve().parents[1]
# The repository's copy (tests/corpus/) unless DOCFLOW_CORPUS_DIR points at another. The
# benchmarks read its pdf/ and markdown/ only: the scans and office files of
# scanned/ and office/ are not read before issue 22, and would change what is measured.
CORPUS = Path(os.environ.get("DOCFLOW_CORPUS_DIR") or ROOT / "tests" / "corpus")
RESULTS = ROOT / "bench" / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU, memory, system, Python, Java, commit."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor() or "unknown",
    )
    memory = next(
        (
            round(int(line.split()[1]) / 1024**2, 1)
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        None,
    )

    def output(*command: str) -> str | None:
        try:
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        text = (done.stdout or done.stderr).strip()
        return text.splitlines()[0] if done.returncode == 0 and text else None

    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": memory,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "java": output("java", "-version"),
        "commit": output("git", "rev-parse", "--short", "HEAD"),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_report(name: str, report: dict[str, Any]) -> None:
    """Write ``bench/results/<name>.json`` (with the machine it ran on) and print it."""
    report = {"benchmark": name, "machine": machine(), **report}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def stored_pdf(blobs: BlobStore, path: Path, number: int) -> DocumentUploaded:
    """``path`` put in the blob store, and the upload event the gateway would send for it."""
    event = DocumentUploaded(
        document_id=UUID(int=number),
        tenant_id="bench",
        correlation_id="bench",
        filename=path.name,
        content_type="application/pdf",
        size_bytes=path.stat().st_size,
        sha256="0" * 64,
        blob_key=original_key("bench", UUID(int=number)),
    )
    with blobs.writer(event.blob_key) as out:
        out.write(path.read_bytes())
    return event


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(*roots: int) -> float:
    """CPU time used so far by processes ``roots`` and all their descendants (Linux /proc).

    Counts each live process's own time and what its finished children used
    (``cutime``/``cstime``), so worker processes that came and went are included.
    """
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        used[pid] = sum(int(f) for f in fields[11:15]) / _TICKS
    wanted = set(roots)
    grew = True
    while grew:
        more = {pid for pid, ppid in parent.items() if ppid in wanted} - wanted
        wanted |= more
        grew = bool(more)
    return sum(used.get(pid, 0.0) for pid in wanted)


def machine_cpu_seconds() -> float:
    """CPU time every process on the machine has used so far, all cores together
    (Linux /proc/stat: all but idle and iowait), to tell what others used meanwhile."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / _TICKS


@contextlib.contextmanager
def running_system(env: Mapping[str, str], only: Collection[str] | None = None) -> Iterator[Stack]:
    """The whole system as ``make run`` starts it (a broker of its own, its topics and
    every service, or those named in ``only``, with ``env`` besides quiet logs), in a
    temporary folder; stopped on leaving."""
    with tempfile.TemporaryDirectory(prefix="docflow-bench-") as tmp:
        home = Path(tmp)
        with LocalKafka(
            home=home / "kafka", port=free_port(), controller_port=free_port(), libs=ensure_jars()
        ) as kafka:
            asyncio.run(ensure_topics(kafka.bootstrap_servers, specs()))
            stack = Stack(
                kafka_bootstrap_servers=kafka.bootstrap_servers,
                data_dir=home / "data",
                services=[
                    service
                    for service in services(free_port(), free_port(), free_port(), free_port())
                    if only is None or service.name in only
                ],
                log_dir=home / "logs",
                extra_env={"DOCFLOW_LOG_LEVEL": "WARNING", **env},
            )
            stack.start()
            try:
                yield stack
            finally:
                stack.stop()
