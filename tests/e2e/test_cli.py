"""The ``docflow`` command line against the running system (the four services as
processes on a real Kafka broker): a folder of corpus files uploaded with --wait,
then every other command on the documents it made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from docflow_local.stack import Stack
from support.corpus import REPO_ROOT, Expected, expectations
from support.stacks import BlobPlace, running_stack

# Small files of each outcome: text, Markdown, a scan without text, and an
# encrypted PDF that must fail (so the exit code is 1).
CHOSEN = {
    "000_e21e99f4fa213ba2.md": "docs",
    "002_33ffed5cb8b9fff7.md": "docs/notes",
    "002-trivial-libre-office-writer.pdf": "docs",
    "pdflatex-4-pages.pdf": "docs/notes",
    "imagemagick-lzw.pdf": "docs",
    "libreoffice-writer-password.pdf": "docs",
}
ENCRYPTED = "libreoffice-writer-password.pdf"


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, blobs: BlobPlace
) -> Iterator[Stack]:
    with running_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("cli") / "data",
        REPO_ROOT / ".artifacts" / "e2e" / "logs" / "cli" / blobs.kind,
        blobs=blobs,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def expected() -> dict[str, Expected]:
    by_name = {e.path.name: e for e in expectations()}
    return {name: by_name[name] for name in CHOSEN}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, expected: dict[str, Expected]) -> Path:
    """The chosen files in a folder tree, with files the default patterns leave out."""
    root = tmp_path_factory.mktemp("upload")
    for name, where in CHOSEN.items():
        (root / where).mkdir(parents=True, exist_ok=True)
        shutil.copy(expected[name].path, root / where / name)
    (root / "docs" / "files.json").write_text("{}")
    (root / "docs" / ".draft.md").write_text("# not sent: hidden\n")
    return root / "docs"


def docflow(
    stack: Stack, *arguments: str, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """The installed ``docflow`` command, pointed at the stack by the environment."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "docflow"), *arguments],
        env={
            **os.environ,
            "DOCFLOW_GATEWAY_URL": stack.url("gateway"),
            "DOCFLOW_STATUS_URL": stack.url("status"),
        },
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.fixture(scope="module")
def uploaded(stack: Stack, folder: Path) -> subprocess.CompletedProcess[str]:
    """``docflow upload --wait`` of the folder, as a person would run it."""
    done = docflow(stack, "upload", "--wait", "--timeout", "300", str(folder), timeout_s=360)
    (REPO_ROOT / ".artifacts" / "e2e").mkdir(parents=True, exist_ok=True)
    (REPO_ROOT / ".artifacts" / "e2e" / "cli-upload.txt").write_text(done.stderr + done.stdout)
    return done


@pytest.fixture(scope="module")
def documents(
    stack: Stack, folder: Path, uploaded: subprocess.CompletedProcess[str]
) -> dict[str, dict[str, Any]]:
    """The same folder again with --json: every file a duplicate of what the first
    upload made, each with its final status."""
    again = docflow(stack, "upload", "--wait", "--json", "--timeout", "60", str(folder))
    assert again.returncode == 1, again.stderr
    body = json.loads(again.stdout)
    return {doc["filename"]: doc for doc in body["documents"]}


def test_the_folder_upload_waits_for_every_document_and_exits_1_for_the_failure(
    uploaded: subprocess.CompletedProcess[str],
) -> None:
    assert uploaded.returncode == 1, uploaded.stderr
    summary = uploaded.stdout
    assert "6 files: 5 completed, 1 failed" in summary
    rows = {line.split("│")[1].strip(): line for line in summary.splitlines() if "│" in line}
    assert set(rows) >= set(CHOSEN)
    assert "files.json" not in summary
    assert ".draft.md" not in summary
    for name in CHOSEN:
        assert (" failed " if name == ENCRYPTED else " completed ") in rows[name]
    assert "Failed while extracting (encrypted)" in rows[ENCRYPTED]
    # Progress on standard error: a line per change, ending with each outcome.
    last = {}
    for line in uploaded.stderr.splitlines():
        name, _, rest = line.partition("] ")[2].partition(": ")
        last[name] = rest
    assert {name: last[name].split(":")[0] for name in CHOSEN} == {
        name: "failed" if name == ENCRYPTED else "completed" for name in CHOSEN
    }


def test_each_document_reaches_its_expected_outcome(
    stack: Stack,
    http: httpx.Client,
    documents: dict[str, dict[str, Any]],
    expected: dict[str, Expected],
) -> None:
    assert set(documents) == set(CHOSEN)
    for name, want in expected.items():
        doc = documents[name]
        assert doc["duplicate"], name
        assert doc["status"] == want.status, name
        if want.error_code:
            assert doc["error"]["code"] == want.error_code
        if want.pages is not None:
            assert doc["pages"] == want.pages, name
        if want.has_chunks is not None:
            assert bool(doc["chunks"]) == want.has_chunks, name
        # What the CLI reports is what the status service says.
        status = http.get(f"{stack.url('status')}/v1/documents/{doc['id']}").json()
        assert (status["status"], status["chunks_total"]) == (doc["status"], doc["chunks"])


