"""GET /v1/documents/{id}/chunks on the gateway: a document's extracted chunks, read
back page by page from the extractor's chunk log, for its own tenant only.

On the real pipeline (a file extracted by the extractor): tests/e2e/test_cli.py.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4

from docflow_shared.auth import hash_key
from docflow_shared.blobstore import LocalBlobStore, chunks_key
from docflow_shared.events import Chunk, DocumentUploaded
from support.gateway import PDF, ClientFor, Recorder

KEYS = {"acme": [hash_key("acme-key")], "globex": [hash_key("globex-key")]}
ACME = {"X-API-Key": "acme-key"}
GLOBEX = {"X-API-Key": "globex-key"}


def upload(client, publish: Recorder, headers: dict[str, str]) -> UUID:  # type: ignore[no-untyped-def]
    unique = PDF + f"% {uuid4()}\n".encode()
    response = client.post("/v1/documents", files={"file": ("a.pdf", unique)}, headers=headers)
    assert response.status_code == 202
    event = publish.events[-1]
    assert isinstance(event, DocumentUploaded)
    return event.document_id


def write_log(blobs: LocalBlobStore, tenant: str, document: UUID, count: int) -> list[Chunk]:
    chunks = [
        Chunk(
            index=n,
            text=f"chunk {n}",
            page=n // 3 + 1,
            page_end=n // 3 + 1,
            char_start=0,
            char_end=7,
        )
        for n in range(count)
    ]
    with blobs.writer(chunks_key(tenant, document)) as log:
        for n, chunk in enumerate(chunks):
            log.write(chunk.model_dump_json().encode() + b"\n")
            if n == 3:
                log.write(b"not a chunk\n")  # skipped, not a failure
    return chunks


def test_a_documents_chunks_are_read_back_page_by_page(
    tmp_path: Path, client_for: ClientFor
) -> None:
    publish = Recorder()
    blobs = LocalBlobStore(tmp_path / "blobs")
    client = client_for(tmp_path / "blobs", publish, blobs=blobs, auth_enabled=True, api_keys=KEYS)
    document = upload(client, publish, ACME)
    url = f"/v1/documents/{document}/chunks"

    before = client.get(url, headers=ACME).json()
    assert before == {"id": str(document), "extracted": False, "chunks": [], "next_cursor": None}

    written = write_log(blobs, "acme", document, 12)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        answer = client.get(url, params=params, headers=ACME).json()
        assert answer["extracted"] is True
        assert len(answer["chunks"]) <= 5
        seen += answer["chunks"]
        pages += 1
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [
        {"index": c.index, "text": c.text, "page": c.page, "page_end": c.page_end} for c in written
    ]
    assert len(client.get(url, headers=ACME).json()["chunks"]) == 12  # default limit 50


def test_another_tenants_or_an_unknown_document_is_404_and_bad_pages_422(
    tmp_path: Path, client_for: ClientFor
) -> None:
    publish = Recorder()
    blobs = LocalBlobStore(tmp_path / "blobs")
    client = client_for(tmp_path / "blobs", publish, blobs=blobs, auth_enabled=True, api_keys=KEYS)
    document = upload(client, publish, ACME)
    write_log(blobs, "acme", document, 3)
    # globex even has a log under its own tenant for that id: never read for acme's.
    write_log(blobs, "globex", document, 9)
    for path, headers in (
        (f"/v1/documents/{document}/chunks", GLOBEX),
        (f"/v1/documents/{uuid4()}/chunks", ACME),
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 404, path
        assert response.json()["code"] == "document-not-found"
    assert len(client.get(f"/v1/documents/{document}/chunks", headers=ACME).json()["chunks"]) == 3
    for params in (
        {"limit": 0},
        {"limit": 501},
        {"cursor": "x"},
        {"cursor": "-1"},
        {"cursor": "1" * 11},
    ):
        response = client.get(f"/v1/documents/{document}/chunks", params=params, headers=ACME)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/documents/not-a-uuid/chunks", headers=ACME).status_code == 422
    assert client.get(f"/v1/documents/{document}/chunks").status_code == 401
