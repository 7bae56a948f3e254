"""``docflow webhooks …``: register, list and remove webhook endpoints, rotate their
secrets, see their deliveries and send one again (the gateway's ``/v1/webhooks``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from docflow_client import AsyncDocflow, DocflowError

T = TypeVar("T")

app = typer.Typer(
    help="Tell other systems when documents change: webhook endpoints and their deliveries.",
    no_args_is_help=True,
)

Gateway = Annotated[
    str, typer.Option("--gateway", envvar="DOCFLOW_GATEWAY_URL", help="The gateway")
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="DOCFLOW_API_KEY",
        help="Your API key, when authentication is on",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead")]
EndpointId = Annotated[str, typer.Argument(help="The endpoint's id", show_default=False)]
DEFAULT_GATEWAY = "http://127.0.0.1:8000"


class Event(StrEnum):
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"
    progress = "progress"


def _run(gateway: str, api_key: str | None, work: Callable[[AsyncDocflow], Awaitable[T]]) -> T:
    async def main() -> T:
        async with AsyncDocflow(gateway, gateway, api_key=api_key) as client:
            return await work(client)

    try:
        return asyncio.run(main())
    except DocflowError as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    Console(stderr=True).print(
        f"docflow: {message}", style="red", markup=False, highlight=False, soft_wrap=True
    )
    raise typer.Exit(2)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


@app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="Where to POST each event (https://…)")],
    events: Annotated[
        list[Event] | None,
        typer.Option("--event", help="An event kind to send (repeat; all when none)"),
    ] = None,
    description: Annotated[str | None, typer.Option(help="A note for you")] = None,
    as_json: AsJson = False,
    gateway: Gateway = DEFAULT_GATEWAY,
    api_key: ApiKey = None,
) -> None:
    """Register an endpoint; prints its secret (whsec_…), shown only this once."""
    kinds = [e.value for e in events] if events else None
    made = _run(
        gateway,
        api_key,
        lambda api: api.create_webhook(url, events=kinds, description=description),
    )
    if as_json:
        _print_json(made.model_dump(mode="json"))
        return
    typer.echo(f"endpoint {made.id}: {made.url} ({', '.join(made.events)})")
    typer.echo(f"secret (shown once; verify deliveries with it): {made.secret}")


@app.command("list")
def list_endpoints(
    as_json: AsJson = False, gateway: Gateway = DEFAULT_GATEWAY, api_key: ApiKey = None
) -> None:
    """Your endpoints."""
    found = _run(gateway, api_key, lambda api: api.webhooks()).webhooks
    if as_json:
        _print_json([w.model_dump(mode="json") for w in found])
        return
    table = Table("id", "url", "events", "created")
    for w in found:
        table.add_row(str(w.id), w.url, ", ".join(w.events), w.created_at.isoformat())
    Console().print(table)


@app.command("remove")
def remove(
    endpoint: EndpointId, gateway: Gateway = DEFAULT_GATEWAY, api_key: ApiKey = None
) -> None:
    """Stop sending to an endpoint and forget it."""
    _run(gateway, api_key, lambda api: api.delete_webhook(endpoint))
    typer.echo(f"removed {endpoint}")


@app.command("rotate")
def rotate(
    endpoint: EndpointId,
    as_json: AsJson = False,
    gateway: Gateway = DEFAULT_GATEWAY,
    api_key: ApiKey = None,
) -> None:
    """Give an endpoint a new secret (shown only this once); deliveries are signed with
    the old one too until the time printed."""
    rotated = _run(gateway, api_key, lambda api: api.rotate_webhook_secret(endpoint))
    if as_json:
        _print_json(rotated.model_dump(mode="json"))
        return
    typer.echo(f"new secret (shown once): {rotated.secret}")
    until = rotated.previous_secret_expires_at.isoformat(timespec="seconds")
    typer.echo(f"the old secret still signs deliveries until {until}")


@app.command("deliveries")
def deliveries(
    endpoint: EndpointId,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option(help="Where the last page ended")] = None,
    as_json: AsJson = False,
    gateway: Gateway = DEFAULT_GATEWAY,
    api_key: ApiKey = None,
) -> None:
    """An endpoint's deliveries and its last answer to each, newest first, a page at a time."""
    page = _run(
        gateway,
        api_key,
        lambda api: api.webhook_deliveries(endpoint, limit=limit, cursor=cursor),
    )
    found = page.deliveries
    more = (
        f"more: docflow webhooks deliveries {endpoint} --cursor {page.next_cursor}"
        if page.next_cursor
        else None
    )
    if as_json:
        _print_json([d.model_dump(mode="json") for d in found])
        if more:
            typer.echo(more, err=True)
        return
    table = Table("delivery", "event", "document", "state", "attempts", "answer")
    for d in found:
        answer = f"{d.response_status or '-'} {d.response_excerpt or ''}".strip()
        table.add_row(str(d.id), d.event, str(d.document_id), d.state, str(d.attempts), answer)
    console = Console()
    console.print(table)
    if more:
        console.print(more, highlight=False, soft_wrap=True)


@app.command("redrive")
def redrive(
    endpoint: EndpointId,
    delivery: Annotated[str, typer.Argument(help="The delivery's id", show_default=False)],
    gateway: Gateway = DEFAULT_GATEWAY,
    api_key: ApiKey = None,
) -> None:
    """Send a delivery again (same webhook-id and body)."""
    sent = _run(gateway, api_key, lambda api: api.redrive_webhook_delivery(endpoint, delivery))
    typer.echo(f"delivery {sent.id} ({sent.webhook_id}): {sent.state}")
