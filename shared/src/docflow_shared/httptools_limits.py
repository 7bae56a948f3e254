"""uvicorn's httptools protocol with a header size limit, a header timeout and a
body idle timeout (``server.py`` says why, and what they do not stop)."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from docflow_shared.connection_limits import ConnectionLimits, close_with

# After an answer that leaves a request unread, the connection reads (and drops)
# what the client still sends for this long before it closes: closed at once,
# the unread bytes would make the kernel reset the connection, and the client
# might lose the answer with it.
LINGER_S = 2.0


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """One connection: its header bounded in size and time, its body in idle time."""

    # Set by ``server.server_options`` before the server starts (in each worker).
    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_header = True
        self._header_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s, self._header_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        if self._in_header:
            self._header_bytes += len(data)
        elif self.cycle is not None and self.cycle.more_body:
            self._arm(self.limits.body_idle_timeout_s, self._body_idle)
        # Parsed first: a read that ends one request's header and starts its
        # body is not held against the header.
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._in_header and self._header_bytes > self.limits.max_header_bytes:
            self._linger(
                STATUS_LINE[431],
                f"request header over {self.limits.max_header_bytes} bytes "
                "(DOCFLOW_MAX_HEADER_BYTES)",
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._timer is None:
            self._arm(self.limits.header_timeout_s, self._header_timed_out)

    def on_headers_complete(self) -> None:
        self._in_header = False
        self._header_bytes = 0
        self._arm(self.limits.body_idle_timeout_s, self._body_idle)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        # Answered before its body arrived (401, 413): close rather than read the
        # rest of a body no one will use.
        if self.cycle is not None and self.cycle.more_body and not self.transport.is_closing():
            self._linger()
            return
        super().on_response_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._in_header = True

    def _linger(self, status_line: bytes | None = None, message: str = "") -> None:
        """Answer (when ``status_line``), stop writing, drop what arrives, then close."""
        self._lingering = True
        self.flow.resume_reading()  # reading may have been paused on a full body buffer
        if status_line is not None:
            close_with(self.transport, status_line, message, linger=True)
        elif self.transport.can_write_eof():
            self.transport.write_eof()
        self._arm(LINGER_S, self.transport.close)

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _header_timed_out(self) -> None:
        self._timer = None
        if self._in_header and not self.transport.is_closing():
            self._linger(
                STATUS_LINE[408],
                f"request header not complete within {self.limits.header_timeout_s} s "
                "(DOCFLOW_HEADER_TIMEOUT_S)",
            )

    def _body_idle(self) -> None:
        self._timer = None
        # The app sees the client leave (http.disconnect), as for a dropped connection.
        if not self._in_header and not self.transport.is_closing():
            self.transport.close()
