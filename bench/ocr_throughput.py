"""The whole system's throughput with OCR on and off, and the OCR stage's pages/s.

Two measures on one broker, each configuration in turn, the order rotating
from round to round (medians over ``--rounds``):

- **Text PDFs, OCR on vs off.** The corpus' PDFs that have a text layer (those
  of tests/corpus/pdf/ but its picture-only ones and the 117-page one),
  ``--copies`` times over, through the running system with 1 extractor and 1
  embedder as bench/efficiency.py measures it (``efficiency.measure``: warmed
  up, groups settled, every file uploaded at once, timed to the end of the
  last document): with OCR on (the default: ``DOCFLOW_OCR_LANGUAGES=eng``, the
  OCR consumer running) and off (``DOCFLOW_OCR_LANGUAGES=''``, no OCR
  consumer). Every document must end as in the other configuration and as
  the single-process floor's (bench/efficiency.py), so no text page was OCR'd.
- **A scan through the OCR stage, 1 vs 2 OCR consumers.** A ``--scan-pages``
  page scan (the corpus' two scans in turn, tests/support/scans.py) in ranges
  of ``--range-pages``, uploaded alone once the OCR consumers' group has
  settled, timed from upload to completed: OCR pages per second, and the
  ranges each consumer read.

Writes bench/results/ocr_throughput.json.

    .venv/bin/python bench/ocr_throughput.py [--rounds 3] [--copies 3] [--scan-pages 16]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from efficiency import (
    FLOOR,
    ONE_OF_EACH,
    Qdrant,
    Run,
    consumer_groups,
    figures,
    fresh_qdrant,
    measure,
    qdrant_kind,
    run_floor,
    system_services,
)
from harness import CORPUS, ROOT, write_report
from inprocess import LONG_PDF, Processed
from prometheus_client.parser import text_string_to_metric_families
from pypdf import PdfReader

from docflow_extractor.domain.ocr import OcrPolicy
from docflow_extractor.entrypoints.ocr import GROUP_ID as OCR_GROUP
from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.processes import free_port
from docflow_local.stack import Service, Stack
from docflow_shared import topics
from docflow_shared.kafka_admin import ensure_topics

sys.path.insert(0, str(ROOT / "tests"))
from support.corpus import IMAGE_ONLY
from support.scans import scan

OCR_ON, OCR_OFF = "ocr_on", "ocr_off"
ENV = {"DOCFLOW_LOG_LEVEL": "WARNING", "DOCFLOW_RATE_LIMIT": "100000/second"}


def text_pdfs(copies: int) -> list[Path]:
    """The corpus' PDFs with a text layer on every page (or that fail before any
    page is read), but the 117-page one: none of their pages is OCR'd."""
    files = [
        p
        for p in sorted((CORPUS / "pdf").glob("*.pdf"))
        if p.name not in IMAGE_ONLY and p.name != LONG_PDF and _text_on_every_page(p)
    ]
    return files * copies


def _text_on_every_page(path: Path) -> bool:
    """Whether each page's text layer has the letters and digits that spare it OCR."""
    try:
        reader = PdfReader(path)
        texts = [page.extract_text() or "" for page in reader.pages]
    except Exception:  # encrypted or damaged: fails before any page, OCR on or off
        return True
    return all(sum(c.isalnum() for c in text) >= OcrPolicy.min_text_chars for text in texts)


def services_of(name: str, qdrant: Qdrant, data_dir: Path, ocr_consumers: int) -> list[Service]:
    """1 extractor, 1 embedder, and ``ocr_consumers`` OCR consumers (none with OCR off)."""
    chosen = [s for s in system_services(ONE_OF_EACH, qdrant, data_dir) if s.name != "ocr"]
    if name == OCR_OFF:
        return chosen
    ocr = Service("ocr", "docflow_extractor", free_port(), args=("ocr",))
    return chosen + [
        dataclasses.replace(ocr, name=f"ocr-{n}" if n > 1 else "ocr", port=free_port())
        for n in range(1, ocr_consumers + 1)
    ]


def run_text(
    kafka: LocalKafka,
    home: Path,
    name: str,
    files: list[Path],
    qdrant: Qdrant,
    floor: dict[str, Processed],
    number: int,
    clients: int,
) -> Run:
    """The text PDFs through a fresh stack with OCR on or off."""
    data_dir = home / "data"
    env = {**ENV, **({"DOCFLOW_OCR_LANGUAGES": ""} if name == OCR_OFF else {})}
    stack = Stack(
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        data_dir=data_dir,
        services=services_of(name, qdrant, data_dir, 1),
        log_dir=home / "logs",
        extra_env=env,
    )
    stack.start()
    try:
        run = asyncio.run(measure(stack, kafka, ONE_OF_EACH, files, qdrant, floor, number, clients))
    finally:
        stack.stop()
    return dataclasses.replace(run, configuration=name)


async def ranges_read(http: httpx.AsyncClient, service: Service) -> float:
    text = (await http.get(f"{service.url}/metrics")).raise_for_status().text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "docflow_ocr_ranges_total"
    )


def run_scan(
    kafka: LocalKafka, home: Path, consumers: int, pages: int, range_pages: int, qdrant: Qdrant
) -> dict[str, Any]:
    """One ``pages``-page scan through a fresh stack with ``consumers`` OCR consumers."""
    data_dir = home / "data"
    stack = Stack(
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        data_dir=data_dir,
        services=services_of(OCR_ON, qdrant, data_dir, consumers),
        log_dir=home / "logs",
        extra_env={**ENV, "DOCFLOW_OCR_RANGE_PAGES": str(range_pages)},
    )
    stack.start()
    try:
        return asyncio.run(_scan(stack, kafka, consumers, scan(pages), pages))
    finally:
        stack.stop()


