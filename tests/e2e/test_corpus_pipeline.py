"""The whole system on a real Kafka broker, the four services as separate
processes, every file of the corpus (tests/corpus/) sent through HTTP.

What each file must reach is tests/corpus/README.md (support/corpus.py). The
outcomes later issues deliver are checked in the same run, by tests that
expect them to fail (support/corpus.py's ``marks``).
Figures (time to drain the corpus, progress steps seen) are written to
.artifacts/e2e/summary.json.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from qdrant_client import QdrantClient, models

from docflow_embedder.adapters.embedded import open_embedded
from docflow_embedder.adapters.minilm import MiniLMEmbedder
from docflow_embedder.adapters.qdrant import collection_name
from docflow_embedder.domain import point_id
from docflow_local.stack import Stack
from docflow_shared import topics
from support.corpus import (
    REPO_ROOT,
    TRANSCRIPT_SHARE,
    Expected,
    expectations,
    marks,
    params,
    words,
)
from support.stacks import running_stack
from support.waiting import wait_until

ARTIFACTS = REPO_ROOT / ".artifacts" / "e2e"
TERMINAL = {"completed", "failed", "cancelled"}
LONG_PDF = "GeoTopo-komprimiert.pdf"


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_stack(
        kafka_bootstrap, tmp_path_factory.mktemp("e2e") / "data", ARTIFACTS / "logs"
    ) as running:
        yield running


@dataclass
class CorpusRun:
    """What the corpus run observed."""

    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # filename → final status
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)  # filename → upload answer
    refused: dict[str, str] = field(default_factory=dict)  # filename → the gateway's answer
    long_pdf_progress: list[tuple[str, int]] = field(default_factory=list)  # (stage, progress)
    seconds: float = 0.0


def _upload(http: httpx.Client, gateway: str, paths: list[Path]) -> list[dict[str, Any]]:
    files = [("file", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
    response = http.post(f"{gateway}/v1/documents", files=files)
    assert response.status_code == 202, response.text
    documents: list[dict[str, Any]] = response.json()["documents"]
    return documents


@pytest.fixture(scope="module")
def corpus_run(stack: Stack) -> CorpusRun:
    run = CorpusRun()
    expected = expectations()
    today = [e for e in expected if e.pending is None]
    pdfs = [e.path for e in today if e.path.suffix == ".pdf"]
    markdown = [e.path for e in today if e.path.suffix == ".md"]
    office = [e.path for e in today if e.path.parent.name == "office"]
    later = [e.path for e in expected if e.pending is not None]
    gateway = stack.url("gateway")
    started = time.monotonic()
    with httpx.Client(timeout=30) as http:
        # The long PDF first, so its progress is watched from the start;
        # the Markdown files together, as one multi-file request.
        pdfs.sort(key=lambda p: p.name != LONG_PDF)
        answers = [doc for path in pdfs for doc in _upload(http, gateway, [path])]
        answers += _upload(http, gateway, markdown)
        # Word, PowerPoint, Excel, EPUB and HTML, named as they are: the
        # gateway tells each from its bytes.
        answers += _upload(http, gateway, office)
        # Files of later issues one by one: the gateway may refuse them today
        # (their tests then fail as expected), and refuse no other with them.
        for path in later:
            response = http.post(
                f"{gateway}/v1/documents",
                files=[("file", (path.name, path.read_bytes(), "application/octet-stream"))],
            )
            if response.status_code == 202:
                answers += response.json()["documents"]
            else:
                run.refused[path.name] = f"{response.status_code} {response.text}"
        run.accepted = {doc["filename"]: doc for doc in answers}

        def all_terminal() -> bool:
            for name, doc in run.accepted.items():
                if run.documents.get(name, {}).get("status") in TERMINAL:
                    continue
                response = http.get(doc["status_url"])
                if response.status_code == 404:
                    continue  # the status service has not read the upload event yet
                if response.status_code == 429:
                    return False  # the tenant's rate limit: poll again after a pause
                assert response.status_code == 200, response.text
                body = response.json()
                run.documents[name] = body
                if name == LONG_PDF:
                    run.long_pdf_progress.append((body["stage"], body["progress"]))
            return all(d.get("status") in TERMINAL for d in run.documents.values()) and len(
                run.documents
            ) == len(run.accepted)

        wait_until(all_terminal, timeout_s=900, interval_s=0.2, what="every document to finish")
    run.seconds = time.monotonic() - started
    steps = sorted({p for _, p in run.long_pdf_progress})
    (ARTIFACTS / "summary.json").write_text(
        json.dumps(
            {
                "documents": len(run.accepted),
                "seconds_upload_to_all_terminal": round(run.seconds, 2),
                "long_pdf_progress_values": steps,
                "chunks_total": sum(d["chunks_total"] or 0 for d in run.documents.values()),
            },
            indent=2,
        )
    )
    return run


def _final(corpus_run: CorpusRun, expected: Expected) -> dict[str, Any]:
    """The file's final status; fails (not crashes) where the gateway refused the file."""
    name = expected.path.name
    assert name in corpus_run.documents, f"{name} not accepted: {corpus_run.refused.get(name)}"
    return corpus_run.documents[name]


