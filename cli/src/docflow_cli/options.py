"""Options of the ``docflow`` command itself (before any sub-command)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer


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
