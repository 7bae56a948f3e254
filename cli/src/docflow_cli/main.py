"""``docflow``: upload files and folders, watch them go through, search, manage.

Exit codes: 0 done; 1 a document (or a re-embedding) failed, was refused,
cancelled or did not finish in time; 2 a service could not be reached or
refused the request (its problem ``detail`` is printed), or bad usage.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from docflow_cli import follow, webhooks
from docflow_cli.api import ApiError, Docflow, Mode, Servers
from docflow_cli.board import Board, explain, queue_note
from docflow_cli.files import DEFAULT_INCLUDE, NoSuchPath, collect
from docflow_cli.filtering import (
    DocumentsOption,
    FilterOption,
    MetaOption,
    ModeOption,
    filters_of,
    metadata_of,
)
from docflow_cli.options import ApiKey, Gateway, StatusService, options
from docflow_cli.view import LineView, LiveView, print_search, styled, summary_table

T = TypeVar("T")

app = typer.Typer(
    name="docflow",
    help="Upload documents to docflow, watch them being processed, and search them.",
    no_args_is_help=True,
    # --install-completion / --show-completion for bash, zsh, fish, PowerShell.
    add_completion=True,
    callback=options,
    pretty_exceptions_enable=False,
)

app.add_typer(webhooks.app, name="webhooks")

# Wide enough that a table in a log or a pipe is not folded at 80 columns.
PIPE_WIDTH = 160


def _console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead")]
DocumentId = Annotated[str, typer.Argument(help="A document's id", show_default=False)]

DEFAULT_GATEWAY = "http://127.0.0.1:8000"
DEFAULT_STATUS = "http://127.0.0.1:8001"


def _run(servers: Servers, work: Callable[[Docflow], Awaitable[T]]) -> T:
    """``work`` with a client of the servers; a failed request is one line and exit 2."""

    async def main() -> T:
        async with Docflow(servers) as api:
            return await work(api)

    try:
        return asyncio.run(main())
    except ApiError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted", code=130)


def _fail(message: str, code: int = 2) -> NoReturn:
    _console(stderr=True).print(
        f"docflow: {message}", style="red", markup=False, highlight=False, soft_wrap=True
    )
    raise typer.Exit(code)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


@app.command()
def upload(
    paths: Annotated[
        list[Path], typer.Argument(help="Files, and folders to search recursively", exists=False)
    ],
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include",
            "-i",
            help=f"Take a folder's files matching this glob (repeatable; default: "
            f"{' '.join(DEFAULT_INCLUDE)})",
            show_default=False,
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", "-x", help="Leave out a folder's files matching this glob"),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="Follow each document until it has finished")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option(help="With --wait: give up after this many seconds")
    ] = None,
    dedup: Annotated[
        bool, typer.Option(help="Answer a file uploaded before with its earlier document")
    ] = True,
    meta: MetaOption = None,
    as_json: AsJson = False,
    gateway: Gateway = DEFAULT_GATEWAY,
    status_url: StatusService = DEFAULT_STATUS,
    api_key: ApiKey = None,
) -> None:
    """Upload files and folders; with --wait, watch each document go through."""
    try:
        files = collect(paths, include or (), exclude or ())
    except NoSuchPath as exc:
        _fail(str(exc))
    if not files:
        _fail(
            f"no files to upload (folders are searched for {' '.join(include or DEFAULT_INCLUDE)})"
        )
    metadata = metadata_of(meta)
    board = Board.of(files)
    err = _console(stderr=True)
    view = LiveView(err, board) if wait and err.is_terminal else LineView(err)
    gave_up: str | None = None

    async def work(api: Docflow) -> None:
        nonlocal gave_up
        with view:
            try:
                await follow.upload(
                    api, board, view, dedup=dedup, wait=wait, timeout_s=timeout, metadata=metadata
                )
            except follow.GaveUp as exc:
                gave_up = str(exc)

    _run(Servers(gateway, status_url, api_key), work)
    if gave_up:
        view.notice(gave_up)
    if as_json:
        _print_json({"documents": [row.as_json() for row in board.rows], "counts": board.counts()})
    else:
        _console().print(summary_table(board))
    if wait:
        raise typer.Exit(board.exit_code)
    raise typer.Exit(1 if any(row.refused for row in board.rows) else 0)


@app.command()
def status(
    document: DocumentId,
    as_json: AsJson = False,
    status_url: StatusService = DEFAULT_STATUS,
    api_key: ApiKey = None,
) -> None:
    """A document's status, stage and progress (why it failed, when it did)."""
    body = _run(Servers(DEFAULT_GATEWAY, status_url, api_key), lambda api: api.document(document))
    if as_json:
        _print_json(body)
        return
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in (
        ("Document", body["id"]),
        ("File", body["filename"]),
        ("Status", styled(body["status"])),
        ("Stage", body["stage"]),
        ("Progress", f"{body['progress']}%"),
        ("Message", explain(body, body["message"])),
        ("Waiting for", body.get("waiting_for")),
        ("Queue", queue_note(body)),
        ("Pages", body["pages"]),
        ("Chunks", _chunks(body)),
        ("Attempt", body["attempt"]),
        ("Created", body["created_at"]),
        ("Completed", body["completed_at"]),
    ):
        if value is not None:
            table.add_row(label, value if isinstance(value, Text) else str(value))
    _console().print(table)