@pytest.mark.parametrize("expected", params(expectations()))
def test_each_corpus_file_reaches_its_outcome(corpus_run: CorpusRun, expected: Expected) -> None:
    doc = _final(corpus_run, expected)
    assert doc["status"] == expected.status, doc
    assert doc["id"] == corpus_run.accepted[expected.path.name]["id"]
    assert doc["created_at"]
    assert doc["updated_at"]
    assert doc["completed_at"]
    if expected.status == "failed":
        assert doc["error"]["code"] == expected.error_code
        assert doc["error"]["message"]
        assert doc["message"] == doc["error"]["message"]
        return
    assert doc["error"] is None
    assert doc["progress"] == 100
    assert doc["stage"] == "indexed"
    assert doc["created_at"] <= doc["started_at"] <= doc["completed_at"]
    assert doc["chunks_embedded"] == doc["chunks_total"]
    if expected.pages is not None:
        assert doc["pages"] == expected.pages
    if expected.has_chunks:
        assert doc["chunks_total"] >= 1
    else:
        assert doc["chunks_total"] == 0
        assert "No extractable text" in doc["message"]


@pytest.mark.parametrize(
    "expected",
    [
        pytest.param(e, id=e.path.name, marks=marks(e.pending or e.message_pending))
        for e in expectations()
        if e.has_chunks is False
    ],
)
def test_a_file_without_text_says_no_text_was_found_even_after_ocr(
    corpus_run: CorpusRun, expected: Expected
) -> None:
    doc = _final(corpus_run, expected)
    assert doc["chunks_total"] == 0
    # Whatever the words, as the README puts it: no text was found, even after OCR.
    assert re.search(r"\bno\b.*\btext\b", doc["message"], re.IGNORECASE), doc["message"]
    assert "OCR" in doc["message"], doc["message"]


def test_the_long_pdf_shows_progress_in_several_steps(corpus_run: CorpusRun) -> None:
    values = [p for _, p in corpus_run.long_pdf_progress]
    assert values == sorted(values), "progress went backwards"
    between = {p for p in values if 0 < p < 100}
    assert len(between) >= 3, f"progress seen: {sorted(set(values))}"
    assert {"extracting", "embedding"} <= {stage for stage, _ in corpus_run.long_pdf_progress}


def test_running_services_answer_probes_and_problems(stack: Stack, corpus_run: CorpusRun) -> None:
    with httpx.Client(timeout=10) as http:
        for service in stack.services:
            assert http.get(f"{service.url}/healthz").status_code == 200
            assert http.get(f"{service.url}/readyz").json()["status"] == "ok"
        metrics = http.get(f"{stack.url('extractor')}/metrics").text
        assert "faststream_received_messages_total" in metrics
        refused = http.post(
            f"{stack.url('gateway')}/v1/documents", files={"file": ("x.bin", b"\x7fELF\x00\x01")}
        )
        assert refused.status_code == 415
        assert refused.headers["content-type"] == "application/problem+json"
        missing = http.get(
            f"{stack.url('status')}/v1/documents/00000000-0000-0000-0000-000000000000"
        )
        assert missing.status_code == 404


