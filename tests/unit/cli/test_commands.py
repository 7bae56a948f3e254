"""The commands' own behaviour: errors as one line and an exit code, output shapes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from docflow_cli.api import refusal
from docflow_cli.board import Board
from docflow_cli.main import app
from docflow_cli.view import LineView, summary_table
from docflow_local.processes import free_port
from support.gateway import Recorder, gateway_clients

runner = CliRunner()


@pytest.fixture
def nothing_there() -> str:
    """The URL of a port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


def test_a_gateway_that_is_not_running_is_one_line_and_exit_2(
    tmp_path: Path, nothing_there: str
) -> None:
    (tmp_path / "a.md").write_text("# A\n")
    result = runner.invoke(app, ["upload", str(tmp_path), "--gateway", nothing_there])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"docflow: cannot reach {nothing_there}: All connection attempts failed (is it running?)"
    ]
    assert "Traceback" not in result.output


def test_search_takes_only_the_three_modes(nothing_there: str) -> None:
    result = runner.invoke(app, ["search", "x", "--mode", "semantic", "--gateway", nothing_there])
    assert result.exit_code == 2
    assert "'semantic' is not one of" in " ".join(result.stderr.split())
    # A known mode gets as far as the (absent) gateway.
    known = runner.invoke(app, ["search", "x", "--mode", "keyword", "--gateway", nothing_there])
    assert known.exit_code == 2
    assert "cannot reach" in known.stderr


def test_chunks_with_no_gateway_is_one_line_and_exit_2(nothing_there: str) -> None:
    result = runner.invoke(app, ["chunks", "some-id", "--gateway", nothing_there])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"docflow: cannot reach {nothing_there}: All connection attempts failed (is it running?)"
    ]


@pytest.mark.parametrize(
    "command",
    [["list"], ["status", "some-id"]],
    ids=["list", "status"],
)
def test_a_status_service_that_is_not_running_is_one_line_and_exit_2(
    command: list[str], nothing_there: str
) -> None:
    result = runner.invoke(app, [*command, "--status-url", nothing_there])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"docflow: cannot reach {nothing_there}")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_folder_with_nothing_to_upload_says_what_it_looked_for(tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text("{}")
    result = runner.invoke(app, ["upload", str(tmp_path)])
    assert result.exit_code == 2
    looked_for = "*.pdf *.docx *.pptx *.xlsx *.epub *.html *.htm *.md *.markdown *.txt"
    assert f"no files to upload (folders are searched for {looked_for})" in result.stderr


def test_a_missing_path_is_named(tmp_path: Path) -> None:
    result = runner.invoke(app, ["upload", str(tmp_path / "gone.pdf")])
    assert result.exit_code == 2
    assert f"no such file or folder: {tmp_path / 'gone.pdf'}" in result.stderr


def test_a_refusal_is_the_problem_detail_of_the_gateway(tmp_path: Path) -> None:
    for client_for in gateway_clients(tmp_path):
        client = client_for(tmp_path / "blobs", Recorder())
        answer = client.post("/v1/documents", files={"file": ("empty.pdf", b"")})
        refused = refusal(answer)
        assert (refused.status, refused.code) == (422, "empty-file")
        assert refused.detail == answer.json()["detail"]
        assert str(refused) == f"{refused.detail} (HTTP 422, empty-file)"


def test_a_refusal_without_a_problem_document_is_its_text() -> None:
    refused = refusal(httpx.Response(502, text="Bad Gateway from the proxy\n"))
    assert str(refused) == "Bad Gateway from the proxy (HTTP 502)"


def test_the_summary_has_a_line_per_file_and_the_counts() -> None:
    board = Board.of([Path("docs/a.pdf"), Path("docs/b.json")])
    a, b = board.rows
    board.accept(a, {"id": "1d0c", "status": "duplicate"})
    board.update(
        {
            "id": "1d0c",
            "status": "completed",
            "progress": 100,
            "pages": 3,
            "chunks_total": 7,
            "message": "Indexed 7 chunks from 3 pages",
        }
    )
    board.refuse(b, "not a PDF, Markdown or text")
    console = Console(record=True, width=200)
    console.print(summary_table(board))
    text = console.export_text()
    assert "│ a.pdf  │ completed (duplicate) │     3 │      7 │" in text
    assert "Indexed 7 chunks from 3 pages" in text
    assert "│ b.json │ refused" in text
    assert "The gateway refused the file: not a PDF, Markdown or text" in text
    assert "2 files: 1 completed, 1 refused" in text


def test_outside_a_terminal_each_change_is_one_line() -> None:
    board = Board.of([Path("a.pdf")])
    [row] = board.rows
    console = Console(record=True, width=200)
    view = LineView(console)
    board.accept(row, {"id": "1d0c", "status": "pending"})
    view.changed([row])
    view.changed([row])  # said once
    board.update(
        {
            "id": "1d0c",
            "status": "processing",
            "stage": "embedding",
            "progress": 62,
            "message": "Embedded 128 of 241 chunks",
        },
        version=8,
    )
    view.changed([row])
    assert console.export_text().splitlines() == [
        "[  0%] a.pdf: pending: Uploaded; waiting for the status service",
        "[ 62%] a.pdf: processing embedding: Embedded 128 of 241 chunks",
    ]
