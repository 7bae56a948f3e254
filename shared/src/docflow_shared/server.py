"""How the HTTP services' uvicorn holds up against slow or oversized requests
(issue 20, finding 5).

uvicorn (0.38 to 0.54) parses with httptools when it is installed, and then
keeps a request's header as long as the client sends it: a 32 MiB header was
read whole, and a connection that never finishes its header stays open
forever (its keep-alive timeout runs only between requests).
``BoundedHttpToolsProtocol`` adds what is missing: a header over
``max_header_bytes`` is answered 431 and the connection closed; a header not
complete ``header_timeout_s`` after the connection opened (or after the
previous request) is answered 408 and closed; a body from which nothing
arrives for ``body_idle_timeout_s`` has its connection closed. A body that
trickles in a byte at a time within that bound is not stopped: the body
limits (``guards.py``, the gateway's per-file limit) and the connection cap
(``limit_concurrency``, 503 beyond) bound what it costs.

Without httptools, uvicorn's h11 is used with its own limit on an incomplete
header (``h11_max_incomplete_event_size``, answered 400) but no header timeout.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from docflow_shared.connection_limits import ConnectionLimits
from docflow_shared.settings import HttpServiceSettings


def server_options(settings: HttpServiceSettings) -> dict[str, Any]:
    """``uvicorn.run`` options that apply the settings' connection limits: a header's
    size and time, a body's idle time, at most ``max_connections`` connections
    and requests at once (503 beyond), idle keep-alive ``keep_alive_s``.

    A worker process started by uvicorn (``workers`` > 1) imports this module
    again: its app factory calls this function too, so that its protocol has
    the same limits."""
    limits = ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout_s=settings.header_timeout_s,
        body_idle_timeout_s=settings.body_idle_timeout_s,
    )
    options: dict[str, Any] = {
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": settings.keep_alive_s,
    }
    if importlib.util.find_spec("httptools") is None:
        return {**options, "http": "h11", "h11_max_incomplete_event_size": limits.max_header_bytes}
    from docflow_shared.httptools_limits import BoundedHttpToolsProtocol

    BoundedHttpToolsProtocol.limits = limits
    return {**options, "http": BoundedHttpToolsProtocol}