# What each service's /metrics must show once the corpus has gone through
# (issue 8): sample name → labels it must have, for a sample > 0.
EXPECTED_SAMPLES: dict[str, list[tuple[str, dict[str, str]]]] = {
    "gateway": [
        ("http_requests_total", {"handler": "/v1/documents", "method": "POST"}),
        ("http_request_duration_seconds_count", {"handler": "/v1/documents"}),
        ("faststream_published_messages_total", {}),
    ],
    "extractor": [
        ("docflow_stage_duration_seconds_count", {"stage": "extracting"}),
        ("faststream_received_messages_total", {}),
        ("faststream_published_messages_total", {}),
    ],
    "embedder": [
        ("docflow_stage_duration_seconds_count", {"stage": "embedding"}),
        ("docflow_chunks_embedded_total", {}),
        ("docflow_embedding_batch_texts_count", {}),
        ("docflow_embedding_duration_seconds_count", {}),
    ],
    "status": [
        ("docflow_document_duration_seconds_count", {"outcome": "completed"}),
        ("docflow_document_duration_seconds_count", {"outcome": "failed"}),
        ("docflow_documents", {"status": "completed"}),
        ("http_requests_total", {"handler": "/v1/documents/{document_id}"}),
    ],
}
# Present on the services that park or dead-letter messages (0 here: nothing failed
# for a transient reason).
RETRY_FAMILIES = {"docflow_retries", "docflow_dead_letters"}
UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _missing(samples: list[Any], expected: list[tuple[str, dict[str, str]]]) -> list[str]:
    return [
        f"{name}{labels}"
        for name, labels in expected
        if not any(
            s.name == name and labels.items() <= s.labels.items() and s.value > 0 for s in samples
        )
    ]


# The status service's document gauges are refreshed by its watchdog, every
# DOCFLOW_WATCHDOG_EVERY_S (15 s): the corpus may finish just after a refresh.
GAUGES_REFRESHED_S = 40


def _families(http: httpx.Client, url: str) -> list[Any]:
    return list(text_string_to_metric_families(http.get(f"{url}/metrics").text))


def test_each_service_reports_its_metrics(stack: Stack, corpus_run: CorpusRun) -> None:
    with httpx.Client(timeout=10) as http:
        for service, expected in EXPECTED_SAMPLES.items():

            def complete(url: str = stack.url(service), expected: Any = expected) -> Any:
                families = _families(http, url)
                samples = [sample for family in families for sample in family.samples]
                return None if _missing(samples, expected) else families

            families = wait_until(
                complete, timeout_s=GAUGES_REFRESHED_S, interval_s=1, what=f"{service}: {expected}"
            )
            samples = [sample for family in families for sample in family.samples]
            if service != "gateway":
                assert {f.name for f in families} >= RETRY_FAMILIES, service
            # Prometheus naming: no document (or any) ids as label values.
            for sample in samples:
                assert not any(UUID_PATTERN.search(v) for v in sample.labels.values()), sample


# A sentence of each document, as it is in the file (the search must find
# the document by it among all the corpus's chunks).
SEARCHES = [
    ("crazyones-pdfa.pdf", 0, "Here's to the crazy ones. The misfits. The rebels."),
    (
        "google-doc-document.pdf",
        0,
        "Beautiful is better than ugly. Explicit is better than implicit.",
    ),
    ("GeoTopo-komprimiert.pdf", 40, "Ein 1D-Simplizialkomplex heißt Graph."),
]


