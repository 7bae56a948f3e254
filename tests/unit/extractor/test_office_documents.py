"""The corpus' Word, PowerPoint, Excel, HTML and EPUB files, read in the sandbox as
the extractor reads them: Markdown with their structure, and what the corpus
README asks of their chunks (the end-to-end test checks search on top)."""

from __future__ import annotations

from pathlib import Path

import pytest

from docflow_extractor.adapters.sandbox import SandboxLimits, open_sandboxed
from docflow_extractor.domain.chunking import Piece
from docflow_shared.events import ContentType
from support.corpus import FOUND_BY, IN_NO_CHUNK, IN_ONE_CHUNK

OFFICE = Path(__file__).resolve().parents[2] / "corpus" / "office"
TYPES: dict[str, ContentType] = {
    "test.docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "test.pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "test.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "test_blog.html": "text/html",
    "test.epub": "application/epub+zip",
}


def read(name: str) -> tuple[int | None, list[Piece]]:
    charset = "utf-8" if name.endswith(".html") else None
    with (OFFICE / name).open("rb") as stream:
        document = open_sandboxed(stream, TYPES[name], charset, SandboxLimits(wall_clock_s=60))
        pieces = [piece for page in document.pieces() for piece in page]
        return document.page_count, pieces


def squeezed(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("name", sorted(TYPES))
def test_each_office_file_becomes_chunks_that_hold_what_the_readme_says(name: str) -> None:
    _, pieces = read(name)
    assert pieces
    texts = [squeezed(piece.text) for piece in pieces]
    for sentence in FOUND_BY.get(name, ()):
        assert any(sentence in text for text in texts), sentence
    for together in IN_ONE_CHUNK.get(name, ()):
        assert any(all(part in text for part in together) for text in texts), together
    for absent in IN_NO_CHUNK.get(name, ()):
        assert not any(absent in text for text in texts), absent


def test_slides_are_pages_and_labelled() -> None:
    pages, pieces = read("test.pptx")
    assert pages == 6
    assert pieces[0].page == 1
    assert pieces[0].text.startswith("## Slide 1: AutoGen")
    # A table (slide 3; a small slide's chunk may begin on the slide before).
    assert any(p.page_end == 3 and "| ColA | ColB |" in p.text for p in pieces)
    # Short slides share chunks; together the chunks cover every slide.
    covered = {n for p in pieces for n in range(p.page or 0, (p.page_end or 0) + 1)}
    assert covered == set(range(1, 7))


def test_every_chunk_of_a_sheet_says_what_its_columns_are() -> None:
    pages, pieces = read("test.xlsx")
    assert pages == 2
    assert pieces[0].text.startswith("## Sheet 1: Sheet1")
    assert len([p for p in pieces if p.page == 1]) > 1  # the sheet takes several chunks
    assert all("| Row | Alpha | Beta | Gamma | Delta |" in p.text for p in pieces if p.page == 1)


def test_word_headings_stay_headings_and_the_page_loses_its_navigation() -> None:
    _, docx = read("test.docx")
    assert "\n# Abstract\n" in "\n".join(p.text for p in docx)
    _, html = read("test_blog.html")
    page = "\n".join(p.text for p in html)
    assert page.startswith("# Does Model and Inference Parameter Matter")
    assert "function" not in page
    assert "Skip to main content" not in page