async def _scan(
    stack: Stack, kafka: LocalKafka, consumers: int, data: bytes, pages: int
) -> dict[str, Any]:
    await consumer_groups(
        kafka.bootstrap_servers, {OCR_GROUP: (topics.OCR_REQUESTED, consumers)}, settle_s=120
    )
    ocr = [s for s in stack.services if s.args == ("ocr",)]
    async with httpx.AsyncClient(timeout=120) as http:
        started_at, started = time.time(), time.perf_counter()
        response = await http.post(
            f"{stack.url('gateway')}/v1/documents", files=[("file", ("scan.pdf", data))]
        )
        response.raise_for_status()
        [document] = response.json()["documents"]
        while True:
            status = (await http.get(document["status_url"])).json()
            if status["status"] in ("completed", "failed", "cancelled"):
                break
            if time.perf_counter() - started > 3600:
                raise TimeoutError("the scan did not end within an hour")
            await asyncio.sleep(0.5)
        ended = datetime.fromisoformat(status["completed_at"] or status["updated_at"])
        seconds = ended.timestamp() - started_at
        return {
            "consumers": consumers,
            "status": status["status"],
            "pages": status["pages"],
            "chunks": status["chunks_total"],
            "seconds": round(seconds, 2),
            "ocr_pages_per_s": round(pages / seconds, 3),
            "ranges_by_consumer": {s.name: await ranges_read(http, s) for s in ocr},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--copies", type=int, default=3, help="times the text PDFs are repeated")
    parser.add_argument("--clients", type=int, default=4, help="concurrent uploading clients")
    parser.add_argument("--scan-pages", type=int, default=16, help="0: no scan measure")
    parser.add_argument("--range-pages", type=int, default=2)
    parser.add_argument("--qdrant", choices=("auto", "server", "local"), default="local")
    args = parser.parse_args()

    began = time.monotonic()
    kind = qdrant_kind(args.qdrant)
    files = text_pdfs(args.copies)
    runs: list[Run] = []
    scans: list[dict[str, Any]] = []
    floor: dict[str, Processed] = {}
    with tempfile.TemporaryDirectory(prefix="docflow-bench-") as tmp:
        home = Path(tmp)
        with LocalKafka(
            home=home / "kafka", port=free_port(), controller_port=free_port(), libs=ensure_jars()
        ) as kafka:
            asyncio.run(ensure_topics(kafka.bootstrap_servers, topics.specs()))
            with fresh_qdrant(kind[0]) as qdrant:
                _, done = run_floor(home / FLOOR, files, qdrant, kafka.pid, 0)
            floor.update((p.name, o) for p, o in zip(files, done, strict=True))
            order = [OCR_ON, OCR_OFF]
            for number in range(1, args.rounds + 1):
                turn = (number - 1) % len(order)
                for name in order[turn:] + order[:turn]:
                    with fresh_qdrant(kind[0]) as qdrant:
                        run = run_text(
                            kafka,
                            home / f"round-{number}" / name,
                            name,
                            files,
                            qdrant,
                            floor,
                            number,
                            args.clients,
                        )
                    runs.append(run)
                    print(
                        f"round {number}, {name}: {run.seconds:.1f} s, "
                        f"{len(run.mismatches)} documents unlike the floor's",
                        flush=True,
                    )
                if not args.scan_pages:
                    continue
                for consumers in (1, 2) if number % 2 else (2, 1):
                    with fresh_qdrant(kind[0]) as qdrant:
                        result = run_scan(
                            kafka,
                            home / f"round-{number}" / f"scan-{consumers}",
                            consumers,
                            args.scan_pages,
                            args.range_pages,
                            qdrant,
                        )
                    scans.append({"round": number, **result})
                    print(f"round {number}, scan with {consumers} OCR consumers: {result}")
    write_report("ocr_throughput", report_of(runs, scans, args, kind, time.monotonic() - began))


def report_of(
    runs: list[Run],
    scans: list[dict[str, Any]],
    args: argparse.Namespace,
    kind: tuple[str, str],
    seconds: float,
) -> dict[str, Any]:
    text = {
        name: figures([r for r in runs if r.configuration == name]) for name in (OCR_ON, OCR_OFF)
    }
    on, off = text[OCR_ON], text[OCR_OFF]
    by_consumers: dict[str, Any] = {}
    for consumers in sorted({s["consumers"] for s in scans}):
        mine = [s for s in scans if s["consumers"] == consumers]
        by_consumers[str(consumers)] = {
            "runs": len(mine),
            "seconds": statistics.median(s["seconds"] for s in mine),
            "ocr_pages_per_s": statistics.median(s["ocr_pages_per_s"] for s in mine),
            "all_completed": all(s["status"] == "completed" for s in mine),
            "ranges_by_consumer": [s["ranges_by_consumer"] for s in mine],
        }
    return {
        "rounds": args.rounds,
        "copies": args.copies,
        "documents": runs[0].documents if runs else 0,
        "pages": runs[0].pages if runs else 0,
        "qdrant": kind[1],
        "text_pdfs": text,
        "ocr_on_over_off": round(on["documents_per_min"] / off["documents_per_min"], 3),
        "mismatches": sorted({m for r in runs for m in r.mismatches}),
        "scan_pages": args.scan_pages,
        "range_pages": args.range_pages,
        "scan": by_consumers,
        "runs": [r.summary() for r in runs],
        "scans": scans,
        "seconds": round(seconds, 1),
    }


if __name__ == "__main__":
    main()