@pytest.mark.parametrize(("filename", "page", "sentence"), SEARCHES, ids=[s[0] for s in SEARCHES])
def test_search_finds_the_document_a_sentence_comes_from(
    stack: Stack, corpus_run: CorpusRun, filename: str, page: int, sentence: str
) -> None:
    with httpx.Client(timeout=30) as http:
        response = http.get(f"{stack.url('gateway')}/v1/search", params={"q": sentence, "limit": 5})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0]["document_id"] == corpus_run.documents[filename]["id"], [
        (r["filename"], r["score"]) for r in results
    ]
    assert results[0]["filename"] == filename
    # The chunk holding the sentence is among the results (a neighbouring
    # chunk on the same subject may come first).
    assert any(
        r["document_id"] == results[0]["document_id"] and r["page"] <= page + 1 <= r["page_end"]
        for r in results
    )
    assert results[0]["score"] > results[-1]["score"]


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        pytest.param(
            e,
            text,
            id=e.path.name,
            marks=marks(e.pending or e.search_pending),
        )
        for e in expectations()
        for text in e.found_by
    ],
)
def test_search_finds_the_file_a_text_of_the_readme_comes_from(
    stack: Stack, corpus_run: CorpusRun, expected: Expected, text: str
) -> None:
    doc = _final(corpus_run, expected)
    with httpx.Client(timeout=30) as http:
        response = http.get(f"{stack.url('gateway')}/v1/search", params={"q": text, "limit": 5})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results, "no results"
    assert results[0]["document_id"] == doc["id"], [(r["filename"], r["score"]) for r in results]


def test_the_tenant_stream_shows_every_documents_final_status(
    stack: Stack, corpus_run: CorpusRun
) -> None:
    final = {doc["id"]: doc["status"] for doc in corpus_run.documents.values()}
    latest: dict[str, dict[str, Any]] = {}
    url = f"{stack.url('status')}/v1/documents/stream"
    # From the beginning of time: the whole corpus, over HTTP from the running service.
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=60)) as http,
        http.stream("GET", url, headers={"Last-Event-ID": "0"}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = ""
        # Pings (every 15 s) keep the connection from timing out: bound the wait here.
        deadline = time.monotonic() + 120
        for line in response.iter_lines():
            assert time.monotonic() < deadline, f"statuses seen: {latest}"
            if line.startswith("event:"):
                event = line.partition(":")[2].strip()
            elif line.startswith("data:") and event == "status":
                body = json.loads(line.partition(":")[2])
                if body["version"] >= latest.get(body["id"], {}).get("version", 0):
                    latest[body["id"]] = body
                if all(latest.get(i, {}).get("status") == s for i, s in final.items()):
                    break
    assert {i: latest[i]["status"] for i in final} == final


@pytest.fixture(scope="module")
def qdrant(stack: Stack, corpus_run: CorpusRun) -> Iterator[QdrantClient]:
    # The embedded store admits one process at a time: stop the embedder's first.
    stack.stop()
    client = open_embedded(stack.data_dir / "qdrant")
    yield client
    client.close()


COLLECTION = collection_name(MiniLMEmbedder.model, 384)


def _points_of(client: QdrantClient, document_id: str) -> list[models.Record]:
    records, _ = client.scroll(
        COLLECTION,
        scroll_filter=models.Filter(
            must=[
                models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))
            ]
        ),
        limit=10_000,
        with_payload=True,
    )
    return records


def test_qdrant_holds_one_point_per_chunk(qdrant: QdrantClient, corpus_run: CorpusRun) -> None:
    expected_total = 0
    for name, doc in corpus_run.documents.items():
        records = _points_of(qdrant, doc["id"])
        total = doc["chunks_total"] or 0
        assert len(records) == total, name
        assert sorted(r.payload["chunk_index"] for r in records) == list(range(total)), name
        expected_total += total
    assert expected_total > 300


