"""The web page at ``/``: plain files shipped in the package (``web/``), no build step
and nothing from another site, so it works offline."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

PAGE_DIR = Path(__file__).resolve().parent.parent / "web"


def add_page(app: FastAPI, status_public_url: str) -> None:
    """Serve the page at ``/`` and its script and style under ``/web/``; the page reads
    statuses from ``status_public_url`` (the status service allows this origin)."""
    page = (
        (PAGE_DIR / "index.html")
        .read_text()
        .replace("__STATUS_URL__", html.escape(status_public_url.rstrip("/"), quote=True))
    )

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        """The upload page."""
        return HTMLResponse(page)

    app.mount("/web", StaticFiles(directory=PAGE_DIR), name="web")
