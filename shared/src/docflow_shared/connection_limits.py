"""What one HTTP connection may cost (``server.py`` explains why)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection may cost before it is answered and closed."""

    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0
    body_idle_timeout_s: float = 30.0


def close_with(
    transport: asyncio.Transport, status_line: bytes, message: str, *, linger: bool = False
) -> None:
    """Answer ``message`` as plain text and close, or with ``linger`` only stop
    writing (the caller closes later): the connection is not reused."""
    body = message.encode()
    transport.write(
        status_line
        + b"content-type: text/plain; charset=utf-8\r\n"
        + b"content-length: "
        + str(len(body)).encode()
        + b"\r\nconnection: close\r\n\r\n"
        + body
    )
    if linger and transport.can_write_eof():
        transport.write_eof()
    else:
        transport.close()