# Documents with text of their own. Not the LaTeX "blindtext" samples
# (pdflatex-4-pages, pdflatex-outline, ...) nor multicolumn.pdf's Lorem
# Ipsum: they repeat the same filler paragraphs within and across files, so
# no chunk of theirs stands out from its neighbours.
@pytest.mark.parametrize(
    "filename",
    ["GeoTopo-komprimiert.pdf", "crazyones-pdfa.pdf", "google-doc-document.pdf"],
)
def test_similar_text_finds_its_own_chunk_first(
    qdrant: QdrantClient, corpus_run: CorpusRun, filename: str
) -> None:
    model = MiniLMEmbedder()
    document_id = corpus_run.documents[filename]["id"]
    records = sorted(_points_of(qdrant, document_id), key=lambda r: r.payload["chunk_index"])
    # The middle half of the longest chunk: text no neighbouring chunk shares.
    record = max(records, key=lambda r: len(r.payload["text"]))
    text = record.payload["text"]
    query = text[len(text) // 4 : 3 * len(text) // 4]
    everything, _ = qdrant.scroll(COLLECTION, limit=100_000, with_payload=True)
    assert sum(query in r.payload["text"] for r in everything) == 1, "query text is not unique"
    [vector] = model.embed([query])
    [best] = qdrant.query_points(COLLECTION, query=vector.tolist(), limit=1).points
    assert best.id == str(
        point_id(
            record.payload["tenant_id"], document_id, record.payload["chunk_index"], model.model
        )
    )


@pytest.mark.parametrize("expected", params(e for e in expectations() if e.checks_chunks))
def test_the_chunks_hold_what_the_readme_says(
    qdrant: QdrantClient, corpus_run: CorpusRun, expected: Expected
) -> None:
    doc = _final(corpus_run, expected)
    texts = [r.payload["text"] for r in _points_of(qdrant, doc["id"]) if r.payload]
    assert texts, "no chunks"
    for together in expected.in_one_chunk:
        assert any(all(t in text for t in together) for text in texts), together
    for absent in expected.in_no_chunk:
        assert not any(absent in text for text in texts), absent
    if expected.transcript is not None:
        wanted = words(expected.transcript.read_text(encoding="utf-8"))
        found = wanted & words(" ".join(texts))
        assert len(found) >= TRANSCRIPT_SHARE * len(wanted), sorted(wanted - found)


def _kcat_status_topic(bootstrap: str) -> list[dict[str, Any]]:
    """Every record on the status topic, as kcat (librdkafka, not our code) reads it."""
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.fail("kcat is needed (Debian package kcat): `make kcat` installs it")
    out = subprocess.run(
        [kcat, "-C", "-b", bootstrap, "-t", topics.STATUS, "-o", "beginning", "-e", "-J", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_other_systems_read_each_documents_status_from_the_status_topic(
    kafka_bootstrap: str, corpus_run: CorpusRun
) -> None:
    wanted = {doc["id"]: name for name, doc in corpus_run.accepted.items()}

    def latest_snapshots() -> dict[str, tuple[dict[str, Any], dict[str, str]]] | None:
        latest: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
        for record in _kcat_status_topic(kafka_bootstrap):
            if record["key"] not in wanted:
                continue  # other tests' documents share the broker
            body = json.loads(record["payload"])
            headers = dict(zip(record["headers"][::2], record["headers"][1::2], strict=True))
            if record["key"] not in latest or body["version"] > latest[record["key"]][0]["version"]:
                latest[record["key"]] = (body, headers)
        final = all(
            latest.get(i, ({}, {}))[0].get("status") == corpus_run.documents[name]["status"]
            for i, name in wanted.items()
        )
        return latest if final else None

    latest = wait_until(latest_snapshots, timeout_s=60, what="every final status on the topic")
    for document_id, name in wanted.items():
        body, headers = latest[document_id]
        seen = corpus_run.documents[name]
        assert body["document_id"] == document_id
        for key in ("status", "stage", "progress", "message", "pages", "chunks_total", "error"):
            assert body[key] == seen[key], (name, key)
        assert body["stalled"] is False
        assert body["deleted"] is False
        assert headers["ce_type"] == "docflow.document.status"
        assert headers["ce_subject"] == document_id
        assert headers["ce_source"] == "/docflow/status"