def _chunks(body: dict[str, Any]) -> str | None:
    if body["chunks_total"] is None:
        return f"{body['chunks_embedded']} embedded" if body["chunks_embedded"] else None
    return f"{body['chunks_embedded']} of {body['chunks_total']} embedded"


class Filter(StrEnum):
    pending = "pending"
    processing = "processing"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


@app.command("list")
def list_documents(
    only: Annotated[Filter | None, typer.Option("--status", help="Only these")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option(help="Where the last page ended")] = None,
    where: FilterOption = None,
    as_json: AsJson = False,
    status_url: StatusService = DEFAULT_STATUS,
    api_key: ApiKey = None,
) -> None:
    """Your documents, newest first."""
    status = only.value if only else None
    body = _run(
        Servers(DEFAULT_GATEWAY, status_url, api_key),
        lambda api: api.documents(status=status, limit=limit, cursor=cursor, **filters_of(where)),
    )
    if as_json:
        _print_json(body)
        return
    table = Table()
    for column in ("Document", "File", "Status", "Stage", "Progress", "Updated", "Message"):
        table.add_column(column, no_wrap=column == "Document", overflow="fold")
    for doc in body["documents"]:
        table.add_row(
            doc["id"],
            doc["filename"],
            styled(doc["status"]),
            doc["stage"],
            f"{doc['progress']}%",
            doc["updated_at"],
            explain(doc, doc["message"]),
        )
    console = _console()
    console.print(table)
    if body["next_cursor"]:
        console.print(f"more: docflow list --cursor {body['next_cursor']}", highlight=False)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in your words")],
    limit: Annotated[int, typer.Option(min=1, max=50)] = 5,
    mode: ModeOption = Mode.hybrid,
    where: FilterOption = None,
    by_document: DocumentsOption = False,
    as_json: AsJson = False,
    gateway: Gateway = DEFAULT_GATEWAY,
    api_key: ApiKey = None,
) -> None:
    """The chunks of your documents that match the query, by meaning and by words."""
    options = {**filters_of(where), "group": "document" if by_document else None}
    body = _run(
        Servers(gateway, DEFAULT_STATUS, api_key),
        lambda api: api.search(query, limit, mode.value, **options),
    )
    if as_json:
        _print_json(body)
        return
    print_search(_console(), body)


@app.command()
def chunks(
    document: DocumentId,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option(help="Where the last page ended")] = None,
    as_json: AsJson = False,
    gateway: Gateway = DEFAULT_GATEWAY,
    api_key: ApiKey = None,
) -> None:
    """What was extracted from a document: its chunks, in order, a page at a time."""
    servers = Servers(gateway, DEFAULT_STATUS, api_key)
    body = _run(servers, lambda api: api.chunks(document, limit, cursor))
    if as_json:
        _print_json(body)
        return
    console = _console()
    if not body["extracted"]:
        console.print("no chunks yet: no extraction of it has finished", style="dim")
    for chunk in body["chunks"]:
        first, last = chunk["page"], chunk["page_end"]
        where = "" if first is None else f" · page {first}" + (f"-{last}" if last != first else "")
        console.print(Text(f"#{chunk['index']}{where}", style="bold"))
        console.print(Text(chunk["text"].strip()), markup=False, highlight=False)
    if body["next_cursor"]:
        console.print(
            f"more: docflow chunks {document} --cursor {body['next_cursor']}", highlight=False
        )