def test_status_and_list_explain_the_failure(
    stack: Stack, documents: dict[str, dict[str, Any]]
) -> None:
    failed = documents[ENCRYPTED]["id"]
    shown = docflow(stack, "status", failed)
    assert shown.returncode == 0, shown.stderr
    assert "Failed while extracting (encrypted): the PDF is protected by a password" in (
        " ".join(shown.stdout.split())
    )
    listed = docflow(stack, "list", "--status", "failed", "--limit", "500", "--json")
    assert listed.returncode == 0, listed.stderr
    assert failed in {doc["id"] for doc in json.loads(listed.stdout)["documents"]}


def test_search_finds_the_chunks_of_a_document_by_its_words(
    stack: Stack, documents: dict[str, dict[str, Any]], expected: dict[str, Expected]
) -> None:
    text = expected["000_e21e99f4fa213ba2.md"].path.read_text()
    sentence = next(line for line in text.splitlines() if len(line.split()) > 8)
    found = docflow(stack, "search", sentence, "--limit", "3", "--json")
    assert found.returncode == 0, found.stderr
    best = json.loads(found.stdout)["results"][0]
    assert best["document_id"] == documents["000_e21e99f4fa213ba2.md"]["id"]
    shown = docflow(stack, "search", sentence, "--limit", "1")
    assert "1. 000_e21e99f4fa213ba2.md" in shown.stdout
    for mode in ("keyword", "dense"):
        by_mode = docflow(stack, "search", sentence, "--mode", mode, "--limit", "3", "--json")
        assert by_mode.returncode == 0, by_mode.stderr
        answer = json.loads(by_mode.stdout)
        assert answer["mode"] == mode
        assert answer["results"][0]["document_id"] == documents["000_e21e99f4fa213ba2.md"]["id"]


def test_chunks_reads_back_what_was_extracted_page_by_page(
    stack: Stack, http: httpx.Client, documents: dict[str, dict[str, Any]]
) -> None:
    doc = documents["pdflatex-4-pages.pdf"]
    status = http.get(f"{stack.url('status')}/v1/documents/{doc['id']}").json()
    total = status["chunks_total"]
    assert total >= 2
    seen: list[dict[str, Any]] = []
    cursor: list[str] = []
    while True:
        page = docflow(stack, "chunks", doc["id"], "--limit", "2", "--json", *cursor)
        assert page.returncode == 0, page.stderr
        body = json.loads(page.stdout)
        assert body["extracted"] is True
        assert 1 <= len(body["chunks"]) <= 2
        seen += body["chunks"]
        if body["next_cursor"] is None:
            break
        cursor = ["--cursor", body["next_cursor"]]
    # Every chunk the extractor made, once, in order, with its pages and its words.
    assert [c["index"] for c in seen] == list(range(total))
    assert all(1 <= c["page"] <= c["page_end"] <= 4 for c in seen)
    assert {c["page"] for c in seen} == {1, 2, 3, 4}
    assert all(c["text"].strip() for c in seen)
    shown = docflow(stack, "chunks", doc["id"], "--limit", "1")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("#0 · page 1")
    assert f"more: docflow chunks {doc['id']} --cursor 0" in shown.stdout
    missing = docflow(stack, "chunks", "6d0c0000-0000-0000-0000-000000000000")
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith("(HTTP 404, document-not-found)")


def test_operations_answer_in_words_and_refusals_show_their_detail(
    stack: Stack, documents: dict[str, dict[str, Any]], blobs: BlobPlace
) -> None:
    completed = documents["imagemagick-lzw.pdf"]["id"]
    refused = docflow(stack, "cancel", completed)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"docflow: document {completed} is already completed; only pending or processing "
        "documents can be cancelled (HTTP 409, operation-not-allowed)"
    )
    failed = documents[ENCRYPTED]["id"]
    retried = docflow(stack, "retry", failed)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == (
        f"retry of {failed} accepted (attempt 2); follow it: docflow status {failed}"
    )
    mine = {f"default/{completed}/original", f"default/{completed}/chunks.jsonl"}
    assert mine <= set(blobs.stored(stack))
    deleted = docflow(stack, "delete", completed, "--json")
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout)["operation"] == "delete"
    # The gateway removed the original and the stored chunks before it answered.
    assert not mine & set(blobs.stored(stack))


def test_an_unknown_document_is_the_status_services_detail(stack: Stack) -> None:
    missing = docflow(stack, "status", "6d0c0000-0000-0000-0000-000000000000")
    assert missing.returncode == 2
    assert missing.stderr.startswith(
        "docflow: no document '6d0c0000-0000-0000-0000-000000000000'; use the status_url"
    )
    assert missing.stderr.strip().endswith("(HTTP 404, document-not-found)")
