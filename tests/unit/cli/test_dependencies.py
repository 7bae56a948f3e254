"""The command line installs without the servers' stack: its dependency
closure, read from uv.lock (what `uv sync --package docflow-cli` installs),
has no FastAPI, SQLAlchemy or Kafka client, and its code imports only the
Python client of docflow's own packages."""

from __future__ import annotations

import tomllib
from typing import Any

import grimp
import pytest

from support.corpus import REPO_ROOT

pytestmark = pytest.mark.unit

SERVER_STACK = {
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "aiokafka",
    "faststream",
    "confluent-kafka",
    "kafka-python",
    "docflow-shared",
    "docflow-gateway",
}


def closure(package: str) -> set[str]:
    """``package`` and everything it needs by the lock, extras it asks for included."""
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    entries = {entry["name"]: entry for entry in lock["package"]}

    def needs(name: str, extra: str | None) -> list[dict[str, Any]]:
        entry = entries[name]
        if extra is None:
            return list(entry.get("dependencies", []))
        return list(entry.get("optional-dependencies", {}).get(extra, []))

    found: set[tuple[str, str | None]] = set()
    todo: list[tuple[str, str | None]] = [(package, None)]
    while todo:
        node = todo.pop()
        if node in found:
            continue
        found.add(node)
        for dependency in needs(*node):
            todo.append((dependency["name"], None))
            todo.extend((dependency["name"], extra) for extra in dependency.get("extra", []))
    return {name for name, _ in found}


def test_the_cli_and_the_client_need_no_server_package() -> None:
    cli = closure("docflow-cli")
    assert {"docflow-client", "httpx", "pydantic", "typer", "rich"} <= cli
    assert cli & SERVER_STACK == set()
    assert closure("docflow-client") & SERVER_STACK == set()
    # The check itself: the gateway's closure has them.
    assert {"fastapi", "sqlalchemy", "aiokafka"} <= closure("docflow-gateway")


def test_the_cli_code_imports_no_server_module() -> None:
    graph = grimp.build_graph("docflow_cli", "docflow_client", "docflow_shared", "docflow_gateway")
    for importer in ("docflow_cli", "docflow_client"):
        for module in graph.find_descendants(importer) | {importer}:
            imported = graph.find_modules_directly_imported_by(module)
            servers = {m for m in imported if m.startswith(("docflow_shared", "docflow_gateway"))}
            assert servers == set(), (module, servers)