def _operation(name: str, summary: str) -> None:
    def command(
        document: DocumentId,
        as_json: AsJson = False,
        gateway: Gateway = DEFAULT_GATEWAY,
        api_key: ApiKey = None,
    ) -> None:
        body = _run(
            Servers(gateway, DEFAULT_STATUS, api_key), lambda api: api.operate(name, document)
        )
        if as_json:
            _print_json(body)
            return
        attempt = f" (attempt {body['attempt']})" if body.get("attempt") else ""
        follow_up = "" if name == "delete" else f"; follow it: docflow status {document}"
        _console().print(f"{name} of {document} accepted{attempt}{follow_up}", highlight=False)

    command.__doc__ = summary
    app.command(name)(command)


_operation("retry", "Process a failed or cancelled document again.")
_operation("cancel", "Stop a pending or processing document.")
_operation("delete", "Delete a document: its file, chunks, vectors and status.")


class Backend(StrEnum):
    local = "local"
    openai = "openai"


@app.command()
def reindex(
    backend: Annotated[Backend, typer.Option(help="Where the new model runs")],
    model: Annotated[str, typer.Option(help="e.g. text-embedding-3-small")],
    dimensions: Annotated[
        int | None, typer.Option(help="Shorter vectors, where the model can")
    ] = None,
    documents: Annotated[
        list[str] | None,
        typer.Option("--document", metavar="ID", help="Only this document (repeatable)"),
    ] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Ask, print the id, return")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait")] = 24 * 3600,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final status as JSON")] = False,
    gateway: Gateway = DEFAULT_GATEWAY,
    api_key: ApiKey = None,
) -> None:
    """Re-embed every stored chunk (or chosen documents') with another model; searches
    switch to it once it holds every chunk."""
    request: dict[str, Any] = {
        "embedding": {"backend": backend.value, "model": model, "dimensions": dimensions}
    }
    if documents:
        request["document_ids"] = documents
    err = _console(stderr=True)

    def say(line: str) -> None:
        err.print(line, markup=False, highlight=False, soft_wrap=True)

    async def work(api: Docflow) -> dict[str, Any]:
        accepted = await api.reindex(request)
        say(f"reindex {accepted['reindex_id']}: {accepted['status_url']}")
        if no_wait:
            return accepted
        return await follow.reindex(api, accepted["status_url"], timeout, say)

    result = _run(Servers(gateway, DEFAULT_STATUS, api_key), work)
    if no_wait:
        typer.echo(json.dumps(result) if as_json else result["reindex_id"])
        return
    if as_json:
        typer.echo(json.dumps(result))
    if result.get("status") != "completed":
        raise typer.Exit(1)


class Service(StrEnum):
    extractor = "extractor"
    embedder = "embedder"


@app.command()
def redrive(
    documents: Annotated[
        list[str] | None, typer.Option("--document", metavar="ID", help="Only this document")
    ] = None,
    service: Annotated[Service | None, typer.Option(help="Only what this service gave up")] = None,
    error_contains: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Only errors with this text")
    ] = None,
    since: Annotated[
        str | None, typer.Option(metavar="ISO-8601", help="Dead-lettered at or after")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would start")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON")] = False,
    gateway: Gateway = DEFAULT_GATEWAY,
    api_key: ApiKey = None,
) -> None:
    """A new attempt of each dead-lettered document (all, or those the filters choose)."""
    request: dict[str, Any] = {"dry_run": dry_run}
    for name, value in (
        ("document_ids", documents),
        ("service", service.value if service else None),
        ("error_contains", error_contains),
        ("since", since),
    ):
        if value:
            request[name] = value
    result = _run(Servers(gateway, DEFAULT_STATUS, api_key), lambda api: api.redrive(request))
    if as_json:
        typer.echo(json.dumps(result))
        return
    verb = "would retry" if dry_run else "retried"
    out = _console()
    out.print(f"{result['dead_letters']} dead letters; {verb} {len(result['retried'])} documents")
    for doc in result["retried"]:
        attempt = f" (attempt {doc['attempt']})" if doc["attempt"] else ""
        out.print(f"  {verb} {doc['id']}{attempt}: {doc['status_url']}", highlight=False)
    for doc in result["skipped"]:
        out.print(f"  skipped {doc['id']}: {doc['reason']}", highlight=False)


if __name__ == "__main__":
    sys.exit(app())
