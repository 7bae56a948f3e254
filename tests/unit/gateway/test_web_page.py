"""The web page's files as the gateway serves them (the page itself runs in
tests/e2e/test_web_page.py, in Chromium)."""

from __future__ import annotations

import re
from pathlib import Path

from support.gateway import ClientFor, Recorder


def test_the_page_names_the_status_service_and_loads_only_its_own_files(
    blob_root: Path, client_for: ClientFor
) -> None:
    client = client_for(blob_root, Recorder())
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<meta name="docflow-status-url" content="http://status.example:8001">' in page.text
    # Nothing from another site: the page works offline.
    linked = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert linked == ["/web/style.css", "/web/app.js"]
    for path in linked:
        served = client.get(path)
        assert served.status_code == 200
        assert "http://" not in served.text
        assert "https://" not in served.text
    assert "/" not in client.get("/openapi.json").json()["paths"]
