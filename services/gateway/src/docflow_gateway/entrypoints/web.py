"""The web page at ``/``: plain files shipped in the package (``web/``), no build step
and nothing from another site, so it works offline."""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_DIR = Path(__file__).resolve().parent.parent / "web"

# Every file of the page: never sniffed into another type, never framed (no
# clickjacking of the upload and delete buttons), no URL sent to other sites.
FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def page_headers(status_public_url: str) -> dict[str, str]:
    """The page's headers: its own script and style only, and requests to itself
    and to the status service (statuses and the stream), nothing else."""
    parts = urlsplit(status_public_url)
    status_origin = f"{parts.scheme}://{parts.netloc}"
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {status_origin}",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return {**FILE_HEADERS, "Content-Security-Policy": policy}


def _with_headers(app: ASGIApp, headers: dict[str, str]) -> ASGIApp:
    """``app`` with ``headers`` added to each of its answers."""
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *raw]}
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped


def add_page(app: FastAPI, status_public_url: str) -> None:
    """Serve the page at ``/`` and its script and style under ``/web/``; the page reads
    statuses from ``status_public_url`` (the status service allows this origin)."""
    page = (
        (PAGE_DIR / "index.html")
        .read_text()
        .replace("__STATUS_URL__", html.escape(status_public_url.rstrip("/"), quote=True))
    )

    headers = page_headers(status_public_url)

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        """The upload page."""
        return HTMLResponse(page, headers=headers)

    app.mount("/web", _with_headers(StaticFiles(directory=PAGE_DIR), FILE_HEADERS), name="web")
