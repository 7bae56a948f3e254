"""PostgreSQL over TLS from the database URL: asyncpg's ``ssl=`` passes through,
libpq's ``sslmode=`` (what providers hand out) is taken as the same, and the
two together are refused rather than one silently winning."""

from __future__ import annotations

import pytest

from docflow_shared.sql import create_engine

pytestmark = pytest.mark.unit


def connect_args(url: str) -> dict[str, object]:
    engine = create_engine(url)
    _, kwargs = engine.dialect.create_connect_args(engine.url)
    return dict(kwargs)


@pytest.mark.parametrize("mode", ["require", "verify-ca", "verify-full"])
def test_sslmode_becomes_asyncpgs_ssl(mode: str) -> None:
    args = connect_args(f"postgresql+asyncpg://u:p@db.example:5432/docflow?sslmode={mode}")
    assert args["ssl"] == mode
    assert "sslmode" not in args
    assert args["host"] == "db.example"


def test_ssl_is_passed_through() -> None:
    assert connect_args("postgresql+asyncpg://u:p@db/docflow?ssl=verify-full")["ssl"] == (
        "verify-full"
    )


def test_without_either_no_tls_is_asked() -> None:
    assert "ssl" not in connect_args("postgresql+asyncpg://u:p@db/docflow")


def test_both_are_refused() -> None:
    with pytest.raises(ValueError, match="both ssl= and sslmode="):
        create_engine("postgresql+asyncpg://u:p@db/docflow?ssl=require&sslmode=disable")


def test_sqlite_urls_are_untouched(tmp_path: object) -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    assert engine.url.query == {}
