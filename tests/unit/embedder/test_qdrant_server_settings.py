"""The Qdrant server's API key and TLS reach the client the embedder makes
(``DOCFLOW_QDRANT_API_KEY``, an ``https://`` ``DOCFLOW_QDRANT_URL``): checked on
the wire, against a small HTTP server that records what it is sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from docflow_embedder.bootstrap import qdrant_client
from docflow_embedder.settings import EmbedderSettings

pytestmark = pytest.mark.unit


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        _Recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = json.dumps({"result": {"collections": []}, "status": "ok", "time": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Recorder.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_api_key_is_sent_with_each_request(server: str) -> None:
    settings = EmbedderSettings(qdrant_url=f"http://{server}", qdrant_api_key="s3cret-key")
    client = qdrant_client(settings)
    assert client.get_collections().collections == []
    assert _Recorder.seen[-1]["api-key"] == "s3cret-key"


def test_without_a_key_none_is_sent(server: str) -> None:
    client = qdrant_client(EmbedderSettings(qdrant_url=f"http://{server}"))
    client.get_collections()
    assert "api-key" not in _Recorder.seen[-1]


def test_an_https_url_speaks_tls(server: str) -> None:
    """The same plain-HTTP server, named with https://: the client starts a TLS
    handshake, which the server cannot answer, so nothing is sent in clear."""
    client = qdrant_client(
        EmbedderSettings(qdrant_url=f"https://{server}", qdrant_api_key="s3cret-key")
    )
    with pytest.raises(Exception, match=r"(?i)ssl|tls|wrong version"):
        client.get_collections()
    assert all(headers.get("api-key") != "s3cret-key" for headers in _Recorder.seen)


def test_the_key_is_not_shown_in_the_settings() -> None:
    settings = EmbedderSettings(qdrant_url="https://q.example:6333", qdrant_api_key="s3cret-key")
    assert "s3cret-key" not in repr(settings)
