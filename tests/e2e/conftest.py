"""Fixtures of the end-to-end tier."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """An HTTP client for the running services."""
    with httpx.Client(timeout=60) as client:
        yield client
