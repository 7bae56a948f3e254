"""Options of the ``docflow`` command itself (before any sub-command), and the servers' options
of the sub-commands."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

# The servers' options of the sub-commands.
SERVERS = "Servers"
Gateway = Annotated[
    str,
    typer.Option(
        "--gateway", envvar="DOCFLOW_GATEWAY_URL", help="The gateway", rich_help_panel=SERVERS
    ),
]
StatusService = Annotated[
    str,
    typer.Option(
        "--status-url",
        envvar="DOCFLOW_STATUS_URL",
        help="The status service",
        rich_help_panel=SERVERS,
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="DOCFLOW_API_KEY",
        help="Your API key, when authentication is on",
        rich_help_panel=SERVERS,
        show_default=False,
    ),
]


def versions() -> str:
    """``docflow <version> (client <version>)``: the installed packages'."""

    def of(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "unknown"

    return f"docflow {of('docflow-cli')} (client {of('docflow-client')})"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(versions())
        raise typer.Exit()


def options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Print the version and exit",
        ),
    ] = False,
) -> None:
    """Upload documents to docflow, watch them being processed, and search them."""
