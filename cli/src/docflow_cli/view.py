"""How an upload looks while it runs and when it is over (Rich)."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from docflow_cli.board import Board, Row

STYLES = {
    "completed": "green",
    "failed": "bold red",
    "refused": "bold red",
    "cancelled": "yellow",
    "deleted": "yellow",
    "processing": "cyan",
}
# Documents shown with a bar at once; the others are counted below them.
MAX_BARS = 12


def styled(status: str) -> Text:
    return Text(status, style=STYLES.get(status, ""))


def counts_line(board: Board) -> str:
    counts = board.counts()
    order = ["completed", "failed", "refused", "cancelled", "deleted"]
    parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    waiting = len(board.rows) - sum(counts.get(k, 0) for k in order)
    if waiting:
        parts.append(f"{waiting} not finished")
    return f"{len(board.rows)} files: " + ", ".join(parts)


def summary_table(board: Board) -> Table:
    """One line per file: outcome, pages, chunks, seconds, explanation, document id."""
    table = Table(title="docflow upload", caption=counts_line(board), title_justify="left")
    table.add_column("File", overflow="fold")
    table.add_column("Status")
    table.add_column("Pages", justify="right")
    table.add_column("Chunks", justify="right")
    table.add_column("Seconds", justify="right")
    table.add_column("Detail", overflow="fold", ratio=1)
    table.add_column("Document", no_wrap=True)
    for row in board.rows:
        status = styled(row.outcome)
        if row.duplicate:
            status.append(" (duplicate)", style="dim")
        table.add_row(
            row.name,
            status,
            _blank(row.pages),
            _blank(row.chunks),
            _blank(None if row.seconds is None else f"{row.seconds:.1f}"),
            row.explanation(),
            row.id or "",
        )
    return table


def _blank(value: object) -> str:
    return "" if value is None else str(value)


def result_line(row: Row) -> Text:
    mark = "✓" if row.succeeded else "✗"
    line = Text(f"{mark} ", style=STYLES.get(row.outcome, ""))
    line.append(row.name, style="bold")
    line.append(" ")
    line.append_text(styled(row.outcome))
    line.append(f": {row.explanation()}")
    return line


class LiveView:
    """In a terminal: a bar per document in progress, a line per document finished."""

    def __init__(self, console: Console, board: Board) -> None:
        self.console = console
        self.board = board
        self._said: set[int] = set()
        self._live = Live(
            console=console, get_renderable=self._render, refresh_per_second=8, transient=True
        )

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.stop()

    def changed(self, rows: Iterable[Row]) -> None:
        for row in rows:
            if row.done and id(row) not in self._said:
                self._said.add(id(row))
                self._live.console.print(result_line(row))

    def notice(self, text: str) -> None:
        self._live.console.print(Text(text, style="yellow"))

    def _render(self) -> RenderableType:
        rows = self.board.rows
        finished = sum(row.done for row in rows)
        overall = Table.grid(padding=(0, 1))
        overall.add_row(
            ProgressBar(total=max(1, len(rows)), completed=finished, width=40),
            Text(f"{finished} of {len(rows)} done · {counts_line(self.board)}", style="bold"),
        )
        active = [row for row in rows if not row.done]
        active.sort(key=lambda row: (row.status != "processing", -row.progress))
        bars = Table.grid(padding=(0, 1))
        bars.add_column(max_width=32, no_wrap=True, overflow="ellipsis")
        bars.add_column(width=24)
        bars.add_column(justify="right", width=4)
        bars.add_column(no_wrap=True)
        bars.add_column(no_wrap=True, overflow="ellipsis")
        for row in active[:MAX_BARS]:
            bars.add_row(
                row.name,
                ProgressBar(total=100, completed=row.progress, width=24),
                f"{row.progress}%",
                styled(row.stage or row.status),
                Text(row.message, style="dim"),
            )
        parts: list[RenderableType] = [bars, overall]
        if len(active) > MAX_BARS:
            parts.insert(1, Text(f"… and {len(active) - MAX_BARS} more", style="dim"))
        return Group(*parts)


class LineView:
    """Not in a terminal (a log, a pipe): one line per change, on standard error."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._said: dict[int, str] = {}

    def __enter__(self) -> LineView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def changed(self, rows: Iterable[Row]) -> None:
        for row in rows:
            state = row.outcome if row.done else f"{row.status} {row.stage or ''}".strip()
            line = f"[{row.progress:3d}%] {row.name}: {state}: {row.explanation()}"
            if self._said.get(id(row)) != line:
                self._said[id(row)] = line
                self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def notice(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


def _print_hit(console: Console, rank: str, hit: dict[str, Any]) -> None:
    pages = hit["page"] if hit["page"] == hit["page_end"] else f"{hit['page']}-{hit['page_end']}"
    where = f", page {pages}" if hit["page"] is not None else ""
    console.print(
        Text.assemble(
            (f"{rank}. {hit['filename']}", "bold"),
            f"{where} · chunk {hit['chunk_index']} · score {hit['score']:.2f}",
            ("  " + hit["document_id"], "dim"),
        )
    )
    console.print(Text(hit["text"].strip()), style="", markup=False, highlight=False)
    console.print()


def print_search(console: Console, body: dict[str, Any]) -> None:
    """``docflow search``'s answer: why not found as asked (``note``), then the chunks,
    best first, with file, page and score; grouped, each document with its chunks."""
    if body.get("note"):
        console.print(body["note"], style="yellow", highlight=False)
    if not body["results"]:
        console.print("no matching chunks", style="dim")
    if body.get("documents") is not None:
        for rank, document in enumerate(body["documents"], 1):
            for n, hit in enumerate(document["chunks"], 1):
                _print_hit(console, f"{rank}.{n}", hit)
        return
    for rank, hit in enumerate(body["results"], 1):
        _print_hit(console, str(rank), hit)
